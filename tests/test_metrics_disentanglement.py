"""MIG, DCI, FactorVAE and β-VAE scores: hand-computed values, perfect vs chance representations, determinism.

The ground truth is a tiny synthetic dataset whose "image" shows each factor as one pixel value, so the identity
representation is perfectly disentangled and a representation that ignores the image is at chance.
"""
import numpy as np
import pytest
from sklearn import ensemble

from ganlatent_jax.metrics import disentanglement as dis


class FactorPixels:
  """disentanglement_lib's GroundTruthData interface; image (1, F, 1) with pixel j = factor j / (values_j − 1)."""

  def __init__(self, factors_num_values=(4, 5, 6)):
    self.factors_num_values = list(factors_num_values)
    self.num_factors = len(self.factors_num_values)
    self.observation_shape = (1, self.num_factors, 1)

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(n, size=num) for n in self.factors_num_values], axis=1)

  def sample_observations_from_factors(self, factors, random_state):
    del random_state  # rendering is deterministic
    scaled = np.asarray(factors) / (np.array(self.factors_num_values) - 1.0)
    return scaled.astype(np.float32)[:, None, :, None]

  def sample(self, num, random_state):
    factors = self.sample_factors(num, random_state)
    return factors, self.sample_observations_from_factors(factors, random_state)


def identity(images):
  return images.reshape(len(images), -1)


def entangled_and_noisy(seed=99):
  """Every code sees every factor, plus noise from its own seeded stream: middling, seed-reproducible scores."""
  noise = np.random.RandomState(seed)
  mixing = np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.7], [0.5, 0.0, 1.0]])
  return lambda images: identity(images) @ mixing + 0.3 * noise.normal(size=(len(images), 3))


def ignores_images(seed=123, num_codes=3):
  noise = np.random.RandomState(seed)
  return lambda images: noise.normal(size=(len(images), num_codes))


def constant(images):
  return np.zeros((len(images), 3))


SMALL = {
    "mig": dict(num_train=500),
    "dci": dict(num_train=200, num_test=100),
    "factor_vae_score": dict(num_train=150, num_eval=100, num_variance_estimate=500),
    "beta_vae_score": dict(num_train=150, num_eval=100, batch_size=32),
}
SCORE = {"mig": "mig", "dci": "disentanglement", "factor_vae_score": "eval_accuracy", "beta_vae_score": "eval_accuracy"}


def run(metric, represent_fn, seed=0):
  return getattr(dis, metric)(FactorPixels(), represent_fn, np.random.RandomState(seed), **SMALL[metric])


# ---------------------------------------------------------------------------------------------------------------
# Independent numpy re-computations of the formulas.


def numpy_mutual_info(a, b):
  """Plug-in mutual information in nats of two integer arrays, from their contingency table."""
  joint = np.zeros((a.max() + 1, b.max() + 1))
  np.add.at(joint, (a, b), 1.0)
  joint /= len(a)
  outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
  nonzero = joint > 0
  return np.sum(joint[nonzero] * np.log(joint[nonzero] / outer[nonzero]))


def numpy_mig(codes, factors, num_bins):
  def bins(column):
    left_edges = np.linspace(column.min(), column.max(), num_bins + 1)[:-1]
    return np.searchsorted(left_edges, column, side="right")  # number of left edges <= value, i.e. 1..num_bins

  discrete = [bins(column) for column in codes.T]
  gaps = []
  for factor in factors.T:
    informations = sorted((numpy_mutual_info(code, factor) for code in discrete), reverse=True)
    gaps.append((informations[0] - informations[1]) / numpy_mutual_info(factor, factor))
  return np.mean(gaps)


def numpy_dci(importance):
  def weighted_one_minus_entropy(matrix):  # rows are the distributions, weighted by their share of the total
    rows = matrix + 1e-11
    probabilities = rows / rows.sum(axis=1, keepdims=True)
    entropy = -np.sum(probabilities * np.log(probabilities), axis=1) / np.log(matrix.shape[1])
    return np.sum((1 - entropy) * matrix.sum(axis=1) / matrix.sum())

  return weighted_one_minus_entropy(importance), weighted_one_minus_entropy(importance.T)


# ---------------------------------------------------------------------------------------------------------------
# Array forms.


def test_mig_by_hand():
  factors = np.array([[0], [0], [1], [1]])
  # code 0 = the factor, code 1 independent of it: gap = H(f) = ln 2, MIG = 1.
  assert dis.mig_from_arrays(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), factors)["mig"] == pytest.approx(1.0)
  # code 0 = [0, 0, 0, 1]: I = H(1/4) − ½·H(1/2) bits = 1.5 − ¾·log2(3) of H(f) = 1 bit.
  result = dis.mig_from_arrays(np.array([[0, 0], [0, 1], [0, 0], [1, 1]]), factors)["mig"]
  assert result == pytest.approx(1.5 - 0.75 * np.log2(3))


