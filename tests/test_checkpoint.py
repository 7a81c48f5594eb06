"""A damaged newest checkpoint (issue 16 item 8) names its step directory and falls back to the previous kept step;
silent byte corruption is caught by the saved checksums; `python -m ganlatent_jax.main` resumes past it."""
import logging
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax import checkpoint as checkpoint_lib


def _state(scale):
  return {"w": jnp.arange(2000, dtype=jnp.float32) * scale, "step": jnp.asarray(scale, jnp.int32),
          "key": jax.random.key(int(scale))}


def _saved(workdir, steps=(1, 2)):
  checkpointer = checkpoint_lib.Checkpointer(workdir, save_every=1, keep=3)
  for step in steps:
    checkpointer.save(step, _state(step))
  checkpointer.close()
  return checkpoint_lib.Checkpointer(workdir, save_every=1, keep=3)


def _largest_data_file(step_dir):
  files = [p for p in pathlib.Path(step_dir).rglob("*") if p.is_file() and p.parent.name == "d"]
  return max(files, key=lambda p: p.stat().st_size)


def _truncate_metadata(step_dir):
  path = pathlib.Path(step_dir) / "default" / "_METADATA"
  path.write_bytes(path.read_bytes()[:40])


def _truncate_data(step_dir):
  path = _largest_data_file(step_dir)
  path.write_bytes(path.read_bytes()[:100])


def _flip_data_byte(step_dir):
  """Silent corruption: one byte of the stored array data changes (the checkpoint still decodes)."""
  path = _largest_data_file(step_dir)
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x10
  path.write_bytes(bytes(data))


def _delete_data_files(step_dir):
  for path in pathlib.Path(step_dir).rglob("*"):
    if path.is_file() and path.parent.name == "d":
      path.unlink()


@pytest.mark.parametrize("damage", [_truncate_metadata, _truncate_data, _flip_data_byte, _delete_data_files])
def test_damaged_newest_step_falls_back_to_the_previous_one(tmp_path, caplog, damage):
  checkpointer = _saved(tmp_path)
  step_dir = checkpointer.step_directory(2)
  damage(step_dir)
  abstract = checkpoint_lib.abstract_like(_state(1))
  with caplog.at_level(logging.WARNING):
    restored = checkpointer.restore(abstract)
  np.testing.assert_array_equal(restored["w"], _state(1)["w"])
  assert int(restored["step"]) == 1
  assert f"checkpoint {step_dir} cannot be restored" in caplog.text
  assert "resumed from the previous kept step 1" in caplog.text
  assert checkpointer.latest_step() == 1
  assert os.path.isdir(tmp_path / "checkpoints_unreadable" / "2")  # kept for inspection, out of the way
  checkpointer.save(2, _state(2))  # the run can save step 2 again
  checkpointer.close()
  again = checkpoint_lib.Checkpointer(tmp_path, save_every=1, keep=3)
  assert int(again.restore(abstract)["step"]) == 2
  again.close()


def test_intact_checkpoints_restore_the_newest_and_checksums_are_kept_per_step(tmp_path):
  checkpointer = _saved(tmp_path, steps=(1, 2, 3, 4))
  restored = checkpointer.restore(checkpoint_lib.abstract_like(_state(1)))
  assert int(restored["step"]) == 4
  np.testing.assert_array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(_state(4)["key"]))
  checkpointer.save(5, _state(5))
  checkpointer.close()
  kept = sorted(int(name.split(".")[0]) for name in os.listdir(tmp_path / "checkpoint_checksums"))
  assert kept == sorted(int(s) for s in os.listdir(tmp_path / "checkpoints") if s.isdigit())


def test_every_step_damaged_raises_naming_each_directory_and_moves_nothing(tmp_path):
  checkpointer = _saved(tmp_path)
  for step in (1, 2):
    _truncate_metadata(checkpointer.step_directory(step))
  with pytest.raises(checkpoint_lib.CheckpointRestoreError,
                     match=rf"{tmp_path}/checkpoints/2: .*; {tmp_path}/checkpoints/1: "):
    checkpointer.restore(checkpoint_lib.abstract_like(_state(1)))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  checkpointer.close()


def test_a_state_that_no_longer_matches_moves_nothing(tmp_path):
  checkpointer = _saved(tmp_path)
  other = {"w": jax.ShapeDtypeStruct((7,), jnp.float32), "step": jax.ShapeDtypeStruct((), jnp.int32),
           "key": checkpoint_lib.abstract_like(_state(1))["key"]}
  with pytest.raises(checkpoint_lib.CheckpointRestoreError):
    checkpointer.restore(other)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  checkpointer.close()


def test_checkpoint_without_checksums_is_checked_for_finiteness(tmp_path, caplog):
  checkpointer = checkpoint_lib.Checkpointer(tmp_path, save_every=1, keep=3)
  checkpointer.save(1, _state(1))
  bad = _state(2)
  bad["w"] = bad["w"].at[5].set(jnp.nan)
  checkpointer.save(2, bad)
  checkpointer.close()
  for name in os.listdir(tmp_path / "checkpoint_checksums"):  # as written by an older version
    os.unlink(tmp_path / "checkpoint_checksums" / name)
  checkpointer = checkpoint_lib.Checkpointer(tmp_path, save_every=1, keep=3)
  with caplog.at_level(logging.WARNING):
    restored = checkpointer.restore(checkpoint_lib.abstract_like(_state(1)))
  assert int(restored["step"]) == 1 and "['w'] holds NaN/inf" in caplog.text
  checkpointer.close()


@pytest.mark.slow  # ~1-2 min: two `main` subprocesses, each compiling a tiny 64 px generator's SRE step
def test_main_resumes_past_a_corrupted_newest_checkpoint(tmp_path):
  from ganlatent_jax import generators
  from ganlatent_jax.generators import stylegan2
  config = stylegan2.make_config(64, style_dim=8, n_mlp=2, channels=stylegan2.constant_channels(64, 4))
  generators.save_converted(tmp_path / "gen", config, stylegan2.init_variables(config, jax.random.key(0)))
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  workdir = tmp_path / "run"
  sre_config = pathlib.Path(__file__).resolve().parents[1] / "configs" / "sre_3dshapes.py"

  def main(steps):
    args = [f"--config={sre_config}:quick", f"--workdir={workdir}", f"--config.generator={tmp_path / 'gen'}",
            f"--config.steps={steps}", "--config.checkpoint_every=2", "--config.evaluation.enabled=false"]
    return subprocess.run([sys.executable, "-m", "ganlatent_jax.main", *args], capture_output=True, text=True,
                          env=env, timeout=900)

  first = main(4)
  assert first.returncode == 0, first.stderr[-4000:]
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
  _flip_data_byte(workdir / "checkpoints" / "4")
  second = main(6)
  assert second.returncode == 0, second.stderr[-4000:]
  assert f"checkpoint {workdir}/checkpoints/4 cannot be restored" in second.stderr
  assert "resumed from the previous kept step 2" in second.stderr
  assert "6" in os.listdir(workdir / "checkpoints")
  assert os.listdir(workdir / "checkpoints_unreadable") == ["4"]
