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
from scipy import stats

SPRITE_STATISTICS = ("x", "y", "area", "scale", "spread")


def measure_images(generate_fn: Callable[[np.ndarray], Any], estimate_fn: Callable[[np.ndarray], Any], latents: Any,
                   batch_size: int) -> np.ndarray:
  """estimate_fn(generate_fn(z)) over `latents` in batches of `batch_size`, concatenated as float64."""
  return np.concatenate([np.asarray(estimate_fn(np.asarray(generate_fn(latents[s:s + batch_size]))), np.float64)
                         for s in range(0, len(latents), batch_size)])


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



# ---------------------------------------------------------------------------------------------------------------------
# Summaries of a control measure (reading notes §2.4) and the per-factor scoring of a set of directions (§2.5).

CORE_T_MAX = 2.0    # ±5 (the paper's grid) is far off a 16-d prior's typical set: the core grid |t| ≤ 2 is headlined
CORE_T_STEP = 0.5


def t_grid(t_max: float = 5.0, num_t: int = 11, core_t_max: float = CORE_T_MAX,
           core_step: float = CORE_T_STEP) -> np.ndarray:
  """The union of the paper's grid (num_t points on [−t_max, t_max]) and the core grid (step `core_step` on
  [−core_t_max, core_t_max]), sorted: one pass of generation serves both summaries."""
  full = np.linspace(-t_max, t_max, num_t)
  core = np.arange(-core_t_max, core_t_max + core_step / 2, core_step) if core_t_max > 0 else np.zeros(0)
  return np.unique(np.round(np.concatenate([full, core]), 9))


def summarize(t: Any, values: Any, reference: Any) -> dict[str, float]:
  """Scalar summaries of one statistic's control measure: t (T,), values (T, N) (NaN = failed measurement),
  reference (N,) the statistic on the unedited latents.

    mean_std           the std over latents averaged over t (the paper's curve, averaged);
    rel_std            mean_std / std(reference): ≈ 1 no control, 0 perfect (independent of the gain);
    r2_t               1 − Σ(v_ij − v̄_i)² / Σ(v_ij − v̄)²: the share of the variance of the traversal set explained by t;
    spearman           Spearman ρ of t against the per-t median (abs_spearman = |ρ|);
    monotone_fraction  the share of consecutive median steps with the sign of ρ;
    gain               (median at the largest t − median at the smallest)·sign(ρ) / std(reference);
    num_valid_fraction the share of finite measurements.
  """
  t = np.asarray(t, np.float64).reshape(-1)
  values = np.asarray(values, np.float64)
  if values.ndim != 2 or values.shape[0] != len(t):
    raise ValueError(f"values must have shape (T={len(t)}, N), got {values.shape}")
  reference = np.asarray(reference, np.float64).reshape(-1)
  reference = reference[np.isfinite(reference)]
  spread = float(np.std(reference)) if len(reference) > 1 else float("nan")
  finite = np.isfinite(values)
  nan = float("nan")
  out = dict(mean_std=nan, reference_std=spread, rel_std=nan, r2_t=nan, spearman=nan, abs_spearman=nan,
             monotone_fraction=nan, gain=nan, num_valid_fraction=float(finite.mean()) if finite.size else nan)
  rows = finite.any(axis=1)
  if rows.sum() < 2:
    return out
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    per_t_mean = np.nanmean(values[rows], axis=1)
    per_t_std = np.nanstd(values[rows], axis=1)
    medians = np.nanmedian(values[rows], axis=1)
  kept_t = t[rows]
  out["mean_std"] = float(per_t_std.mean())
  out["rel_std"] = out["mean_std"] / spread if spread > 0 else nan
  total = np.nansum((values[rows] - np.nanmean(values[rows])) ** 2)
  within = np.nansum((values[rows] - per_t_mean[:, None]) ** 2)
  out["r2_t"] = float(1 - within / total) if total > 0 else nan
  # Rounding noise of a factor that does not move (1e-7 of its spread) must not read as a monotone trend.
  still_tolerance = 1e-6 * spread if spread > 0 else 1e-12
  if np.ptp(medians) > still_tolerance:
    rho = float(stats.spearmanr(kept_t, medians).statistic)
    out.update(spearman=rho, abs_spearman=abs(rho))
    steps = np.sign(np.diff(medians))
    out["monotone_fraction"] = float(np.mean(steps == np.sign(rho))) if rho != 0 else 0.0
    out["gain"] = float((medians[-1] - medians[0]) * np.sign(rho) / spread) if spread > 0 else nan
  else:   # the factor does not move at all along the direction
    out.update(spearman=0.0, abs_spearman=0.0, monotone_fraction=0.0, gain=0.0)
  return out


