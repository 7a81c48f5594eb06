"""Training-state checkpoints: orbax `CheckpointManager` under `workdir/checkpoints`, resumed automatically.

The workdir may be a gs:// URI: orbax writes the arrays through tensorstore's gcs driver and its metadata through
etils.epath; the checksum files and the set-aside moves go through ganlatent_jax.io.

A training state is any pytree of arrays (a `flax.struct.dataclass` of params, optimizer states, step). It is restored
against its abstract twin (shapes, dtypes and shardings from `jax.eval_shape` + the run's shardings), so optax states
keep their types and arrays land on the devices the run uses. The loop decides when to save; this module only saves.

Corruption is not restored silently and does not block a resume:
  * every save also writes a SHA-256 per array to `workdir/checkpoint_checksums/<step>.json` (single-process runs;
    orbax/tensorstore keep no checksum of the data), and a restore recomputes and compares them; checkpoints without
    one (older runs) are checked for shapes, dtypes and finiteness instead;
  * if the newest kept step cannot be read or fails that check, the error names its directory and the previous kept
    step is restored instead (logged); the unreadable step is moved to `workdir/checkpoints_unreadable/<step>` —
    only once an older step has restored cleanly, so a config that no longer matches any checkpoint moves nothing.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ganlatent_jax import io as gio

CHECKSUMS_DIR = "checkpoint_checksums"
UNREADABLE_DIR = "checkpoints_unreadable"


class CheckpointRestoreError(RuntimeError):
  """No kept checkpoint step could be restored and verified: names each step directory and why."""


def abstract_like(state: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a concrete state: what `restore` needs."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def _host_array(leaf) -> np.ndarray:
  if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
    leaf = jax.random.key_data(leaf)
  return np.asarray(jax.device_get(leaf))


def _plain_shape_dtype(leaf) -> tuple[tuple[int, ...], np.dtype]:
  """(shape, dtype), typed PRNG keys as their uint32 key data (orbax may restore either form)."""
  if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
    leaf = jax.eval_shape(jax.random.key_data, leaf)
  return tuple(leaf.shape), np.dtype(leaf.dtype)


def checksums(state: Any) -> dict[str, str]:
  """SHA-256 of every array of a state (dtype, shape and bytes), keyed by its pytree path."""
  sums = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    array = np.ascontiguousarray(_host_array(leaf))
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    sums[jax.tree_util.keystr(path)] = digest.hexdigest()
  return sums


class Checkpointer:
  """Saves every `save_every` steps, keeps the last `keep`, restores the latest readable one."""

  def __init__(self, workdir: str | os.PathLike, save_every: int, keep: int = 2):
    workdir = gio.absolute(workdir)   # a gs:// workdir as it is: orbax writes there through tensorstore
    self.directory = os.path.join(workdir, "checkpoints")
    self.checksum_directory = os.path.join(workdir, CHECKSUMS_DIR)
    self.unreadable_directory = os.path.join(workdir, UNREADABLE_DIR)
    self.save_every = save_every
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def step_directory(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _checksum_path(self, step: int) -> str:
    return os.path.join(self.checksum_directory, f"{step}.json")

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """The state at `step` (latest by default), or at the newest older kept step if that one is unreadable or fails
    verification; None when the workdir has no checkpoint yet. Raises `CheckpointRestoreError` if none restores."""
    steps = sorted(self._manager.all_steps(), reverse=True)
    if step is not None:
      steps = [s for s in steps if s <= step]
    if not steps:
      return None
    failed: list[tuple[int, str]] = []
    for candidate in steps:
      try:
        state = self._manager.restore(candidate, args=ocp.args.StandardRestore(abstract_state))
        self._verify(candidate, state, abstract_state)
      except Exception as e:  # noqa: BLE001 — orbax/tensorstore/json raise many types on a damaged step
        reason = f"{type(e).__name__}: {str(e)[:500]}"
        failed.append((candidate, reason))
        logging.warning("checkpoint %s cannot be restored (%s)%s", self.step_directory(candidate), reason,
                        "; trying the previous kept step" if candidate != steps[-1] else "")
        continue
      if failed:
        self._set_aside([s for s, _ in failed])
        logging.warning("resumed from the previous kept step %d (%s) instead of step %d", candidate,
                        self.step_directory(candidate), failed[0][0])
      return state
    raise CheckpointRestoreError(
        f"no checkpoint in {self.directory} could be restored: " +
        "; ".join(f"{self.step_directory(s)}: {reason}" for s, reason in failed))

  def _verify(self, step: int, state: Any, abstract_state: Any) -> None:
    """Shapes and dtypes against the abstract state, then the saved checksums (or, without them, finiteness)."""
    got = jax.tree_util.tree_flatten_with_path(state)[0]
    want = jax.tree_util.tree_leaves(abstract_state)
    if len(got) != len(want):
      raise ValueError(f"restored {len(got)} arrays, the state has {len(want)}")
    for (path, leaf), expected in zip(got, want):
      leaf, expected = _plain_shape_dtype(leaf), _plain_shape_dtype(expected)
      if leaf != expected:
        raise ValueError(f"{jax.tree_util.keystr(path)}: restored {leaf[1]}{leaf[0]}, expected "
                         f"{expected[1]}{expected[0]}")
    checksum_path = self._checksum_path(step)
    if gio.exists(checksum_path):
      import json
      saved = json.loads(gio.read_text(checksum_path))
      restored = checksums(state)
      wrong = sorted(k for k in saved if restored.get(k) != saved[k]) + sorted(set(restored) - set(saved))
      if wrong:
        raise ValueError(f"checksum mismatch (corrupted data) in {', '.join(wrong[:5])}"
                         f"{' ...' if len(wrong) > 5 else ''}")
      return
    for path, leaf in got:
      if jax.dtypes.issubdtype(leaf.dtype, np.inexact) and not bool(jax.numpy.isfinite(leaf).all()):
        raise ValueError(f"{jax.tree_util.keystr(path)} holds NaN/inf")

  def _set_aside(self, steps: list[int]) -> None:
    """Moves unreadable steps out of the manager's sight (kept for inspection, never deleted)."""
    gio.makedirs(self.unreadable_directory)
    for step in steps:
      target = os.path.join(self.unreadable_directory, str(step))
      gio.rmtree(target)
      gio.rename(self.step_directory(step), target)
      logging.warning("moved the unreadable checkpoint step %d to %s", step, target)
    gio.wait_for_writer("unreadable checkpoints set aside")   # every process failed the same step and waits here
    self._manager.reload()

  def should_save(self, step: int) -> bool:
    return self.save_every > 0 and step % self.save_every == 0

  def save(self, step: int, state: Any) -> None:
    if step in self._manager.all_steps():
      return
    if jax.process_count() == 1:  # multi-host arrays are not fully addressable here: orbax's own checks only
      gio.write_json(self._checksum_path(step), checksums(state))
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._drop_stale_checksums(keep={step})

  def _drop_stale_checksums(self, keep: set[int]) -> None:
    if not gio.isdir(self.checksum_directory):
      return
    kept = set(self._manager.all_steps()) | keep
    for name in gio.listdir(self.checksum_directory):
      stem = name.removesuffix(".json")
      if stem.isdigit() and int(stem) not in kept:
        gio.remove(os.path.join(self.checksum_directory, name), missing_ok=True)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
