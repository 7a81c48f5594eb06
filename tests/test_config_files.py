"""--config=NAME[:variant] resolves to the packaged config; files given by path are left alone."""
import os

import pytest

from ganlatent_jax import config_files


def test_packaged_names_resolve_with_their_variant():
  path = config_files.resolve("sre_3dshapes")
  assert os.path.isfile(path) and path.endswith(os.path.join("configs", "sre_3dshapes.py"))
  assert config_files.resolve("sre_3dshapes:quick") == path + ":quick"
  assert config_files.resolve("sre_3dshapes.py") == path
  assert "sre_3dshapes" in config_files.available() and "common" not in config_files.available()


def test_existing_files_and_paths_are_left_alone(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "sre_3dshapes").write_text("# a local file of that name wins")
  assert config_files.resolve("sre_3dshapes") == "sre_3dshapes"
  assert config_files.resolve("elsewhere/x.py:quick") == "elsewhere/x.py:quick"  # a path: its own error later


def test_unknown_name_lists_the_packaged_configs():
  with pytest.raises(ValueError, match=r"no packaged config named 'sre_3dshapez'.*'sre_3dshapes'"):
    config_files.resolve("sre_3dshapez")


def test_rewrite_argv_handles_both_flag_forms():
  path = config_files.resolve("sre_3dshapes")
  argv = ["main.py", "--config=sre_3dshapes:quick", "--workdir=x", "--config.seed=3"]
  assert config_files.rewrite_argv(argv) == ["main.py", f"--config={path}:quick", "--workdir=x", "--config.seed=3"]
  assert config_files.rewrite_argv(["main.py", "--config", "sre_3dshapes"]) == ["main.py", "--config", path]
