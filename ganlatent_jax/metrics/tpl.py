"""PS-SC's Traversal Perceptual Length for unsupervised model selection (Zhu et al., CVPR 2021, Sec. 3.3,
Eqs. 10–12; upstream `metrics/traversal_perceptual_length.py` and zhuxinqimac/TPL-Evaluate).

The per-dimension TPL itself (Eqs. 11–12: traversals over lin(−4, 4), consecutive-frame distances summed, active
dimensions by the strict threshold `> S`, every upstream summary) is `metrics.generator_metrics.
traversal_perceptual_length`, which `python -m ganlatent_jax.evaluate` also uses; this module adds what PS-SC's
method needs around it:
  * `pixel_distance`: the mean squared pixel difference, the stand-in when no VGG16 weights are available (LPIPS-VGG
    is the paper's distance). A TPL measured with it is reported under its own name, `tpl_pixel`, never as `tpl`
    (`tpl_per_dimension` returns the key to use);
  * `rotated_axis_length` (Eq. 10): the accumulated distance along the c_i axis of the (c_i, c_j) plane rotated by α,
    the "perceptual anisotropy" premise of TPL (minima at α ∈ {−90°, 0°, 90°, 180°} for a disentangled pair);
  * `select_by_tpl`: rank models by TPL (lower = more disentangled) among those with at least `min_active` active
    dimensions — models encoding only a subset of the factors ("cheating" models) otherwise rank high.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.generators.base import Generator
from ganlatent_jax.metrics import generator_metrics as gm

TPL_GRID_BOUND = 4.0


def pixel_distance(x: jax.Array, y: jax.Array) -> jax.Array:
  """(B,) mean squared difference of two NHWC image batches (TPL's distance when LPIPS is unavailable)."""
  return jnp.mean(jnp.square(x - y), axis=tuple(range(1, x.ndim)))


def tpl_per_dimension(gen: Generator, rng: jax.Array, *, distance_fn: Optional[gm.DistanceFn] = None,
                      num_traversals: int = 50, points_per_dim: int = 49, active_threshold: float = 0.1,
                      batch_size: int = 100, **kwargs) -> tuple[str, dict[str, Any]]:
  """(metrics key, TPL summary) with the upstream protocol (c ~ N(0, I), each coordinate over lin(−4, 4) with
  `points_per_dim` points, active = mean > S). `distance_fn` None or `pixel_distance` → key 'tpl_pixel'; any other
  (an LPIPS model) → 'tpl'. Other keyword arguments go to `generator_metrics.traversal_perceptual_length`."""
  pixel = distance_fn is None or distance_fn is pixel_distance
  result = gm.traversal_perceptual_length(
      gen, rng, num_traversals=num_traversals, points_per_dim=points_per_dim, active_threshold=active_threshold,
      distance_fn=pixel_distance if pixel else distance_fn, batch_size=batch_size, **kwargs)
  result["distance"] = "pixel_mse" if pixel else type(distance_fn).__name__
  return ("tpl_pixel" if pixel else "tpl"), result


@functools.partial(jax.jit, static_argnames=("apply_distance",))
def _rotated_batch(gen: Generator, distance, starts: jax.Array, ends: jax.Array, *, apply_distance) -> jax.Array:
  images = gm.prepare_images(gen(jnp.concatenate([starts, ends])), gen.info.output_range)
  return apply_distance(distance, images[:starts.shape[0]], images[starts.shape[0]:])


def rotated_axis_length(gen: Generator, base: jax.Array, dims: tuple[int, int], angles_deg: Sequence[float], *,
                        grid_points: int = 16, distance_fn: Optional[gm.DistanceFn] = None) -> np.ndarray:
  """Eq. 10: for each angle α, Σ over the N×N grid (c_1, c_2) ∈ lin(−4, 4)² of
  dis(G(R(α)(c_1, c_2)), G(R(α)(c_1 + 8/N, c_2))), coordinates `dims` of the latent `base` (d,) set to the rotated
  point and the others kept. Returns (len(angles),) float64. `distance_fn` None = LPIPS (needs VGG16 weights)."""
  i, j = dims
  if i == j or not (0 <= i < gen.latent_dim and 0 <= j < gen.latent_dim):
    raise ValueError(f"dims={dims}: two different latent coordinates of 0…{gen.latent_dim - 1} needed")
  distance, apply_distance = gm._split_distance(distance_fn)
  values = np.linspace(-TPL_GRID_BOUND, TPL_GRID_BOUND, grid_points)
  c1, c2 = (a.ravel() for a in np.meshgrid(values, values, indexing="ij"))
  step = 2 * TPL_GRID_BOUND / grid_points
  base = np.asarray(base, np.float32).reshape(1, -1)
  out = []
  for angle in np.deg2rad(np.asarray(angles_deg, np.float64)):
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    latents = []
    for shift in (0.0, step):
      plane = np.stack([c1 + shift, c2]).T @ rotation.T                           # (N², 2) rotated points
      z = np.repeat(base, plane.shape[0], axis=0)
      z[:, i], z[:, j] = plane[:, 0], plane[:, 1]
      latents.append(jnp.asarray(z, jnp.float32))
    out.append(float(np.sum(np.asarray(_rotated_batch(gen, distance, *latents, apply_distance=apply_distance),
                                       np.float64))))
  return np.asarray(out)


def select_by_tpl(results: Mapping[str, Mapping[str, Any]], min_active: int, *, key: str = "tpl",
                  top_k: Optional[int] = None) -> dict[str, Any]:
  """Model selection by TPL: `results` maps a model name (e.g. 'seed3') to its TPL summary (needs `key` and
  'num_active'). Models with num_active < min_active are excluded (with the reason); the rest are ranked by
  ascending TPL, ties by name. Returns {'ranked': [{'name', key, 'num_active'}…], 'selected': the first `top_k`
  names (all if None), 'excluded': {name: reason}}."""
  ranked, excluded = [], {}
  for name in sorted(results):
    summary = results[name]
    if key not in summary or "num_active" not in summary:
      raise ValueError(f"select_by_tpl: model {name!r} has no {key!r} / 'num_active' (keys: {sorted(summary)})")
    value, active = float(summary[key]), int(summary["num_active"])
    if not np.isfinite(value):
      excluded[name] = f"{key} is {value}"
    elif active < min_active:
      excluded[name] = f"{active} active dims < min_active={min_active}"
    else:
      ranked.append({"name": name, key: value, "num_active": active})
  ranked.sort(key=lambda row: (row[key], row["name"]))
  names = [row["name"] for row in ranked]
  return {"ranked": ranked, "selected": names if top_k is None else names[:top_k], "excluded": excluded,
          "key": key, "min_active": int(min_active)}


__all__: Sequence[str] = ("pixel_distance", "tpl_per_dimension", "rotated_axis_length", "select_by_tpl")
