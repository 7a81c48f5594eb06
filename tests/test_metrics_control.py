"""Plumerault et al.'s control measure and the rescoring matrix, on synthetic generators with known answers."""
import numpy as np
import pytest

from ganlatent_jax.metrics import control, rescoring

SIZE = 48
LATENT_DIM = 6
PIXELS_PER_UNIT = 3.0  # the blob's column centre moves 3 pixels per unit of <z, u>


def _orthonormal_pair():
  basis, _ = np.linalg.qr(np.random.RandomState(0).normal(size=(LATENT_DIM, 2)))
  return basis[:, 0].astype(np.float32), basis[:, 1].astype(np.float32)


U, V = _orthonormal_pair()


def blob_generator(z):
  """A Gaussian blob (σ = 2 px) on black: column centre 23.5 + 3<z,u>, row centre set by <z,v> (a nuisance)."""
  z = np.asarray(z, dtype=np.float64)
  column = (SIZE - 1) / 2 + PIXELS_PER_UNIT * (z @ U)
  row = (SIZE - 1) / 2 + PIXELS_PER_UNIT * np.clip(z @ V, -3, 3)
  grid = np.arange(SIZE)
  intensity = np.exp(-((grid[None, None, :] - column[:, None, None]) ** 2 +
                       (grid[None, :, None] - row[:, None, None]) ** 2) / (2 * 2.0 ** 2))
  return np.repeat(intensity[..., None], 3, axis=-1).astype(np.float32)


def expected_x(t):
  """Barycentre coordinate (−0.5 at the left pixel centre, +0.5 at the right) of the blob at <z,u> = t."""
  return -0.5 + ((SIZE - 1) / 2 + PIXELS_PER_UNIT * np.asarray(t)) / (SIZE - 1)


def latents(num=40, seed=1):
  return np.random.RandomState(seed).normal(size=(num, LATENT_DIM)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Control measure.


@pytest.mark.parametrize("t", [-5.0, 0.0, 2.5])
def test_edited_latents_replace_the_component_along_the_direction(t):
  z = latents(8)
  edited = control.edited_latents(z, 7.0 * U, t)  # the direction's length does not matter
  np.testing.assert_allclose(edited @ U, t, atol=1e-5)
  np.testing.assert_allclose(edited - np.outer(edited @ U, U), z - np.outer(z @ U, U), atol=1e-5)


def test_the_controlling_direction_sets_x_exactly():
  result = control.control_measure(blob_generator, U, latents(), control.sprite_estimator("x"), batch_size=16)
  np.testing.assert_allclose(result["t"], np.linspace(-5, 5, 11))
  assert result["values"].shape == (11, 40) and result["mean"].shape == (11,)
  np.testing.assert_allclose(result["mean"], expected_x(result["t"]), atol=2e-4)
  assert np.all(result["std"] < 2e-4) and result["mean_std"] < 2e-4
  np.testing.assert_array_equal(result["num_valid"], 40)


def test_a_direction_that_does_not_control_x_leaves_it_spread():
  result = control.control_measure(blob_generator, V, latents(), control.sprite_estimator("x"), num_t=3, t_max=1.0)
  spread_of_x = PIXELS_PER_UNIT / (SIZE - 1)  # <z,u> ~ N(0, 1) is left free by a walk along v
  assert np.all(result["std"] > 0.5 * spread_of_x)
  np.testing.assert_allclose(result["mean"], result["mean"][0], atol=1e-4)  # and its mean does not follow t


def test_several_statistics_and_custom_t_values():
  estimate = control.sprite_estimator(["x", "y", "scale"])
  result = control.control_measure(blob_generator, U, latents(12), estimate, t_values=[-1.0, 3.0])
  assert result["values"].shape == (2, 12, 3) and result["std"].shape == (2, 3) and result["mean_std"].shape == (3,)
  np.testing.assert_allclose(result["mean"][:, 0], expected_x([-1.0, 3.0]), atol=2e-4)
  assert np.all(result["std"][:, 1] > 0.01)  # y is a nuisance of this generator: the walk along u does not fix it
  assert np.all(result["std"][:, 2] < 1e-3)  # the blob's size is constant


def test_failed_measurements_are_left_out():
  def blank_every_other(z):
    images = blob_generator(z)
    images[::2] = 0.0  # nothing drawn: the estimator returns NaN
    return images

  result = control.control_measure(blank_every_other, U, latents(10), control.sprite_estimator("x"), num_t=3,
                                   batch_size=4)
  assert np.isnan(result["values"]).sum() == 3 * 5
  np.testing.assert_array_equal(result["num_valid"], 5)
  np.testing.assert_allclose(result["mean"], expected_x([-5.0, 0.0, 5.0]), atol=2e-4)


def test_sprite_statistics_of_a_square_by_hand():
  images = np.zeros((2, 11, 21, 1), dtype=np.float32)
  images[0, 2:5, 10:13] = 1.0  # 3×3 square centred on row 3, column 11
  stats = control.sprite_statistics(images)
  x, y, area, scale, spread = stats[0]
  assert x == pytest.approx(-0.5 + 11 / 20) and y == pytest.approx(-0.5 + 3 / 10)
  assert area == pytest.approx(9 / (11 * 21)) and scale == pytest.approx(3 / np.sqrt(11 * 21))
  # Per-axis variance of 3 pixels one step apart is 2/3 step²; steps are 1/20 (x) and 1/10 (y).
  assert spread == pytest.approx(np.sqrt(2 / 3 * (1 / 20 ** 2 + 1 / 10 ** 2)))
  assert np.all(np.isnan(stats[1]))  # blank image


def test_value_range_maps_generator_outputs():
  unit = blob_generator(latents(4))
  np.testing.assert_allclose(control.sprite_statistics(unit * 2 - 1, value_range=(-1.0, 1.0)),
                             control.sprite_statistics(unit), atol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda: control.control_measure(blob_generator, np.zeros(LATENT_DIM), latents(), np.ones), "non-zero"),
    (lambda: control.control_measure(blob_generator, U[:3], latents(), np.ones), "3 entries"),
    (lambda: control.control_measure(blob_generator, U, latents(), lambda x: np.ones(3)), "estimate_fn"),
    (lambda: control.sprite_estimator("size"), "unknown sprite statistic"),
    (lambda: control.sprite_statistics(np.zeros((4, 4))), "NHWC"),
])
def test_control_bad_input_gives_clear_errors(call, message):
  with pytest.raises(ValueError, match=message):
    call()


