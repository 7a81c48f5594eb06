"""Traversal pictures and the SeFa / GANSpace commands on the StyleGAN2 fixture."""
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


def _main(config, workdir, *overrides):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", "ganlatent_jax.main", f"--config={config}", f"--workdir={workdir}",
                         f"--config.generator={STYLEGAN2}", *overrides], capture_output=True, text=True, env=env,
                        timeout=600)


@pytest.mark.parametrize("config,overrides", [
    ("configs/sefa_stylegan2.py", ["--config.num_directions=4", "--config.layers=0-3"]),
    ("configs/ganspace_stylegan2.py", ["--config.num_directions=3", "--config.num_samples=512",
                                       "--config.batch_size=256"]),
])
def test_direction_commands_write_directions_and_pictures(tmp_path, config, overrides):
  result = _main(config, tmp_path, *overrides)
  assert result.returncode == 0, result.stderr[-3000:]
  d = dirs.load(tmp_path / "directions.npz")
  assert d.num_directions in (3, 4) and d.latent_dim == 64
  assert Image.open(tmp_path / "images" / "traversal.png").size[0] > 100
  assert (tmp_path / "results.json").exists()
