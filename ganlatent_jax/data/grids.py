"""Sample grids of the procedural datasets (the PNGs in docs/).

  python -m ganlatent_jax.data.grids docs/     # writes docs/shapes3d_procedural.png and docs/dsprites_procedural.png
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from ganlatent_jax.data.dsprites_procedural import DSprites
from ganlatent_jax.data.shapes3d_procedural import Shapes3D


def tile(images: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
  """(N, H, W, C) images in [0, 1] → one uint8 (rows·(H+gap)−gap, columns·(W+gap)−gap, 3) mosaic on white."""
  num, height, width, channels = images.shape
  rows = -(-num // columns)
  canvas = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), np.float32)
  for index, image in enumerate(images):
    top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
    canvas[top:top + height, left:left + width] = image if channels == 3 else np.repeat(image, 3, axis=-1)
  return np.round(canvas * 255).astype(np.uint8)


def shapes3d_grid(seed: int = 0, columns: int = 10) -> np.ndarray:
  """One row per shape; left to right orientation −30°…30° and growing scale, random hues."""
  dataset = Shapes3D()
  factors = dataset.sample_factors(4 * columns, np.random.RandomState(seed))
  steps = np.arange(columns)
  factors[:, 4] = np.repeat(np.arange(4), columns)
  factors[:, 5] = np.tile(np.round(steps * 14 / (columns - 1)).astype(int), 4)
  factors[:, 3] = np.tile(np.round(steps * 7 / (columns - 1)).astype(int), 4)
  return tile(dataset.sample_observations_from_factors(factors), columns)


def dsprites_grid(seed: int = 0, columns: int = 10) -> np.ndarray:
  """One row per shape at growing scale and orientation, then two rows of random sprites."""
  dataset = DSprites()
  factors = dataset.sample_factors(5 * columns, np.random.RandomState(seed))
  steps = np.arange(columns)
  factors[:3 * columns, 0] = np.repeat(np.arange(3), columns)
  factors[:3 * columns, 1] = np.tile(np.round(steps * 5 / (columns - 1)).astype(int), 3)
  factors[:3 * columns, 2] = np.tile(steps * 2, 3)
  factors[:3 * columns, 3:] = 16
  return tile(dataset.sample_observations_from_factors(factors), columns)


def main(argv=None):
  parser = argparse.ArgumentParser(description="Writes sample grids of the procedural datasets.")
  parser.add_argument("directory", nargs="?", default="docs")
  args = parser.parse_args(argv)
  from PIL import Image
  os.makedirs(args.directory, exist_ok=True)
  for name, grid in (("shapes3d_procedural.png", shapes3d_grid()), ("dsprites_procedural.png", dsprites_grid())):
    path = os.path.join(args.directory, name)
    Image.fromarray(grid).save(path, optimize=True)
    print(path, grid.shape)


if __name__ == "__main__":
  main()
