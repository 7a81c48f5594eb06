"""LPIPS perceptual distance (Zhang et al. 2018) with a VGG backbone, computing what `lpips` 0.1.4 computes.

For images x, y (NHWC, in [-1, 1]):
  1. version 0.1: ScalingLayer (x - shift) / scale with ImageNet-derived constants (version 0.0 skips it);
  2. VGG ReLU taps relu1_2 … relu5_3 (torchvision `features` indices 3, 8, 15, 22, 29) of both images;
  3. each tap unit-normalized over channels, f / (sqrt(Σ_c f²) + 1e-10) (eps outside the sqrt), squared difference;
  4. LPIPS: a 1×1 conv without bias (learned non-negative channel weights) → 1 channel; baseline (`heads=None`,
     lpips=False upstream): the channel sum;
  5. spatial mean per layer (or, with `spatial=True`, the per-layer maps bilinearly upsampled to the input size,
     align_corners=False), summed over layers.

The backbone must be torchvision's ImageNet VGG16 (`vgg16-397923af.pth`) for the distances to mean what the
published heads were trained for; it cannot be shipped or downloaded here. This module reads no file: the network
is built from converted weights (`make_lpips`); `ganlatent_jax.port.lpips.load_lpips` reads the VGG16 (argument or
`GANLATENT_VGG16_PATH`) and the heads shipped with the package (ganlatent_jax/assets/lpips, BSD-2-Clause).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.nets.layers import conv2d
from ganlatent_jax.nets.vgg import VGG, tap_names

# lpips' ScalingLayer constants (v0.1), exactly as float32 like the registered torch buffers.
SCALING_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALING_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
NORMALIZE_EPS = 1e-10


def bilinear_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out, in) interpolation matrix of PyTorch's bilinear `Upsample(size=out)` with align_corners=False.

  Source coordinate (dst + 0.5)·in/out − 0.5, clamped at 0; neighbours floor(src) and min(floor(src)+1, in−1).
  """
  matrix = np.zeros((out_size, in_size), np.float64)
  scale = in_size / out_size
  for dst in range(out_size):
    src = max((dst + 0.5) * scale - 0.5, 0.0)
    lo = min(int(np.floor(src)), in_size - 1)
    hi = min(lo + 1, in_size - 1)
    frac = src - lo
    matrix[dst, lo] += 1.0 - frac
    matrix[dst, hi] += frac
  return matrix.astype(np.float32)


def upsample_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """NHWC bilinear resize to `size` (H, W) with PyTorch's align_corners=False sampling."""
  rows = jnp.asarray(bilinear_resize_matrix(x.shape[1], size[0]))
  cols = jnp.asarray(bilinear_resize_matrix(x.shape[2], size[1]))
  return jnp.einsum("ih,bhwc,jw->bijc", rows, x, cols, precision=jax.lax.Precision.HIGHEST)


def scale_inputs(x: jax.Array) -> jax.Array:
  """lpips' ScalingLayer (v0.1): (x - shift) / scale per RGB channel."""
  return (x - SCALING_SHIFT) / SCALING_SCALE


def normalize_channels(features: jax.Array) -> jax.Array:
  """f / (sqrt(Σ_c f²) + 1e-10). The sqrt's gradient is taken as 0 where Σ f² = 0 (all-zero ReLU features), where
  the plain sqrt would give 0·inf = NaN; values are unchanged."""
  squared_norm = jnp.sum(jnp.square(features), axis=-1, keepdims=True)
  positive = squared_norm > 0
  norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, squared_norm, 1.0)), 0.0)
  return features / (norm + NORMALIZE_EPS)


