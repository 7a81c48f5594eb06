"""Atomic file and directory writes, and variable (de)serialisation: the one place the project writes files.

Multi-process runs (a pod, a cluster, launch/local.py): every process computes the same replicated results and only
process 0 writes them (`is_writer`); the writes of the others go to a scratch file that is discarded, so callers need
no `if`. Orbax checkpoints are the exception: every process saves its shards through orbax.

A reader never sees a half-written file: every write goes to a temporary file beside the target, is flushed and
fsync'ed, then `os.replace`d over the target (atomic on POSIX), and the directory entry is fsync'ed too.

A workdir may be an object-store URI (`gs://bucket/run`, read and written through `etils.epath`, which needs gcsfs:
`pip install 'ganlatent_jax[gcs]'`): every function here accepts one. Local paths go through `os` exactly as before;
on an object store there is no rename, and none is needed: an object becomes visible only when its upload completes
(one PUT, or a resumable upload finalised on close), so a reader sees the old object or the new one, never half.
`open_atomic` fills a local temporary file and uploads it only when the `with` block completes, so a failure still
leaves the old object. Orbax writes its checkpoints there itself (tensorstore's gcs driver), not through here.

  with open_atomic(path, "wb") as f: ...     # any writer that takes a file object (np.savez, PIL, json.dump)
  write_bytes(path, data); write_text(path, text); write_json(path, payload); makedirs(path)
  wait_for_writer(reason)                    # multi-process: before reading what process 0 wrote
  with staging_directory(target) as tmp: ... # fill tmp; on success it replaces `target` (see replace_directory)
  exists / isdir / isfile / listdir / glob / files_under / getsize / open_file / read_bytes / read_text /
  remove / rmtree / rename                   # reading and tidying a workdir, local or gs://
  is_remote(path); absolute(path); check_filesystem(path, what)   # gs:// checks: fail at start, naming the path
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




def wait_for_writer(reason: str) -> None:
  """Call before reading a file this run wrote earlier: in a multi-process run a barrier (every process reaches it,
  so process 0's writes before it are complete and visible); nothing when alone. `reason` names the barrier."""
  jax = sys.modules.get("jax")
  if jax is None or jax.process_count() == 1:
    return
  from jax.experimental import multihost_utils
  multihost_utils.sync_global_devices(f"ganlatent_jax: {reason}")


# ---------------------------------------------------------------------------------------------------------------
# Local paths and object-store URIs (gs://): the workdir's filesystem.

# What each URI scheme needs installed for etils.epath (its fsspec backend) to open it.
FILESYSTEM_PACKAGES = {"gs": "gcsfs"}


def is_remote(path: PathLike) -> bool:
  """Whether `path` is an object-store URI ('gs://bucket/...') rather than a local path."""
  return "://" in os.fspath(path)


def _remote(path: PathLike):
  from etils import epath   # imported only for a remote path: a local run never needs it
  return epath.Path(os.fspath(path))


def absolute(path: PathLike) -> str:
  """`os.path.abspath` of a local path; a URI unchanged (abspath would turn 'gs://b/x' into '<cwd>/gs:/b/x')."""
  path = os.fspath(path)
  return path if is_remote(path) else os.path.abspath(path)


def check_filesystem(path: PathLike, what: str = "--workdir") -> None:
  """Raises a ValueError naming `what`=`path` when it is a URI this installation cannot open: an unknown scheme, or
  gs:// without gcsfs (etils.epath opens gs:// through fsspec's gcsfs, unless TensorFlow is installed, when it uses
  tf.io.gfile; `files_under` and `rename` use fsspec in any case). Called at the start of a command, so a pod run
  fails before its first step, not at its first save."""
  path = os.fspath(path)
  if not is_remote(path):
    return
  import importlib.util
  scheme = path.split("://", 1)[0]
  package = FILESYSTEM_PACKAGES.get(scheme)
  if package is None:
    raise ValueError(f"{what}={path}: {scheme}:// is not supported; use a local path or gs://bucket/path")
  if importlib.util.find_spec(package) is None:
    raise ValueError(f"{what}={path}: a {scheme}:// path needs {package}, which is not installed: "
                     f"pip install 'ganlatent_jax[gcs]'")


def makedirs(path: PathLike) -> None:
  """`os.makedirs(path, exist_ok=True)` in the writing process (a directory for this run's files). Nothing on an
  object store: a "directory" there is a key prefix that exists once an object is written under it, and gcsfs's
  makedirs would create a missing *bucket* (a mistyped bucket name must fail at the first write, not make one)."""
  if is_writer() and not is_remote(path):
    os.makedirs(path, exist_ok=True)


def exists(path: PathLike) -> bool:
  return _remote(path).exists() if is_remote(path) else os.path.exists(path)


def isdir(path: PathLike) -> bool:
  """A directory; on an object store, a prefix that holds objects."""
  return _remote(path).is_dir() if is_remote(path) else os.path.isdir(path)


def isfile(path: PathLike) -> bool:
  return _remote(path).is_file() if is_remote(path) else os.path.isfile(path)


def listdir(path: PathLike) -> list[str]:
  """The names in a directory (FileNotFoundError if it is missing), like `os.listdir`."""
  if is_remote(path):
    if not isdir(path):
      raise FileNotFoundError(f"{os.fspath(path)}: no such directory")
    return [p.name for p in _remote(path).iterdir()]
  return os.listdir(path)


def glob(directory: PathLike, pattern: str) -> list[str]:
  """Sorted paths (strings, URIs for a remote directory) of the entries of `directory` matching `pattern` (no '**')."""
  if is_remote(directory):
    return sorted(os.fspath(p) for p in _remote(directory).glob(pattern))
  import glob as glob_lib
  return sorted(glob_lib.glob(os.path.join(glob_lib.escape(os.fspath(directory)), pattern)))


def files_under(directory: PathLike, skip: tuple[str, ...] = ()) -> list[tuple[str, int]]:
  """(path relative to `directory` with '/' separators, size in bytes) of every file below it, sorted; the top-level
  subdirectories named in `skip` are left out (locally not even entered). Nothing when `directory` is missing."""
  directory = os.fspath(directory)
  found = []
  if is_remote(directory):
    import fsspec   # one listing of the whole prefix, with sizes (epath's walk + stat would cost a request per file)
    fs, root = fsspec.core.url_to_fs(directory)
    root = root.rstrip("/")
    if not fs.exists(root):
      return []
    for key, info in fs.find(root, detail=True).items():
      relative = key[len(root):].lstrip("/")
      if info.get("type") != "directory" and relative and relative.split("/", 1)[0] not in skip:
        found.append((relative, int(info.get("size") or 0)))
    return sorted(found)
  for top, dirs, files in os.walk(directory):
    if top == directory:
      dirs[:] = [d for d in dirs if d not in skip]
    for name in files:
      path = os.path.join(top, name)
      with contextlib.suppress(OSError):   # a file removed (or a dangling link) while listing
        found.append((os.path.relpath(path, directory).replace(os.sep, "/"), os.path.getsize(path)))
  return sorted(found)


def getsize(path: PathLike) -> int:
  return int(_remote(path).stat().length) if is_remote(path) else os.path.getsize(path)


def open_file(path: PathLike, mode: str = "r", **open_kwargs):
  """`open(path, mode)` for reading ('r', 'rb'); for a URI, epath's file object. Write through `open_atomic`."""
  if mode not in ("r", "rb"):
    raise ValueError(f"open_file: mode must be 'r' or 'rb' (writes go through open_atomic), got {mode!r}")
  if is_remote(path):
    return _remote(path).open(mode, **open_kwargs)
  return open(path, mode, **open_kwargs)


def read_bytes(path: PathLike) -> bytes:
  with open_file(path, "rb") as f:
    return f.read()


def read_text(path: PathLike) -> str:
  with open_file(path, "r", encoding="utf-8") as f:
    return f.read()


def remove(path: PathLike, missing_ok: bool = False) -> None:
  """Deletes a file (in the writing process)."""
  if not is_writer():
    return
  if is_remote(path):
    _remote(path).unlink(missing_ok=missing_ok)
  elif missing_ok:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(path)
  else:
    os.unlink(path)


def rmtree(path: PathLike) -> None:
  """Deletes a directory and everything under it (in the writing process); nothing if it is missing."""
  if not is_writer():
    return
  if is_remote(path):
    if exists(path):
      _remote(path).rmtree()
  else:
    shutil.rmtree(path, ignore_errors=True)


def rename(source: PathLike, target: PathLike) -> None:
  """Moves a file or directory (in the writing process). Local: `os.rename`. On an object store a "directory" is
  copied object by object and then deleted (fsspec's `mv`): not atomic, so use it to tidy, not to publish."""
  if not is_writer():
    return
  if is_remote(source) != is_remote(target):
    raise ValueError(f"rename: {os.fspath(source)} and {os.fspath(target)} are on different filesystems")
  if is_remote(source):
    import fsspec   # epath's rename wants the target's parent to exist, and a prefix exists only once it holds one
    fs, source_path = fsspec.core.url_to_fs(os.fspath(source))
    fs.mv(source_path, fsspec.core.url_to_fs(os.fspath(target))[1], recursive=True)
  else:
    os.rename(source, target)


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
  `mode` is "wb" or "w" (text; pass encoding= etc. through `open_kwargs`). `path` may be a gs:// URI (see above).
  """
  if mode not in ("wb", "w"):
    raise ValueError(f"open_atomic: mode must be 'wb' or 'w', got {mode!r}")
  if not is_writer():   # another process writes this file; the caller's writes go to a discarded scratch file
    with tempfile.TemporaryFile(mode.replace("w", "w+"), **open_kwargs) as f:
      yield f
    return
  path = os.fspath(path)
  if is_remote(path):
    # No rename on an object store, and none needed: the object appears when its upload completes. Filling a local
    # file first means a failure in the block uploads nothing (an fsspec file object would upload on close, even
    # when the block raised), and the caller's writer may seek (np.savez's zip) like on a local file.
    with tempfile.TemporaryDirectory(prefix="ganlatent_upload-") as scratch:
      local = os.path.join(scratch, "data")
      with open(local, mode, **open_kwargs) as f:
        yield f
      with open(local, "rb") as f:
        data = f.read()
    _remote(path).write_bytes(data)
    return
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
  (mkdtemp's 0700 would make e.g. a shipped asset unreadable to other users). A gs:// `target` is filled from a
  local staging directory: its old objects are deleted and the new ones uploaded (each object whole, the directory
  not at once: an object store has no directory rename).
  """
  if not is_writer() or is_remote(target):   # another process writes `target`, or it is on an object store
    name = os.path.basename(os.fspath(target).rstrip("/"))
    with tempfile.TemporaryDirectory(prefix=f"{name}.scratch-") as scratch:
      yield pathlib.Path(scratch)
      if is_writer():
        _upload_directory(pathlib.Path(scratch), os.fspath(target))
    return
  target = pathlib.Path(target)
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


def _upload_directory(local: pathlib.Path, target: str) -> None:
  rmtree(target)
  for child in sorted(local.rglob("*")):
    if child.is_file():
      _remote(f"{target.rstrip('/')}/{child.relative_to(local).as_posix()}").write_bytes(child.read_bytes())


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
  return variables_from_bytes(read_bytes(path))
