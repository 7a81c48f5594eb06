"""PGGAN generator of genforce (`models/pggan_generator.py`, the SeFa / SRE model zoo), with its level of detail.

Per layer the maths is GANLatentDiscovery's ProgGAN (`generators.proggan`): PixelNorm → [nearest ×2] → conv →
`x·wscale + b` → leaky ReLU 0.2, and its `WScaleConv` is reused (the stored `scale` is genforce's constant wscale
√2/√(k²·in), 1/√C for the ToRGB heads). A family of its own because genforce keeps a ToRGB head per resolution
(`output{k}`) that `lod` (progressive training's level of detail) blends: for lod in (n−1, n) the image is
α·output(x at that resolution) + (1−α)·upsample(image below), α = ⌈lod⌉ − lod; lod = 0 (the released models,
the default) is the full-resolution head alone. z is pixel-normalised (`G(z)['z']` at genforce commit 197feee; a
later commit multiplies it by √z_dim, which layer0's own PixelNorm cancels) before layer0, a 4×4 conv with padding
3 on the 1×1 latent.

Feature taps: `layer{i}` (ConvBlock outputs, NHWC) and `z` (the normalised latent).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items
from ganlatent_jax.generators.proggan import WScaleConv, pixel_norm
from ganlatent_jax.nets import layers

FAMILY = "pggan"


def make_config(*, resolution: int, z_dim: int = 512, image_channels: int = 3, fmaps_base: int = 16 << 10,
                fmaps_max: int = 512, channels: dict[int, int] | None = None, final_tanh: bool = False):
  if resolution < 4 or 2 ** int(round(math.log2(resolution))) != resolution:
    raise ValueError(f"PGGAN resolution must be a power of two >= 4, got {resolution}")
  resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
  if channels is None:
    channels = {r: min(fmaps_base // r, fmaps_max) for r in resolutions}
  return {"family": FAMILY, "resolution": int(resolution), "z_dim": int(z_dim), "image_channels": int(image_channels),
          "channels": [[r, int(channels[r])] for r in resolutions], "final_tanh": bool(final_tanh)}


class PGGANGenerator(nn.Module):
  z_dim: int
  resolution: int
  channels: tuple[tuple[int, int], ...]
  image_channels: int = 3
  final_tanh: bool = False

  @property
  def latent_dim(self) -> int:
    return self.z_dim

  @property
  def num_layers(self) -> int:
    return 2 * len(self.channels)

  def setup(self):
    blocks = []
    for k, (res, width) in enumerate(self.channels):
      if k == 0:
        blocks += [WScaleConv(width, 4, padding=3), WScaleConv(width, 3, padding=1)]
      else:
        blocks += [WScaleConv(width, 3, padding=1, upsample=True), WScaleConv(width, 3, padding=1)]
    self.layers = blocks
    self.outputs = [WScaleConv(self.image_channels, 1, padding=0, activate=False) for _ in self.channels]

  def _run(self, z, lod: float, taps: Sequence[str]):
    max_lod = len(self.channels) - 1
    if not 0 <= lod <= max_lod:
      raise ValueError(f"lod must be in [0, {max_lod}], got {lod}")
    found = {}
    z = jnp.asarray(z, jnp.float32)
    z = pixel_norm(z)
    found["z"] = z
    x = z.reshape(z.shape[0], 1, 1, self.z_dim)
    image = None
    for k in range(len(self.channels)):
      current_lod = max_lod - k
      if lod < current_lod + 1:
        for i in (2 * k, 2 * k + 1):
          x = self.layers[i](x)
          found[f"layer{i}"] = x
      if current_lod - 1 < lod <= current_lod:
        image = self.outputs[k](x)
      elif current_lod < lod < current_lod + 1:
        alpha = math.ceil(lod) - lod
        image = self.outputs[k](x) * alpha + layers.upsample_nearest(image, 2) * (1 - alpha)
      elif lod >= current_lod + 1:
        image = layers.upsample_nearest(image, 2)
    image = jnp.tanh(image) if self.final_tanh else image
    return image, {name: found[name] for name in taps if name in found}

  def __call__(self, z, *, lod: float = 0.0):
    """z (B, z_dim) → image NHWC at full resolution (lod > 0: a coarser head, nearest-upsampled/blended)."""
    return self._run(z, float(lod), ())[0]

  def all_heads(self, z):
    """Every resolution's ToRGB image (what `init` traces: lod selects among these heads)."""
    x = pixel_norm(jnp.asarray(z, jnp.float32)).reshape(z.shape[0], 1, 1, self.z_dim)
    images = []
    for k in range(len(self.channels)):
      x = self.layers[2 * k + 1](self.layers[2 * k](x))
      images.append(self.outputs[k](x))
    return images

  def features(self, z, layers: Sequence[str] = (), *, lod: float = 0.0):
    known = feature_layer_names(self.num_layers)
    if unknown := sorted(set(layers) - set(known)):
      raise ValueError(f"unknown PGGAN feature layer(s) {unknown}; available: {list(known)}")
    return self._run(z, float(lod), tuple(layers))[1]


def feature_layer_names(num_layers: int) -> tuple[str, ...]:
  return ("z",) + tuple(f"layer{i}" for i in range(num_layers))


def module_from_config(config: dict[str, Any]) -> PGGANGenerator:
  return PGGANGenerator(z_dim=int(config["z_dim"]), resolution=int(config["resolution"]),
                        channels=tuple((int(r), int(c)) for r, c in config["channels"]),
                        image_channels=int(config.get("image_channels", 3)),
                        final_tanh=bool(config.get("final_tanh", False)))


def _info(module: PGGANGenerator, config: dict[str, Any], source: str) -> GeneratorInfo:
  return GeneratorInfo(family=FAMILY, latent_dim=module.z_dim,
                       image_shape=(module.resolution, module.resolution, module.image_channels),
                       output_range=(-1.0, 1.0), feature_layers=feature_layer_names(module.num_layers),
                       config=config_items(config), source=source)


def _init(module: PGGANGenerator, rng):
  return module.init(rng, jnp.zeros((1, module.z_dim), jnp.float32), method="all_heads")


def init_variables(config: dict[str, Any], rng: jax.Array):
  module = module_from_config(config)
  return jax.jit(lambda key: _init(module, key))(rng)


def abstract_variables(config: dict[str, Any]):
  module = module_from_config(config)
  return jax.eval_shape(lambda: _init(module, jax.random.PRNGKey(0)))


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  return checked_generator(module, _info(module, config, source), variables, abstract_variables(config))
