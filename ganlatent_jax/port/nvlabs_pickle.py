"""Read NVlabs network pickles (stylegan2-ada-pytorch, stylegan3 snapshot `.pkl`) as data, executing nothing.

An NVlabs snapshot is a plain pickle of `{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}` whose networks
are `torch_utils.persistence` objects: each pickles as `_reconstruct_persistent_obj(meta)` with
`meta = {type: 'class', version, module_src, class_name, state}` — upstream *executes* `module_src` to rebuild the
class. Here the pickle runs through the same restricted unpickler as every torch file (`_unpickler.py`: allow-listed
globals only, fresh stand-ins per load, a memory budget derived from the file's size, every failure a
`CheckpointError` naming the file), with four more names, each resolved to inert data:

  * `torch_utils.persistence._reconstruct_persistent_obj(meta)` → a `PersistentObject` record (class name, state,
    the sha256 of `module_src` and whether it is a known upstream file); `module_src` is never compiled, executed
    or imported, and is dropped after hashing;
  * `dnnlib.util.EasyDict` → a plain dict;
  * `torch.storage._load_from_bytes(b)` → the storage inside `b`, itself a complete legacy `torch.save` stream of one
    storage, parsed by the restricted unpickler (its header pickles may name only storage types);
  * numpy scalars/arrays/dtypes of numpy 1 (`numpy.core.*`) and numpy 2 (`numpy._core.*`) — already allowed.

Anything else (e.g. `posix.system`) is refused with its name. `state_dict(record)` walks `_parameters`, `_buffers`
(minus `_non_persistent_buffers_set`) and `_modules` exactly as torch's `Module.state_dict()` does.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port._unpickler import (CheckpointError, LoadBudget, RestrictedUnpickler, StorageType,
                                           UnsafeCheckpointError, describe, to_plain)

# sha256 of the UTF-8 bytes of upstream module sources embedded in genuine snapshots (informational only: a source
# is never run, so an unknown one is not refused — it just means the file was made by modified code).
KNOWN_MODULE_SOURCES = {
    "53b4e1ec457171d4e2c1454d48013765ab626141c35cdd383b020950effe11a5": "stylegan2-ada-pytorch training/networks.py",
    "77eb17876bc7ba87cdc9281caf925daf507ce0937b84d0f32134d4d08e13061e": "stylegan2-ada-pytorch training/augment.py",
    "06082fb3e8929e477f58fb8bc78e7ecb9a9209eb01444272d1d153c85a6a89f7": "stylegan3 training/networks_stylegan3.py",
    "b6f14e8fa2a95de4d38218fef31380c6a70de770f585107e209ff83075c307ef": "stylegan3 training/networks_stylegan2.py",
    "43c6b98bc68d5d214dd2e2775a10eb007dee034c005766fbc310005147bfb788": "stylegan3 training/augment.py",
}
PERSISTENT_MARKER = "__persistent_class__"  # key of the dicts that stand for reconstructed persistent objects


@dataclasses.dataclass(frozen=True)
class PersistentObject:
  """A `torch_utils.persistence` object read as data (the class is never rebuilt)."""
  class_name: str
  state: dict
  module_sha256: str
  module_known: str | None  # the upstream file the embedded source is, or None if it matches none we know


class _EasyDict(dict):
  """Stand-in for `dnnlib.util.EasyDict` (a dict with attribute access): only filled by SETITEM(S)."""


class _BlobStorage:
  __slots__ = ("array",)

  def __init__(self, array: np.ndarray):
    object.__setattr__(self, "array", array)

  def __setattr__(self, name, value):
    raise UnsafeCheckpointError("a storage cannot be modified by the pickle")

  def __setstate__(self, state):
    raise UnsafeCheckpointError("a storage cannot be modified by the pickle")


def _read_storage_blob(blob: Any, path: str, budget: LoadBudget) -> _BlobStorage:
  """`torch.storage._load_from_bytes(blob)`: a legacy torch.save stream of one storage → its data."""
  if not isinstance(blob, (bytes, bytearray)):
    raise CheckpointError(f"{path}: _load_from_bytes needs bytes, got {describe(blob)}")
  source = io.BytesIO(bytes(blob))
  size = len(blob)

  def refuse_tensor(*args):
    raise CheckpointError(f"{path}: a tensor inside a storage blob")

  def refuse_persistent(pid):
    raise CheckpointError(f"{path}: persistent id {describe(pid)} in a storage blob header")

  def plain_load(persistent_load=refuse_persistent):
    return RestrictedUnpickler(source, size, persistent_load, refuse_tensor, path, budget).load()

  if plain_load() != torch_pickle.LEGACY_MAGIC_NUMBER:
    raise CheckpointError(f"{path}: a storage blob without the torch.save magic number")
  if plain_load() != 1001:
    raise CheckpointError(f"{path}: a storage blob of an unsupported legacy protocol")
  sys_info = plain_load()
  little_endian = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
  referenced: list[tuple[np.dtype, str, int]] = []

  def persistent_load(pid):
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], StorageType)
            and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0 and pid[5] is None):
      raise CheckpointError(f"{path}: malformed storage reference {describe(pid)} in a storage blob")
    referenced.append((pid[1].dtype, pid[2], pid[4]))
    return None

  plain_load(persistent_load)
  keys = plain_load()
  if len(referenced) != 1 or keys != [referenced[0][1]]:
    raise CheckpointError(f"{path}: a storage blob must hold exactly one storage (keys {describe(keys)})")
  dtype, _, numel = referenced[0]
  header = source.read(8)
  if len(header) != 8:
    raise CheckpointError(f"{path}: a storage blob ends before its data (truncated)")
  (stored_numel,) = struct.unpack("<q" if little_endian else ">q", header)
  nbytes = numel * dtype.itemsize
  if stored_numel != numel or size - source.tell() != nbytes:
    raise CheckpointError(f"{path}: a storage blob declares {numel} x {dtype} but holds {size - source.tell()} "
                          f"bytes")
  budget.charge(nbytes, f"storage blob of {numel} x {dtype}")
  raw = source.read(nbytes)
  return _BlobStorage(np.frombuffer(raw, dtype.newbyteorder("<" if little_endian else ">")).astype(dtype))


class NetworkUnpickler(RestrictedUnpickler):
  """The torch allow-list plus the names an NVlabs snapshot needs, each resolved to inert data."""

  def __init__(self, data: bytes, path: str, budget: LoadBudget):
    self._nv_path, self._nv_budget = path, budget

    def rebuild(storage, offset, size, stride, *unused):
      if not isinstance(storage, _BlobStorage):
        raise UnsafeCheckpointError(f"{path}: a tensor's storage must come from a storage blob, got "
                                    f"{describe(storage)}")
      return torch_pickle.materialize_view(storage.array, offset, size, stride, path, budget)

    def refuse_persistent(pid):
      raise CheckpointError(f"{path}: persistent id {describe(pid)} in a network pickle")

    super().__init__(data, len(data), refuse_persistent, rebuild, path, budget)

  def _allow_list(self, rebuild_tensor):  # noqa: D401 — instance method here: the stand-ins need path and budget
    allowed = RestrictedUnpickler._allow_list(rebuild_tensor)
    path, budget = self._nv_path, self._nv_budget

    def load_from_bytes(blob):
      return _read_storage_blob(blob, path, budget)

    def reconstruct_persistent_obj(meta):
      return _persistent_record(meta, path)

    allowed[("torch.storage", "_load_from_bytes")] = load_from_bytes
    allowed[("torch_utils.persistence", "_reconstruct_persistent_obj")] = reconstruct_persistent_obj
    allowed[("dnnlib.util", "EasyDict")] = _EasyDict
    return allowed

  def load_newobj(self):
    if self.stack[-2] is _EasyDict:
      if self.stack[-1] != ():
        raise UnsafeCheckpointError(f"{self._path}: dnnlib.util.EasyDict built with arguments (refused)")
      self.stack[-2:] = [_EasyDict()]
      return
    super().load_newobj()
  dispatch = dict(RestrictedUnpickler.dispatch)
  dispatch[pickle.NEWOBJ[0]] = load_newobj


def _persistent_record(meta: Any, path: str) -> dict:
  """The data of a persistence record; `module_src` is hashed and dropped, never run."""
  if not isinstance(meta, dict) or meta.get("type") != "class":
    raise CheckpointError(f"{path}: a persistent-object record must be a dict with type 'class', got "
                          f"{describe(meta if not isinstance(meta, dict) else meta.get('type'))}")
  source, class_name, state = meta.get("module_src"), meta.get("class_name"), meta.get("state")
  if not isinstance(source, str) or not isinstance(class_name, str) or not isinstance(state, dict):
    raise CheckpointError(f"{path}: persistent object record lacks module_src/class_name/state")
  digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
  return {PERSISTENT_MARKER: class_name, "module_sha256": digest, "version": meta.get("version"), "state": state}


def _to_records(tree: Any) -> Any:
  """Plain tree → the same with persistent-object dicts turned into `PersistentObject` (shared ones stay shared)."""
  memo: dict[int, Any] = {}

  def walk(node):
    if id(node) in memo:
      return memo[id(node)]
    if isinstance(node, dict) and PERSISTENT_MARKER in node:
      digest = node["module_sha256"]
      out = PersistentObject(node[PERSISTENT_MARKER], walk(node["state"]), digest, KNOWN_MODULE_SOURCES.get(digest))
    elif isinstance(node, dict):
      out = {k: walk(v) for k, v in node.items()}
    elif type(node) in (list, tuple):
      out = type(node)(walk(v) for v in node)
    else:
      out = node
    memo[id(node)] = out
    return out

  return walk(tree)


def is_network_pickle(path: str | os.PathLike) -> bool:
  """A raw pickle that is not a torch.save file (neither a zip archive nor the legacy magic-number stream)."""
  path = os.fspath(path)
  if os.path.isdir(path) or zipfile.is_zipfile(path):
    return False
  with open(path, "rb") as handle:
    head = handle.read(16)
  if head[:1] != b"\x80":
    return False
  legacy_magic = b"\x8a\x0a" + torch_pickle.LEGACY_MAGIC_NUMBER.to_bytes(10, "little")
  return legacy_magic not in head


def load_network_pickle(path: str | os.PathLike, *, max_bytes: int | None = None) -> Any:
  """An NVlabs network pickle → plain containers with `PersistentObject` records (tensors as numpy arrays)."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"network pickle not found: {path}")
  try:
    file_size = os.path.getsize(path)
    budget = LoadBudget.for_file(path, file_size, max_bytes)
    with open(path, "rb") as handle:
      data = handle.read()
    return _to_records(to_plain(NetworkUnpickler(data, path, budget).load(), path, budget))
  except CheckpointError as e:
    if not str(e).startswith(path):
      raise type(e)(f"{path}: {e}") from e
    raise
  except (Exception, RecursionError, MemoryError) as e:  # noqa: BLE001 — anything a hostile file provokes
    raise CheckpointError(f"{path}: corrupt or truncated network pickle ({type(e).__name__}: {str(e)[:300]})") from e


