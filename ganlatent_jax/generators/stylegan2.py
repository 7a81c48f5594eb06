"""StyleGAN2 generator, architecture of rosinality/stylegan2-pytorch `model.py` `Generator`.

Mapping: PixelNorm → n_mlp equalized-lr linears (lr_mlp, leaky ReLU ·√2) → w. Synthesis: a learned 4×4 constant →
`conv1` → `to_rgb1`, then per resolution 8…size an upsampling StyledConv (`convs.2j`), a StyledConv (`convs.2j+1`)
and a ToRGB (`to_rgbs.j`) whose output is added to the ×2-upsampled previous RGB skip. Styles are taken from the
W+ latent (B, n_latent, D): conv1 ← 0, to_rgb1 ← 1, convs.2j ← 1+2j, convs.2j+1 ← 2+2j, to_rgbs.j ← 3+2j.

Parameters are stored in upstream's N(0, 1) scale and the equalized-lr multipliers are applied at run time, so a
model initialised with `init_variables` trains like upstream. Noise: the stored per-layer buffers (`'const'`, the
deterministic default, = upstream `randomize_noise=False`), fresh N(0, 1) noise per sample from `noise_rng`
(= `randomize_noise=True`), or an explicit list (NHWC, (1 or B, H, W, 1)).

Feature taps use upstream module names: `conv1`, `to_rgb1`, `convs.N`, `to_rgbs.N` (the running RGB skip) and
`mod__<layer>` (that layer's modulation output: the style s, (B, in_channels)).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items
from ganlatent_jax.nets import upfirdn

FAMILY = "stylegan2"
PIXEL_NORM_EPS = 1e-8
LRELU_SLOPE = 0.2
DEFAULT_BLUR_KERNEL = (1, 3, 3, 1)


# ---------------------------------------------------------------------------------------------------------------
# Configuration helpers.

def upstream_channels(size: int, channel_multiplier: int = 2, divisor: int = 1) -> dict[int, int]:
  """The channel table of upstream `Generator` (divisor=8 gives the golden fixture's table) up to `size`."""
  table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
           256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
  return {res: ch // divisor for res, ch in table.items() if res <= size}


def constant_channels(size: int, width: int = 512) -> dict[int, int]:
  """One width at every resolution (the "small" variant some generators, e.g. for 3DShapes, are trained with)."""
  return {2 ** i: width for i in range(2, int(math.log2(size)) + 1)}


def make_config(size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                channels: Mapping[int, int] | None = None, blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL,
                lr_mlp: float = 0.01, has_latent_avg: bool = False, image_channels: int = 3) -> dict[str, Any]:
  """A JSON-serialisable config (`channels` as [[res, width], ...]); the default table is upstream's.

  `image_channels` ≠ 3 (e.g. 1 for grey dSprites) is ours: upstream generators are RGB, and their configs keep
  exactly upstream's keys (the key is written only when it is not 3)."""
  if image_channels < 1:
    raise ValueError(f"StyleGAN2 image_channels must be ≥ 1, got {image_channels}")
  if size < 4 or 2 ** int(round(math.log2(size))) != size:
    raise ValueError(f"StyleGAN2 size must be a power of two >= 4, got {size}")
  channels = upstream_channels(size, channel_multiplier) if channels is None else channels
  channels = {int(r): int(c) for r, c in dict(channels).items()}
  needed = [2 ** i for i in range(2, int(math.log2(size)) + 1)]
  missing = [r for r in needed if r not in channels]
  if missing:
    raise ValueError(f"channel table lacks resolution(s) {missing} (needs {needed})")
  config = {"family": FAMILY, "size": int(size), "style_dim": int(style_dim), "n_mlp": int(n_mlp),
            "channel_multiplier": int(channel_multiplier), "channels": [[r, channels[r]] for r in needed],
            "blur_kernel": [float(k) for k in blur_kernel], "lr_mlp": float(lr_mlp),
            "has_latent_avg": bool(has_latent_avg)}
  if int(image_channels) != 3:
    config["image_channels"] = int(image_channels)
  return config




def num_latents(size: int) -> int:
  return 2 * int(math.log2(size)) - 2


def num_noise_layers(size: int) -> int:
  return 2 * int(math.log2(size)) - 3


def noise_resolution(layer: int) -> int:
  return 2 ** ((layer + 5) // 2)


def layer_names(size: int) -> tuple[str, ...]:
  """Every synthesis layer in execution order (upstream module names)."""
  names = ["conv1", "to_rgb1"]
  for j in range(int(math.log2(size)) - 2):
    names += [f"convs.{2 * j}", f"convs.{2 * j + 1}", f"to_rgbs.{j}"]
  return tuple(names)


def feature_layer_names(size: int) -> tuple[str, ...]:
  names = layer_names(size)
  return names + tuple(f"mod__{name}" for name in names)


# ---------------------------------------------------------------------------------------------------------------
# Layers.

def _lrelu(x):
  return jax.nn.leaky_relu(x, LRELU_SLOPE) * math.sqrt(2.0)


class EqualLinear(nn.Module):
  """Equalized-lr linear: y = x @ (K · lr_mul/√in) + b · lr_mul; K stored N(0, 1/lr_mul²) as upstream."""
  features: int
  lr_mul: float = 1.0
  bias_init: float = 0.0
  activate: bool = False

  @nn.compact
  def __call__(self, x):
    in_features = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0 / self.lr_mul), (in_features, self.features))
    bias = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
    y = jnp.dot(x, kernel * (self.lr_mul / math.sqrt(in_features)), precision=lax.Precision.HIGHEST)
    y = y + bias * self.lr_mul
    return _lrelu(y) if self.activate else y


class ModulatedConv(nn.Module):
  """Upstream `ModulatedConv2d`: returns (output, style s)."""
  features: int
  kernel_size: int
  demodulate: bool = True
  upsample: bool = False
  blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL

  @nn.compact
  def __call__(self, x, w):
    in_channels = x.shape[-1]
    style = EqualLinear(in_channels, bias_init=1.0, name="modulation")(w)
    kernel = self.param("kernel", nn.initializers.normal(1.0),
                        (self.kernel_size, self.kernel_size, in_channels, self.features))
    y = upfirdn.modulated_conv2d(x, kernel, style, demodulate=self.demodulate, upsample=self.upsample,
                                 blur_kernel=upfirdn.make_kernel(self.blur_kernel))
    return y, style


class StyledConv(nn.Module):
  """Modulated 3×3 conv (optionally ×2 upsampling) → + noise_strength · noise → + bias → leaky ReLU · √2."""
  features: int
  upsample: bool = False
  blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL

  @nn.compact
  def __call__(self, x, w, noise):
    y, style = ModulatedConv(self.features, 3, upsample=self.upsample, blur_kernel=self.blur_kernel, name="conv")(x, w)
    noise_strength = self.param("noise_strength", nn.initializers.zeros, ())
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    y = y + noise_strength * noise
    return _lrelu(y + bias), style


class ToRGB(nn.Module):
  """Modulated 1×1 conv to the image channels (RGB upstream; no demodulation) + bias, plus the ×2-upsampled
  previous skip when given."""
  blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL
  channels: int = 3

  @nn.compact
  def __call__(self, x, w, skip=None):
    y, style = ModulatedConv(self.channels, 1, demodulate=False, name="conv")(x, w)
    y = y + self.param("bias", nn.initializers.zeros, (self.channels,))
    if skip is not None:
      y = y + upfirdn.upsample_2d(skip, upfirdn.make_kernel(self.blur_kernel))
    return y, style


def _normal_buffer(module: nn.Module, shape):
  return lambda: jax.random.normal(module.make_rng("params"), shape, jnp.float32)


class StyleGAN2Generator(nn.Module):
  size: int
  style_dim: int
  n_mlp: int
  channels: tuple[tuple[int, int], ...]   # ((resolution, width), ...) for 4, 8, ..., size
  blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL
  lr_mlp: float = 0.01
  has_latent_avg: bool = False
  image_channels: int = 3

  @property
  def log_size(self) -> int:
    return int(math.log2(self.size))

  @property
  def n_latent(self) -> int:
    return num_latents(self.size)

  @property
  def num_layers(self) -> int:
    return num_noise_layers(self.size)

  def setup(self):
    width = dict(self.channels)
    self.style = [EqualLinear(self.style_dim, lr_mul=self.lr_mlp, activate=True) for _ in range(self.n_mlp)]
    self.input = self.param("input", nn.initializers.normal(1.0), (1, 4, 4, width[4]))
    self.conv1 = StyledConv(width[4], blur_kernel=self.blur_kernel)
    self.to_rgb1 = ToRGB(self.blur_kernel, self.image_channels)
    convs, to_rgbs = [], []
    for i in range(3, self.log_size + 1):
      convs += [StyledConv(width[2 ** i], upsample=True, blur_kernel=self.blur_kernel),
                StyledConv(width[2 ** i], blur_kernel=self.blur_kernel)]
      to_rgbs.append(ToRGB(self.blur_kernel, self.image_channels))
    self.convs, self.to_rgbs = convs, to_rgbs
    self.noises = [
        self.variable("buffers", f"noise_{i}", _normal_buffer(self, (1, noise_resolution(i), noise_resolution(i), 1)))
        for i in range(self.num_layers)]
    if self.has_latent_avg:
      self.latent_avg = self.variable("buffers", "latent_avg", lambda: jnp.zeros((self.style_dim,), jnp.float32))

  # --- mapping -------------------------------------------------------------------------------------------------
  def mapping(self, z: jax.Array) -> jax.Array:
    """z (B, style_dim) → w (B, style_dim): PixelNorm then the MLP."""
    z = jnp.asarray(z, jnp.float32)
    x = z * lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + PIXEL_NORM_EPS)
    for layer in self.style:
      x = layer(x)
    return x

  def mean_latent(self, n: int, rng: jax.Array) -> jax.Array:
    """Mean of `n` mapped z ~ N(0, I), (1, style_dim) (upstream `Generator.mean_latent`)."""
    return jnp.mean(self.mapping(jax.random.normal(rng, (n, self.style_dim), jnp.float32)), axis=0, keepdims=True)

  # --- latents ---------------------------------------------------------------------------------------------------
  def _truncate(self, w, truncation, truncation_latent):
    # Upstream only truncates for truncation < 1; here any value other than 1 interpolates (> 1 extrapolates).
    if isinstance(truncation, (int, float)) and truncation == 1:
      return w
    if truncation_latent is None:
      if not self.has_latent_avg:
        raise ValueError("truncation < 1 needs truncation_latent= (e.g. mean_latent(...)); this generator stores "
                         "no latent_avg")
      truncation_latent = self.latent_avg.value
    center = jnp.asarray(truncation_latent, w.dtype)
    if w.ndim == 3 and center.ndim == 2:  # (1, D) → broadcast over the W+ layers
      center = center[:, None, :]
    return center + truncation * (w - center)

  def _broadcast(self, w: jax.Array) -> jax.Array:
    if w.ndim == 2:
      return jnp.broadcast_to(w[:, None, :], (w.shape[0], self.n_latent, w.shape[1]))
    if w.ndim != 3 or w.shape[1] != self.n_latent:
      raise ValueError(f"w must be (B, {self.style_dim}) or W+ (B, {self.n_latent}, {self.style_dim}), got {w.shape}")
    return w

  def styles(self, z, *, mix_latent=None, inject_index=None, truncation=1.0, truncation_latent=None,
             input_is_latent=False) -> jax.Array:
    """The W+ latent (B, n_latent, D) that `__call__` synthesises from (upstream's `return_latents` output).

    With `mix_latent` (style mixing), layers < inject_index come from `z` and the rest from `mix_latent`;
    `inject_index` may be an int or a per-sample (B,) array.
    """
    latents = [z] if mix_latent is None else [z, mix_latent]
    if not input_is_latent:
      latents = [self.mapping(latent) for latent in latents]
    latents = [self._truncate(jnp.asarray(w, jnp.float32), truncation, truncation_latent) for w in latents]
    first = self._broadcast(latents[0])
    if mix_latent is None:
      return first
    if inject_index is None:
      raise ValueError("style mixing (mix_latent=) needs inject_index (layers < inject_index use the first latent)")
    second = self._broadcast(latents[1])
    layer = jnp.arange(self.n_latent)
    take_first = layer[None, :] < jnp.reshape(jnp.asarray(inject_index), (-1, 1))
    return jnp.where(take_first[..., None], first, second)

  # --- noise -------------------------------------------------------------------------------------------------------
  def _noise(self, batch: int, noise, noise_rng) -> list[jax.Array]:
    if isinstance(noise, str):
      if noise == "random" and noise_rng is None:
        raise ValueError("noise='random' needs noise_rng=")
      if noise not in ("const", "random"):
        raise ValueError(f"noise must be 'const', 'random' or a list of arrays, got {noise!r}")
      noise = [None] * self.num_layers
    elif noise is None:
      noise = [None] * self.num_layers
    elif len(noise) != self.num_layers:
      raise ValueError(f"expected {self.num_layers} noise arrays, got {len(noise)}")
    fresh = self._random_noise(batch, noise_rng) if noise_rng is not None else [None] * self.num_layers
    out = []
    for i, (given, drawn) in enumerate(zip(noise, fresh)):
      res = noise_resolution(i)
      if given is not None:
        given = jnp.asarray(given, jnp.float32)
        out.append(given.reshape(res, res)[None, :, :, None] if given.ndim == 2 else given)
      elif drawn is not None:
        out.append(drawn)
      else:
        out.append(self.noises[i].value)
    return out

  def _random_noise(self, batch: int, rng: jax.Array) -> list[jax.Array]:
    """N(0, 1) noise (B, r, r, 1) for every layer, from ONE draw (one RNG op compiles far faster than one per layer)."""
    sizes = [batch * noise_resolution(i) ** 2 for i in range(self.num_layers)]
    flat = jax.random.normal(rng, (sum(sizes),), jnp.float32)
    offsets = np.cumsum([0] + sizes)
    return [flat[offsets[i]:offsets[i + 1]].reshape(batch, noise_resolution(i), noise_resolution(i), 1)
            for i in range(self.num_layers)]

  # --- synthesis -----------------------------------------------------------------------------------------------
  def _synthesize(self, latent, noise, taps: Sequence[str] = ()):
    """latent (B, n_latent, D) → (image NHWC, {tap: activation}); stops after the last requested tap."""
    found: dict[str, jax.Array] = {}
    wanted = set(taps)

    def record(name, value, style):
      if name in wanted:
        found[name] = value
      if f"mod__{name}" in wanted:
        found[f"mod__{name}"] = style
      wanted.discard(name)
      wanted.discard(f"mod__{name}")
      return bool(taps) and not wanted

    batch = latent.shape[0]
    x = jnp.broadcast_to(self.input, (batch, *self.input.shape[1:]))
    x, s = self.conv1(x, latent[:, 0], noise[0])
    if record("conv1", x, s):
      return None, found
    skip, s = self.to_rgb1(x, latent[:, 1])
    if record("to_rgb1", skip, s):
      return None, found
    for j, to_rgb in enumerate(self.to_rgbs):
      i = 1 + 2 * j
      x, s = self.convs[2 * j](x, latent[:, i], noise[i])
      if record(f"convs.{2 * j}", x, s):
        return None, found
      x, s = self.convs[2 * j + 1](x, latent[:, i + 1], noise[i + 1])
      if record(f"convs.{2 * j + 1}", x, s):
        return None, found
      skip, s = to_rgb(x, latent[:, i + 2], skip)
      if record(f"to_rgbs.{j}", skip, s):
        return None, found
    return skip, found

  def synthesis(self, w: jax.Array, *, truncation=1.0, truncation_latent=None, noise=None,
                noise_rng=None) -> jax.Array:
    """w (B, D) or W+ (B, n_latent, D) → image (B, size, size, image_channels)."""
    latent = self.styles(w, truncation=truncation, truncation_latent=truncation_latent, input_is_latent=True)
    return self._synthesize(latent, self._noise(latent.shape[0], noise, noise_rng))[0]

  def __call__(self, z: jax.Array, *, mix_latent=None, inject_index=None, truncation=1.0, truncation_latent=None,
               input_is_latent=False, noise=None, noise_rng=None, return_latents=False):
    """Upstream `Generator.forward([z] or [z, mix_latent], ...)` → image NHWC (and the W+ latent if asked).

    noise: None/'const' → stored buffers (or fresh noise if `noise_rng` is given), 'random' (needs noise_rng), or a
    list of num_layers arrays (None entries fall back to the same rule).
    """
    latent = self.styles(z, mix_latent=mix_latent, inject_index=inject_index, truncation=truncation,
                         truncation_latent=truncation_latent, input_is_latent=input_is_latent)
    image = self._synthesize(latent, self._noise(latent.shape[0], noise, noise_rng))[0]
    return (image, latent) if return_latents else image

  def features(self, z: jax.Array, layers: Sequence[str] = (), *, mix_latent=None, inject_index=None,
               truncation=1.0, truncation_latent=None, input_is_latent=False, noise=None,
               noise_rng=None) -> dict[str, jax.Array]:
    available = feature_layer_names(self.size)
    unknown = sorted(set(layers) - set(available))
    if unknown:
      raise ValueError(f"unknown StyleGAN2 feature layer(s) {unknown}; available: {list(available)}")
    latent = self.styles(z, mix_latent=mix_latent, inject_index=inject_index, truncation=truncation,
                         truncation_latent=truncation_latent, input_is_latent=input_is_latent)
    return self._synthesize(latent, self._noise(latent.shape[0], noise, noise_rng), tuple(layers))[1]


