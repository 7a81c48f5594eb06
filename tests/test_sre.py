"""SRE: sharded steps keep D orthonormal and lower the ranking loss; the command runs end to end."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from ganlatent_jax import directions as dirs
from ganlatent_jax import generators, parallel
from ganlatent_jax.directions import spaces
from ganlatent_jax.generators import stylegan2
from ganlatent_jax.methods import sre
from ganlatent_jax.training import loop

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs"))
import sre_3dshapes  # noqa: E402


def _tiny_config(**overrides):
  c = sre_3dshapes.get_config()
  c.num_directions = 3
  c.batch_size = 16
  c.ranker.width = 4
  c.ranker.learning_rate = 1e-3
  c.truncation = 0.8
  c.truncation_samples = 64
  c.init.method = "random"
  c.space = "w"
  for key, value in overrides.items():
    c[key] = value
  return c


@pytest.fixture(scope="module")
def tiny_generator():
  """A 16 px StyleGAN2 with 8 channels: the method's maths on a generator that compiles in seconds."""
  config = stylegan2.make_config(16, style_dim=8, n_mlp=2, channels=stylegan2.constant_channels(16, 8))
  return stylegan2.build(config, stylegan2.init_variables(config, jax.random.key(0)), "tiny")


def test_sharded_steps_keep_d_orthonormal_and_lower_the_loss_on_a_fixed_batch(tiny_generator):
  c = _tiny_config()
  mesh = parallel.make_mesh(8)
  gen = tiny_generator
  initial = sre.initial_directions(c, gen, jax.random.key(1))
  w_avg = spaces.mean_w(gen, jax.random.key(2), 64)
  step = sre.make_train_step(c, gen, initial, mesh, w_avg)
  state = loop.init_or_restore(sre.init(c, gen, initial, gen.image_shape), 0, mesh, None)
  fixed = jax.random.key(5)   # the same z and ε every step: a fixed batch
  losses = []
  for _ in range(12):
    state, metrics = step(state, fixed)
    metrics = jax.device_get(metrics)
    losses.append(float(metrics["ranker_loss"]))
    assert metrics["orthonormality_error"] < 1e-5
  assert losses[-1] < losses[0] - 0.05, losses
  assert step.jitted._cache_size() == 1  # one executable for all steps: no recompilation after the first
  d = sre.refined_directions(state, initial, c)
  np.testing.assert_allclose(d.matrix.T @ d.matrix, np.eye(3), atol=1e-5)
  assert not np.allclose(d.matrix, initial.matrix, atol=1e-6)  # the directions were updated


def test_initialisations(tiny_generator, tmp_path):
  gen = tiny_generator
  for method in ("sefa", "random", "ganspace"):
    c = _tiny_config(space="")
    c.init.method = method
    c.init.ganspace_samples = 256
    d = sre.initial_directions(c, gen, jax.random.key(0))
    assert d.matrix.shape == (8, 3) and d.space == "w"
  saved = dirs.random(8, 5, jax.random.key(3), space="w")
  saved.save(tmp_path / "d.npz")
  c = _tiny_config(space="")
  c.init.method, c.init.path = "file", str(tmp_path / "d.npz")
  np.testing.assert_array_equal(sre.initial_directions(c, gen, jax.random.key(0)).matrix, saved.matrix[:, :3])
  c.init.method = "nope"
  with pytest.raises(ValueError, match="config.init.method='nope'"):
    sre.initial_directions(c, gen, jax.random.key(0))


def test_odd_or_indivisible_batch_is_refused(tiny_generator):
  c = _tiny_config(batch_size=12)
  initial = sre.initial_directions(c, tiny_generator, jax.random.key(1))
  with pytest.raises(ValueError, match="batch_size=12 is not divisible by the 8 devices"):
    sre.make_train_step(c, tiny_generator, initial, parallel.make_mesh(8), None)


def test_command_runs_end_to_end_with_evaluation(tmp_path):
  """A tiny 64 px generator (the shapes3d resolution), a few steps, a tiny evaluation budget."""
  config = stylegan2.make_config(64, style_dim=8, n_mlp=2, channels=stylegan2.constant_channels(64, 4))
  generators.save_converted(tmp_path / "gen", config, stylegan2.init_variables(config, jax.random.key(0)))
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  workdir = tmp_path / "run"
  overrides = ["--config.steps=3", "--config.num_directions=3", "--config.batch_size=8", "--config.ranker.width=4",
               "--config.truncation_samples=64", "--config.log_every=1", "--config.image_every=3",
               "--config.progress_bar=False", "--config.evaluation.num_train=64", "--config.evaluation.num_val=32",
               "--config.evaluation.encoder_steps=3", "--config.evaluation.batch_size=16",
               "--config.evaluation.metric_samples=128", "--config.evaluation.batch_metric_points=16",
               f"--config.generator={tmp_path / 'gen'}"]
  result = subprocess.run([sys.executable, "-m", "ganlatent_jax.main", "--config=configs/sre_3dshapes.py",
                           f"--workdir={workdir}", *overrides], capture_output=True, text=True, env=env, timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  for name in ("directions.npz", "init_directions.npz", "ranker.msgpack", "metrics.json", "config.json",
               "images/traversal.png", "images/traversal_comparison.png"):
    assert (workdir / name).exists(), name
  metrics = json.loads((workdir / "metrics.json").read_text())
  for which in ("init_directions", "directions"):
    assert 0.0 <= metrics[which]["mig"] <= 1.0
    assert "factor_vae_eval_accuracy" in metrics[which] and "dci_disentanglement" in metrics[which]
  retrieval = subprocess.run([sys.executable, "-m", "ganlatent_jax.methods.sre_retrieval", f"--workdir={workdir}",
                              "--direction=1", "--query_index=3", "--top_k=4", "--pool_size=64",
                              "--num_queries=8"], capture_output=True, text=True, env=env, timeout=600)
  assert retrieval.returncode == 0, retrieval.stderr[-4000:]
  report = json.loads(retrieval.stdout)
  assert len(report["directions"]) == 3 and 0.0 <= report["directions"][0]["precision_at_4"] <= 1.0
  assert (workdir / "images" / "retrieval_d1_q3.png").exists()
  refined = dirs.load(workdir / "directions.npz")
  assert refined.meta["method"] == "sre" and refined.meta["steps"] == 3
  # Without include_init only the refined directions are scored (ablations sharing one initialisation).
  config = sre_3dshapes.get_config()
  config.generator = str(tmp_path / "gen")
  config.evaluation.update(num_train=64, num_val=32, encoder_steps=3, batch_size=16, metric_samples=128,
                           batch_metric_points=16, include_init=False, metrics=("mig",))
  rescored = sre.evaluate(config, str(workdir))
  assert "init_directions" not in rescored and 0.0 <= rescored["directions"]["mig"] <= 1.0
  np.testing.assert_allclose(refined.matrix.T @ refined.matrix, np.eye(3), atol=1e-5)
