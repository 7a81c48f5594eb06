"""ganlatent_jax.io: atomic writes leave either the old or the new file/directory, never a half-written one."""
import json
import os

import numpy as np
import pytest

from ganlatent_jax import io


def test_write_bytes_text_json_round_trip(tmp_path):
  io.write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
  io.write_text(tmp_path / "t.txt", "héllo")
  io.write_json(tmp_path / "j.json", {"x": np.arange(3), "y": np.float32(1.5)})
  assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
  assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo"
  assert json.loads((tmp_path / "j.json").read_text()) == {"x": [0, 1, 2], "y": 1.5}
  assert sorted(os.listdir(tmp_path)) == ["a", "j.json", "t.txt"]  # no temp files left


def test_open_atomic_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
  path = tmp_path / "f.txt"
  path.write_text("old")
  with pytest.raises(RuntimeError):
    with io.open_atomic(path, "w") as f:
      f.write("half")
      raise RuntimeError("crash mid-write")
  assert path.read_text() == "old"
  assert os.listdir(tmp_path) == ["f.txt"]


def test_staging_directory_replaces_and_failure_keeps_old(tmp_path):
  target = tmp_path / "out"
  target.mkdir()
  (target / "old.txt").write_text("old")
  with pytest.raises(RuntimeError):
    with io.staging_directory(target) as tmp:
      (tmp / "new.txt").write_text("new")
      raise RuntimeError("crash")
  assert sorted(os.listdir(target)) == ["old.txt"]
  assert os.listdir(tmp_path) == ["out"]
  with io.staging_directory(target) as tmp:
    (tmp / "new.txt").write_text("new")
  assert sorted(os.listdir(target)) == ["new.txt"]
  assert os.listdir(tmp_path) == ["out"]
  assert oct(target.stat().st_mode & 0o777) == oct(0o755)


def test_replace_directory_restores_old_when_rename_in_fails(tmp_path, monkeypatch):
  target = tmp_path / "out"
  target.mkdir()
  (target / "keep.txt").write_text("keep")
  new = tmp_path / "new"
  new.mkdir()
  real_rename = os.rename

  def failing_rename(src, dst):
    if os.fspath(src) == os.fspath(new):
      raise OSError("disk full")
    return real_rename(src, dst)

  monkeypatch.setattr(os, "rename", failing_rename)
  with pytest.raises(OSError, match="disk full"):
    io.replace_directory(new, target)
  assert (target / "keep.txt").read_text() == "keep"


def test_variables_round_trip(tmp_path):
  tree = {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(2, np.int32)}}
  io.save_variables(tmp_path / "v.msgpack", tree)
  back = io.load_variables(tmp_path / "v.msgpack")
  np.testing.assert_array_equal(back["params"]["w"], tree["params"]["w"])
  assert back["params"]["b"].dtype == np.int32