# ---------------------------------------------------------------------------------------------------------------
# Family contract.

def module_from_config(config: dict[str, Any]) -> StyleGAN2Generator:
  channels = tuple((int(r), int(c)) for r, c in config["channels"])
  return StyleGAN2Generator(size=int(config["size"]), style_dim=int(config["style_dim"]), n_mlp=int(config["n_mlp"]),
                            channels=channels, blur_kernel=tuple(float(k) for k in config["blur_kernel"]),
                            lr_mlp=float(config["lr_mlp"]), has_latent_avg=bool(config.get("has_latent_avg", False)),
                            image_channels=int(config.get("image_channels", 3)))


def _info(module: StyleGAN2Generator, config: dict[str, Any], source: str) -> GeneratorInfo:
  return GeneratorInfo(family=FAMILY, latent_dim=module.style_dim, image_shape=(module.size, module.size, module.image_channels),
                       latent_spaces=("z", "w", "w+"), num_ws=module.n_latent, w_dim=module.style_dim,
                       output_range=(-1.0, 1.0), feature_layers=feature_layer_names(module.size),
                       config=config_items(config), source=source)


def _init(module: StyleGAN2Generator, rng):
  return module.init({"params": rng}, jnp.zeros((1, module.style_dim), jnp.float32))


def abstract_variables(config: dict[str, Any]):
  """Shapes/dtypes of the variables a config needs (no computation)."""
  module = module_from_config(config)
  return jax.eval_shape(lambda: _init(module, jax.random.PRNGKey(0)))


