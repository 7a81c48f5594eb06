"""methods/plumerault on the dSprites testbed: the quick config end to end through the CLI, resume from chunk files,
the upstream_parity switch and config checks."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from ganlatent_jax import cli, inversion
from ganlatent_jax.directions import Directions, continuous
from ganlatent_jax.methods import plumerault

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "plumerault_dsprites.py")


def quick_config(**overrides):
  config = cli.load_config(CONFIG + ":quick")
  for key, value in overrides.items():
    section, _, leaf = key.rpartition(".")
    target = config
    for part in filter(None, section.split(".")):
      target = target[part]
    target[leaf] = value
  return config


@pytest.mark.slow   # ≈ 1 min of CPU: two quick runs (a subprocess through main, then the resume in-process)
def test_the_quick_config_runs_through_main_and_resumes(tmp_path):
  workdir = tmp_path / "run"
  command = [sys.executable, "-m", "ganlatent_jax.main", f"--config={CONFIG}:quick", f"--workdir={workdir}"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  subprocess.run(command, check=True, env=env, cwd=REPO, capture_output=True, timeout=900)
  for name in ("directions.npz", "results.json", "metrics.json", "images/traversal.png",
               "images/g_horizontal_position.png", "images/set_horizontal_position.png",
               "images/density_horizontal_position.png", "trajectories/horizontal_position.npz"):
    assert (workdir / name).exists(), name
  metrics = json.loads((workdir / "metrics.json").read_text())
  checks = metrics["model_checks"]["horizontal_position"]
  assert set(checks) >= {"density", "resampling", "g_consistency", "g_consistency_pixels", "w1_pixels", "offset"}
  assert checks["density"]["num_valid"] == 16 and np.isfinite(checks["g_consistency"])
  control = metrics["control"]
  assert set(control) == {"directions", "probe", "random"}
  for row in control.values():
    assert set(row["horizontal_position"]["summary"]) == {"core", "full"}
    assert row["horizontal_position"]["column"] == 0
  found = Directions.load(workdir / "directions.npz")
  assert found.matrix.shape == (16, 1) and found.meta["transforms"] == ["horizontal_position"]
  model = continuous.from_directions(found)
  assert model.kind == "lattice" and np.all(np.diff(model.g(np.linspace(-3, 3, 61))) >= 0)
  merged = dict(np.load(workdir / "trajectories" / "horizontal_position.npz"))
  assert len(merged["t"]) == 8 * 2 * 2 and merged["kept"].sum() == (9 * 32) // 10
  np.testing.assert_allclose(np.abs(merged["t"]), np.tile([5 / 64, 10 / 64], 16))  # whole pixels of 64

  # Resume: a lost chunk is regenerated, the surviving one is not touched, and the results are the same.
  chunks = sorted((workdir / "trajectories" / "horizontal_position").glob("chunk_*.npz"))
  assert len(chunks) == 2
  kept_mtime = chunks[0].stat().st_mtime_ns
  chunks[1].unlink()
  plumerault.train(quick_config(), str(workdir))
  assert chunks[0].stat().st_mtime_ns == kept_mtime and chunks[1].exists()
  again = dict(np.load(workdir / "trajectories" / "horizontal_position.npz"))
  for key in merged:
    np.testing.assert_allclose(again[key], merged[key], rtol=1e-6, atol=1e-7, err_msg=key)
  np.testing.assert_allclose(Directions.load(workdir / "directions.npz").matrix, found.matrix, atol=1e-6)


def test_upstream_parity_switches_the_upstream_settings():
  config = quick_config(upstream_parity=True)
  settings = plumerault.inversion_settings(config, 64)
  assert (settings.kernel, settings.mask_mode, settings.adam_eps, settings.error_at, settings.reduction) == (
      "upstream", "after_blur", 1e-7, "last_step", "mean")
  fit = plumerault.fit_settings(config)
  assert (fit.mode, fit.init) == ("upstream", "random")
  default = plumerault.inversion_settings(quick_config(), 64)
  assert (default.kernel, default.mask_mode, default.sigma) == ("gaussian", "both", 1.5)
  records = {"t": np.array([0.1, -0.1]), "t_realized": np.array([0.09375, -0.09375])}
  np.testing.assert_allclose(plumerault.labels(config, "scale", records), [0.1, -0.1])
  np.testing.assert_allclose(plumerault.labels(quick_config(), "scale", records), np.log1p([0.09375, -0.09375]))


@pytest.mark.parametrize("key, value, message", [
    ("transforms", ("shear",), "config.transforms"),
    ("space", "w", "config.space"),
    ("trajectories.label", "exact", "config.trajectories.label"),
    ("trajectories.num_trajectories", 6, "not a multiple"),
    ("evaluation.metrics", ("mig",), "config.evaluation.metrics"),
    ("trajectories.scheme", "naive", "config.trajectories.scheme"),
    ("trajectories.loss", "l1", "config.trajectories.loss"),
    ("trajectories.constraint", "box", "config.trajectories.constraint"),
    ("evaluation.estimators.horizontal_position", "saliency", "config.evaluation.estimators.horizontal_position"),
])
def test_bad_config_values_are_named(key, value, message):
  with pytest.raises(ValueError, match=message):
    config = quick_config(**{key: value})
    plumerault.check_config(config)
    plumerault._control.check_section(plumerault.control_section(config), "config.evaluation")


def test_ablation_switches_reach_the_inversion():
  """Figs. 6/7: the MSE is the blurred loss at σ = 0; no constraint is an infinite radius."""
  assert plumerault.inversion_settings(quick_config(**{"trajectories.loss": "mse"}), 64).sigma == 0.0
  assert plumerault.ball_radius(quick_config(), 16) == 4.0
  assert plumerault.ball_radius(quick_config(**{"trajectories.constraint": "none"}), 16) == float("inf")
  # BigGAN's truncated noise ψ·truncnorm(−2, 2): E|x|² per dimension 0.7737
  np.testing.assert_allclose(plumerault.ball_radius(quick_config(), 128, conditional=True, truncation=0.4),
                             0.4 * np.sqrt(0.7737 * 128))


def test_translation_schedules_are_whole_distinct_pixels():
  config = quick_config(**{"trajectories.num_steps": 5})
  np.testing.assert_allclose(plumerault.magnitudes(config, "horizontal_position", 64), np.arange(2, 11, 2) / 64)
  with pytest.raises(ValueError, match="repeated whole-pixel"):
    plumerault.magnitudes(quick_config(**{"trajectories.num_steps": 5, "trajectories.t_max.horizontal_position":
                                          2 / 64}), "horizontal_position", 64)
  assert set(quick_config().trajectories.t_max) >= set(inversion.TRANSFORMS)


def _square_sprite(size=64, height=32, width=32, side=12):
  """A white square on black in [-1, 1], centred at (height, width) (pixel units), as (1, size, size, 1)."""
  image = -np.ones((1, size, size, 1), np.float32)
  top, left = height - side // 2, width - side // 2
  image[0, top:top + side, left:left + side] = 1.0
  return image


@pytest.mark.parametrize("transform, spec, t", [
    ("horizontal_position", "sprite:x", 7 / 64), ("horizontal_position", "sprite:x", -10 / 64),
    ("vertical_position", "sprite:y", 5 / 64), ("scale", "sprite:scale", 0.25), ("scale", "sprite:scale", -0.2)])
def test_measured_change_puts_the_estimator_in_the_labels_units(transform, spec, t):
  """A known transformation of a sprite, measured by its estimator and converted, equals the run's label of it."""
  image = _square_sprite()
  moved, _, realized = inversion.transform(transform, image, t, fill=-1.0)   # black where nothing was
  estimate = plumerault._control.make_estimator([spec], (-1.0, 1.0))
  before, after = float(estimate(image)[0, 0]), float(estimate(np.asarray(moved))[0, 0])
  label = plumerault.labels(quick_config(), transform, {"t": np.asarray(t), "t_realized": np.asarray(realized)})
  change = plumerault.measured_change(transform, spec, "realized", image.shape[1:])
  # Translations are exact (whole pixels). A bilinear zoom keeps partial edge pixels: √area of a 12-px square follows
  # log(1 + t) to 2% when zooming in, 7% when zooming out by 0.8 (measured) — a bias the scale checks inherit.
  tolerance = 1e-6 if transform != "scale" else 0.08 * abs(float(label[0]))
  np.testing.assert_allclose(change(after, before), label, atol=tolerance)
  if transform != "scale":
    assert plumerault.pixels_per_label(transform, image.shape[1:]) * float(label[0]) == pytest.approx(round(t * 64))


def test_measured_change_is_none_without_a_known_conversion():
  assert plumerault.measured_change("scale", "classifier:scale", "realized", (64, 64, 1)) is None
  assert plumerault.measured_change("brightness", "intensity", "realized", (64, 64, 1)) is None
  nominal = plumerault.measured_change("scale", "sprite:scale", "nominal", (64, 64, 1))
  assert nominal(np.array([1.5]), 1.0)[0] == pytest.approx(0.5)


def test_model_checks_are_refused_with_too_few_draws():
  with pytest.raises(ValueError, match="model_checks.num_samples"):
    plumerault.check_config(quick_config(**{"evaluation.model_checks.num_samples": 4}))
