"""The GAN engine's losses and regularisers as pure functions (rosinality's StyleGAN2 `train.py`), each tested
against a direct computation in tests/test_gan.py: the non-saturating logistic losses, R1, StyleGAN2's path lengths
and their penalty, the style-mixing crossover, the EMA of G, and Adam corrected for a lazy regulariser."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax


def nonsaturating_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))


def nonsaturating_g_loss(fake_logits: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(-fake_logits))


def r1_penalty(d_logits_fn: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """E_x ‖∇ₓ D(x)‖² over the batch (the sum of logits has the per-sample gradients as its gradient)."""
  grads = jax.grad(lambda x: jnp.sum(d_logits_fn(x)))(real)
  return jnp.mean(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))


def path_lengths(synthesis_fn: Callable[[jax.Array], jax.Array], latent: jax.Array, rng: jax.Array) -> jax.Array:
  """Per-sample ‖Jᵀy‖ of StyleGAN2's path-length regulariser: J = ∂image/∂latent (latent W+ (B, L, D)),
  y ~ N(0, I)/√(H·W); the squared gradient is summed over D and averaged over the L layers (rosinality's
  `g_path_regularize`)."""
  images = jax.eval_shape(synthesis_fn, latent)   # the shape only: no forward pass is traced for it
  noise = jax.random.normal(rng, images.shape, images.dtype) / np.sqrt(images.shape[1] * images.shape[2])
  grad = jax.grad(lambda l: jnp.sum(synthesis_fn(l) * noise))(latent)
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grad), axis=2), axis=1))


def path_length_penalty(lengths: jax.Array, pl_mean: jax.Array, decay: float) -> tuple[jax.Array, jax.Array]:
  """(E(length − a)², a) with a = pl_mean + decay·(mean length − pl_mean), held constant (no gradient)."""
  target = jax.lax.stop_gradient(pl_mean + decay * (jnp.mean(lengths) - pl_mean))
  return jnp.mean(jnp.square(lengths - target)), target


def style_mixing_index(rng: jax.Array, probability: float, num_layers: int) -> jax.Array:
  """The crossover layer of one batch: uniform in 1…num_layers − 1 with `probability`, else num_layers (no mix)."""
  use_key, index_key = jax.random.split(rng)
  index = jax.random.randint(index_key, (), 1, num_layers)
  return jnp.where(jax.random.uniform(use_key) < probability, index, num_layers)


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """The EMA decay at `step` (0-based): min(decay, (1 + step) / (10 + step)), so early averages are not dominated
  by the random init (TensorFlow's ExponentialMovingAverage with num_updates)."""
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(jnp.float32(decay), (1.0 + step) / (10.0 + step))


def ema_update(ema, params, decay):
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def lazy_adam(lr, beta1, beta2, lazy_every: int = 0):
  """Adam for a network whose regulariser runs as a separate update every `lazy_every` steps (0 = none).

  StyleGAN2's correction: with k regular updates plus one regularisation update per k steps, lr and betas are
  rescaled by k/(k+1) so the dynamics match an optimizer taking one update per step. A network without a lazy
  regulariser gets plain Adam (ratio 1)."""
  if lazy_every < 0:
    raise ValueError(f"lazy_every must be >= 0, got {lazy_every}")
  ratio = lazy_every / (lazy_every + 1.0) if lazy_every > 0 else 1.0
  return optax.adam(lr * ratio, b1=beta1 ** ratio, b2=beta2 ** ratio, eps=1e-8)
