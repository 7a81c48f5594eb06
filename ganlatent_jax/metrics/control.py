"""Plumerault et al.'s control measure (ICLR 2020, "Controlling generative models with continuous factors of
variations"): how precisely walking along a latent direction sets one measurable factor of the generated image.

Definitions (following the paper's evaluation protocol and its released scripts):
  * u is the direction, normalised to unit length here (the paper's directions are unit vectors);
  * for each latent z and each t in `t_values` (default: num_t=11 points evenly spaced on [−5, 5], the paper's α grid),
    the edited latent is  z_t = z − ⟨z, u⟩ u + t u : z's component along u is *replaced* by t, so every image at the
    same t should show the same value of the factor whatever the rest of z is;
  * an estimator maps each image to the measured factor value(s); the measure reports, per t, the mean and the
    (population, ddof=0) standard deviation over the latents of the measured value. A good direction gives a mean
    that moves monotonically with t and a small std at every t; "mean_std" is the std averaged over t.
  * measurements the estimator marks as failed (NaN) are left out, like the paper's script drops images whose
    saliency mass is below 0.02; "num_valid" counts the measurements kept.

The built-in estimators are for dSprites-like images (a bright object on a dark background). The image is reduced to
an intensity map m in [0, 1] (channel mean, `value_range` mapped to [0, 1], clipped); pixel coordinates run from −0.5
(left / top pixel centre) to +0.5 (right / bottom), as in the paper's barycentre:
  * position x, y = Σ m·coordinate / Σ m (x grows to the right, y grows downwards);
  * area = mean(m), the covered fraction of the image (the paper's scale measure);
  * scale = sqrt(area), linear in the object's size;
  * spread = sqrt(Σ m·((x − x̄)² + (y − ȳ)²) / Σ m), the rms radius about the barycentre (also linear in size).
An image with Σ m ≤ `min_mass` · H·W (nothing drawn) gives NaN for every statistic.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np

SPRITE_STATISTICS = ("x", "y", "area", "scale", "spread")


def edited_latents(latents: Any, direction: Any, t: float) -> np.ndarray:
  """z − ⟨z, u⟩u + t·u for every row z of `latents` (N, D), with u = direction / |direction|."""
  latents = np.asarray(latents, dtype=np.float32)
  unit = _unit_direction(direction, latents.shape[-1])
  along = latents @ unit
  return latents - along[:, None] * unit[None, :] + np.float32(t) * unit[None, :]


def _unit_direction(direction: Any, latent_dim: int) -> np.ndarray:
  direction = np.asarray(direction, dtype=np.float32).reshape(-1)
  if direction.shape[0] != latent_dim:
    raise ValueError(f"direction has {direction.shape[0]} entries but the latents have {latent_dim}")
  norm = np.linalg.norm(direction)
  if not np.isfinite(norm) or norm == 0:
    raise ValueError(f"direction must be finite and non-zero, got norm {norm}")
  return direction / norm


def intensity_map(images: Any, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
  """NHWC images → (B, H, W) intensities in [0, 1] (channel mean, `value_range` mapped to [0, 1], clipped)."""
  images = np.asarray(images, dtype=np.float64)
  if images.ndim != 4:
    raise ValueError(f"images must be NHWC, got shape {images.shape}")
  low, high = value_range
  if not high > low:
    raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
  return np.clip((images.mean(axis=-1) - low) / (high - low), 0.0, 1.0)


def sprite_statistics(images: Any, value_range: tuple[float, float] = (0.0, 1.0),
                      min_mass: float = 0.0) -> np.ndarray:
  """(B, 5) columns `SPRITE_STATISTICS` = x, y, area, scale, spread of each image (definitions in the module doc)."""
  intensity = intensity_map(images, value_range)
  _, height, width = intensity.shape
  ys = np.linspace(-0.5, 0.5, height)[None, :, None]
  xs = np.linspace(-0.5, 0.5, width)[None, None, :]
  mass = intensity.sum(axis=(1, 2))
  valid = mass > min_mass * height * width
  safe_mass = np.where(valid, mass, 1.0)
  x = (intensity * xs).sum(axis=(1, 2)) / safe_mass
  y = (intensity * ys).sum(axis=(1, 2)) / safe_mass
  second_moment = (intensity * ((xs - x[:, None, None]) ** 2 + (ys - y[:, None, None]) ** 2)).sum(axis=(1, 2))
  area = mass / (height * width)
  stats = np.stack([x, y, area, np.sqrt(area), np.sqrt(second_moment / safe_mass)], axis=1)
  stats[~valid] = np.nan
  return stats


def sprite_estimator(statistic: str | Sequence[str], value_range: tuple[float, float] = (0.0, 1.0),
                     min_mass: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
  """An `estimate_fn` returning one statistic (B,) or several (B, K) of `SPRITE_STATISTICS`, by name."""
  names = [statistic] if isinstance(statistic, str) else list(statistic)
  unknown = [name for name in names if name not in SPRITE_STATISTICS]
  if unknown:
    raise ValueError(f"unknown sprite statistic(s) {unknown}; available: {SPRITE_STATISTICS}")
  columns = [SPRITE_STATISTICS.index(name) for name in names]

  def estimate(images: np.ndarray) -> np.ndarray:
    stats = sprite_statistics(images, value_range, min_mass)[:, columns]
    return stats[:, 0] if isinstance(statistic, str) else stats

  return estimate


def control_measure(generate_fn: Callable[[np.ndarray], Any], direction: Any, latents: Any,
                    estimate_fn: Callable[[np.ndarray], Any], *, t_max: float = 5.0, num_t: int = 11,
                    t_values: Sequence[float] | None = None, batch_size: int = 64) -> dict[str, Any]:
  """Mean and std over `latents` of the factor measured on images of z − ⟨z,u⟩u + t·u, for each t.

  generate_fn(z (B, D) float32) → images (B, H, W, C) (numpy or jax); estimate_fn(images) → (B,) or (B, K) values,
  NaN where the measurement failed. t runs over `t_values` if given, else `num_t` points evenly spaced on
  [−t_max, t_max]. Returns numpy arrays "t" (T,), "values" (T, N[, K]), "mean", "std", "num_valid" (T[, K]) and
  "mean_std" (scalar or (K,)): the std averaged over t (NaN-free t only).
  """
  latents = np.asarray(latents, dtype=np.float32)
  if latents.ndim != 2 or latents.shape[0] < 2:
    raise ValueError(f"latents must have shape (N >= 2, latent_dim), got {latents.shape}")
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if t_values is None:
    if num_t < 1 or not t_max >= 0:
      raise ValueError(f"need num_t >= 1 and t_max >= 0, got num_t={num_t}, t_max={t_max}")
    t_values = np.linspace(-t_max, t_max, num_t)
  t_values = np.asarray(t_values, dtype=np.float64).reshape(-1)
  _unit_direction(direction, latents.shape[1])  # validate once, before any generation

  values = []
  for t in t_values:
    shifted = edited_latents(latents, direction, t)
    per_batch = []
    for start in range(0, len(shifted), batch_size):
      batch = shifted[start:start + batch_size]
      measured = np.asarray(estimate_fn(np.asarray(generate_fn(batch))), dtype=np.float64)
      if measured.ndim not in (1, 2) or measured.shape[0] != len(batch):
        raise ValueError(f"estimate_fn must return ({len(batch)},) or ({len(batch)}, K) values, got {measured.shape}")
      per_batch.append(measured)
    values.append(np.concatenate(per_batch))
  values = np.stack(values)  # (T, N[, K])

  num_valid = np.sum(np.isfinite(values), axis=1)
  with warnings.catch_warnings():  # an all-NaN t (every measurement failed) gives NaN by design, silently
    warnings.simplefilter("ignore", RuntimeWarning)
    mean = np.nanmean(values, axis=1)
    std = np.nanstd(values, axis=1)
    mean_std = np.nanmean(std, axis=0)
  return {"t": t_values, "values": values, "mean": mean, "std": std, "num_valid": num_valid, "mean_std": mean_std}