def _initial_value(names: tuple[str, ...], shape, normal: jax.Array, lr_mlp: float) -> jax.Array:
  """Upstream's init for one variable, by its path (the same values the module's initializers draw)."""
  if names[-1] == "bias":
    return jnp.full(shape, 1.0 if names[-2] == "modulation" else 0.0, jnp.float32)
  if names[-1] in ("noise_strength", "latent_avg"):
    return jnp.zeros(shape, jnp.float32)
  if names[-1] == "kernel" and names[-2].startswith("style_"):
    return normal.reshape(shape) / lr_mlp
  return normal.reshape(shape)  # conv/modulation kernels, the constant input, noise buffers: N(0, 1)


def init_variables(config: dict[str, Any], rng: jax.Array):
  """Upstream's random init: weights N(0, 1) (mapping N(0, 1/lr_mlp²)), modulation bias 1, other biases and noise
  strengths 0, constant input and noise buffers N(0, 1); latent_avg (if configured) 0.

  Drawn from ONE normal vector split over the variables rather than by `module.init`, which would compile the whole
  forward and one threefry RNG per parameter (seconds even for tiny configs)."""
  abstract = abstract_variables(config)
  leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract)
  sizes = [int(np.prod(leaf.shape)) for _, leaf in leaves]
  normal = jax.random.normal(rng, (sum(sizes),), jnp.float32)
  offsets = np.cumsum([0] + sizes)
  values = [_initial_value(tuple(str(getattr(k, "key", k)) for k in path), leaf.shape,
                           normal[offsets[i]:offsets[i + 1]], float(config["lr_mlp"]))
            for i, (path, leaf) in enumerate(leaves)]
  return jax.tree_util.tree_unflatten(treedef, values)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), variables)
  return checked_generator(module, _info(module, config, source), variables, abstract_variables(config))


def mean_latent(generator: Generator, n: int, rng: jax.Array) -> jax.Array:
  """(1, w_dim) mean of `n` mapped latents, the usual `truncation_latent`."""
  return generator.module.apply(generator.variables, n, rng, method="mean_latent")
