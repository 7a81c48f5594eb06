"""The pip user's path: the built wheel (not an editable install) in a fresh venv, used from outside the repository.

The venv sees the system's site-packages for the dependencies (jax, flax, ...: no download), but the package itself
is the wheel's copy; the test checks that it is.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SOURCES = ("setup.py", "README.md", "ganlatent_jax", "configs")


def _env():
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  env.pop("PYTHONPATH", None)
  return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
  """`python -m build --wheel` of a copy of the sources (the checkout gets no build/ or egg-info litter)."""
  pytest.importorskip("build", reason="the 'build' package (test extra) builds the wheel")
  source = tmp_path_factory.mktemp("source")
  for name in SOURCES:
    if (REPO / name).is_dir():
      shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
      shutil.copy(REPO / name, source / name)
  dist = tmp_path_factory.mktemp("dist")
  result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
                           str(source)], capture_output=True, text=True, timeout=600, env=_env())
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  (built,) = dist.glob("ganlatent_jax-*.whl")
  return built


@pytest.fixture(scope="module")
def venv_python(wheel, tmp_path_factory) -> pathlib.Path:
  venv = tmp_path_factory.mktemp("venv")
  subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                 timeout=300)
  python = venv / "bin" / "python"
  result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300, env=_env())
  assert result.returncode == 0, result.stderr[-3000:]
  return python


def test_wheel_carries_configs_and_testbed_assets(wheel):
  names = set(zipfile.ZipFile(wheel).namelist())
  for name in ("ganlatent_jax/configs/sre_3dshapes.py", "ganlatent_jax/configs/common.py",
               "ganlatent_jax/assets/testbed/shapes3d/variables.msgpack",
               "ganlatent_jax/assets/testbed/shapes3d/generator.json",
               "ganlatent_jax/assets/testbed/shapes3d/MODEL_CARD.md",
               "ganlatent_jax/assets/testbed/dsprites/variables.msgpack"):
    assert name in names, name
  repo_configs = {p.name for p in (REPO / "configs").glob("*.py")}
  assert {pathlib.PurePath(n).name for n in names if n.startswith("ganlatent_jax/configs/")} == repo_configs


def test_installed_wheel_works_from_any_directory(venv_python, tmp_path):
  probe = ("import ganlatent_jax, json\n"
           "from ganlatent_jax import config_files, generators\n"
           "gen = generators.load('testbed:shapes3d')\n"
           "print(json.dumps({'package': ganlatent_jax.__file__, 'config': config_files.resolve('sre_3dshapes'),"
           " 'image_shape': list(gen.image_shape)}))\n")
  result = subprocess.run([str(venv_python), "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env=_env())
  assert result.returncode == 0, result.stderr[-3000:]
  import json
  found = json.loads(result.stdout.strip().splitlines()[-1])
  venv = str(venv_python.parents[1])
  assert found["package"].startswith(venv), found  # the wheel's copy, not the checkout
  assert found["config"].startswith(venv) and found["config"].endswith("ganlatent_jax/configs/sre_3dshapes.py")
  assert found["image_shape"] == [64, 64, 3]


def test_main_takes_a_packaged_config_name(venv_python, tmp_path):
  def main(*args):
    return subprocess.run([str(venv_python), "-m", "ganlatent_jax.main", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, env=_env())
  # The packaged config is loaded (its keys are checked: the override names a key it does not have) ...
  result = main("--config=sre_3dshapes", f"--workdir={tmp_path / 'run'}", "--config.no_such_key=1")
  assert result.returncode != 0 and "no_such_key" in result.stderr
  # ... and a name that is neither a file nor packaged lists the packaged configs.
  result = main("--config=sre_3dshapez", f"--workdir={tmp_path / 'run'}")
  assert result.returncode != 0
  assert "no packaged config named 'sre_3dshapez'" in result.stderr and "'sre_3dshapes'" in result.stderr


@pytest.mark.slow
def test_quick_main_job_runs_from_the_wheel(venv_python, tmp_path):
  result = subprocess.run([str(venv_python), "-m", "ganlatent_jax.main", "--config=sre_3dshapes:quick",
                           "--workdir=run"], capture_output=True, text=True, cwd=tmp_path, timeout=3600, env=_env())
  assert result.returncode == 0, result.stderr[-4000:]
  for name in ("directions.npz", "metrics.json", "report.html"):
    assert (tmp_path / "run" / name).exists(), name
