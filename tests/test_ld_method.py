"""The LD training method: shifts, a real run on the SN-GAN MNIST fixture (accuracy well above chance, CLI outputs),
evaluation from the checkpoint, sharding over the 8 simulated devices, the 'fc' traversal picture."""
import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import fixture_path
from PIL import Image

from ganlatent_jax import directions as dirs
from ganlatent_jax import generators, parallel
from ganlatent_jax.methods import _common, ld
from ganlatent_jax.nets.ld import LatentDeformator

REPO = pathlib.Path(__file__).resolve().parents[1]
SN_MNIST = str(fixture_path("ganlatentdiscovery/gld_sn_mnist"))
K = 4
STEPS = 150
# A short run at tiny size: K = 4 directions of a 'linear' deformator (free to lengthen its columns, so the shifts
# become visible quickly), a width-1 LeNet, learning rates 100× upstream's 1e-4 to learn within the test's budget.
# Accuracy is measured like upstream's (eval-mode BatchNorm, fresh shifts); at this learning rate the running
# statistics lag the weights, so it sits below the training-batch accuracy (≈0.7 vs ≈0.9 here; chance 0.25).
TINY = {"generator": SN_MNIST, "num_directions": K, "deformator.type": "linear", "batch_size": 16, "steps": STEPS,
        "lenet_width": 1, "deformator_lr": 1e-2, "shift_predictor_lr": 1e-2, "eval_batches": 10, "log_every": 50,
        "checkpoint_every": STEPS, "image_every": STEPS, "progress_bar": False, "traversal.max_directions": 3}


def tiny_config(**overrides) -> ml_collections.ConfigDict:
  c = ld_config()
  for key, value in {**TINY, **overrides}.items():
    *path, name = key.split(".")
    section = c
    for part in path:
      section = section[part]
    section[name] = value
  return c


def ld_config():
  import importlib.util
  spec = importlib.util.spec_from_file_location("ld_sngan", REPO / "configs" / "ld_sngan.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_make_shifts(distribution):
  target, shifts, basis = ld.make_shifts(jax.random.key(0), 4096, 5, scale=6.0, min_shift=0.5,
                                         distribution=distribution)
  target, shifts, basis = map(np.asarray, (target, shifts, basis))
  assert set(target.tolist()) == set(range(5))
  assert np.all(np.abs(shifts) >= 0.5)  # pushed away from 0
  assert np.any(np.abs(shifts) == 0.5) and np.any(shifts < 0) and np.any(shifts > 0)
  if distribution == "uniform":
    assert np.all(np.abs(shifts) <= 6.0)
  np.testing.assert_array_equal(basis, np.eye(5, dtype=np.float32)[target] * shifts[:, None])


def test_bad_settings_are_named():
  gen = generators.load(SN_MNIST)
  with pytest.raises(ValueError, match="num_directions == config.max_latent_dim"):
    ld.make_networks(tiny_config(**{"deformator.type": "ortho"}, max_latent_dim=0), gen)
  with pytest.raises(ValueError, match="config.space='w'"):
    ld.make_networks(tiny_config(space="w"), gen)
  with pytest.raises(ValueError, match="config.shift_predictor='vgg'"):
    ld.make_networks(tiny_config(shift_predictor="vgg"), gen)
  with pytest.raises(ValueError, match="config.shift_distribution='beta'"):
    ld.make_trainer(tiny_config(shift_distribution="beta"), gen, parallel.make_mesh())


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
  """One CLI run: 150 steps of LD on the SN-GAN MNIST fixture (the run every test below inspects)."""
  workdir = tmp_path_factory.mktemp("ld_run")
  overrides = [f"--config.{key}={value}" for key, value in TINY.items()]
  command = [sys.executable, "-m", "ganlatent_jax.main", f"--config={REPO / 'configs' / 'ld_sngan.py'}",
             f"--workdir={workdir}", *overrides]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, env=dict(os.environ))
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_cli_run_learns_and_writes_directions_and_pngs(cli_run):
  results = json.loads((cli_run / "results.json").read_text())
  assert results["step"] == STEPS and results["chance_accuracy"] == 1.0 / K
  assert results["accuracy"] >= 2.0 / K, results  # chance is 1/K
  d = dirs.load(cli_run / "directions.npz")
  assert d.matrix.shape == (128, K) and d.space == "z" and d.meta["deformator"] == "linear"
  assert d.meta["step"] == STEPS and d.meta["generator"] == SN_MNIST
  picture = np.asarray(Image.open(cli_run / "images" / "traversal.png"))
  assert picture.shape == (2 + 3 * 2 * 34, 2 + 7 * 34, 3)  # 3 directions × 2 samples, 7 shifts of 32×32
  assert list(cli_run.glob("events.out.tfevents.*")) and (cli_run / "checkpoints" / str(STEPS)).exists()


def test_evaluate_restores_the_run_and_steps_are_sharded(cli_run):
  config = tiny_config()
  mesh, gen, trainer, w_avg = ld.setup(config)
  assert mesh.devices.size == 8
  abstract = jax.eval_shape(trainer.init_fn, jax.random.key(0))
  for step in (trainer.train_step, trainer.accuracy_step):
    text = step.lower(abstract, gen, w_avg, jax.random.key(0)).as_text()
    # The batch drawn inside the step is constrained to the 'data' axis of the 8-device mesh (Shardy or GSPMD text).
    assert re.search(r'sharding_constraint %\S+ <@mesh, \[\{"data"\}|devices=\[8', text), text[:2000]
  result = ld.evaluate(config, str(cli_run))
  assert result["step"] == STEPS and result["accuracy"] >= 2.0 / K


