"""Progressive GAN generator as used by GANLatentDiscovery (`models/ProgGAN/model.py`, the PyTorch port of
tkarras' Theano model).

z (B, D) is read as a (1, 1, D) map. Each block: PixelNorm (eps 1e-8) → [nearest ×2] → conv without bias →
`x * scale + b` (the "wscale" layer: equalized learning rate applied to the output) → leaky ReLU 0.2. Block 0 is a 4×4
conv with padding 3, turning the 1×1 input into 4×4. Output head: PixelNorm → 1×1 conv → wscale, no activation.

Feature taps: `features.N` (block outputs, NHWC) and `output` (the image).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items, init_from_latent
from ganlatent_jax.nets import layers

FAMILY = "proggan"
PIXEL_NORM_EPS = 1e-8


def upstream_upsample_pattern(num_blocks: int) -> tuple[bool, ...]:
  """Upstream's block order: conv(4×4), conv, then (upscale-conv, conv) pairs — i.e. blocks 2, 4, 6, ... upsample.
  (Not recorded in the weights; the converter assumes this, the upstream layout.)"""
  return tuple(i >= 2 and i % 2 == 0 for i in range(num_blocks))


def pixel_norm(x: jax.Array) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + PIXEL_NORM_EPS)


class WScaleConv(nn.Module):
  """PixelNorm → [×2] → conv (no bias) → `y * scale + b` (→ leaky ReLU 0.2 unless `activate=False`)."""
  features: int
  kernel_size: int
  padding: int
  upsample: bool = False
  activate: bool = True

  @nn.compact
  def __call__(self, x):
    x = pixel_norm(x)
    if self.upsample:
      x = layers.upsample_nearest(x, 2)
    x = layers.Conv2d(self.features, (self.kernel_size, self.kernel_size), padding=self.padding, use_bias=False,
                      kernel_init=nn.initializers.normal(1.0), name="conv")(x)
    he_scale = (2.0 / (x.shape[-1] * self.kernel_size ** 2)) ** 0.5  # the equalized-LR constant of the original
    scale = self.param("scale", lambda rng, shape: jnp.full(shape, he_scale), (1,))
    b = self.param("b", nn.initializers.zeros, (self.features,))
    x = x * scale + b
    return nn.leaky_relu(x, 0.2) if self.activate else x


class ProgGANGenerator(nn.Module):
  latent_dim: int
  channels: tuple[int, ...]        # output width of each block
  kernel_sizes: tuple[int, ...]
  upsample: tuple[bool, ...]
  image_channels: int = 3

  def setup(self):
    self.blocks = [
        WScaleConv(c, k, padding=(k - 1) if i == 0 else (k - 1) // 2, upsample=up)
        for i, (c, k, up) in enumerate(zip(self.channels, self.kernel_sizes, self.upsample))]
    self.output = WScaleConv(self.image_channels, 1, padding=0, activate=False)

  def _run(self, z: jax.Array, taps: Sequence[str]):
    found = {}
    x = jnp.asarray(z, jnp.float32).reshape(z.shape[0], 1, 1, self.latent_dim)  # (B, D) or (B, D, 1, 1)
    for i, block in enumerate(self.blocks):
      x = block(x)
      if f"features.{i}" in taps:
        found[f"features.{i}"] = x
      if not set(taps) - set(found):
        return x, found  # everything asked for is computed: skip the (expensive) high-resolution blocks
    x = self.output(x)
    if "output" in taps:
      found["output"] = x
    return x, found

  def __call__(self, z: jax.Array) -> jax.Array:
    return self._run(z, ("output",))[0]

  def features(self, z: jax.Array, layers: Sequence[str] = ()) -> dict[str, jax.Array]:
    known = layer_names(len(self.channels))
    unknown = sorted(set(layers) - set(known))
    if unknown:
      raise ValueError(f"unknown ProgGAN feature layer(s) {unknown}; available: {list(known)}")
    return self._run(z, tuple(layers))[1]


def layer_names(num_blocks: int) -> tuple[str, ...]:
  return tuple(f"features.{i}" for i in range(num_blocks)) + ("output",)


def module_from_config(config: dict[str, Any]) -> ProgGANGenerator:
  channels = tuple(int(c) for c in config["channels"])
  upsample = config.get("upsample")
  return ProgGANGenerator(
      latent_dim=int(config["latent_dim"]), channels=channels,
      kernel_sizes=tuple(int(k) for k in config.get("kernel_sizes") or ((4,) + (3,) * (len(channels) - 1))),
      upsample=tuple(bool(u) for u in upsample) if upsample is not None else upstream_upsample_pattern(len(channels)),
      image_channels=int(config.get("image_channels", 3)))


def _info(module: ProgGANGenerator, config: dict[str, Any], source: str) -> GeneratorInfo:
  size = module.kernel_sizes[0] * 2 ** sum(module.upsample)
  return GeneratorInfo(family=FAMILY, latent_dim=module.latent_dim, image_shape=(size, size, module.image_channels),
                       output_range=(-1.0, 1.0), feature_layers=layer_names(len(module.channels)),
                       config=config_items(config), source=source)


def init_variables(config: dict[str, Any], rng: jax.Array):
  return init_from_latent(module_from_config(config), rng)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  return checked_generator(module, _info(module, config, source), variables, init_from_latent(module))
