"""Rescoring analysis of latent edits: how much each direction changes each classifier-measured attribute.

For K directions d_k, a shift ε and N latents z_n, with s_a(x) the score of attribute a for image x:

    R[k, a] = (1/N) Σ_n ( s_a(G(z_n + ε d_k)) − s_a(G(z_n)) )

No normalisation: the scores are expected to be classifier probabilities in [0, 1] (e.g. softmax/sigmoid of the
"attribute present" logit), which already puts every attribute on the same scale, so R[k, a] reads directly as "this
edit changes the probability of a by R on average". The SRE authors' public evaluation code computes the same mean
difference of softmax probabilities and reports its absolute value; we keep the sign, which also says whether the
edit adds or removes the attribute (take `np.abs` for their matrix). Directions are used as given (not normalised),
so ε is in the units of the direction vectors.

Summary for SRE's Table 1 (Kappiyath et al., AAAI 2022), for a square R whose direction k is the one meant to control
attribute k (reorder the rows first):
    diag²     = mean over k of R[k, k]²               (high: each direction changes its own attribute),
    off-diag² = mean over k ≠ a of R[k, a]²           (low: and leaves the other attributes alone).
Squares make both independent of the sign convention. These are the definitions of our issue tracker; the paper's
own text was not available to check them against, so treat cross-paper comparisons of these two numbers with care.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def _scores_in_batches(classify_fn: Callable[[Any], Any], generate_fn: Callable[[np.ndarray], Any],
                       latents: np.ndarray, batch_size: int) -> np.ndarray:
  scores = []
  for start in range(0, len(latents), batch_size):
    batch = latents[start:start + batch_size]
    batch_scores = np.asarray(classify_fn(generate_fn(batch)), dtype=np.float64)
    if batch_scores.ndim != 2 or batch_scores.shape[0] != len(batch):
      raise ValueError(f"classify_fn must return attribute scores of shape ({len(batch)}, num_attributes), "
                       f"got {batch_scores.shape}")
    scores.append(batch_scores)
  return np.concatenate(scores)


def rescoring_matrix(classify_fn: Callable[[Any], Any], generate_fn: Callable[[np.ndarray], Any], latents: Any,
                     directions: Any, shift: float, batch_size: int = 64) -> np.ndarray:
  """R (K, A): mean change of each attribute score when each direction is added with `shift` (module doc).

  generate_fn(z (B, D) float32) → images; classify_fn(images) → scores (B, A); latents (N, D); directions (K, D).
  """
  latents = np.asarray(latents, dtype=np.float32)
  directions = np.asarray(directions, dtype=np.float32)
  if latents.ndim != 2 or latents.shape[0] == 0:
    raise ValueError(f"latents must have shape (N > 0, latent_dim), got {latents.shape}")
  if directions.ndim != 2 or directions.shape[1] != latents.shape[1]:
    raise ValueError(f"directions must have shape (K, {latents.shape[1]}) to match the latents, got {directions.shape}")
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  original = _scores_in_batches(classify_fn, generate_fn, latents, batch_size)
  rows = []
  for direction in directions:
    edited = _scores_in_batches(classify_fn, generate_fn, latents + np.float32(shift) * direction[None, :],
                                batch_size)
    rows.append(np.mean(edited - original, axis=0))
  return np.stack(rows)


def rescoring_summary(matrix: Any) -> dict[str, float]:
  """{"diag_sq", "off_diag_sq"} of a square rescoring matrix whose row k targets attribute k (module doc)."""
  matrix = np.asarray(matrix, dtype=np.float64)
  if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
    raise ValueError(f"the diag²/off-diag² summary needs a square matrix (K directions matched to K >= 2 attributes, "
                     f"row k targeting attribute k), got shape {matrix.shape}")
  squared = matrix ** 2
  off_diagonal = ~np.eye(matrix.shape[0], dtype=bool)
  return {"diag_sq": float(np.mean(np.diag(squared))), "off_diag_sq": float(np.mean(squared[off_diagonal]))}
