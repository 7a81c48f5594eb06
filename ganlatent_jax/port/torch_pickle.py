"""Read PyTorch checkpoint files without torch and without executing anything from them.

Both on-disk layouts of `torch.save` are supported:
  * the zip archive (PyTorch >= 1.6): `<prefix>/data.pkl` + raw storages `<prefix>/data/<key>`;
  * the legacy stream (PyTorch < 1.6): magic number, protocol, sys info, the object pickle, the list of storage keys,
    then for each key an int64 element count followed by the raw bytes.

The pickle is read by a restricted unpickler: only the handful of globals that tensors, state dicts and plain numpy
arrays need are resolved, each to our own safe stand-in; any other global (`os.system`, `builtins.eval`, a model
class, ...) raises `UnsafeCheckpointError` naming it, before anything could run. Tensors come back as numpy arrays.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Callable

import numpy as np

try:  # ml_dtypes ships with jax; only needed for bfloat16 storages.
  import ml_dtypes
  _BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover
  _BFLOAT16 = None

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C


class CheckpointError(ValueError):
  """A checkpoint file that cannot be read: names the file and what is wrong."""


class UnsafeCheckpointError(CheckpointError):
  """The pickle asks for a global outside the allow-list (it could execute code)."""


_STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}
if _BFLOAT16 is not None:
  _STORAGE_DTYPES["BFloat16Storage"] = _BFLOAT16


class _StorageType:
  """Stand-in for `torch.FloatStorage` & co: only carries the dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = _STORAGE_DTYPES[name]


