"""PS-SC's modular generator (upstream zhuxinqimac/PS-SC `G_synthesis_modular_ps_sc`), family `pssc`.

There is no mapping network and no z vector: the code c ∈ R^d is the latent (upstream's mapping is the identity),
and the only other randomness is StyleGAN-style per-pixel noise inside `Noise` modules.

The architecture is a list of modules in upstream's grammar `Name[-arg]*-size` (a string "[A, B, …]" or a list);
entries of size 0 are dropped, and module #i (its index after dropping) has nf(i // nf_scale) channels with
nf(stage) = clip(int(fmap_base / 2^(stage·fmap_decay)), fmap_min, fmap_max):
  * `Const-C`           a learned (1, 4, 4, C) input, N(0, 1), tiled over the batch (C = size, not nf);
  * `ResConv-{up,id,down}-L` L × [3×3 conv (up: transposed stride-2 conv + FIR blur; down: FIR blur + stride 2) →
                        bias → lrelu]; skip: L × nearest ×2 (up) / 2×2 mean (down) → 1×1 conv → bias → lrelu;
                        out = main + skip (no 1/√2, as upstream);
  * `Conv-{up,id,down}-L` the main path only;
  * `Noise-L`           L × [3×3 conv → + strength·noise (strength init 0; noise (B, H, W, 1)) → bias → lrelu];
  * `C_global-n`        `nets.pssc.CGlobal`, consumes the next n codes;
  * `C_spgroup-J-n`     `nets.pssc.SCModule` with J rectangles, consumes the next n codes;
  * `C_spgroup_sm-n`    the softmax-mask ablation of the SC module;
then one ToRGB: 1×1 conv + bias, linear. d = the sum of the latent modules' sizes, codes taken in module order.
Every conv/dense is equalized-lr (weights N(0, 1), scaled by 1/√fan_in at run time), biases 0 — upstream's init.

Noise, as `generators.stylegan2`: the stored per-layer buffers (`'const'`, the deterministic default), fresh
N(0, 1) noise per sample from `noise_rng` (upstream's `randomize_noise=True`, what training uses), or a list.
Feature taps: `module.{i}` (the output of module #i) and `mask.{i}` (SC module #i's masks, (B, n, h, w) at its
resolution). `masks(z)` returns every code's mask bilinearly resized to the output, (B, d, size, size), in code
order; codes of `C_global` modules act everywhere and get a mask of ones.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items, init_from_latent
from ganlatent_jax.nets import upfirdn
from ganlatent_jax.nets.discriminators import ScaledConv
from ganlatent_jax.nets.pssc import CGlobal, SCModule, lrelu

FAMILY = "pssc"
TRAINS_WITH_NOISE_RNG = True   # the GAN engine passes noise_rng= (fresh per-pixel noise) while training
DEFAULT_BLUR_KERNEL = (1.0, 3.0, 3.0, 1.0)
CONV_KINDS = ("ResConv", "Conv")
LATENT_KINDS = ("C_global", "C_spgroup", "C_spgroup_sm")
SC_KINDS = ("C_spgroup", "C_spgroup_sm")   # the latent modules with spatial masks
RESAMPLING = ("up", "id", "down")


@dataclasses.dataclass(frozen=True)
class ModuleSpec:
  kind: str          # 'Const', 'ResConv', 'Conv', 'Noise', 'C_global', 'C_spgroup', 'C_spgroup_sm'
  size: int          # channels (Const), layers (convs, Noise) or codes (latent modules)
  mode: str = ""     # 'up' | 'id' | 'down' for convs
  rects: int = 0     # J for C_spgroup

  @property
  def num_codes(self) -> int:
    return self.size if self.kind in LATENT_KINDS else 0


def parse_module_list(modules: str | Sequence[str]) -> tuple[ModuleSpec, ...]:
  """Upstream's module list (a "[A-1, B-2]" string or a list of entries) → specs; size-0 entries are dropped."""
  if isinstance(modules, str):
    entries = [e.strip() for e in modules.strip().strip("[]").split(",")]
  else:
    entries = [str(e).strip() for e in modules]
  specs = []
  for entry in entries:
    if not entry:
      continue
    parts = entry.split("-")
    try:
      size = int(parts[-1])
    except ValueError:
      raise ValueError(f"pssc module {entry!r}: the last '-' field must be an integer size") from None
    if size < 0 or len(parts) < 2:
      raise ValueError(f"pssc module {entry!r}: expected Name[-arg]*-size with size ≥ 0")
    name, args = parts[0], parts[1:-1]
    if name in CONV_KINDS and len(args) == 1 and args[0] in RESAMPLING:
      spec = ModuleSpec(name, size, mode=args[0])
    elif name == "C_spgroup" and len(args) == 1 and args[0].isdigit() and int(args[0]) >= 1:
      spec = ModuleSpec(name, size, rects=int(args[0]))
    elif name in ("Const", "Noise", "C_global", "C_spgroup_sm") and not args:
      spec = ModuleSpec(name, size)
    else:
      raise ValueError(f"pssc module {entry!r} is not one of Const-C, ResConv-{{up,id,down}}-L, Conv-{{up,id,down}}-L, "
                       f"Noise-L, C_global-n, C_spgroup-J-n, C_spgroup_sm-n")
    if size:
      specs.append(spec)
  if not specs or specs[0].kind != "Const" or any(s.kind == "Const" for s in specs[1:]):
    raise ValueError(f"pssc modules {entries}: the list must start with the one Const module")
  if not any(s.num_codes for s in specs):
    raise ValueError(f"pssc modules {entries}: no latent module (C_global, C_spgroup, C_spgroup_sm) — d would be 0")
  return tuple(specs)


