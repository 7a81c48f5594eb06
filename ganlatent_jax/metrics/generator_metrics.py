"""Metrics of a generator itself: TPL (PS-SC), PPL (StyleGAN) and the Fréchet distance of FID.

All distances between images go through a `distance_fn(x, y) -> (B,)` on NHWC RGB batches in [-1, 1]; the default is
LPIPS-VGG (`ganlatent_jax.nets.lpips`, v0.1), the distance both papers use (StyleGAN's `vgg16_zhang_perceptual.pkl`
is LPIPS-VGG fed [0, 255] images, i.e. the same function of our [-1, 1] images). A `distance_fn` that is a pytree
with array leaves (an `LPIPS` object) is passed into the jitted batch functions as an argument, so its weights are
not baked into the program as constants; any other callable is static.

Before the distance, images are mapped from the generator's output range to [-1, 1], grayscale is repeated to RGB,
optionally cropped (StyleGAN's face crop: rows 3H/8..7H/8, columns 2W/8..6W/8), and box-downsampled by an integer
factor to at most 256 px, as both upstream metrics do.

* TPL — Traversal Perceptual Length (Zhu et al., "Where and What? Examining Interpretable Disentangled
  Representations", CVPR 2021, `metrics/traversal_perceptual_length.py`): for each of `num_traversals` random latents
  and each latent dimension, set that coordinate to `points_per_dim` evenly spaced values from −4 to 4 (other
  coordinates kept), render, and sum the distances between consecutive frames. Per dimension: mean (and std) over
  traversals. A dimension is *active* when its mean exceeds `active_threshold`; TPL = Σ over active dimensions.
  Upstream's other summaries are reported too: mean_distance = TPL / #dims, mean_std = Σ_active std / #dims,
  norm_dist_std = sqrt(mean_distance² + mean_std²). The upstream defaults are 25 points, 50 traversals,
  threshold 0.1, no crop. With `directions`, "dimension k" is the coordinate along direction k: its value is set
  absolutely (the projection on the unit direction is moved to each value) or, with `relative=True` (upstream's
  `use_bound_4=False`, ±2), moved by ±bound around the sample. (W is not centred: for W directions the relative
  traversal is usually the meaningful one.)
* PPL — Perceptual Path Length (Karras et al., StyleGAN, `metrics/perceptual_path_length.py`): pairs of latents,
  t ~ U[0, 1] ('full') or t = 0 ('end'); in z: slerp(z0, z1, t) and slerp(z0, z1, t + ε) (unit vectors, as
  upstream); in W: lerp of the mapped latents. distance / ε² per pair; the reported value is the mean after dropping
  values outside the [1st ('lower'), 99th ('higher')] percentiles. ε = 1e-4.
* FID's formula: ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1Σ2)^½) in float64 with `scipy.linalg.sqrtm`, regularised and
  real-parted exactly like pytorch-fid's `calculate_frechet_distance`.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ganlatent_jax.directions import spaces
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators.base import Generator

DistanceFn = Callable[[jax.Array, jax.Array], jax.Array]
MAX_DISTANCE_SIZE = 256  # upstream box-downsamples larger images to 256 px (VGG was trained on 224 px)
PPL_EPSILON = 1e-4
TPL_BOUND = 4.0           # PS-SC `use_bound_4=True`: the coordinate itself runs over [−4, 4]
TPL_RELATIVE_BOUND = 2.0  # PS-SC `use_bound_4=False`: ±2 around the sampled coordinate


# ------------------------------------------------------------------------------------------------ images, distance


def prepare_images(images: jax.Array, output_range: tuple[float, float] = (-1.0, 1.0), *,
                   crop: bool = False) -> jax.Array:
  """Generator output (NHWC, `output_range`) → RGB in [-1, 1], face-cropped if asked, box-downsampled to ≤ 256 px."""
  low, high = output_range
  images = (images.astype(jnp.float32) - low) * (2.0 / (high - low)) - 1.0
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  if crop:
    c = images.shape[1] // 8
    images = images[:, c * 3:c * 7, c * 2:c * 6, :]
  factor = images.shape[1] // MAX_DISTANCE_SIZE
  if factor > 1:
    b, h, w, ch = images.shape
    images = images[:, :h // factor * factor, :w // factor * factor]
    images = images.reshape(b, h // factor, factor, w // factor, factor, ch).mean(axis=(2, 4))
  return images


def _split_distance(distance_fn: Optional[DistanceFn]) -> tuple[Any, Callable]:
  """(traced part, apply(traced, x, y)). A pytree callable (LPIPS) travels as a jit argument; a function is static."""
  if distance_fn is None:
    from ganlatent_jax.port.lpips import default_lpips
    distance_fn = default_lpips()
  if jax.tree_util.all_leaves([distance_fn]):  # a plain function (a single non-array leaf)
    return None, _StaticDistance(distance_fn)
  return distance_fn, _call_model


def _call_model(model, x, y):
  return model(x, y)


class _StaticDistance:
  """Hashable wrapper so a plain distance function can be a static jit argument."""

  def __init__(self, fn):
    self.fn = fn

  def __call__(self, _, x, y):
    return self.fn(x, y)

  def __hash__(self):
    return hash(self.fn)

  def __eq__(self, other):
    return isinstance(other, _StaticDistance) and other.fn is self.fn


# --------------------------------------------------------------------------------------------------------- TPL


def _traversal_values(bound: float, points: int) -> np.ndarray:
  return np.linspace(-bound, bound, points).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("apply_distance", "space", "layers", "relative", "crop", "gen_kwargs"))
def _tpl_batch(gen: Generator, distance, base: jax.Array, direction: jax.Array, values: jax.Array, *,
               apply_distance, space: str, layers, relative: bool, crop: bool, gen_kwargs) -> jax.Array:
  """Summed consecutive-frame distances (T,) of T traversals along one direction.

  base: (T, D) or (T, L, D) latents in `space`; direction (D,); values (P,): the coordinate's values (absolute) or
  offsets (relative).
  """
  num, points = base.shape[0], values.shape[0]
  unit = direction / jnp.linalg.norm(direction)
  anchor = base if base.ndim == 2 else base[:, (layers or (0,))[0]]
  coefficient = values[None, :] if relative else values[None, :] - (anchor @ unit)[:, None]  # (T, P)
  delta = coefficient[..., None] * unit  # (T, P, D)
  if base.ndim == 2:
    latents = base[:, None, :] + delta
  else:
    start, stop = layers or (0, base.shape[1])
    mask = jnp.zeros((base.shape[1],), base.dtype).at[start:stop].set(1.0)
    latents = base[:, None] + delta[:, :, None, :] * mask[:, None]
  latents = latents.reshape(num * points, *base.shape[1:])
  images = spaces.render(gen, latents, space, **dict(gen_kwargs))
  images = prepare_images(images, gen.info.output_range, crop=crop).reshape(num, points, *images.shape[1:3], 3)
  h, w = images.shape[2:4]
  first = images[:, :-1].reshape(-1, h, w, 3)
  second = images[:, 1:].reshape(-1, h, w, 3)
  return jnp.sum(apply_distance(distance, first, second).reshape(num, points - 1), axis=1)


def traversal_perceptual_length(gen: Generator, rng: jax.Array, *, num_traversals: int = 50,
                                points_per_dim: int = 25, bound: Optional[float] = None, relative: bool = False,
                                active_threshold: float = 0.1, directions: Optional[Directions] = None,
                                crop: bool = False, distance_fn: Optional[DistanceFn] = None,
                                batch_size: int = 100, truncation: Optional[float] = None,
                                gen_kwargs: Optional[dict] = None) -> dict[str, Any]:
  """TPL as PS-SC defines it (see the module docstring). `directions` default: the generator's z dimensions.

  `bound` default: 4 (absolute: the coordinate runs over [−4, 4]) or 2 (relative: ±2 around the sample), upstream's.
  `batch_size`: images rendered per jitted call (whole traversals, at least one). Returns a JSON-able dict:
  `tpl` (= sum_distance), `active_dims`, `num_active`, `per_dim` (mean over traversals), `per_dim_std`,
  `mean_distance`, `mean_std`, `norm_dist_std`, and the settings.
  """
  if bound is None:
    bound = TPL_RELATIVE_BOUND if relative else TPL_BOUND
  if points_per_dim < 2:
    raise ValueError(f"points_per_dim must be ≥ 2 (distances between consecutive frames), got {points_per_dim}")
  if num_traversals < 1:
    raise ValueError(f"num_traversals must be ≥ 1, got {num_traversals}")
  if directions is None:
    directions = Directions(np.eye(gen.latent_dim, dtype=np.float32), "z")
  space = directions.space
  if space != "z" and "w" not in gen.info.latent_spaces:
    raise ValueError(f"directions in {space!r} need a generator with a W space; a {gen.info.family} generator has "
                     f"{gen.info.latent_spaces}")
  norms = np.linalg.norm(directions.matrix, axis=0)
  if np.any(norms == 0):
    raise ValueError(f"directions {np.flatnonzero(norms == 0).tolist()} are zero vectors")
  z_rng, w_rng = jax.random.split(rng)
  z = gen.sample_z(z_rng, num_traversals)
  w_avg = spaces.mean_w(gen, w_rng) if truncation not in (None, 1.0) and space != "z" else None
  base = spaces.to_space(gen, z, space, truncation, w_avg)
  distance, apply_distance = _split_distance(distance_fn)
  values = jnp.asarray(_traversal_values(bound, points_per_dim))
  per_batch = max(1, batch_size // points_per_dim)
  kwargs = dict(apply_distance=apply_distance, space=space, layers=directions.layers, relative=relative, crop=crop,
                gen_kwargs=tuple(sorted((gen_kwargs or {}).items())))
  sums = np.zeros((num_traversals, directions.num_directions), np.float64)
  for k in range(directions.num_directions):
    direction = jnp.asarray(directions.matrix[:, k])
    for start in range(0, num_traversals, per_batch):
      chunk = base[start:start + per_batch]
      count = chunk.shape[0]
      if count < per_batch and num_traversals > per_batch:  # pad the last chunk: one compiled shape
        chunk = jnp.concatenate([chunk, jnp.repeat(chunk[-1:], per_batch - count, axis=0)])
      sums[start:start + count, k] = np.asarray(
          _tpl_batch(gen, distance, chunk, direction, values, **kwargs), np.float64)[:count]
  return tpl_summary(sums, active_threshold) | dict(
      num_traversals=num_traversals, points_per_dim=points_per_dim, bound=float(bound), relative=relative,
      space=space, crop=crop)


def tpl_summary(traversal_sums: np.ndarray, active_threshold: float = 0.1) -> dict[str, Any]:
  """PS-SC's aggregation of (num_traversals, num_dims) summed traversal distances."""
  sums = np.asarray(traversal_sums, np.float64)
  per_dim, per_dim_std = sums.mean(axis=0), sums.std(axis=0)
  active = per_dim > active_threshold
  num_dims = per_dim.shape[0]
  tpl = float(np.sum(per_dim[active]))
  mean_distance = tpl / num_dims
  mean_std = float(np.sum(per_dim_std[active])) / num_dims
  return dict(tpl=tpl, num_active=int(active.sum()), active_dims=np.flatnonzero(active).tolist(),
              active_threshold=float(active_threshold), per_dim=per_dim.tolist(), per_dim_std=per_dim_std.tolist(),
              mean_distance=mean_distance, mean_std=mean_std,
              norm_dist_std=math.sqrt(mean_distance ** 2 + mean_std ** 2))


