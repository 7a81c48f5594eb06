"""StyleGAN2 resampling and modulated-convolution primitives (NHWC), built on `nets.layers` convolutions.

* `upfirdn2d`: upsample by zero insertion, pad (negative = crop), convolve with a 2-D FIR kernel (true convolution,
  i.e. correlation with the flipped kernel), downsample by striding — the semantics of StyleGAN2's `upfirdn2d`.
* `make_kernel`: a 1-D kernel becomes its outer product; the result is normalized to sum 1.
* `modulated_conv2d`: StyleGAN2's style-modulated convolution in the batched form: scale the input channels by the
  per-sample style, run one convolution with the shared weight, scale the output channels by the demodulation
  coefficients. This equals convolving each sample with its own modulated (and demodulated) weight, because both
  scalings are per-channel and commute with the (linear) convolution, transposed convolution and blur.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganlatent_jax.nets import layers

DEMODULATION_EPS = 1e-8


def make_kernel(kernel: Sequence[float] | np.ndarray) -> np.ndarray:
  """A normalized 2-D FIR kernel (float32): 1-D input → outer product; divided by its sum."""
  k = np.asarray(kernel, np.float64)
  if k.ndim == 1:
    k = np.outer(k, k)
  if k.ndim != 2:
    raise ValueError(f"FIR kernel must be 1-D or 2-D, got shape {k.shape}")
  return (k / k.sum()).astype(np.float32)


def _pair(v) -> tuple[int, int]:
  return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _separate(kernel) -> tuple[np.ndarray, np.ndarray] | None:
  """(column, row) 1-D factors of a concrete rank-1 2-D kernel, or None (traced or not separable)."""
  try:
    k = np.asarray(kernel, np.float64)
  except (TypeError, jax.errors.TracerArrayConversionError):
    return None
  u, sv, vt = np.linalg.svd(k)
  if sv.size > 1 and sv[1] > 1e-7 * sv[0]:
    return None
  col, row = u[:, 0] * sv[0], vt[0]
  sign = 1.0 if row.sum() >= 0 else -1.0
  return col * sign, row * sign


def _fir_axis(x: jax.Array, taps, axis: int, down: int) -> jax.Array:
  """Correlation along one axis of an already padded x with `taps`, keeping every `down`-th output."""
  n = x.shape[axis] - len(taps) + 1
  out = None
  for i, tap in enumerate(taps):
    start = [0] * x.ndim
    limit = list(x.shape)
    strides = [1] * x.ndim
    start[axis], limit[axis], strides[axis] = i, i + (n - 1) // down * down + 1, down
    term = lax.slice(x, start, limit, strides) * tap
    out = term if out is None else out + term
  return out


def upfirdn2d(x: jax.Array, kernel, *, up=1, down=1, pad=(0, 0)) -> jax.Array:
  """Upsample, FIR-filter, downsample; x NHWC, `kernel` 2-D (applied as a true convolution, per channel).

  `up`/`down` are an int or (y, x); `pad` is (p0, p1) for both axes or (py0, py1, px0, px1), as upstream. Output
  height: (H·up_y + py0 + py1 − kh) // down_y + 1.

  The filter is a weighted sum of shifted (strided) slices, separably when the kernel is a concrete rank-1 matrix:
  memory-bound elementwise work that XLA:CPU runs ~50× faster than a depthwise convolution (forward and backward).
  """
  up_y, up_x = _pair(up)
  down_y, down_x = _pair(down)
  if len(pad) == 2:
    py0, py1, px0, px1 = pad[0], pad[1], pad[0], pad[1]
  else:
    py0, py1, px0, px1 = pad
  kh, kw = np.shape(kernel)
  # Zero insertion (interior padding, plus up−1 trailing zeros so the length is H·up) and the edge padding/cropping
  # in one lax.pad: negative edges crop, exactly like upstream's pad-then-slice.
  zero = jnp.zeros((), x.dtype)
  x = lax.pad(x, zero, ((0, 0, 0), (py0, py1 + up_y - 1, up_y - 1), (px0, px1 + up_x - 1, up_x - 1), (0, 0, 0)))
  if x.shape[1] < kh or x.shape[2] < kw:
    raise ValueError(f"upfirdn2d: kernel {(kh, kw)} larger than the padded input {x.shape[1:3]}")
  factors = _separate(kernel)
  if factors is not None:  # true convolution = correlation with the flipped taps
    col, row = factors
    x = _fir_axis(x, [float(t) for t in col[::-1]], 1, down_y)
    return _fir_axis(x, [float(t) for t in row[::-1]], 2, down_x)
  flipped = jnp.asarray(kernel, x.dtype)[::-1, ::-1]
  out_h = (x.shape[1] - kh) // down_y + 1
  out_w = (x.shape[2] - kw) // down_x + 1
  out = None
  for i in range(kh):
    for j in range(kw):
      window = lax.slice(x, (0, i, j, 0), (x.shape[0], i + (out_h - 1) * down_y + 1, j + (out_w - 1) * down_x + 1,
                                           x.shape[3]), (1, down_y, down_x, 1))
      term = window * flipped[i, j]
      out = term if out is None else out + term
  return out


def upsample_pads(kernel_size: int, factor: int = 2) -> tuple[int, int]:
  """Padding of StyleGAN2's `Upsample` (×factor then FIR) so that the output is exactly factor× the input."""
  p = kernel_size - factor
  return (p + 1) // 2 + factor - 1, p // 2


