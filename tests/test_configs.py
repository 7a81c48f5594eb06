"""Every config file: both variants load, speak the vocabulary of configs/common.py, name a registered method; the
quick variant trains and evaluates end to end (`python -m ganlatent_jax.evaluate` on its workdir)."""
import contextlib
import json
import pathlib

import pytest
from conftest import fixture_path

from ganlatent_jax import cli, methods
from ganlatent_jax import evaluate as evaluate_lib

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
NAMES = sorted(p.stem for p in CONFIGS.glob("*.py") if p.stem != "common")
# Keys the vocabulary replaced (configs/common.py): finding one means a config was not brought along.
RETIRED = {"eval", "target_classes", "biggan_class", "eval_batches", "deformator_lr", "shift_predictor_lr",
           "directions_learning_rate", "g_lr", "d_lr"}
# What the quick runs need that the package does not ship: a small BigGAN, a small VGG16 for LPIPS.
FIXTURES = {
    "ld_imagenet": {"generator": "biggan/biggan_tiny"},
    "latentclr_imagenet": {"generator": "biggan/biggan_tiny"},
    "plumerault_biggan": {"generator": "biggan/biggan_tiny"},
    "evaluate_3dshapes": {"evaluation.protocol.lpips.vgg16_path": "torchvision/tv_vgg16_tiny.pth",
                          "generator": "stylegan2/stylegan2_rosinality_s32.pt"},
}


# Quick runs that read a TFDS dataset this machine does not have: run on tfds.testing.mock_data.
MOCK_TFDS = {"pssc_celeba", "udgan_g_celeba"}


def data_context(name):
  """What a quick run of `name` runs inside: TFDS mock data for MOCK_TFDS configs, nothing otherwise."""
  if name not in MOCK_TFDS:
    return contextlib.nullcontext()
  import tensorflow_datasets as tfds
  return tfds.testing.mock_data(num_examples=16)


def _load(name, variant=""):
  return cli.load_config(str(CONFIGS / f"{name}.py") + variant)


def _keys(config, prefix=""):
  for key, value in config.items():
    yield prefix + key
    if hasattr(value, "items"):
      yield from _keys(value, f"{prefix}{key}.")


@pytest.mark.parametrize("name", NAMES)
def test_config_loads_and_speaks_the_vocabulary(name):
  for variant in ("", ":quick"):
    config = _load(name, variant)
    if config.method:
      assert config.method in methods.REGISTRY, config.method
    leaves = {key.rsplit(".", 1)[-1] for key in _keys(config)}
    assert not leaves & RETIRED, leaves & RETIRED
    truncation = config.get("truncation", None)
    assert truncation is None or truncation > 0, "truncation: None for none"
    assert {"enabled", "metrics"} <= set(config.evaluation), "evaluation = {enabled, protocol, metrics}"
    if "conditional" in config:
      assert set(config.conditional) == {"classes", "truncation"}
    config.lock()   # what --config does: every key the method reads must exist already
  with pytest.raises(ValueError, match="config variant 'slow' is not defined by this config; known: \\[.*'quick'.*\\]"):
    _load(name, ":slow")


@pytest.mark.slow   # 30–300 s each: every method's quick run, then its evaluation from the workdir
@pytest.mark.parametrize("name", NAMES)
def test_quick_variant_trains_and_evaluates(name, tmp_path):
  config = _load(name, ":quick")
  for key, relative in FIXTURES.get(name, {}).items():
    section, _, leaf = key.rpartition(".")
    (config[section] if section else config)[leaf] = str(fixture_path(relative))
  with data_context(name):
    if config.method:
      outputs = methods.get(config.method).train(config, str(tmp_path))
      assert all(pathlib.Path(path).exists() for path in outputs.values()), outputs
    if config.evaluation.enabled or not config.method:
      metrics = evaluate_lib.evaluate(config, str(tmp_path))
      assert json.loads((tmp_path / "metrics.json").read_text()).keys() == metrics.keys()