# --------------------------------------------------------------------------------------------------------- PPL


def normalize(v: jax.Array) -> jax.Array:
  return v / jnp.sqrt(jnp.sum(jnp.square(v), axis=-1, keepdims=True))


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """Spherical interpolation of the directions of a and b (rows), t (B,); unit-norm output like StyleGAN's."""
  a, b = normalize(a), normalize(b)
  cos = jnp.sum(a * b, axis=-1, keepdims=True)
  angle = t[:, None] * jnp.arccos(jnp.clip(cos, -1.0, 1.0))
  orthogonal = normalize(b - cos * a)
  return normalize(a * jnp.cos(angle) + orthogonal * jnp.sin(angle))


def lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  return a + (b - a) * t.reshape(-1, *([1] * (a.ndim - 1)))


@functools.partial(jax.jit, static_argnames=("apply_distance", "space", "batch_size", "sampling", "epsilon", "crop",
                                             "gen_kwargs"))
def _ppl_batch(gen: Generator, distance, rng: jax.Array, *, apply_distance, space: str, batch_size: int,
               sampling: str, epsilon: float, crop: bool, gen_kwargs) -> jax.Array:
  """(batch_size,) distances / ε² of one batch of random path segments."""
  z_rng, t_rng = jax.random.split(rng)
  z = gen.sample_z(z_rng, 2 * batch_size)
  z0, z1 = z[0::2], z[1::2]
  t = jax.random.uniform(t_rng, (batch_size,)) if sampling == "full" else jnp.zeros((batch_size,))
  if space == "z":
    latents = jnp.concatenate([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
  else:
    w = gen.mapping(z)
    w0, w1 = w[0::2], w[1::2]
    latents = jnp.concatenate([lerp(w0, w1, t), lerp(w0, w1, t + epsilon)])
  images = prepare_images(spaces.render(gen, latents, space, **dict(gen_kwargs)), gen.info.output_range, crop=crop)
  return apply_distance(distance, images[:batch_size], images[batch_size:]) / (epsilon ** 2)


def perceptual_path_length(gen: Generator, rng: jax.Array, *, space: str = "z", num_samples: int = 50000,
                           epsilon: float = PPL_EPSILON, sampling: str = "end", crop: bool = False,
                           distance_fn: Optional[DistanceFn] = None, batch_size: int = 16,
                           percentiles: tuple[float, float] = (1.0, 99.0),
                           gen_kwargs: Optional[dict] = None) -> dict[str, Any]:
  """PPL as StyleGAN defines it (see the module docstring). `num_samples` is rounded up to whole batches.

  Returns `ppl` (mean within the percentile band), `ppl_unfiltered`, `num_kept`, `distances` (all, float64 list)
  and the settings. Deterministic given `rng` and `batch_size` (batch i uses `fold_in(rng, i)`).
  """
  if space not in ("z", "w"):
    raise ValueError(f"PPL space must be 'z' or 'w', got {space!r}")
  if space == "w" and "w" not in gen.info.latent_spaces:
    raise ValueError(f"PPL in W needs a generator with a mapping; a {gen.info.family} generator has "
                     f"{gen.info.latent_spaces}")
  if sampling not in ("full", "end"):
    raise ValueError(f"PPL sampling must be 'full' or 'end', got {sampling!r}")
  distance, apply_distance = _split_distance(distance_fn)
  kwargs = dict(apply_distance=apply_distance, space=space, batch_size=int(batch_size), sampling=sampling,
                epsilon=float(epsilon), crop=crop, gen_kwargs=tuple(sorted((gen_kwargs or {}).items())))
  batches = [np.asarray(_ppl_batch(gen, distance, jax.random.fold_in(rng, i), **kwargs), np.float64)
             for i in range(-(-num_samples // batch_size))]
  distances = np.concatenate(batches)
  return ppl_summary(distances, percentiles) | dict(space=space, sampling=sampling, epsilon=float(epsilon),
                                                    crop=crop, num_samples=int(distances.shape[0]))


def ppl_summary(distances: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> dict[str, Any]:
  """StyleGAN's aggregation: the mean of the distances within [lower percentile ('lower'), upper ('higher')]."""
  distances = np.asarray(distances, np.float64)
  low = np.percentile(distances, percentiles[0], method="lower")
  high = np.percentile(distances, percentiles[1], method="higher")
  kept = distances[(distances >= low) & (distances <= high)]
  return dict(ppl=float(kept.mean()), ppl_unfiltered=float(distances.mean()), num_kept=int(kept.shape[0]),
              percentiles=[float(p) for p in percentiles], distances=distances.tolist())


# ----------------------------------------------------------------------------------------------- Fréchet distance


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(μ, Σ) in float64 of features (N, D) (rows are samples; Σ with N − 1, like np.cov)."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(f"features must be (N ≥ 2, D), got shape {features.shape}")
  return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, method: str = "sqrtm") -> float:
  """‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1Σ2)^½), float64.

  method="sqrtm" is pytorch-fid's `calculate_frechet_distance` (FID parity): if the square root is not finite
  (singular product), ε·I is added to both covariances; a complex result whose diagonal's imaginary part exceeds 1e-3
  is an error, otherwise the real part is used.
  method="eigh" computes Tr (Σ1Σ2)^½ = Σ √eig(Σ1^½ Σ2 Σ1^½) from symmetric PSD eigenproblems: stable for the singular
  covariances of dead-ReLU features (small classifiers), where sqrtm warns and may return complex noise.
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape:
    raise ValueError(f"mean vectors have different lengths: {mu1.shape} and {mu2.shape}")
  if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
    raise ValueError(f"covariances {sigma1.shape} and {sigma2.shape} do not match the means {mu1.shape}")
  diff = mu1 - mu2
  if method == "eigh":
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0.0, None)))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)
  if method != "sqrtm":
    raise ValueError(f"Fréchet distance method must be 'sqrtm' or 'eigh', got {method!r}")
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  if not np.isfinite(covmean).all():
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"Fréchet distance: (Σ1Σ2)^½ has an imaginary component of {np.max(np.abs(covmean.imag))}")
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(features_a: np.ndarray, features_b: np.ndarray, method: str = "sqrtm") -> float:
  return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b), method=method)
