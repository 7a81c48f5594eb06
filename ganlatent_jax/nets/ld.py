"""GANLatentDiscovery (Voynov & Babenko, 2020) networks: the latent deformator and the LeNet shift predictor.

Also the ResNet-18 shift predictor ("reconstructor"), a torchvision ResNet (`nets.resnet`) on the two images
concatenated along channels, with two Linear heads on the pooled features.

The deformator maps a "basis shift" (one-hot direction index × magnitude, shape (B, input_dim)) to a shift in the
generator's latent space (B, shift_dim). Six upstream variants:
  * 'fc'     — 3 × (Linear → BN → ELU) with dense residual sums, a last Linear, plus the input (input = out dim);
  * 'linear' — a Linear layer (with bias);
  * 'proj'   — the same Linear, its output rescaled to the L2 norm of the input;
  * 'ortho'  — `x @ expm(A − Aᵀ)ᵀ` (an orthogonal matrix parametrised by the unconstrained `log_mat_half` A);
  * 'id'     — the identity;
  * 'random' — a fixed (not trained, not saved upstream) matrix R, `x @ Rᵀ`; kept in the 'constants' collection.
Like upstream, outputs shorter than `shift_dim` are zero-padded and longer ones truncated (every type but 'id').

BatchNorm layers are PyTorch's (`nets.resnet.BatchNorm`, eps 1e-5, momentum 0.1); `train=False` (the default) is
eval mode; with `train=True` apply with `mutable=["batch_stats"]`.
"""
from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import jax.scipy.linalg

from ganlatent_jax.nets import layers
from ganlatent_jax.nets.resnet import BatchNorm, ResNet

DEFORMATOR_TYPES = ("fc", "linear", "id", "ortho", "proj", "random")
LINEAR_DEFORMATOR_TYPES = ("linear", "id", "ortho", "proj", "random")  # a direction matrix exists
BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # PyTorch's convention (weight of the new batch), as `nets.resnet.BatchNorm`


def _batch_norm(name: str, train: bool):
  """PyTorch-exact BatchNorm (running variance updated with the unbiased batch variance), applied to x."""
  norm = BatchNorm(momentum=BN_MOMENTUM, epsilon=BN_EPS, name=name)
  return lambda x: norm(x, train)


def _fit_width(x: jax.Array, width: int) -> jax.Array:
  """Zero-pads or truncates the last axis to `width` (upstream's fit of the output to the latent size)."""
  have = x.shape[-1]
  if have < width:
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, width - have)])
  return x[..., :width]


def orthogonal_matrix(log_mat_half: jax.Array) -> jax.Array:
  """expm(A − Aᵀ): the exponential of a skew-symmetric matrix is orthogonal."""
  return jax.scipy.linalg.expm(log_mat_half - log_mat_half.T)


class LatentDeformator(nn.Module):
  """(B, input_dim) basis shifts → (B, shift_dim) latent shifts. See the module docstring for the types."""
  type: str
  input_dim: int
  out_dim: int
  shift_dim: Optional[int] = None  # the generator's latent size; defaults to out_dim
  inner_dim: int = 1024            # 'fc' only (upstream default)

  @property
  def latent_width(self) -> int:
    return self.out_dim if self.shift_dim is None else self.shift_dim

  @nn.compact
  def __call__(self, shifts: jax.Array, train: bool = False) -> jax.Array:
    if self.type not in DEFORMATOR_TYPES:
      raise ValueError(f"unknown deformator type {self.type!r}; known: {DEFORMATOR_TYPES}")
    if self.type in ("fc", "ortho", "id") and self.input_dim != self.out_dim:
      raise ValueError(f"a {self.type!r} deformator needs input_dim == out_dim, "
                       f"got {self.input_dim} and {self.out_dim}")
    if shifts.shape[-1] != self.input_dim:
      raise ValueError(f"deformator input has {shifts.shape[-1]} features, expected input_dim={self.input_dim}")
    if self.type == "id":
      return shifts
    x = shifts.reshape(-1, self.input_dim)
    if self.type == "fc":
      h1 = nn.Dense(self.inner_dim, name="fc1")(x)
      h = nn.elu(_batch_norm("bn1", train)(h1))
      h2 = nn.Dense(self.inner_dim, name="fc2")(h)
      h = nn.elu(_batch_norm("bn2", train)(h2 + h1))
      h3 = nn.Dense(self.inner_dim, name="fc3")(h)
      h = nn.elu(_batch_norm("bn3", train)(h3 + h2 + h1))
      out = nn.Dense(self.out_dim, name="fc4")(h) + x
    elif self.type in ("linear", "proj"):
      out = nn.Dense(self.out_dim, name="linear", kernel_init=_eye_init)(x)
      if self.type == "proj":
        out = out * (jnp.linalg.norm(x, axis=1, keepdims=True) / jnp.linalg.norm(out, axis=1, keepdims=True))
    elif self.type == "ortho":
      log_mat_half = self.param("log_mat_half", nn.initializers.normal(0.001), (self.input_dim, self.input_dim))
      out = x @ orthogonal_matrix(log_mat_half).T
    else:  # random
      matrix = self.variable("constants", "matrix", lambda: nn.initializers.orthogonal()(
          self.make_rng("params"), (self.out_dim, self.input_dim))).value
      out = x @ matrix.T
    return _fit_width(out, self.latent_width).reshape(*shifts.shape[:-1], self.latent_width)


