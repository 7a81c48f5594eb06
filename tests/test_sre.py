"""SRE: sharded steps keep D orthonormal and lower the ranking loss; config values are checked; the command runs end
to end (train, evaluate, retrieval)."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from ganlatent_jax import cli, generators, parallel
from ganlatent_jax import directions as dirs
from ganlatent_jax.generators import oracle, sampling, stylegan2
from ganlatent_jax.methods import sre
from ganlatent_jax.metrics import generated_domain
from ganlatent_jax.training import loop

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "sre_3dshapes.py")


def _tiny_config(**overrides):
  c = cli.load_config(CONFIG)
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


# 41 s of the idle default suite (2026-12-01): back in it since SRE over 2 processes × 2 devices (230 s) moved to
# the slow set — the default suite keeps one sharded SRE step
def test_sharded_steps_keep_d_orthonormal_and_lower_the_loss_on_a_fixed_batch(tiny_generator):
  c = _tiny_config()
  mesh = parallel.make_mesh(8)
  gen = tiny_generator
  initial = sre.initial_directions(c, gen, jax.random.key(1))
  sampler = sampling.make_sampler(gen, truncation=0.8, rng=jax.random.key(2), w_avg_samples=64)
  init_fn, step = sre.make(c, sampler, initial, mesh)
  state = loop.init_or_restore(init_fn, 0, mesh, None)
  fixed = jax.random.key(5)   # the same z and ε every step: a fixed batch
  losses = []
  for _ in range(12):
    state, metrics = step(state, fixed)
    metrics = jax.device_get(metrics)
    losses.append(float(metrics["ranker_loss"]))
    assert metrics["orthonormality_error"] < 1e-5
  assert losses[-1] < losses[0] - 0.05, losses
  assert step.func._cache_size() == 1  # one executable for all steps: no recompilation after the first
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
  with pytest.raises(ValueError, match="config.num_directions=9 exceeds the w size 8"):
    sre.initial_directions(_tiny_config(num_directions=9), gen, jax.random.key(0))


@pytest.mark.parametrize("overrides,message", [
    (dict(batch_size=33), "config.batch_size=33 must be even"),
    (dict(batch_size=0), "config.batch_size=0 must be a positive integer"),
    (dict(batch_size=-4), "config.batch_size=-4 must be a positive integer"),
    (dict(num_directions=0), "config.num_directions=0 must be a positive integer"),
    (dict(log_every=0), "config.log_every=0 must be a positive integer"),
    (dict(steps=-1), "config.steps=-1 must be >= 0"),
    (dict(shift_range=0.0), "config.shift_range=0.0 must be > 0"),
    (dict(truncation_samples=0), "config.truncation_samples=0 must be a positive integer"),
])
def test_bad_config_values_are_named(overrides, message):
  with pytest.raises(ValueError, match=message):
    sre.check_config(_tiny_config(**overrides))


def test_shift_order_before_truncation_is_a_shift_scaled_by_psi(tiny_generator):
  """Upstream's order w̄ + ψ(w + D·ε − w̄) equals ours w̄ + ψ(w − w̄) + D·(ψ·ε): shift_scale is ψ for W, 1 otherwise."""
  sampler = sampling.make_sampler(tiny_generator, truncation=0.8, rng=jax.random.key(0), w_avg_samples=64)
  upstream = _tiny_config(shift_order="before_truncation")
  assert sre.shift_scale(upstream, sampler, "w") == pytest.approx(0.8)
  assert sre.shift_scale(upstream, sampler, "z") == 1.0
  assert sre.shift_scale(_tiny_config(), sampler, "w") == 1.0
  z = sampler.z(jax.random.key(1), 4)
  w = tiny_generator.mapping(z)
  d = np.linalg.qr(np.random.RandomState(0).randn(w.shape[-1], 3))[0]
  eps = np.random.RandomState(1).uniform(-1, 1, (4, 3))
  shifted_then_truncated = sampling.truncate_w(w + eps @ d.T, sampler.w_avg, 0.8)
  ours = sampler.to_space(z, "w") + (sre.shift_scale(upstream, sampler, "w") * eps) @ d.T
  np.testing.assert_allclose(ours, shifted_then_truncated, atol=1e-5)
  with pytest.raises(ValueError, match="config.shift_order='sideways'"):
    sre.check_config(_tiny_config(shift_order="sideways"))


def test_indivisible_batch_is_refused(tiny_generator):
  c = _tiny_config(batch_size=12)
  initial = sre.initial_directions(c, tiny_generator, jax.random.key(1))
  with pytest.raises(ValueError, match="batch_size=12 is not divisible by the 8 devices"):
    sre.make(c, sampling.make_sampler(tiny_generator), initial, parallel.make_mesh(8))