def _as_strided(storage: np.ndarray, offset: int, size, stride) -> np.ndarray:
  size = tuple(int(s) for s in size)
  stride = tuple(int(s) for s in stride)
  if not size:
    return np.array(storage[offset])
  needed = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride) if n > 0)
  if any(n == 0 for n in size):
    return np.zeros(size, storage.dtype)
  if needed > storage.size:
    raise CheckpointError(f"tensor of size {size} and stride {stride} at offset {offset} reads past its storage "
                          f"of {storage.size} elements")
  view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                         strides=tuple(s * storage.itemsize for s in stride))
  return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  return _as_strided(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
  return data


class _Namespace(dict):
  """Stand-in for `argparse.Namespace` (rosinality's train.py saves its args): a plain dict of the attributes."""

  def __setstate__(self, state):
    self.update(state)


def _numpy_reconstruct(cls, shape, dtype_code):
  if cls is not np.ndarray:
    raise UnsafeCheckpointError(f"numpy reconstruct of {cls!r} refused")
  return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _numpy_scalar(dtype, data=None):
  return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("argparse", "Namespace"): _Namespace,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
for _name in _STORAGE_DTYPES:
  _ALLOWED[("torch", _name)] = _StorageType(_name)


class _RestrictedUnpickler(pickle.Unpickler):

  def __init__(self, file, persistent_load: Callable[[Any], Any], source: str):
    super().__init__(file, encoding="latin1")
    self._persistent_load = persistent_load
    self._source = source

  def find_class(self, module, name):
    try:
      return _ALLOWED[(module, name)]
    except KeyError:
      raise UnsafeCheckpointError(
          f"{self._source}: the pickle asks for the global '{module}.{name}', which is not a tensor, state dict or "
          f"plain container; refusing to load it (it could execute code)") from None

  def persistent_load(self, pid):
    return self._persistent_load(pid)


def _storage_dtype(storage_type, source) -> np.dtype:
  if isinstance(storage_type, _StorageType):
    return storage_type.dtype
  raise CheckpointError(f"{source}: unsupported storage type {storage_type!r}")


def _load_zip(path: str, archive: zipfile.ZipFile) -> Any:
  names = archive.namelist()
  pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
  if not pickles:
    raise CheckpointError(f"{path}: zip archive without '<name>/data.pkl' (not a torch.save file)")
  prefix = pickles[0][: -len("data.pkl")]
  big_endian = False
  if prefix + "byteorder" in names:
    big_endian = archive.read(prefix + "byteorder").strip() == b"big"
  storages: dict[str, np.ndarray] = {}

  def persistent_load(pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise CheckpointError(f"{path}: unexpected persistent id {pid!r}")
    _, storage_type, key, _location, numel = pid[:5]
    dtype = _storage_dtype(storage_type, path)
    if big_endian:
      dtype = dtype.newbyteorder(">")
    if key not in storages:
      record = f"{prefix}data/{key}"
      try:
        raw = archive.read(record)
      except KeyError:
        raise CheckpointError(f"{path}: storage record '{record}' is missing (truncated archive?)") from None
      if len(raw) < numel * dtype.itemsize:
        raise CheckpointError(f"{path}: storage record '{record}' has {len(raw)} bytes, "
                              f"expected {numel * dtype.itemsize} ({numel} x {dtype})")
      storages[key] = np.frombuffer(raw, dtype=dtype, count=numel).astype(dtype.newbyteorder("="))
    return storages[key]

  data = archive.read(pickles[0])
  return _RestrictedUnpickler(io.BytesIO(data), persistent_load, path).load()


class _DeferredTensor:
  """A legacy-format tensor: its storage bytes come after the object pickle, so it is built afterwards."""

  def __init__(self, storage_key, offset, size, stride):
    self.storage_key, self.offset, self.size, self.stride = storage_key, offset, size, stride


class _LegacyStorageRef:

  def __init__(self, key):
    self.key = key


def _load_legacy(path: str, handle) -> Any:
  def refuse_persistent(pid):
    raise CheckpointError(f"{path}: persistent id {pid!r} in a header pickle")

  def plain_load():
    return _RestrictedUnpickler(handle, refuse_persistent, path).load()

  magic = plain_load()
  if magic != LEGACY_MAGIC_NUMBER:
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (bad magic number {magic!r})")
  protocol_version = plain_load()
  if protocol_version != 1001:
    raise CheckpointError(f"{path}: unsupported legacy protocol version {protocol_version!r}")
  sys_info = plain_load()
  little_endian = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True

  storage_dtypes: dict[str, np.dtype] = {}

  def persistent_load(pid):
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
      raise CheckpointError(f"{path}: unexpected persistent id {pid!r}")
    _, storage_type, root_key, _location, _numel, view_metadata = pid
    if view_metadata is not None:
      raise CheckpointError(f"{path}: legacy storage views are not supported")
    storage_dtypes[root_key] = _storage_dtype(storage_type, path)
    return _LegacyStorageRef(root_key)

  def deferred_rebuild(storage, storage_offset, size, stride, *unused):
    return _DeferredTensor(storage.key, storage_offset, size, stride)

  class _LegacyUnpickler(_RestrictedUnpickler):

    def find_class(self, module, name):
      if (module, name) in {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}:
        return deferred_rebuild
      return super().find_class(module, name)

  result = _LegacyUnpickler(handle, persistent_load, path).load()
  keys = plain_load()
  arrays: dict[str, np.ndarray] = {}
  for key in keys:
    header = handle.read(8)
    if len(header) != 8:
      raise CheckpointError(f"{path}: file ends before storage '{key}' (truncated)")
    (numel,) = struct.unpack("<q" if little_endian else ">q", header)
    if key not in storage_dtypes:
      raise CheckpointError(f"{path}: storage '{key}' is not referenced by the pickle")
    dtype = storage_dtypes[key]
    raw = handle.read(numel * dtype.itemsize)
    if len(raw) != numel * dtype.itemsize:
      raise CheckpointError(f"{path}: storage '{key}' has {len(raw)} bytes, expected {numel * dtype.itemsize} "
                            f"(truncated file)")
    file_dtype = dtype if little_endian else dtype.newbyteorder(">")
    arrays[key] = np.frombuffer(raw, dtype=file_dtype).astype(dtype)
  missing = set(storage_dtypes) - set(arrays)
  if missing:
    raise CheckpointError(f"{path}: storages {sorted(missing)} are missing from the file (truncated)")

  def build(leaf):
    if isinstance(leaf, _DeferredTensor):
      return _as_strided(arrays[leaf.storage_key], leaf.offset, leaf.size, leaf.stride)
    return leaf

  return _to_plain(result, build)


def _to_plain(obj, leaf=lambda x: x):
  """OrderedDict → dict, recursively (Namespace stays a dict subclass); `leaf` maps everything else."""
  if isinstance(obj, _Namespace):
    return _Namespace({k: _to_plain(v, leaf) for k, v in obj.items()})
  if isinstance(obj, dict):
    return {k: _to_plain(v, leaf) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_to_plain(v, leaf) for v in obj)
  return leaf(obj)


def load_torch_file(path: str | os.PathLike) -> Any:
  """Loads a `torch.save` file into plain Python containers of numpy arrays.

  Dicts (including OrderedDict state dicts) become dicts; tensors and parameters become numpy arrays with their
  dtype (bfloat16 via ml_dtypes). Raises `UnsafeCheckpointError` for any global outside the allow-list and
  `CheckpointError` (naming the file) for truncated, corrupt or unknown files.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  try:
    if zipfile.is_zipfile(path):
      with zipfile.ZipFile(path) as archive:
        return _to_plain(_load_zip(path, archive))
    with open(path, "rb") as handle:
      if handle.read(2)[:1] != b"\x80":
        raise CheckpointError(f"{path}: neither a zip archive nor a pickle stream (not a torch.save file)")
      handle.seek(0)
      return _to_plain(_load_legacy(path, handle))
  except CheckpointError:
    raise
  except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, struct.error, ValueError, IndexError,
          TypeError) as e:
    raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})") from e


def flatten_state_dict(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
  """{'a': {'b': x}} → {'a.b': x}; keeps only arrays (a state dict's view of a checkpoint)."""
  flat: dict[str, np.ndarray] = {}
  if isinstance(tree, dict):
    for key, value in tree.items():
      flat.update(flatten_state_dict(value, f"{prefix}{key}."))
  elif isinstance(tree, np.ndarray):
    flat[prefix[:-1]] = tree
  return flat


__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_torch_file", "flatten_state_dict"]
