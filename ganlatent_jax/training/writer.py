"""Scalars and images to TensorBoard event files in the workdir (tensorboardX: no TensorFlow needed)."""
from __future__ import annotations

import os
from typing import Mapping

import jax
import numpy as np


def to_uint8_image(image: np.ndarray) -> np.ndarray:
  """HWC (or HW) float in [0, 1] or uint8 → HWC uint8 with 1 or 3 channels."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.dtype != np.uint8:
    image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
  return image


class MetricWriter:
  """Writes only on process 0; a no-op elsewhere, so callers need no `if`."""

  def __init__(self, logdir: str | os.PathLike, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._writer = None
    if self.enabled:
      from tensorboardX import SummaryWriter  # imported lazily: only process 0 writes
      self._writer = SummaryWriter(logdir=os.fspath(logdir), flush_secs=30)

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in values.items():
      self._writer.add_scalar(name, float(value), global_step=step)

  def images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    if self._writer is None:
      return
    for name, image in images.items():
      self._writer.add_image(name, to_uint8_image(image), global_step=step, dataformats="HWC")

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None
