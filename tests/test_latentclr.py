"""LatentCLR: the contrastive loss against a direct numpy computation (both variants), the direction models, and
short sharded training runs on the fixture generators (in-process, through each config)."""
import json
import types
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fixture_path

from ganlatent_jax import cli
from ganlatent_jax.directions import Directions
from ganlatent_jax.losses.latentclr import similarity_summary
from ganlatent_jax.generators import sampling
from ganlatent_jax.directions import latentclr_models as models
from ganlatent_jax.methods import latentclr

REPO = pathlib.Path(__file__).resolve().parents[1]
STYLEGAN2 = "stylegan2/stylegan2_rosinality_s32.pt"
BIGGAN = "biggan/biggan_tiny"


# ---------------------------------------------------------------------------------------------------------------
# The loss, written out term by term.

def _cos(a, b):
  return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def numpy_paper_loss(f, tau):
  """Σ over anchors of −log[Σ_{j≠i} e^{s(f_i^k, f_j^k)/τ} / Σ_j Σ_{l≠k} e^{s(f_i^k, f_j^l)/τ}], averaged."""
  k_count, n_count, _ = f.shape
  losses = []
  for k in range(k_count):
    for i in range(n_count):
      pos = sum(np.exp(_cos(f[k, i], f[k, j]) / tau) for j in range(n_count) if j != i)
      neg = sum(np.exp(_cos(f[k, i], f[l, j]) / tau) for l in range(k_count) if l != k for j in range(n_count))
      losses.append(-np.log(pos / neg))
  return np.mean(losses)


def numpy_upstream_loss(f, temp):
  """colat/loss.py on the (K·N, F) edit-major layout: |cos|·temp, mean over positives / mean over negatives."""
  k_count, n_count, _ = f.shape
  out = f.reshape(k_count * n_count, -1)
  out = out / np.linalg.norm(out, axis=1, keepdims=True)
  sim = np.exp(np.abs(out @ out.T) * temp)
  edit = np.repeat(np.arange(k_count), n_count)
  same = edit[:, None] == edit[None, :]
  pos = np.array([sim[r][same[r] & (np.arange(len(out)) != r)].mean() for r in range(len(out))])
  neg = np.array([sim[r][~same[r]].mean() for r in range(len(out))])
  return np.mean(-np.log(pos / neg)), np.mean(pos > neg)


_loss = jax.jit(latentclr.contrastive_loss, static_argnums=(1, 2))
_accuracy = jax.jit(latentclr.contrastive_accuracy, static_argnums=(1, 2))


