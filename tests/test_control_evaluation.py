"""methods/_control: per-factor selection and scoring of a direction set, with probe and random rows, on a
synthetic generator whose answer is known (a blob whose column is set by <z, U> and row by <z, V>)."""
import pathlib

import jax
import numpy as np
import pytest

from ganlatent_jax.directions import Directions
from ganlatent_jax.methods import _control
from test_metrics_control import LATENT_DIM, U, V, blob_generator

REPO = pathlib.Path(__file__).resolve().parents[1]
SECTION = dict(estimators={"horizontal_position": "sprite:x", "vertical_position": "sprite:y"},
               side_effects=("sprite:x", "sprite:y", "sprite:scale"), t_max=3.0, num_t=3, core_t_max=1.0,
               num_latents=30, num_selection_latents=20, batch_size=64, references=("probe", "random"),
               probe_samples=60, num_random=0)


def prior(rng, num):
  """N(0, I) draws from the key's bits, in numpy (a jitted normal per shape would cost compilations only)."""
  seed = int(np.asarray(jax.random.key_data(rng)).sum() % 2 ** 31)
  return np.random.RandomState(seed).normal(size=(num, LATENT_DIM)).astype(np.float32)


def estimator(specs):
  return _control.make_estimator(specs, (0.0, 1.0))


def test_each_factor_gets_its_column_and_the_references_bracket_it():
  third = np.linalg.qr(np.stack([U, V, np.ones(LATENT_DIM)], 1))[0][:, 2]
  found = Directions(np.stack([third, V, U], axis=1), "z")
  rows = _control.score_directions(SECTION, blob_generator, prior, found, jax.random.key(0), estimator)
  x, y = rows["directions"]["horizontal_position"], rows["directions"]["vertical_position"]
  assert x["column"] == 2 and y["column"] == 1
  assert x["summary"]["core"]["rel_std"] < 1e-3
  # y does not move along U; the blob's sampled area wobbles by discretisation only (a negligible gain).
  assert x["side_effects"]["sprite:y"]["core"]["abs_spearman"] == 0.0 and x["side_effect_abs_gain"] < 0.05
  assert set(x["side_effects"]) == {"sprite:y", "sprite:scale"}
  # The probe is fitted on measured values: it finds U (x) up to sampling noise; random is the best of 3 by chance.
  assert rows["probe"]["horizontal_position"]["summary"]["core"]["rel_std"] < 0.1
  assert rows["random"]["horizontal_position"]["summary"]["core"]["rel_std"] > 0.2
  assert len(rows["random"]["horizontal_position"]["selection_rel_std"]) == 3


def test_fixed_columns_score_only_the_named_factors():
  found = Directions(np.stack([U, V], axis=1), "z")
  rows = _control.score_directions(dict(SECTION, references=()), blob_generator, prior, found, jax.random.key(0),
                                   estimator, columns={"vertical_position": 1})
  assert list(rows) == ["directions"] and list(rows["directions"]) == ["vertical_position"]
  assert rows["directions"]["vertical_position"]["column"] == 1
  assert "selection_rel_std" not in rows["directions"]["vertical_position"]


def test_w_directions_are_refused():
  with pytest.raises(ValueError, match="live in 'w'"):
    _control.score_directions(SECTION, blob_generator, prior, Directions(np.eye(LATENT_DIM)[:, :1], "w"),
                              jax.random.key(0), estimator)


@pytest.mark.parametrize("spec", ["sprite:z", "saliency", "intensity:x", "classifier:"])
def test_bad_estimators_are_named(spec):
  with pytest.raises(ValueError, match="estimators.horizontal_position"):
    _control.check_section(dict(SECTION, estimators={"horizontal_position": spec}), "config.evaluation")


def test_intensity_estimator_is_the_mean_intensity():
  images = np.random.RandomState(0).uniform(-1, 1, size=(3, 4, 4, 3))
  got = _control.make_estimator(["intensity", "sprite:area"], (-1.0, 1.0))(images)
  np.testing.assert_allclose(got[:, 0], ((images.mean(-1) + 1) / 2).mean(axis=(1, 2)))
  np.testing.assert_allclose(got[:, 0], got[:, 1])   # the area statistic is the same mean of the intensity map


@pytest.mark.slow   # ≈ 15 s idle: the testbed's compilations per batch shape
def test_evaluate_scores_a_directions_file_on_the_dsprites_testbed(tmp_path):
  from ganlatent_jax import cli
  from ganlatent_jax import evaluate as evaluate_lib
  path = tmp_path / "directions.npz"
  Directions(np.eye(16, dtype=np.float32)[:, :2], "z").save(path)
  config = cli.load_config(str(REPO / "configs" / "evaluate_control_dsprites.py") + ":quick")
  config.directions = str(path)
  metrics = evaluate_lib.evaluate(config, str(tmp_path / "run"))
  control = metrics["control"]
  assert set(control) == {"directions", "probe", "random", "directions_file"}
  row = control["directions"]["horizontal_position"]
  assert row["column"] in (0, 1) and len(row["selection_rel_std"]) == 2
  assert set(row["summary"]) == {"core", "full"} and np.isfinite(row["summary"]["core"]["rel_std"])
  assert (tmp_path / "run" / "metrics.json").exists()


def test_the_probe_needs_more_measured_images_than_dimensions():
  latents = np.random.RandomState(0).normal(size=(LATENT_DIM, LATENT_DIM)).astype(np.float32)
  with pytest.raises(ValueError, match="more measured images than latent dimensions"):
    _control.probe_matrix(blob_generator, latents, estimator(["sprite:x"]), 64)
