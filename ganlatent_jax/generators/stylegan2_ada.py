"""StyleGAN2-ADA generator, architecture of NVlabs/stylegan2-ada-pytorch `training/networks.py` `Generator`.

A family of its own rather than options on `generators.stylegan2` (rosinality's layout): the per-layer maths is the
same and is shared (`nets.upfirdn.modulated_conv2d`, `upsample_2d`, `stylegan2.EqualLinear`), but NVlabs networks
have a different configuration surface — z_dim ≠ w_dim, a class embedding (c_dim > 0), `conv_clamp`, the
orig/skip/resnet synthesis architectures, truncation with a cutoff, noise modes const/random/none — and a
different parameter layout; folding all of that into the rosinality module would make every one of its configs,
inits and key maps branch. Parameter names follow upstream's modules (`mapping_net/fc0`, `synthesis_net/b8/conv0`).

Mapping: z → normalize_2nd_moment (z·rsqrt(mean z² + 1e-8)); with c_dim > 0 also embed(c) normalized the same way
and concatenated; `num_layers` FC layers (lr_multiplier, leaky ReLU·√2) → w. Truncation: w_avg + ψ·(w − w_avg) on
ws[:, :cutoff]. Synthesis: per block b4 … b{res} (conv0 upsampling, conv1; ToRGB for 'skip' or the last block):
modulated 3×3 conv (demodulated) → + noise_const·noise_strength ('const'), N(0,1)·strength ('random') or nothing
('none') → + bias → lrelu·√2·gain → clamp(±conv_clamp·gain). ws: block b4 uses ws[0] (conv1), ws[1] (torgb);
block 2^k uses ws[2k−5], ws[2k−4] and ws[2k−3] (ToRGB shares its w with the next block's conv0).

Feature taps: `b{res}` (a block's x) and `b{res}.img` (the running RGB image after that block; 'skip' only, or the
last block).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items
from ganlatent_jax.generators.stylegan2 import EqualLinear
from ganlatent_jax.nets import layers, upfirdn

FAMILY = "stylegan2_ada"
NORMALIZE_EPS = 1e-8
ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")
DEFAULT_FILTER = (1.0, 3.0, 3.0, 1.0)


def upstream_channels(img_resolution: int, channel_base: int = 32768, channel_max: int = 512) -> dict[int, int]:
  """`min(channel_base // res, channel_max)` for res = 4 … img_resolution (upstream's table)."""
  return {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(2, int(math.log2(img_resolution)) + 1)}


def make_config(*, z_dim: int = 512, w_dim: int = 512, c_dim: int = 0, img_resolution: int, img_channels: int = 3,
                mapping_layers: int = 8, embed_features: int | None = None, layer_features: int | None = None,
                lr_multiplier: float = 0.01, channels: dict[int, int] | None = None, architecture: str = "skip",
                conv_clamp: float | None = None, resample_filter: Sequence[float] = DEFAULT_FILTER) -> dict[str, Any]:
  """A JSON-serialisable config; defaults are upstream's `Generator` defaults."""
  if img_resolution < 4 or 2 ** int(round(math.log2(img_resolution))) != img_resolution:
    raise ValueError(f"StyleGAN2-ADA img_resolution must be a power of two >= 4, got {img_resolution}")
  if architecture not in ARCHITECTURES:
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
  channels = upstream_channels(img_resolution) if channels is None else {int(r): int(c) for r, c in channels.items()}
  needed = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
  if missing := [r for r in needed if r not in channels]:
    raise ValueError(f"channel table lacks resolution(s) {missing} (needs {needed})")
  return {"family": FAMILY, "z_dim": int(z_dim), "w_dim": int(w_dim), "c_dim": int(c_dim),
          "img_resolution": int(img_resolution), "img_channels": int(img_channels),
          "mapping_layers": int(mapping_layers),
          "embed_features": int(w_dim if embed_features is None else embed_features) if c_dim else 0,
          "layer_features": int(w_dim if layer_features is None else layer_features),
          "lr_multiplier": float(lr_multiplier), "channels": [[r, channels[r]] for r in needed],
          "architecture": architecture, "conv_clamp": None if conv_clamp is None else float(conv_clamp),
          "resample_filter": [float(v) for v in resample_filter]}


def num_ws(img_resolution: int) -> int:
  return 2 * int(math.log2(img_resolution)) - 2


def truncate_ws(w, center, num_ws: int, truncation=1.0, truncation_cutoff=None):
  """NVlabs' truncation: w (B, D) or W+ → W+ (B, num_ws, D), ws[:, :cutoff] = center + ψ·(ws − center); `center`
  (D,) or (1 or B, D) is w_avg unless the caller gives another."""
  w = jnp.asarray(w, jnp.float32)
  w_dim = np.shape(center)[-1]
  if w.ndim == 2:
    w = jnp.broadcast_to(w[:, None, :], (w.shape[0], num_ws, w.shape[-1]))
  if w.ndim != 3 or w.shape[1:] != (num_ws, w_dim):
    raise ValueError(f"w must be (B, {w_dim}) or W+ (B, {num_ws}, {w_dim}), got {w.shape}")
  if isinstance(truncation, (int, float)) and truncation == 1:
    return w
  center = jnp.reshape(jnp.asarray(center, jnp.float32), (-1, 1, w_dim))  # broadcast over the layers
  truncated = center + truncation * (w - center)
  cutoff = num_ws if truncation_cutoff is None else int(truncation_cutoff)
  return w.at[:, :cutoff].set(truncated[:, :cutoff])


def _normalize_2nd_moment(x):
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + NORMALIZE_EPS)


