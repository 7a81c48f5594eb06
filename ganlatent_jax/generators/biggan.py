"""BigGAN-deep generator (the architecture of PyPI `pytorch-pretrained-biggan`), NHWC, pure linen.

Inputs: z (B, z_dim), a class vector (B, num_classes) (one-hot or soft; integer class ids (B,) are one-hot encoded)
and the truncation, a Python float in (0, 1]. The truncation is *static*: besides scaling the prior (see
`truncated_noise`), it selects which of the `n_stats` pre-computed batch-norm statistics every BN uses, so each value
traces its own program. Calls need the class vector (`gen(z, class_vector=..., truncation=...)`); the truncation
defaults to `DEFAULT_TRUNCATION` = 0.4 (the package README's example value). `Generator.sample_z` draws untruncated
N(0, I); `truncated_noise(rng, n, truncation)` follows the package's convention (truncnorm in [−2, 2] · truncation).

Spectral norm is folded into the weights when converting (eval mode: W / σ with the stored u, v), so this module only
sees plain kernels. Parameter tree (upstream names where they exist; `layers_N` is `generator.layers.N`):
  params/embeddings/kernel (num_classes, z_dim)         class vector → embedding (no bias)
  params/gen_z/{kernel, bias}                            cond vector (2·z_dim) → 4·4·16·ch (reshaped NHWC)
  params/layers_N/bn_k/{scale,offset}/kernel             conditional BN gain/offset (bias-free linears on cond)
  params/layers_N/conv_k/{kernel, bias}                  GenBlock convs (HWIO)
  params/layers_N/{theta,phi,g,o_conv}/kernel, gamma     the SelfAttn layer
  params/bn/{scale, bias}, params/conv_to_rgb/{kernel, bias}
  batch_stats/<BN path>/{running_means, running_vars} (n_stats, C)   per-truncation statistics
Feature taps: 'embed', 'cond_vector', 'gen_z' (B,4,4,16·ch), 'layers.N' (output of `generator.layers[N]`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from ganlatent_jax.generators.base import Generator, GeneratorInfo
from ganlatent_jax.nets import layers as L
from ganlatent_jax.port.keys import check_tree_shapes

FAMILY = "biggan"
# The package README's example truncation (also a common choice for direction discovery on BigGAN-deep).
DEFAULT_TRUNCATION = 0.4
_PRECISION = lax.Precision.HIGHEST
# BigGANConfig fields and the package's defaults (the 128×128 model); config.json overrides them.
UPSTREAM_DEFAULTS: dict[str, Any] = {
    "output_dim": 128, "z_dim": 128, "class_embed_dim": 128, "channel_width": 128, "num_classes": 1000,
    "layers": [[False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8], [True, 8, 4],
               [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1]],
    "attention_layer_position": 8, "eps": 1e-4, "n_stats": 51,
}


# ----------------------------------------------------------------------------------------------------------------
# Configuration and the layer plan (shared with the converter in `generators/formats/biggan_pretrained.py`).

def normalize_config(raw: dict[str, Any]) -> dict[str, Any]:
  """A BigGANConfig dict (config.json or our saved config) → our JSON-serialisable config with 'family'."""
  unknown = sorted(set(raw) - set(UPSTREAM_DEFAULTS) - {"family"})
  if unknown:
    raise ValueError(f"unknown BigGAN config field(s) {unknown}; expected {sorted(UPSTREAM_DEFAULTS)}")
  config: dict[str, Any] = {"family": FAMILY}
  for key, default in UPSTREAM_DEFAULTS.items():
    config[key] = raw.get(key, default)
  try:
    config["layers"] = [[bool(up), int(c_in), int(c_out)] for up, c_in, c_out in config["layers"]]
  except (TypeError, ValueError) as e:
    raise ValueError(f"BigGAN config 'layers' must be a list of [up_sample, in_mult, out_mult]: {e}") from e
  for key in ("output_dim", "z_dim", "class_embed_dim", "channel_width", "num_classes", "attention_layer_position",
              "n_stats"):
    config[key] = int(config[key])
  config["eps"] = float(config["eps"])
  plan = layer_plan(config)  # validates widths
  resolution = 4 * 2 ** sum(spec.up_sample for spec in plan)
  if resolution != config["output_dim"]:
    raise ValueError(f"BigGAN config: 'layers' up-sample {len([s for s in plan if s.up_sample])} times "
                     f"(4 → {resolution} px) but output_dim is {config['output_dim']}")
  if config["n_stats"] < 2:
    raise ValueError(f"BigGAN config: n_stats must be >= 2, got {config['n_stats']}")
  return config


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """One entry of upstream `generator.layers`: a GenBlock, or the SelfAttn inserted before block `attention_position`."""
  kind: str          # 'block' | 'attention'
  in_channels: int
  out_channels: int
  up_sample: bool = False

  @property
  def middle_channels(self) -> int:  # GenBlock bottleneck (reduction factor 4)
    return self.in_channels // 4


def layer_plan(config: dict[str, Any]) -> list[LayerSpec]:
  ch = config["channel_width"]
  plan = []
  for i, (up, m_in, m_out) in enumerate(config["layers"]):
    if i == config["attention_layer_position"]:
      plan.append(LayerSpec("attention", ch * m_in, ch * m_in))
    c_in, c_out = ch * m_in, ch * m_out
    # The skip path keeps the first in//2 channels when the width changes, so only halving is representable.
    if c_in != c_out and c_out != c_in // 2:
      raise ValueError(f"BigGAN config layers[{i}] = {[up, m_in, m_out]}: a width change must halve the channels "
                       f"(the skip keeps the first in//2 channels)")
    if c_in < 4:
      raise ValueError(f"BigGAN config layers[{i}]: {c_in} input channels leave no bottleneck (in//4 == 0)")
    plan.append(LayerSpec("block", c_in, c_out, bool(up)))
  if config["layers"][0][1] != 16:
    raise ValueError(f"BigGAN config layers[0] must take the 16·ch gen_z output, got in_mult {config['layers'][0][1]}")
  return plan


def feature_layer_names(config: dict[str, Any]) -> tuple[str, ...]:
  return ("embed", "cond_vector", "gen_z") + tuple(f"layers.{i}" for i in range(len(layer_plan(config))))


def statistics_weights(truncation: float, n_stats: int) -> tuple[int, float, float]:
  """(index, weight of row index, weight of row index+1) the upstream BN uses for this truncation.

  Upstream: `coef, idx = modf(truncation / (1/(n_stats-1)))`, mean = means[idx]·coef + means[idx+1]·(1−coef) when
  coef != 0. The weights are swapped relative to a linear interpolation; reproduced as is (it is what the published
  weights produce).
  """
  truncation = _static_truncation(truncation)
  coef, start = math.modf(truncation / (1.0 / (n_stats - 1)))
  start = int(start)
  if coef == 0.0:
    return start, 1.0, 0.0
  return start, coef, 1.0 - coef


def _static_truncation(truncation) -> float:
  try:
    truncation = float(truncation)
  except (TypeError, jax.errors.ConcretizationTypeError) as e:
    raise TypeError("BigGAN truncation must be a static Python float (it selects the batch-norm statistics); "
                    "do not pass it as a traced jit argument") from e
  if not 0.0 < truncation <= 1.0:
    raise ValueError(f"BigGAN truncation must be in (0, 1], got {truncation}")
  return truncation


# ----------------------------------------------------------------------------------------------------------------
# Sampling helpers.

def truncated_noise(rng: jax.Array, num: int, truncation: float, z_dim: int = 128) -> jax.Array:
  """z = truncation · truncnorm(−2, 2): the package's `truncated_noise_sample` convention (float32)."""
  return truncation * jax.random.truncated_normal(rng, -2.0, 2.0, (num, z_dim), jnp.float32)


