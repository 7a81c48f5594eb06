"""The β-VAE of Plumerault et al. (ICLR 2020), App. B Table 1: its decoder is a generator (z ~ N(0, I) → image).

Encoder: len(channels) × [conv k4 s2 SAME + ReLU] → flatten → 2 × [dense `hidden` + ReLU] → μ (dense), log σ
(dense; the paper's "Dense + Exponential" σ head is exp of this). Decoder, the mirror: 2 × [dense + ReLU] → reshape to
(s, s, channels[-1]) → transposed convs k4 s2 SAME + ReLU → the last one (out_channels) + sigmoid. The paper's
dSprites model: channels (32, 32, 32, 32), hidden 256, latent 10, 64×64×1.

Table 1 lists the decoder's second dense layer with 256 units, then a reshape to 4×4×32 = 512 values: impossible
as written. Here the second dense layer has s·s·channels[-1] units (512), so the reshape holds (Burgess et al.'s and
disentanglement_lib's decoders also widen at that layer). Weights start as Keras's defaults (Glorot-uniform kernels,
zero biases): the paper's models were TensorFlow 2 / Keras ones. A transposed conv k4 s2 'SAME' doubles the size
exactly, as PyTorch's ConvTranspose2d(k=4, s=2, padding=1) does (TF pads the adjoint conv by 1 on each side).

The Generator is the decoder: `__call__(z)` = sigmoid(logits) in [0, 1] (the Bernoulli means, output_range (0, 1));
`logits(z)` the pre-sigmoid values the β-VAE's Bernoulli likelihood reads. Variables {'params': decoder params}.
Config (JSON-serialisable): latent_dim, channels, hidden, image_size, out_channels.
Feature taps: 'dense0', 'dense1' (vectors), 'up0'…'up{n-2}' (after ReLU), 'output' (after sigmoid).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items, init_from_latent
from ganlatent_jax.nets import layers

FAMILY = "vae"
KERNEL = 4
DEFAULT_CONFIG = {"family": FAMILY, "latent_dim": 10, "channels": [32, 32, 32, 32], "hidden": 256, "image_size": 64,
                  "out_channels": 1}
_INIT = nn.initializers.glorot_uniform()   # Keras's default kernel init (the paper's TF2 models)


def make_config(**overrides) -> dict[str, Any]:
  """The family config with `overrides`, checked: unknown keys and sizes that do not halve to a whole seed fail."""
  config = {**DEFAULT_CONFIG, **overrides}
  unknown = set(config) - set(DEFAULT_CONFIG)
  if unknown:
    raise ValueError(f"vae: unknown config key(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
  config["channels"] = [int(c) for c in config["channels"]]
  if not config["channels"] or min(config["channels"]) < 1:
    raise ValueError(f"vae: channels={config['channels']} must name at least one positive conv width")
  for key in ("latent_dim", "hidden", "image_size", "out_channels"):
    config[key] = int(config[key])
    if config[key] < 1:
      raise ValueError(f"vae: {key}={config[key]} must be a positive integer")
  size, downsamplings = config["image_size"], len(config["channels"])
  if size % 2 ** downsamplings:
    raise ValueError(f"vae: image_size={size} is not divisible by 2**{downsamplings} (one halving per conv of "
                     f"channels={config['channels']})")
  return config


def seed_size(config: dict[str, Any]) -> int:
  return config["image_size"] // 2 ** len(config["channels"])


class UpConv(nn.Module):
  """Transposed conv k4 s2 'SAME' (= PyTorch's ConvTranspose2d(4, stride 2, padding 1)) with `layers.ConvTranspose2d`'s
  parameters ('kernel' (4, 4, in, out), 'bias'), Glorot-initialised.

  Lowered as `layers`' "subpixel_patches" (subpixel with its stride-1 conv as im2col + matmul): at batch 128 the
  default ("auto" → subpixel over XLA's native conv) took 5.1 s for the decoder's gradient on the 2-core CPU, 4.0 s
  of it in the 16×16 layer, whose native-conv backward is slow; with patches the 16×16 layer takes 0.23 s (measured
  2026-12-02, loaded machine). Same numbers either way (tests/test_betavae.py compares against the "xla" lowering).
  """
  features: int

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", _INIT, (KERNEL, KERNEL, x.shape[-1], self.features))
    y = layers.conv_transpose2d(x, kernel.astype(x.dtype), stride=2, padding=1, lowering="subpixel_patches")
    return y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)


class VAEEncoder(nn.Module):
  """images NHWC in [0, 1] → (μ, log σ), each (B, latent_dim)."""
  latent_dim: int = 10
  channels: Sequence[int] = (32, 32, 32, 32)
  hidden: int = 256

  @nn.compact
  def __call__(self, x):
    for i, width in enumerate(self.channels):
      x = nn.relu(layers.Conv2d(width, (KERNEL, KERNEL), stride=2, padding="SAME", kernel_init=_INIT,
                                name=f"conv{i}")(x))
    x = x.reshape(x.shape[0], -1)
    for i in range(2):
      x = nn.relu(nn.Dense(self.hidden, kernel_init=_INIT, name=f"dense{i}")(x))
    return (nn.Dense(self.latent_dim, kernel_init=_INIT, name="mean")(x),
            nn.Dense(self.latent_dim, kernel_init=_INIT, name="log_std")(x))


class VAEDecoder(nn.Module):
  """z (B, latent_dim) → images (B, size, size, out_channels) in [0, 1]; `logits` before the sigmoid."""
  latent_dim: int = 10
  channels: Sequence[int] = (32, 32, 32, 32)   # the encoder's widths; the decoder runs them in reverse
  hidden: int = 256
  image_size: int = 64
  out_channels: int = 1

  @nn.compact
  def _run(self, z, taps: Sequence[str] = ()):
    if z.ndim != 2 or z.shape[-1] != self.latent_dim:
      raise ValueError(f"vae: expected z of shape (batch, {self.latent_dim}), got {z.shape}")
    recorded = {}
    seed, width0 = self.image_size // 2 ** len(self.channels), self.channels[-1]
    x = z
    for i, units in enumerate((self.hidden, seed * seed * width0)):
      x = recorded[f"dense{i}"] = nn.relu(nn.Dense(units, kernel_init=_INIT, name=f"dense{i}")(x))
    x = x.reshape(z.shape[0], seed, seed, width0)
    widths = (*self.channels[::-1][1:], self.out_channels)
    for i, width in enumerate(widths):
      x = UpConv(width, name=f"up{i}")(x)
      if i < len(widths) - 1:
        x = recorded[f"up{i}"] = nn.relu(x)
    recorded["output"] = jax.nn.sigmoid(x)
    return x, {name: recorded[name] for name in taps}

  def logits(self, z):
    return self._run(z)[0]

  def __call__(self, z):
    return jax.nn.sigmoid(self._run(z)[0])

  def features(self, z, layers: Sequence[str] = ()):
    return self._run(z, tuple(layers))[1]


def feature_layer_names(num_convs: int) -> tuple[str, ...]:
  return ("dense0", "dense1", *(f"up{i}" for i in range(num_convs - 1)), "output")


# ---------------------------------------------------------------------------------------------------------------
# Family contract (generators/load.py).

def _config(config: dict[str, Any]) -> dict[str, Any]:
  return make_config(**{k: v for k, v in config.items() if k != "family"})


def encoder_from_config(config: dict[str, Any]) -> VAEEncoder:
  config = _config(config)
  return VAEEncoder(latent_dim=config["latent_dim"], channels=tuple(config["channels"]), hidden=config["hidden"])


def module_from_config(config: dict[str, Any]) -> VAEDecoder:
  config = _config(config)
  return VAEDecoder(latent_dim=config["latent_dim"], channels=tuple(config["channels"]), hidden=config["hidden"],
                    image_size=config["image_size"], out_channels=config["out_channels"])


def init_variables(config: dict[str, Any], rng: jax.Array):
  """The decoder's variables {'params': ...}, Keras's initialisation."""
  return init_from_latent(module_from_config(config), rng)


def init_encoder_variables(config: dict[str, Any], rng: jax.Array):
  config = _config(config)
  size = config["image_size"]
  images = jnp.zeros((1, size, size, config["out_channels"]), jnp.float32)
  return jax.jit(encoder_from_config(config).init)(rng, images)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  """The decoder as a `Generator` (output range (0, 1)); variables checked against the architecture."""
  module = module_from_config(config)
  full = _config(config)
  size = full["image_size"]
  info = GeneratorInfo(family=FAMILY, latent_dim=module.latent_dim, image_shape=(size, size, module.out_channels),
                       latent_spaces=("z",), output_range=(0.0, 1.0),
                       feature_layers=feature_layer_names(len(module.channels)), config=config_items(full),
                       source=source)
  return checked_generator(module, info, variables, init_from_latent(module))
