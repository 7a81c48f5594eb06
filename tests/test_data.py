"""Procedural ground-truth datasets: the disentanglement_lib interface, determinism, and that every factor shows."""
import colorsys
import subprocess
import sys

import numpy as np
import pytest

from ganlatent_jax import data
from ganlatent_jax.data import dsprites_procedural, shapes3d_procedural

EXPECTED = {
    "shapes3d": dict(factor_names=("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
                     factors_num_values=(10, 10, 10, 8, 4, 15), observation_shape=(64, 64, 3)),
    "dsprites": dict(factor_names=("shape", "scale", "orientation", "pos_x", "pos_y"),
                     factors_num_values=(3, 6, 40, 32, 32), observation_shape=(64, 64, 1)),
}
NAMES = sorted(EXPECTED)


@pytest.fixture(scope="module", params=NAMES)
def named_dataset(request):
  return request.param, data.get_dataset(request.param)


def test_factor_grid_matches_the_real_datasets(named_dataset):
  name, dataset = named_dataset
  expected = EXPECTED[name]
  assert tuple(dataset.factor_names) == expected["factor_names"]
  assert tuple(dataset.factors_num_values) == expected["factors_num_values"]
  assert tuple(dataset.observation_shape) == expected["observation_shape"]
  assert dataset.num_factors == len(expected["factors_num_values"])
  assert [len(values) for values in dataset.factor_values] == list(expected["factors_num_values"])


def test_factor_values_match_the_real_definitions():
  np.testing.assert_allclose(shapes3d_procedural.SCALE_VALUES[[0, -1]], [0.75, 1.25])
  np.testing.assert_allclose(shapes3d_procedural.ORIENTATION_DEGREES[[0, 7, -1]], [-30.0, 0.0, 30.0])
  np.testing.assert_allclose(shapes3d_procedural.HUE_VALUES, np.arange(10) / 10)
  assert shapes3d_procedural.SHAPE_NAMES == ("cube", "cylinder", "sphere", "capsule")
  np.testing.assert_allclose(dsprites_procedural.SCALE_VALUES[[0, -1]], [0.5, 1.0])
  np.testing.assert_allclose(dsprites_procedural.ORIENTATION_VALUES[[0, -1]], [0.0, 2 * np.pi])
  np.testing.assert_allclose(dsprites_procedural.POSITION_VALUES[[0, -1]], [0.0, 1.0])


def test_sample_shapes_dtypes_and_ranges(named_dataset):
  name, dataset = named_dataset
  factors, images = dataset.sample(24, np.random.RandomState(0))
  assert factors.shape == (24, dataset.num_factors) and factors.dtype == np.int64
  assert ((factors >= 0) & (factors < np.asarray(dataset.factors_num_values))).all()
  assert images.shape == (24,) + tuple(dataset.observation_shape) and images.dtype == np.float32
  assert images.min() >= 0.0 and images.max() <= 1.0
  if name == "dsprites":
    assert set(np.unique(images)) <= {0.0, 1.0}
  assert dataset.sample_observations(5, np.random.RandomState(1)).shape == (5,) + tuple(dataset.observation_shape)
  assert dataset.sample_factors(7, np.random.RandomState(2)).shape == (7, dataset.num_factors)


def test_same_factors_render_identically(named_dataset):
  name, dataset = named_dataset
  factors = dataset.sample_factors(16, np.random.RandomState(3))
  first = dataset.sample_observations_from_factors(factors, np.random.RandomState(4))
  again = data.get_dataset(name).sample_observations_from_factors(factors, np.random.RandomState(5))
  np.testing.assert_array_equal(first, again)
  np.testing.assert_array_equal(first[3:4], dataset.sample_observations_from_factors(factors[3:4], None))


def test_cached_shapes3d_equals_the_direct_renderer():
  factors = data.shapes3d().sample_factors(6, np.random.RandomState(6))
  np.testing.assert_array_equal(data.shapes3d().sample_observations_from_factors(factors),
                                data.render_shapes3d(factors))


BASES = {"shapes3d": [1, 4, 7, 3, 0, 7], "dsprites": [2, 5, 0, 16, 16]}  # dSprites base: a heart (no symmetry)


def test_each_factor_changed_alone_changes_the_image(named_dataset):
  name, dataset = named_dataset
  base = np.asarray(BASES[name])
  for factor, size in enumerate(dataset.factors_num_values):
    rows = np.repeat(base[None], size, axis=0)
    rows[:, factor] = np.arange(size)
    images = dataset.sample_observations_from_factors(rows, None)
    reference = images[base[factor]]
    same = [value for value in range(size) if value != base[factor] and np.array_equal(images[value], reference)]
    if name == "dsprites" and dataset.factor_names[factor] == "orientation":
      assert same == [size - 1]  # 2π is 0 again, as in the real dSprites
    else:
      assert not same, f"{name}: {dataset.factor_names[factor]} values {same} render like {base[factor]}"


def test_hue_palette_is_full_saturation_hsv():
  hues = np.arange(10) / 10
  expected = [colorsys.hsv_to_rgb(h, 1.0, 1.0) for h in hues]
  np.testing.assert_allclose(data.hsv_hue_to_rgb(hues), expected, atol=1e-6)


def _hue(rgb):
  return colorsys.rgb_to_hsv(*[float(c) for c in rgb])[0]


@pytest.mark.parametrize("shape", range(4))
def test_each_surface_shows_its_own_hue(shape):
  floor, wall, item = 2, 5, 8
  factors = np.asarray([[floor, wall, item, 4, shape, 3]])
  image = data.render_shapes3d(factors)[0]
  weights = shapes3d_procedural.trace_geometry([shape], [4], [3])[0]
  for surface, hue_index in enumerate((floor, wall, item)):
    pure = weights[..., surface] > 0.3
    assert pure.sum() > 20
    row, column = np.argwhere(pure & (weights.sum(-1) == weights[..., surface]))[0]
    assert abs(_hue(image[row, column]) - hue_index / 10) < 1e-3


def test_wall_corner_moves_with_orientation():
  """The corner is where the two differently lit walls meet: its column in the top row moves monotonically."""
  weights = shapes3d_procedural.trace_geometry(np.full(15, 2), np.zeros(15, int), np.arange(15))
  top_row = weights[:, 0, :, shapes3d_procedural.WALL]
  corner = np.abs(np.diff(top_row, axis=1)).argmax(axis=1)
  assert np.all(np.diff(corner) < 0) or np.all(np.diff(corner) > 0)
  assert abs(int(corner[-1]) - int(corner[0])) > 16
  assert abs(int(corner[7]) - 31) <= 2  # centred at orientation 0


def test_floor_meets_the_walls_inside_the_frame():
  weights = shapes3d_procedural.trace_geometry([0, 3, 3], [0, 7, 7], [7, 0, 14])
  floor_rows = np.flatnonzero(weights[0, :, 0, shapes3d_procedural.FLOOR] > 0.5)
  assert 0.3 * 64 < floor_rows.min() < 0.7 * 64 and floor_rows.max() == 63
  assert weights.sum(-1).min() > 0.2  # every pixel sees a lit surface: no ray escapes the room


@pytest.mark.parametrize("shape", range(4))
def test_object_grows_with_scale(shape):
  weights = shapes3d_procedural.trace_geometry(np.full(8, shape), np.arange(8), np.full(8, 7))
  area = (weights[..., shapes3d_procedural.OBJECT] > 0).sum(axis=(1, 2))
  assert np.all(np.diff(area) > 0) and area[0] > 60


def test_dsprites_sprite_follows_position_scale_and_shape():
  dataset = data.dsprites()
  rows = np.asarray([[0, 5, 0, 0, 16], [0, 5, 0, 31, 16], [0, 5, 0, 16, 0], [0, 5, 0, 16, 31],
                     [0, 0, 0, 16, 16], [1, 5, 0, 16, 16], [2, 5, 0, 16, 16], [0, 5, 0, 16, 16]])
  images = dataset.sample_observations_from_factors(rows, None)[..., 0]
  ys, xs = np.indices((64, 64))
  centre_x = (images * xs).sum((1, 2)) / images.sum((1, 2))
  centre_y = (images * ys).sum((1, 2)) / images.sum((1, 2))
  assert centre_x[0] < 20 and centre_x[1] > 43 and centre_y[2] < 20 and centre_y[3] > 43
  assert np.all(images[:, [0, -1], :] == 0) and np.all(images[:, :, [0, -1]] == 0)  # sprites stay inside
  area = images.sum((1, 2))
  assert area[4] < 0.5 * area[7]              # scale 0.5 vs 1: a quarter of the area
  assert len({area[5], area[6], area[7]}) == 3  # ellipse, heart and square differ


def _full_frame_dsprites(row, resolution=64):
  """Reference rasteriser: tests every pixel of the frame (the library only tests a window around the sprite)."""
  shape, scale, orientation, x, y = row
  margin, size = dsprites_procedural._POSITION_MARGIN, dsprites_procedural._SPRITE_SIZE
  centre_x = margin + (1 - 2 * margin) * dsprites_procedural.POSITION_VALUES[x]
  centre_y = margin + (1 - 2 * margin) * dsprites_procedural.POSITION_VALUES[y]
  pixel = (np.arange(resolution) + 0.5) / resolution
  dx, dy = pixel[None, :] - centre_x, centre_y - pixel[:, None]
  angle, half = dsprites_procedural.ORIENTATION_VALUES[orientation], size / 2 * dsprites_procedural.SCALE_VALUES[scale]
  u = (np.cos(angle) * dx + np.sin(angle) * dy) / half
  v = (-np.sin(angle) * dx + np.cos(angle) * dy) / half
  return dsprites_procedural._inside(dsprites_procedural.SHAPE_NAMES[shape], u, v)


def test_dsprites_orientation_is_identifiable_for_hearts_only():
  # The premise of DSprites.identifiable_labels, checked on the renders: angles k and k + 10 (k + 20) differ by a
  # quarter (half) turn plus 2.3° (4.6°), so a square (ellipse) changes less than between neighbouring angles.
  def changed_pixels(shape, scale, k, step):
    a, b = dsprites_procedural.render_dsprites(np.array([[shape, scale, k, 16, 16], [shape, scale, k + step, 16, 16]]))
    return int(np.sum(a != b))
  for scale in (3, 5):   # (at the smallest scale one grid step flips as few as 2 pixels)
    for k in range(0, 19, 3):
      assert changed_pixels(0, scale, k, 10) < changed_pixels(0, scale, k, 1)
      assert changed_pixels(1, scale, k, 20) < changed_pixels(1, scale, k, 1)
      assert changed_pixels(2, scale, k, 10) > changed_pixels(2, scale, k, 1)
  first, last = dsprites_procedural.render_dsprites(np.array([[2, 3, 0, 9, 20], [2, 3, 39, 9, 20]]))
  np.testing.assert_array_equal(first, last)   # 0 and 2π
  labels, mask = dsprites_procedural.DSprites().identifiable_labels(np.array([[2, 0, 39, 1, 2], [0, 0, 5, 1, 2]]))
  np.testing.assert_array_equal(labels, [[2, 0, 0, 1, 2], [0, 0, 5, 1, 2]])
  np.testing.assert_array_equal(mask, [[True] * 5, [True, True, False, True, True]])
  assert dsprites_procedural.DSprites().identifiable_num_values == (3, 6, 39, 32, 32)


def test_windowed_dsprites_match_a_full_frame_rasteriser():
  rows = data.dsprites().sample_factors(64, np.random.RandomState(9))
  rows[:8, 1:] = [5, 5, 0, 0]  # largest sprites at 45° in the corner, and at the far corner
  rows[8:16, 1:] = [5, 5, 31, 31]
  images = data.render_dsprites(rows)[..., 0]
  mismatched = [np.mean(images[i] != _full_frame_dsprites(row)) for i, row in enumerate(rows)]
  assert max(mismatched) < 2 / 4096  # float32 vs float64 may flip a pixel on the boundary


def test_extreme_sprites_stay_inside_the_frame():
  """The largest square at 45° in every corner keeps a clear border (margin >= half diagonal)."""
  rows = np.asarray([[0, 5, 5, x, y] for x in (0, 31) for y in (0, 31)])
  images = data.render_dsprites(rows)[..., 0]
  assert images.sum() > 0 and np.all(images[:, [0, -1], :] == 0) and np.all(images[:, :, [0, -1]] == 0)


def test_shape_classifier_separates_the_four_shapes():
  """A linear classifier on 16×16 block means of a few thousand renders tells the shapes apart."""
  from sklearn.linear_model import RidgeClassifier
  factors, images = data.shapes3d().sample(2400, np.random.RandomState(7))
  features = images.reshape(-1, 16, 4, 16, 4, 3).mean(axis=(2, 4)).reshape(len(images), -1)
  classifier = RidgeClassifier(alpha=1.0).fit(features[:1800], factors[:1800, 4])
  accuracy = classifier.score(features[1800:], factors[1800:, 4])
  assert accuracy > 0.9, accuracy


def test_bad_factors_are_rejected_clearly(named_dataset):
  name, dataset = named_dataset
  with pytest.raises(ValueError, match="shape"):
    dataset.sample_observations_from_factors(np.zeros((2, dataset.num_factors + 1), int), None)
  too_big = np.zeros((3, dataset.num_factors), int)
  too_big[1, 1] = dataset.factors_num_values[1]
  with pytest.raises(ValueError, match=dataset.factor_names[1]):
    dataset.sample_observations_from_factors(too_big, None)
  with pytest.raises(ValueError, match="integer"):
    dataset.sample_observations_from_factors(np.zeros((1, dataset.num_factors)), None)


def test_registry_and_shortcuts():
  assert isinstance(data.get_dataset("shapes3d"), data.Shapes3D)
  assert isinstance(data.shapes3d(source="procedural"), data.Shapes3D)
  assert isinstance(data.dsprites(), data.DSprites)
  assert data.get_dataset("shapes3d", resolution=32).observation_shape == (32, 32, 3)
  with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
    data.get_dataset("mnist")
  with pytest.raises(ValueError, match="no source 'procedural'"):
    data.get_dataset("celeb_a", source="procedural")
  with pytest.raises(ValueError, match="no source 'hdf5'"):
    data.shapes3d(source="hdf5")
  with pytest.raises(ValueError, match=r"'dsprites' \(procedural\) has no option\(s\) \['resolution'\]"):
    data.get_dataset("dsprites", resolution=16)   # dSprites is 64×64 by definition


def test_small_resolution_still_renders():
  images = data.shapes3d(resolution=16, supersample=1).sample_observations(3, np.random.RandomState(8))
  assert images.shape == (3, 16, 16, 3) and images.dtype == np.float32


def test_data_package_does_not_import_jax():
  code = ("import sys, ganlatent_jax; before = 'jax' in sys.modules; import ganlatent_jax.data; "
          "print(before, 'jax' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  before, after = result.stdout.split()
  # The top-level package must not import jax either: its CPU settings have to precede jax's backend start.
  assert (before, after) == ("False", "False")


def test_sample_grids_for_the_docs(tmp_path):
  from ganlatent_jax.data import grids
  grids.main([str(tmp_path)])
  from PIL import Image
  for name, rows in (("shapes3d_procedural.png", 4), ("dsprites_procedural.png", 5)):
    image = np.asarray(Image.open(tmp_path / name))
    assert image.shape == (rows * 66 - 2, 10 * 66 - 2, 3) and image.dtype == np.uint8