@pytest.mark.slow   # ~70 s: three subprocesses, each compiling a 64 px generator's step and the protocol
def test_command_runs_end_to_end_with_evaluation_and_retrieval(tmp_path):
  """A tiny 64 px generator (the shapes3d resolution), the quick variant: train, evaluate, retrieval."""
  config = stylegan2.make_config(64, style_dim=8, n_mlp=2, channels=stylegan2.constant_channels(64, 4))
  generators.save_converted(tmp_path / "gen", config, stylegan2.init_variables(config, jax.random.key(0)))
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  workdir = tmp_path / "run"
  args = [f"--config={CONFIG}:quick", f"--workdir={workdir}", f"--config.generator={tmp_path / 'gen'}",
          "--config.steps=3", "--config.image_every=3"]
  result = subprocess.run([sys.executable, "-m", "ganlatent_jax.main", *args], capture_output=True, text=True,
                          env=env, timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  for name in ("directions.npz", "init_directions.npz", "ranker.msgpack", "metrics.json", "config.json",
               "images/traversal.png", "images/traversal_comparison.png"):
    assert (workdir / name).exists(), name
  metrics = json.loads((workdir / "metrics.json").read_text())
  for which in ("init_directions", "directions"):
    assert 0.0 <= metrics[which]["mig"] <= 1.0 and "factor_vae_eval_accuracy" in metrics[which]
  retrieval = subprocess.run([sys.executable, "-m", "ganlatent_jax.retrieval", f"--workdir={workdir}",
                              "--direction=1", "--query_index=3", "--top_k=4", "--pool_size=64",
                              "--num_queries=8"], capture_output=True, text=True, env=env, timeout=600)
  assert retrieval.returncode == 0, retrieval.stderr[-4000:]
  report = json.loads(retrieval.stdout)
  assert len(report["directions"]) == 3 and 0.0 <= report["directions"][0]["precision_at_4"] <= 1.0
  assert (workdir / "images" / "retrieval_d1_q3.png").exists()
  refined = dirs.load(workdir / "directions.npz")
  assert refined.meta["method"] == "sre" and refined.meta["steps"] == 3
  np.testing.assert_allclose(refined.matrix.T @ refined.matrix, np.eye(3), atol=1e-5)
  # Without include_init only the refined directions are scored (ablations sharing one initialisation).
  config = cli.load_config(CONFIG + ":quick")
  config.generator = str(tmp_path / "gen")
  config.evaluation.include_init = False
  config.evaluation.metrics = ("mig",)
  rescored = sre.evaluate(config, str(workdir))
  assert "init_directions" not in rescored and 0.0 <= rescored["directions"]["mig"] <= 1.0
  assert json.loads((workdir / "metrics.json").read_text())["directions"]["mig"] == rescored["directions"]["mig"]


@pytest.mark.slow   # a whole (quick) SRE training on an oracle: its ranker and the oracle's 64 px renderer compile
def test_training_on_an_oracle_logs_how_far_d_is_from_the_true_directions(tmp_path):
  from ganlatent_jax.training.events import read_scalars
  config = cli.load_config(CONFIG + ":quick")
  config.update(generator="testbed:oracle-dsprites", steps=4, log_every=2, checkpoint_every=4)
  config.init.sefa_variant = "first_layer"
  config.evaluation.enabled = False
  sre.train(config, str(tmp_path))
  scalars = read_scalars(tmp_path)
  for name in ("recovery/mean_abs_cos", "recovery/fraction", "recovery/abs_cos_to_init"):
    assert [step for step, _ in scalars[name]] == [2, 4], name
  # the logged values are those of the directions at that step (here the last one, which the run saved)
  refined, initial = dirs.load(tmp_path / "directions.npz"), dirs.load(tmp_path / "init_directions.npz")
  true = oracle.true_directions(generators.load("testbed:oracle-dsprites"), refined.space)
  expected = generated_domain.direction_recovery(refined, true)["recovery_mean_abs_cos"]
  assert scalars["recovery/mean_abs_cos"][-1][1] == pytest.approx(expected, abs=1e-5)
  moved = np.abs(np.sum(refined.matrix * initial.normalized().matrix, axis=0)).mean()
  assert scalars["recovery/abs_cos_to_init"][-1][1] == pytest.approx(moved, abs=1e-5)
  # launch/sre_trace.py reads the same numbers back from the checkpoints (for runs older than these scalars)
  spec = importlib.util.spec_from_file_location("sre_trace", pathlib.Path(CONFIG).parents[1] / "launch" / "sre_trace.py")
  sre_trace = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(sre_trace)
  rows = sre_trace.trace(str(tmp_path), str(tmp_path / "checkpoints"))
  assert [row["step"] for row in rows] == [0, 4] and rows[0]["recovery/abs_cos_to_init"] == pytest.approx(1.0)
  for name in ("recovery/mean_abs_cos", "recovery/fraction", "recovery/abs_cos_to_init"):
    assert rows[-1][name] == pytest.approx(scalars[name][-1][1], abs=1e-5), name
  assert rows[-1]["ranker_accuracy"] == pytest.approx(scalars["ranker_accuracy"][-1][1])
