"""GAN discriminators (NHWC images in [-1, 1] → logits), for training generators with `methods/gan.py`.

Every discriminator returns `(logits (B,), aux)`: `aux` is the output of an optional auxiliary head on the last
hidden features ((B, aux_outputs), e.g. InfoGAN's Q head, which shares the whole trunk), or None when
`aux_outputs == 0`. All convolutions go through `nets.layers.conv2d`.

* `StyleGAN2Discriminator`: the residual discriminator of StyleGAN2 (FromRGB 1×1, per resolution a 3×3 conv and a
  blurred stride-2 3×3 conv with a blurred 1×1 skip, sum / √2; minibatch standard deviation; 3×3 conv; two dense
  layers), at any width table, optionally with equalized learning rate.
* `DCGANDiscriminator`: stride-2 4×4 convs with leaky ReLU doubling the width down to 4×4, then a dense logit.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from ganlatent_jax.nets import layers, upfirdn

LRELU_SLOPE = 0.2


def _lrelu(x, gain: float = 1.0):
  return jax.nn.leaky_relu(x, LRELU_SLOPE) * gain


class ScaledConv(nn.Module):
  """A conv whose kernel is stored N(0, 1) and scaled by 1/√fan_in at run time when `equalized` (StyleGAN's
  equalized learning rate: Adam then moves every layer at the same relative speed); otherwise the kernel is stored
  already scaled (plain He-style init)."""
  features: int
  kernel_size: int
  stride: int = 1
  padding: Any = "SAME"
  use_bias: bool = True
  equalized: bool = True

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1] * self.kernel_size ** 2
    scale = 1.0 / math.sqrt(fan_in)
    kernel = self.param("kernel", nn.initializers.normal(1.0 if self.equalized else scale),
                        (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
    if self.equalized:
      kernel = kernel * scale
    y = layers.conv2d(x, kernel, stride=self.stride, padding=self.padding)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y


class ScaledDense(nn.Module):
  features: int
  equalized: bool = True

  @nn.compact
  def __call__(self, x):
    scale = 1.0 / math.sqrt(x.shape[-1])
    kernel = self.param("kernel", nn.initializers.normal(1.0 if self.equalized else scale),
                        (x.shape[-1], self.features))
    if self.equalized:
      kernel = kernel * scale
    return jnp.dot(x, kernel, precision=lax.Precision.HIGHEST) + self.param("bias", nn.initializers.zeros,
                                                                             (self.features,))


def _blur(x, kernel, pad):
  return upfirdn.upfirdn2d(x, kernel, pad=pad)


class DownResBlock(nn.Module):
  """StyleGAN2 `ResBlock`: conv3×3 → lrelu, blur → conv3×3 stride 2 → lrelu; skip: blur → 1×1 stride 2; (a+b)/√2."""
  features: int
  equalized: bool = True
  blur_kernel: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)

  @nn.compact
  def __call__(self, x):
    gain = math.sqrt(2.0)
    kernel = upfirdn.make_kernel(self.blur_kernel)
    k = kernel.shape[0]
    y = _lrelu(ScaledConv(x.shape[-1], 3, equalized=self.equalized, name="conv1")(x), gain)
    # Blur pads so that the following stride-2 3×3 VALID conv halves the size exactly (upstream's ConvLayer(down)).
    p = (k - 2) + (3 - 1)
    y = _blur(y, kernel, ((p + 1) // 2, p // 2))
    y = _lrelu(ScaledConv(self.features, 3, stride=2, padding="VALID", equalized=self.equalized, name="conv2")(y),
               gain)
    p = (k - 2) + (1 - 1)
    skip = _blur(x, kernel, ((p + 1) // 2, p // 2))
    skip = ScaledConv(self.features, 1, stride=2, padding="VALID", use_bias=False, equalized=self.equalized,
                      name="skip")(skip)
    return (y + skip) / math.sqrt(2.0)


def minibatch_stddev(x: jax.Array, group_size: int = 4) -> jax.Array:
  """Appends one channel: the standard deviation over groups of `group_size` samples, averaged over features and
  pixels (StyleGAN2's minibatch discrimination; lets D see a lack of variety). The batch must divide into groups."""
  b, h, w, c = x.shape
  group = min(group_size, b)
  if b % group:
    raise ValueError(f"minibatch stddev: batch {b} is not divisible by the group size {group}")
  y = x.reshape(group, b // group, h, w, c)
  std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)            # (b/group, h, w, c)
  std = jnp.mean(std, axis=(1, 2, 3))                  # (b/group,)
  std = jnp.tile(std, group)[:, None, None, None]      # sample i belongs to group column i mod (b/group)
  return jnp.concatenate([x, jnp.broadcast_to(std, (b, h, w, 1))], axis=-1)


class StyleGAN2Discriminator(nn.Module):
  """channels: ((resolution, width), ...) for every resolution from the image size down to 4."""
  channels: tuple[tuple[int, int], ...]
  equalized: bool = True
  stddev_group: int = 4
  blur_kernel: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)
  aux_outputs: int = 0
  aux_hidden: int = 0
  aux_equalized: bool = False   # the aux head's dense layers equalized-lr (PS-SC's Q, as upstream's dense_layer)

  @nn.compact
  def __call__(self, images):
    width = dict(self.channels)
    size = images.shape[1]
    if images.shape[1] != images.shape[2] or size not in width or 4 not in width:
      raise ValueError(f"StyleGAN2Discriminator: images {images.shape} need square sizes with widths for every "
                       f"resolution {size}…4; channel table {dict(width)}")
    gain = math.sqrt(2.0)
    x = _lrelu(ScaledConv(width[size], 1, equalized=self.equalized, name="from_rgb")(images), gain)
    res = size
    while res > 4:
      x = DownResBlock(width[res // 2], self.equalized, self.blur_kernel, name=f"block_{res}")(x)
      res //= 2
    if self.stddev_group > 1:
      x = minibatch_stddev(x, self.stddev_group)
    x = _lrelu(ScaledConv(width[4], 3, equalized=self.equalized, name="final_conv")(x), gain)
    hidden = _lrelu(ScaledDense(width[4], self.equalized, name="final_dense")(x.reshape(x.shape[0], -1)), gain)
    logits = ScaledDense(1, self.equalized, name="logit")(hidden)[:, 0]
    return logits, _aux_head(self, hidden)


def _aux_head(module: nn.Module, hidden):
  """The auxiliary head (InfoGAN's Q, UD-GAN's embeddings, PS-SC's code predictions). Plain flax Dense layers unless
  `aux_equalized`: with Adam, a plain layer's weights move √fan_in times faster relative to their scale than an
  equalized one's, so a port of an equalized upstream head (PS-SC's `dense_layer`) must say so."""
  if not module.aux_outputs:
    return None
  equalized = getattr(module, "aux_equalized", False)
  dense = (lambda n, name: ScaledDense(n, equalized=True, name=name)) if equalized else \
      (lambda n, name: nn.Dense(n, name=name))
  h = hidden
  if module.aux_hidden:
    h = _lrelu(dense(module.aux_hidden, "aux_hidden")(h))
  return dense(module.aux_outputs, "aux_out")(h)


class DCGANDiscriminator(nn.Module):
  """widths: the channels of the stride-2 4×4 convs, from the image size down to 4×4 (len = log2(size) - 2)."""
  widths: tuple[int, ...]
  aux_outputs: int = 0
  aux_hidden: int = 128

  @nn.compact
  def __call__(self, images):
    size = images.shape[1]
    expected = int(math.log2(size)) - 2
    if len(self.widths) != expected:
      raise ValueError(f"DCGANDiscriminator: {size}×{size} images need {expected} widths (down to 4×4), got "
                       f"{self.widths}")
    x = images
    for i, width in enumerate(self.widths):
      x = _lrelu(layers.Conv2d(width, (4, 4), stride=2, padding=1, name=f"conv_{i}")(x))
    hidden = x.reshape(x.shape[0], -1)
    logits = nn.Dense(1, name="logit")(hidden)[:, 0]
    return logits, _aux_head(self, hidden)


# ---------------------------------------------------------------------------------------------------------------

def stylegan2_channels(size: int, width: int, max_width: int | None = None) -> tuple[tuple[int, int], ...]:
  """A width table doubling from `width` at full resolution up to `max_width` at 4×4."""
  max_width = max_width or width * 8
  table, w, res = [], width, size
  while res >= 4:
    table.append((res, min(w, max_width)))
    w, res = w * 2, res // 2
  return tuple(table)


def from_config(config: Mapping[str, Any], image_size: int, aux_outputs: int = 0) -> nn.Module:
  """A discriminator from a config dict: {'kind': 'stylegan2' | 'dcgan', 'width', 'max_width', ...}."""
  kind = config["kind"]
  if kind == "stylegan2":
    return StyleGAN2Discriminator(channels=stylegan2_channels(image_size, int(config["width"]),
                                                              int(config.get("max_width") or 0) or None),
                                  equalized=bool(config.get("equalized", True)),
                                  stddev_group=int(config.get("stddev_group", 4)), aux_outputs=aux_outputs,
                                  aux_hidden=int(config.get("aux_hidden", 0)),
                                  aux_equalized=bool(config.get("aux_equalized", False)))
  if kind == "dcgan":
    num = int(math.log2(image_size)) - 2
    widths = tuple(min(int(config["width"]) * 2 ** i, int(config.get("max_width") or 10 ** 9)) for i in range(num))
    return DCGANDiscriminator(widths=widths, aux_outputs=aux_outputs, aux_hidden=int(config.get("aux_hidden", 128)))
  raise ValueError(f"unknown discriminator kind {kind!r}; choose 'stylegan2' or 'dcgan'")


__all__: Sequence[str] = ("StyleGAN2Discriminator", "DCGANDiscriminator", "DownResBlock", "minibatch_stddev",
                          "stylegan2_channels", "from_config")
