"""`python -m ganlatent_jax.port`: keeps a user's files (issue 16 item 3), refuses NaN/inf weights by name unless
--allow_nonfinite (item 9), and --help exits 0 for the converter and the sampler (issue 22)."""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import fixture_path

PROGGAN = "ganlatentdiscovery/gld_proggan_tiny.pth"


def _run(*args):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("module", ["ganlatent_jax.port", "ganlatent_jax.convert", "ganlatent_jax.sample"])
def test_help_exits_zero_and_lists_the_flags(module):
  result = _run(module, "--help")
  assert result.returncode == 0, result.stderr[-2000:]
  assert ("--allow_nonfinite" if module != "ganlatent_jax.sample" else "--generator") in result.stdout + result.stderr


def test_out_holding_user_files_is_refused_and_kept(tmp_path):
  out = tmp_path / "out"
  (out / "figures").mkdir(parents=True)
  (out / "thesis.tex").write_text("years of work")
  (out / "figures" / "a.pdf").write_bytes(b"%PDF")
  result = _run("ganlatent_jax.port", f"--in={fixture_path(PROGGAN)}", f"--out={out}")
  assert result.returncode != 0
  assert "is not a previous conversion (it holds figures/, thesis.tex)" in result.stderr
  assert (out / "thesis.tex").read_text() == "years of work" and (out / "figures" / "a.pdf").exists()


def test_out_previous_conversion_is_replaced_without_leftovers(tmp_path):
  out = tmp_path / "out"
  for source in (PROGGAN, PROGGAN):
    result = _run("ganlatent_jax.port", f"--in={fixture_path(source)}", f"--out={out}")
    assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(os.listdir(out)) == ["generator.json", "variables.msgpack"]
  assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging or set-aside directory left behind
  (out / "notes.txt").write_text("mine")
  result = _run("ganlatent_jax.port", f"--in={fixture_path(PROGGAN)}", f"--out={out}")
  assert result.returncode != 0 and "notes.txt" in result.stderr
  assert (out / "notes.txt").read_text() == "mine"


def _with_nan(path):
  """The ProgGAN fixture with one NaN written into its first storage record."""
  with zipfile.ZipFile(fixture_path(PROGGAN)) as source, zipfile.ZipFile(path, "w") as out:
    for name in source.namelist():
      data = source.read(name)
      if name.endswith("/data/0"):
        data = np.float32(np.nan).tobytes() + data[4:]
      out.writestr(name, data)


def test_nonfinite_weight_is_refused_by_name_unless_allowed(tmp_path):
  _with_nan(tmp_path / "nan.pth")
  result = _run("ganlatent_jax.port", f"--in={tmp_path / 'nan.pth'}", f"--out={tmp_path / 'out'}")
  assert result.returncode != 0
  assert "nan.pth: non-finite weights (NaN/inf) in ['params']" in result.stderr and "(1 of " in result.stderr
  assert not (tmp_path / "out").exists()
  result = _run("ganlatent_jax.port", f"--in={tmp_path / 'nan.pth'}", f"--out={tmp_path / 'out'}",
                "--allow_nonfinite")
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads((tmp_path / "out" / "generator.json").read_text())["family"] == "proggan"
