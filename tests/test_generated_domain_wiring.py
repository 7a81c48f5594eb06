"""Generated-domain scores wired into the methods' evaluation (`methods._common.evaluate_directions` /
`generated_domain_evaluation`, config.evaluation.generated_domain): on an oracle, true directions outscore random
ones and the probe row finds the true directions through this path; a quick method run's metrics.json has the
protocol's numbers and the generated-domain ones side by side, with probe and random rows; bad settings fail by name."""
import json
import pathlib
import types

import jax
import numpy as np
import pytest

from ganlatent_jax import cli, methods
from ganlatent_jax import testbeds
from ganlatent_jax.directions import Directions
from ganlatent_jax.generators import oracle
from ganlatent_jax.methods import _common
from ganlatent_jax.metrics import quality

SEFA_CONFIG = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "sefa_3dshapes.py")


def _oracle_config(name="dsprites", variant=":quick"):
  """The SeFa config pointed at an oracle generator (first-layer SeFa reads its A) and the matching dataset."""
  config = cli.load_config(SEFA_CONFIG + variant)
  config.generator = f"testbed:oracle-{name}"
  config.variant = "first_layer"
  config.evaluation.dataset.name = name
  return config


@pytest.mark.parametrize("space", ["z", "w"])
def test_true_directions_outscore_random_ones_through_the_evaluation_path(space, tmp_path):
  config = _oracle_config()
  config.evaluation.generated_domain.update(num_train=2000, num_test=200, probe_num_samples=2000,
                                            metrics=("mig", "factor_vae"))
  sampler = _common.make_sampler(config, _common.load_generator(config), {"w_avg": 1})
  true = oracle.true_directions(sampler.gen, space)
  rows, references, about = _common.generated_domain_evaluation(config, str(tmp_path), sampler, [("true", true)],
                                                                jax.random.key(0))
  assert about["labels"] == "exact" and about["space"] == space
  random_directions, random = references["random"]
  assert random_directions.num_directions == true.num_directions and random_directions.space == space
  np.testing.assert_allclose(random_directions.matrix.T @ random_directions.matrix, np.eye(true.num_directions),
                             atol=1e-5)
  # MIG's ceiling with exact labels is ~0.7 (20 histogram bins for up to 40 values); random stays near 0.
  assert rows["true"]["generated_mig"] >= 0.5, rows["true"]
  assert random["generated_mig"] <= rows["true"]["generated_mig"] / 3, (rows["true"], random)
  assert rows["true"]["recovery_fraction"] == 1.0 and random["recovery_fraction"] == 0.0
  probe_directions, probe = references["probe"]
  assert probe["recovery_fraction"] == 1.0 and probe["generated_mig"] >= 0.5, probe
  assert Directions.load(str(tmp_path / "probe_directions.npz")).space == space
  np.testing.assert_allclose(np.abs(np.sum(probe_directions.matrix * true.matrix, axis=0)), 1.0, atol=0.02)


@pytest.mark.slow   # a whole quick SeFa run with the encoder protocol, as test_configs' quick runs (minutes loaded)
def test_quick_method_run_writes_protocol_and_generated_domain_scores_side_by_side(tmp_path):
  config = _oracle_config()
  config.evaluation.generated_domain.labels = "classifier"   # the GAN testbeds' path, on cheap oracle images
  config.evaluation.generated_domain.classifier_dir = str(tmp_path / "classifiers")
  workdir = tmp_path / "run"
  outputs = methods.get("sefa").train(config, str(workdir))
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert set(metrics) == {"evaluation", "seed", "directions", "probe", "random", "generated_domain"}
  directions = metrics["directions"]
  assert {"mig", "factor_vae_eval_accuracy", "encoder_val_r2_mean"} <= set(directions)   # the protocol's stay
  generated = {"generated_mig", "generated_factor_vae_eval_accuracy", "generated_factors", "generated_num_samples",
               "recovery_mean_abs_cos", "recovery_fraction"}
  assert generated <= set(directions) and generated <= set(metrics["probe"]) and generated <= set(metrics["random"])
  assert "mig" not in metrics["probe"]   # references_protocol=False: no encoder trained for the reference rows
  assert directions["generated_num_samples"] == 128 + 32
  about = metrics["generated_domain"]
  assert about["labels"] == "classifier" and about["classifier_steps"] == 20
  assert about["classifier"].startswith(str(tmp_path / "classifiers")) and len(about["classifier_train_accuracy"]) == 5
  assert set(outputs) >= {"directions", "traversal"}


