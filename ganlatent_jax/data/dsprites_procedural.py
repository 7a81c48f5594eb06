"""Procedural dSprites: binary 64×64 sprites with the factor grid of DeepMind's dSprites.

Factors (in the real dataset's order, without its constant colour factor): shape 3 (square, ellipse, heart),
scale 6 (0.5…1), orientation 40 (0…2π, both ends included as in the real data, so the first and last coincide),
position x 32 and position y 32 (0…1). Positions are the sprite centre in the frame: 0 puts it near the left/top
edge, 1 near the right/bottom edge, with a margin that keeps the largest sprite inside at any orientation. Scale is
relative to the frame. Pixels are tested at their centres with no anti-aliasing, so images are exactly 0 or 1.
"""
from __future__ import annotations

import numpy as np

from ganlatent_jax.data.base import GroundTruthData

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTORS_NUM_VALUES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALE_VALUES = np.linspace(0.5, 1.0, 6)
ORIENTATION_VALUES = np.linspace(0.0, 2.0 * np.pi, 40)
POSITION_VALUES = np.linspace(0.0, 1.0, 32)

RESOLUTION = 64
_SPRITE_SIZE = 0.28      # side of the square at scale 1, as a fraction of the frame
_POSITION_MARGIN = 0.22  # centre range [margin, 1 - margin]: > the half diagonal of the largest square (0.198)


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Whether sprite-local points (u right, v up, in units of the square's half side) are inside `shape`."""
  if shape == "square":
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
  if shape == "ellipse":  # 2:1, its long axis along u at orientation 0
    return (u / 1.25) ** 2 + (v / 0.62) ** 2 <= 1.0
  # Heart: the classic sextic (x² + y² − 1)³ − x² y³ <= 0 (lobes up, point down), which spans about
  # x ∈ [−1.14, 1.14], y ∈ [−1, 1.24]; shifted and scaled to fill the square's box like the other sprites.
  x, y = u * 1.2, v * 1.15 + 0.12
  return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0


def render_dsprites(factors: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
  """Binary images (N, resolution, resolution, 1) float32 of factor rows in FACTOR_NAMES order."""
  factors = np.asarray(factors, np.int64)
  num = len(factors)
  half_side = (_SPRITE_SIZE / 2.0 * SCALE_VALUES[factors[:, 1]]).astype(np.float32)[:, None, None]
  angle = ORIENTATION_VALUES[factors[:, 2]][:, None, None]
  span = 1.0 - 2.0 * _POSITION_MARGIN
  centre_x = (_POSITION_MARGIN + span * POSITION_VALUES[factors[:, 3]]) * resolution  # in pixels
  centre_y = (_POSITION_MARGIN + span * POSITION_VALUES[factors[:, 4]]) * resolution
  # Only a window around each sprite is rasterised (a sixth of the frame): its radius is at most the half
  # diagonal of the largest square.
  window = min(resolution, int(np.ceil(2 * _SPRITE_SIZE / np.sqrt(2.0) * resolution)) + 4)
  left = np.clip(np.floor(centre_x).astype(np.int64) - window // 2, 0, resolution - window)
  top = np.clip(np.floor(centre_y).astype(np.int64) - window // 2, 0, resolution - window)
  columns = left[:, None] + np.arange(window)  # (N, window) frame pixel indices
  rows = top[:, None] + np.arange(window)
  dx = ((columns + 0.5 - centre_x[:, None]) / resolution).astype(np.float32)[:, None, :]
  dy = ((centre_y[:, None] - rows - 0.5) / resolution).astype(np.float32)[:, :, None]  # v points up, rows down
  # Rotating the sprite by +angle (counter-clockwise on screen) = rotating the pixel offsets by -angle.
  cos, sin = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
  u = (cos * dx + sin * dy) / half_side
  v = (-sin * dx + cos * dy) / half_side
  inside = np.zeros((num, window, window), bool)
  for index, name in enumerate(SHAPE_NAMES):
    members = np.flatnonzero(factors[:, 0] == index)
    if members.size:
      inside[members] = _inside(name, u[members], v[members])
  images = np.zeros((num, resolution, resolution), np.float32)
  images[np.arange(num)[:, None, None], rows[:, :, None], columns[:, None, :]] = inside
  return images[..., None]


IDENTIFIABLE_NUM_VALUES = (3, 6, 39, 32, 32)


def identifiable_labels(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """`GroundTruthData.identifiable_labels` of dSprites (real or procedural: the same grid): orientation is told
  apart for hearts only, and its last value (2π) is its first (0).

  The 40 angles are k·2π/39. A square looks the same after a quarter turn and an ellipse after a half turn, and
  those turns are 9.75 and 19.5 grid steps: angles k and k + 10 of a square (k + 20 of an ellipse) differ by 2.3°
  (4.6°) of the shape's symmetry, a quarter (half) of the grid step, and their renders differ in fewer pixels than
  those of neighbouring angles. Only the heart has no symmetry."""
  labels = np.array(factors, np.int64, copy=True)
  labels[:, 2] = np.where(labels[:, 2] == len(ORIENTATION_VALUES) - 1, 0, labels[:, 2])
  mask = np.ones(labels.shape, bool)
  mask[:, 2] = labels[:, 0] == SHAPE_NAMES.index("heart")
  return labels, mask


class DSprites(GroundTruthData):
  """Procedural dSprites (64×64×1, binary) with the real dataset's five varying factors."""

  factor_names = FACTOR_NAMES
  factors_num_values = FACTORS_NUM_VALUES
  observation_shape = (RESOLUTION, RESOLUTION, 1)

  @property
  def factor_values(self) -> tuple[np.ndarray, ...]:
    return (np.arange(1.0, 4.0), SCALE_VALUES, ORIENTATION_VALUES, POSITION_VALUES, POSITION_VALUES)

  identifiable_num_values = IDENTIFIABLE_NUM_VALUES

  def identifiable_labels(self, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return identifiable_labels(factors)

  def sample_observations_from_factors(self, factors, random_state=None) -> np.ndarray:
    del random_state  # rendering is deterministic
    return render_dsprites(self.check_factors(factors))
