"""LatentCLR's direction models: K edits D_k(z) = z + α_k · f_k(z) / ‖f_k(z)‖ of a latent z (Yüksel et al. 2021).

Three kinds of f_k, as upstream (catlab-team/latentclr `colat/models`):
  'global'    f_k(z) = d_k, a free vector per direction (upstream `Fixed`, init N(0, 1));
  'linear'    f_k(z) = M_k z, one bias-free square matrix per direction (upstream `LinearConditional`, whose
              `bias=False` is in fact ignored by its `create_mlp(depth=1)`: upstream's linear model has a bias);
  'nonlinear' f_k(z) = an MLP per direction: Linear → [BatchNorm → ReLU → Linear] × (depth − 1), the last Linear
              bias-free (upstream `NonlinearConditional` with `create_mlp(depth=3)`).
Linear layers start like PyTorch's `nn.Linear` (weights and biases U(±1/√fan_in)); BatchNorm uses PyTorch's
momentum 0.1 and ε 1e-5 and, in training, the statistics of the whole (global, sharded) batch.

`apply_directions` returns the unit directions f_k(z)/‖f_k(z)‖ as (K, N, D); `edit` adds α_k times them to z. The
step sizes α are drawn by `sample_alphas`: fixed (lo == hi) or U[lo, hi] independently per direction per step.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

KINDS = ("global", "linear", "nonlinear")
_EPS = 1e-12


def _torch_uniform(fan_in: int):
  """PyTorch's nn.Linear init for weights and biases: U(−1/√fan_in, 1/√fan_in)."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(rng, shape, dtype=jnp.float32):
    return jax.random.uniform(rng, shape, dtype, -bound, bound)
  return init


def unit(x: jax.Array, axis: int = -1) -> jax.Array:
  """x / ‖x‖ along `axis`; the ε keeps the gradient finite at x = 0 (upstream divides by the bare norm)."""
  return x * jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True) + _EPS)


class _DirectionMLP(nn.Module):
  """One direction's f: Linear → [BatchNorm → ReLU → Linear] × (depth − 1); the last Linear has no bias."""
  dim: int
  depth: int
  train: bool

  @nn.compact
  def __call__(self, z):
    init = _torch_uniform(self.dim)
    x = nn.Dense(self.dim, use_bias=self.depth > 1, kernel_init=init, bias_init=init, name="linear_0")(z)
    for i in range(1, self.depth):
      x = nn.BatchNorm(use_running_average=not self.train, momentum=0.9, epsilon=1e-5, name=f"batchnorm_{i}")(x)
      x = nn.relu(x)
      x = nn.Dense(self.dim, use_bias=i < self.depth - 1, kernel_init=init, bias_init=init, name=f"linear_{i}")(x)
    return x


class DirectionModel(nn.Module):
  """z (N, D) → unit directions (K, N, D). `train` selects batch (True) or running (False) BatchNorm statistics."""
  kind: str
  num_directions: int
  dim: int
  depth: int = 3

  def setup(self):
    if self.kind not in KINDS:
      raise ValueError(f"LatentCLR model kind={self.kind!r}; expected one of {KINDS}")
    if self.kind == "nonlinear" and self.depth < 1:
      raise ValueError(f"LatentCLR nonlinear model depth={self.depth} must be ≥ 1")

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
    k, d = self.num_directions, self.dim
    if z.ndim != 2 or z.shape[-1] != d:
      raise ValueError(f"LatentCLR direction model expects latents (N, {d}), got {z.shape}")
    if self.kind == "global":
      directions = self.param("directions", nn.initializers.normal(1.0), (k, d))
      raw = jnp.broadcast_to(directions[:, None, :], (k, z.shape[0], d))
    elif self.kind == "linear":
      # kernel[k] maps z to f_k(z) = z @ kernel[k] (i.e. M_k = kernel[k]ᵀ), PyTorch's bias-free nn.Linear init.
      kernel = self.param("kernel", _torch_uniform(d), (k, d, d))
      raw = jnp.einsum("nd,kde->kne", z, kernel)
    else:
      nets = nn.vmap(_DirectionMLP, variable_axes={"params": 0, "batch_stats": 0},
                     split_rngs={"params": True}, in_axes=None, out_axes=0, axis_size=k)
      raw = nets(dim=d, depth=self.depth, train=train, name="nets")(z)
    return unit(raw)


def make_model(kind: str, num_directions: int, dim: int, depth: int = 3) -> DirectionModel:
  if num_directions < 2:
    raise ValueError(f"LatentCLR needs at least 2 directions (the negatives are the other directions), "
                     f"got num_directions={num_directions}")
  return DirectionModel(kind=kind, num_directions=int(num_directions), dim=int(dim), depth=int(depth))


def init_variables(model: DirectionModel, rng: jax.Array) -> dict[str, Any]:
  """{'params': ..., ['batch_stats': ...]} of a model (two samples, so BatchNorm sees a batch)."""
  variables = model.init({"params": rng}, jnp.zeros((2, model.dim), jnp.float32), train=False)
  return dict(variables)


def apply_directions(model: DirectionModel, variables, z: jax.Array, train: bool = False):
  """Unit directions (K, N, D) at z; with train=True also the updated BatchNorm statistics (or {} without BN)."""
  if not train:
    return model.apply(variables, z, train=False)
  mutable = ["batch_stats"] if "batch_stats" in variables else []
  if not mutable:
    return model.apply(variables, z, train=True), {}
  directions, updates = model.apply(variables, z, train=True, mutable=mutable)
  return directions, dict(updates)


def sample_alphas(rng: jax.Array, num_directions: int, alpha: tuple[float, float]) -> jax.Array:
  """(K,) step sizes: α fixed when lo == hi, else U[lo, hi] drawn independently per direction."""
  lo, hi = float(alpha[0]), float(alpha[1])
  if lo > hi:
    raise ValueError(f"LatentCLR alpha=({lo}, {hi}): the lower bound exceeds the upper")
  if lo == hi:
    return jnp.full((num_directions,), lo, jnp.float32)
  return jax.random.uniform(rng, (num_directions,), jnp.float32, lo, hi)


def edit(z: jax.Array, directions: jax.Array, alphas: jax.Array) -> jax.Array:
  """z (N, D), unit directions (K, N, D), α (K,) → edited latents z + α_k d_k(z), (K, N, D)."""
  return z[None] + alphas[:, None, None] * directions


def global_matrix(variables) -> jax.Array:
  """A global model's unit directions as columns (D × K), the layout of `Directions.matrix`."""
  params = variables["params"]
  if "directions" not in params:
    raise ValueError("only a 'global' LatentCLR model has fixed directions; for 'linear'/'nonlinear' use "
                     "methods.latentclr.per_sample_directions")
  return unit(params["directions"]).T
