"""The real shapes3d / dSprites / CelebA through `tfds.data_source` (random access over array_record files).

`tfds.data_source` reads and decodes single records without TensorFlow; the data must have been prepared once in
array_record format (see docs/datasets.md). TFDS stores shapes3d and dSprites records in file order, not factor
order, so a factor → record index is built by scanning every record's labels once; the labels are cached as .npy
next to the TFDS data (or in `index_dir`) and reused while the record count matches.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Callable, Iterator

import numpy as np

from ganlatent_jax.data import dsprites_procedural as dsprites_lib
from ganlatent_jax.data import shapes3d_procedural as shapes3d_lib
from ganlatent_jax.data.base import GroundTruthData

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TfdsFactorSpec:
  """How a TFDS ground-truth dataset maps onto our factors."""
  tfds_name: str
  label_keys: tuple[str, ...]  # the TFDS feature of each factor, in our factor order
  factor_names: tuple[str, ...]
  factors_num_values: tuple[int, ...]
  observation_shape: tuple[int, int, int]
  binary: bool                 # dSprites images are stored as uint8 0/1 masks
  # The procedural twin's `identifiable_labels` rule and value counts (same grid, same images), if it has one.
  identifiable_labels: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
  identifiable_num_values: tuple[int, ...] | None = None


TFDS_FACTOR_SPECS = {
    "shapes3d": TfdsFactorSpec(
        "shapes3d",
        ("label_floor_hue", "label_wall_hue", "label_object_hue", "label_scale", "label_shape", "label_orientation"),
        shapes3d_lib.FACTOR_NAMES, shapes3d_lib.FACTORS_NUM_VALUES, (64, 64, 3), binary=False),
    "dsprites": TfdsFactorSpec(
        "dsprites",
        ("label_shape", "label_scale", "label_orientation", "label_x_position", "label_y_position"),
        dsprites_lib.FACTOR_NAMES, dsprites_lib.FACTORS_NUM_VALUES, (64, 64, 1), binary=True,
        identifiable_labels=dsprites_lib.identifiable_labels,
        identifiable_num_values=dsprites_lib.IDENTIFIABLE_NUM_VALUES),
}


def open_tfds_source(tfds_name: str, *, split: str, data_dir: str | None, download: bool):
  """`tfds.data_source(...)` with errors that tell the user what to do."""
  try:
    import tensorflow_datasets as tfds
  except ImportError as error:  # pragma: no cover - tensorflow_datasets is a dependency of the test extra
    raise ImportError(f"source='tfds' needs tensorflow_datasets (pip install tensorflow-datasets array_record) "
                      f"to read {tfds_name!r}") from error
  try:
    # tfds only defaults to array_record when no data_dir is given; random access needs it in every case.
    return tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=download,
                            builder_kwargs={"file_format": "array_record"})
  except Exception as error:
    raise RuntimeError(
        f"could not open TFDS dataset {tfds_name!r} (split {split!r}, data_dir {data_dir!r}): {error}. Prepare it "
        f"once in array_record format (this step needs TensorFlow): `tfds build {tfds_name} "
        f"--file_format=array_record` (see docs/datasets.md)") from error


def _record_image(source, index: int) -> np.ndarray:
  return np.asarray(source[int(index)]["image"])


class TfdsGroundTruthData(GroundTruthData):
  """The real shapes3d or dSprites (`name` in TFDS_FACTOR_SPECS) with the same interface as the procedural ones.

  sample_factors draws records uniformly, i.e. factors uniform over the grid for the complete datasets (every
  combination is stored once) and only existing combinations for partial data. sample_observations_from_factors
  picks, for each row, uniformly among the records with exactly those labels, and raises for an absent combination.
  """

  def __init__(self, name: str, *, split: str = "train", data_dir: str | None = None, download: bool = False,
               index_dir: str | None = None):
    if name not in TFDS_FACTOR_SPECS:
      raise ValueError(f"no TFDS factor spec for {name!r}; known: {sorted(TFDS_FACTOR_SPECS)}")
    self.spec = TFDS_FACTOR_SPECS[name]
    self.factor_names = self.spec.factor_names
    self.factors_num_values = self.spec.factors_num_values
    self.observation_shape = self.spec.observation_shape
    self.split = split
    self._source = open_tfds_source(self.spec.tfds_name, split=split, data_dir=data_dir, download=download)
    self.set_labels(self._cached_labels(index_dir))

  def set_labels(self, labels: np.ndarray):
    """Uses `labels` (num_records, num_factors) as the records' factors and builds the factor → records index."""
    self.labels = np.asarray(labels, np.int64)
    # Records sorted by their flat factor code: the records of code c are order[starts[c]:starts[c] + counts[c]].
    codes = np.ravel_multi_index(tuple(self.labels.T), self.factors_num_values)
    self._order = np.argsort(codes, kind="stable")
    self._counts = np.bincount(codes, minlength=int(np.prod(self.factors_num_values)))
    self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]])

  @property
  def identifiable_num_values(self) -> tuple[int, ...]:
    return self.spec.identifiable_num_values or super().identifiable_num_values

  def identifiable_labels(self, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if self.spec.identifiable_labels is None:
      return super().identifiable_labels(factors)
    return self.spec.identifiable_labels(factors)

  def __len__(self) -> int:
    return len(self.labels)

  def _cache_path(self, index_dir: str | None) -> str:
    if index_dir is None:
      index_dir = os.fspath(self._source.dataset_info.data_dir)
    split = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.split)
    return os.path.join(index_dir, f"ganlatent_factor_labels_{self.spec.tfds_name}_{split}.npy")

  def _cached_labels(self, index_dir: str | None) -> np.ndarray:
    path = self._cache_path(index_dir)
    if os.path.exists(path):
      labels = np.load(path)
      if labels.shape == (len(self._source), len(self.spec.label_keys)):
        return labels.astype(np.int64)
      log.warning("ignoring stale factor index %s (shape %s, dataset has %d records)", path, labels.shape,
                  len(self._source))
    labels = self._scan_labels()
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      np.save(path, labels.astype(np.int16))
    except OSError as error:  # a read-only data dir: the index still works, only uncached
      log.warning("could not cache the factor index at %s (%s); pass index_dir= to cache it", path, error)
    return labels

  def _scan_labels(self) -> np.ndarray:
    """(num_records, num_factors) labels of every record, in record order (one pass over the data)."""
    labels = np.zeros((len(self._source), len(self.spec.label_keys)), np.int64)
    for index in range(len(self._source)):
      record = self._source[index]
      try:
        labels[index] = [int(record[key]) for key in self.spec.label_keys]
      except KeyError as error:
        raise KeyError(f"TFDS {self.spec.tfds_name!r} record {index} has no feature {error}; features: "
                       f"{sorted(record)}") from error
    bad = (labels < 0) | (labels >= np.asarray(self.factors_num_values))
    if bad.any():
      row, column = np.argwhere(bad)[0]
      raise ValueError(f"TFDS {self.spec.tfds_name!r} record {row}: {self.spec.label_keys[column]} = "
                       f"{labels[row, column]} is outside [0, {self.factors_num_values[column]})")
    return labels

  def read_observations(self, records: np.ndarray) -> np.ndarray:
    """Images (N, *observation_shape) float32 in [0, 1] of record indices."""
    # One record at a time: batched __getitems__ is not available everywhere (e.g. under tfds.testing.mock_data).
    images = np.stack([_record_image(self._source, index) for index in records]) if len(records) else \
        np.zeros((0,) + self.observation_shape, np.uint8)
    if images.shape[1:] != self.observation_shape:
      raise ValueError(f"TFDS {self.spec.tfds_name!r} images have shape {images.shape[1:]}, expected "
                       f"{self.observation_shape}")
    if self.spec.binary:
      return (images > 0).astype(np.float32)
    return images.astype(np.float32) / 255.0

  def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
    return self.labels[random_state.randint(len(self.labels), size=num)]

  def sample(self, num: int, random_state: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    records = random_state.randint(len(self.labels), size=num)
    return self.labels[records], self.read_observations(records)

  def records_for_factors(self, factors: np.ndarray, random_state: np.random.RandomState | None) -> np.ndarray:
    """One record index per factor row, uniform among the records that carry exactly those labels."""
    factors = self.check_factors(factors)
    codes = np.ravel_multi_index(tuple(factors.T), self.factors_num_values)
    counts = self._counts[codes]
    if (counts == 0).any():
      row = int(np.flatnonzero(counts == 0)[0])
      combination = dict(zip(self.factor_names, factors[row].tolist()))
      raise ValueError(f"TFDS {self.spec.tfds_name!r} ({self.split}) has no record with factors {combination} "
                       f"(row {row}); {int((self._counts > 0).sum())} of {self._counts.size} combinations exist")
    if random_state is None:  # deterministic: the first record of each combination
      return self._order[self._starts[codes]]
    offsets = np.floor(random_state.random_sample(len(codes)) * counts).astype(np.int64)
    return self._order[self._starts[codes] + offsets]

  def sample_observations_from_factors(self, factors, random_state: np.random.RandomState | None) -> np.ndarray:
    return self.read_observations(self.records_for_factors(factors, random_state))


class TfdsImages:
  """An image dataset without factors (e.g. CelebA): square float32 images in [0, 1], resized to `size`.

  Each image is centre-cropped to a `crop`-pixel square (default: the largest centred square) and resized with
  Pillow's antialiased bicubic filter.
  """

  def __init__(self, name: str = "celeb_a", *, size: int = 64, crop: int | None = None, split: str = "train",
               data_dir: str | None = None, download: bool = False, image_key: str = "image"):
    if size < 1 or (crop is not None and crop < 1):
      raise ValueError(f"{name}: size and crop must be positive, got size={size}, crop={crop}")
    self.name, self.size, self.crop, self.split, self.image_key = name, size, crop, split, image_key
    self.observation_shape = (size, size, 3)
    self._source = open_tfds_source(name, split=split, data_dir=data_dir, download=download)

  def __len__(self) -> int:
    return len(self._source)

  def _prepare(self, image: np.ndarray) -> np.ndarray:
    from PIL import Image
    image = np.asarray(image)
    if image.ndim == 2:
      image = image[..., None]
    if image.shape[-1] == 1:
      image = np.repeat(image, 3, axis=-1)
    height, width = image.shape[:2]
    side = min(height, width) if self.crop is None else self.crop
    if side > min(height, width):
      raise ValueError(f"{self.name}: crop {side} is larger than an image of {height}×{width}")
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(np.ascontiguousarray(image[top:top + side, left:left + side, :3]))
    if side != self.size:
      square = square.resize((self.size, self.size), Image.Resampling.BICUBIC)
    return np.asarray(square, np.float32) / 255.0

  def images(self, indices) -> np.ndarray:
    """(N, size, size, 3) float32 in [0, 1] of record indices."""
    indices = np.asarray(indices, np.int64).reshape(-1)
    if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
      raise IndexError(f"{self.name}: record indices must be in [0, {len(self)}), "
                       f"got {indices.min()}…{indices.max()}")
    out = np.zeros((len(indices),) + self.observation_shape, np.float32)
    for row, index in enumerate(indices):
      out[row] = self._prepare(self._source[int(index)][self.image_key])
    return out

  def sample_images(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
    return self.images(random_state.randint(len(self), size=num))

  def iterate_batches(self, batch_size: int, random_state: np.random.RandomState | None = None, *,
                      drop_remainder: bool = True) -> Iterator[np.ndarray]:
    """One epoch of batches (batch_size, size, size, 3); shuffled when a random_state is given."""
    order = np.arange(len(self)) if random_state is None else random_state.permutation(len(self))
    stop = len(order) - len(order) % batch_size if drop_remainder else len(order)
    for start in range(0, stop, batch_size):
      yield self.images(order[start:start + batch_size])

  def __repr__(self) -> str:
    return f"TfdsImages({self.name!r}, split={self.split!r}, size={self.size}, crop={self.crop}, n={len(self)})"
