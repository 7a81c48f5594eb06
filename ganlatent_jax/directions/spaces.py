"""Moving between a generator's latent spaces and rendering shifted latents (every method and picture uses this).

'z': the prior sample itself; 'w': StyleGAN2's mapped latent (optionally truncated towards the mean w); 'w+': one w
per synthesis layer (B, num_ws, D). Truncation follows StyleGAN2: w ← w̄ + ψ (w − w̄), with w̄ computed once.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators.base import Generator


def mean_w(gen: Generator, rng: jax.Array, num_samples: int = 4096) -> jax.Array:
  """w̄ = mean of mapping(z) over `num_samples` z (computed once per run, not per step)."""
  return jnp.mean(gen.mapping(gen.sample_z(rng, num_samples)), axis=0)


def to_space(gen: Generator, z: jax.Array, space: str, truncation: float | None = None,
             w_avg: jax.Array | None = None) -> jax.Array:
  if space == "z":
    return z
  w = gen.mapping(z)
  if truncation is not None and truncation != 1.0:
    if w_avg is None:
      raise ValueError("truncation in W needs w_avg (directions.spaces.mean_w)")
    w = w_avg + truncation * (w - w_avg)
  if space == "w":
    return w
  if space == "w+":
    return jnp.broadcast_to(w[:, None, :], (w.shape[0], gen.info.num_ws, w.shape[-1]))
  raise ValueError(f"unknown latent space {space!r}; expected 'z', 'w' or 'w+'")


def render(gen: Generator, latents: jax.Array, space: str, **gen_kwargs) -> jax.Array:
  """Images (NHWC, the generator's raw range) of latents that live in `space`."""
  if space == "z":
    return gen(latents, **gen_kwargs)
  return gen.synthesis(latents, **gen_kwargs)


def render_shifted(gen: Generator, directions: Directions, z: jax.Array, coefficients: jax.Array,
                   truncation: float | None = None, w_avg: jax.Array | None = None, **gen_kwargs) -> jax.Array:
  """Images of z moved by D·coefficients in the directions' space."""
  latents = to_space(gen, z, directions.space, truncation, w_avg)
  return render(gen, directions.shift(latents, coefficients), directions.space, **gen_kwargs)


@functools.partial(jax.jit, static_argnames=("space",))
def render_jit(gen: Generator, latents: jax.Array, space: str) -> jax.Array:
  return render(gen, latents, space)