@flax.struct.dataclass
class LPIPS:
  """LPIPS as a pytree: the VGG variables and head weights are leaves, the backbone module and version static.

  `heads`: one (C,) weight vector per VGG tap, or None for the baseline (channel sum, lpips=False upstream).
  """
  vgg_variables: Any
  heads: Optional[tuple[jax.Array, ...]]
  backbone: VGG = flax.struct.field(pytree_node=False)
  version: str = flax.struct.field(pytree_node=False, default="0.1")

  @property
  def layer_names(self) -> tuple[str, ...]:
    return tap_names(self.backbone.block_widths)

  def layer_differences(self, x: jax.Array, y: jax.Array, *, normalize: bool = False) -> dict[str, jax.Array]:
    """Per layer: (normalize(f_x) − normalize(f_y))², NHWC with the tap's channels (lpips' `diffs`)."""
    if x.shape != y.shape:
      raise ValueError(f"LPIPS inputs must have the same shape, got {x.shape} and {y.shape}")
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"LPIPS expects NHWC RGB images (B, H, W, 3), got shape {x.shape}")
    if normalize:  # [0, 1] → [-1, 1]
      x, y = 2 * x - 1, 2 * y - 1
    if self.version == "0.1":
      x, y = scale_inputs(x), scale_inputs(y)
    taps = self.backbone.apply(self.vgg_variables, jnp.concatenate([x, y]), method=VGG.relu_taps)
    batch = x.shape[0]
    return {name: jnp.square(normalize_channels(f[:batch]) - normalize_channels(f[batch:]))
            for name, f in taps.items()}

  def layer_maps(self, x: jax.Array, y: jax.Array, *, normalize: bool = False) -> dict[str, jax.Array]:
    """Per layer: the (B, H_l, W_l, 1) map before spatial averaging (lin head output, or channel sum)."""
    diffs = self.layer_differences(x, y, normalize=normalize)
    if self.heads is None:
      return {name: jnp.sum(d, axis=-1, keepdims=True) for name, d in diffs.items()}
    return {name: conv2d(d, head.reshape(1, 1, -1, 1).astype(d.dtype), padding=0)
            for (name, d), head in zip(diffs.items(), self.heads)}

  def __call__(self, x: jax.Array, y: jax.Array, *, normalize: bool = False, spatial: bool = False,
               return_per_layer: bool = False):
    """Distances (B,) — or with `spatial`, (B, H, W, 1) maps at the input size. With `return_per_layer`, also the
    per-layer terms stacked on a leading axis ((L, B) or (L, B, H, W, 1)); they sum to the distance."""
    maps = self.layer_maps(x, y, normalize=normalize)
    if spatial:
      terms = [upsample_bilinear(m, x.shape[1:3]) for m in maps.values()]
    else:
      terms = [jnp.mean(m, axis=(1, 2, 3)) for m in maps.values()]
    total = terms[0]
    for term in terms[1:]:  # accumulate in layer order, as lpips does
      total = total + term
    return (total, jnp.stack(terms)) if return_per_layer else total


def make_lpips(backbone: VGG, vgg_variables: Any, heads: Optional[Sequence[np.ndarray]], *, version: str = "0.1",
               source: str = "VGG") -> LPIPS:
  """LPIPS from an already converted VGG (module + variables) and head weights (one (C,) vector per tap, or None
  for the baseline). Reads no file: `ganlatent_jax.port.lpips.load_lpips` reads torchvision's VGG16 and the
  shipped heads and calls this."""
  if version not in ("0.0", "0.1"):
    raise ValueError(f"LPIPS version must be '0.0' or '0.1', got {version!r}")
  widths = tuple(block[-1] for block in backbone.block_widths)
  if heads is not None:
    heads = tuple(jnp.asarray(h, jnp.float32).reshape(-1) for h in heads)
    if tuple(h.shape[0] for h in heads) != widths:
      raise ValueError(f"LPIPS head widths {tuple(h.shape[0] for h in heads)} do not match the VGG taps {widths} "
                       f"of {source}")
  variables = jax.tree_util.tree_map(jnp.asarray, vgg_variables)
  return LPIPS(vgg_variables=variables, heads=heads, backbone=backbone, version=version)


def lpips_distance(x: jax.Array, y: jax.Array, model: LPIPS, *, normalize: bool = False,
                   spatial: bool = False, return_per_layer: bool = False):
  """LPIPS distance between NHWC image batches in [-1, 1] (`normalize=True`: inputs in [0, 1]).

  `model`: an `LPIPS` (e.g. `ganlatent_jax.port.lpips.default_lpips()`, which reads the VGG16 named by
  $GANLATENT_VGG16_PATH). Inside `jax.jit`, pass `model` as an argument so its weights are traced arrays rather than
  constants baked into the program. See `LPIPS.__call__` for the outputs.
  """
  return model(x, y, normalize=normalize, spatial=spatial, return_per_layer=return_per_layer)