# ---------------------------------------------------------------------------------------------------------------
# Rescoring matrix.


def pass_through(z):
  """'Images' that are the latents themselves, (B, 1, 1, D)."""
  return np.asarray(z)[:, None, None, :]


def first_three_coordinates(images):
  return images.reshape(len(images), -1)[:, :3]


def sigmoid_of_first_three(images):
  return 1 / (1 + np.exp(-first_three_coordinates(images)))


def test_rescoring_of_a_linear_classifier_by_hand():
  directions = np.array([[1, 0, 0, 0], [0, 1, 0.5, 0], [0, 0, 0, 1]], dtype=np.float32)
  matrix = rescoring.rescoring_matrix(first_three_coordinates, pass_through, latents(10)[:, :4], directions, 2.0,
                                      batch_size=3)
  np.testing.assert_allclose(matrix, 2.0 * directions[:, :3], atol=1e-6)  # score change = shift × direction
  summary = rescoring.rescoring_summary(matrix)
  assert summary == pytest.approx({"diag_sq": (4 + 4 + 0) / 3, "off_diag_sq": 1.0 / 6})


def test_rescoring_matches_direct_computation():
  z = latents(20)[:, :4]
  directions = np.random.RandomState(2).normal(size=(3, 4)).astype(np.float32)
  matrix = rescoring.rescoring_matrix(sigmoid_of_first_three, pass_through, z, directions, -1.5, batch_size=7)
  def scores(x):
    return 1 / (1 + np.exp(-x[:, :3].astype(np.float64)))
  expected = np.stack([np.mean(scores(z - 1.5 * d) - scores(z), axis=0) for d in directions])
  np.testing.assert_allclose(matrix, expected, atol=1e-6)


def test_rescoring_summary_by_hand():
  assert rescoring.rescoring_summary([[1.0, 2.0], [3.0, -4.0]]) == {"diag_sq": 8.5, "off_diag_sq": 6.5}


@pytest.mark.parametrize("call,message", [
    (lambda: rescoring.rescoring_summary(np.ones((2, 3))), "square"),
    (lambda: rescoring.rescoring_matrix(first_three_coordinates, pass_through, latents(4), np.ones((2, 3)), 1.0),
     r"\(K, 6\)"),
    (lambda: rescoring.rescoring_matrix(lambda x: np.ones(len(x)), pass_through, latents(4), np.ones((2, 6)), 1.0),
     "num_attributes"),
])
def test_rescoring_bad_input_gives_clear_errors(call, message):
  with pytest.raises(ValueError, match=message):
    call()