def _bias_act(x, bias, *, activate: bool, gain: float, clamp: float | None):
  """upstream `bias_act`: + bias, lrelu(0.2)·√2 (or linear), × gain, clamp(±clamp) (clamp already × gain)."""
  x = x + bias
  if activate:
    x = jax.nn.leaky_relu(x, 0.2) * math.sqrt(2.0)
  if gain != 1:
    x = x * gain
  return x if clamp is None else jnp.clip(x, -clamp, clamp)


class MappingNetwork(nn.Module):
  c_dim: int
  w_dim: int
  num_layers: int
  embed_features: int
  layer_features: int
  lr_multiplier: float

  @nn.compact
  def __call__(self, z, c=None):
    x = _normalize_2nd_moment(jnp.asarray(z, jnp.float32))
    if self.c_dim:
      y = _normalize_2nd_moment(EqualLinear(self.embed_features, name="embed")(jnp.asarray(c, jnp.float32)))
      x = jnp.concatenate([x, y], axis=-1)
    for i in range(self.num_layers):
      width = self.w_dim if i == self.num_layers - 1 else self.layer_features
      x = EqualLinear(width, lr_mul=self.lr_multiplier, activate=True, name=f"fc{i}")(x)
    return x


class SynthesisLayer(nn.Module):
  """Modulated conv (3×3, optionally ×2 up) → noise → bias → lrelu·√2·gain → clamp."""
  features: int
  resolution: int
  up: bool
  conv_clamp: float | None
  resample_filter: tuple[float, ...]

  @nn.compact
  def __call__(self, x, w, noise_mode: str, noise_rng, gain: float = 1.0):
    styles = EqualLinear(x.shape[-1], bias_init=1.0, name="affine")(w)
    kernel = self.param("kernel", nn.initializers.normal(1.0), (3, 3, x.shape[-1], self.features))
    x = upfirdn.modulated_conv2d(x, kernel, styles, demodulate=True, upsample=self.up,
                                 blur_kernel=upfirdn.make_kernel(self.resample_filter))
    noise_const = self.variable("buffers", "noise_const",
                                lambda: jax.random.normal(self.make_rng("params"), (self.resolution,) * 2))
    strength = self.param("noise_strength", nn.initializers.zeros, ())
    if noise_mode == "const":
      x = x + (noise_const.value * strength)[None, :, :, None]
    elif noise_mode == "random":
      x = x + jax.random.normal(noise_rng, (x.shape[0], self.resolution, self.resolution, 1)) * strength
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return _bias_act(x, bias, activate=True, gain=gain, clamp=clamp)


