"""directions.continuous (Plumerault et al., Eqs. 6–11): the lattice g against its direct sum, the fits on synthetic
records with a known direction and g, the density of t under the prior and controlled sampling (KS tests)."""
import math

import numpy as np
import pytest
from scipy import special, stats

from ganlatent_jax.directions import Directions, continuous

DIM = 16


def unit(seed, dim=DIM):
  v = np.random.RandomState(seed).normal(size=dim)
  return v / np.linalg.norm(v)


def records(g_true, u_true, count=2048, noise=1e-4, seed=0):
  """Synthetic trajectory records: z0, z1 ~ N(0, I), δt = g*(⟨u*, z1⟩) − g*(⟨u*, z0⟩) + noise."""
  rng = np.random.RandomState(seed)
  z0, z1 = rng.normal(size=(2, count, DIM))
  return z0, z1, g_true(z1 @ u_true) - g_true(z0 @ u_true) + noise * rng.normal(size=count)


def erf_g(s):
  return 0.28 * special.erf(s / math.sqrt(2))


def direct_lattice_sum(theta, s, low=-5.0, high=5.0):
  points = np.linspace(low, high, len(theta))
  half = (points[1] - points[0]) / 2
  total = np.zeros_like(s)
  for k, point in enumerate(points):
    total += theta[k] * np.clip(s - point, -half, half)
  return total


def lattice_model(seed=0, zeros=0):
  theta = np.random.RandomState(seed).uniform(0.0, 0.2, size=101)
  theta[40:40 + zeros] = 0.0  # flat pieces
  return continuous.ContinuousDirection(u=unit(seed), kind="lattice", params={"theta": theta, "low": -5.0, "high": 5.0})


# ---------------------------------------------------------------------------------------------------------------
# g.


def test_the_unit_lattice_is_the_identity_inside_and_flat_outside():
  s = np.linspace(-7, 7, 141)
  g = continuous.lattice_g(np.ones(101), s)
  inside = np.abs(s) <= 5.05
  np.testing.assert_allclose(g[inside], s[inside], atol=1e-12)
  np.testing.assert_allclose(g[~inside], np.sign(s[~inside]) * 5.05, atol=1e-12)


def test_a_random_lattice_matches_the_direct_sum_and_is_non_decreasing():
  theta = np.random.RandomState(1).uniform(0, 1, size=101)
  s = np.linspace(-6, 6, 1201)
  g = continuous.lattice_g(theta, s)
  np.testing.assert_allclose(g, direct_lattice_sum(theta, s), atol=1e-12)
  assert np.all(np.diff(g) >= 0)


def test_the_reported_g_vanishes_at_zero_and_inverts():
  for model in (lattice_model(zeros=5), continuous.ContinuousDirection(unit(1), "erf", {"amplitude": 0.3}),
                continuous.ContinuousDirection(unit(2), "linear", {"slope": 0.7}, input_scale=2.0)):
    assert model.g(0.0) == 0.0
    s = np.linspace(-3, 3, 61)
    t = model.g(s)
    np.testing.assert_allclose(model.g(model.g_inverse(t)), t, atol=1e-9)


def test_g_inverse_takes_the_left_end_of_a_flat_piece_and_the_range_ends_are_infinite():
  model = lattice_model(zeros=10)  # θ_40..θ_49 = 0: flat on x ∈ [−1.05, −0.05]
  knots, values = model._knots()
  flat_value = values[45]
  np.testing.assert_allclose(model.g_inverse(flat_value), knots[40], atol=1e-9)
  np.testing.assert_allclose(model.g_inverse(flat_value, side="right"), knots[50], atol=1e-9)
  low, high = model.range()
  assert model.g_inverse(low - 1) == -np.inf and model.g_inverse(high + 1) == np.inf
  assert model.cdf(high) == 1.0 and model.cdf(low - 1e-9) == 0.0