def test_mig_per_factor_terms_average_to_mig_and_name_each_factors_top_code():
  rng = np.random.RandomState(3)
  factors = rng.randint(0, [3, 5], size=(400, 2))
  codes = np.stack([rng.normal(size=400), factors[:, 1] + 0.1 * rng.normal(size=400),
                    factors[:, 0] + 0.1 * rng.normal(size=400)], axis=1)
  gaps, top = dis.mig_per_factor(codes, factors)
  assert top.tolist() == [2, 1] and np.all(gaps > 0.5)
  assert np.mean(gaps) == dis.mig_from_arrays(codes, factors)["mig"]
  # One code that moves both factors (and a useless one): a large gap for each, both topped by the same code — the
  # MIG blind spot the per-factor terms let a reader see.
  shared = np.stack([factors[:, 0] * 5 + factors[:, 1], rng.normal(size=400)], axis=1)
  gaps, top = dis.mig_per_factor(shared, factors)
  assert top.tolist() == [0, 0] and np.all(gaps > 0.5)


@pytest.mark.parametrize("num_bins", [20, 7])
def test_mig_matches_numpy_formula_on_random_case(num_bins):
  rng = np.random.RandomState(3)
  factors = rng.randint(0, [3, 5], size=(400, 2))
  codes = np.stack([factors[:, 0] + 0.3 * rng.normal(size=400), rng.normal(size=400),
                    factors[:, 1] * 0.2 + rng.uniform(size=400)], axis=1)
  np.testing.assert_allclose(dis.mig_from_arrays(codes, factors, num_bins)["mig"],
                             numpy_mig(codes, factors, num_bins), atol=1e-12)


def test_histogram_discretize_bins_like_numpy_histogram():
  codes = np.array([[0.0, 5.0], [0.5, 5.0], [0.99, 5.0], [1.0, 5.0]])
  # A constant column spans value ± 0.5 (numpy's rule), so it all lands in one bin: the one starting at the value.
  np.testing.assert_array_equal(dis.histogram_discretize(codes, num_bins=2), [[1, 2], [2, 2], [2, 2], [2, 2]])


@pytest.mark.parametrize("importance,expected", [
    (np.eye(3), (1.0, 1.0)),
    (np.ones((3, 3)), (0.0, 0.0)),
    (np.array([[1.0, 1.0], [0.0, 0.0]]), (0.0, 1.0)),  # one code explains both factors: complete, not disentangled
    (np.zeros((2, 2)), (0.0, 0.0)),
])
def test_dci_scores_by_hand(importance, expected):
  scores = dis.dci_scores_from_importance(importance)
  np.testing.assert_allclose([scores["disentanglement"], scores["completeness"]], expected, atol=1e-8)


def test_dci_scores_match_numpy_formula_on_random_importance():
  importance = np.random.RandomState(0).uniform(size=(5, 3)) ** 3
  scores = dis.dci_scores_from_importance(importance)
  np.testing.assert_allclose([scores["disentanglement"], scores["completeness"]], numpy_dci(importance), atol=1e-12)


def test_dci_from_arrays_is_boosted_tree_importances_through_the_formula():
  rng = np.random.RandomState(1)
  factors = rng.randint(0, [3, 4], size=(240, 2))
  codes = np.concatenate([factors + 0.4 * rng.normal(size=factors.shape), rng.normal(size=(240, 1))], axis=1)
  result = dis.dci_from_arrays(codes[:160], factors[:160], codes[160:], factors[160:], random_state=5)
  importance = np.zeros((3, 2))
  test_accuracy = []
  for j in range(2):
    model = ensemble.GradientBoostingClassifier(random_state=5).fit(codes[:160], factors[:160, j])
    importance[:, j] = model.feature_importances_
    test_accuracy.append(np.mean(model.predict(codes[160:]) == factors[160:, j]))
  np.testing.assert_allclose([result["disentanglement"], result["completeness"]], numpy_dci(importance), atol=1e-12)
  assert result["informativeness_test"] == pytest.approx(np.mean(test_accuracy))
  assert result["informativeness_train"] > result["informativeness_test"] > 0.5


