"""StyleGAN3 (alias-free; T and R configs) generator, architecture of NVlabs/stylegan3 `training/networks_stylegan3.py`.

Mapping as StyleGAN2-ADA (`stylegan2_ada.MappingNetwork`). Synthesis: ws[:, 0] drives the Fourier-feature input
(`input`): an affine (r_c, r_s, t_x, t_y) → rotation·translation·`transform` (the user-set inverse transform of the
image, buffer `transform`; see `with_input_transform`) applied to the stored frequencies/phases → sin(2π(grid·f +
φ))·amplitude on a `size` grid at `sampling_rate` → a C×C linear map. ws[:, i+1] drives layer i: modulated conv
(weights pre-normalised by their RMS, styles by the batch RMS, demodulated, × input_gain = magnitude_ema^-½; ToRGB:
styles/√(in·k²), no demodulation), full padding k−1, then the filtered leaky ReLU (+ bias → upfirdn with the stored
1-D up filter, gain up² → lrelu 0.2·√2 (ToRGB: linear) → clamp → upfirdn with the down filter, stride down). Output
× output_scale. The per-layer geometry (up/down factors, padding, sizes, filters) is read from the pickle into the
config. T configs use separable 1-D filters (checked against upstream on the sg3t fixture); R configs (1×1 convs,
radially symmetric 2-D down filters) are built the same way with the 2-D filter applied as a non-separable FIR —
no R fixture exists, so that path is not checked against upstream outputs.

Feature taps: `input` and each layer's upstream name (`L0_36_512`, …), NHWC.
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
from ganlatent_jax.generators.stylegan2 import EqualLinear
from ganlatent_jax.generators.stylegan2_ada import MappingNetwork, truncate_ws
from ganlatent_jax.nets import layers, upfirdn

FAMILY = "stylegan3"


def make_transform(translate=(0.0, 0.0), angle_degrees: float = 0.0) -> np.ndarray:
  """gen_images.py's image transform (translate, then rotate by `angle`); the input buffer takes its inverse."""
  s, c = math.sin(math.radians(angle_degrees)), math.cos(math.radians(angle_degrees))
  return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], np.float64)


def with_input_transform(gen: Generator, matrix) -> Generator:
  """The generator with the input's user transform set to `matrix` (3×3; gen_images.py sets inv(make_transform))."""
  variables = jax.tree_util.tree_map(lambda a: a, gen.variables)
  variables["buffers"]["synthesis_net"]["input"]["transform"] = jnp.asarray(matrix, jnp.float32).reshape(3, 3)
  return gen.with_variables(variables)


class SynthesisInput(nn.Module):
  channels: int
  size: int
  sampling_rate: float
  bandwidth: float

  @nn.compact
  def __call__(self, w):
    weight = self.param("weight", nn.initializers.normal(1.0), (self.channels, self.channels))
    t = EqualLinear(4, name="affine")(w)  # (r_c, r_s, t_x, t_y)
    transform = self.variable("buffers", "transform", lambda: jnp.eye(3, dtype=jnp.float32)).value
    freqs = self.variable("buffers", "freqs", lambda: jnp.zeros((self.channels, 2), jnp.float32)).value
    phases = self.variable("buffers", "phases", lambda: jnp.zeros((self.channels,), jnp.float32)).value
    t = t / jnp.linalg.norm(t[:, :2], axis=1, keepdims=True)
    batch = w.shape[0]
    m_r = jnp.broadcast_to(jnp.eye(3), (batch, 3, 3))
    m_r = m_r.at[:, 0, 0].set(t[:, 0]).at[:, 0, 1].set(-t[:, 1]).at[:, 1, 0].set(t[:, 1]).at[:, 1, 1].set(t[:, 0])
    m_t = jnp.broadcast_to(jnp.eye(3), (batch, 3, 3)).at[:, 0, 2].set(-t[:, 2]).at[:, 1, 2].set(-t[:, 3])
    hi = lax.Precision.HIGHEST
    transforms = jnp.matmul(jnp.matmul(m_r, m_t, precision=hi), transform[None], precision=hi)
    phases = phases[None] + jnp.einsum("cx,bx->bc", freqs, transforms[:, :2, 2], precision=hi)
    freqs = jnp.einsum("cx,bxy->bcy", freqs, transforms[:, :2, :2], precision=hi)
    amplitudes = jnp.clip(1 - (jnp.linalg.norm(freqs, axis=2) - self.bandwidth)
                          / (self.sampling_rate / 2 - self.bandwidth), 0, 1)
    coords = (jnp.arange(self.size, dtype=jnp.float32) + 0.5 - self.size / 2) / self.sampling_rate  # affine_grid
    gx, gy = coords[None, :], coords[:, None]  # (1, W), (H, 1)
    x = gx[None, :, :, None] * freqs[:, None, None, :, 0] + gy[None, :, :, None] * freqs[:, None, None, :, 1]
    x = jnp.sin((x + phases[:, None, None, :]) * (2 * np.pi)) * amplitudes[:, None, None, :]
    return jnp.einsum("bhwc,oc->bhwo", x, weight / math.sqrt(self.channels), precision=hi)


