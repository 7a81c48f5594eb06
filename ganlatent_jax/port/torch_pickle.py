"""Read PyTorch checkpoint files without torch and without executing anything from them.

Both on-disk layouts of `torch.save` are supported:
  * the zip archive (PyTorch >= 1.6): `<prefix>/data.pkl` + raw storages `<prefix>/data/<key>`;
  * the legacy stream (PyTorch < 1.6): magic number, protocol, sys info, the object pickle, the list of storage keys,
    then for each key an int64 element count followed by the raw bytes.

The file is treated as hostile. The pickle is run by a restricted unpickler (`_unpickler.py`): only the handful of
globals that tensors, state dicts and plain numpy arrays need are resolved, each to a stand-in made fresh for this
load (nothing a file does can change a later load); any other global raises `UnsafeCheckpointError` naming it.
Storages come only from the archive's records (persistent ids), with sizes checked against the file before any byte
is read; every tensor view is proven to lie inside its storage (negative strides and offsets included) before it
is materialised; the bytes a load may allocate are bounded by a budget derived from the file's size; nested and
shared containers are bounded. Every failure is a `CheckpointError` naming the file and what is wrong.
"""
from __future__ import annotations

import math
import os
import struct
import zipfile
from typing import Any

import numpy as np

from ganlatent_jax.port._unpickler import (CheckpointError, LoadBudget, RestrictedUnpickler, StorageType, TensorRef,
                                           UnsafeCheckpointError, to_plain)

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C


class _Storage:
  """A storage read from the file: the only thing a tensor may be built from (the pickle cannot construct one)."""

  __slots__ = ("key", "array")

  def __init__(self, key: str, array: np.ndarray):
    self.key, self.array = key, array

  def __setstate__(self, state):
    raise UnsafeCheckpointError("a storage cannot be modified by the pickle")


def _ints(value, what: str, source: str) -> tuple[int, ...]:
  if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
    raise CheckpointError(f"{source}: tensor {what} must be a tuple of integers, got {value!r:.200}")
  return tuple(value)


def view_bounds(offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, int]:
  """The lowest and highest storage element a (non-empty) strided view touches; strides may be negative."""
  low = offset + sum((n - 1) * s for n, s in zip(size, stride) if s < 0)
  high = offset + sum((n - 1) * s for n, s in zip(size, stride) if s > 0)
  return low, high


def materialize_view(storage: np.ndarray, offset: Any, size: Any, stride: Any, source: str,
                     budget: LoadBudget) -> np.ndarray:
  """A contiguous copy of the strided view `storage[offset + Σ i_k·stride_k]`, after proving it stays inside."""
  size = _ints(size, "size", source)
  stride = _ints(stride, "stride", source)
  if type(offset) is not int:
    raise CheckpointError(f"{source}: tensor storage offset must be an integer, got {offset!r:.100}")
  if len(size) != len(stride):
    raise CheckpointError(f"{source}: tensor size {size} and stride {stride} have different lengths")
  if any(n < 0 for n in size):
    raise CheckpointError(f"{source}: negative tensor size {size}")
  numel = math.prod(size)
  description = f"tensor of size {size}, stride {stride} at offset {offset}"
  if numel == 0:
    return np.zeros(size, storage.dtype)
  low, high = view_bounds(offset, size, stride)
  if low < 0 or high >= storage.size:
    raise CheckpointError(f"{source}: {description} touches elements {low}..{high}, outside its storage of "
                          f"{storage.size} elements")
  budget.charge(numel * storage.itemsize, description)
  # Safe: every element the view addresses was just proven to lie in [0, storage.size).
  view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                         strides=tuple(s * storage.itemsize for s in stride), writeable=False)
  return np.array(view, order="C")  # (ascontiguousarray would turn a 0-d tensor into 1-d)


def _read_member(path: str, archive: zipfile.ZipFile, name: str, nbytes: int | None, budget: LoadBudget) -> bytes:
  """`nbytes` bytes of a zip member (all of it if None), checked against its declared size before decompressing."""
  try:
    info = archive.getinfo(name)
  except KeyError:
    raise CheckpointError(f"{path}: storage record '{name}' is missing (truncated archive?)") from None
  if nbytes is None:
    nbytes = info.file_size
  elif info.file_size < nbytes:
    raise CheckpointError(f"{path}: storage record '{name}' has {info.file_size} bytes, expected {nbytes}")
  budget.charge(nbytes, f"zip member '{name}'")
  with archive.open(info) as member:
    data = member.read(nbytes)
  if len(data) != nbytes:
    raise CheckpointError(f"{path}: zip member '{name}' holds {len(data)} bytes, expected {nbytes} (truncated)")
  return data