# ---------------------------------------------------------------------------------------------------------------
# Summaries (reading notes §2.4) and the per-factor selection (§2.5).


def _reference_summary(t, values, reference):
  """Loop-by-loop numpy version of control.summarize (no NaNs)."""
  T, N = values.shape
  stds = [np.sqrt(sum((values[i, j] - values[i].mean()) ** 2 for j in range(N)) / N) for i in range(T)]
  grand = values.mean()
  within = sum((values[i, j] - values[i].mean()) ** 2 for i in range(T) for j in range(N))
  total = sum((values[i, j] - grand) ** 2 for i in range(T) for j in range(N))
  medians = [sorted(values[i])[N // 2] if N % 2 else np.mean(sorted(values[i])[N // 2 - 1:N // 2 + 1])
             for i in range(T)]
  ranks = lambda a: np.argsort(np.argsort(a)).astype(float)  # noqa: E731  (no ties in these draws)
  rho = np.corrcoef(ranks(np.asarray(t)), ranks(np.asarray(medians)))[0, 1]
  spread = np.sqrt(np.mean((reference - reference.mean()) ** 2))
  return dict(mean_std=np.mean(stds), rel_std=np.mean(stds) / spread, r2_t=1 - within / total, spearman=rho,
              monotone_fraction=np.mean([np.sign(medians[i + 1] - medians[i]) == np.sign(rho) for i in range(T - 1)]),
              gain=(medians[-1] - medians[0]) * np.sign(rho) / spread)


@pytest.mark.parametrize("slope", [1.0, -0.3, 0.0])
def test_summaries_agree_with_a_loop_reference(slope):
  rng = np.random.RandomState(3)
  t = np.linspace(-2, 2, 7)
  values = slope * t[:, None] + rng.normal(size=(7, 9)) * 0.5
  reference = rng.normal(size=30)
  got = control.summarize(t, values, reference)
  want = _reference_summary(t, values, reference)
  for key, value in want.items():
    np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12, err_msg=key)
  assert got["abs_spearman"] == abs(got["spearman"]) and got["num_valid_fraction"] == 1.0


def test_summaries_skip_failed_measurements_and_a_still_factor():
  t = np.linspace(-1, 1, 5)
  values = np.tile(np.arange(4.0), (5, 1))
  values[2, 1] = np.nan
  still = control.summarize(t, values, np.arange(10.0))
  assert still["abs_spearman"] == 0.0 and still["gain"] == 0.0 and still["num_valid_fraction"] == 19 / 20
  assert np.isfinite(still["rel_std"]) and still["r2_t"] < 0.05


def test_t_grid_is_the_union_of_the_paper_and_core_grids():
  grid = control.t_grid(5.0, 11, 2.0)
  np.testing.assert_allclose(grid, [-5, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 5])


def _xy_estimator(images):
  return control.sprite_statistics(images)[:, [0, 1]]


def test_factor_scores_see_perfect_control_and_no_side_effect():
  scores = control.factor_scores(blob_generator, U, latents(), _xy_estimator, ("x", "y"), batch_size=64)
  for grid in ("core", "full"):
    s = scores["summary"][grid]
    assert s["rel_std"] < 1e-3 and s["abs_spearman"] == 1.0 and s["monotone_fraction"] == 1.0 and s["gain"] > 1
    assert s["r2_t"] > 0.999
  assert scores["side_effect_abs_spearman"] == 0.0 and scores["side_effect_abs_gain"] == 0.0
  np.testing.assert_allclose(scores["mean"], expected_x(scores["t"]), atol=2e-4)


def test_a_direction_orthogonal_to_the_factor_has_no_control():
  s = control.factor_scores(blob_generator, V, latents(200), _xy_estimator, ("x", "y"))["summary"]["core"]
  assert 0.85 < s["rel_std"] < 1.15 and s["r2_t"] < 0.05


def test_selection_picks_the_controlling_column():
  other = np.linalg.qr(np.stack([U, V, np.random.RandomState(5).normal(size=LATENT_DIM)], 1))[0][:, 2]
  matrix = np.stack([V, other, -U], axis=1)   # the sign does not matter
  best, scores = control.select_direction(blob_generator, matrix, latents(60, seed=7), _xy_estimator)
  assert best == 2 and scores[2] < 1e-3 and np.all(scores[:2] > 0.5)