def erf_fit(t: Any, medians: Any) -> dict[str, float]:
  """Least squares of medians ≈ a·erf(b·t/√2) + c (the paper's Fig. 5: the measured factor along a direction of a
  disentangled β-VAE follows the prior's CDF shape) → a, b, c and R². NaN entries are left out; NaN results when
  fewer than 4 points remain or the fit fails."""
  from scipy import optimize, special
  t = np.asarray(t, np.float64).reshape(-1)
  medians = np.asarray(medians, np.float64).reshape(-1)
  keep = np.isfinite(t) & np.isfinite(medians)
  t, medians = t[keep], medians[keep]
  nan = dict(a=float("nan"), b=float("nan"), c=float("nan"), r2=float("nan"))
  if len(t) < 4 or np.ptp(medians) == 0:
    return nan
  model = lambda x, a, b, c: a * special.erf(b * x / np.sqrt(2)) + c  # noqa: E731
  start = (np.ptp(medians) / 2 * np.sign(np.corrcoef(t, medians)[0, 1] or 1.0), 1.0, float(np.median(medians)))
  try:
    (a, b, c), _ = optimize.curve_fit(model, t, medians, p0=start, maxfev=5000)
  except (RuntimeError, optimize.OptimizeWarning):
    return nan
  residual = np.sum((medians - model(t, a, b, c)) ** 2)
  total = np.sum((medians - medians.mean()) ** 2)
  if b < 0:   # a·erf(−|b|x) = (−a)·erf(|b|x): report the positive-rate form
    a, b = -a, -b
  return dict(a=float(a), b=float(b), c=float(c), r2=float(1 - residual / total))


def grid_summaries(t: Any, values: Any, reference: Any, t_max: float = 5.0,
                   core_t_max: float = CORE_T_MAX) -> dict[str, dict[str, float]]:
  """`summarize` on the full grid (|t| ≤ t_max, the paper's) and on the core grid (|t| ≤ core_t_max)."""
  t = np.asarray(t, np.float64)
  values = np.asarray(values, np.float64)
  out = {"full": summarize(t[np.abs(t) <= t_max + 1e-9], values[np.abs(t) <= t_max + 1e-9], reference)}
  if core_t_max > 0:
    core = np.abs(t) <= core_t_max + 1e-9
    out["core"] = summarize(t[core], values[core], reference)
  return out