class SynthesisLayer(nn.Module):
  out_channels: int
  conv_kernel: int
  is_torgb: bool
  up: int
  down: int
  padding: tuple[int, int, int, int]  # upstream order (x0, x1, y0, y1)
  up_filter: tuple[float, ...]
  down_filter: tuple[float, ...]
  conv_clamp: float | None

  @nn.compact
  def __call__(self, x, w):
    in_channels = x.shape[-1]
    styles = EqualLinear(in_channels, bias_init=1.0, name="affine")(w)
    k = self.conv_kernel
    kernel = self.param("kernel", nn.initializers.normal(1.0), (k, k, in_channels, self.out_channels))
    input_gain = lax.rsqrt(self.variable("buffers", "magnitude_ema", lambda: jnp.ones((), jnp.float32)).value)
    if self.is_torgb:
      styles = styles / math.sqrt(in_channels * k * k)
    else:  # pre-normalisation (cancelled by demodulation up to its eps; kept for parity)
      kernel = kernel * lax.rsqrt(jnp.mean(jnp.square(kernel), axis=(0, 1, 2), keepdims=True))
      styles = styles * lax.rsqrt(jnp.mean(jnp.square(styles)))
    y = layers.conv2d(x * styles[:, None, None, :], kernel, padding=k - 1)
    if not self.is_torgb:
      sq = jnp.dot(jnp.square(styles), jnp.sum(jnp.square(kernel), axis=(0, 1)), precision=lax.Precision.HIGHEST)
      y = y * lax.rsqrt(sq + 1e-8)[:, None, None, :]
    y = y * input_gain
    y = y + self.param("bias", nn.initializers.zeros, (self.out_channels,))
    fu = np.asarray(self.up_filter or (1.0,), np.float64)
    x0, x1, y0, y1 = self.padding
    y = upfirdn.upfirdn2d(y, np.outer(fu, fu) * self.up ** 2, up=self.up, pad=(y0, y1, x0, x1))
    if not self.is_torgb:
      y = jax.nn.leaky_relu(y, 0.2) * math.sqrt(2.0)
    if self.conv_clamp is not None:
      y = jnp.clip(y, -self.conv_clamp, self.conv_clamp)
    fd = np.asarray(self.down_filter or (1.0,), np.float64)
    return upfirdn.upfirdn2d(y, fd if fd.ndim == 2 else np.outer(fd, fd), down=self.down)  # 2-D: radial (R)


class SynthesisNetwork(nn.Module):
  input_config: tuple[tuple[str, Any], ...]
  layer_configs: tuple[tuple[tuple[str, Any], ...], ...]
  output_scale: float

  @nn.compact
  def __call__(self, ws, taps: Sequence[str] = ()):
    found = {}
    x = SynthesisInput(name="input", **dict(self.input_config))(ws[:, 0])
    found["input"] = x
    for i, spec in enumerate(self.layer_configs):
      spec = dict(spec)
      name = spec.pop("name")
      x = SynthesisLayer(name=name, **spec)(x, ws[:, i + 1])
      found[name] = x
    return x * self.output_scale, {t: found[t] for t in taps}


def _freeze(d: dict) -> tuple:
  return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items())