def one_hot(class_ids, num_classes: int = 1000) -> jax.Array:
  """Integer class ids (B,) → (B, num_classes) float32 one-hot (the package's `one_hot_from_int`)."""
  class_ids = jnp.atleast_1d(jnp.asarray(class_ids))
  return jax.nn.one_hot(class_ids, num_classes, dtype=jnp.float32)


# ----------------------------------------------------------------------------------------------------------------
# Modules.

def _dense(features: int, name: str, use_bias: bool = False, kernel_init=nn.initializers.lecun_normal()):
  return nn.Dense(features, use_bias=use_bias, precision=_PRECISION, kernel_init=kernel_init, name=name)


def _truncation_statistics(module: nn.Module, channels: int, n_stats: int, truncation: float):
  """The module's (n_stats, C) running statistics, selected (and mixed) for this truncation as upstream does."""
  means = module.variable("batch_stats", "running_means", jnp.zeros, (n_stats, channels)).value
  variances = module.variable("batch_stats", "running_vars", jnp.ones, (n_stats, channels)).value
  index, w0, w1 = statistics_weights(truncation, n_stats)
  if w1 == 0.0:
    return means[index], variances[index]
  return means[index] * w0 + means[index + 1] * w1, variances[index] * w0 + variances[index + 1] * w1


