"""Oracle generators: the procedural dSprites / 3DShapes renderers as generators whose factor directions are known.

    z ~ N(0, I_L)  →  w = A z  →  factor i = squash_i(w_i / ‖a_i‖), i < F  →  image = render(factors)·2 − 1

A (L × L, `params/mapping/kernel` = Aᵀ, so SeFa's 'first_layer' reads it like any first dense layer) is fixed
and shipped with the asset (`entangling_map`). Its first F rows a_i = s_i q_i are orthogonal (q_i orthonormal,
random; scales s_i log-spaced in [1, condition], shuffled), so the F factors are independent, as in the datasets.
No image depends on its other L − F rows; they are not orthogonal to the factor rows, so W's coordinates are
correlated and SeFa's and GANSpace's answers are not the factors by construction.

squash_i maps the standard normal w_i / ‖a_i‖ to the factor's grid-index coordinate x = n_i Φ(·) − 1/2, uniform
on [−1/2, n_i − 1/2] (so round(x) is uniform over the n_i values, as in the datasets), then to the factor's value
by the grid's affine map (extended by half a step beyond the ends: no flat parts, no zero gradients). A shape index
blends the shapes (`oracle_render.shape_weights`); hues are periodic.

The true directions (`true_directions`): in W the unit vectors e_i (i < F); in Z the unit rows q_i. Either is both
the direction that moves factor i alone and the one whose coordinate ⟨latent, d⟩ is (a multiple of) factor i's
pre-activation. `factor_labels` gives each latent's exact factor values as dataset grid indices.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from ganlatent_jax.data import dsprites_procedural as dsp
from ganlatent_jax.data import shapes3d_procedural as s3d
from ganlatent_jax.directions.base import Directions, orthonormalize
from ganlatent_jax.generators import oracle_render
from ganlatent_jax.generators.base import Generator, GeneratorInfo, checked_generator, config_items

FAMILY = "oracle"
FEATURE_LAYERS = ("w", "factor_positions", "factor_values", "output")


@dataclasses.dataclass(frozen=True)
class Factor:
  name: str
  num_values: int
  first: float          # value of grid index 0
  step: float           # value step between grid indices (the grids are uniform)
  blended: bool = False  # a shape index: rendered as a blend of the shapes


def _grid_factor(name: str, grid: np.ndarray) -> Factor:
  steps = np.diff(np.asarray(grid, np.float64))
  if not np.allclose(steps, steps[0]):
    raise ValueError(f"oracle factor {name!r}: the dataset's grid is not uniform")
  return Factor(name, len(grid), float(grid[0]), float(steps[0]))


@dataclasses.dataclass(frozen=True)
class Scene:
  factors: tuple[Factor, ...]
  channels: int
  render: Callable[..., jax.Array]   # continuous factor values (B,) each → images (B, 64, 64, channels) in [0, 1]


SCENES: dict[str, Scene] = {
    "dsprites": Scene(
        factors=(Factor("shape", 3, 0.0, 1.0, blended=True), _grid_factor("scale", dsp.SCALE_VALUES),
                 _grid_factor("orientation", dsp.ORIENTATION_VALUES), _grid_factor("pos_x", dsp.POSITION_VALUES),
                 _grid_factor("pos_y", dsp.POSITION_VALUES)),
        channels=1, render=oracle_render.render_dsprites),
    "shapes3d": Scene(
        factors=(_grid_factor("floor_hue", s3d.HUE_VALUES), _grid_factor("wall_hue", s3d.HUE_VALUES),
                 _grid_factor("object_hue", s3d.HUE_VALUES), _grid_factor("scale", s3d.SCALE_VALUES),
                 Factor("shape", 4, 0.0, 1.0, blended=True),
                 _grid_factor("orientation", s3d.ORIENTATION_DEGREES)),
        channels=3, render=oracle_render.render_shapes3d),
}
assert tuple(f.name for f in SCENES["dsprites"].factors) == dsp.FACTOR_NAMES
assert tuple(f.name for f in SCENES["shapes3d"].factors) == s3d.FACTOR_NAMES
RESOLUTION = 64
DEFAULT_CONFIG = {"family": FAMILY, "dataset": "dsprites", "latent_dim": 16, "condition": 4.0, "seed": 0}


def make_config(**overrides) -> dict[str, Any]:
  """latent_dim L (≥ the number of factors), condition (the ratio of the largest to the smallest factor row norm of
  A), seed (of A: `init_variables` draws A from jax.random.key(seed))."""
  config = {**DEFAULT_CONFIG, **overrides}
  unknown = set(config) - set(DEFAULT_CONFIG)
  if unknown:
    raise ValueError(f"oracle: unknown config key(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
  if config["dataset"] not in SCENES:
    raise ValueError(f"oracle: dataset={config['dataset']!r}; expected one of {sorted(SCENES)}")
  num_factors = len(SCENES[config["dataset"]].factors)
  if int(config["latent_dim"]) < num_factors:
    raise ValueError(f"oracle: latent_dim={config['latent_dim']} is below the {num_factors} factors of "
                     f"{config['dataset']}")
  if float(config["condition"]) < 1.0:
    raise ValueError(f"oracle: condition={config['condition']} must be ≥ 1")
  return {"family": FAMILY, "dataset": str(config["dataset"]), "latent_dim": int(config["latent_dim"]),
          "condition": float(config["condition"]), "seed": int(config["seed"])}


class OracleGenerator(nn.Module):
  dataset: str = "dsprites"
  latent_dim: int = 16

  def setup(self):
    self.mapping_layer = nn.Dense(self.latent_dim, use_bias=False, name="mapping")

  @property
  def scene(self) -> Scene:
    return SCENES[self.dataset]

  def _check(self, x, what: str):
    if x.ndim != 2 or x.shape[-1] != self.latent_dim:
      raise ValueError(f"oracle: expected {what} of shape (batch, {self.latent_dim}), got {x.shape}")

  def mapping(self, z):
    self._check(z, "z")
    return self.mapping_layer(z)

  def factor_positions(self, w):
    """(B, F) grid-index coordinates x_i = n_i Φ(w_i / ‖a_i‖) − 1/2 ∈ (−1/2, n_i − 1/2)."""
    self._check(w, "w")
    num_factors = len(self.scene.factors)
    row_norms = jnp.linalg.norm(self.mapping_layer.variables["params"]["kernel"][:, :num_factors], axis=0)
    sizes = jnp.asarray([f.num_values for f in self.scene.factors], w.dtype)
    return sizes * jax.scipy.stats.norm.cdf(w[:, :num_factors] / row_norms) - 0.5

  def factor_values(self, w):
    """(B, F) factor values in the dataset's units (shape: the blended index)."""
    first = jnp.asarray([f.first for f in self.scene.factors], w.dtype)
    step = jnp.asarray([f.step for f in self.scene.factors], w.dtype)
    return first + step * self.factor_positions(w)

  def synthesis(self, w):
    values = self.factor_values(w)
    images = self.scene.render(*(values[:, i] for i in range(values.shape[1])), resolution=RESOLUTION)
    return images * 2.0 - 1.0

  def __call__(self, z):
    return self.synthesis(self.mapping(z))

  def features(self, z, layers: Sequence[str] = (), input_is_latent: bool = False):
    """The taps of a latent batch: z (B, L), or w (B, L) with input_is_latent (StyleGAN2's keyword, so methods
    that read features of W latents — LatentCLR in W — run on the oracle too)."""
    if input_is_latent:
      self._check(z, "w")
    w = z if input_is_latent else self.mapping(z)
    taps = {"w": lambda: w, "factor_positions": lambda: self.factor_positions(w),
            "factor_values": lambda: self.factor_values(w), "output": lambda: self.synthesis(w)}
    return {name: taps[name]() for name in layers}