@pytest.mark.parametrize("shape", [(2, 2, 3), (3, 4, 5), (5, 3, 7)])
@pytest.mark.parametrize("temperature", [0.5, 0.07])
def test_contrastive_loss_matches_numpy(shape, temperature):
  f = np.random.RandomState(sum(shape)).randn(*shape).astype(np.float32)
  np.testing.assert_allclose(_loss(jnp.asarray(f), temperature, "paper"),
                             numpy_paper_loss(f.astype(np.float64), temperature), atol=1e-4, rtol=1e-4)
  upstream, accuracy = numpy_upstream_loss(f.astype(np.float64), temperature)
  np.testing.assert_allclose(_loss(jnp.asarray(f), temperature, "upstream"), upstream,
                             atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(_accuracy(jnp.asarray(f), temperature, "upstream"), accuracy)


def test_contrastive_loss_is_low_for_consistent_edits_and_scale_free():
  rng = np.random.RandomState(0)
  consistent = np.eye(4, 16)[:, None, :] + 0.01 * rng.randn(4, 6, 16)  # edit k always moves features along e_k
  mixed = rng.randn(4, 6, 16)
  for variant in latentclr.VARIANTS:
    low = _loss(jnp.asarray(consistent), 0.5, variant)
    assert low < _loss(jnp.asarray(mixed), 0.5, variant)
    np.testing.assert_allclose(low, _loss(jnp.asarray(consistent * 7.0), 0.5, variant),
                               rtol=1e-5)
  assert _accuracy(jnp.asarray(consistent), 0.5, "paper") == 1.0


@pytest.mark.parametrize("shape,variant,message", [
    ((1, 4, 3), "paper", "K=1"), ((3, 1, 3), "paper", "N=1"), ((3, 4), "paper", r"\(K edits"),
    ((3, 4, 3), "simclr", "variant='simclr'")])
def test_contrastive_loss_rejects_bad_input(shape, variant, message):
  with pytest.raises(ValueError, match=message):
    latentclr.contrastive_loss(jnp.ones(shape), 0.5, variant)


# ---------------------------------------------------------------------------------------------------------------
# Direction models.

def _numpy_mlp(nets, z):
  """Per-direction Linear → [BatchNorm (batch statistics) → ReLU → Linear] × 2, last Linear bias-free."""
  out = []
  for k in range(nets["linear_0"]["kernel"].shape[0]):
    x = z @ nets["linear_0"]["kernel"][k] + nets["linear_0"]["bias"][k]
    for i in (1, 2):
      bn = nets[f"batchnorm_{i}"]
      x = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * bn["scale"][k] + bn["bias"][k]
      x = np.maximum(x, 0.0) @ nets[f"linear_{i}"]["kernel"][k]
      if "bias" in nets[f"linear_{i}"]:
        x = x + nets[f"linear_{i}"]["bias"][k]
    out.append(x)
  return np.stack(out)


@pytest.mark.parametrize("kind", models.KINDS)
def test_direction_models_against_numpy(kind):
  model = models.make_model(kind, num_directions=3, dim=8)
  variables = jax.jit(models.init_variables, static_argnums=0)(model, jax.random.key(0))
  params = jax.tree.map(np.asarray, variables["params"])
  z = np.random.RandomState(1).randn(16, 8).astype(np.float32)
  directions, updates = jax.jit(models.apply_directions, static_argnums=0, static_argnames="train")(
      model, variables, jnp.asarray(z), train=True)
  if kind == "global":
    raw = np.broadcast_to(params["directions"][:, None, :], (3, 16, 8))
    np.testing.assert_allclose(models.global_matrix(variables), (raw[:, 0] / np.linalg.norm(raw[:, 0], axis=-1,
                                                                                           keepdims=True)).T,
                               atol=1e-5)
  elif kind == "linear":
    raw = np.einsum("nd,kde->kne", z, params["kernel"])
  else:
    raw = _numpy_mlp(params["nets"], z.astype(np.float64))
    assert set(params["nets"]["linear_2"]) == {"kernel"}  # the last layer is bias-free
    stats = updates["batch_stats"]["nets"]["batchnorm_1"]
    first = z @ params["nets"]["linear_0"]["kernel"] + params["nets"]["linear_0"]["bias"][:, None, :]
    np.testing.assert_allclose(stats["mean"], 0.1 * first.mean(1), atol=1e-5)  # PyTorch momentum 0.1
  # (a sample whose hidden units are all cut by the ReLUs has f = 0: its direction is 0, not NaN)
  unit = raw / np.sqrt(np.sum(np.square(raw), axis=-1, keepdims=True) + 1e-12)
  np.testing.assert_allclose(directions, unit, atol=1e-4, rtol=1e-4)
  alphas = models.sample_alphas(jax.random.key(2), 3, (-3.0, 3.0))
  assert np.all(np.abs(alphas) <= 3.0) and len(set(np.asarray(alphas).tolist())) == 3
  np.testing.assert_array_equal(models.sample_alphas(jax.random.key(2), 3, (1.5, 1.5)), [1.5] * 3)
  np.testing.assert_allclose(models.edit(jnp.asarray(z), directions, alphas),
                             z[None] + np.asarray(alphas)[:, None, None] * np.asarray(directions), atol=1e-6)


def test_direction_model_errors():
  with pytest.raises(ValueError, match="at least 2 directions"):
    models.make_model("global", 1, 8)
  with pytest.raises(ValueError, match="kind='affine'"):
    models.init_variables(models.make_model("affine", 2, 8), jax.random.key(0))
  with pytest.raises(ValueError, match="lower bound"):
    models.sample_alphas(jax.random.key(0), 2, (1.0, -1.0))


# ---------------------------------------------------------------------------------------------------------------
# Training runs.

def _load_config(name, variant=""):
  return cli.load_config(str(REPO / "configs" / f"{name}.py") + variant)


def _tiny(config, generator, **overrides):
  config.generator = str(fixture_path(generator))
  config.update(dict(steps=2, batch_size=8, num_directions=3, log_every=1, checkpoint_every=1, image_every=2,
                     progress_bar=False))
  config.traversal.num_samples = 1
  config.traversal.steps = 3
  for key, value in overrides.items():
    section, _, leaf = key.rpartition(".")
    (config[section] if section else config)[leaf] = value
  return config


@pytest.mark.parametrize("kind,space,layers,feature_layer,resume", [
    ("global", "z", "all", "conv1", False),
    pytest.param("nonlinear", "w", "1-2", "convs.1", True, marks=pytest.mark.slow),   # 34 s (2026-12-01)
    pytest.param("linear", "w", "all", "mod__convs.0", True, marks=pytest.mark.slow),
])
def test_sharded_steps_on_stylegan2_fixture(tmp_path, kind, space, layers, feature_layer, resume):
  config = _tiny(_load_config("latentclr_ffhq"), STYLEGAN2, space=space, layers=layers,
                 feature_layer=feature_layer, image_every=2 if resume else 0, **{"model.kind": kind})
  outputs = latentclr.train(config, str(tmp_path))
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["step"] == 2 and results["space"] == ("w+" if layers != "all" else space)
  assert results["sampling"] == {"truncation": 0.7}
  assert (tmp_path / "images" / "traversal.png").stat().st_size > 0
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  model, variables = latentclr.load_model(str(tmp_path))
  latents = jax.random.normal(jax.random.key(0), (4, model.dim))
  per_sample = latentclr.per_sample_directions(model, variables, latents)
  assert per_sample.shape == (3, 4, model.dim) and np.all(np.isfinite(per_sample))
  if kind == "global":
    directions = Directions.load(outputs["directions"])
    assert directions.space == space and directions.matrix.shape == (64, 3)
    np.testing.assert_allclose(per_sample[:, 0].T, directions.matrix, atol=1e-6)
  else:
    assert "directions" not in outputs
  if not resume:
    return
  # Resume: two more steps continue from the saved state.
  config.steps = 4
  latentclr.train(config, str(tmp_path))
  assert json.loads((tmp_path / "results.json").read_text())["step"] == 4


def test_bad_settings_give_clear_errors(tmp_path):
  from ganlatent_jax import generators, parallel
  gen = generators.load(str(fixture_path(STYLEGAN2)))
  cases = [({"space": "z", "layers": "1-2"}, "needs config.space='w'"),
           ({"layers": "1,3"}, "contiguous"),
           ({"layers": "2-4", "feature_layer": "conv1"}, "only sees W\\+ slots 0..0"),
           ({"feature_layer": "layers.0"}, "not a feature tap"),
           ({"space": "w+"}, "config.space='w\\+'")]
  for overrides, message in cases:
    config = _tiny(_load_config("latentclr_ffhq"), STYLEGAN2, **overrides)
    with pytest.raises(ValueError, match=message):
      latentclr.make_target(config, gen)
  for overrides, message in [({"loss.variant": "nce"}, "variant='nce'"),
                             ({"num_directions": 1}, "config.num_directions=1 and config.batch_size=8 must be >= 2"),
                             ({"batch_size": 0}, "config.batch_size=0 must be a positive integer"),
                             ({"log_every": 0}, "config.log_every=0 must be a positive integer"),
                             ({"steps": -1}, "config.steps=-1 must be >= 0"),
                             ({"optimizer.learning_rate": -1e-3}, "config.optimizer.learning_rate=-0.001 must be > 0"),
                             ({"evaluation.enabled": True}, "needs config.model.kind='global'")]:
    with pytest.raises(ValueError, match=message):
      latentclr.make(_tiny(_load_config("latentclr_ffhq"), STYLEGAN2, **overrides), sampling.make_sampler(gen),
                     parallel.make_mesh())


@pytest.mark.slow
def test_biggan_config_on_fixture(tmp_path):
  config = _load_config("latentclr_imagenet")
  config = _tiny(config, BIGGAN, feature_layer="layers.1", image_every=0, **{"model.kind": "linear"})
  latentclr.train(config, str(tmp_path))
  assert (tmp_path / "images" / "traversal.png").exists() and (tmp_path / "model.msgpack").exists()
  assert json.loads((tmp_path / "results.json").read_text())["sampling"] == {"classes": [207], "truncation": 0.4}


@pytest.mark.slow   # ~90 s: the encoder protocol three times (LatentCLR's, SeFa's and GANSpace's directions)
def test_3dshapes_config_on_stylegan2_fixture(tmp_path):
  """The testbed config's whole path (global model, encoder-protocol metrics for LatentCLR and SeFa, comparison
  sheet) on the 32×32 StyleGAN2 fixture against 32×32 procedural 3DShapes, with tiny budgets."""
  config = _tiny(_load_config("latentclr_3dshapes", ":quick"), STYLEGAN2, checkpoint_every=2, image_every=0)
  config.evaluation.dataset.resolution = 32
  latentclr.train(config, str(tmp_path))
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  for name in ("latentclr", "sefa", "ganspace"):
    assert 0.0 <= metrics[name]["mig"] <= 1.0
    assert 0.0 <= metrics[name]["factor_vae_eval_accuracy"] <= 1.0
  for png in ("traversal.png", "traversal_comparison.png"):
    assert (tmp_path / "images" / png).stat().st_size > 0
  assert Directions.load(tmp_path / "directions.npz").num_directions == 3
  assert latentclr.evaluate(config, str(tmp_path))["latentclr"]["mig"] == metrics["latentclr"]["mig"]


def test_training_ignores_w_truncation_as_upstream(tmp_path):
  """Upstream computes the training features with `partial_forward`, which never truncates W (ψ enters only its
  pictures): a run with ψ = 0.7 takes the same steps as an untruncated one."""
  def first_steps(truncation, workdir):
    config = _tiny(_load_config("latentclr_ffhq"), STYLEGAN2, space="w", image_every=0, truncation=truncation,
                   **{"model.kind": "global"})
    latentclr.train(config, str(workdir))
    return Directions.load(str(workdir / "directions.npz")).matrix, latentclr.load_model(str(workdir))[1]
  truncated, untruncated = first_steps(0.7, tmp_path / "psi"), first_steps(None, tmp_path / "none")
  np.testing.assert_allclose(truncated[0], untruncated[0], rtol=1e-6, atol=1e-7)
  sampler = types.SimpleNamespace(conditional=True, truncation=0.4)   # BigGAN's noise truncation stays
  assert latentclr.training_sampler(sampler) is sampler


def test_similarity_summary_against_loops():
  rng = np.random.RandomState(0)
  d = rng.randn(3, 4, 5)
  u = d / np.linalg.norm(d, axis=-1, keepdims=True)
  pos = np.mean([u[k, i] @ u[k, j] for k in range(3) for i in range(4) for j in range(4) if i != j])
  neg = np.mean([abs(u[k, i] @ u[l, j]) for k in range(3) for l in range(3) if k != l for i in range(4)
                 for j in range(4)])
  np.testing.assert_allclose(similarity_summary(d), (pos, neg), rtol=1e-12)
  # Each edit the same effect on every sample, edits orthogonal: the solved task's limit.
  solved = np.repeat(np.eye(3, 5)[:, None, :], 4, axis=1) * rng.uniform(0.5, 2.0, (3, 4, 1))
  np.testing.assert_allclose(similarity_summary(solved), (1.0, 0.0), atol=1e-12)


@pytest.mark.parametrize("steps", [0, 2])
def test_results_say_how_hard_the_contrastive_task_is(tmp_path, steps):
  config = _tiny(_load_config("latentclr_ffhq"), STYLEGAN2, space="w", image_every=0, steps=steps,
                 **{"model.kind": "global"})
  latentclr.train(config, str(tmp_path))
  task = json.loads((tmp_path / "results.json").read_text())["contrastive_task"]
  assert task["num_samples"] == latentclr.TASK_SAMPLES
  for name in ("trained", "initial", "random"):
    assert 0.0 <= task[name]["accuracy"] <= 1.0 and 0.0 <= task[name]["negative_abs_cos"] <= 1.0, task
    assert -1.0 <= task[name]["positive_cos"] <= 1.0 and np.isfinite(task[name]["loss"])
  assert task["random"] != task["initial"]   # a fresh draw, not the run's init
  if steps == 0:   # nothing trained: the trained directions are the initial ones
    assert task["trained"] == task["initial"] and task["mean_abs_cos_to_initial"] == pytest.approx(1.0, abs=1e-6)
  else:
    assert task["trained"] != task["initial"] and 0.0 < task["mean_abs_cos_to_initial"] < 1.0


def test_the_task_check_of_a_finished_run_equals_the_one_training_recorded(tmp_path):
  """launch/latentclr_task.py's path for runs that predate the check: restored from the checkpoint, the same numbers."""
  config = _tiny(_load_config("latentclr_ffhq"), STYLEGAN2, space="w", image_every=0, **{"model.kind": "global"})
  latentclr.train(config, str(tmp_path))
  results = json.loads((tmp_path / "results.json").read_text())
  recorded = results.pop("contrastive_task")
  (tmp_path / "results.json").write_text(json.dumps(results))
  from ganlatent_jax import testbeds
  task = latentclr.contrastive_task_of_run(testbeds.run_config(str(tmp_path)), str(tmp_path))
  assert json.loads((tmp_path / "results.json").read_text())["contrastive_task"] == task
  for name in ("trained", "initial", "random"):
    for key, value in recorded[name].items():
      assert task[name][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, key)
  assert task["mean_abs_cos_to_initial"] == pytest.approx(recorded["mean_abs_cos_to_initial"], rel=1e-6)
  import importlib.util
  spec = importlib.util.spec_from_file_location("latentclr_task", REPO / "launch" / "latentclr_task.py")
  launcher = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(launcher)
  lines = launcher.table({"run": task}).splitlines()
  assert len(lines) == 2 + 3 and lines[-1].startswith("| run | trained | ") and lines[-1].endswith(
      f"| {task['mean_abs_cos_to_initial']:.3f} |")


def test_the_task_check_at_step_zero_over_taps(capsys):
  import importlib.util
  spec = importlib.util.spec_from_file_location("latentclr_task", REPO / "launch" / "latentclr_task.py")
  launcher = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(launcher)
  config = str(REPO / "configs" / "latentclr_3dshapes.py")
  assert launcher.main([f"--config={config}", "--taps=conv1"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert [line.split(" | ")[:2] for line in lines[2:]] == [["| conv1", "initial"], ["| conv1", "random"]]
  with pytest.raises(SystemExit):
    launcher.main([f"--config={config}"])   # --config without --taps


def test_training_is_bit_reproducible_across_runs_and_a_resume(tmp_path):
  # Two oracle runs of one seed (2026-12-04) gave different LatentCLR directions; a rerun and a resume must not.
  def model_bytes(workdir, steps):
    config = _tiny(_load_config("latentclr_ffhq"), STYLEGAN2, steps=steps, checkpoint_every=2, image_every=0)
    config.evaluation.enabled = False
    latentclr.train(config, str(workdir))
    return (workdir / "model.msgpack").read_bytes()

  straight = model_bytes(tmp_path / "straight", 4)
  model_bytes(tmp_path / "resumed", 2)   # a second run of the same seed, stopped at step 2 …
  assert model_bytes(tmp_path / "resumed", 4) == straight   # … and resumed to step 4
