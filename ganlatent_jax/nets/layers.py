"""Convolution primitives every network of the library uses (NHWC activations, HWIO kernels).

Each primitive has one meaning (written here, matching PyTorch's where a ported network needs it) and several
lowerings that compute the same numbers; `lowering="auto"` picks by shape. `"xla"` is the reference lowering through
`lax.conv_general_dilated`; tests compare every other lowering against it (values and gradients).

Why other lowerings: XLA:CPU's convolution emitters are slow on the small feature maps of GANs and CIFAR/64² nets
(a 3×3 conv on a 2×2×512 map runs ~40× slower than the same maths as one matmul), and on transposed convs (which
it runs as a dilated conv, mostly multiplying zeros). The lowerings here turn every convolution into matmuls plus
memory-bound slicing/padding, so the forward AND the autodiff backward are matmuls:
  * conv2d "patches": im2col by strided slicing (one slice per tap, stacked) → one matmul with the (kh·kw·I, O)
    kernel. Its backward is two matmuls plus the adjoint of the slicing, an overlap-add of padded slices ("col2im").
    1×1 convs are a plain matmul (after a strided slice).
  * conv_transpose2d "patches": the adjoint of the above — one matmul (B·H·W, I) × (I, kh·kw·O), then col2im.
    Same FLOPs as the useful maths (what PyTorch's CPU transposed conv does).
  * conv_transpose2d "subpixel": the stride-s transposed conv split into s² phase kernels, run as ONE stride-1 conv
    producing s²·O channels followed by depth-to-space and a crop. Exact for any kernel/stride/padding/output
    padding; wastes the zero taps of the shorter phases when the kernel size is not a multiple of the stride.
    Its stride-1 conv goes through `conv2d(lowering="auto")`.
`"auto"` uses what measured fastest (see `_auto_conv_lowering`, `_auto_conv_transpose_lowering`).
"""
from __future__ import annotations

from typing import Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Padding = Union[str, int, Sequence[tuple[int, int]]]
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
CONV_LOWERINGS = ("auto", "xla", "patches")
# "subpixel_patches": subpixel with its stride-1 conv forced to im2col + matmul (the β-VAE decoder's 16×16 layers,
# whose native-conv backward is ~17× slower at batch 128; "auto" keeps the measured default of the GAN layers).
CONV_TRANSPOSE_LOWERINGS = ("auto", "xla", "patches", "subpixel", "subpixel_patches")


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(int(a) for a in v)


def _explicit_padding(padding: Padding, kernel_hw, dilation=(1, 1)):
  """The padding as XLA takes it: "SAME"/"VALID" strings pass through, ints become symmetric pairs."""
  if isinstance(padding, str):
    return padding
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  if len(padding) == 2 and all(isinstance(p, int) for p in padding):  # PyTorch's (ph, pw)
    return tuple((int(p), int(p)) for p in padding)
  return tuple((int(lo), int(hi)) for lo, hi in padding)


def _resolve_padding(padding: Padding, in_hw, kernel_hw, stride, dilation) -> tuple[tuple[int, int], ...]:
  """Explicit ((top, bottom), (left, right)) padding, resolving "SAME"/"VALID" exactly as XLA does."""
  padding = _explicit_padding(padding, kernel_hw, dilation)
  if isinstance(padding, str):
    dilated_kernel = [(k - 1) * d + 1 for k, d in zip(kernel_hw, dilation)]
    return tuple(lax.padtype_to_pads(in_hw, dilated_kernel, stride, padding.upper()))
  return padding


def _check_lowering(lowering: str, allowed: tuple[str, ...], what: str):
  if lowering not in allowed:
    raise ValueError(f"{what}: unknown lowering {lowering!r}; choose one of {allowed}")


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


# ----------------------------------------------------------------------------------------------------------------
# conv2d