def upsample_conv_blur_pads(blur_size: int, conv_size: int, factor: int = 2) -> tuple[int, int]:
  """Blur padding after a stride-`factor` transposed conv of size `conv_size` (output exactly factor× the input)."""
  p = (blur_size - factor) - (conv_size - 1)
  return (p + 1) // 2 + factor - 1, p // 2 + 1


def upsample_2d(x: jax.Array, kernel, factor: int = 2) -> jax.Array:
  """StyleGAN2's `Upsample`: zero insertion ×factor then the FIR kernel scaled by factor² (keeps the DC gain)."""
  kernel = np.asarray(kernel, np.float32) * (factor ** 2)
  return upfirdn2d(x, kernel, up=factor, pad=upsample_pads(kernel.shape[0], factor))


def modulated_conv2d(x: jax.Array, kernel: jax.Array, style: jax.Array, *, demodulate: bool = True,
                     upsample: bool = False, blur_kernel=None, lowering: str = "auto") -> jax.Array:
  """StyleGAN2's modulated conv (upstream `ModulatedConv2d`, fused or not), in the batched form.

  x: (B, H, W, in); kernel: (k, k, in, out) in stored N(0, 1) scale (the equalized-lr factor 1/sqrt(in·k²) is applied
  here); style: (B, in), the output of the modulation layer. With `upsample`, a stride-2 transposed conv (padding 0)
  followed by a blur with `blur_kernel` (normalized 2-D, multiplied by 4 here as upstream); otherwise a stride-1 conv
  with padding k//2. Demodulation divides each output channel by the norm of its per-sample modulated weight.
  """
  kh, kw, in_channels, _ = kernel.shape
  scale = 1.0 / math.sqrt(in_channels * kh * kw)
  style = style.astype(x.dtype)
  x = x * (style * scale)[:, None, None, :]
  kernel = kernel.astype(x.dtype)
  if upsample:
    factor = 2
    x = layers.conv_transpose2d(x, kernel, stride=factor, padding=0, lowering=lowering)
    blur = np.asarray(blur_kernel, np.float32) * (factor ** 2)
    x = upfirdn2d(x, blur, pad=upsample_conv_blur_pads(blur.shape[0], kh, factor))
  else:
    x = layers.conv2d(x, kernel, stride=1, padding=((kh // 2, kh // 2), (kw // 2, kw // 2)), lowering=lowering)
  if demodulate:
    # Σ_{i,kh,kw} (scale·W[kh,kw,i,o]·s[b,i])² = scale² Σ_i s[b,i]² Σ_{kh,kw} W[kh,kw,i,o]².
    weight_sq = jnp.sum(jnp.square(kernel), axis=(0, 1))                    # (in, out)
    sq_norm = jnp.dot(jnp.square(style), weight_sq, precision=lax.Precision.HIGHEST) * (scale * scale)
    x = x * lax.rsqrt(sq_norm + DEMODULATION_EPS)[:, None, None, :]
  return x
