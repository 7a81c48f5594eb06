"""TFDS sources (real shapes3d / dSprites / CelebA) under tfds.testing.mock_data: no download, no TensorFlow."""
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from ganlatent_jax import data  # noqa: E402
from ganlatent_jax.data import tfds_sources  # noqa: E402

NUM_RECORDS = 40
EXPECTED = {"shapes3d": ((10, 10, 10, 8, 4, 15), (64, 64, 3)), "dsprites": ((3, 6, 40, 32, 32), (64, 64, 1))}


@pytest.fixture
def mock_tfds():
  with tfds.testing.mock_data(num_examples=NUM_RECORDS):
    yield


@pytest.fixture(params=sorted(EXPECTED))
def real(request, mock_tfds, tmp_path):
  return request.param, data.get_dataset(request.param, source="tfds", index_dir=str(tmp_path))


def test_same_interface_as_the_procedural_dataset(real):
  name, dataset = real
  procedural = data.get_dataset(name)
  assert isinstance(dataset, tfds_sources.TfdsGroundTruthData)
  assert tuple(dataset.factors_num_values) == EXPECTED[name][0] == tuple(procedural.factors_num_values)
  assert tuple(dataset.factor_names) == tuple(procedural.factor_names)
  assert tuple(dataset.observation_shape) == EXPECTED[name][1]
  assert dataset.num_factors == procedural.num_factors and len(dataset) == NUM_RECORDS
  # The same grid, so the same identifiable labels (dSprites' orientation: hearts only, 2π = 0).
  assert dataset.identifiable_num_values == procedural.identifiable_num_values
  factors = procedural.sample_factors(200, np.random.RandomState(0))
  for got, want in zip(dataset.identifiable_labels(factors), procedural.identifiable_labels(factors)):
    np.testing.assert_array_equal(got, want)


def test_sample_returns_the_records_labels_and_images(real):
  name, dataset = real
  factors, images = dataset.sample(6, np.random.RandomState(0))
  assert factors.shape == (6, dataset.num_factors) and factors.dtype == np.int64
  assert ((factors >= 0) & (factors < np.asarray(dataset.factors_num_values))).all()
  assert images.shape == (6,) + EXPECTED[name][1] and images.dtype == np.float32
  assert images.min() >= 0.0 and images.max() <= 1.0
  if name == "dsprites":
    assert set(np.unique(images)) <= {0.0, 1.0}
  # Every sampled row is some record's labels, and the image is one with exactly those labels.
  again = dataset.sample_observations_from_factors(factors, np.random.RandomState(1))
  for row in range(6):
    matches = np.flatnonzero((dataset.labels == factors[row]).all(axis=1))
    assert any(np.array_equal(again[row], dataset.read_observations([m])[0]) for m in matches)


def test_labels_are_read_from_the_tfds_features(real):
  name, dataset = real
  source = tfds.data_source(name, split="train")
  for index in (0, 7, NUM_RECORDS - 1):
    record = source[index]
    assert dataset.labels[index].tolist() == [int(record[key]) for key in dataset.spec.label_keys]
    expected = np.asarray(record["image"], np.float32)
    expected = (expected > 0).astype(np.float32) if name == "dsprites" else expected / 255.0
    np.testing.assert_array_equal(dataset.read_observations([index])[0], expected)


def test_duplicate_labels_pick_among_matching_records(real):
  """Mock labels are random: a combination may sit in several records; each is picked, none other."""
  name, dataset = real
  labels = dataset.labels.copy()
  labels[[3, 11, 29]] = labels[0]
  dataset.set_labels(labels)
  picks = dataset.records_for_factors(np.repeat(labels[:1], 300, axis=0), np.random.RandomState(1))
  assert set(picks.tolist()) == {0, 3, 11, 29}
  assert dataset.records_for_factors(labels[[0, 0]], None).tolist() == [0, 0]  # no random_state: the first record
  singles = dataset.records_for_factors(labels[[5, 17]], np.random.RandomState(2))
  np.testing.assert_array_equal(labels[singles], labels[[5, 17]])


def test_absent_combination_is_a_clear_error(real):
  name, dataset = real
  all_codes = set(np.ravel_multi_index(tuple(dataset.labels.T), dataset.factors_num_values).tolist())
  absent = next(c for c in range(10 ** 6) if c not in all_codes)
  factors = np.asarray(np.unravel_index([absent], dataset.factors_num_values)).T
  with pytest.raises(ValueError, match=r"has no record with factors \{'" + dataset.factor_names[0]):
    dataset.sample_observations_from_factors(factors, np.random.RandomState(0))


