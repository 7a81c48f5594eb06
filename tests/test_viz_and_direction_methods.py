"""Traversal pictures and the SeFa / GANSpace methods (through their configs) on the StyleGAN2 and BigGAN fixtures."""
import json
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from ganlatent_jax import cli, generators, methods, viz
from ganlatent_jax import directions as dirs
from ganlatent_jax.generators import sampling
from ganlatent_jax.methods import ganspace, sefa
from conftest import fixture_path

STYLEGAN2 = str(fixture_path("stylegan2/stylegan2_rosinality_s32.pt"))


@pytest.fixture(scope="module")
def gen():
  return generators.load(STYLEGAN2)


@pytest.mark.slow   # 82 s in the default suite of 2026-12-02 (loaded machine): moved for its ~10 min budget
def test_traversal_rows_are_directions_columns_are_shifts(gen):
  d = dirs.random(gen.info.w_dim, 3, jax.random.key(0), space="w")
  z = gen.sample_z(jax.random.key(1), 2)
  images = viz.traversal_images(gen, d, z, span=(-2, 2), steps=5)
  assert images.shape == (3 * 2, 5, 32, 32, 3)
  assert images.min() >= 0 and images.max() <= 1
  # The middle column is the zero shift: every direction shows the unshifted image of its latent.
  unshifted = viz.to_display(gen.synthesis(gen.mapping(z)))
  for k in range(3):
    np.testing.assert_allclose(images[k * 2:(k + 1) * 2, 2], unshifted, atol=1e-5)
  assert not np.allclose(images[0, 0], images[0, 4])


def test_traversal_png_and_contact_sheet(gen, tmp_path):
  z = gen.sample_z(jax.random.key(1), 1)
  a = dirs.random(gen.info.w_dim, 2, jax.random.key(0), space="w")
  b = dirs.random(gen.latent_dim, 2, jax.random.key(5), space="z")
  grid = viz.traversal_grid(gen, a, z, steps=4, path=tmp_path / "t.png")
  assert np.asarray(Image.open(tmp_path / "t.png")).shape == grid.shape == (2 + 2 * 34, 2 + 4 * 34, 3)
  sheet = viz.compare_traversals(gen, a, b, z, steps=4, path=tmp_path / "sheet.png")
  assert sheet.shape[1] == 2 * grid.shape[1] + 8
  assert (tmp_path / "sheet.png").exists()


def test_traversal_pictures_compile_the_generator_once(gen):
  """Every picture used to build its own jax.jit (a compile per picture); now one module-level jit serves them."""
  from ganlatent_jax.viz import grids
  z = gen.sample_z(jax.random.key(1), 1)
  first = dirs.random(gen.info.w_dim, 2, jax.random.key(0), space="w")
  second = dirs.random(gen.info.w_dim, 2, jax.random.key(3), space="w")
  viz.traversal_grid(gen, first, z, steps=4)
  compiled = grids._render._cache_size()
  viz.traversal_grid(gen, second, z, steps=4)
  viz.traversal_grid(gen, first, gen.sample_z(jax.random.key(2), 1), steps=4)
  assert grids._render._cache_size() == compiled


BIGGAN = str(fixture_path("biggan/biggan_tiny"))
REPO = pathlib.Path(__file__).resolve().parents[1]
BIGGAN_PICTURES = {"conditional.classes": (5,), "traversal.steps": 3, "traversal.num_samples": 1}


def _config(name, generator, overrides):
  config = cli.load_config(str(REPO / "configs" / name))
  config.generator = generator
  config.evaluation.enabled = False
  for key, value in overrides.items():
    section, _, leaf = key.rpartition(".")
    (config[section] if section else config)[leaf] = value
  return config


@pytest.mark.parametrize("name,generator,overrides,shape", [
    ("sefa_3dshapes.py", STYLEGAN2, {"num_directions": 4, "layers": "0-3"}, (64, 4)),
    ("ganspace_3dshapes.py", STYLEGAN2, {"num_directions": 3, "num_samples": 512, "batch_size": 256}, (64, 3)),
    # Class-conditional: SeFa's first-layer variant and GANSpace's activation PCA of one BigGAN class.
    ("sefa_3dshapes.py", BIGGAN, {"num_directions": 2, "variant": "first_layer", **BIGGAN_PICTURES}, (128, 2)),
    ("ganspace_3dshapes.py", BIGGAN, {"num_directions": 2, "layer": "gen_z", "num_samples": 64, "batch_size": 32,
                                      **BIGGAN_PICTURES}, (128, 2)),
])
def test_direction_methods_write_directions_and_pictures(tmp_path, name, generator, overrides, shape):
  config = _config(name, generator, overrides)
  outputs = methods.get(config.method).train(config, str(tmp_path))
  assert set(outputs) == {"directions", "traversal", "results"}
  d = dirs.load(tmp_path / "directions.npz")
  assert d.matrix.shape == shape
  assert Image.open(tmp_path / "images" / "traversal.png").size[0] > 100
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["sampling"].get("classes") == ([5] if generator == BIGGAN else None)


def test_direction_method_on_biggan_names_the_missing_class(tmp_path):
  with pytest.raises(ValueError, match="needs config.conditional.classes"):
    sefa.train(_config("sefa_3dshapes.py", BIGGAN, {"variant": "first_layer"}), str(tmp_path))
  assert not (tmp_path / "directions.npz").exists()


@pytest.mark.parametrize("overrides,message", [
    ({"variant": "eigen"}, "config.variant='eigen'"),
    ({"num_directions": 0}, "config.num_directions=0 must be a positive integer"),
    ({"traversal.steps": 0}, "config.traversal.steps=0 must be a positive integer"),
])
def test_sefa_names_bad_config_values(overrides, message):
  with pytest.raises(ValueError, match=message):
    sefa.check_config(_config("sefa_3dshapes.py", STYLEGAN2, overrides))


@pytest.mark.parametrize("overrides,message", [
    ({"num_samples": 0}, "config.num_samples=0 must be a positive integer"),
    ({"batch_size": -1}, "config.batch_size=-1 must be a positive integer"),
    ({"num_samples": 5}, "config.num_samples=5 must be >= config.num_directions=10"),
])
def test_ganspace_names_bad_config_values(overrides, message):
  with pytest.raises(ValueError, match=message):
    ganspace.check_config(_config("ganspace_3dshapes.py", STYLEGAN2, overrides))


def test_ganspace_names_too_many_directions(gen):
  config = _config("ganspace_3dshapes.py", STYLEGAN2, {"num_directions": 65, "num_samples": 100})
  with pytest.raises(ValueError, match="config.num_directions=65 exceeds the latent size 64"):
    ganspace.directions(config, sampling.make_sampler(gen))