@pytest.mark.parametrize("call,message", [
    (lambda: dis.mig_from_arrays(np.zeros((4, 1)), np.zeros((4, 1), int)), "at least 2 codes"),
    (lambda: dis.mig_from_arrays(np.random.rand(4, 2), np.zeros((4, 1), int)), "constant"),
    (lambda: dis.mig_from_arrays(np.random.rand(4, 2), np.zeros((5, 1), int)), r"\(4, num_factors\)"),
    (lambda: dis.mig_from_arrays(np.random.rand(4, 2), np.full((4, 1), 0.5)), "integer"),
    (lambda: dis.mig_from_arrays(np.full((4, 2), np.nan), np.zeros((4, 1), int)), "finite"),
    (lambda: dis.mig(object(), identity, 0), "lacks"),
    (lambda: dis.mig(FactorPixels(), identity, np.random.default_rng(0)), "RandomState"),
    (lambda: dis.mig(FactorPixels(), lambda x: x, 0, num_train=8), "represent_fn"),
])
def test_bad_input_gives_clear_errors(call, message):
  with pytest.raises((ValueError, TypeError), match=message):
    call()


# ---------------------------------------------------------------------------------------------------------------
# Sampling forms on the synthetic dataset.


@pytest.mark.parametrize("metric", list(SMALL))
def test_identity_representation_scores_perfectly(metric):
  result = run(metric, identity)
  assert result[SCORE[metric]] > 0.95, result
  if metric == "dci":
    assert result["completeness"] > 0.95 and result["informativeness_test"] == pytest.approx(1.0)
  if metric == "factor_vae_score":
    assert result["train_accuracy"] == 1.0 and result["num_active_dims"] == 3


@pytest.mark.parametrize("metric,limit", [
    ("mig", 0.1),               # ≈ 0 (plus the plug-in estimator's small positive bias)
    ("dci", 0.25),              # importances spread over every code
    ("factor_vae_score", 0.5),  # chance = 1/3
    ("beta_vae_score", 0.5),    # chance = 1/3
])
def test_representation_ignoring_the_images_scores_at_chance(metric, limit):
  result = run(metric, ignores_images())
  assert result[SCORE[metric]] < limit, result
  if metric == "dci":
    assert result["informativeness_test"] < 0.4  # mean chance accuracy over factors with 4, 5, 6 values ≈ 0.2


@pytest.mark.parametrize("metric", list(SMALL))
def test_same_random_state_gives_same_numbers(metric):
  first, second = run(metric, entangled_and_noisy(), seed=7), run(metric, entangled_and_noisy(), seed=7)
  other = run(metric, entangled_and_noisy(), seed=8)
  assert first == second
  assert first != other


def test_factor_vae_all_dims_collapsed():
  assert run("factor_vae_score", constant) == {"train_accuracy": 0., "eval_accuracy": 0., "num_active_dims": 0}


def test_factor_vae_prunes_low_variance_dims():
  def with_collapsed_dim(images):
    return np.concatenate([identity(images), 0.01 * identity(images)[:, :1]], axis=1)
  result = run("factor_vae_score", with_collapsed_dim)
  assert result["num_active_dims"] == 3 and result["eval_accuracy"] == 1.0


def test_sampling_draws_like_disentanglement_lib():
  """generate_batch_factor_code: `sample` in batches of `batch_size` from one RandomState, codes per batch."""
  calls = []
  codes, factors = dis.sample_codes_and_factors(FactorPixels(), lambda x: (calls.append(len(x)), identity(x))[1],
                                                num_points=37, random_state=4, batch_size=16)
  assert calls == [16, 16, 5]
  random_state = np.random.RandomState(4)
  expected = np.concatenate([FactorPixels().sample(n, random_state)[0] for n in (16, 16, 5)])
  np.testing.assert_array_equal(factors, expected)
  np.testing.assert_allclose(codes, expected / np.array([3.0, 4.0, 5.0]), rtol=1e-6)


class NoisyFactorPixels(FactorPixels):
  """Rendering draws noise from random_state for the whole batch at once, like disentanglement_lib's NoisyDSprites."""

  def sample_observations_from_factors(self, factors, random_state):
    clean = super().sample_observations_from_factors(factors, random_state)
    return clean + 0.01 * random_state.uniform(size=clean.shape).astype(np.float32)


def test_factor_vae_variance_sample_in_chunks_draws_like_one_call():
  """The 10000 variance-estimate images are rendered 64 at a time; the random stream is that of one big call."""
  dataset = NoisyFactorPixels()
  chunks = dis._sample_observations(dataset, 150, np.random.RandomState(9), chunk_size=64)
  assert [len(chunk) for chunk in chunks] == [64, 64, 22]
  random_state = np.random.RandomState(9)
  np.testing.assert_array_equal(np.concatenate(chunks), dataset.sample(150, random_state)[1])


