"""Crafts torch.save-like files opcode by opcode, for the hostile-file and fuzz tests (no torch needed).

`dumps(obj)` writes a protocol-2 pickle of plain values plus these markers:
  Global(module, name)           the GLOBAL opcode
  Call(func, *args)              func(*args) (REDUCE)
  Build(obj, state)              obj then BUILD with state
  Persistent(pid)                BINPERSID of pid
  Put(obj, index) / Get(index)   memoize obj / fetch a memoized object
  Raw(bytes)                     opcodes written verbatim
Then `zip_file(path, pickle_bytes, storages)` / `legacy_file(path, pickle_bytes, storages)` wrap it as either
on-disk format.
"""
from __future__ import annotations

import dataclasses
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C


@dataclasses.dataclass(frozen=True)
class Global:
  module: str
  name: str


@dataclasses.dataclass(frozen=True)
class Call:
  func: Any
  args: tuple

  def __init__(self, func, *args):
    object.__setattr__(self, "func", func)
    object.__setattr__(self, "args", args)


@dataclasses.dataclass(frozen=True)
class Build:
  obj: Any
  state: Any


@dataclasses.dataclass(frozen=True)
class Persistent:
  pid: Any


@dataclasses.dataclass(frozen=True)
class Put:
  obj: Any
  index: int


@dataclasses.dataclass(frozen=True)
class Get:
  index: int


@dataclasses.dataclass(frozen=True)
class Raw:
  data: bytes


def storage(type_name: str, key: str, numel: int, location: str = "cpu") -> Persistent:
  """A zip-format storage reference, e.g. storage("FloatStorage", "0", 4)."""
  return Persistent(("storage", Global("torch", type_name), key, location, numel))


def legacy_storage(type_name: str, key: str, numel: int) -> Persistent:
  return Persistent(("storage", Global("torch", type_name), key, "cpu", numel, None))


def tensor(storage_ref, offset: int, size, stride) -> Call:
  """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""
  return Call(Global("torch._utils", "_rebuild_tensor_v2"), storage_ref, offset, tuple(size), tuple(stride), False,
              Call(Global("collections", "OrderedDict")))


def ordered_dict(items: dict) -> Call:
  return Call(Global("collections", "OrderedDict"), [tuple(kv) for kv in items.items()])


def _emit(obj, out: bytearray) -> None:
  if isinstance(obj, Raw):
    out += obj.data
  elif obj is None:
    out += pickle.NONE
  elif obj is True or obj is False:
    out += pickle.NEWTRUE if obj else pickle.NEWFALSE
  elif isinstance(obj, int):
    if -2**31 <= obj < 2**31:
      out += pickle.BININT + struct.pack("<i", obj)
    else:
      encoded = pickle.encode_long(obj)
      out += pickle.LONG1 + bytes([len(encoded)]) + encoded
  elif isinstance(obj, float):
    out += pickle.BINFLOAT + struct.pack(">d", obj)
  elif isinstance(obj, str):
    data = obj.encode("utf-8")
    out += pickle.BINUNICODE + struct.pack("<I", len(data)) + data
  elif isinstance(obj, bytes):
    out += pickle.BINBYTES + struct.pack("<I", len(obj)) + obj
  elif isinstance(obj, tuple):
    out += pickle.MARK
    for item in obj:
      _emit(item, out)
    out += pickle.TUPLE
  elif isinstance(obj, list):
    out += pickle.EMPTY_LIST
    if obj:
      out += pickle.MARK
      for item in obj:
        _emit(item, out)
      out += pickle.APPENDS
  elif isinstance(obj, dict):
    out += pickle.EMPTY_DICT
    if obj:
      out += pickle.MARK
      for key, value in obj.items():
        _emit(key, out)
        _emit(value, out)
      out += pickle.SETITEMS
  elif isinstance(obj, Global):
    out += pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode()
  elif isinstance(obj, Call):
    _emit(obj.func, out)
    _emit(tuple(obj.args), out)
    out += pickle.REDUCE
  elif isinstance(obj, Build):
    _emit(obj.obj, out)
    _emit(obj.state, out)
    out += pickle.BUILD
  elif isinstance(obj, Persistent):
    _emit(obj.pid, out)
    out += pickle.BINPERSID
  elif isinstance(obj, Put):
    _emit(obj.obj, out)
    out += pickle.LONG_BINPUT + struct.pack("<I", obj.index)
  elif isinstance(obj, Get):
    out += pickle.LONG_BINGET + struct.pack("<I", obj.index)
  else:
    raise TypeError(f"cannot emit {type(obj).__name__}")


def dumps(obj) -> bytes:
  out = bytearray(pickle.PROTO + b"\x02")
  _emit(obj, out)
  out += pickle.STOP
  return bytes(out)


def zip_file(path, pickle_bytes: bytes, storages: dict[str, bytes] | None = None, *,
             compression: int = zipfile.ZIP_STORED) -> None:
  """A torch.save zip archive: archive/data.pkl + archive/data/<key> records."""
  with zipfile.ZipFile(path, "w", compression=compression) as archive:
    archive.writestr("archive/data.pkl", pickle_bytes)
    for key, data in (storages or {}).items():
      archive.writestr(f"archive/data/{key}", data)
    archive.writestr("archive/version", "3\n")


def legacy_file(path, pickle_bytes: bytes, storages: list[tuple[str, int, bytes]] = ()) -> None:
  """A pre-1.6 torch.save stream: headers, the object pickle, the key list, then (numel, bytes) per storage."""
  with open(path, "wb") as f:
    for header in (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
      f.write(dumps(header))
    f.write(pickle_bytes)
    f.write(dumps([key for key, _, _ in storages]))
    for _, numel, data in storages:
      f.write(struct.pack("<q", numel))
      f.write(data)


def floats(values) -> bytes:
  return np.asarray(values, np.float32).tobytes()