def _storage_pid(pid, length: int, path: str):
  if not (isinstance(pid, tuple) and len(pid) == length and pid[0] == "storage"):
    raise CheckpointError(f"{path}: unexpected persistent id {pid!r:.200}")
  storage_type, key, numel = pid[1], pid[2], pid[4]
  if not isinstance(storage_type, StorageType):
    raise CheckpointError(f"{path}: unsupported storage type {storage_type!r:.100}")
  if not isinstance(key, str) or (length == 5 and (type(numel) is not int or numel < 0)):
    raise CheckpointError(f"{path}: malformed storage reference {pid!r:.200}")
  return storage_type.dtype, key, numel


def _load_zip(path: str, archive: zipfile.ZipFile, budget: LoadBudget) -> Any:
  names = archive.namelist()
  pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
  if not pickles:
    raise CheckpointError(f"{path}: zip archive without '<name>/data.pkl' (not a torch.save file)")
  prefix = pickles[0][: -len("data.pkl")]
  big_endian = False
  if prefix + "byteorder" in names:
    big_endian = _read_member(path, archive, prefix + "byteorder", None, budget).strip() == b"big"
  storages: dict[str, _Storage] = {}

  def persistent_load(pid):
    dtype, key, numel = _storage_pid(pid, 5, path)
    if key in storages:
      if storages[key].array.dtype != dtype or storages[key].array.size != numel:
        raise CheckpointError(f"{path}: storage '{key}' is referenced as {numel} x {dtype} and as "
                              f"{storages[key].array.size} x {storages[key].array.dtype}")
      return storages[key]
    raw = _read_member(path, archive, f"{prefix}data/{key}", numel * dtype.itemsize, budget)
    file_dtype = dtype.newbyteorder(">") if big_endian else dtype.newbyteorder("<")
    budget.charge(numel * dtype.itemsize, f"storage '{key}'")
    storages[key] = _Storage(key, np.frombuffer(raw, dtype=file_dtype).astype(dtype))
    return storages[key]

  def rebuild(storage, offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
      raise UnsafeCheckpointError(f"{path}: a tensor's storage must come from the archive, got {storage!r:.100}")
    return materialize_view(storage.array, offset, size, stride, path, budget)

  data = _read_member(path, archive, pickles[0], None, budget)
  return RestrictedUnpickler(data, len(data), persistent_load, rebuild, path, budget).load()


class _LegacyStorageRef:
  __slots__ = ("key",)

  def __init__(self, key):
    self.key = key

  def __setstate__(self, state):
    raise UnsafeCheckpointError("a storage cannot be modified by the pickle")


def _load_legacy(path: str, handle, file_size: int, budget: LoadBudget) -> Any:
  def refuse_persistent(pid):
    raise CheckpointError(f"{path}: persistent id {pid!r:.100} in a header pickle")

  def refuse_tensor(*args):
    raise CheckpointError(f"{path}: tensor in a header pickle")

  def plain_load():
    return RestrictedUnpickler(handle, file_size, refuse_persistent, refuse_tensor, path, budget).load()

  magic = plain_load()
  if magic != LEGACY_MAGIC_NUMBER:
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (bad magic number {magic!r:.100})")
  protocol_version = plain_load()
  if protocol_version != 1001:
    raise CheckpointError(f"{path}: unsupported legacy protocol version {protocol_version!r:.100}")
  sys_info = plain_load()
  little_endian = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True

  storage_dtypes: dict[str, np.dtype] = {}

  def persistent_load(pid):
    dtype, root_key, _ = _storage_pid(pid, 6, path)
    if pid[5] is not None:
      raise CheckpointError(f"{path}: legacy storage views are not supported")
    if storage_dtypes.setdefault(root_key, dtype) != dtype:
      raise CheckpointError(f"{path}: storage '{root_key}' is referenced as {dtype} and {storage_dtypes[root_key]}")
    return _LegacyStorageRef(root_key)

  def deferred_rebuild(storage, offset, size, stride, *unused):
    if not isinstance(storage, _LegacyStorageRef):
      raise UnsafeCheckpointError(f"{path}: a tensor's storage must come from the file, got {storage!r:.100}")
    return TensorRef(storage.key, offset, size, stride)

  result = RestrictedUnpickler(handle, file_size, persistent_load, deferred_rebuild, path, budget).load()
  keys = plain_load()
  if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
    raise CheckpointError(f"{path}: the storage key list is not a list of strings")
  arrays: dict[str, np.ndarray] = {}
  for key in keys:
    header = handle.read(8)
    if len(header) != 8:
      raise CheckpointError(f"{path}: file ends before storage '{key}' (truncated)")
    (numel,) = struct.unpack("<q" if little_endian else ">q", header)
    if key not in storage_dtypes:
      raise CheckpointError(f"{path}: storage '{key}' is not referenced by the pickle")
    if key in arrays:
      raise CheckpointError(f"{path}: storage '{key}' appears twice")
    dtype = storage_dtypes[key]
    remaining = file_size - handle.tell()
    if numel < 0 or numel * dtype.itemsize > remaining:
      raise CheckpointError(f"{path}: storage '{key}' declares {numel} x {dtype} but only {remaining} bytes remain "
                            f"(truncated file)")
    budget.charge(2 * numel * dtype.itemsize, f"storage '{key}'")
    raw = handle.read(numel * dtype.itemsize)
    if len(raw) != numel * dtype.itemsize:
      raise CheckpointError(f"{path}: storage '{key}' has {len(raw)} bytes, expected {numel * dtype.itemsize} "
                            f"(truncated file)")
    file_dtype = dtype.newbyteorder("<" if little_endian else ">")
    arrays[key] = np.frombuffer(raw, dtype=file_dtype).astype(dtype)
  missing = set(storage_dtypes) - set(arrays)
  if missing:
    raise CheckpointError(f"{path}: storages {sorted(missing)} are missing from the file (truncated)")

  def build(ref: TensorRef):
    return materialize_view(arrays[ref.storage_key], ref.offset, ref.size, ref.stride, path, budget)

  return to_plain(result, path, budget, build)


def load_torch_file(path: str | os.PathLike, *, max_bytes: int | None = None) -> Any:
  """Loads a `torch.save` file into plain Python containers of numpy arrays.

  Dicts (including OrderedDict state dicts) become dicts; tensors and parameters become numpy arrays with their
  dtype (bfloat16 via ml_dtypes). Raises `UnsafeCheckpointError` for any global outside the allow-list and
  `CheckpointError` (naming the file) for everything else a file can get wrong: truncated, corrupt or unknown
  files, views outside their storage, sizes beyond what the file can hold, containers nested or shared beyond
  the bounds. `max_bytes` overrides the allocation budget (default: derived from the file's size,
  `LoadBudget.for_file`).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  try:
    file_size = os.path.getsize(path)
    budget = LoadBudget.for_file(path, file_size, max_bytes)
    if zipfile.is_zipfile(path):
      with zipfile.ZipFile(path) as archive:
        return to_plain(_load_zip(path, archive, budget), path, budget)
    with open(path, "rb") as handle:
      if handle.read(2)[:1] != b"\x80":
        raise CheckpointError(f"{path}: neither a zip archive nor a pickle stream (not a torch.save file)")
      handle.seek(0)
      return _load_legacy(path, handle, file_size, budget)
  except CheckpointError as e:
    if not str(e).startswith(path):  # raised by a stand-in that does not know the file
      raise type(e)(f"{path}: {e}") from e
    raise
  except (Exception, RecursionError, MemoryError) as e:  # noqa: BLE001 — anything a hostile file provokes
    raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {str(e)[:300]})") from e


def flatten_state_dict(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
  """{'a': {'b': x}} → {'a.b': x}; keeps only arrays (a state dict's view of a checkpoint)."""
  flat: dict[str, np.ndarray] = {}
  if isinstance(tree, dict):
    for key, value in tree.items():
      flat.update(flatten_state_dict(value, f"{prefix}{key}."))
  elif isinstance(tree, np.ndarray):
    flat[prefix[:-1]] = tree
  return flat


__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_torch_file", "flatten_state_dict", "view_bounds",
           "LEGACY_MAGIC_NUMBER"]