def factor_scores(generate_fn: Callable[[np.ndarray], Any], direction: Any, latents: Any,
                  estimate_fn: Callable[[np.ndarray], Any], names: Sequence[str], *, t_max: float = 5.0,
                  num_t: int = 11, core_t_max: float = CORE_T_MAX, batch_size: int = 64) -> dict[str, Any]:
  """The control measure of one direction for the factor names[0], with names[1:] as side effects.

  estimate_fn(images) → (B, len(names)) values (first column: the controlled factor). Returns the per-t curve of the
  controlled factor ("t", "mean", "std", "num_valid"), its full/core summaries ("summary"), and per side-effect
  statistic its full/core summaries ("side_effects"), plus "side_effect_abs_spearman" / "side_effect_abs_gain":
  the largest over the side effects on the core grid (an x direction should leave y and the scale alone).
  """
  latents = np.asarray(latents, np.float32)
  grid = t_grid(t_max, num_t, core_t_max)
  measured = control_measure(generate_fn, direction, latents, estimate_fn, t_values=grid, batch_size=batch_size)
  values = measured["values"]
  if values.ndim != 3 or values.shape[2] != len(names):
    raise ValueError(f"estimate_fn must return (B, {len(names)}) values for {list(names)}, got {values.shape[1:]}")
  reference = measure_images(generate_fn, estimate_fn, latents, batch_size)
  summaries = [grid_summaries(grid, values[:, :, k], reference[:, k], t_max, core_t_max) for k in range(len(names))]
  grid_name = "core" if core_t_max > 0 else "full"
  side = {name: summaries[k] for k, name in enumerate(names) if k > 0}
  worst = lambda key: max((abs(s[grid_name][key]) for s in side.values() if np.isfinite(s[grid_name][key])),  # noqa
                          default=float("nan"))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    medians = np.nanmedian(values[:, :, 0], axis=1)
  full = np.abs(grid) <= t_max + 1e-9
  return {"t": grid, "mean": measured["mean"][:, 0], "std": measured["std"][:, 0], "median": medians,
          "num_valid": measured["num_valid"][:, 0], "summary": summaries[0], "side_effects": side,
          "erf_fit": erf_fit(grid[full], medians[full]),
          "side_effect_abs_spearman": worst("abs_spearman"), "side_effect_abs_gain": worst("gain")}


def select_direction(generate_fn: Callable[[np.ndarray], Any], matrix: Any, latents: Any,
                     estimate_fn: Callable[[np.ndarray], Any], *, core_t_max: float = CORE_T_MAX, num_t: int = 5,
                     batch_size: int = 64) -> tuple[int, np.ndarray]:
  """k* = argmin over the columns of `matrix` (D, K) of rel_std of the first statistic of estimate_fn on
  `num_t` points of [−core_t_max, core_t_max], on `latents` (use latents disjoint from the scoring ones). NaN
  scores (nothing measured) never win. Returns (k*, the K scores)."""
  matrix = np.asarray(matrix, np.float32)
  if matrix.ndim != 2 or matrix.shape[1] < 1:
    raise ValueError(f"matrix must be (latent_dim, K >= 1), got {matrix.shape}")
  t_values = np.linspace(-core_t_max, core_t_max, num_t)
  latents = np.asarray(latents, np.float32)
  first = lambda images: np.asarray(estimate_fn(images), np.float64).reshape(len(images), -1)[:, 0]  # noqa: E731
  reference = measure_images(generate_fn, first, latents, batch_size)
  scores = np.array([summarize(t_values, control_measure(generate_fn, matrix[:, k], latents, first,
                                                         t_values=t_values, batch_size=batch_size)["values"],
                               reference)["rel_std"] for k in range(matrix.shape[1])])
  ranked = np.where(np.isfinite(scores), scores, np.inf)
  return int(np.argmin(ranked)), scores


# ---------------------------------------------------------------------------------------------------------------
# Does a learned factor model g̃ predict the measured factor? (Plumerault et al.'s Eqs. 9–11 against the generator)


def g_consistency(t: Any, medians: Any, predicted: Any, core_t_max: float = CORE_T_MAX) -> float:
  """max over |t| ≤ core_t_max of |predicted(t) − (median(t) − median(0))|: the learned g̃ against the measured
  factor's median move along its direction, both in the same units (convert the measurement first). t must contain
  0 (the offset of g̃ is unidentifiable from differences, so both curves are taken relative to t = 0). NaN when the
  median at 0 or every core point is missing."""
  t = np.asarray(t, np.float64).reshape(-1)
  medians = np.asarray(medians, np.float64).reshape(-1)
  predicted = np.asarray(predicted, np.float64).reshape(-1)
  if not (len(t) == len(medians) == len(predicted)):
    raise ValueError(f"t, medians and predicted must have one entry per t, got {len(t)}, {len(medians)}, "
                     f"{len(predicted)}")
  zero = np.flatnonzero(np.abs(t) < 1e-9)
  if not len(zero):
    raise ValueError(f"t must contain 0 (the common offset of both curves); got {t.tolist()}")
  gap = np.abs(predicted - (medians - medians[zero[0]]))
  core = (np.abs(t) <= core_t_max + 1e-9) & np.isfinite(gap)
  return float(gap[core].max()) if core.any() else float("nan")


