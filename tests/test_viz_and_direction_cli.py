"""Traversal pictures and the SeFa / GANSpace commands on the StyleGAN2 fixture."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from ganlatent_jax import directions as dirs
from ganlatent_jax import generators, viz
from conftest import fixture_path

STYLEGAN2 = str(fixture_path("stylegan2/stylegan2_rosinality_s32.pt"))


@pytest.fixture(scope="module")
def gen():
  return generators.load(STYLEGAN2)


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


def _main(config, workdir, *overrides, generator=STYLEGAN2):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", "ganlatent_jax.main", f"--config={config}", f"--workdir={workdir}",
                         f"--config.generator={generator}", *overrides], capture_output=True, text=True, env=env,
                        timeout=600)


BIGGAN = str(fixture_path("biggan/biggan_tiny"))
BIGGAN_PICTURES = ["--config.conditional.classes=(5,)", "--config.traversal.steps=3", "--config.traversal.num_samples=1"]


@pytest.mark.parametrize("config,generator,overrides,shape", [
    ("configs/sefa_stylegan2.py", STYLEGAN2, ["--config.num_directions=4", "--config.layers=0-3"], (64, 4)),
    ("configs/ganspace_stylegan2.py", STYLEGAN2, ["--config.num_directions=3", "--config.num_samples=512",
                                                  "--config.batch_size=256"], (64, 3)),
    # Class-conditional: SeFa's first-layer variant and GANSpace's activation PCA of one BigGAN class.
    ("configs/sefa_stylegan2.py", BIGGAN, ["--config.num_directions=2", "--config.variant=first_layer",
                                           *BIGGAN_PICTURES], (128, 2)),
    ("configs/ganspace_stylegan2.py", BIGGAN, ["--config.num_directions=2", "--config.layer=gen_z",
                                               "--config.num_samples=64", "--config.batch_size=32",
                                               *BIGGAN_PICTURES], (128, 2)),
])
def test_direction_commands_write_directions_and_pictures(tmp_path, config, generator, overrides, shape):
  result = _main(config, tmp_path, *overrides, generator=generator)
  assert result.returncode == 0, result.stderr[-3000:]
  d = dirs.load(tmp_path / "directions.npz")
  assert d.matrix.shape == shape
  assert Image.open(tmp_path / "images" / "traversal.png").size[0] > 100
  results = json.loads((tmp_path / "results.json").read_text())
  assert results.get("target_classes") == ([5] if generator == BIGGAN else None)


def test_direction_command_on_biggan_names_the_missing_class(tmp_path):
  result = _main("configs/sefa_stylegan2.py", tmp_path, "--config.variant=first_layer", generator=BIGGAN)
  assert result.returncode != 0 and "needs config.conditional.classes" in result.stderr
  assert not (tmp_path / "directions.npz").exists()