# ---------------------------------------------------------------------------------------------------------------
# Family contract.

def module_from_config(config: dict[str, Any]) -> OracleGenerator:
  config = make_config(**{k: v for k, v in config.items() if k != "family"})
  return OracleGenerator(dataset=config["dataset"], latent_dim=config["latent_dim"])


def abstract_variables(config: dict[str, Any]):
  latent_dim = module_from_config(config).latent_dim
  return {"params": {"mapping": {"kernel": jax.ShapeDtypeStruct((latent_dim, latent_dim), jnp.float32)}}}


def entangling_map(latent_dim: int, num_factors: int, condition: float, rng: jax.Array) -> np.ndarray:
  """A = [[S, 0], [C, D]] Qᵀ (latent_dim × latent_dim) with Q a uniformly random rotation, S = diag(s) and
  D = diag(d)·R (R a random rotation of the nuisance block), s and d log-spaced in [1, condition] in random order,
  and C ~ N(0, 1/4F) entries: the factor rows s_i q_i are orthogonal, the nuisance rows are not orthogonal to them,
  and A's condition number stays near `condition` (the asset's card states the measured one)."""
  rotation_rng, scale_rng, nuisance_rng, mixing_rng, nuisance_scale_rng = jax.random.split(rng, 5)
  num_nuisance = latent_dim - num_factors
  rows = np.asarray(orthonormalize(jax.random.normal(rotation_rng, (latent_dim, latent_dim)))).T
  scales = np.geomspace(1.0, condition, num_factors)[np.asarray(jax.random.permutation(scale_rng, num_factors))]
  block = np.zeros((latent_dim, latent_dim))
  block[:num_factors, :num_factors] = np.diag(scales)
  if num_nuisance:
    nuisance_scales = np.geomspace(1.0, condition, num_nuisance)[
        np.asarray(jax.random.permutation(nuisance_scale_rng, num_nuisance))]
    nuisance_rotation = np.asarray(orthonormalize(jax.random.normal(nuisance_rng, (num_nuisance, num_nuisance))))
    block[num_factors:, num_factors:] = nuisance_scales[:, None] * nuisance_rotation
    block[num_factors:, :num_factors] = np.asarray(
        jax.random.normal(mixing_rng, (num_nuisance, num_factors))) / (2.0 * np.sqrt(num_factors))
  return (block @ rows).astype(np.float32)


