"""StyleGAN (v1) generator of genforce (`models/stylegan_generator.py`, the SeFa / SRE model zoo).

Mapping: [concat(z, label @ label_weight)] → PixelNorm → `mapping_layers` dense layers (W·√2/√in·lr_mul,
b·lr_mul, leaky ReLU 0.2, no gain) → w. Truncation (genforce's `TruncationModule`): wp = w_avg + (wp − w_avg)·ψ on
layers < `truncation_layers` (genforce truncates nothing unless both are given; here `truncation_layers=None`
means every layer). Synthesis, layer i uses wp[:, i]: layer0 = the learned 4×4 constant; layer 2k (k ≥ 1) =
[nearest ×2 → 3×3 conv] or, where `fused` (genforce's fused_scale, 'auto' → resolution ≥ 128), the equivalent
stride-2 transposed conv of the 4 summed shifts of the padded kernel; both followed by the [1,2,1]² blur; odd layers
a 3×3 conv. Every layer then: + noise·weight[C] (stored noise 'const', fresh 'random', or 'none') → + bias →
leaky ReLU 0.2 → instance norm (eps 1e-8) → x·(s[:C] + 1) + s[C:], s = w @ (W_style/√w_dim)ᵀ + b. ToRGB heads
`output{k}` (1×1 conv W/√C + b) per resolution, blended by `lod` as in `generators.pggan`.

Feature taps: `layer{i}` (NHWC) and `style{i:02d}` (the (B, 2C) style vector of layer i, genforce's `styleNN`).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items
from ganlatent_jax.nets import layers, upfirdn

FAMILY = "stylegan"
EPS = 1e-8
AUTO_FUSED_MIN_RES = 128
NOISE_MODES = ("const", "random", "none")
BLUR = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]).astype(np.float32) / 16


def make_config(*, resolution: int, z_dim: int = 512, w_dim: int = 512, label_size: int = 0, mapping_layers: int = 8,
                mapping_fmaps: int = 512, mapping_lr_mul: float = 0.01, image_channels: int = 3,
                final_tanh: bool = False, fused_scale: bool | str = "auto", fmaps_base: int = 16 << 10,
                fmaps_max: int = 512, channels: dict[int, int] | None = None) -> dict[str, Any]:
  if resolution < 8 or 2 ** int(round(math.log2(resolution))) != resolution:
    raise ValueError(f"StyleGAN resolution must be a power of two >= 8, got {resolution}")
  if fused_scale not in (True, False, "auto"):
    raise ValueError(f"fused_scale must be True, False or 'auto', got {fused_scale!r}")
  resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
  if channels is None:
    channels = {r: min(fmaps_base // r, fmaps_max) for r in resolutions}
  fused = [r >= AUTO_FUSED_MIN_RES if fused_scale == "auto" else bool(fused_scale) for r in resolutions]
  return {"family": FAMILY, "resolution": int(resolution), "z_dim": int(z_dim), "w_dim": int(w_dim),
          "label_size": int(label_size), "mapping_layers": int(mapping_layers), "mapping_fmaps": int(mapping_fmaps),
          "mapping_lr_mul": float(mapping_lr_mul), "image_channels": int(image_channels),
          "final_tanh": bool(final_tanh), "channels": [[r, int(channels[r])] for r in resolutions],
          "fused": [False] + fused[1:]}


def _lrelu(x):
  return jax.nn.leaky_relu(x, 0.2)


class Dense(nn.Module):
  """genforce DenseBlock: lrelu(x @ (W·gain·lr/√in)ᵀ + b·lr); W stored (in, out) in N(0, 1/lr²) scale."""
  features: int
  lr_mul: float

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.normal(1.0 / self.lr_mul), (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    scale = math.sqrt(2.0) * self.lr_mul / math.sqrt(x.shape[-1])
    return _lrelu(jnp.dot(x, kernel * scale, precision=lax.Precision.HIGHEST) + bias * self.lr_mul)


class StyleConvBlock(nn.Module):
  features: int
  resolution: int
  kind: str  # 'const', 'up', 'up_fused', 'conv'

  @nn.compact
  def __call__(self, x, w, noise_mode: str, noise_rng):
    if self.kind == "const":
      const = self.param("const", nn.initializers.ones, (1, 4, 4, self.features))
      x = jnp.broadcast_to(const, (w.shape[0], 4, 4, self.features))
    else:
      in_ch = x.shape[-1]
      kernel = self.param("kernel", nn.initializers.normal(1.0), (3, 3, in_ch, self.features))
      kernel = kernel * (math.sqrt(2.0) / math.sqrt(9 * in_ch))
      if self.kind == "up_fused":
        padded = jnp.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
        summed = padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]  # (4, 4, in, out)
        x = layers.conv_transpose2d(x, summed, stride=2, padding=1)
      else:
        if self.kind == "up":
          x = layers.upsample_nearest(x, 2)
        x = layers.conv2d(x, kernel, padding=1)
      if self.kind != "conv":
        x = upfirdn.upfirdn2d(x, BLUR, pad=(1, 1))
    noise_weight = self.param("noise_weight", nn.initializers.zeros, (self.features,))
    noise = self.variable("buffers", "noise",
                          lambda: jax.random.normal(self.make_rng("params"), (1, self.resolution, self.resolution, 1)))
    if noise_mode == "const":
      x = x + noise.value * noise_weight
    elif noise_mode == "random":
      x = x + jax.random.normal(noise_rng, (x.shape[0], self.resolution, self.resolution, 1)) * noise_weight
    x = _lrelu(x + self.param("bias", nn.initializers.zeros, (self.features,)))
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    x = x * lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + EPS)
    style_kernel = self.param("style_kernel", nn.initializers.normal(1.0), (w.shape[-1], 2 * self.features))
    style = jnp.dot(w, style_kernel / math.sqrt(w.shape[-1]), precision=lax.Precision.HIGHEST)
    style = style + self.param("style_bias", nn.initializers.zeros, (2 * self.features,))
    x = x * (style[:, None, None, :self.features] + 1) + style[:, None, None, self.features:]
    return x, style


class ToRGB(nn.Module):
  channels: int

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.normal(1.0), (1, 1, x.shape[-1], self.channels))
    y = layers.conv2d(x, kernel / math.sqrt(x.shape[-1]), padding=0)
    return y + self.param("bias", nn.initializers.zeros, (self.channels,))


class StyleGANGenerator(nn.Module):
  resolution: int
  z_dim: int
  w_dim: int
  label_size: int
  mapping_layers: int
  mapping_fmaps: int
  mapping_lr_mul: float
  channels: tuple[tuple[int, int], ...]
  fused: tuple[bool, ...]
  image_channels: int = 3
  final_tanh: bool = False

  @property
  def num_layers(self) -> int:
    return 2 * len(self.channels)

  @property
  def latent_dim(self) -> int:
    return self.z_dim

  def setup(self):
    self.dense = [Dense(self.w_dim if i == self.mapping_layers - 1 else self.mapping_fmaps, self.mapping_lr_mul)
                  for i in range(self.mapping_layers)]
    if self.label_size:
      self.label_weight = self.param("label_weight", nn.initializers.normal(1.0), (self.label_size, self.z_dim))
    blocks = []
    for k, (res, width) in enumerate(self.channels):
      first = "const" if k == 0 else ("up_fused" if self.fused[k] else "up")
      blocks += [StyleConvBlock(width, res, first), StyleConvBlock(width, res, "conv")]
    self.layers = blocks
    self.outputs = [ToRGB(self.image_channels) for _ in self.channels]
    self.w_avg = self.variable("buffers", "w_avg", lambda: jnp.zeros((self.w_dim,), jnp.float32))

  def mapping(self, z, class_vector=None):
    z = jnp.asarray(z, jnp.float32)
    if self.label_size:
      if class_vector is None:
        raise ValueError(f"this StyleGAN is conditional (label_size={self.label_size}): pass class_vector=")
      labels = jnp.asarray(class_vector)
      if labels.ndim == 1:
        labels = jax.nn.one_hot(labels, self.label_size)
      z = jnp.concatenate([z, labels.astype(jnp.float32) @ self.label_weight], axis=-1)
    x = z * lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + EPS)
    for layer in self.dense:
      x = layer(x)
    return x

  def truncate(self, w, truncation=1.0, truncation_layers=None, truncation_latent=None):
    """w (B, D) or wp (B, L, D) → wp with layers < truncation_layers (None: all) pulled towards w_avg by ψ."""
    w = jnp.asarray(w, jnp.float32)
    if w.ndim == 2:
      w = jnp.broadcast_to(w[:, None, :], (w.shape[0], self.num_layers, w.shape[-1]))
    if w.ndim != 3 or w.shape[1:] != (self.num_layers, self.w_dim):
      raise ValueError(f"w must be (B, {self.w_dim}) or wp (B, {self.num_layers}, {self.w_dim}), got {w.shape}")
    if isinstance(truncation, (int, float)) and truncation == 1:
      return w
    center = self.w_avg.value if truncation_latent is None else jnp.asarray(truncation_latent, jnp.float32)
    center = jnp.reshape(center, (-1, 1, self.w_dim))
    count = self.num_layers if truncation_layers is None else int(truncation_layers)
    coefs = jnp.where(jnp.arange(self.num_layers) < count, truncation, 1.0)[None, :, None]
    return center + (w - center) * coefs

  def _synthesize(self, wp, lod: float, noise_mode: str, noise_rng, taps: Sequence[str] = ()):
    max_lod = len(self.channels) - 1
    if not 0 <= lod <= max_lod:
      raise ValueError(f"lod must be in [0, {max_lod}], got {lod}")
    if noise_mode not in NOISE_MODES:
      raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise_mode == "random" and noise_rng is None:
      raise ValueError("noise_mode='random' needs noise_rng=")
    rngs = jax.random.split(noise_rng, self.num_layers) if noise_mode == "random" else [None] * self.num_layers
    found: dict[str, jax.Array] = {}
    x = image = None
    for k in range(len(self.channels)):
      current_lod = max_lod - k
      if lod < current_lod + 1:
        for i in (2 * k, 2 * k + 1):
          x, style = self.layers[i](x, wp[:, i], noise_mode, rngs[i])
          found[f"layer{i}"], found[f"style{i:02d}"] = x, style
      if current_lod - 1 < lod <= current_lod:
        image = self.outputs[k](x)
      elif current_lod < lod < current_lod + 1:
        alpha = math.ceil(lod) - lod
        image = self.outputs[k](x) * alpha + layers.upsample_nearest(image, 2) * (1 - alpha)
      elif lod >= current_lod + 1:
        image = layers.upsample_nearest(image, 2)
    image = jnp.tanh(image) if self.final_tanh else image
    return image, {name: found[name] for name in taps if name in found}

  def synthesis(self, w, *, truncation=1.0, truncation_layers=None, truncation_latent=None, lod: float = 0.0,
                noise_mode: str = "const", noise_rng=None, class_vector=None):
    """w (B, D) or wp (B, num_layers, D) → image NHWC (class_vector accepted and unused: labels enter via w)."""
    wp = self.truncate(w, truncation, truncation_layers, truncation_latent)
    return self._synthesize(wp, float(lod), noise_mode, noise_rng)[0]

  def __call__(self, z, class_vector=None, *, truncation=1.0, truncation_layers=None, truncation_latent=None,
               lod: float = 0.0, noise_mode: str = "const", noise_rng=None, input_is_latent=False):
    w = z if input_is_latent else self.mapping(z, class_vector)
    return self.synthesis(w, truncation=truncation, truncation_layers=truncation_layers,
                          truncation_latent=truncation_latent, lod=lod, noise_mode=noise_mode, noise_rng=noise_rng)

  def features(self, z, layers: Sequence[str] = (), class_vector=None, *, truncation=1.0, truncation_layers=None,
               lod: float = 0.0, noise_mode: str = "const", noise_rng=None, input_is_latent=False):
    known = feature_layer_names(self.num_layers)
    if unknown := sorted(set(layers) - set(known)):
      raise ValueError(f"unknown StyleGAN feature layer(s) {unknown}; available: {list(known)}")
    w = z if input_is_latent else self.mapping(z, class_vector)
    wp = self.truncate(w, truncation, truncation_layers)
    return self._synthesize(wp, float(lod), noise_mode, noise_rng, tuple(layers))[1]

  def all_heads(self, z, class_vector=None):
    """Every ToRGB head's image (what `init` traces: lod selects among these heads)."""
    wp = self.truncate(self.mapping(z, class_vector))
    x, images = None, []
    for k in range(len(self.channels)):
      for i in (2 * k, 2 * k + 1):
        x, _ = self.layers[i](x, wp[:, i], "const", None)
      images.append(self.outputs[k](x))
    return images