class StyleGAN3Generator(nn.Module):
  z_dim: int
  w_dim: int
  c_dim: int
  img_resolution: int
  img_channels: int
  mapping_layers: int
  lr_multiplier: float
  input_config: tuple
  layer_configs: tuple
  output_scale: float

  @property
  def num_ws(self) -> int:
    return len(self.layer_configs) + 1

  def setup(self):
    self.mapping_net = MappingNetwork(self.c_dim, self.w_dim, self.mapping_layers, self.w_dim, self.w_dim,
                                      self.lr_multiplier)
    self.synthesis_net = SynthesisNetwork(self.input_config, self.layer_configs, self.output_scale)
    self.w_avg = self.variable("buffers", "w_avg", lambda: jnp.zeros((self.w_dim,), jnp.float32))

  def mapping(self, z, class_vector=None):
    c = None
    if self.c_dim:
      if class_vector is None:
        raise ValueError(f"this generator is class-conditional (c_dim={self.c_dim}): pass class_vector=")
      c = jnp.asarray(class_vector)
      c = jax.nn.one_hot(c, self.c_dim) if c.ndim == 1 and jnp.issubdtype(c.dtype, jnp.integer) else c
    return self.mapping_net(z, c)

  def truncate(self, w, truncation=1.0, truncation_cutoff=None, truncation_latent=None):
    center = self.w_avg.value if truncation_latent is None else truncation_latent
    return truncate_ws(w, center, self.num_ws, truncation, truncation_cutoff)

  def ws(self, z, class_vector=None, *, truncation=1.0, truncation_cutoff=None):
    return self.truncate(self.mapping(z, class_vector), truncation, truncation_cutoff)

  def synthesis(self, w, *, truncation=1.0, truncation_cutoff=None, truncation_latent=None, class_vector=None,
                noise_mode=None, noise_rng=None):
    """w (B, D) or W+ → image NHWC (StyleGAN3 has no noise: noise_mode is accepted and ignored, as upstream)."""
    return self.synthesis_net(self.truncate(w, truncation, truncation_cutoff, truncation_latent))[0]

  def __call__(self, z, class_vector=None, *, truncation=1.0, truncation_cutoff=None, truncation_latent=None,
               input_is_latent=False, noise_mode=None, noise_rng=None):
    w = z if input_is_latent else self.mapping(z, class_vector)
    return self.synthesis(w, truncation=truncation, truncation_cutoff=truncation_cutoff,
                          truncation_latent=truncation_latent)

  def features(self, z, layers: Sequence[str] = (), class_vector=None, *, truncation=1.0, truncation_cutoff=None,
               input_is_latent=False):
    known = feature_layer_names(self.layer_configs)
    if unknown := sorted(set(layers) - set(known)):
      raise ValueError(f"unknown StyleGAN3 feature layer(s) {unknown}; available: {list(known)}")
    w = z if input_is_latent else self.mapping(z, class_vector)
    return self.synthesis_net(self.truncate(w, truncation, truncation_cutoff), tuple(layers))[1]


def feature_layer_names(layer_configs) -> tuple[str, ...]:
  return ("input",) + tuple(dict(spec)["name"] for spec in layer_configs)


def module_from_config(config: dict[str, Any]) -> StyleGAN3Generator:
  layer_configs = []
  for spec in config["layers"]:
    spec = dict(spec)
    spec["padding"] = tuple(int(p) for p in spec["padding"])
    spec["up_filter"] = tuple(float(v) for v in spec["up_filter"])
    spec["down_filter"] = tuple(tuple(float(u) for u in v) if isinstance(v, (list, tuple)) else float(v)
                                for v in spec["down_filter"])
    spec["conv_clamp"] = None if spec["conv_clamp"] is None else float(spec["conv_clamp"])
    layer_configs.append(tuple(spec.items()))
  return StyleGAN3Generator(
      z_dim=int(config["z_dim"]), w_dim=int(config["w_dim"]), c_dim=int(config["c_dim"]),
      img_resolution=int(config["img_resolution"]), img_channels=int(config["img_channels"]),
      mapping_layers=int(config["mapping_layers"]), lr_multiplier=float(config["lr_multiplier"]),
      input_config=_freeze(config["input"]), layer_configs=tuple(layer_configs),
      output_scale=float(config["output_scale"]))


def _info(module: StyleGAN3Generator, config: dict[str, Any], source: str) -> GeneratorInfo:
  res = module.img_resolution
  return GeneratorInfo(family=FAMILY, latent_dim=module.z_dim, image_shape=(res, res, module.img_channels),
                       latent_spaces=("z", "w", "w+"), num_ws=module.num_ws, w_dim=module.w_dim,
                       num_classes=module.c_dim, output_range=(-1.0, 1.0),
                       feature_layers=feature_layer_names(module.layer_configs), config=config_items(config),
                       source=source)


def abstract_variables(config: dict[str, Any]):
  module = module_from_config(config)
  c = jnp.zeros((1, module.c_dim), jnp.float32) if module.c_dim else None
  return jax.eval_shape(lambda: module.init({"params": jax.random.PRNGKey(0)}, jnp.zeros((1, module.z_dim)), c))


def init_variables(config: dict[str, Any], rng: jax.Array):
  """Random weights N(0, 1) (biases 0, affine biases 1) for tests and smoke runs; training StyleGAN3 is not
  supported here (the frequencies/phases of a real init are drawn by upstream and only read from pickles)."""
  module = module_from_config(config)
  c = jnp.zeros((1, module.c_dim), jnp.float32) if module.c_dim else None
  return jax.jit(lambda key: module.init({"params": key}, jnp.zeros((1, module.z_dim)), c))(rng)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), variables)
  return checked_generator(module, _info(module, config, source), variables, abstract_variables(config))