def init_variables(config: dict[str, Any], rng: jax.Array | None = None):
  """The oracle's only variable, A (as the kernel Aᵀ), drawn from `rng` (default: jax.random.key(config['seed']))."""
  config = make_config(**{k: v for k, v in config.items() if k != "family"})
  rng = jax.random.key(config["seed"]) if rng is None else rng
  matrix = entangling_map(config["latent_dim"], len(SCENES[config["dataset"]].factors), config["condition"], rng)
  return {"params": {"mapping": {"kernel": jnp.asarray(matrix.T)}}}


def build(config: dict[str, Any], variables, source: str = "") -> Generator:
  config = make_config(**{k: v for k, v in config.items() if k != "family"})
  module = module_from_config(config)
  scene = SCENES[config["dataset"]]
  info = GeneratorInfo(family=FAMILY, latent_dim=module.latent_dim,
                       image_shape=(RESOLUTION, RESOLUTION, scene.channels),
                       latent_spaces=("z", "w"), w_dim=module.latent_dim, output_range=(-1.0, 1.0),
                       feature_layers=FEATURE_LAYERS, config=config_items(config), source=source)
  variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), variables)
  return checked_generator(module, info, variables, abstract_variables(config))


# ---------------------------------------------------------------------------------------------------------------
# What an oracle knows.

def _require_oracle(gen: Generator) -> Scene:
  if gen.info.family != FAMILY:
    raise ValueError(f"an oracle generator is needed (family {FAMILY!r}), got a {gen.info.family} generator "
                     f"({gen.info.source or 'no source'})")
  return SCENES[gen.info.config_dict()["dataset"]]