def feature_layer_names(num_layers: int) -> tuple[str, ...]:
  return tuple(f"layer{i}" for i in range(num_layers)) + tuple(f"style{i:02d}" for i in range(num_layers))


def module_from_config(config: dict[str, Any]) -> StyleGANGenerator:
  return StyleGANGenerator(
      resolution=int(config["resolution"]), z_dim=int(config["z_dim"]), w_dim=int(config["w_dim"]),
      label_size=int(config.get("label_size", 0)), mapping_layers=int(config["mapping_layers"]),
      mapping_fmaps=int(config["mapping_fmaps"]), mapping_lr_mul=float(config["mapping_lr_mul"]),
      channels=tuple((int(r), int(c)) for r, c in config["channels"]),
      fused=tuple(bool(f) for f in config["fused"]), image_channels=int(config.get("image_channels", 3)),
      final_tanh=bool(config.get("final_tanh", False)))


def _info(module: StyleGANGenerator, config: dict[str, Any], source: str) -> GeneratorInfo:
  return GeneratorInfo(family=FAMILY, latent_dim=module.z_dim,
                       image_shape=(module.resolution, module.resolution, module.image_channels),
                       latent_spaces=("z", "w", "w+"), num_ws=module.num_layers, w_dim=module.w_dim,
                       num_classes=module.label_size, output_range=(-1.0, 1.0),
                       feature_layers=feature_layer_names(module.num_layers), config=config_items(config),
                       source=source)


def _init(module: StyleGANGenerator, rng):
  labels = jnp.zeros((1, module.label_size), jnp.float32) if module.label_size else None
  return module.init(rng, jnp.zeros((1, module.z_dim), jnp.float32), labels, method="all_heads")


def abstract_variables(config: dict[str, Any]):
  module = module_from_config(config)
  return jax.eval_shape(lambda: _init(module, jax.random.PRNGKey(0)))


def init_variables(config: dict[str, Any], rng: jax.Array):
  module = module_from_config(config)
  return jax.jit(lambda key: _init(module, key))(rng)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), variables)
  return checked_generator(module, _info(module, config, source), variables, abstract_variables(config))
