"""Pictures: sample grids, latent traversals (rows = directions, columns = shifts), before/after contact sheets."""
from __future__ import annotations

import functools
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

from ganlatent_jax import io
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.directions import spaces
from ganlatent_jax.generators.base import Generator


def to_display(images, output_range=(-1.0, 1.0)) -> np.ndarray:
  """NHWC images in `output_range` → float32 [0, 1] with 3 channels."""
  lo, hi = output_range
  images = (np.asarray(images, np.float32) - lo) / (hi - lo)
  images = np.clip(images, 0.0, 1.0)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return images


def image_grid(images: np.ndarray, pad: int = 2, background: float = 1.0) -> np.ndarray:
  """(rows, cols, H, W, C) float [0, 1] → one uint8 HWC picture with `pad` pixels between cells."""
  rows, cols, h, w, c = images.shape
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), background, np.float32)
  for r in range(rows):
    for col in range(cols):
      y, x = pad + r * (h + pad), pad + col * (w + pad)
      grid[y:y + h, x:x + w] = images[r, col]
  return (grid * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str | os.PathLike, image: np.ndarray) -> str:
  """Writes a PNG atomically (io.open_atomic: process 0 only in a multi-process run)."""
  path = os.fspath(path)
  with io.open_atomic(path, "wb") as f:
    Image.fromarray(np.asarray(image)).save(f, format="PNG")
  return path


@functools.partial(jax.jit, static_argnames=("space", "static_kwargs"))
def _render(gen: Generator, latents: jax.Array, space: str, array_kwargs: dict, static_kwargs: tuple) -> jax.Array:
  return spaces.render(gen, latents, space, **array_kwargs, **dict(static_kwargs))


def _render_batched(gen: Generator, latents: jax.Array, space: str, batch_size: int, **gen_kwargs) -> np.ndarray:
  """Renders in batches through one module-level jit (compiled once per generator structure, space, static kwargs
  and shapes — not once per picture): array kwargs (class vectors) are traced, the rest (truncation) static."""
  array_kwargs = {k: v for k, v in gen_kwargs.items() if isinstance(v, (jax.Array, np.ndarray))}
  static_kwargs = tuple(sorted((k, v) for k, v in gen_kwargs.items() if k not in array_kwargs))
  chunks = [np.asarray(_render(gen, latents[i:i + batch_size], space, array_kwargs, static_kwargs))
            for i in range(0, latents.shape[0], batch_size)]
  return np.concatenate(chunks, axis=0)


def traversal_images(gen: Generator, directions: Directions, latents: jax.Array, span=(-3.0, 3.0), steps: int = 7,
                     w_truncation: float | None = None, w_avg=None, batch_size: int = 32,
                     **gen_kwargs) -> np.ndarray:
  """(K·N, steps, H, W, C) display images: for each direction k and latent n, the shift from span[0] to span[1].

  `w_truncation` truncates W latents towards `w_avg` before the shift; `gen_kwargs` go to the generator (e.g.
  BigGAN's own `truncation`).
  """
  z = jnp.asarray(latents)
  base = spaces.to_space(gen, z, directions.space, w_truncation, w_avg)
  shifts = np.linspace(span[0], span[1], steps, dtype=np.float32)
  k_count, n = directions.num_directions, z.shape[0]
  coefficients = np.zeros((k_count, n, steps, k_count), np.float32)
  for k in range(k_count):
    coefficients[k, :, :, k] = shifts[None, :]
  coefficients = coefficients.reshape(-1, k_count)
  repeated = jnp.repeat(jnp.tile(base, (k_count,) + (1,) * (base.ndim - 1)), steps, axis=0)
  shifted = directions.shift(repeated, jnp.asarray(coefficients))
  images = _render_batched(gen, shifted, directions.space, batch_size, **gen_kwargs)
  images = to_display(images, gen.info.output_range)
  return images.reshape(k_count * n, steps, *images.shape[1:])


def traversal_grid(gen: Generator, directions: Directions, latents, span=(-3.0, 3.0), steps: int = 7,
                   path: str | os.PathLike | None = None, **kwargs) -> np.ndarray:
  """A traversal picture: rows = directions (× latents), columns = shifts. Saved as PNG when `path` is given."""
  grid = image_grid(traversal_images(gen, directions, latents, span, steps, **kwargs))
  if path is not None:
    save_png(path, grid)
  return grid


def sample_grid(gen: Generator, rng: jax.Array, num: int = 16, ncols: int = 8,
                path: str | os.PathLike | None = None, **gen_kwargs) -> np.ndarray:
  z = gen.sample_z(rng, num)
  images = to_display(_render_batched(gen, z, "z", 32, **gen_kwargs), gen.info.output_range)
  return images_to_grid(images, ncols, path)


def images_to_grid(images: np.ndarray, ncols: int = 8, path: str | os.PathLike | None = None) -> np.ndarray:
  """(N, H, W, C) float [0, 1] → grid with `ncols` columns (blank cells pad the last row)."""
  n, h, w, c = images.shape
  rows = -(-n // ncols)
  padded = np.ones((rows * ncols, h, w, c), np.float32)
  padded[:n] = images
  grid = image_grid(padded.reshape(rows, ncols, h, w, c))
  if path is not None:
    save_png(path, grid)
  return grid


def _label(image: np.ndarray, text: str, height: int = 14) -> np.ndarray:
  canvas = Image.new("RGB", (image.shape[1], height), (255, 255, 255))
  ImageDraw.Draw(canvas).text((4, 1), text, fill=(0, 0, 0))
  return np.concatenate([np.asarray(canvas), image], axis=0)


def contact_sheet(grids: Sequence[np.ndarray], labels: Sequence[str], gap: int = 8,
                  path: str | os.PathLike | None = None) -> np.ndarray:
  """Grids side by side with a label above each (e.g. directions before / after refinement)."""
  labelled = [_label(g, t) for g, t in zip(grids, labels)]
  height = max(g.shape[0] for g in labelled)
  parts = []
  for i, g in enumerate(labelled):
    if g.shape[0] < height:
      g = np.concatenate([g, np.full((height - g.shape[0], g.shape[1], 3), 255, np.uint8)], axis=0)
    parts.append(g)
    if i < len(labelled) - 1:
      parts.append(np.full((height, gap, 3), 255, np.uint8))
  sheet = np.concatenate(parts, axis=1)
  if path is not None:
    save_png(path, sheet)
  return sheet


def compare_traversals(gen: Generator, before: Directions, after: Directions, latents, labels=("before", "after"),
                       path=None, **kwargs) -> np.ndarray:
  grids = [traversal_grid(gen, d, latents, **kwargs) for d in (before, after)]
  return contact_sheet(grids, labels, path=path)