def factor_names(gen: Generator) -> tuple[str, ...]:
  return tuple(f.name for f in _require_oracle(gen).factors)


def factors_num_values(gen: Generator) -> tuple[int, ...]:
  return tuple(f.num_values for f in _require_oracle(gen).factors)


def entangling_matrix(gen: Generator) -> np.ndarray:
  """A (L × L), w = A z."""
  _require_oracle(gen)
  return np.asarray(gen.variables["params"]["mapping"]["kernel"]).T


def true_directions(gen: Generator, space: str = "z") -> Directions:
  """One unit direction per factor (columns in factor order): q_i in Z, e_i in W."""
  scene = _require_oracle(gen)
  num_factors = len(scene.factors)
  if space == "z":
    rows = entangling_matrix(gen)[:num_factors]
    matrix = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).T
  elif space == "w":
    matrix = np.eye(gen.latent_dim, num_factors, dtype=np.float32)
  else:
    raise ValueError(f"oracle true directions live in 'z' or 'w', not {space!r}")
  return Directions(matrix, space=space, meta=dict(method="oracle_true", source=gen.info.source,
                                                   factor_names=[f.name for f in scene.factors]))


def is_oracle_name(name: str) -> bool:
  """Whether a `generators.load` name is a shipped oracle ('testbed:oracle-dsprites', 'testbed:oracle-shapes3d')."""
  return name.startswith("testbed:oracle-")


def oracle_directions(name: str, space: str = "z") -> Directions:
  """`true_directions` of a shipped oracle: name 'dsprites' / 'shapes3d' (or 'oracle-…', 'testbed:oracle-…')."""
  from ganlatent_jax.generators.load import load
  name = name.split(":", 1)[-1]
  return true_directions(load(f"testbed:{name if name.startswith('oracle-') else 'oracle-' + name}"), space)


def latents_for_factors(gen: Generator, factors) -> jax.Array:
  """W latents (B, L) whose factors are exactly the given dataset grid indices (B, F) (nuisance coordinates 0):
  `gen.synthesis` of them renders the dataset's factor combinations."""
  scene = _require_oracle(gen)
  factors = np.asarray(factors)
  sizes = np.asarray([f.num_values for f in scene.factors])
  if factors.ndim != 2 or factors.shape[1] != len(sizes) or np.any(factors < 0) or np.any(factors >= sizes):
    raise ValueError(f"factors must be (B, {len(sizes)}) grid indices below {sizes.tolist()}, got shape "
                     f"{factors.shape}")
  row_norms = np.linalg.norm(entangling_matrix(gen)[:len(sizes)], axis=1)
  w = np.zeros((len(factors), gen.latent_dim), np.float32)
  w[:, :len(sizes)] = row_norms * scipy.stats.norm.ppf((factors + 0.5) / sizes)
  return jnp.asarray(w)


def labels_from_positions(positions) -> np.ndarray:
  """(B, F) int64 grid indices (the datasets' factor classes) of factor positions: the nearest index."""
  positions = np.asarray(positions)
  return np.rint(np.clip(positions, 0.0, None)).astype(np.int64)


@functools.partial(jax.jit, static_argnames=("space",))
def factor_positions(gen: Generator, latents: jax.Array, space: str = "z") -> jax.Array:
  """(B, F) continuous grid-index coordinates of the factors of z or w latents (see the module docstring)."""
  w = gen.mapping(latents) if space == "z" else latents
  return gen.module.apply(gen.variables, w, method="factor_positions")


def factor_labels(gen: Generator, latents: jax.Array, space: str = "z") -> np.ndarray:
  """(B, F) int64: each latent's exact factors as dataset grid indices (what the dataset would call its factors)."""
  _require_oracle(gen)
  if space not in ("z", "w"):
    raise ValueError(f"oracle latents live in 'z' or 'w', not {space!r}")
  positions = factor_positions(gen, jnp.asarray(latents), space)
  return np.minimum(labels_from_positions(positions), np.asarray(factors_num_values(gen)) - 1)