def test_invalid_models_are_refused():
  with pytest.raises(ValueError, match="non-negative"):
    continuous.ContinuousDirection(unit(0), "lattice", {"theta": -np.ones(11), "low": -5.0, "high": 5.0})
  with pytest.raises(ValueError, match="unit vector"):
    continuous.ContinuousDirection(2 * unit(0), "linear", {"slope": 1.0})
  with pytest.raises(ValueError, match="missing"):
    continuous.ContinuousDirection(unit(0), "erf", {})


# ---------------------------------------------------------------------------------------------------------------
# Fits.


def test_the_linear_fit_equals_least_squares():
  u_true = unit(3)
  z0, z1, dt = records(lambda s: 0.4 * s + 0.05 * np.sin(3 * s), u_true, count=500, noise=0.01)
  model = continuous.fit_linear(z0, z1, dt, ridge=0.0)
  w, *_ = np.linalg.lstsq(z1 - z0, dt, rcond=None)
  np.testing.assert_allclose(model.params["slope"] * model.u, w, rtol=1e-8, atol=1e-10)
  fitted, history = continuous.fit(z0, z1, dt, continuous.FitSettings(kind="linear", ridge=0.0))
  np.testing.assert_allclose(fitted.u, model.u)
  assert len(history) == 0
  assert abs(abs(model.u @ u_true) - 1) < 1e-3


def test_the_lattice_fit_recovers_direction_and_g_in_paper_mode_and_stays_monotone():
  u_true = unit(4)
  z0, z1, dt = records(erf_g, u_true)
  model, history = continuous.fit(z0, z1, dt, continuous.FitSettings(kind="lattice", epochs=30), seed=0)
  assert history[-1] < 0.2 * history[0]
  assert abs(model.u @ u_true) >= 0.99
  s = np.linspace(-2, 2, 81)
  sign = np.sign(model.u @ u_true)
  assert np.max(np.abs(model.g(sign * s) * sign - erf_g(s))) <= 0.005  # the linear start is 0.05 off
  assert np.all(model.params["theta"] >= 0) and np.all(np.diff(model.g(np.linspace(-6, 6, 1201))) >= 0)


def test_the_lattice_is_monotone_after_training_on_a_non_monotone_factor():
  z0, z1, dt = records(lambda s: np.sin(2 * s), unit(5), count=512)
  settings = continuous.FitSettings(kind="lattice", epochs=20, learning_rate=1e-2, init="random")
  model, _ = continuous.fit(z0, z1, dt, settings, seed=1)
  assert np.all(model.params["theta"] >= 0)
  assert np.all(np.diff(model.g(np.linspace(-6, 6, 1201))) >= 0)
  assert np.any(model.params["theta"] == 0)  # the projection was active: the data wanted decreasing pieces


def test_upstream_mode_keeps_the_input_scale_of_its_free_vector():
  u_true = unit(6)
  z0, z1, dt = records(erf_g, u_true)
  settings = continuous.FitSettings(kind="lattice", mode="upstream", epochs=30, init="random")
  model, history = continuous.fit(z0, z1, dt, settings, seed=2)
  assert abs(model.u @ u_true) >= 0.99
  assert model.input_scale != 1.0
  # g acts on input_scale·⟨u, z⟩, so predictions use the unit direction and stay consistent with the data.
  assert np.mean((model.delta(z0, z1) - dt) ** 2) < 0.1 * np.var(dt)


def test_the_erf_fit_recovers_the_amplitude():
  u_true = unit(7)
  z0, z1, dt = records(erf_g, u_true)
  model, _ = continuous.fit(z0, z1, dt, continuous.FitSettings(kind="erf", epochs=20, learning_rate=1e-2))
  assert abs(model.u @ u_true) >= 0.99
  assert abs(model.params["amplitude"] / 0.28 - 1) < 0.05


def test_bad_records_are_named():
  z = np.zeros((10, DIM))
  with pytest.raises(ValueError, match="records must be"):
    continuous.fit_linear(z, z, np.zeros(9))
  with pytest.raises(ValueError, match="non-finite"):
    continuous.fit_linear(z, z, np.full(10, np.nan))
  with pytest.raises(ValueError, match="fewer than one batch"):
    continuous.fit(np.random.normal(size=(10, DIM)), np.random.normal(size=(10, DIM)), np.ones(10))