def test_factor_index_is_cached_and_reused(mock_tfds, tmp_path, monkeypatch):
  first = data.dsprites(source="tfds", index_dir=str(tmp_path))
  cached = list(tmp_path.glob("ganlatent_factor_labels_dsprites_train.npy"))
  assert len(cached) == 1
  monkeypatch.setattr(tfds_sources.TfdsGroundTruthData, "_scan_labels",
                      lambda self: pytest.fail("the cached index should have been used"))
  second = data.dsprites(source="tfds", index_dir=str(tmp_path))
  np.testing.assert_array_equal(first.labels, second.labels)


def test_stale_index_is_rebuilt(mock_tfds, tmp_path):
  path = tmp_path / "ganlatent_factor_labels_shapes3d_train.npy"
  np.save(path, np.zeros((3, 6), np.int16))
  dataset = data.shapes3d(source="tfds", index_dir=str(tmp_path))
  assert len(dataset.labels) == NUM_RECORDS and np.load(path).shape == (NUM_RECORDS, 6)


def test_missing_data_names_the_fix(tmp_path):
  with pytest.raises(RuntimeError, match="tfds build shapes3d --file_format=array_record"):
    data.shapes3d(source="tfds", data_dir=str(tmp_path))


@pytest.mark.parametrize("size,crop", [(32, None), (64, 140), (178, None)])
def test_celeb_a_images(mock_tfds, size, crop):
  faces = data.celeb_a(size=size, crop=crop)
  assert len(faces) == NUM_RECORDS and faces.observation_shape == (size, size, 3)
  images = faces.sample_images(5, np.random.RandomState(0))
  assert images.shape == (5, size, size, 3) and images.dtype == np.float32
  assert images.min() >= 0.0 and images.max() <= 1.0
  if size == 178:  # no resize: exactly the centred square of the stored 218×178 image
    raw = np.asarray(tfds.data_source("celeb_a", split="train")[3]["image"])
    np.testing.assert_array_equal(faces.images([3])[0], raw[20:198] / np.float32(255.0))


def test_celeb_a_batches_cover_one_epoch(mock_tfds):
  faces = data.get_dataset("celeb_a", source="tfds", size=16)
  batches = list(faces.iterate_batches(16, np.random.RandomState(0)))
  assert [b.shape for b in batches] == [(16, 16, 16, 3)] * (NUM_RECORDS // 16)
  ordered = list(faces.iterate_batches(16, drop_remainder=False))
  assert sum(len(b) for b in ordered) == NUM_RECORDS
  np.testing.assert_array_equal(ordered[0][:2], faces.images([0, 1]))
  with pytest.raises(ValueError, match="crop 300 is larger"):
    data.celeb_a(size=16, crop=300).images([0])


def test_the_gan_engine_reads_only_a_process_s_rows_of_the_same_global_batch(real):
  """Multi-process data (issue 20): `_gan_data.real_images(..., rows)` is rows of the one global batch the same rng
  draws, whatever the rows; with all rows it is `dataset.sample(num, rng)[1]` (the single-process batch)."""
  from ganlatent_jax.methods import _gan_data
  _, dataset = real
  whole = dataset.sample(8, np.random.RandomState(3))[1]
  np.testing.assert_array_equal(_gan_data.real_images(dataset, 8, np.random.RandomState(3)), whole)
  for rows in (slice(0, 4), slice(4, 8), slice(2, 6)):
    np.testing.assert_array_equal(_gan_data.real_images(dataset, 8, np.random.RandomState(3), rows), whole[rows])


@pytest.mark.parametrize("source", ["procedural_dsprites", "procedural_shapes3d", "celeb_a"])
def test_real_images_rows_of_procedural_and_image_only_sources(mock_tfds, source):
  from ganlatent_jax.methods import _gan_data
  if source == "celeb_a":
    dataset = data.get_dataset("celeb_a", source="tfds", size=16)
    whole = dataset.sample_images(6, np.random.RandomState(1))
  else:
    name = source.split("_")[1]
    dataset = data.get_dataset(name, source="procedural", **({"resolution": 16} if name == "shapes3d" else {}))
    whole = dataset.sample(6, np.random.RandomState(1))[1]
  np.testing.assert_array_equal(_gan_data.real_images(dataset, 6, np.random.RandomState(1)), whole)
  np.testing.assert_array_equal(_gan_data.real_images(dataset, 6, np.random.RandomState(1), slice(3, 6)), whole[3:])
