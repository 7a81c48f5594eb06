"""Convolution primitives every network of the library uses (NHWC activations, HWIO kernels).

Each primitive has one meaning (written here, matching PyTorch's where a ported network needs it) and may have
several lowerings that compute the same numbers; `lowering="auto"` picks by shape. `"xla"` is the reference
lowering through `lax.conv_general_dilated`; tests compare every other lowering against it (values and gradients).
"""
from __future__ import annotations

from typing import Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Padding = Union[str, int, Sequence[tuple[int, int]]]
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def _explicit_padding(padding: Padding, kernel_hw, dilation=(1, 1)):
  if isinstance(padding, str):
    return padding
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  return tuple((int(lo), int(hi)) for lo, hi in padding)


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x: jax.Array, kernel: jax.Array, *, stride=1, padding: Padding = "SAME", dilation=1,
           feature_group_count: int = 1, lowering: str = "auto") -> jax.Array:
  """2-D cross-correlation, NHWC × HWIO → NHWC (PyTorch's `conv2d` with the kernel in HWIO, no bias).

  `padding` is "SAME"/"VALID", an int (symmetric, as PyTorch's `padding=`), or ((top, bottom), (left, right)).
  """
  del lowering  # Only the reference lowering so far.
  return lax.conv_general_dilated(
      x, kernel, window_strides=_pair(stride), padding=_explicit_padding(padding, kernel.shape[:2]),
      rhs_dilation=_pair(dilation), dimension_numbers=_DIMENSION_NUMBERS,
      feature_group_count=feature_group_count, precision=lax.Precision.HIGHEST)


def conv_transpose2d(x: jax.Array, kernel: jax.Array, *, stride=2, padding=0, output_padding=0,
                     lowering: str = "auto") -> jax.Array:
  """PyTorch's `conv_transpose2d` (the gradient of `conv2d` w.r.t. its input), NHWC.

  `kernel` is PyTorch's (in, out, kh, kw) weight transposed to (kh, kw, in, out) — no spatial flip; the flip that
  turns the transposed conv into a dilated forward conv is done here, once.
  """
  del lowering
  kh, kw = kernel.shape[:2]
  sh, sw = _pair(stride)
  ph, pw = _pair(padding)
  oph, opw = _pair(output_padding)
  flipped = kernel[::-1, ::-1]
  return lax.conv_general_dilated(
      x, flipped, window_strides=(1, 1),
      padding=((kh - 1 - ph, kh - 1 - ph + oph), (kw - 1 - pw, kw - 1 - pw + opw)),
      lhs_dilation=(sh, sw), dimension_numbers=_DIMENSION_NUMBERS, precision=lax.Precision.HIGHEST)


class Conv2d(nn.Module):
  """A conv layer with the parameter tree of `flax.linen.Conv` ('kernel' HWIO, 'bias'), lowered by `conv2d`."""
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  stride: int = 1
  padding: Padding = "SAME"
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros
  lowering: str = "auto"

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init, (*_pair(self.kernel_size), x.shape[-1], self.features))
    y = conv2d(x, kernel.astype(x.dtype), stride=self.stride, padding=self.padding, lowering=self.lowering)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(x.dtype)
    return y


def depth_to_space(x: jax.Array, block: int) -> jax.Array:
  """(B, H, W, C·r²) → (B, H·r, W·r, C), channel order (r_h, r_w, C) as `jax.nn`/TF's depth_to_space."""
  b, h, w, c = x.shape
  c_out = c // (block * block)
  x = x.reshape(b, h, w, block, block, c_out)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * block, w * block, c_out)


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling (PyTorch's `F.interpolate(scale_factor=f)` default)."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