# ---------------------------------------------------------------------------------------------------------------
# Known-label masks: a factor some points do not show (dSprites' orientation of symmetric shapes) is scored on the
# points that show it.


def _masked_case(seed=3, num=400):
  rng = np.random.RandomState(seed)
  factors = rng.randint(0, [3, 4, 5], size=(num, 3))
  codes = np.concatenate([factors + 0.5 * rng.normal(size=factors.shape), rng.normal(size=(num, 1))], axis=1)
  known = np.ones(factors.shape, bool)
  known[:, 1] = rng.rand(num) < 0.4            # factor 1 shown by 40% of the points
  return codes, factors, known


def numpy_masked_mig(codes, factors, known, num_bins):
  """Independent reference: codes binned over all points (left edges as np.histogram), each factor's mutual
  information and entropy from the contingency table of its known points."""
  discrete = np.stack([np.searchsorted(np.linspace(c.min(), c.max(), num_bins + 1)[:-1], c, side="right")
                       for c in codes.T], axis=1)

  gaps = []
  for j in range(factors.shape[1]):
    rows = known[:, j]
    informations = sorted((numpy_mutual_info(code[rows], factors[rows, j]) for code in discrete.T), reverse=True)
    gaps.append((informations[0] - informations[1]) / numpy_mutual_info(factors[rows, j], factors[rows, j]))
  return np.mean(gaps)


def test_masked_mig_matches_numpy_reference():
  codes, factors, known = _masked_case()
  result = dis.mig_from_arrays(codes, factors, known=known)["mig"]
  assert result == pytest.approx(numpy_masked_mig(codes, factors, known, 20), abs=1e-10)
  # and differs from scoring the unknown labels as if they were known
  assert result != pytest.approx(dis.mig_from_arrays(codes, factors)["mig"], abs=1e-6)


def test_masked_dci_fits_each_factor_on_its_known_points():
  codes, factors, known = _masked_case(num=300)
  train, test = slice(None, 200), slice(200, None)
  result = dis.dci_from_arrays(codes[train], factors[train], codes[test], factors[test], random_state=5,
                               known_train=known[train], known_test=known[test])
  importance, test_accuracy = np.zeros((4, 3)), []
  for j in range(3):
    fit_rows, test_rows = known[train][:, j], known[test][:, j]
    model = ensemble.GradientBoostingClassifier(random_state=5).fit(codes[train][fit_rows], factors[train][fit_rows, j])
    importance[:, j] = model.feature_importances_
    test_accuracy.append(np.mean(model.predict(codes[test][test_rows]) == factors[test][test_rows, j]))
  np.testing.assert_allclose([result["disentanglement"], result["completeness"]], numpy_dci(importance), atol=1e-12)
  assert result["informativeness_test"] == pytest.approx(np.mean(test_accuracy))


@pytest.mark.parametrize("metric", ["mig", "dci", "factor_vae"])
def test_masked_scores_ignore_the_unknown_labels_and_all_true_is_unmasked(metric):
  codes, factors, known = _masked_case()
  scramble = factors.copy()
  scramble[~known] = np.random.RandomState(9).randint(0, 3, size=(~known).sum())   # any value where unknown

  def score(labels, mask):
    if metric == "mig":
      return dis.mig_from_arrays(codes, labels, known=mask)
    if metric == "dci":
      return dis.dci_from_arrays(codes[:300], labels[:300], codes[300:], labels[300:], random_state=0,
                                 known_train=None if mask is None else mask[:300],
                                 known_test=None if mask is None else mask[300:])
    return dis.factor_vae_from_arrays(codes, labels, random_state=0, num_train=500, num_eval=300, known=mask)

  assert score(factors, known) == score(scramble, known)
  assert score(factors, np.ones_like(known)) == score(factors, None)


def test_masked_factor_vae_votes_only_on_known_points():
  # Factor 1 is known on 40% of the points; a vote for it must draw its anchor and batch there: with the unknown
  # labels set to a value no known point has, an unmasked vote would find batches of that value.
  codes, factors, known = _masked_case()
  factors = factors.copy()
  factors[~known[:, 1], 1] = 9
  masked = dis.factor_vae_from_arrays(codes, factors, random_state=0, num_train=500, num_eval=300, known=known)
  unmasked = dis.factor_vae_from_arrays(codes, factors, random_state=0, num_train=500, num_eval=300)
  assert min(masked["train_accuracy"], masked["eval_accuracy"]) > 0.95 > unmasked["train_accuracy"], (masked, unmasked)
  with pytest.raises(ValueError, match="bool array of the factors' shape"):
    dis.factor_vae_from_arrays(codes, factors, known=known[:, :2])