@pytest.mark.parametrize("a, b, c", [(0.2, 0.7, -0.05), (-0.1, 2.0, 0.3)])
def test_erf_fit_recovers_a_known_curve(a, b, c):
  from scipy import special
  t = np.linspace(-5, 5, 15)
  fit = control.erf_fit(t, a * special.erf(b * t / np.sqrt(2)) + c)
  np.testing.assert_allclose([fit["a"], fit["b"], fit["c"]], [a, b, c], rtol=1e-4, atol=1e-6)
  assert fit["r2"] > 0.9999
  assert control.erf_fit(t, np.cos(t))["r2"] < 0.5          # not erf-shaped
  assert np.isnan(control.erf_fit(t[:3], t[:3])["r2"])     # too few points


# ---------------------------------------------------------------------------------------------------------------
# Does a factor model predict the measured factor? (g_consistency, Eqs. 9-11 on images)


def test_g_consistency_compares_moves_from_t_zero_on_the_core_grid():
  t = np.array([-5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0])
  medians = 10.0 + np.array([-9.0, -2.0, -1.0, 0.0, 1.5, 2.0, 9.0])   # offset 10 is not the model's business
  predicted = t.copy()
  assert control.g_consistency(t, medians, predicted, core_t_max=2.0) == pytest.approx(0.5)   # at t = 1
  assert control.g_consistency(t, medians, predicted, core_t_max=5.0) == pytest.approx(4.0)   # at ±5
  with pytest.raises(ValueError, match="must contain 0"):
    control.g_consistency([-1.0, 1.0], [0.0, 1.0], [0.0, 1.0])


def _linear_model(slope, direction=U):
  from ganlatent_jax.directions import continuous
  return continuous.ContinuousDirection(u=direction, kind="linear", params={"slope": slope})


def _x_in_width_fractions(values):
  """The blob's barycentre (1/(SIZE − 1) per pixel, 0 at the centre column) as a fraction of the width."""
  return np.asarray(values) * (SIZE - 1) / SIZE


def test_model_check_of_the_true_model_finds_no_gap_and_resamples_to_uniform():
  truth = _linear_model(PIXELS_PER_UNIT / SIZE)          # t = g(<u, z>) in fractions of the width: exact
  result = control.model_check(truth, blob_generator, control.sprite_estimator("x"), _x_in_width_fractions,
                               latents(2000, seed=3), batch_size=500)
  density, resampling = result["density"], result["resampling"]
  assert density["w1"] * SIZE < 0.01 and density["mean_abs_error"] * SIZE < 0.01      # pixels
  assert density["std_measured"] == pytest.approx(density["std_model"], rel=1e-3)
  assert resampling["ks_model"] < 0.03 and resampling["ks"] < 0.03    # the measured x is uniform after Eq. 10
  # Before resampling it was not: the prior leaves 10% of x below the target's low end (the sup of the gap).
  assert resampling["ks_prior"] == pytest.approx(0.1, abs=0.02)


def test_model_check_of_a_wrong_model_shows_the_gap():
  wrong = _linear_model(2 * PIXELS_PER_UNIT / SIZE)      # predicts twice the move
  result = control.model_check(wrong, blob_generator, control.sprite_estimator("x"), _x_in_width_fractions,
                               latents(2000, seed=3), batch_size=500)
  assert result["density"]["std_model"] == pytest.approx(2 * result["density"]["std_measured"], rel=1e-3)
  assert result["density"]["w1"] * SIZE > 1.0           # pixels: E|x − 2x| for x ~ N(0, 3 px) ≈ 2.4 px
  assert result["resampling"]["ks"] > 0.2               # resampled with the wrong g̃: not uniform on the target
  nuisance = _linear_model(PIXELS_PER_UNIT / SIZE, direction=V)   # right slope, wrong direction: the row moves
  moved = control.model_check(nuisance, blob_generator, control.sprite_estimator("x"), _x_in_width_fractions,
                              latents(500, seed=4), batch_size=500)
  assert moved["density"]["mean_abs_error"] * SIZE > 2.0   # per draw the prediction misses by |3<u,z> − 3<v,z>|


def test_model_check_refuses_too_few_draws_and_bad_quantiles():
  truth = _linear_model(PIXELS_PER_UNIT / SIZE)
  with pytest.raises(ValueError, match="N >= 8"):
    control.model_check(truth, blob_generator, control.sprite_estimator("x"), _x_in_width_fractions, latents(4))
  with pytest.raises(ValueError, match="low_quantile"):
    control.model_check(truth, blob_generator, control.sprite_estimator("x"), _x_in_width_fractions, latents(16),
                        low_quantile=0.9, high_quantile=0.1)