def model_check(model: Any, generate_fn: Callable[[np.ndarray], Any], estimate_fn: Callable[[np.ndarray], Any],
                change_fn: Callable[[np.ndarray], np.ndarray], latents: Any, *, low_quantile: float = 0.1,
                high_quantile: float = 0.9, batch_size: int = 64, return_samples: bool = False) -> dict[str, Any]:
  """Eqs. 9–11 checked on images: does t = g̃(⟨u, z⟩) describe the factor that `estimate_fn` measures?

  model: a `directions.continuous.ContinuousDirection` (u, g̃, resample); estimate_fn(images) → (B,) values (NaN =
  failed); change_fn(values) → the measured factor in g̃'s units relative to its value at ⟨u, z⟩ = 0 (the offset of
  g̃ is unidentifiable, Eq. 8: calibrate it as the measured median there, and convert units, e.g. barycentre → pixels
  → fractions of the width). latents (N, D): draws of the prior.
  * density (Eq. 9): the measured factor over the prior draws against g̃(⟨u, z⟩) of the same draws, whose
    distribution is exactly Eq. 9's density: the Wasserstein-1 distance of the two distributions ("w1"), the
    per-draw mean |error| ("mean_abs_error": what the rest of z adds), both stds.
  * resampling (Eqs. 10–11): z moved along u so that g̃ is uniform on [g̃'s low_quantile, high_quantile] under the
    prior; the Kolmogorov–Smirnov statistic of the measured factor against that uniform law ("ks"), beside the same
    statistic before resampling ("ks_prior": the starting point) and for g̃ itself ("ks_model": ≈ 0 by construction).
  With return_samples also "samples": the measured factor before ("measured") and after ("resampled") resampling and
  g̃ of the prior draws ("predicted"), for pictures.
  """
  latents = np.asarray(latents, np.float64)
  if latents.ndim != 2 or latents.shape[0] < 8:
    raise ValueError(f"latents must be (N >= 8, latent_dim), got {latents.shape}")
  if not 0 < low_quantile < high_quantile < 1:
    raise ValueError(f"need 0 < low_quantile < high_quantile < 1, got {low_quantile}, {high_quantile}")

  def measure(z):
    values = measure_images(generate_fn, estimate_fn, z.astype(np.float32), batch_size)
    return np.asarray(change_fn(values.reshape(-1)), np.float64)

  predicted = model.g(latents @ model.u)
  measured = measure(latents)
  valid = np.isfinite(measured)
  if valid.sum() < 2:
    raise ValueError("the estimator measured fewer than 2 of the prior draws: nothing to compare g̃ with")
  low, high = (float(v) for v in np.quantile(predicted, [low_quantile, high_quantile]))
  uniform = stats.uniform(low, high - low)
  moved = model.resample(latents, uniform.ppf)
  after = measure(moved)
  after_valid = np.isfinite(after)
  density = dict(w1=float(stats.wasserstein_distance(measured[valid], predicted[valid])),
                 mean_abs_error=float(np.mean(np.abs(measured[valid] - predicted[valid]))),
                 std_measured=float(np.std(measured[valid])), std_model=float(np.std(predicted[valid])),
                 num_valid=int(valid.sum()))
  resampling = dict(low=low, high=high,
                    ks=float(stats.kstest(after[after_valid], uniform.cdf).statistic) if after_valid.any()
                    else float("nan"),
                    ks_prior=float(stats.kstest(measured[valid], uniform.cdf).statistic),
                    ks_model=float(stats.kstest(model.g(moved @ model.u), uniform.cdf).statistic),
                    num_valid=int(after_valid.sum()))
  out = {"density": density, "resampling": resampling}
  if return_samples:
    out["samples"] = dict(measured=measured, predicted=predicted, resampled=after)
  return out