@pytest.mark.slow   # 62 s in the default suite of 2026-12-02 (loaded machine): moved for its ~10 min budget
def test_the_factor_classifier_is_trained_once_then_read_from_its_cache(tmp_path):
  config = _oracle_config()
  config.evaluation.generated_domain.update(labels="classifier", classifier_steps=2)
  settings = _common.generated_domain_settings(config)
  gen = _common.load_generator(config)
  workdir = str(tmp_path / "run")   # classifier_dir '' = the workdir's parent
  first, about = _common.generated_domain_labeller(config, workdir, gen, settings)
  assert about["classifier"] == str(tmp_path / "classifier_dsprites_64x64_2_identifiable.msgpack")
  assert about["classifier_train_accuracy"] is not None
  second, about_again = _common.generated_domain_labeller(config, workdir, gen, settings)
  # Read, not trained — and its training accuracy read from the record beside it, as the first run reported it.
  assert about_again["classifier_train_accuracy"] == about["classifier_train_accuracy"]
  images = np.random.RandomState(0).rand(4, 64, 64, 1).astype(np.float32)
  np.testing.assert_array_equal(first(None, images)[0], second(None, images)[0])


def test_the_classifier_cache_is_the_testbeds_one():
  # One cache naming for the methods' generated-domain labels and the testbeds' quality measurement.
  assert testbeds.classifier_cache_path is quality.classifier_cache_path


@pytest.mark.parametrize("key, value, message", [
    ("labels", "oracle", r"generated_domain.labels='oracle': expected one of \('auto', 'exact', 'classifier'\)"),
    ("metrics", ("mig", "sap"), r"generated_domain.metrics=\('mig', 'sap'\): expected a non-empty subset"),
    ("references", ("probe", "best"), r"generated_domain.references=\('probe', 'best'\): expected a subset"),
    ("probe", "ridge", r"generated_domain.probe='ridge'"),
    ("num_train", 0, r"config.evaluation.generated_domain.num_train=0 must be a positive integer"),
])
def test_bad_settings_are_named(key, value, message):
  config = _oracle_config()
  config.evaluation.generated_domain[key] = value
  with pytest.raises(ValueError, match=message):
    _common.generated_domain_settings(config)


def test_unknown_key_disabled_section_and_exact_labels_on_a_gan():
  config = _oracle_config()
  config.evaluation.generated_domain.num_samples = 10
  with pytest.raises(ValueError, match=r"unknown key\(s\) \['num_samples'\]"):
    _common.generated_domain_settings(config)
  config = _oracle_config()
  config.evaluation.generated_domain.enabled = False
  assert _common.generated_domain_settings(config) is None
  config.evaluation.generated_domain.update(enabled=True, labels="exact")
  gan = types.SimpleNamespace(info=types.SimpleNamespace(family="stylegan2"))
  with pytest.raises(ValueError, match="labels='exact': a stylegan2 generator has no exact factors"):
    _common.generated_domain_labeller(config, "/tmp/unused", gan, _common.generated_domain_settings(config))


def test_reference_rows_must_not_clash_with_the_methods_names(tmp_path):
  config = _oracle_config()
  sampler = _common.make_sampler(config, _common.load_generator(config), {"w_avg": 1})
  with pytest.raises(ValueError, match=r"directions named \['random'\] clash"):
    _common.generated_domain_evaluation(config, str(tmp_path), sampler,
                                        [("random", oracle.true_directions(sampler.gen))], jax.random.key(0))
