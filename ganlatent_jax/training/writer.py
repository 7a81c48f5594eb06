"""Scalars and images to TensorBoard event files in the workdir (tensorboardX: no TensorFlow needed).

A gs:// workdir: tensorboardX's own 'gs://' writer needs google-cloud-storage (another client than the gcsfs that
etils.epath uses here) and re-uploads the whole file at every flush (an object cannot be appended to). Here the events
go to a local file instead, and at each `flush` (the loop flushes at every checkpoint) and at `close` that file is
closed — which also drains tensorboardX's queue of pending events, which its `flush` does not — and uploaded through
ganlatent_jax.io as one object; the next events start a new file (`.partN`). So each event is uploaded once, with the
run's one filesystem client and credentials; TensorBoard reads all the files of a directory. What was logged after the
last checkpoint of a killed run is lost, like the steps after it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
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
    from ganlatent_jax import io
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._logdir = os.fspath(logdir)
    self._writer = None
    self._closed = not self.enabled
    self._local_dir = None   # a gs:// logdir: where the current event file is written before its upload
    self._parts = 0
    if self.enabled:
      if io.is_remote(self._logdir):
        self._local_dir = tempfile.mkdtemp(prefix="ganlatent_events-")
      else:
        self._writer = self._open()   # locally the event file exists from the start, as TensorBoard expects

  def _open(self):
    from tensorboardX import SummaryWriter  # imported lazily: only process 0 writes
    # tensorboardX names the file by the second it was opened in (and the host): a second writer opened in the same
    # second in the same directory (a run resumed at once, a test) would truncate the first one's file. The
    # nanoseconds within the second make the name unique and keep name order = opening order, which
    # training.events.read_scalars relies on (the newest file's value wins).
    suffix = f".{time.time_ns() % 1_000_000_000:09d}"
    if self._local_dir is None:
      return SummaryWriter(logdir=self._logdir, flush_secs=30, filename_suffix=suffix)
    self._parts += 1
    return SummaryWriter(logdir=self._local_dir, flush_secs=30, filename_suffix=f"{suffix}.part{self._parts}")

  def _active(self):
    if self._writer is None and not self._closed:
      self._writer = self._open()
    return self._writer

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    writer = self._active()
    if writer is None:
      return
    for name, value in values.items():
      writer.add_scalar(name, float(value), global_step=step)

  def images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    writer = self._active()
    if writer is None:
      return
    for name, image in images.items():
      writer.add_image(name, to_uint8_image(image), global_step=step, dataformats="HWC")

  def flush(self) -> None:
    if self._writer is None:
      return
    if self._local_dir is None:
      self._writer.flush()
    else:
      self._upload_part()

  def _upload_part(self) -> None:
    """Closes the current local event file and uploads it whole to the remote logdir."""
    from ganlatent_jax import io
    self._writer.close()
    self._writer = None
    for name in sorted(os.listdir(self._local_dir)):
      path = os.path.join(self._local_dir, name)
      with open(path, "rb") as f:
        io.write_bytes(f"{self._logdir.rstrip('/')}/{name}", f.read())
      os.unlink(path)

  def close(self) -> None:
    if self._writer is not None:
      if self._local_dir is None:
        self._writer.close()
      else:
        self._upload_part()
    self._writer = None
    self._closed = True
    if self._local_dir is not None:
      shutil.rmtree(self._local_dir, ignore_errors=True)
      self._local_dir = None
