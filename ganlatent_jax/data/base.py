"""The ground-truth data interface of disentanglement_lib, in numpy.

A ground-truth dataset is a finite grid of factors of variation (each an integer in [0, factors_num_values[i])) and
a way to draw an observation for a factor combination. Observations are float32 NHWC images in [0, 1].
`random_state` is always a `numpy.random.RandomState`, so results are reproducible from a seed and independent of jax.
"""
from __future__ import annotations

import abc
from typing import Sequence

import numpy as np


class GroundTruthData(abc.ABC):
  """Base class: subclasses set `factor_names`, `factors_num_values`, `observation_shape` and implement
  `sample_observations_from_factors`; everything else follows."""

  factor_names: tuple[str, ...] = ()
  factors_num_values: tuple[int, ...] = ()
  observation_shape: tuple[int, int, int] = (0, 0, 0)

  @property
  def num_factors(self) -> int:
    return len(self.factors_num_values)

  def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
    """(num, num_factors) int64, each factor uniform over its values (independently, as in disentanglement_lib)."""
    columns = [random_state.randint(size, size=num) for size in self.factors_num_values]
    return np.stack(columns, axis=1).astype(np.int64) if columns else np.zeros((num, 0), np.int64)

  @abc.abstractmethod
  def sample_observations_from_factors(self, factors: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
    """(num, *observation_shape) float32 images in [0, 1] for the given (num, num_factors) factors."""

  def sample(self, num: int, random_state: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """(factors (num, num_factors) int64, observations (num, *observation_shape) float32 in [0, 1])."""
    factors = self.sample_factors(num, random_state)
    return factors, self.sample_observations_from_factors(factors, random_state)

  def sample_observations(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
    return self.sample(num, random_state)[1]

  @property
  def identifiable_num_values(self) -> tuple[int, ...]:
    """How many values of each factor an image can tell apart (see `identifiable_labels`)."""
    return tuple(self.factors_num_values)

  def identifiable_labels(self, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, mask), both (N, num_factors): each factor value in the form an observation determines, and whether
    the observation determines it at all. The identity and all True unless a dataset renders distinct factor values
    as the same image (a symmetric shape's orientation, an angle grid that includes both 0 and 2π); measures that
    judge images by their factors (`metrics.quality`) must not ask for what no image can show."""
    factors = np.asarray(factors, np.int64)
    return factors, np.ones(factors.shape, bool)

  def check_factors(self, factors: np.ndarray) -> np.ndarray:
    """`factors` as a (N, num_factors) int64 array; a clear error for a wrong width or an out-of-range value."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != self.num_factors:
      raise ValueError(f"{type(self).__name__}: factors must have shape (N, {self.num_factors}) for "
                       f"{self.factor_names}, got {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
      raise ValueError(f"{type(self).__name__}: factors must be integer class indices, got dtype {factors.dtype}")
    sizes = np.asarray(self.factors_num_values)
    bad = (factors < 0) | (factors >= sizes)
    if bad.any():
      row, column = np.argwhere(bad)[0]
      raise ValueError(f"{type(self).__name__}: factor {self.factor_names[column]!r} = {factors[row, column]} "
                       f"(row {row}) is outside [0, {sizes[column]})")
    return factors.astype(np.int64)


def hsv_hue_to_rgb(hue: np.ndarray | Sequence[float]) -> np.ndarray:
  """RGB (…, 3) float32 of hues in [0, 1) at full saturation and value (the colours of 3DShapes)."""
  hue = np.asarray(hue, np.float32)
  # Each channel is a trapezoid of the hue circle: clip(|6h - k| - 1) for the channel's offset k.
  six = (hue[..., None] * 6.0) % 6.0
  offsets = np.asarray([3.0, 2.0, 4.0], np.float32)  # red peaks at 0 (=6), green at 2, blue at 4
  distance = np.abs(six - offsets)
  red = np.clip(distance[..., 0] - 1.0, 0.0, 1.0)
  green = np.clip(2.0 - distance[..., 1], 0.0, 1.0)
  blue = np.clip(2.0 - distance[..., 2], 0.0, 1.0)
  return np.stack([red, green, blue], axis=-1).astype(np.float32)