def upstream_widths(num_modules: int, fmap_base: int, fmap_decay: float = 1.0, fmap_min: int = 1,
                    fmap_max: int = 512, nf_scale: int = 4) -> tuple[int, ...]:
  """Channels of modules 0…num_modules−1 by upstream's rule nf(i // nf_scale) (by module index, not resolution)."""
  return tuple(int(np.clip(int(fmap_base / 2.0 ** ((i // nf_scale) * fmap_decay)), fmap_min, fmap_max))
               for i in range(num_modules))


def resolutions(specs: Sequence[ModuleSpec]) -> tuple[int, ...]:
  """The output resolution of every module (Const: 4)."""
  res, out = 4, []
  for spec in specs:
    if spec.kind in CONV_KINDS and spec.mode != "id":
      res = res * 2 ** spec.size if spec.mode == "up" else res // 2 ** spec.size
      if res < 1:
        raise ValueError(f"pssc modules: {spec.kind}-{spec.mode}-{spec.size} downsamples below 1 pixel")
    out.append(res)
  return tuple(out)


def make_config(modules: str | Sequence[str], image_channels: int = 3, fmap_base: int = 1024,
                fmap_decay: float = 1.0, fmap_min: int = 1, fmap_max: int = 512, nf_scale: int = 4,
                blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL, size: int | None = None) -> dict[str, Any]:
  """A JSON config: the module entries (size-0 dropped), the width rule, and the derived size and latent_dim
  (`size`, if given, is checked against the modules' output resolution)."""
  specs = parse_module_list(modules)
  out_size = resolutions(specs)[-1]
  if size is not None and int(size) != out_size:
    raise ValueError(f"pssc: size={size} but the modules produce {out_size}×{out_size} images")
  if image_channels < 1 or nf_scale < 1:
    raise ValueError(f"pssc: image_channels={image_channels} and nf_scale={nf_scale} must be ≥ 1")
  entries = [_entry(s) for s in specs]
  return {"family": FAMILY, "modules": entries, "image_channels": int(image_channels), "fmap_base": int(fmap_base),
          "fmap_decay": float(fmap_decay), "fmap_min": int(fmap_min), "fmap_max": int(fmap_max),
          "nf_scale": int(nf_scale), "blur_kernel": [float(k) for k in blur_kernel], "size": int(out_size),
          "latent_dim": int(sum(s.num_codes for s in specs))}


def _entry(spec: ModuleSpec) -> str:
  middle = {"ResConv": [spec.mode], "Conv": [spec.mode], "C_spgroup": [str(spec.rects)]}.get(spec.kind, [])
  return "-".join([spec.kind, *middle, str(spec.size)])


# ---------------------------------------------------------------------------------------------------------------
# Layers.

class ConvStack(nn.Module):
  """`Conv-{mode}-L` (residual=False) or `ResConv-{mode}-L` (residual=True), see the module docstring."""
  features: int
  layers: int
  mode: str = "id"
  residual: bool = True
  blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL

  @nn.compact
  def __call__(self, x):
    blur = upfirdn.make_kernel(self.blur_kernel)
    skip = x
    for i in range(self.layers):
      if self.mode == "up":   # equalized stride-2 transposed conv + FIR (= a modulated conv with style 1, no demod)
        kernel = self.param(f"conv_{i}_kernel", nn.initializers.normal(1.0), (3, 3, x.shape[-1], self.features))
        y = upfirdn.modulated_conv2d(x, kernel, jnp.ones((x.shape[0], x.shape[-1]), x.dtype), demodulate=False,
                                     upsample=True, blur_kernel=blur)
        x = lrelu(y + self.param(f"conv_{i}_bias", nn.initializers.zeros, (self.features,)))
      elif self.mode == "down":   # FIR blur, then a stride-2 VALID conv (StyleGAN2's conv2d_layer(down=True))
        p = (blur.shape[0] - 2) + 2
        x = upfirdn.upfirdn2d(x, blur, pad=((p + 1) // 2, p // 2))
        x = lrelu(ScaledConv(self.features, 3, stride=2, padding="VALID", name=f"conv_{i}")(x))
      else:
        x = lrelu(ScaledConv(self.features, 3, name=f"conv_{i}")(x))
      if self.residual and self.mode == "up":
        skip = jnp.repeat(jnp.repeat(skip, 2, axis=1), 2, axis=2)
      elif self.residual and self.mode == "down":
        b, h, w, c = skip.shape
        skip = skip.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    if not self.residual:
      return x
    return x + lrelu(ScaledConv(self.features, 1, name="skip")(skip))


class NoiseConvs(nn.Module):
  """`Noise-L`: L × [3×3 conv → + strength · noise → bias → lrelu]; `noises` is a list of L (1 or B, H, W, 1)."""
  features: int
  layers: int

  @nn.compact
  def __call__(self, x, noises):
    for i in range(self.layers):
      y = ScaledConv(self.features, 3, use_bias=False, name=f"conv_{i}")(x)
      y = y + self.param(f"noise_strength_{i}", nn.initializers.zeros, ()) * noises[i]
      x = lrelu(y + self.param(f"bias_{i}", nn.initializers.zeros, (self.features,)))
    return x


def _normal_buffer(module: nn.Module, shape):
  return lambda: jax.random.normal(module.make_rng("params"), shape, jnp.float32)


class PSSCGenerator(nn.Module):
  specs: tuple[ModuleSpec, ...]
  widths: tuple[int, ...]
  image_channels: int = 3
  blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL

  @property
  def latent_dim(self) -> int:
    return sum(s.num_codes for s in self.specs)

  @property
  def size(self) -> int:
    return resolutions(self.specs)[-1]

  @property
  def noise_resolutions(self) -> tuple[int, ...]:
    """The resolution of every noise layer, in execution order."""
    return tuple(res for spec, res in zip(self.specs, resolutions(self.specs)) if spec.kind == "Noise"
                 for _ in range(spec.size))

  def setup(self):
    blocks = []
    for i, (spec, width) in enumerate(zip(self.specs, self.widths)):
      if spec.kind == "Const":
        blocks.append(None)
      elif spec.kind in CONV_KINDS:
        blocks.append(ConvStack(width, spec.size, spec.mode, spec.kind == "ResConv", self.blur_kernel,
                                name=f"module_{i}"))
      elif spec.kind == "Noise":
        blocks.append(NoiseConvs(width, spec.size, name=f"module_{i}"))
      elif spec.kind == "C_global":
        blocks.append(CGlobal(width, spec.size, name=f"module_{i}"))
      else:
        blocks.append(SCModule(spec.size, spec.rects or 1, "cumax" if spec.kind == "C_spgroup" else "softmax",
                               name=f"module_{i}"))
    self.blocks = blocks
    self.const = self.param("const", nn.initializers.normal(1.0), (1, 4, 4, self.specs[0].size))
    self.to_rgb = ScaledConv(self.image_channels, 1, name="to_rgb")
    self.noises = [self.variable("buffers", f"noise_{k}", _normal_buffer(self, (1, r, r, 1)))
                   for k, r in enumerate(self.noise_resolutions)]

  # --- noise (the rules of generators.stylegan2) -------------------------------------------------------------
  def _noise(self, batch: int, noise, noise_rng) -> list[jax.Array]:
    count = len(self.noise_resolutions)
    if isinstance(noise, str):
      if noise not in ("const", "random"):
        raise ValueError(f"noise must be 'const', 'random' or a list of arrays, got {noise!r}")
      if noise == "random" and noise_rng is None:
        raise ValueError("noise='random' needs noise_rng=")
      noise = None
    noise = [None] * count if noise is None else list(noise)
    if len(noise) != count:
      raise ValueError(f"expected {count} noise arrays, got {len(noise)}")
    if noise_rng is not None:   # one draw for every layer (one RNG op compiles far faster than one per layer)
      sizes = [batch * r * r for r in self.noise_resolutions]
      flat = jax.random.normal(noise_rng, (sum(sizes),), jnp.float32)
      offsets = np.cumsum([0] + sizes)
      fresh = [flat[offsets[k]:offsets[k + 1]].reshape(batch, r, r, 1) for k, r in enumerate(self.noise_resolutions)]
    else:
      fresh = [None] * count
    out = []
    for k, (given, drawn) in enumerate(zip(noise, fresh)):
      r = self.noise_resolutions[k]
      if given is not None:
        given = jnp.asarray(given, jnp.float32)
        out.append(given.reshape(1, r, r, 1) if given.ndim == 2 else given)
      else:
        out.append(drawn if drawn is not None else self.noises[k].value)
    return out

  # --- synthesis -----------------------------------------------------------------------------------------------
  def _run(self, z, noise, noise_rng, taps: Sequence[str] = ()):
    """z (B, d) → (image NHWC, {tap: value}, [per-code masks at module resolution or None for C_global])."""
    z = jnp.asarray(z, jnp.float32)
    if z.ndim != 2 or z.shape[1] != self.latent_dim:
      raise ValueError(f"pssc: expected codes of shape (batch, {self.latent_dim}), got {z.shape}")
    batch = z.shape[0]
    noises = self._noise(batch, noise, noise_rng)
    found, masks = {}, []
    x = jnp.broadcast_to(self.const, (batch, *self.const.shape[1:]))
    start = next_noise = 0
    for i, (spec, block) in enumerate(zip(self.specs, self.blocks)):
      if spec.kind in CONV_KINDS:
        x = block(x)
      elif spec.kind == "Noise":
        x = block(x, noises[next_noise:next_noise + spec.size])
        next_noise += spec.size
      elif spec.kind == "C_global":
        x = block(x, z[:, start:start + spec.size])
        masks += [None] * spec.size
      elif spec.kind in LATENT_KINDS:
        x, module_masks = block(x, z[:, start:start + spec.size])
        masks += [module_masks[:, j] for j in range(spec.size)]
        if f"mask.{i}" in taps:
          found[f"mask.{i}"] = module_masks
      start += spec.num_codes
      if f"module.{i}" in taps:
        found[f"module.{i}"] = x
    return self.to_rgb(x), found, masks

  def __call__(self, z: jax.Array, *, noise=None, noise_rng=None) -> jax.Array:
    """Codes (B, d) → images (B, size, size, image_channels), about [−1, 1] (linear output, as upstream)."""
    return self._run(z, noise, noise_rng)[0]

  def masks(self, z: jax.Array, *, noise=None, noise_rng=None) -> jax.Array:
    """(B, d, size, size): every code's mask, bilinearly resized to the output (ones for C_global codes)."""
    _, _, masks = self._run(z, noise, noise_rng)
    size = self.size
    resized = [jnp.ones((z.shape[0], size, size), jnp.float32) if m is None
               else jax.image.resize(m, (m.shape[0], size, size), "bilinear") for m in masks]
    return jnp.stack(resized, axis=1)

  def features(self, z: jax.Array, layers: Sequence[str] = (), *, noise=None, noise_rng=None) -> dict[str, jax.Array]:
    unknown = sorted(set(layers) - set(feature_layer_names(self.specs)))
    if unknown:
      raise ValueError(f"unknown pssc feature layer(s) {unknown}; available: {list(feature_layer_names(self.specs))}")
    return self._run(z, noise, noise_rng, tuple(layers))[1]


def feature_layer_names(specs: Sequence[ModuleSpec]) -> tuple[str, ...]:
  return (tuple(f"module.{i}" for i in range(len(specs)))
          + tuple(f"mask.{i}" for i, s in enumerate(specs) if s.kind in SC_KINDS))


# ---------------------------------------------------------------------------------------------------------------
# Family contract.

def module_from_config(config: dict[str, Any]) -> PSSCGenerator:
  specs = parse_module_list(config["modules"])
  widths = upstream_widths(len(specs), int(config["fmap_base"]), float(config.get("fmap_decay", 1.0)),
                           int(config.get("fmap_min", 1)), int(config.get("fmap_max", 512)),
                           int(config.get("nf_scale", 4)))
  module = PSSCGenerator(specs=specs, widths=widths, image_channels=int(config.get("image_channels", 3)),
                         blur_kernel=tuple(float(k) for k in config.get("blur_kernel", DEFAULT_BLUR_KERNEL)))
  for key, value in (("latent_dim", module.latent_dim), ("size", module.size)):
    if key in config and int(config[key]) != value:
      raise ValueError(f"pssc config: {key}={config[key]} disagrees with the modules, which give {value}")
  return module


def _info(module: PSSCGenerator, config: dict[str, Any], source: str) -> GeneratorInfo:
  return GeneratorInfo(family=FAMILY, latent_dim=module.latent_dim,
                       image_shape=(module.size, module.size, module.image_channels), latent_spaces=("z",),
                       output_range=(-1.0, 1.0), feature_layers=feature_layer_names(module.specs),
                       config=config_items(config), source=source)


def abstract_variables(config: dict[str, Any]):
  """Shapes/dtypes of the variables a config needs (no computation)."""
  return init_from_latent(module_from_config(config))


def _is_zero_init(names: tuple[str, ...]) -> bool:
  leaf = names[-1]
  return leaf == "bias" or leaf.startswith(("bias_", "noise_strength")) or leaf.endswith("_bias")


def init_variables(config: dict[str, Any], rng: jax.Array):
  """Upstream's init: equalized weights, the const input and the noise buffers N(0, 1); biases and noise strengths 0.

  Drawn from ONE normal vector split over the variables (as `stylegan2.init_variables`): `module.init` would compile
  the whole forward plus one RNG per parameter, minutes on a loaded CPU even for tiny configs."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract_variables(config))
  sizes = [int(np.prod(leaf.shape)) for _, leaf in leaves]
  normal = jax.random.normal(rng, (sum(sizes),), jnp.float32)
  offsets = np.cumsum([0] + sizes)
  values = []
  for i, (path, leaf) in enumerate(leaves):
    names = tuple(str(getattr(k, "key", k)) for k in path)
    values.append(jnp.zeros(leaf.shape, jnp.float32) if _is_zero_init(names)
                  else normal[offsets[i]:offsets[i + 1]].reshape(leaf.shape))
  return jax.tree_util.tree_unflatten(treedef, values)


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  module = module_from_config(config)
  variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), variables)
  return checked_generator(module, _info(module, config, source), variables, init_from_latent(module))


def masks(generator: Generator, z: jax.Array, **kwargs) -> jax.Array:
  """Every code's spatial mask resized to the image, (B, d, size, size), for pictures (mask overlays)."""
  if generator.info.family != FAMILY:
    raise ValueError(f"masks() needs a {FAMILY} generator, got a {generator.info.family} one")
  return generator.module.apply(generator.variables, z, method="masks", **kwargs)


def mask_areas(generator: Generator, z: jax.Array, **kwargs) -> jax.Array:
  """(d,): each code's mask averaged over pixels and the batch — the fraction of the image its AdaIN blends in
  (1 for C_global codes). Masks start small (uniform gate logits give ≈ (1/6)² ≈ 0.03), so a code whose area has
  fallen below that over training has lost its region: the diagnostic of an SC collapse."""
  return jnp.mean(masks(generator, z, **kwargs), axis=(0, 2, 3))


MASK_SAMPLES = 256   # codes (and noise draws) mask_area_summary averages over


def spatial_codes(module: PSSCGenerator) -> list[int]:
  """The codes of G's SC modules (C_global codes act everywhere: they have no mask worth a picture)."""
  codes, start = [], 0
  for spec in module.specs:
    if spec.kind in SC_KINDS:
      codes += range(start, start + spec.num_codes)
    start += spec.num_codes
  return codes


def mask_area_summary(generator, rng: jax.Array, num: int = MASK_SAMPLES) -> dict[str, Any]:
  """A `pssc` generator's mask area per SC code (`mask_areas` over `num` codes c ~ N(0, I) with fresh
  noise): {'codes': SC codes, 'area': their areas, 'largest': the code of the largest area}; {} without SC modules.
  Read beside TPL's per-code values: in a collapsed G the one active code is the one whose mask grew."""
  codes = spatial_codes(generator.module)
  if not codes:
    return {}
  code_key, noise_key = jax.random.split(rng)
  z = jax.random.normal(code_key, (num, generator.info.latent_dim), jnp.float32)
  areas = np.asarray(mask_areas(generator, z, noise_rng=noise_key))[codes]
  return {"codes": codes, "area": [float(a) for a in areas], "largest": int(codes[int(np.argmax(areas))]),
          "num_samples": int(num)}


__all__ = ("ModuleSpec", "parse_module_list", "upstream_widths", "resolutions", "make_config", "PSSCGenerator",
           "ConvStack", "NoiseConvs", "module_from_config", "abstract_variables", "init_variables", "build", "masks",
           "mask_areas", "spatial_codes", "mask_area_summary", "feature_layer_names")