class ToRGBLayer(nn.Module):
  channels: int
  conv_clamp: float | None

  @nn.compact
  def __call__(self, x, w):
    styles = EqualLinear(x.shape[-1], bias_init=1.0, name="affine")(w)
    kernel = self.param("kernel", nn.initializers.normal(1.0), (1, 1, x.shape[-1], self.channels))
    x = upfirdn.modulated_conv2d(x, kernel, styles, demodulate=False)  # styles/√in: the 1×1 weight gain
    bias = self.param("bias", nn.initializers.zeros, (self.channels,))
    return _bias_act(x, bias, activate=False, gain=1.0, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
  features: int
  resolution: int
  is_last: bool
  img_channels: int
  architecture: str
  conv_clamp: float | None
  resample_filter: tuple[float, ...]

  @nn.compact
  def __call__(self, x, img, ws, noise_mode, noise_rngs):
    first = self.resolution == 4
    layer = dict(resolution=self.resolution, conv_clamp=self.conv_clamp, resample_filter=self.resample_filter)
    if first:
      const = self.param("const", nn.initializers.normal(1.0), (4, 4, self.features))
      x = jnp.broadcast_to(const, (ws.shape[0], 4, 4, self.features))
      x = SynthesisLayer(self.features, up=False, name="conv1", **layer)(x, ws[:, 0], noise_mode, noise_rngs[0])
    elif self.architecture == "resnet":
      skip_kernel = self.param("skip", nn.initializers.normal(1.0), (1, 1, x.shape[-1], self.features))
      y = upfirdn.upsample_2d(x, upfirdn.make_kernel(self.resample_filter))
      y = layers.conv2d(y, skip_kernel * (math.sqrt(0.5) / math.sqrt(x.shape[-1])), padding=0)
      if self.conv_clamp is not None:
        y = jnp.clip(y, -self.conv_clamp * math.sqrt(0.5), self.conv_clamp * math.sqrt(0.5))
      x = SynthesisLayer(self.features, up=True, name="conv0", **layer)(x, ws[:, 0], noise_mode, noise_rngs[0])
      x = SynthesisLayer(self.features, up=False, name="conv1", **layer)(x, ws[:, 1], noise_mode, noise_rngs[1],
                                                                         gain=math.sqrt(0.5))
      x = y + x
    else:
      x = SynthesisLayer(self.features, up=True, name="conv0", **layer)(x, ws[:, 0], noise_mode, noise_rngs[0])
      x = SynthesisLayer(self.features, up=False, name="conv1", **layer)(x, ws[:, 1], noise_mode, noise_rngs[1])
    if img is not None:
      img = upfirdn.upsample_2d(img, upfirdn.make_kernel(self.resample_filter))
    if self.is_last or self.architecture == "skip":
      y = ToRGBLayer(self.img_channels, self.conv_clamp, name="torgb")(x, ws[:, 1 if first else 2])
      img = y if img is None else img + y
    return x, img


class SynthesisNetwork(nn.Module):
  img_resolution: int
  img_channels: int
  channels: tuple[tuple[int, int], ...]
  architecture: str
  conv_clamp: float | None
  resample_filter: tuple[float, ...]

  @nn.compact
  def __call__(self, ws, noise_mode: str = "const", noise_rng=None, taps: Sequence[str] = ()):
    if noise_mode not in NOISE_MODES:
      raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise_mode == "random" and noise_rng is None:
      raise ValueError("noise_mode='random' needs noise_rng=")
    num_layers = num_ws(self.img_resolution) - 1
    rngs = list(jax.random.split(noise_rng, num_layers)) if noise_mode == "random" else [None] * num_layers
    found: dict[str, jax.Array] = {}
    x = img = None
    w_idx = layer_idx = 0
    for res, width in self.channels:
      first = res == 4
      count = 2 if first else 3
      block = SynthesisBlock(width, res, res == self.img_resolution, self.img_channels, self.architecture,
                             self.conv_clamp, self.resample_filter, name=f"b{res}")
      num_conv = 1 if first else 2
      x, img = block(x, img, ws[:, w_idx:w_idx + count], noise_mode, rngs[layer_idx:layer_idx + num_conv])
      w_idx += num_conv
      layer_idx += num_conv
      if f"b{res}" in taps:
        found[f"b{res}"] = x
      if f"b{res}.img" in taps and img is not None:
        found[f"b{res}.img"] = img
    return img, found


class StyleGAN2ADAGenerator(nn.Module):
  z_dim: int
  w_dim: int
  c_dim: int
  img_resolution: int
  img_channels: int
  mapping_layers: int
  embed_features: int
  layer_features: int
  lr_multiplier: float
  channels: tuple[tuple[int, int], ...]
  architecture: str = "skip"
  conv_clamp: float | None = None
  resample_filter: tuple[float, ...] = DEFAULT_FILTER

  @property
  def num_ws(self) -> int:
    return num_ws(self.img_resolution)

  def setup(self):
    self.mapping_net = MappingNetwork(self.c_dim, self.w_dim, self.mapping_layers, self.embed_features,
                                      self.layer_features, self.lr_multiplier)
    self.synthesis_net = SynthesisNetwork(self.img_resolution, self.img_channels, self.channels, self.architecture,
                                          self.conv_clamp, self.resample_filter)
    self.w_avg = self.variable("buffers", "w_avg", lambda: jnp.zeros((self.w_dim,), jnp.float32))

  def _labels(self, class_vector, batch: int):
    if not self.c_dim:
      return None
    if class_vector is None:
      raise ValueError(f"this generator is class-conditional (c_dim={self.c_dim}): pass class_vector= (class ids "
                       f"(B,) or label vectors (B, {self.c_dim}))")
    c = jnp.asarray(class_vector)
    if c.ndim == 1 and jnp.issubdtype(c.dtype, jnp.integer):
      c = jax.nn.one_hot(c, self.c_dim)
    return jnp.broadcast_to(c.astype(jnp.float32), (batch, self.c_dim))

  def mapping(self, z, class_vector=None):
    """z (B, z_dim) [+ class] → w (B, w_dim) (untruncated)."""
    return self.mapping_net(z, self._labels(class_vector, z.shape[0]))

  def truncate(self, w, truncation=1.0, truncation_cutoff=None, truncation_latent=None):
    """w (B, D) or W+ → W+ (B, num_ws, D) with ws[:, :cutoff] = center + ψ·(ws − center), center = w_avg."""
    center = self.w_avg.value if truncation_latent is None else truncation_latent
    return truncate_ws(w, center, self.num_ws, truncation, truncation_cutoff)

  def ws(self, z, class_vector=None, *, truncation=1.0, truncation_cutoff=None):
    """Upstream `G.mapping(z, c, truncation_psi, truncation_cutoff)` → (B, num_ws, w_dim)."""
    return self.truncate(self.mapping(z, class_vector), truncation, truncation_cutoff)

  def synthesis(self, w, *, truncation=1.0, truncation_cutoff=None, truncation_latent=None, noise_mode="const",
                noise_rng=None, class_vector=None):
    """w (B, D) or W+ (B, num_ws, D) → image NHWC (class_vector is accepted and unused: classes enter via w)."""
    ws = self.truncate(w, truncation, truncation_cutoff, truncation_latent)
    return self.synthesis_net(ws, noise_mode, noise_rng)[0]

  def __call__(self, z, class_vector=None, *, truncation=1.0, truncation_cutoff=None, truncation_latent=None,
               noise_mode="const", noise_rng=None, input_is_latent=False):
    w = z if input_is_latent else self.mapping(z, class_vector)
    return self.synthesis(w, truncation=truncation, truncation_cutoff=truncation_cutoff,
                          truncation_latent=truncation_latent, noise_mode=noise_mode, noise_rng=noise_rng)

  def features(self, z, layers: Sequence[str] = (), class_vector=None, *, truncation=1.0, truncation_cutoff=None,
               noise_mode="const", noise_rng=None, input_is_latent=False):
    known = feature_layer_names(self.channels)
    if unknown := sorted(set(layers) - set(known)):
      raise ValueError(f"unknown StyleGAN2-ADA feature layer(s) {unknown}; available: {list(known)}")
    w = z if input_is_latent else self.mapping(z, class_vector)
    ws = self.truncate(w, truncation, truncation_cutoff)
    return self.synthesis_net(ws, noise_mode, noise_rng, tuple(layers))[1]


def feature_layer_names(channels) -> tuple[str, ...]:
  return tuple(name for res, _ in channels for name in (f"b{res}", f"b{res}.img"))


# ---------------------------------------------------------------------------------------------------------------
# Family contract.

def module_from_config(config: dict[str, Any]) -> StyleGAN2ADAGenerator:
  clamp = config.get("conv_clamp")
  return StyleGAN2ADAGenerator(
      z_dim=int(config["z_dim"]), w_dim=int(config["w_dim"]), c_dim=int(config["c_dim"]),
      img_resolution=int(config["img_resolution"]), img_channels=int(config["img_channels"]),
      mapping_layers=int(config["mapping_layers"]), embed_features=int(config["embed_features"]),
      layer_features=int(config["layer_features"]), lr_multiplier=float(config["lr_multiplier"]),
      channels=tuple((int(r), int(c)) for r, c in config["channels"]), architecture=str(config["architecture"]),
      conv_clamp=None if clamp is None else float(clamp),
      resample_filter=tuple(float(v) for v in config["resample_filter"]))


def _info(module: StyleGAN2ADAGenerator, config: dict[str, Any], source: str) -> GeneratorInfo:
  res = module.img_resolution
  return GeneratorInfo(family=FAMILY, latent_dim=module.z_dim, image_shape=(res, res, module.img_channels),
                       latent_spaces=("z", "w", "w+"), num_ws=module.num_ws, w_dim=module.w_dim,
                       num_classes=module.c_dim, output_range=(-1.0, 1.0),
                       feature_layers=feature_layer_names(module.channels), config=config_items(config), source=source)


def abstract_variables(config: dict[str, Any]):
  module = module_from_config(config)
  c = jnp.zeros((1, module.c_dim), jnp.float32) if module.c_dim else None
  return jax.eval_shape(lambda: module.init({"params": jax.random.PRNGKey(0)}, jnp.zeros((1, module.z_dim)), c))


def init_variables(config: dict[str, Any], rng: jax.Array):
  """Upstream's init: weights N(0, 1) (mapping fc N(0, 1/lr²)), affine biases 1, other biases, noise strengths and
  w_avg 0; const and noise_const N(0, 1). One normal vector split over the leaves (no traced module.init)."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract_variables(config))
  sizes = [int(np.prod(leaf.shape)) for _, leaf in leaves]
  normal = jax.random.normal(rng, (sum(sizes),), jnp.float32)
  offsets = np.cumsum([0] + sizes)
  values = []
  for i, (path, leaf) in enumerate(leaves):
    names = tuple(str(getattr(k, "key", k)) for k in path)
    draw = normal[offsets[i]:offsets[i + 1]].reshape(leaf.shape)
    if names[-1] == "bias":
      values.append(jnp.full(leaf.shape, 1.0 if names[-2] == "affine" else 0.0, jnp.float32))
    elif names[-1] in ("noise_strength", "w_avg"):
      values.append(jnp.zeros(leaf.shape, jnp.float32))
    elif names[-1] == "kernel" and names[-2].startswith("fc"):
      values.append(draw / float(config["lr_multiplier"]))
    else:
      values.append(draw)
  return jax.tree_util.tree_unflatten(treedef, values)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), variables)
  return checked_generator(module, _info(module, config, source), variables, abstract_variables(config))