class ConditionalBatchNorm(nn.Module):
  """Eval-mode BN with truncation-indexed statistics and a class/noise-conditioned gain (1 + scale) and offset."""
  n_stats: int
  eps: float

  @nn.compact
  def __call__(self, x, cond, truncation: float):
    channels = x.shape[-1]
    mean, var = _truncation_statistics(self, channels, self.n_stats, truncation)
    gain = 1.0 + _dense(channels, "scale", kernel_init=nn.initializers.zeros)(cond)
    offset = _dense(channels, "offset", kernel_init=nn.initializers.zeros)(cond)
    return (x - mean) / jnp.sqrt(var + self.eps) * gain[:, None, None, :] + offset[:, None, None, :]


class BatchNorm(nn.Module):
  """The final, unconditional BN: eval-mode batch norm with per-truncation statistics and an affine."""
  n_stats: int
  eps: float

  @nn.compact
  def __call__(self, x, truncation: float):
    channels = x.shape[-1]
    mean, var = _truncation_statistics(self, channels, self.n_stats, truncation)
    scale = self.param("scale", nn.initializers.ones, (channels,))
    bias = self.param("bias", nn.initializers.zeros, (channels,))
    return (x - mean) * (lax.rsqrt(var + self.eps) * scale) + bias


class GenBlock(nn.Module):
  """BigGAN-deep residual block: 4× (BN → ReLU → conv) with a 1×1 bottleneck; identity skip (channel-dropping)."""
  spec: LayerSpec
  n_stats: int
  eps: float

  @nn.compact
  def __call__(self, x, cond, truncation: float):
    spec = self.spec
    widths = (spec.middle_channels, spec.middle_channels, spec.middle_channels, spec.out_channels)
    skip = x
    for k, (width, size) in enumerate(zip(widths, (1, 3, 3, 1))):
      x = ConditionalBatchNorm(self.n_stats, self.eps, name=f"bn_{k}")(x, cond, truncation)
      x = nn.relu(x)
      if k == 1 and spec.up_sample:
        x = L.upsample_nearest(x, 2)
      x = L.Conv2d(width, (size, size), padding=size // 2, name=f"conv_{k}")(x)
    if spec.in_channels != spec.out_channels:
      skip = skip[..., :spec.in_channels // 2]
    if spec.up_sample:
      skip = L.upsample_nearest(skip, 2)
    return x + skip


class SelfAttention(nn.Module):
  """SAGAN attention: queries at full resolution, keys/values 2×2 max-pooled; `x + gamma · o_conv(attention)`."""
  channels: int

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    conv = lambda features, name: L.Conv2d(features, (1, 1), padding=0, use_bias=False, name=name)
    pool = lambda t: nn.max_pool(t, (2, 2), strides=(2, 2), padding="VALID")
    theta = conv(c // 8, "theta")(x).reshape(b, h * w, c // 8)
    phi = pool(conv(c // 8, "phi")(x)).reshape(b, -1, c // 8)
    g = pool(conv(c // 2, "g")(x)).reshape(b, -1, c // 2)
    attention = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi, precision=_PRECISION), axis=-1)
    attended = jnp.einsum("bqk,bkc->bqc", attention, g, precision=_PRECISION).reshape(b, h, w, c // 2)
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma * conv(c, "o_conv")(attended)


class BigGANDeep(nn.Module):
  """The whole generator: embeddings + `generator` of upstream `BigGAN` (outputs NHWC in [−1, 1])."""
  config: tuple  # sorted (key, value) pairs, lists as tuples (hashable: the module is static in `Generator`)

  @property
  def cfg(self) -> dict[str, Any]:
    return dict(self.config)

  def setup(self):
    cfg = self.cfg
    self.plan = layer_plan(cfg)
    ch = cfg["channel_width"]
    self.embeddings = _dense(cfg["z_dim"], "embeddings")
    self.gen_z_linear = nn.Dense(4 * 4 * 16 * ch, precision=_PRECISION, name="gen_z")
    self.layers = [
        GenBlock(spec, cfg["n_stats"], cfg["eps"], name=f"layers_{i}") if spec.kind == "block"
        else SelfAttention(spec.in_channels, name=f"layers_{i}")
        for i, spec in enumerate(self.plan)]
    self.bn = BatchNorm(cfg["n_stats"], cfg["eps"], name="bn")
    self.conv_to_rgb = L.Conv2d(ch, (3, 3), padding=1, name="conv_to_rgb")

  def embed(self, class_vector):
    """Class vector (B, num_classes) or ids (B,) → embedding (B, z_dim)."""
    return self.embeddings(self._class_vector(class_vector))

  def cond_vector(self, z, class_vector):
    """concat(z, embed(class)) (B, 2·z_dim): the input of gen_z and of every conditional BN."""
    embedding = self.embed(class_vector)
    embedding = jnp.broadcast_to(embedding, (z.shape[0], embedding.shape[-1]))
    return jnp.concatenate([z.astype(jnp.float32), embedding], axis=-1)

  def gen_z(self, cond):
    """cond vector → the 4×4 NHWC input map (B, 4, 4, 16·ch) (upstream reshapes in TF/NHWC order)."""
    return self.gen_z_linear(cond).reshape(cond.shape[0], 4, 4, -1)

  def __call__(self, z, class_vector=None, truncation: float = DEFAULT_TRUNCATION):
    return self._run(z, class_vector, truncation, ())[0]

  def features(self, z, layers: Sequence[str], class_vector=None, truncation: float = DEFAULT_TRUNCATION):
    unknown = [name for name in layers if name not in feature_layer_names(self.cfg)]
    if unknown:
      raise ValueError(f"unknown BigGAN feature layer(s) {unknown}; available: {list(feature_layer_names(self.cfg))}")
    return self._run(z, class_vector, truncation, tuple(layers))[1]

  def _run(self, z, class_vector, truncation, taps):
    if class_vector is None:
      raise ValueError("BigGAN needs a class vector: pass class_vector= (B, num_classes) or integer ids (B,)")
    truncation = _static_truncation(truncation)
    if z.ndim != 2 or z.shape[-1] != self.cfg["z_dim"]:
      raise ValueError(f"BigGAN z must be (B, {self.cfg['z_dim']}), got {z.shape}")
    out = {}
    cond = self.cond_vector(z, class_vector)
    out["embed"] = cond[:, self.cfg["z_dim"]:]
    out["cond_vector"] = cond
    x = out["gen_z"] = self.gen_z(cond)
    last_tap = max((self._tap_index(name) for name in taps), default=None)
    for i, (spec, layer) in enumerate(zip(self.plan, self.layers)):
      if last_tap is not None and i > last_tap:  # features only: stop after the deepest requested tap
        return None, {name: out[name] for name in taps}
      x = layer(x, cond, truncation) if spec.kind == "block" else layer(x)
      out[f"layers.{i}"] = x
    x = nn.relu(self.bn(x, truncation))
    image = jnp.tanh(self.conv_to_rgb(x)[..., :3])
    return image, {name: out[name] for name in taps}

  @staticmethod
  def _tap_index(name: str) -> int:
    return int(name.split(".")[1]) if name.startswith("layers.") else -1

  def _class_vector(self, class_vector):
    class_vector = jnp.asarray(class_vector)
    if jnp.issubdtype(class_vector.dtype, jnp.integer) and class_vector.ndim <= 1:  # class ids
      return one_hot(class_vector, self.cfg["num_classes"])
    if class_vector.ndim == 1:
      class_vector = class_vector[None]
    if class_vector.shape[-1] != self.cfg["num_classes"]:
      raise ValueError(f"BigGAN class vector must be (B, {self.cfg['num_classes']}), got {class_vector.shape}")
    return class_vector.astype(jnp.float32)


# ----------------------------------------------------------------------------------------------------------------
# Family interface (see generators/load.py).

def _frozen(value):
  if isinstance(value, (list, tuple)):
    return tuple(_frozen(v) for v in value)
  return value


def _module(config: dict[str, Any]) -> BigGANDeep:
  return BigGANDeep(tuple(sorted((k, _frozen(v)) for k, v in config.items())))


def init_variables(config: dict[str, Any], rng: jax.Array):
  """Random variables for `config` (BN stats 0/1, zero attention gamma, zero conditional gains). No spectral norm:
  a trainer that wants it must add it around these plain kernels."""
  config = normalize_config(config)
  z = jnp.zeros((1, config["z_dim"]), jnp.float32)
  classes = jnp.zeros((1, config["num_classes"]), jnp.float32)
  return _module(config).init(rng, z, classes, 1.0)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  config = normalize_config(config)
  module = _module(config)
  expected = jax.eval_shape(lambda: init_variables(config, jax.random.PRNGKey(0)))
  check_tree_shapes(expected, variables, source or "BigGAN variables")
  variables = jax.tree_util.tree_map(jnp.asarray, variables)
  resolution = config["output_dim"]
  info = GeneratorInfo(
      family=FAMILY, latent_dim=config["z_dim"], image_shape=(resolution, resolution, 3), latent_spaces=("z",),
      num_classes=config["num_classes"], output_range=(-1.0, 1.0), feature_layers=feature_layer_names(config),
      config=module.config, source=source)
  return Generator(variables=variables, module=module, info=info)


__all__ = ["BigGANDeep", "ConditionalBatchNorm", "DEFAULT_TRUNCATION", "GenBlock", "LayerSpec", "SelfAttention",
           "build", "feature_layer_names", "init_variables", "layer_plan", "normalize_config", "one_hot",
           "statistics_weights", "truncated_noise"]
