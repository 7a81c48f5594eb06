"""Atomic file and directory writes, and variable (de)serialisation: the one place the project writes files.

Multi-process runs (a pod, a cluster, launch/local.py): every process computes the same replicated results and only
process 0 writes them (`is_writer`); the writes of the others go to a scratch file that is discarded, so callers need
no `if`. Orbax checkpoints are the exception: every process saves its shards through orbax.

A reader never sees a half-written file: every write goes to a temporary file beside the target, is flushed and
fsync'ed, then `os.replace`d over the target (atomic on POSIX), and the directory entry is fsync'ed too.

  with open_atomic(path, "wb") as f: ...     # any writer that takes a file object (np.savez, PIL, json.dump)
  write_bytes(path, data); write_text(path, text); write_json(path, payload); makedirs(path)
  wait_for_writer(reason)                    # multi-process: before reading what process 0 wrote
  with staging_directory(target) as tmp: ... # fill tmp; on success it replaces `target` (see replace_directory)
  replace_directory(new, target)             # rename target aside, rename new in, delete the old one
  save_variables(path, tree) / load_variables(path)   # msgpack of a (nested dict) tree of numpy arrays
  variables_to_bytes(tree) / variables_from_bytes(data)
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
from typing import Any, Iterator

import numpy as np

PathLike = str | os.PathLike


def is_writer() -> bool:
  """Whether this process writes files: always in a single-process program, only process 0 of a multi-process jax
  run (asked only once jax is imported: a process that never imported jax is a single-process tool)."""
  jax = sys.modules.get("jax")
  return jax is None or jax.process_count() == 1 or jax.process_index() == 0


def makedirs(path: PathLike) -> None:
  """`os.makedirs(path, exist_ok=True)` in the writing process (a directory for this run's files)."""
  if is_writer():
    os.makedirs(path, exist_ok=True)


def wait_for_writer(reason: str) -> None:
  """Call before reading a file this run wrote earlier: in a multi-process run a barrier (every process reaches it,
  so process 0's writes before it are complete and visible); nothing when alone. `reason` names the barrier."""
  jax = sys.modules.get("jax")
  if jax is None or jax.process_count() == 1:
    return
  from jax.experimental import multihost_utils
  multihost_utils.sync_global_devices(f"ganlatent_jax: {reason}")


def _fsync_directory(directory: PathLike) -> None:
  """Makes a rename inside `directory` durable (best effort: some filesystems refuse to open directories)."""
  try:
    fd = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


@contextlib.contextmanager
def open_atomic(path: PathLike, mode: str = "wb", **open_kwargs) -> Iterator[Any]:
  """A file object whose contents replace `path` only if the `with` block completes.

  Creates the parent directory. On an exception the temporary file is removed and `path` is left untouched.
  `mode` is "wb" or "w" (text; pass encoding= etc. through `open_kwargs`).
  """
  if mode not in ("wb", "w"):
    raise ValueError(f"open_atomic: mode must be 'wb' or 'w', got {mode!r}")
  if not is_writer():   # another process writes this file; the caller's writes go to a discarded scratch file
    with tempfile.TemporaryFile(mode.replace("w", "w+"), **open_kwargs) as f:
      yield f
    return
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    with os.fdopen(fd, mode, **open_kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a written result should be readable like any other file
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise
  _fsync_directory(directory)


def write_bytes(path: PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically."""
  with open_atomic(path, "wb") as f:
    f.write(data)


def write_text(path: PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  with open_atomic(path, "w", encoding="utf-8") as f:
    f.write(text)


def _json_default(value):
  if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__array__"):
    return np.asarray(value).tolist()
  raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path: PathLike, payload: Any, *, indent: int | None = 2, sort_keys: bool = False) -> None:
  """Writes `payload` as JSON atomically; numpy/jax arrays and scalars are written as (nested) lists/numbers."""
  write_text(path, json.dumps(payload, indent=indent, sort_keys=sort_keys, default=_json_default) + "\n")


def replace_directory(new: PathLike, target: PathLike) -> None:
  """Puts directory `new` at `target`: rename `target` aside, rename `new` in, then delete the old one.

  At every moment either the old or the new directory is complete at `target` (or, between the two renames,
  the old one sits beside it under a `.NAME.old-*` name): a crash never loses the previous contents. If the
  rename-in fails the old directory is put back. `new` and `target` must be on the same filesystem.
  """
  new, target = pathlib.Path(new), pathlib.Path(target)
  if not is_writer():
    shutil.rmtree(new, ignore_errors=True)
    return
  aside = None
  if target.exists() or target.is_symlink():
    aside = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    aside.rmdir()  # only the unique name is wanted; os.rename onto an existing empty dir is not portable
    os.rename(target, aside)
  try:
    os.rename(new, target)
  except BaseException:
    if aside is not None:
      os.rename(aside, target)
    raise
  _fsync_directory(target.parent)
  if aside is not None:
    if aside.is_dir() and not aside.is_symlink():
      shutil.rmtree(aside, ignore_errors=True)
    else:
      aside.unlink()


@contextlib.contextmanager
def staging_directory(target: PathLike) -> Iterator[pathlib.Path]:
  """An empty directory beside `target`; when the `with` block completes it replaces `target` (replace_directory).

  On an exception the staging directory is deleted and `target` is untouched. The directory is made 0755
  (mkdtemp's 0700 would make e.g. a shipped asset unreadable to other users).
  """
  target = pathlib.Path(target)
  if not is_writer():   # another process writes `target`; fill a scratch directory that is discarded
    with tempfile.TemporaryDirectory(prefix=f"{target.name}.scratch-") as scratch:
      yield pathlib.Path(scratch)
    return
  target.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
  tmp.chmod(0o755)
  try:
    yield tmp
    for child in tmp.rglob("*"):  # make the contents durable before the rename publishes them
      if child.is_file():
        with open(child, "rb") as f:
          os.fsync(f.fileno())
    replace_directory(tmp, target)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def to_numpy(tree: Any) -> Any:
  """A nested dict (or list/tuple) of arrays with every leaf a numpy array (device arrays are fetched)."""
  if isinstance(tree, dict):
    return {k: to_numpy(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return type(tree)(to_numpy(v) for v in tree)
  return np.asarray(tree)


def variables_to_bytes(tree: Any) -> bytes:
  """msgpack bytes of a tree of arrays (flax.serialization's format; leaves become numpy arrays first)."""
  import flax.serialization
  return flax.serialization.msgpack_serialize(to_numpy(tree))


def variables_from_bytes(data: bytes) -> Any:
  """The tree of numpy arrays that `variables_to_bytes` wrote."""
  import flax.serialization
  return flax.serialization.msgpack_restore(data)


def save_variables(path: PathLike, tree: Any) -> None:
  """Writes a tree of arrays to `path` as msgpack, atomically."""
  write_bytes(path, variables_to_bytes(tree))


def load_variables(path: PathLike) -> Any:
  """Reads a tree of numpy arrays written by `save_variables`."""
  with open(path, "rb") as f:
    return variables_from_bytes(f.read())