def conv2d(x: jax.Array, kernel: jax.Array, *, stride=1, padding: Padding = "SAME", dilation=1,
           feature_group_count: int = 1, lowering: str = "auto") -> jax.Array:
  """2-D cross-correlation, NHWC × HWIO → NHWC (PyTorch's `conv2d` with the kernel in HWIO, no bias).

  `padding` is "SAME"/"VALID", an int or (ph, pw) (symmetric, as PyTorch's `padding=`), or
  ((top, bottom), (left, right)).
  `lowering`: "xla" (lax.conv_general_dilated), "patches" (im2col + matmul) or "auto" (by shape).
  """
  _check_lowering(lowering, CONV_LOWERINGS, "conv2d")
  stride, dilation = _pair(stride), _pair(dilation)
  if x.ndim != 4 or kernel.ndim != 4:
    raise ValueError(f"conv2d: expected x NHWC and kernel HWIO, got shapes {x.shape} and {kernel.shape}")
  if x.shape[-1] != kernel.shape[2] * feature_group_count:
    raise ValueError(f"conv2d: input has {x.shape[-1]} channels but kernel {kernel.shape} (HWIO) with "
                     f"feature_group_count={feature_group_count} expects {kernel.shape[2] * feature_group_count}")
  if lowering == "auto":
    lowering = _auto_conv_lowering(x.shape, kernel.shape, stride, feature_group_count)
  if lowering == "xla":
    return lax.conv_general_dilated(
        x, kernel, window_strides=stride, padding=_explicit_padding(padding, kernel.shape[:2], dilation),
        rhs_dilation=dilation, dimension_numbers=_DIMENSION_NUMBERS,
        feature_group_count=feature_group_count, precision=lax.Precision.HIGHEST)
  pads = _resolve_padding(padding, x.shape[1:3], kernel.shape[:2], stride, dilation)
  return _conv_patches(x, kernel, stride, pads, dilation, feature_group_count)


def _auto_conv_lowering(x_shape, kernel_shape, stride, groups) -> str:
  # Measured on XLA:CPU (jax 0.10.2, 2-core AVX-512, batch 64, forward and backward): the native conv is fine on
  # maps of 8×8 and more (and far better for few-channel stems, whose im2col is a slow fine-grained concat), but
  # collapses on tiny maps (3×3 on 2×2×512: ~1 s vs 45 ms as patches; strided backward on 4×4 maps ~10× slower).
  # 1×1 convs are plain matmuls everywhere.
  kh, kw = kernel_shape[:2]
  if kh == kw == 1:
    return "patches"
  out_h, out_w = (-(-n // s) for n, s in zip(x_shape[1:3], stride))
  if groups == 1 and out_h * out_w <= 16:
    return "patches"
  return "xla"


def _im2col(x: jax.Array, kernel_hw, stride, pads, dilation) -> jax.Array:
  """(B, H, W, C) → (B, Ho, Wo, kh·kw, C): one strided slice of the padded input per kernel tap."""
  (kh, kw), (sh, sw), (dh, dw) = kernel_hw, stride, dilation
  x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))
  b, h, w, c = x.shape
  out_h = (h - (kh - 1) * dh - 1) // sh + 1
  out_w = (w - (kw - 1) * dw - 1) // sw + 1
  if out_h <= 0 or out_w <= 0:
    raise ValueError(f"conv2d: kernel {kernel_hw} (dilation {dilation}) larger than the padded input {(h, w)}")
  taps = [lax.slice(x, (0, i * dh, j * dw, 0), (b, i * dh + (out_h - 1) * sh + 1, j * dw + (out_w - 1) * sw + 1, c),
                    (1, sh, sw, 1))
          for i in range(kh) for j in range(kw)]
  return taps[0][:, :, :, None] if len(taps) == 1 else jnp.stack(taps, axis=3)


