"""NVlabs pickles and genforce .pth through `generators.load` (auto-detected) and the command line (port + sample)."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from ganlatent_jax import generators

load_lib = importlib.import_module("ganlatent_jax.generators.load")  # (generators.load is also the function)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
CASES = {  # fixture → (format, family, extra sample flags)
    "nvlabs/ada_small.pkl": ("stylegan2_ada_nvlabs", "stylegan2_ada", ["--truncation=0.7"]),
    "nvlabs/ada_cond_small.pkl": ("stylegan2_ada_nvlabs", "stylegan2_ada", ["--truncation=0.7", "--class_id=2"]),
    "nvlabs/sg3t_small.pkl": ("stylegan3_nvlabs", "stylegan3", ["--truncation=0.7"]),
    "genforce/genforce_pggan_tiny.pth": ("pggan_genforce", "pggan", []),
    "genforce/genforce_stylegan_tiny.pth": ("stylegan_genforce", "stylegan", ["--truncation=0.7"]),
}


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_auto_detected(fixture):
  path = os.path.join(FIXTURES, fixture)
  format_name, family, _ = CASES[fixture]
  sniffed = [name for name in load_lib.FORMATS
             if load_lib.format_module(name).sniff(path, load_lib.nvlabs_pickle.load_checkpoint(path))]
  assert sniffed == [format_name]
  config, variables = load_lib.convert(path)
  forced_config, forced = load_lib.convert(path, format=format_name)
  assert config == forced_config and config["family"] == family
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, variables, forced))
  gen = generators.load(path)
  assert gen.info.family == family and gen.info.source == path


def test_evil_pickles_through_load(tmp_path):
  with pytest.raises(ValueError, match="posix.system"):
    generators.load(os.path.join(FIXTURES, "nvlabs", "evil", "ada_small_evil_reduce.pkl"))
  evil, _ = load_lib.convert(os.path.join(FIXTURES, "nvlabs", "evil", "ada_small_evil_src.pkl"))
  assert evil == load_lib.convert(os.path.join(FIXTURES, "nvlabs", "ada_small.pkl"))[0]


def _run(*args):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("fixture", [
    "nvlabs/ada_small.pkl",
    pytest.param("nvlabs/ada_cond_small.pkl", marks=pytest.mark.slow),
    pytest.param("nvlabs/sg3t_small.pkl", marks=pytest.mark.slow),
    pytest.param("genforce/genforce_pggan_tiny.pth", marks=pytest.mark.slow),
    pytest.param("genforce/genforce_stylegan_tiny.pth", marks=pytest.mark.slow)])
def test_port_then_sample_from_the_command_line(tmp_path, fixture):
  path = os.path.join(FIXTURES, fixture)
  _, family, flags = CASES[fixture]
  result = _run("ganlatent_jax.port", f"--in={path}", f"--out={tmp_path / 'conv'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"({family})" in result.stdout
  result = _run("ganlatent_jax.sample", f"--generator={tmp_path / 'conv'}", f"--out={tmp_path / 's.png'}", "--num=2",
                *flags)
  assert result.returncode == 0, result.stderr[-3000:]
  assert Image.open(tmp_path / "s.png").size == (2 * 34 + 2, 34 + 2)
