"""Supervised disentanglement metrics meaning exactly what google-research/disentanglement_lib means.

Users compare these numbers with published tables, so every procedure, estimator and default follows
disentanglement_lib (`evaluation/metrics/{mig,dci,factor_vae,beta_vae,utils}.py` and the gin configs of its studies:
MIG num_train=10000 with a 20-bin histogram discretizer; DCI num_train=10000, num_test=5000; FactorVAE batch_size=64,
num_train=10000, num_eval=5000, num_variance_estimate=10000, prune threshold 0.05; β-VAE batch_size=64,
num_train=10000, num_eval=5000; sampling batch_size=16 for MIG/DCI). Deliberate differences are listed where they
occur (DCI's `random_state`, FactorVAE's `num_active_dims`); none changes a score.

Two forms:
  * array forms take codes (N, num_codes) and integer factors (N, num_factors), one row per observation (note:
    disentanglement_lib's internal arrays are transposed, (num_codes, N));
  * sampling forms take a ground-truth dataset and `represent_fn(images) -> codes` (numpy in, numpy out) and draw
    their samples from `random_state` in the same order as disentanglement_lib, so the same dataset, seed and
    representation give the same samples.

The dataset interface is disentanglement_lib's `GroundTruthData`: `num_factors`, `factors_num_values`,
`observation_shape`, `sample_factors(num, random_state)` → int (num, num_factors),
`sample_observations_from_factors(factors, random_state)` → float32 NHWC in [0, 1], and
`sample(num, random_state)` → (factors, images).

`random_state` is a `numpy.random.RandomState` (disentanglement_lib's evaluation uses `RandomState(seed)`) or an int
seed for one.

The sampling forms render and represent thousands of images (FactorVAE and β-VAE: num_train × 64 images and more),
which takes minutes: each loop reports its progress through `ganlatent_jax.console.progress` (a bar with ETA on
stderr; `console.set_progress_enabled(False)` silences it). Progress never touches `random_state`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.stats
from sklearn import ensemble, linear_model
from sklearn import metrics as sk_metrics

from ganlatent_jax import console

RepresentFn = Callable[[np.ndarray], np.ndarray]

# ---------------------------------------------------------------------------------------------------------------
# Input checks shared by both forms.


def as_random_state(random_state: Any) -> np.random.RandomState:
  """An int seed or a RandomState → RandomState (the datasets' `sample_factors` need the legacy `randint` API)."""
  if isinstance(random_state, np.random.RandomState):
    return random_state
  if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
    return np.random.RandomState(int(random_state))
  raise TypeError(f"random_state must be a numpy.random.RandomState or an int seed, got {type(random_state).__name__}"
                  " (a numpy Generator would draw different samples from disentanglement_lib's)")


def _check_codes(codes: Any, name: str = "codes") -> np.ndarray:
  codes = np.asarray(codes)
  if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
    raise ValueError(f"{name} must have shape (num_points, num_codes) with both > 0, got {codes.shape}")
  if not np.issubdtype(codes.dtype, np.number) or not np.all(np.isfinite(codes)):
    raise ValueError(f"{name} must be finite numbers (dtype {codes.dtype})")
  return codes


def _check_factors(factors: Any, num_points: int, name: str = "factors") -> np.ndarray:
  factors = np.asarray(factors)
  if factors.ndim != 2 or factors.shape[0] != num_points or factors.shape[1] == 0:
    raise ValueError(f"{name} must have shape ({num_points}, num_factors) matching the codes, got {factors.shape}")
  if not np.issubdtype(factors.dtype, np.integer):
    if not np.issubdtype(factors.dtype, np.number) or not np.all(factors == np.round(factors)):
      raise ValueError(f"{name} must hold integer factor values (dtype {factors.dtype})")
    factors = factors.astype(np.int64)
  return factors


def _check_known(known: Any, factors: np.ndarray, name: str = "known") -> np.ndarray | None:
  """`known` (N, F) bool — whether each point's factor value is known (None: all are) — checked against `factors`."""
  if known is None:
    return None
  known = np.asarray(known)
  if known.shape != factors.shape or known.dtype != bool:
    raise ValueError(f"{name} must be a bool array of the factors' shape {factors.shape}, got {known.dtype} "
                     f"{known.shape}")
  return known


def _known_rows(known: np.ndarray | None, factor: int, num_points: int) -> np.ndarray:
  """The points whose value of `factor` is known: all of them when `known` is None (the same index array, so the
  unmasked computation is unchanged)."""
  return np.arange(num_points) if known is None else np.flatnonzero(known[:, factor])


def _check_dataset(dataset: Any) -> None:
  needed = ("num_factors", "factors_num_values", "sample_factors", "sample_observations_from_factors", "sample")
  missing = [name for name in needed if not hasattr(dataset, name)]
  if missing:
    raise TypeError(f"{type(dataset).__name__} is not a ground-truth dataset: it lacks {missing} "
                    "(see the interface in ganlatent_jax.metrics.disentanglement)")


def _represent(represent_fn: RepresentFn, observations: np.ndarray) -> np.ndarray:
  codes = np.asarray(represent_fn(observations))
  if codes.ndim != 2 or codes.shape[0] != len(observations):
    raise ValueError(f"represent_fn must map {len(observations)} images to codes of shape ({len(observations)}, "
                     f"num_codes), got {codes.shape}")
  return codes


# ---------------------------------------------------------------------------------------------------------------
# Shared estimators (disentanglement_lib `utils.py`).


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
  """Each code column → bin index 1..num_bins of a `num_bins`-bin histogram spanning that column's [min, max].

  As `utils._histogram_discretize`: `np.digitize` against the histogram's left bin edges, so the maximum falls in bin
  num_bins and a constant column in a single bin.
  """
  codes = _check_codes(codes)
  discretized = np.zeros(codes.shape, dtype=np.int64)
  for column in range(codes.shape[1]):
    left_edges = np.histogram(codes[:, column], num_bins)[1][:-1]
    discretized[:, column] = np.digitize(codes[:, column], left_edges)
  return discretized


def discrete_mutual_info(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
  """(num_codes, num_factors) mutual information in nats (sklearn's `mutual_info_score`, plug-in estimate)."""
  return np.array([[sk_metrics.mutual_info_score(factors[:, j], discrete_codes[:, i])
                    for j in range(factors.shape[1])] for i in range(discrete_codes.shape[1])])


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
  """(num_factors,) entropy in nats, computed as disentanglement_lib does: I(y; y)."""
  return np.array([sk_metrics.mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])


def sample_codes_and_factors(dataset: Any, represent_fn: RepresentFn, num_points: int, random_state: Any,
                             batch_size: int = 16, desc: str = "sampling codes") -> tuple[np.ndarray, np.ndarray]:
  """`utils.generate_batch_factor_code`: `dataset.sample` in batches → (codes (N, C), factors (N, F)); `desc` names
  the progress bar (in images)."""
  _check_dataset(dataset)
  random_state = as_random_state(random_state)
  if num_points <= 0 or batch_size <= 0:
    raise ValueError(f"num_points and batch_size must be positive, got {num_points} and {batch_size}")
  codes, factors = [], []
  done = 0
  with console.progress(total=num_points, desc=desc, unit="img") as bar:
    while done < num_points:
      count = min(num_points - done, batch_size)
      batch_factors, observations = dataset.sample(count, random_state)
      factors.append(np.asarray(batch_factors))
      codes.append(_represent(represent_fn, np.asarray(observations)))
      done += count
      bar.update(count)
  return np.concatenate(codes), np.concatenate(factors)


def represent_in_batches(observations: np.ndarray, represent_fn: RepresentFn, batch_size: int) -> np.ndarray:
  """`utils.obtain_representation`: codes (N, C) of observations, `batch_size` images per call."""
  return np.concatenate([_represent(represent_fn, observations[start:start + batch_size])
                         for start in range(0, len(observations), batch_size)])


# ---------------------------------------------------------------------------------------------------------------
# MIG (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").


def mig_per_factor(codes: Any, factors: Any, num_bins: int = 20, known: Any = None) -> tuple[np.ndarray, np.ndarray]:
  """((F,) normalised gaps (top − second mutual information with any code) / H(factor), (F,) the top code of each
  factor): MIG's terms before the mean. Several factors sharing one top code is what MIG does not penalise (one code
  moving every factor scores a high gap for each); DCI's disentanglement does. Arguments as `mig_from_arrays`."""
  codes = _check_codes(codes)
  factors = _check_factors(factors, codes.shape[0])
  known = _check_known(known, factors)
  if codes.shape[1] < 2:
    raise ValueError(f"MIG needs at least 2 codes (it is a gap between the two most informative), got {codes.shape[1]}")
  discrete = histogram_discretize(codes, num_bins)
  if known is None:
    mutual_info, entropy = discrete_mutual_info(discrete, factors), discrete_entropy(factors)
  else:
    rows = [_known_rows(known, j, len(codes)) for j in range(factors.shape[1])]
    mutual_info = np.stack([discrete_mutual_info(discrete[r], factors[r][:, [j]])[:, 0] for j, r in enumerate(rows)],
                           axis=1)
    entropy = np.array([discrete_entropy(factors[r][:, [j]])[0] for j, r in enumerate(rows)])
  constant = np.flatnonzero(entropy == 0)
  if constant.size:
    raise ValueError(f"factor column(s) {constant.tolist()} are constant in the sample: their entropy is 0 and MIG "
                     "would divide by it (disentanglement_lib would return nan)")
  top_two = -np.sort(-mutual_info, axis=0)[:2]
  return (top_two[0] - top_two[1]) / entropy, np.argmax(mutual_info, axis=0)


def mig_from_arrays(codes: Any, factors: Any, num_bins: int = 20, known: Any = None) -> dict[str, float]:
  """Mutual information gap: mean over factors of (top − second mutual information with any code) / H(factor).

  Codes are discretised by `histogram_discretize` (20 bins is disentanglement_lib's default), mutual information and
  entropy are plug-in estimates in nats. This is disentanglement_lib's "discrete_mig", returned as "mig".
  With `known` (N, F) bool, each factor's mutual information and entropy use only the points where it is known
  (codes are binned over all points), e.g. an orientation that only asymmetric shapes show. Per-factor terms:
  `mig_per_factor`.
  """
  return {"mig": float(np.mean(mig_per_factor(codes, factors, num_bins, known)[0]))}


def mig(dataset: Any, represent_fn: RepresentFn, random_state: Any, num_train: int = 10000,
        batch_size: int = 16, num_bins: int = 20) -> dict[str, float]:
  """`mig.compute_mig`: MIG of `num_train` sampled observations."""
  codes, factors = sample_codes_and_factors(dataset, represent_fn, num_train, random_state, batch_size,
                                            desc="MIG: codes")
  return mig_from_arrays(codes, factors, num_bins)


# ---------------------------------------------------------------------------------------------------------------
# DCI (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled Representations").


def dci_importance_matrix(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any,
                          random_state: Any = 0, known_train: Any = None,
                          known_test: Any = None) -> tuple[np.ndarray, float, float]:
  """Gradient-boosted-tree importances (num_codes, num_factors) and the mean train/test accuracy over factors.

  One default `GradientBoostingClassifier` per factor, as `dci.compute_importance_gbt`; `random_state` (an int, a
  RandomState, or None for disentanglement_lib's unseeded behaviour) only breaks ties between equally good splits.
  With `known_train` / `known_test` (N, F) bool, each factor's model is fitted and tested on its known points only.
  """
  codes_train = _check_codes(codes_train, "codes_train")
  codes_test = _check_codes(codes_test, "codes_test")
  factors_train = _check_factors(factors_train, codes_train.shape[0], "factors_train")
  factors_test = _check_factors(factors_test, codes_test.shape[0], "factors_test")
  known_train = _check_known(known_train, factors_train, "known_train")
  known_test = _check_known(known_test, factors_test, "known_test")
  if codes_test.shape[1] != codes_train.shape[1] or factors_test.shape[1] != factors_train.shape[1]:
    raise ValueError(f"train and test widths differ: codes {codes_train.shape[1]} vs {codes_test.shape[1]}, "
                     f"factors {factors_train.shape[1]} vs {factors_test.shape[1]}")
  num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
  importance = np.zeros((num_codes, num_factors), dtype=np.float64)
  train_accuracy, test_accuracy = [], []
  for j in console.progress(range(num_factors), "DCI: boosted trees", unit="factor"):
    train = _known_rows(known_train, j, len(codes_train))
    test = _known_rows(known_test, j, len(codes_test))
    if len(test) == 0:
      raise ValueError(f"factor column {j} is known on none of the {len(codes_test)} test points")
    model = ensemble.GradientBoostingClassifier(random_state=random_state)
    model.fit(codes_train[train], factors_train[train, j])
    importance[:, j] = np.abs(model.feature_importances_)
    train_accuracy.append(np.mean(model.predict(codes_train[train]) == factors_train[train, j]))
    test_accuracy.append(np.mean(model.predict(codes_test[test]) == factors_test[test, j]))
  return importance, float(np.mean(train_accuracy)), float(np.mean(test_accuracy))


def dci_scores_from_importance(importance: Any) -> dict[str, float]:
  """Disentanglement and completeness of an importance matrix R (num_codes, num_factors), as disentanglement_lib.

  disentanglement = Σ_i ρ_i (1 − H_F(P_i·)) with P_ij = R_ij / Σ_j R_ij, H_F the entropy in base num_factors and
  ρ_i = Σ_j R_ij / Σ R; completeness is the same with codes and factors swapped (entropy base num_codes). Like
  upstream, 1e-11 is added to R inside the entropies and an all-zero R gets uniform weights.
  """
  importance = np.asarray(importance, dtype=np.float64)
  if importance.ndim != 2 or np.any(importance < 0):
    raise ValueError(f"importance must be a non-negative (num_codes, num_factors) matrix, got shape {importance.shape}")
  num_codes, num_factors = importance.shape
  if num_codes < 2 or num_factors < 2:
    raise ValueError(f"DCI needs at least 2 codes and 2 factors (its entropies are in base num_factors and "
                     f"num_codes), got an importance matrix of shape {importance.shape}")
  per_code = 1. - scipy.stats.entropy(importance.T + 1e-11, base=num_factors)
  per_factor = 1. - scipy.stats.entropy(importance + 1e-11, base=num_codes)
  weights = np.ones_like(importance) if importance.sum() == 0. else importance
  code_weight = weights.sum(axis=1) / weights.sum()
  factor_weight = weights.sum(axis=0) / weights.sum()
  return {"disentanglement": float(np.sum(per_code * code_weight)),
          "completeness": float(np.sum(per_factor * factor_weight))}


def dci_from_arrays(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any,
                    random_state: Any = 0, known_train: Any = None, known_test: Any = None) -> dict[str, float]:
  """DCI disentanglement, completeness and informativeness (mean classification accuracy, as disentanglement_lib:
  higher is better) on a train and a test split (each factor on its known points when masks are given).
  Deterministic for a fixed `random_state`."""
  importance, train_accuracy, test_accuracy = dci_importance_matrix(codes_train, factors_train, codes_test,
                                                                    factors_test, random_state, known_train,
                                                                    known_test)
  return {**dci_scores_from_importance(importance),
          "informativeness_train": train_accuracy, "informativeness_test": test_accuracy}


def dci(dataset: Any, represent_fn: RepresentFn, random_state: Any, num_train: int = 10000, num_test: int = 5000,
        batch_size: int = 16) -> dict[str, float]:
  """`dci.compute_dci`: train set, then test set, sampled from `random_state`; the boosted trees then draw their
  tie-breaking from the same `random_state` (disentanglement_lib leaves them unseeded) so a seed fixes everything."""
  random_state = as_random_state(random_state)
  codes_train, factors_train = sample_codes_and_factors(dataset, represent_fn, num_train, random_state, batch_size,
                                                        desc="DCI: train codes")
  codes_test, factors_test = sample_codes_and_factors(dataset, represent_fn, num_test, random_state, batch_size,
                                                      desc="DCI: test codes")
  return dci_from_arrays(codes_train, factors_train, codes_test, factors_test, random_state)


# ---------------------------------------------------------------------------------------------------------------
# FactorVAE score (Kim & Mnih 2018, "Disentangling by Factorising").


def _sample_observations(dataset: Any, num: int, random_state: np.random.RandomState,
                         chunk_size: int, desc: str = "rendering") -> list[np.ndarray]:
  """`GroundTruthData.sample_observations(num)` (= factors, then images) rendered `chunk_size` images at a time.

  Rendering in chunks keeps 10000 images out of memory; it draws the same numbers as one call whenever the dataset
  draws its rendering noise image after image (true of all of disentanglement_lib's datasets).
  """
  factors = np.asarray(dataset.sample_factors(num, random_state))
  starts = console.progress(range(0, num, chunk_size), desc, unit="chunk")
  return [np.asarray(dataset.sample_observations_from_factors(factors[start:start + chunk_size], random_state))
          for start in starts]


def _factor_vae_votes(dataset: Any, represent_fn: RepresentFn, batch_size: int, num_points: int,
                      random_state: np.random.RandomState, global_variances: np.ndarray,
                      active_dims: np.ndarray, desc: str = "FactorVAE: votes") -> np.ndarray:
  """(num_factors, num_codes) votes: for each point, a batch with one factor fixed votes (factor, argmin dim).

  The argmin is over the active dims of the variance normalised by the global variance, and indexes the *active*
  dims (as upstream), so the columns past the number of active dims never get votes.
  """
  votes = np.zeros((dataset.num_factors, global_variances.shape[0]), dtype=np.int64)
  for _ in console.progress(range(num_points), desc, unit="vote"):
    factor_index = random_state.randint(dataset.num_factors)
    factors = np.array(dataset.sample_factors(batch_size, random_state))
    factors[:, factor_index] = factors[0, factor_index]
    observations = np.asarray(dataset.sample_observations_from_factors(factors, random_state))
    local_variances = np.var(_represent(represent_fn, observations), axis=0, ddof=1)
    argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
    votes[factor_index, argmin] += 1
  return votes


def factor_vae_score(dataset: Any, represent_fn: RepresentFn, random_state: Any, batch_size: int = 64,
                     num_train: int = 10000, num_eval: int = 5000, num_variance_estimate: int = 10000,
                     prune_threshold: float = 0.05) -> dict[str, float]:
  """FactorVAE metric: accuracy of the majority-vote classifier from "argmin normalised variance dim" to factor.

  Global variances (ddof=1) come from `num_variance_estimate` observations (represented 64 at a time, as upstream);
  dims whose standard deviation is below `prune_threshold` are pruned (0.05 in every disentanglement_lib study
  config). If every dim is pruned, both accuracies are 0. `num_active_dims` counts the dims kept; note that
  disentanglement_lib reports `len(mask)`, i.e. the total number of dims, under that name.
  """
  _check_dataset(dataset)
  random_state = as_random_state(random_state)
  observation_chunks = _sample_observations(dataset, num_variance_estimate, random_state, chunk_size=64,
                                            desc="FactorVAE: global variances")
  codes = np.concatenate([_represent(represent_fn, chunk) for chunk in observation_chunks])
  global_variances = np.var(codes, axis=0, ddof=1)
  active_dims = np.sqrt(global_variances) >= prune_threshold
  if not active_dims.any():
    return {"train_accuracy": 0., "eval_accuracy": 0., "num_active_dims": 0}

  train_votes = _factor_vae_votes(dataset, represent_fn, batch_size, num_train, random_state, global_variances,
                                  active_dims, desc="FactorVAE: train votes")
  classifier = np.argmax(train_votes, axis=0)  # dim → factor it votes for most (ties: the lowest factor index)
  dims = np.arange(train_votes.shape[1])
  train_accuracy = np.sum(train_votes[classifier, dims]) / np.sum(train_votes)
  eval_votes = _factor_vae_votes(dataset, represent_fn, batch_size, num_eval, random_state, global_variances,
                                 active_dims, desc="FactorVAE: eval votes")
  eval_accuracy = np.sum(eval_votes[classifier, dims]) / np.sum(eval_votes)
  return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy),
          "num_active_dims": int(active_dims.sum())}


