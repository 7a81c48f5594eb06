"""The command line: --help, locked config overrides, method dispatch errors."""
import os
import subprocess
import sys
import textwrap

import pytest

CONFIG = textwrap.dedent("""
    import ml_collections

    def get_config():
      c = ml_collections.ConfigDict()
      c.method = {method!r}
      c.seed = 0
      c.model = ml_collections.ConfigDict(dict(width=8))
      return c
""")


def _main(*args, timeout=120):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", "ganlatent_jax.main", *args], capture_output=True, text=True,
                        timeout=timeout, env=env)


def _config(tmp_path, method="no_such_method"):
  path = tmp_path / "config_test.py"
  path.write_text(CONFIG.format(method=method))
  return str(path)


def test_help_lists_the_flags():
  result = _main("--help")
  assert result.returncode == 0, result.stderr
  for flag in ("--config", "--workdir", "--jax_distributed"):
    assert flag in result.stdout


@pytest.mark.parametrize("override,message", [
    ("--config.model.depth=3", "depth"),
    ("--config.model.width=wide", "width"),
])
def test_bad_override_exits_nonzero_naming_the_key(tmp_path, override, message):
  result = _main(f"--config={_config(tmp_path)}", f"--workdir={tmp_path}", override)
  assert result.returncode != 0
  assert message in result.stderr


def test_unknown_method_names_config_method(tmp_path):
  result = _main(f"--config={_config(tmp_path)}", f"--workdir={tmp_path}", "--config.model.width=4")
  assert result.returncode != 0
  assert "config.method='no_such_method' is not a method of ganlatent_jax" in result.stderr


def test_workdir_is_required(tmp_path):
  result = _main(f"--config={_config(tmp_path)}")
  assert result.returncode != 0
  assert "workdir" in result.stderr