def _eye_init(rng, shape, dtype=jnp.float32):
  """Upstream's linear/proj init: identity on the leading square block (kernel is (in, out))."""
  del rng
  return jnp.eye(*shape, dtype=dtype)


def deformator_direction_matrix(module: LatentDeformator, variables) -> jax.Array:
  """The (latent_dim, K) matrix whose column k is the latent direction of basis shift k, for linear-type deformators.

  'linear'/'proj': the Linear weight (the bias is a constant offset, not part of the direction; 'proj' additionally
  rescales each shift to the input's norm, so the column is its direction, not its length); 'ortho': expm(A − Aᵀ);
  'random': the fixed matrix; 'id': the identity. Rows are padded/truncated to the latent size like the outputs.
  """
  if module.type == "fc":
    raise ValueError("an 'fc' deformator is non-linear: it has no direction matrix "
                     f"(linear-type deformators: {LINEAR_DEFORMATOR_TYPES})")
  if module.type in ("linear", "proj"):
    matrix = jnp.asarray(variables["params"]["linear"]["kernel"]).T
  elif module.type == "ortho":
    matrix = orthogonal_matrix(jnp.asarray(variables["params"]["log_mat_half"]))
  elif module.type == "random":
    matrix = jnp.asarray(variables["constants"]["matrix"])
  elif module.type == "id":
    matrix = jnp.eye(module.input_dim, dtype=jnp.float32)
  else:
    raise ValueError(f"unknown deformator type {module.type!r}")
  if module.type == "id":
    return matrix
  return _fit_width(matrix.T, module.latent_width).T


class LeNetShiftPredictor(nn.Module):
  """Upstream `LeNetShiftPredictor(dim, channels, width)`: (x1, x2) NHWC images → (logits (B, dim), shift (B,)).

  Three 5×5 VALID convs (3w, 8w, 60w channels) with BN + ReLU, 2×2 max-pools after the first two, a spatial mean,
  then two heads Linear(60w → 42w) → BN → ReLU → Linear (dim logits / 1 shift magnitude).
  """
  num_directions: int
  channels: int = 3
  width: int = 2

  @nn.compact
  def __call__(self, x1: jax.Array, x2: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    x = jnp.concatenate([x1, x2], axis=-1)  # upstream concatenates the NCHW channel axis: same order
    for i, width in enumerate((3 * self.width, 8 * self.width, 60 * self.width)):
      x = layers.Conv2d(width, kernel_size=(5, 5), padding="VALID", name=f"conv{i + 1}")(x)
      x = nn.relu(_batch_norm(f"bn{i + 1}", train)(x))
      if i < 2:
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
    features = x.mean(axis=(1, 2))

    def head(name: str, out: int) -> jax.Array:
      h = nn.Dense(42 * self.width, name=f"{name}_hidden")(features)
      h = nn.relu(_batch_norm(f"{name}_bn", train)(h))
      return nn.Dense(out, name=f"{name}_out")(h)

    return head("logits", self.num_directions), head("shift", 1)[:, 0]


class ResNetShiftPredictor(nn.Module):
  """Upstream `LatentShiftPredictor` / `ResNetShiftPredictor(dim)`: a torchvision ResNet on concat(x1, x2) (NHWC,
  2·C input channels) with heads `type_estimator` (dim logits) and `shift_estimator` (1) on the average-pooled
  features; its ImageNet `fc` head is computed but unused upstream, so it is not kept here.
  (Upstream's optional `downsample` resize of the inputs is not supported: it is off by default.)"""
  num_directions: int
  stem_width: int = 64
  stage_widths: tuple[int, ...] = (64, 128, 256, 512)
  blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2)

  def setup(self):
    self.features_extractor = ResNet(
        stem_width=self.stem_width, stage_widths=self.stage_widths, blocks_per_stage=self.blocks_per_stage,
        heads=(("type_estimator", self.num_directions), ("shift_estimator", 1)))

  def __call__(self, x1: jax.Array, x2: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    out = self.features_extractor(jnp.concatenate([x1, x2], axis=-1), train)
    return out["type_estimator"], out["shift_estimator"][:, 0]