# ---------------------------------------------------------------------------------------------------------------
# Eq. 9 and Eqs. 10–11.


def test_the_density_of_a_linear_g_is_gaussian():
  model = continuous.ContinuousDirection(unit(0), "linear", {"slope": 0.5}, input_scale=1.0)
  t = np.linspace(-2, 2, 41)
  np.testing.assert_allclose(model.density(t), stats.norm(0, 0.5).pdf(t), rtol=1e-10)


def test_the_density_of_the_paper_erf_is_uniform():
  model = continuous.ContinuousDirection(unit(0), "erf", {"amplitude": 0.5})
  t = np.linspace(-0.7, 0.7, 1401)
  uniform = np.where(np.abs(t) < 0.5, 1.0, 0.0)
  density = model.density(t)
  assert np.trapezoid(np.abs(density - uniform), t) < 0.02


def test_a_lattice_density_integrates_to_one_and_matches_its_cdf():
  model = lattice_model(seed=3)
  low, high = model.range()
  t = np.linspace(low, high, 200001)
  assert abs(np.trapezoid(model.density(t), t) - 1) < 1e-3
  samples = model.g(np.random.RandomState(0).normal(size=5000))
  assert stats.kstest(samples, model.cdf).statistic < 0.03


@pytest.mark.parametrize("model", [lattice_model(seed=4, zeros=6),
                                   continuous.ContinuousDirection(unit(5), "erf", {"amplitude": 0.28}),
                                   continuous.ContinuousDirection(unit(6), "linear", {"slope": 0.3})],
                         ids=["lattice", "erf", "linear"])
def test_controlled_sampling_turns_the_prior_into_the_target_distribution(model):
  z = np.random.RandomState(1).normal(size=(5000, DIM))
  target = stats.uniform(-0.2, 0.4)
  before = model.predict(z)
  assert stats.kstest(before, target.cdf).statistic > 0.1  # the prior alone is far from it
  resampled, clipped = model.resample(z, target.ppf, return_clipped=True)
  assert not clipped.any()
  assert stats.kstest(model.predict(resampled), target.cdf).statistic < 0.03
  # Only the component along u changes (Eq. 10).
  rest = lambda a: a - np.outer(a @ model.u, model.u)
  np.testing.assert_allclose(rest(resampled), rest(z), atol=1e-9)


def test_targets_outside_the_range_of_g_are_clipped_and_reported():
  model = continuous.ContinuousDirection(unit(0), "erf", {"amplitude": 0.1})
  z = np.random.RandomState(2).normal(size=(2000, DIM))
  resampled, clipped = model.resample(z, stats.uniform(-0.2, 0.4).ppf, return_clipped=True)
  assert 0.4 < clipped.mean() < 0.6
  assert np.all(np.abs(model.predict(resampled)) <= 0.1)


# ---------------------------------------------------------------------------------------------------------------
# Storage.


def test_a_directions_file_round_trip_keeps_g(tmp_path):
  models = [lattice_model(seed=8, zeros=3), continuous.ContinuousDirection(unit(9), "erf", {"amplitude": 0.2},
                                                                           input_scale=1.7)]
  continuous.stack_directions(models, method="plumerault").save(tmp_path / "d.npz")
  loaded = Directions.load(tmp_path / "d.npz")
  assert loaded.matrix.shape == (DIM, 2) and loaded.meta["method"] == "plumerault"
  s = np.linspace(-4, 4, 33)
  for column, model in enumerate(models):
    restored = continuous.from_directions(loaded, column)
    assert restored.kind == model.kind and restored.input_scale == model.input_scale
    np.testing.assert_allclose(restored.g(s), model.g(s), atol=1e-6)
    np.testing.assert_allclose(restored.u, model.u, atol=1e-6)
  with pytest.raises(ValueError, match="no meta"):
    continuous.from_directions(Directions(np.eye(DIM)[:, :1]))
