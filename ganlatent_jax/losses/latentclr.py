"""LatentCLR's contrastive objective (Yüksel et al., ICCV 2021, Eq. 3; upstream catlab-team/latentclr
`colat/loss.py`) over feature divergences (K edits, N samples, F features): the loss, upstream's accuracy and the
mean similarities behind them. `methods.latentclr` trains on it."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.directions import latentclr_models as models

VARIANTS = ("paper", "upstream")


def _pairs(k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
  """(positives, negatives) masks over the (K, N, K, N) cosines of K edits on N samples: positives are the same edit
  on another sample, negatives every other edit on every sample (its own sample included)."""
  same_edit = np.eye(k, dtype=bool)[:, None, :, None]
  same_sample = np.eye(n, dtype=bool)[None, :, None, :]
  return (np.broadcast_to(same_edit & ~same_sample, (k, n, k, n)), np.broadcast_to(~same_edit, (k, n, k, n)))


def _log_terms(divergences: jax.Array, temperature: float, variant: str) -> tuple[jax.Array, jax.Array]:
  """(log P, log Q) per anchor (K, N): the loss of anchor (k, i) is log Q − log P."""
  if variant not in VARIANTS:
    raise ValueError(f"LatentCLR loss variant={variant!r}; expected one of {VARIANTS}")
  if divergences.ndim != 3:
    raise ValueError(f"divergences must be (K edits, N samples, F features), got shape {divergences.shape}")
  k, n, _ = divergences.shape
  if k < 2 or n < 2:
    raise ValueError(f"the contrastive loss needs ≥ 2 edits and ≥ 2 samples (positives are other samples, "
                     f"negatives other edits); got K={k}, N={n}")
  flat = models.unit(divergences.reshape(k * n, -1).astype(jnp.float32))
  cosine = (flat @ flat.T).reshape(k, n, k, n)
  if variant == "paper":
    logits = cosine / temperature
  else:
    logits = jnp.abs(cosine) * temperature
  positives, negatives = _pairs(k, n)
  log_p = jax.nn.logsumexp(jnp.where(positives, logits, -jnp.inf), axis=(2, 3))
  log_q = jax.nn.logsumexp(jnp.where(negatives, logits, -jnp.inf), axis=(2, 3))
  if variant == "upstream":  # means instead of sums
    log_p, log_q = log_p - jnp.log(n - 1.0), log_q - jnp.log((k - 1.0) * n)
  return log_p, log_q


def contrastive_loss(divergences: jax.Array, temperature: float = 0.5, variant: str = "paper") -> jax.Array:
  """LatentCLR's loss over feature divergences (K edits, N samples, F features), averaged over the K·N anchors.

  With s(a, b) the cosine similarity, the loss of the edited latent z_i^k is
    'paper' (Eq. 3 of the paper, NT-Xent-like):
        −log [ Σ_{j≠i} exp(s(f_i^k, f_j^k)/τ) / Σ_j Σ_{l≠k} exp(s(f_i^k, f_j^l)/τ) ]
      positives: the same edit k on the other samples; negatives: every other edit on every sample (its own sample
      included); the positives are not in the denominator.
    'upstream' (colat/loss.py `ContrastiveLoss(abs=True, reduce='mean')`, with its default temp=0.5):
        −log [ mean_{j≠i} exp(τ·|s(f_i^k, f_j^k)|) / mean_j mean_{l≠k} exp(τ·|s(f_i^k, f_j^l)|) ]
      i.e. absolute cosine similarity (a direction and its opposite count as alike), the temperature MULTIPLIES the
      similarity (upstream temp 0.5 is the paper's τ = 2), and means instead of sums (a constant
      log((K−1)N/(N−1)) below the sum form).
  Computed with log-sum-exp; the divergences are L2-normalised here (upstream normalises them in its trainer).
  """
  log_p, log_q = _log_terms(divergences, temperature, variant)
  return jnp.mean(log_q - log_p)


def contrastive_accuracy(divergences: jax.Array, temperature: float = 0.5, variant: str = "paper") -> jax.Array:
  """Upstream's 'acc': the fraction of anchors whose mean positive term exceeds their mean negative term."""
  log_p, log_q = _log_terms(divergences, temperature, variant)
  k, n = log_p.shape
  if variant == "paper":  # compare means, as upstream does, whatever the reduction of the loss
    log_p, log_q = log_p - jnp.log(n - 1.0), log_q - jnp.log((k - 1.0) * n)
  return jnp.mean((log_p > log_q).astype(jnp.float32))


def similarity_summary(divergences) -> tuple[float, float]:
  """(mean cosine of same-edit divergences on different samples — the positives —, mean |cosine| of different
  edits' divergences — the negatives): how alike each edit's effect is across samples, and how distinct the edits
  are. A task whose untrained directions already have positives near 1 and negatives near 0 is solved before
  training (the README's LatentCLR readings)."""
  d = np.asarray(divergences, np.float64)
  k, n, _ = d.shape
  flat = d.reshape(k * n, -1)
  flat = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
  cosine = (flat @ flat.T).reshape(k, n, k, n)
  positives, negatives = _pairs(k, n)
  return float(cosine[positives].mean()), float(np.abs(cosine[negatives]).mean())
