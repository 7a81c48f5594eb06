"""The `Generator` pytree: a linen module (static) applied to its variables (the only leaves).

Methods take a `Generator`, never a file path. Because the variables are the only leaves, a generator passes through
`jax.jit`, `jax.grad` (w.r.t. latents) and sharding like any array tree, and frozen pretrained weights never enter an
optimizer (they are not part of any train state's params).

Module contract (every family module in this package follows it):
  * `__call__(z, **kw)` → images NHWC float32 in the upstream's raw output range;
  * `features(z, layers, **kw)` → {layer name: NHWC (or (B, D) for vectors) activations};
  * StyleGAN-like modules also have `mapping(z)` → w (B, D) and `synthesis(w, **kw)` (w: (B, D) or W+ (B, L, D)).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from ganlatent_jax.port.keys import check_tree_shapes


@dataclasses.dataclass(frozen=True)
class GeneratorInfo:
  """Static architecture facts about a generator (hashable: it is part of the jit cache key)."""
  family: str                               # 'stylegan2', 'biggan', 'sngan', 'proggan', 'dcgan', ...
  latent_dim: int                           # size of z (per-sample, flattened)
  image_shape: tuple[int, int, int]         # (H, W, C) of the output
  latent_spaces: tuple[str, ...] = ("z",)   # subset of ('z', 'w', 'w+')
  num_ws: int = 0                           # W+ depth (StyleGAN2 `n_latent`), 0 where there is no W
  w_dim: int = 0
  num_classes: int = 0                      # class-conditional generators (BigGAN)
  output_range: tuple[float, float] = (-1.0, 1.0)
  feature_layers: tuple[str, ...] = ()      # names accepted by `features(..., layers=)`
  config: tuple[tuple[str, Any], ...] = ()  # the architecture hyper-parameters, as sorted (key, value) pairs
  # The prior z was trained with, as consecutive (kind, size) segments of z's dims ('normal': N(0, 1), 'uniform':
  # U(−1, 1)); () is N(0, I) everywhere, what every upstream family and most of our methods train with. UD-GAN's
  # knobs and InfoGAN's uniform codes are not: their exported generators carry it (see `check_latent_prior`).
  latent_prior: tuple[tuple[str, int], ...] = ()
  # Where the weights came from. Not part of equality/hash: generators of one architecture loaded from different
  # files must share compiled functions (GeneratorInfo is static, i.e. part of the jit cache key).
  source: str = dataclasses.field(default="", compare=False)

  def config_dict(self) -> dict[str, Any]:
    return dict(self.config)


@flax.struct.dataclass
class Generator:
  variables: Any
  module: nn.Module = flax.struct.field(pytree_node=False)
  info: GeneratorInfo = flax.struct.field(pytree_node=False)

  def _apply(self, method: str, *args, **kwargs):
    return self.module.apply(self.variables, *args, method=method, **kwargs)

  def __call__(self, z: jax.Array, **kwargs) -> jax.Array:
    return self._apply("__call__", z, **kwargs)

  def features(self, z: jax.Array, layers: Sequence[str], **kwargs) -> dict[str, jax.Array]:
    unknown = [name for name in layers if self.info.feature_layers and name not in self.info.feature_layers]
    if unknown:
      raise ValueError(f"unknown feature layer(s) {unknown} for a {self.info.family} generator; "
                       f"available: {list(self.info.feature_layers)}")
    return self._apply("features", z, layers=tuple(layers), **kwargs)

  def mapping(self, z: jax.Array, **kwargs) -> jax.Array:
    self._require_space("w", "mapping")
    return self._apply("mapping", z, **kwargs)

  def synthesis(self, w: jax.Array, **kwargs) -> jax.Array:
    self._require_space("w", "synthesis")
    return self._apply("synthesis", w, **kwargs)

  def _require_space(self, space: str, what: str):
    if space not in self.info.latent_spaces:
      raise ValueError(f"a {self.info.family} generator has no {what} (latent spaces: {self.info.latent_spaces})")

  @property
  def latent_dim(self) -> int:
    return self.info.latent_dim

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return self.info.image_shape

  def sample_z(self, rng: jax.Array, num: int) -> jax.Array:
    """(num, latent_dim) draws of the prior z was trained with: N(0, I) unless `info.latent_prior` says otherwise.
    Without a uniform segment this is exactly `jax.random.normal(rng, (num, latent_dim))`."""
    return sample_prior(rng, num, self.info.latent_dim, self.info.latent_prior)

  def with_variables(self, variables) -> "Generator":
    return self.replace(variables=variables)


PRIOR_KINDS = ("normal", "uniform")


def check_latent_prior(prior: Any, latent_dim: int | None, where: str = "latent_prior"
                       ) -> tuple[tuple[str, int], ...]:
  """A latent prior as `GeneratorInfo.latent_prior` holds it, from any sequence of (kind, size) pairs (e.g. read from
  JSON); refuses anything else, unknown kinds, sizes that are not positive integers and (unless `latent_dim` is
  None) sizes that do not add up to `latent_dim`, naming `where`."""
  if not isinstance(prior, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in prior):
    raise ValueError(f"{where}: expected a list of [kind, size] pairs, got {prior!r:.100}")
  for kind, size in prior:
    if kind not in PRIOR_KINDS or isinstance(size, bool) or not isinstance(size, int) or size < 1:
      raise ValueError(f"{where}: segment [{kind!r:.30}, {size!r:.30}] needs a kind in {PRIOR_KINDS} and an "
                       f"integer size >= 1")
  segments = tuple((str(kind), int(size)) for kind, size in prior)
  if segments and latent_dim is not None and sum(size for _, size in segments) != latent_dim:
    raise ValueError(f"{where}: segment sizes {[size for _, size in segments]} add up to "
                     f"{sum(size for _, size in segments)}, not the generator's latent_dim {latent_dim}")
  return segments


def sample_prior(rng: jax.Array, num: int, latent_dim: int, prior: tuple[tuple[str, int], ...] = ()) -> jax.Array:
  """(num, latent_dim) float32 draws of a `check_latent_prior` prior. One normal and one uniform draw of the full
  shape, each segment taken from its kind's (so an all-normal prior is bit-identical to N(0, I))."""
  normal = jax.random.normal(rng, (num, latent_dim), jnp.float32)
  if all(kind == "normal" for kind, _ in prior):
    return normal
  uniform = jax.random.uniform(jax.random.fold_in(rng, 1), (num, latent_dim), jnp.float32, -1.0, 1.0)
  parts, start = [], 0
  for kind, size in prior:
    parts.append((uniform if kind == "uniform" else normal)[:, start:start + size])
    start += size
  return jnp.concatenate(parts, axis=1)


def config_items(config: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
  """A JSON-style config as sorted, hashable (key, value) pairs (lists become tuples), for `GeneratorInfo.config`."""
  def freeze(value):
    if isinstance(value, (list, tuple)):
      return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
      return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value
  return tuple(sorted((k, freeze(v)) for k, v in config.items()))


def checked_generator(module: nn.Module, info: GeneratorInfo, variables: Any, expected_variables: Any) -> Generator:
  """A `Generator` after checking `variables` against the module's abstract variables (names every mismatch)."""
  check_tree_shapes(expected_variables, variables, info.source or f"{info.family} variables")
  return Generator(variables=jax.tree_util.tree_map(jnp.asarray, variables), module=module, info=info)


def init_from_latent(module: nn.Module, rng: jax.Array | None = None):
  """Variables of a module whose `__call__` takes z (1, module.latent_dim): random (jitted: an eager init compiles
  every primitive separately, tens of seconds on CPU), or abstract shapes only when `rng` is None."""
  dummy = jnp.zeros((1, module.latent_dim), jnp.float32)
  if rng is None:
    return jax.eval_shape(module.init, jax.random.PRNGKey(0), dummy)
  return jax.jit(module.init)(rng, dummy)