def load_checkpoint(path: str | os.PathLike, **kwargs) -> Any:
  """Any supported file: torch.save files via `torch_pickle`, other pickles as NVlabs network pickles."""
  if is_network_pickle(path):
    return load_network_pickle(path, **kwargs)
  return torch_pickle.load_torch_file(path, **kwargs)


def state_dict(obj: PersistentObject, prefix: str = "") -> dict[str, np.ndarray]:
  """`Module.state_dict()` of a persistent module: parameters, persistent buffers, then submodules, recursively."""
  if not isinstance(obj, PersistentObject):
    raise CheckpointError(f"expected a network object at {prefix or 'the top level'}, got {type(obj).__name__}")
  state = obj.state
  flat: dict[str, np.ndarray] = {}
  skip = state.get("_non_persistent_buffers_set") or set()
  for group in ("_parameters", "_buffers"):
    for name, value in (state.get(group) or {}).items():
      if value is None or (group == "_buffers" and name in skip):
        continue
      if not isinstance(value, np.ndarray):
        raise CheckpointError(f"{prefix}{name}: expected a tensor, got {type(value).__name__}")
      flat[prefix + name] = value
  for name, module in (state.get("_modules") or {}).items():
    if module is not None:
      flat.update(state_dict(module, f"{prefix}{name}."))
  return flat


def submodule(obj: PersistentObject, dotted: str) -> PersistentObject:
  """The persistent submodule at `a.b.c` (its `.state` has the non-tensor attributes: geometry, gains, ...)."""
  for name in filter(None, dotted.split(".")):
    obj = (obj.state.get("_modules") or {}).get(name)
    if not isinstance(obj, PersistentObject):
      raise CheckpointError(f"no network module {dotted!r}")
  return obj


__all__ = ["PersistentObject", "KNOWN_MODULE_SOURCES", "is_network_pickle", "load_network_pickle", "load_checkpoint",
           "state_dict", "submodule"]
