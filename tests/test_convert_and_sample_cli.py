"""The README's three commands: convert an upstream checkpoint, load the converted dir, sample a grid."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganlatent_jax import generators
from conftest import fixture_path


def _run(*args):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow   # 75 s in the default suite of 2026-12-02 (loaded machine): moved for its ~10 min budget
def test_convert_then_sample(tmp_path):
  checkpoint = fixture_path("stylegan2/stylegan2_rosinality_s32.pt")
  result = _run("ganlatent_jax.port", f"--in={checkpoint}", f"--out={tmp_path / 'conv'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(tmp_path / "conv")) == ["generator.json", "variables.msgpack"]
  io = np.load(fixture_path("stylegan2/stylegan2_rosinality_s32_io.npz"))
  converted = generators.load(tmp_path / "conv")
  np.testing.assert_allclose(np.asarray(converted(io["z"])), io["img_fixed_noise"].transpose(0, 2, 3, 1),
                             atol=1e-4, rtol=1e-4)
  result = _run("ganlatent_jax.sample", f"--generator={tmp_path / 'conv'}", f"--out={tmp_path / 's.png'}",
                "--num=4", "--truncation=0.7")
  assert result.returncode == 0, result.stderr[-3000:]
  assert Image.open(tmp_path / "s.png").size == (4 * 34 + 2, 34 + 2)


def test_convert_refuses_unknown_files(tmp_path):
  (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
  result = _run("ganlatent_jax.port", f"--in={tmp_path / 'x.pt'}", f"--out={tmp_path / 'out'}")
  assert result.returncode != 0 and "x.pt" in result.stderr
  assert not (tmp_path / "out").exists()


@pytest.mark.slow   # 65–170 s on an idle 2-core machine (measured 2026-12-01): the default suite took 22.6 min
def test_sample_biggan_uses_truncated_noise_and_names_a_bad_class(tmp_path):
  import jax
  from ganlatent_jax import viz
  from ganlatent_jax.generators import biggan
  checkpoint = fixture_path("biggan/biggan_tiny")
  result = _run("ganlatent_jax.sample", f"--generator={checkpoint}", f"--out={tmp_path / 's.png'}", "--num=2",
                "--seed=3", "--class_id=5", "--truncation=0.5")
  assert result.returncode == 0, result.stderr[-3000:]
  gen = generators.load(checkpoint)
  z = biggan.truncated_noise(jax.random.key(3), 2, 0.5, gen.latent_dim)
  expected = viz.images_to_grid(viz.to_display(gen(z, class_vector=np.array([5, 5]), truncation=0.5)), ncols=2)
  np.testing.assert_allclose(np.asarray(Image.open(tmp_path / "s.png")), expected, atol=1)
  result = _run("ganlatent_jax.sample", f"--generator={checkpoint}", f"--out={tmp_path / 'bad.png'}",
                "--class_id=1000")
  assert result.returncode != 0 and "--class_id in 0..999 (got 1000)" in result.stderr
  assert not (tmp_path / "bad.png").exists()
