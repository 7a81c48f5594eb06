"""SN-GAN ResNet generators as used by GANLatentDiscovery (`models/SNGAN/sn_gen_resnet.py`: sn_resnet32/64).

z (B, latent_dim) → Linear → reshape to (seed, seed, C0) → ResBlocks (each ×2 nearest upsampling) → BN → ReLU →
3×3 conv → tanh. A ResBlock is BN → ReLU → ×2 → conv1 → BN → ReLU → conv2, plus a bypass (×2, then a 3×3 conv when
the width changes). BatchNorm is always in eval mode (running statistics, eps 1e-5): the generator is pretrained.

Feature taps are named like the upstream top-level `nn.Sequential` items, `model.N` (N = 0 dense, 1 reshape,
2.. ResBlocks, then BN, ReLU, conv, tanh); spatial taps are NHWC.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items, init_from_latent
from ganlatent_jax.nets import layers

FAMILY = "sngan"
BN_EPS = 1e-5




def layer_names(channels: Sequence[int]) -> tuple[str, ...]:
  """Upstream top-level indices: dense, reshape, one per ResBlock (len(channels) − 1), BN, ReLU, conv, tanh."""
  return tuple(f"model.{i}" for i in range(len(channels) + 5))


def _eval_batch_norm(name: str) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name=name)


class ResBlock(nn.Module):
  in_channels: int
  out_channels: int

  @nn.compact
  def __call__(self, x):
    h = nn.relu(_eval_batch_norm("bn1")(x))
    h = layers.Conv2d(self.out_channels, (3, 3), padding=1, name="conv1")(layers.upsample_nearest(h, 2))
    h = nn.relu(_eval_batch_norm("bn2")(h))
    h = layers.Conv2d(self.out_channels, (3, 3), padding=1, name="conv2")(h)
    skip = layers.upsample_nearest(x, 2)
    if self.in_channels != self.out_channels:
      skip = layers.Conv2d(self.out_channels, (3, 3), padding=1, name="bypass_conv")(skip)
    return h + skip


class SNGANGenerator(nn.Module):
  latent_dim: int
  channels: tuple[int, ...]   # C0 (seed map width), then each ResBlock's output width
  image_channels: int = 3
  seed_dim: int = 4

  def setup(self):
    self.dense = nn.Dense(self.seed_dim ** 2 * self.channels[0])
    self.blocks = [ResBlock(c_in, c_out) for c_in, c_out in zip(self.channels[:-1], self.channels[1:])]
    self.bn_out = _eval_batch_norm("bn_out")
    self.conv_out = layers.Conv2d(self.image_channels, (3, 3), padding=1)

  def _run(self, z: jax.Array, taps: Sequence[str]) -> tuple[jax.Array, dict[str, jax.Array]]:
    found = {}
    names = iter(layer_names(self.channels))

    def tap(x):
      name = next(names)
      if name in taps:
        found[name] = x
      return x

    z = jnp.asarray(z, jnp.float32).reshape(z.shape[0], self.latent_dim)
    x = tap(self.dense(z))
    # Upstream reshapes the dense output to NCHW (C0, seed, seed); NHWC is that view transposed.
    x = tap(x.reshape(-1, self.channels[0], self.seed_dim, self.seed_dim).transpose(0, 2, 3, 1))
    for block in self.blocks:
      x = tap(block(x))
    x = tap(self.bn_out(x))
    x = tap(nn.relu(x))
    x = tap(self.conv_out(x))
    x = tap(jnp.tanh(x))
    return x, found

  def __call__(self, z: jax.Array) -> jax.Array:
    return self._run(z, ())[0]

  def features(self, z: jax.Array, layers: Sequence[str] = ()) -> dict[str, jax.Array]:
    unknown = sorted(set(layers) - set(layer_names(self.channels)))
    if unknown:
      raise ValueError(f"unknown SN-GAN feature layer(s) {unknown}; available: {list(layer_names(self.channels))}")
    return self._run(z, tuple(layers))[1]


def module_from_config(config: dict[str, Any]) -> SNGANGenerator:
  return SNGANGenerator(latent_dim=int(config["latent_dim"]), channels=tuple(int(c) for c in config["channels"]),
                        image_channels=int(config["image_channels"]), seed_dim=int(config.get("seed_dim", 4)))


def _info(module: SNGANGenerator, config: dict[str, Any], source: str) -> GeneratorInfo:
  size = module.seed_dim * 2 ** (len(module.channels) - 1)
  return GeneratorInfo(family=FAMILY, latent_dim=module.latent_dim, image_shape=(size, size, module.image_channels),
                       output_range=(-1.0, 1.0), feature_layers=layer_names(module.channels),
                       config=config_items(config), source=source)


def init_variables(config: dict[str, Any], rng: jax.Array):
  return init_from_latent(module_from_config(config), rng)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  return checked_generator(module, _info(module, config, source), variables, init_from_latent(module))
