"""Probe directions: the supervised ceiling row of a directions table.

Per factor, the direction in latent space (z, or w) of a linear model from the latent to the factor's label, fitted
on generated samples labelled by a `metrics.generated_domain` labeller (an oracle's exact factors, or the factor
classifier's labels for a GAN). With them a table says how far a linear direction can go, between random directions
and the best possible.

  'regression' (default): least squares of the label (its grid index, standardised) on the centred latents; the
               direction is the coefficient vector. For an oracle it is the true direction up to sampling noise.
  'logistic':  a multinomial logistic regression on the standardised latents; the direction is the top right
               singular vector of its (centred) class-weight matrix mapped back to the latent's units, the axis
               along which the class scores change most (for unordered factors such as a shape).
Directions are unit columns in factor order, oriented so that the label grows along them.
"""
from __future__ import annotations

import numpy as np
from sklearn import linear_model

from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators.base import Generator

METHODS = ("regression", "logistic")


def probe_from_arrays(latents: np.ndarray, labels: np.ndarray, method: str = "regression",
                      seed: int = 0, known: np.ndarray | None = None) -> np.ndarray:
  """(D, F) unit directions of linear probes from latents (N, D) to integer labels (N, F); with `known` (N, F) bool,
  each factor's probe is fitted on the samples where its label is known."""
  if method not in METHODS:
    raise ValueError(f"probe method={method!r}; expected one of {METHODS}")
  latents, labels = np.asarray(latents, np.float64), np.asarray(labels)
  if latents.ndim != 2 or labels.ndim != 2 or len(latents) != len(labels):
    raise ValueError(f"latents (N, D) and labels (N, F) must have the same N, got {latents.shape}, {labels.shape}")
  if known is not None and np.shape(known) != labels.shape:
    raise ValueError(f"known must have the labels' shape {labels.shape}, got {np.shape(known)}")
  if known is not None and np.all(known):
    known = None   # the unmasked fit, bit for bit
  columns = []
  for factor in range(labels.shape[1]):
    rows = slice(None) if known is None else np.asarray(known[:, factor], bool)
    centred = latents[rows] - latents[rows].mean(0)
    target = labels[rows, factor].astype(np.float64)
    if target.size < 2 or np.ptp(target) == 0:
      raise ValueError(f"factor column {factor} is constant (or unknown) in the sample: no direction predicts it")
    if method == "regression":
      direction = np.linalg.lstsq(centred, (target - target.mean()) / target.std(), rcond=None)[0]
    else:
      scale = centred.std(0) + 1e-12
      model = linear_model.LogisticRegression(max_iter=1000, random_state=seed).fit(centred / scale, target)
      weights = model.coef_ / scale                               # class scores per latent unit
      weights = weights - weights.mean(0) if len(weights) > 1 else weights
      direction = np.linalg.svd(weights, full_matrices=False)[2][0]
    direction = direction / max(np.linalg.norm(direction), 1e-12)
    # Orientation: the label grows along the direction (its projection correlates positively with the label).
    if np.corrcoef(centred @ direction, target)[0, 1] < 0:
      direction = -direction
    columns.append(direction)
  return np.stack(columns, axis=1).astype(np.float32)


class NoVaryingFactor(ValueError):
  """No factor takes two values or more over the samples labelled with it: nothing to fit a probe to."""


def probe_directions(gen: Generator, labeller, space: str = "z", *, num: int = 6000, batch_size: int = 64,
                     seed: int = 0, method: str = "regression", truncation: float | None = None,
                     partial_factors: str = "per_factor") -> Directions:
  """One probe direction per factor that takes two values, fitted on `num` generated samples — for a factor some
  samples do not show, on those that show it ('per_factor'), or none ('drop': only factors every sample shows)."""
  from ganlatent_jax.metrics.generated_domain import (check_partial_factors, known_labels, sample_latents_and_labels,
                                                      scorable_factors)
  if space not in ("z", "w"):
    raise ValueError(f"probe directions live in 'z' or 'w', not {space!r}")
  check_partial_factors(partial_factors)
  latents, labels, mask = sample_latents_and_labels(gen, labeller, num, space, batch_size=batch_size, seed=seed,
                                                    truncation=truncation)
  names = np.asarray(labeller.factor_names)
  mask = known_labels(mask, partial_factors)
  kept = scorable_factors(labels, mask, num)
  if not kept.any():
    raise NoVaryingFactor(f"no factor of {list(names)} takes two values or more over the {num} samples labelled "
                          f"with it: no probe direction can be fitted (an untrained classifier, a generator that "
                          f"draws one image, or too few samples?)")
  matrix = probe_from_arrays(latents, labels[:, kept], method, seed, mask[:, kept])
  return Directions(matrix, space=space, meta=dict(
      method="probe", probe=method, num_samples=num, seed=seed, source=gen.info.source,
      factor_names=names[kept].tolist(), factors_partial=names[kept & ~mask.all(axis=0)].tolist(),
      factors_left_out=names[~kept].tolist()))
