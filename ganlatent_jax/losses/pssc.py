"""PS-SC's code pairs and Perceptual Simplicity (PS) loss (Zhu et al., CVPR 2021, Sec. 3.2, Eqs. 8–9; upstream
zhuxinqimac/PS-SC `training/loss_ps_sc.py: calc_ps_loss`), and the upstream InfoGAN baseline's L2 loss.

Pairs: c ~ N(0, I_d); per example a dimension k ~ U{0…d−1} and c′ = c + Δ·onehot(k) with Δ = ε·N(0, eps_std²)
(upstream `random_eps=True`; README ε = 3, eps_std = 2 ⇒ Δ ~ N(0, 6²)) or Δ = ε. The paper's "p ~ N(c_k, p_var)" is
read as a typo for this zero-mean perturbation (specs/pssc.md A3).

PS loss, with r = Q(x), r′ = Q(x′), r̂ = r on k and (r + r′)/2 elsewhere (r̂′ likewise):
    ps_loss = ½ · mean_b [ Σ_i (c_i − r̂_i)² + Σ_i (c′_i − r̂′_i)² ]                 (upstream's value, λ-free)
Per dimension that is ½[(c_k − r_k)² + (c′_k − r′_k)²] on k and (avg_i − c_i)² elsewhere (c′_i = c_i there). The
paper's Eq. 9 averages loss_i = (r_k − c_k)² + (r′_k − c′_k)² (i = k), 2(avg_i − c_i)² (i ≠ k) over the d dims:
    L_PS(Eq. 9) = (2/d) · ps_loss, i.e. upstream = (d/2) · paper,
and the paper's λ (0.01 in the README command: `--C_lambda 0.01`) multiplies upstream's form.
Gradients (per example, before the batch mean): ∂/∂r_k = r_k − c_k, ∂/∂r′_k = r′_k − c′_k, and for i ≠ k
∂/∂r_i = ∂/∂r′_i = avg_i − c_i (each times 1/B).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

REDUCTIONS = ("upstream", "paper")


def perturb(rng: jax.Array, c: jax.Array, epsilon: float, random_eps: bool = True,
            eps_std: float = 2.0) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(c′, k, Δ): one dimension k per row (uniform) moved by Δ (ε·N(0, eps_std²) if `random_eps`, else ε)."""
  k_key, d_key = jax.random.split(rng)
  batch, dim = c.shape
  k = jax.random.randint(k_key, (batch,), 0, dim)
  if random_eps:
    delta = epsilon * eps_std * jax.random.normal(d_key, (batch,), c.dtype)
  else:
    delta = jnp.full((batch,), epsilon, c.dtype)
  return c + delta[:, None] * jax.nn.one_hot(k, dim, dtype=c.dtype), k, delta


def ps_loss_per_example(c: jax.Array, c_prime: jax.Array, r: jax.Array, r_prime: jax.Array, k: jax.Array,
                        reduction: str = "upstream") -> jax.Array:
  """(B,) PS loss of each pair; `reduction='paper'` is Eq. 9 (= 2/d × upstream)."""
  if reduction not in REDUCTIONS:
    raise ValueError(f"ps_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
  if not c.shape == c_prime.shape == r.shape == r_prime.shape or c.ndim != 2 or k.shape != c.shape[:1]:
    raise ValueError(f"ps_loss: c, c′, r, r′ must be (B, d) and k (B,); got {c.shape}, {c_prime.shape}, {r.shape}, "
                     f"{r_prime.shape}, {k.shape}")
  perturbed = jax.nn.one_hot(k, c.shape[1], dtype=bool)
  average = 0.5 * (r + r_prime)
  r_hat = jnp.where(perturbed, r, average)
  r_prime_hat = jnp.where(perturbed, r_prime, average)
  per_example = 0.5 * (jnp.sum(jnp.square(c - r_hat), axis=1) + jnp.sum(jnp.square(c_prime - r_prime_hat), axis=1))
  return per_example if reduction == "upstream" else per_example * (2.0 / c.shape[1])


def ps_loss(c: jax.Array, c_prime: jax.Array, r: jax.Array, r_prime: jax.Array, k: jax.Array) -> jax.Array:
  """½ mean_b [Σ_i (c_i − r̂_i)² + Σ_i (c′_i − r̂′_i)²] — upstream's value without λ (see the module docstring)."""
  return jnp.mean(ps_loss_per_example(c, c_prime, r, r_prime, k))


def infogan_l2_loss(c: jax.Array, r: jax.Array) -> jax.Array:
  """Upstream InfoGAN baseline (`G_logistic_ns_info_gan`): mean_b ‖r − c‖₂ (the Euclidean norm, NOT squared).

  The norm's gradient is taken as 0 at r = c (where √ has none) instead of NaN."""
  squared = jnp.sum(jnp.square(r - c), axis=1)
  safe = jnp.where(squared > 0, squared, 1.0)
  return jnp.mean(jnp.where(squared > 0, jnp.sqrt(safe), 0.0))