def _conv_patches(x, kernel, stride, pads, dilation, groups):
  kh, kw, c_in_group, c_out = kernel.shape
  cols = _im2col(x, (kh, kw), stride, pads, dilation)
  b, out_h, out_w = cols.shape[:3]
  if groups == 1:
    y = _matmul(cols.reshape(b * out_h * out_w, kh * kw * c_in_group), kernel.reshape(kh * kw * c_in_group, c_out))
    return y.reshape(b, out_h, out_w, c_out)
  cols = cols.reshape(b, out_h, out_w, kh * kw, groups, c_in_group)
  kernel = kernel.reshape(kh * kw, c_in_group, groups, c_out // groups)
  y = jnp.einsum("bhwkgc,kcgo->bhwgo", cols, kernel, precision=lax.Precision.HIGHEST)
  return y.reshape(b, out_h, out_w, c_out)


# ----------------------------------------------------------------------------------------------------------------
# conv_transpose2d


def conv_transpose2d(x: jax.Array, kernel: jax.Array, *, stride=2, padding=0, output_padding=0,
                     lowering: str = "auto") -> jax.Array:
  """PyTorch's `conv_transpose2d` (the gradient of `conv2d` w.r.t. its input), NHWC.

  `kernel` is PyTorch's (in, out, kh, kw) weight transposed to (kh, kw, in, out) — no spatial flip; the flip that
  turns the transposed conv into a dilated forward conv is done here, once. Output size per axis:
  (H - 1)·stride - 2·padding + k + output_padding.
  `lowering`: "xla", "patches" (matmul + col2im), "subpixel" (phase kernels + depth-to-space; its stride-1 conv by
  `conv2d`'s "auto"), "subpixel_patches" (the same with that conv as im2col + matmul) or "auto".
  """
  _check_lowering(lowering, CONV_TRANSPOSE_LOWERINGS, "conv_transpose2d")
  if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
    raise ValueError(f"conv_transpose2d: expected x NHWC and kernel (kh, kw, in={x.shape[-1]}, out), got shapes "
                     f"{x.shape} and {kernel.shape}")
  stride, padding, output_padding = _pair(stride), _pair(padding), _pair(output_padding)
  out_hw = tuple((n - 1) * s - 2 * p + k + op
                 for n, s, p, k, op in zip(x.shape[1:3], stride, padding, kernel.shape[:2], output_padding))
  if min(out_hw) <= 0:
    raise ValueError(f"conv_transpose2d: empty output {out_hw} for input {x.shape}, kernel {kernel.shape}, "
                     f"stride {stride}, padding {padding}")
  if lowering == "auto":
    lowering = _auto_conv_transpose_lowering(x.shape, kernel.shape, stride)
  if lowering == "xla":
    return _conv_transpose_xla(x, kernel, stride, padding, output_padding)
  if lowering == "patches":
    return _conv_transpose_col2im(x, kernel, stride, padding, out_hw)
  if lowering == "subpixel_patches":
    return _conv_transpose_subpixel(x, kernel, stride, padding, out_hw, inner_lowering="patches")
  return _conv_transpose_subpixel(x, kernel, stride, padding, out_hw)


def _auto_conv_transpose_lowering(x_shape, kernel_shape, stride) -> str:
  # Measured on XLA:CPU (DCGAN 5×5 stride-2 layers, batch 64, forward + input gradient): the native transposed
  # conv takes ~2 s on a 4×4×256 input (it multiplies the inserted zeros); col2im's matmul is fast but the
  # autodiff of its overlap-add is not (~1 s); subpixel, whose stride-1 conv is itself lowered by `conv2d`'s
  # "auto", is the fastest on every layer (≥ 1.5× over xla on 8×8+ maps, ~8× on 4×4).
  del x_shape, kernel_shape, stride
  return "subpixel"


def _conv_transpose_xla(x, kernel, stride, padding, output_padding):
  kh, kw = kernel.shape[:2]
  (ph, pw), (oph, opw) = padding, output_padding
  return lax.conv_general_dilated(
      x, kernel[::-1, ::-1], window_strides=(1, 1),
      padding=((kh - 1 - ph, kh - 1 - ph + oph), (kw - 1 - pw, kw - 1 - pw + opw)),
      lhs_dilation=stride, dimension_numbers=_DIMENSION_NUMBERS, precision=lax.Precision.HIGHEST)


def _conv_transpose_col2im(x, kernel, stride, padding, out_hw):
  """y[s·i + t - p] += x[i] · w[t]: one matmul for every (input pixel, tap) product, then overlap-add."""
  b, h, w, c_in = x.shape
  kh, kw, _, c_out = kernel.shape
  (sh, sw), (ph, pw) = stride, padding
  cols = _matmul(x.reshape(b * h * w, c_in), kernel.transpose(2, 0, 1, 3).reshape(c_in, kh * kw * c_out))
  cols = cols.reshape(b, h, w, kh, kw, c_out)
  zero = jnp.zeros((), cols.dtype)
  out = None
  for i in range(kh):
    for j in range(kw):
      # Tap (i, j) of input pixel (r, c) lands at (sh·r + i - ph, sw·c + j - pw): an interior-padded copy of the
      # tap's plane, shifted; negative edge padding crops what falls outside the output.
      top, left = i - ph, j - pw
      placed = lax.pad(cols[:, :, :, i, j], zero, (
          (0, 0, 0), (top, out_hw[0] - top - (h - 1) * sh - 1, sh - 1),
          (left, out_hw[1] - left - (w - 1) * sw - 1, sw - 1), (0, 0, 0)))
      out = placed if out is None else out + placed
  return out


def _conv_transpose_subpixel(x, kernel, stride, padding, out_hw, inner_lowering="auto"):
  """Output row u = s·m + φ (before the crop by `padding`) only sees taps t ≡ φ (mod s) of input rows m - j with
  t = φ + s·j: a stride-1 conv per phase φ. All s² phases share one im2col and run as one conv with s²·O outputs;
  phase kernels shorter than ceil(k/s) taps are zero-padded."""
  b, h, w, c_in = x.shape
  kh, kw, _, c_out = kernel.shape
  (sh, sw), (ph, pw) = stride, padding
  taps_h, taps_w = -(-kh // sh), -(-kw // sw)
  # Pad the kernel to (taps·s) so every phase has `taps` taps, then split t = φ + s·j into (j, φ).
  kernel = jnp.pad(kernel, ((0, taps_h * sh - kh), (0, taps_w * sw - kw), (0, 0), (0, 0)))
  kernel = kernel.reshape(taps_h, sh, taps_w, sw, c_in, c_out)
  # Correlation over input rows m - taps + 1 + a uses tap j = taps - 1 - a: flip j; channels ordered (φh, φw, O)
  # for depth_to_space.
  kernel = kernel[::-1, :, ::-1].transpose(0, 2, 4, 1, 3, 5).reshape(taps_h, taps_w, c_in, sh * sw * c_out)
  # Only the phase rows m covering output rows [p, p + out) are computed.
  (m0_h, m1_h), (m0_w, m1_w) = [(p // s, -(-(p + n) // s)) for p, s, n in zip(padding, stride, out_hw)]
  pads = []
  for m0, m1, taps, n in ((m0_h, m1_h, taps_h, h), (m0_w, m1_w, taps_w, w)):
    lo = taps - 1 - m0
    pads.append((lo, (m1 - m0) + taps - 1 - n - lo))
  phases = conv2d(x, kernel, stride=1, padding=tuple(pads), lowering=inner_lowering)
  y = _depth_to_space_hw(phases, (sh, sw))
  top, left = ph - sh * m0_h, pw - sw * m0_w
  return y[:, top:top + out_hw[0], left:left + out_hw[1]]


# ----------------------------------------------------------------------------------------------------------------
# modules and reshapes


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


class ConvTranspose2d(nn.Module):
  """PyTorch's `nn.ConvTranspose2d` (stride, padding, output_padding) with params 'kernel' (kh, kw, in, out) and
  'bias', lowered by `conv_transpose2d`. Default kernel init N(0, 0.02²) (DCGAN's)."""
  features: int
  kernel_size: tuple[int, int] = (4, 4)
  stride: int = 2
  padding: int = 0
  output_padding: int = 0
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.normal(0.02)
  bias_init: nn.initializers.Initializer = nn.initializers.zeros
  lowering: str = "auto"

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init, (*_pair(self.kernel_size), x.shape[-1], self.features))
    y = conv_transpose2d(x, kernel.astype(x.dtype), stride=self.stride, padding=self.padding,
                         output_padding=self.output_padding, lowering=self.lowering)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(x.dtype)
    return y


def _depth_to_space_hw(x: jax.Array, block_hw: tuple[int, int]) -> jax.Array:
  b, h, w, c = x.shape
  bh, bw = block_hw
  c_out = c // (bh * bw)
  x = x.reshape(b, h, w, bh, bw, c_out)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * bh, w * bw, c_out)


def depth_to_space(x: jax.Array, block: int) -> jax.Array:
  """(B, H, W, C·r²) → (B, H·r, W·r, C), channel order (r_h, r_w, C) as `jax.nn`/TF's depth_to_space."""
  return _depth_to_space_hw(x, (block, block))


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling (PyTorch's `F.interpolate(scale_factor=f)` default)."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