def factor_vae_from_arrays(codes: Any, factors: Any, random_state: Any = 0, batch_size: int = 64,
                           num_train: int = 10000, num_eval: int = 5000,
                           prune_threshold: float = 0.05, known: Any = None) -> dict[str, float]:
  """The FactorVAE score of codes (N, C) of observations with known factors (N, F), for samples that cannot be
  drawn on demand (e.g. a generator's images labelled after the fact).

  As `factor_vae_score`, but a batch "with factor k fixed" is `batch_size` points drawn without replacement (all of
  them if fewer) among those whose factor k equals that of a uniformly drawn point; votes with fewer than 2 such
  points are skipped. Global variances (ddof=1) and the pruning use all points; the points are split at random
  into halves, the train votes drawn from one and the eval votes from the other. With `known` (N, F) bool, a vote
  for factor k draws its anchor and its batch among the points where k is known.
  """
  codes = _check_codes(codes)
  factors = _check_factors(factors, codes.shape[0])
  known = _check_known(known, factors)
  random_state = as_random_state(random_state)
  if codes.shape[0] < 4:
    raise ValueError(f"the FactorVAE score needs at least 4 points, got {codes.shape[0]}")
  global_variances = np.var(codes, axis=0, ddof=1)
  active_dims = np.sqrt(global_variances) >= prune_threshold
  if not active_dims.any():
    return {"train_accuracy": 0., "eval_accuracy": 0., "num_active_dims": 0}
  order = random_state.permutation(codes.shape[0])
  halves = order[:len(order) // 2], order[len(order) // 2:]

  def votes(rows: np.ndarray, num_points: int) -> np.ndarray:
    counts = np.zeros((factors.shape[1], codes.shape[1]), dtype=np.int64)
    for _ in range(num_points):
      factor_index = random_state.randint(factors.shape[1])
      candidates = rows if known is None else rows[known[rows, factor_index]]
      if len(candidates) == 0:
        continue
      value = factors[candidates[random_state.randint(len(candidates))], factor_index]
      same = candidates[factors[candidates, factor_index] == value]
      if len(same) < 2:
        continue
      batch = same if len(same) <= batch_size else random_state.choice(same, batch_size, replace=False)
      local_variances = np.var(codes[batch], axis=0, ddof=1)
      counts[factor_index, np.argmin(local_variances[active_dims] / global_variances[active_dims])] += 1
    return counts

  train_votes, eval_votes = votes(halves[0], num_train), votes(halves[1], num_eval)
  classifier = np.argmax(train_votes, axis=0)
  dims = np.arange(train_votes.shape[1])
  return {"train_accuracy": float(np.sum(train_votes[classifier, dims]) / max(np.sum(train_votes), 1)),
          "eval_accuracy": float(np.sum(eval_votes[classifier, dims]) / max(np.sum(eval_votes), 1)),
          "num_active_dims": int(active_dims.sum())}


# ---------------------------------------------------------------------------------------------------------------
# β-VAE score (Higgins et al. 2017), disentanglement_lib's `beta_vae_sklearn`.


def _beta_vae_points(dataset: Any, represent_fn: RepresentFn, batch_size: int, num_points: int,
                     random_state: np.random.RandomState,
                     desc: str = "β-VAE: points") -> tuple[np.ndarray, np.ndarray]:
  """Features = mean |code(x1) − code(x2)| over `batch_size` pairs sharing one factor; label = that factor."""
  labels = np.zeros(num_points, dtype=np.int64)
  points = None
  for i in console.progress(range(num_points), desc, unit="point"):
    labels[i] = random_state.randint(dataset.num_factors)
    factors1 = np.array(dataset.sample_factors(batch_size, random_state))
    factors2 = np.array(dataset.sample_factors(batch_size, random_state))
    factors2[:, labels[i]] = factors1[:, labels[i]]
    observations1 = np.asarray(dataset.sample_observations_from_factors(factors1, random_state))
    observations2 = np.asarray(dataset.sample_observations_from_factors(factors2, random_state))
    feature = np.mean(np.abs(_represent(represent_fn, observations1) - _represent(represent_fn, observations2)),
                      axis=0)
    if points is None:
      points = np.zeros((num_points, feature.shape[0]))
    points[i] = feature
  return points, labels


def beta_vae_score(dataset: Any, represent_fn: RepresentFn, random_state: Any, batch_size: int = 64,
                   num_train: int = 10000, num_eval: int = 5000) -> dict[str, float]:
  """β-VAE metric: accuracy of a logistic regression predicting the fixed factor from the pair features.

  The classifier is `LogisticRegression(random_state=random_state)` with the installed scikit-learn's defaults, as in
  disentanglement_lib's code. (scikit-learn < 0.22, which the 2018-19 disentanglement_lib runs used, defaulted to
  liblinear one-vs-rest; current versions fit a multinomial lbfgs model. Both give ≈1 for a disentangled code.)
  """
  _check_dataset(dataset)
  random_state = as_random_state(random_state)
  train_points, train_labels = _beta_vae_points(dataset, represent_fn, batch_size, num_train, random_state,
                                                desc="β-VAE: train points")
  model = linear_model.LogisticRegression(random_state=random_state)
  model.fit(train_points, train_labels)
  train_accuracy = np.mean(model.predict(train_points) == train_labels)
  eval_points, eval_labels = _beta_vae_points(dataset, represent_fn, batch_size, num_eval, random_state,
                                              desc="β-VAE: eval points")
  eval_accuracy = model.score(eval_points, eval_labels)
  return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy)}