@pytest.mark.parametrize("name", ["sngan", "biggan"])
def test_fc_deformator_traversal_picture(name):
  # BigGAN: the picture is rendered in the first target class over its truncated noise.
  gen = generators.load(SN_MNIST if name == "sngan" else str(fixture_path("biggan/biggan_tiny")))
  cond = None if name == "sngan" else ld.Conditioning((5, 7), 0.5)
  size = gen.image_shape[0] + 2
  deformator = LatentDeformator(type="fc", input_dim=128, out_dim=128, inner_dim=8)
  variables = deformator.init(jax.random.key(0), jnp.zeros((1, 128)))
  z = _common.sample_prior(cond, gen, jax.random.key(1), 1)
  grid = ld.deformator_traversal(gen, deformator, variables, z, space="z", span=6.0, steps=3, num_directions=2,
                                 cond=cond)
  assert grid.shape == (2 + 2 * size, 2 + 3 * size, 3) and grid.dtype == np.uint8
  assert not np.array_equal(grid[2:size, 2:size], grid[2:size, 2 + 2 * size:3 * size])  # −6 and +6 differ


# ---------------------------------------------------------------------------------------------- class-conditional

BIGGAN = str(fixture_path("biggan/biggan_tiny"))


def test_conditioning_names_bad_settings():
  sngan, biggan = generators.load(SN_MNIST), generators.load(BIGGAN)
  assert ld.conditioning(tiny_config(), sngan) is None
  with pytest.raises(ValueError, match="target_classes=\\(3,\\) but the .* not class-conditional"):
    ld.conditioning(tiny_config(target_classes=(3,)), sngan)
  with pytest.raises(ValueError, match="needs config.target_classes"):
    ld.conditioning(tiny_config(target_classes=()), biggan)
  with pytest.raises(ValueError, match=r"\[1000\] outside 0..999"):
    ld.conditioning(tiny_config(target_classes=(3, 1000)), biggan)
  with pytest.raises(ValueError, match="config.truncation=1.5"):
    ld.conditioning(tiny_config(target_classes=(3,), truncation=1.5), biggan)


def test_unconditional_batches_keep_their_random_stream():
  # The README's LD rows were computed before class conditioning existed: z and the shifts of an unconditional
  # generator must still come from the same keys, or rerunning the table would draw other batches.
  gen = generators.load(SN_MNIST)
  trainer = ld.make_trainer(tiny_config(), gen, parallel.make_mesh(1))
  key = jax.random.key(7)
  batch = jax.jit(trainer.sample_batch)(key)
  z_key, shift_key = jax.random.split(key)
  np.testing.assert_array_equal(np.asarray(batch.z), np.asarray(gen.sample_z(z_key, 16)))
  target, _, basis = ld.make_shifts(shift_key, 16, K)
  np.testing.assert_array_equal(np.asarray(batch.target), np.asarray(target))
  np.testing.assert_allclose(np.asarray(batch.basis_shift), np.asarray(basis))


def test_biggan_pairs_share_their_class():
  # Two target classes, mixed within the batch; an image and its shifted twin must share the class, so a zero shift
  # renders the same image twice (upstream redraws the twin's class: its shift would also change the class).
  gen = generators.load(BIGGAN)
  config = tiny_config(generator=BIGGAN, target_classes=(1, 2), batch_size=8, shift_predictor="resnet",
                       **{"resnet.stem_width": 4, "resnet.stage_widths": (4, 4, 4, 4),
                          "resnet.blocks_per_stage": (1, 1, 1, 1)})
  trainer = ld.make_trainer(config, gen, parallel.make_mesh(1))
  batch = jax.jit(trainer.sample_batch)(jax.random.key(3))
  assert set(np.asarray(batch.classes).tolist()) == {1, 2}
  assert float(jnp.max(jnp.abs(batch.z))) <= 2.0   # truncnorm(−2, 2)·1.0, BigGAN-deep's convention
  images, twins = jax.jit(trainer.image_pair)(gen, jnp.zeros((1,)), batch, jnp.zeros_like(batch.z))
  np.testing.assert_array_equal(np.asarray(images), np.asarray(twins))
  other = batch._replace(classes=3 - batch.classes)
  assert not np.allclose(np.asarray(jax.jit(trainer.image_pair)(gen, jnp.zeros((1,)), other,
                                                                jnp.zeros_like(batch.z))[0]), np.asarray(images))


def test_cli_biggan_config_on_fixture(tmp_path):
  overrides = {"generator": BIGGAN, "steps": 2, "batch_size": 8, "num_directions": 4, "max_latent_dim": 0,
               "deformator.type": "linear", "target_classes": "(1,2)", "resnet.stem_width": 4,
               "resnet.stage_widths": "(4,4,4,4)", "resnet.blocks_per_stage": "(1,1,1,1)", "eval_batches": 1,
               "log_every": 1, "checkpoint_every": 2, "image_every": 0, "progress_bar": False,
               "traversal.num_samples": 1, "traversal.steps": 3, "traversal.max_directions": 2}
  command = [sys.executable, "-m", "ganlatent_jax.main", f"--config={REPO / 'configs' / 'ld_biggan.py'}",
             f"--workdir={tmp_path}", *(f"--config.{key}={value}" for key, value in overrides.items())]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, env=dict(os.environ))
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["step"] == 2 and results["target_classes"] == [1, 2] and results["truncation"] == 1.0
  d = dirs.load(tmp_path / "directions.npz")
  assert d.matrix.shape == (128, 4) and d.meta["target_classes"] == [1, 2]
  picture = np.asarray(Image.open(tmp_path / "images" / "traversal.png"))
  assert picture.shape == (2 + 2 * 130, 2 + 3 * 130, 3)   # 2 directions × 1 sample, 3 shifts of 128×128
