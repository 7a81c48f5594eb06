"""DCGAN-style generators: z → dense → (4, 4, C0) → stride-2 transposed convs → (4·2ⁿ, 4·2ⁿ, C_out) → tanh.

Each upsampling is `ConvTranspose2d(k, stride 2, padding (k-1)//2, output_padding 1)` in PyTorch terms (exactly ×2
for odd k, the TF DCGAN tutorial's 5×5 'SAME'), followed — except for the last — by BatchNorm (eval mode: the
generator is frozen) and ReLU. The dense projection is followed by BatchNorm and ReLU too.

Config (JSON-serialisable): latent_dim, channels (C0 at 4×4, then the width after each upsampling but the last),
out_channels, kernel_size, batch_norm. len(channels) upsamplings: channels (256, 128, 64, 32) → 64×64.
Feature taps: 'project' (4×4×C0), 'up0'…'up{n-2}' (after BN+ReLU), 'output' (after tanh).
Params: 'project' (Dense), 'up{i}' (ConvTranspose2d: 'kernel' (k, k, in, out), 'bias'), '*_bn' (BatchNorm).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganlatent_jax.generators.base import Generator, GeneratorInfo
from ganlatent_jax.nets import layers
from ganlatent_jax.port.keys import check_tree_shapes

FAMILY = "dcgan"
BN_EPS = 1e-5
SEED_SIZE = 4
DEFAULT_CONFIG = {"family": FAMILY, "latent_dim": 64, "channels": [256, 128, 64, 32], "out_channels": 3,
                  "kernel_size": 5, "batch_norm": True}


def make_config(**overrides) -> dict[str, Any]:
  config = {**DEFAULT_CONFIG, **overrides}
  unknown = set(config) - set(DEFAULT_CONFIG)
  if unknown:
    raise ValueError(f"dcgan: unknown config key(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
  if int(config["kernel_size"]) % 2 != 1:
    raise ValueError(f"dcgan: kernel_size must be odd to double the resolution exactly, got {config['kernel_size']}")
  if not config["channels"]:
    raise ValueError("dcgan: channels must name at least the 4×4 width")
  config["channels"] = [int(c) for c in config["channels"]]
  return config


def feature_layer_names(num_upsamplings: int) -> tuple[str, ...]:
  return ("project", *(f"up{i}" for i in range(num_upsamplings - 1)), "output")


class DCGANGenerator(nn.Module):
  latent_dim: int = 64
  channels: Sequence[int] = (256, 128, 64, 32)
  out_channels: int = 3
  kernel_size: int = 5
  batch_norm: bool = True

  def _norm_relu(self, x, name):
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name=f"{name}_bn")(x)
    return nn.relu(x)

  @nn.compact
  def _run(self, z, taps: Sequence[str] = ()):
    if z.ndim != 2 or z.shape[-1] != self.latent_dim:
      raise ValueError(f"dcgan: expected z of shape (batch, {self.latent_dim}), got {z.shape}")
    recorded = {}
    c0 = self.channels[0]
    x = nn.Dense(SEED_SIZE * SEED_SIZE * c0, name="project")(z).reshape(z.shape[0], SEED_SIZE, SEED_SIZE, c0)
    x = self._norm_relu(x, "project")
    recorded["project"] = x
    widths = (*self.channels[1:], self.out_channels)
    k = self.kernel_size
    for i, width in enumerate(widths):
      x = layers.ConvTranspose2d(width, (k, k), stride=2, padding=(k - 1) // 2, output_padding=1,
                                 name=f"up{i}")(x)
      if i < len(widths) - 1:
        x = self._norm_relu(x, f"up{i}")
        recorded[f"up{i}"] = x
    x = jnp.tanh(x)
    recorded["output"] = x
    return x, {name: recorded[name] for name in taps}

  def __call__(self, z):
    return self._run(z)[0]

  def features(self, z, layers: Sequence[str] = ()):
    return self._run(z, tuple(layers))[1]


# ---------------------------------------------------------------------------------------------------------------
# Family contract.

def config_items(config: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
  return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in config.items()))


def module_from_config(config: dict[str, Any]) -> DCGANGenerator:
  config = make_config(**{k: v for k, v in config.items() if k != "family"})
  return DCGANGenerator(latent_dim=int(config["latent_dim"]), channels=tuple(config["channels"]),
                        out_channels=int(config["out_channels"]), kernel_size=int(config["kernel_size"]),
                        batch_norm=bool(config["batch_norm"]))


def init_variables(config: dict[str, Any], rng: jax.Array):
  """DCGAN's init: conv kernels N(0, 0.02²), dense lecun-normal, BN scale 1 / bias 0 / running mean 0, var 1."""
  module = module_from_config(config)
  return module.init(rng, jnp.zeros((1, module.latent_dim), jnp.float32))


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  check_tree_shapes(jax.eval_shape(lambda: init_variables(config, jax.random.PRNGKey(0))), variables,
                    source or "dcgan variables")
  num_up = len(module.channels)
  size = SEED_SIZE * 2 ** num_up
  info = GeneratorInfo(family=FAMILY, latent_dim=module.latent_dim, image_shape=(size, size, module.out_channels),
                       latent_spaces=("z",), output_range=(-1.0, 1.0),
                       feature_layers=feature_layer_names(num_up),
                       config=config_items({**make_config(**{k: v for k, v in config.items() if k != "family"})}),
                       source=source)
  variables = jax.tree_util.tree_map(jnp.asarray, variables)
  return Generator(variables=variables, module=module, info=info)
