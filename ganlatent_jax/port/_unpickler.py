"""The restricted unpickler behind `torch_pickle`: runs a hostile pickle without running code or exhausting memory.

What it guarantees (each guarded by a test in tests/test_port_torch_pickle*.py):
  * only allow-listed globals resolve, each to a stand-in created for this load; objects a pickle may modify
    (BUILD) are limited to fresh instances of our own containers, so no load can change a later one;
  * numpy arrays and dtypes are rebuilt from their pickled state by us (never by numpy's own unpickling), refusing
    object, structured and sub-array dtypes; the raw bytes must match the declared shape exactly;
  * every length a pickle declares is checked against the bytes that remain before anything is allocated;
    tuple nesting is bounded while unpickling (hashing a deep tuple overflows the C stack);
  * `to_plain` converts the result to plain containers preserving shared objects, refusing cycles, nesting
    deeper than `MAX_DEPTH` and trees whose expanded size exceeds the file-derived node budget.
"""
from __future__ import annotations

import collections
import math
import pickle
import struct
from typing import Any, Callable

import numpy as np

try:  # ml_dtypes ships with jax; only needed for bfloat16 storages.
  import ml_dtypes
  _BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover
  _BFLOAT16 = None

MAX_DEPTH = 100  # containers nested deeper than this are refused (state dicts nest a handful of levels)
BUDGET_FACTOR = 4  # a load may allocate this many times the file's size ...
BUDGET_SLACK = 256 << 20  # ... plus this many bytes (tiny files, compressed members)
NODE_SLACK = 100_000  # a load's expanded container tree may have the file's size in nodes, plus this many


class CheckpointError(ValueError):
  """A checkpoint file that cannot be read: names the file and what is wrong."""


class UnsafeCheckpointError(CheckpointError):
  """The pickle asks for a global outside the allow-list, or tries to modify something it may not."""


def describe(obj: Any) -> str:
  """A short description of a pickled value for error messages (never repr() of a possibly huge structure)."""
  if obj is None or isinstance(obj, (bool, int, float)):
    return repr(obj)[:60]
  if isinstance(obj, (str, bytes)):
    return repr(obj[:60])
  return f"<{type(obj).__name__}>"


class LoadBudget:
  """The bytes and container nodes one load may allocate, derived from the file's size."""

  def __init__(self, source: str, max_bytes: int, max_nodes: int):
    self.source, self.max_bytes, self.max_nodes, self.used = source, max_bytes, max_nodes, 0

  @classmethod
  def for_file(cls, source: str, file_size: int, max_bytes: int | None = None) -> "LoadBudget":
    if max_bytes is None:
      max_bytes = BUDGET_FACTOR * file_size + BUDGET_SLACK
    return cls(source, max_bytes, NODE_SLACK + file_size)

  def charge(self, nbytes: int, what: str) -> None:
    if nbytes < 0 or self.used + nbytes > self.max_bytes:
      raise CheckpointError(f"{self.source}: {what} needs {nbytes} bytes, beyond what a file of this size may "
                            f"allocate ({self.max_bytes - self.used} of {self.max_bytes} left)")
    self.used += nbytes


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


class _Frozen:
  """Base of the stand-ins a pickle may reference but never modify."""
  __slots__ = ()

  def __setattr__(self, name, value):
    raise UnsafeCheckpointError(f"the pickle may not modify {type(self).__name__}")

  def __setstate__(self, state):
    raise UnsafeCheckpointError(f"the pickle may not modify {type(self).__name__}")


class StorageType(_Frozen):
  """Stand-in for `torch.FloatStorage` & co: carries the dtype; immutable and created anew for every load."""
  __slots__ = ("name", "dtype")

  def __init__(self, name: str):
    object.__setattr__(self, "name", name)
    object.__setattr__(self, "dtype", _STORAGE_DTYPES[name])

  def __repr__(self):
    return f"torch.{self.name}"


class TensorRef(_Frozen):
  """A tensor whose storage is read after the pickle (legacy format): materialised by `to_plain`."""
  __slots__ = ("storage_key", "offset", "size", "stride")

  def __init__(self, storage_key, offset, size, stride):
    for name, value in zip(self.__slots__, (storage_key, offset, size, stride)):
      object.__setattr__(self, name, value)


class _NdarrayClass(_Frozen):
  """Stand-in for the `numpy.ndarray` global: only accepted as `_reconstruct`'s first argument."""
  __slots__ = ()


class Namespace(dict):
  """Stand-in for `argparse.Namespace` (rosinality's train.py saves its args): a plain dict of the attributes."""

  def __setstate__(self, state):
    if not isinstance(state, dict):
      raise CheckpointError(f"argparse.Namespace state must be a dict, got {describe(state)}")
    self.update(state)


class _PickledDType:
  """A `numpy.dtype` as pickled (constructor args + BUILD state), resolved by us with unsafe kinds refused."""
  __slots__ = ("spec", "state")

  def __init__(self, spec, align=False, copy=True):
    if not isinstance(spec, str) or len(spec) > 16:
      raise CheckpointError(f"numpy dtype spec must be a short string, got {describe(spec)}")
    self.spec, self.state = spec, None

  def __setstate__(self, state):
    if not isinstance(state, tuple) or len(state) not in (8, 9) or self.state is not None:
      raise CheckpointError(f"malformed numpy dtype state {describe(state)}")
    self.state = state

  def resolve(self) -> np.dtype:
    dtype = np.dtype(self.spec)
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None or dtype.kind == "V":
      raise UnsafeCheckpointError(f"numpy dtype {self.spec!r} refused (only plain numeric, bool and string "
                                  f"dtypes are read)")
    if self.state is not None:
      _, byteorder, subdescr, names, fields, elsize = self.state[:6]
      if subdescr is not None or names is not None or fields is not None:
        raise UnsafeCheckpointError(f"structured or sub-array numpy dtype {self.spec!r} refused")
      if dtype.kind in "SU" and type(elsize) is int and elsize > 0:
        dtype = np.dtype(f"{dtype.kind}{elsize // (4 if dtype.kind == 'U' else 1)}")
      if byteorder in ("<", ">") and dtype.itemsize > 1 and dtype.kind not in "SU":
        dtype = dtype.newbyteorder(byteorder)
    return dtype


def _as_bytes(data) -> bytes:
  if isinstance(data, str):  # Python 2 pickles store raw data as latin-1 text
    return data.encode("latin1")
  if not isinstance(data, (bytes, bytearray)):
    raise CheckpointError(f"numpy raw data must be bytes, got {describe(data)}")
  return bytes(data)


class _PickledArray:
  """A `numpy.ndarray` as pickled (`_reconstruct` + BUILD state), resolved by us from its raw bytes."""
  __slots__ = ("state",)

  def __init__(self):
    self.state = None

  def __setstate__(self, state):
    if not isinstance(state, tuple) or len(state) not in (4, 5) or self.state is not None:
      raise CheckpointError(f"malformed numpy array state {describe(state)}")
    self.state = state

  def resolve(self, budget: LoadBudget) -> np.ndarray:
    if self.state is None:
      raise CheckpointError("numpy array without its data")
    shape, dtype, is_fortran, raw = self.state[-4:]
    if not isinstance(dtype, _PickledDType):
      raise CheckpointError(f"numpy array dtype must be a pickled dtype, got {describe(dtype)}")
    dtype = dtype.resolve()
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
      raise CheckpointError(f"numpy array shape must be non-negative integers, got {describe(shape)}")
    raw = _as_bytes(raw)
    if len(raw) != math.prod(shape) * dtype.itemsize:
      raise CheckpointError(f"numpy array of shape {shape} and dtype {dtype} has {len(raw)} bytes of data")
    budget.charge(len(raw), f"numpy array of shape {shape}")
    return np.frombuffer(raw, dtype).reshape(shape, order="F" if is_fortran else "C").copy()


def _reconstruct(cls, shape, dtype_code):
  if not isinstance(cls, _NdarrayClass):
    raise UnsafeCheckpointError(f"numpy reconstruct of {describe(cls)} refused")
  return _PickledArray()


def _numpy_scalar(dtype, data=None):
  if not isinstance(dtype, _PickledDType):
    raise CheckpointError(f"numpy scalar dtype must be a pickled dtype, got {describe(dtype)}")
  dtype = dtype.resolve()
  if data is None:
    return dtype.type()
  data = _as_bytes(data)
  if len(data) != dtype.itemsize:
    raise CheckpointError(f"numpy scalar of dtype {dtype} has {len(data)} bytes")
  return np.frombuffer(data, dtype)[0]


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
  return data


def _codecs_encode(text, encoding="utf-8", errors="strict"):
  """`_codecs.encode` as protocol-2 pickles use it for bytes (latin-1 text → bytes); no other codec is looked up."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8") or errors != "strict":
    raise UnsafeCheckpointError(f"_codecs.encode({describe(text)}, {describe(encoding)}) refused")
  return text.encode(encoding)


class _BoundedFile:
  """The file (or bytes) a pickle is read from: a read longer than what remains is an error, not an allocation."""

  def __init__(self, source, size: int, path: str):
    import io
    self._file = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    self._size, self._path = size, path

  def remaining(self) -> int:
    return self._size - self._file.tell()

  def read(self, n: int = -1) -> bytes:
    if n is not None and n > 65536 and n > self.remaining():  # small reads cannot allocate much: not checked
      raise CheckpointError(f"{self._path}: the pickle declares {n} bytes but only {self.remaining()} remain")
    return self._file.read(n)

  def readline(self) -> bytes:
    return self._file.readline()

  def readinto(self, buffer) -> int:
    return self._file.readinto(buffer)


class RestrictedUnpickler(pickle._Unpickler):  # the pure-Python unpickler: every opcode is ours to check
  """Unpickles one pickle from `source` (bytes or an open file of `size` bytes) with our allow-list.

  `persistent_load(pid)` returns storages; `rebuild_tensor(storage, offset, size, stride, ...)` builds tensors.
  """

  dispatch = dict(pickle._Unpickler.dispatch)

  def __init__(self, source, size: int, persistent_load: Callable[[Any], Any],
               rebuild_tensor: Callable[..., Any], path: str, budget: LoadBudget):
    super().__init__(_BoundedFile(source, size, path), encoding="latin1")
    self._persistent_load, self._path, self._budget = persistent_load, path, budget
    self._tuple_depth: dict[int, tuple[int, tuple]] = {}
    self._allowed = self._allow_list(rebuild_tensor)
    self._callables = [v for v in self._allowed.values() if not isinstance(v, _Frozen)]

  @staticmethod
  def _allow_list(rebuild_tensor) -> dict[tuple[str, str], Any]:
    """Fresh stand-ins for this load only (a BUILD on one of them could otherwise affect later loads)."""
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("argparse", "Namespace"): Namespace,
        ("numpy", "dtype"): _PickledDType,
        ("_codecs", "encode"): _codecs_encode,
    }
    ndarray = _NdarrayClass()
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
      allowed[(core, "_reconstruct")] = _reconstruct
      allowed[(core, "scalar")] = _numpy_scalar
    allowed[("numpy", "ndarray")] = ndarray
    for name in _STORAGE_DTYPES:
      allowed[("torch", name)] = StorageType(name)
    return allowed

  def find_class(self, module, name):
    try:
      return self._allowed[(module, name)]
    except KeyError:
      raise UnsafeCheckpointError(
          f"{self._path}: the pickle asks for the global '{module}.{name}', which is not a tensor, state dict or "
          f"plain container; refusing to load it (it could execute code)") from None

  def persistent_load(self, pid):
    return self._persistent_load(pid)

  def _check_callable(self, func):
    if not any(func is allowed for allowed in self._callables):
      raise UnsafeCheckpointError(f"{self._path}: the pickle calls {describe(func)}, which is not allow-listed")

  def load_reduce(self):
    self._check_callable(self.stack[-2])
    super().load_reduce()
  dispatch[pickle.REDUCE[0]] = load_reduce

  def _instantiate(self, klass, args):
    self._check_callable(klass)
    super()._instantiate(klass, args)

  def load_newobj(self):
    if not any(self.stack[-2] is cls for cls in (Namespace, collections.OrderedDict)):
      raise UnsafeCheckpointError(f"{self._path}: the pickle instantiates {describe(self.stack[-2])} (refused)")
    super().load_newobj()
  dispatch[pickle.NEWOBJ[0]] = load_newobj

  def load_newobj_ex(self):
    raise UnsafeCheckpointError(f"{self._path}: NEWOBJ_EX is not used by torch.save (refused)")
  dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

  def load_build(self):
    state = self.stack.pop()
    inst = self.stack[-1]
    if type(inst) is collections.OrderedDict:  # a state dict's `_metadata`: not needed, dropped
      if state is not None and not isinstance(state, dict):
        raise CheckpointError(f"{self._path}: malformed OrderedDict state {describe(state)}")
      return
    if type(inst) not in (Namespace, _PickledDType, _PickledArray):
      raise UnsafeCheckpointError(f"{self._path}: the pickle modifies {describe(inst)} (refused)")
    inst.__setstate__(state)
  dispatch[pickle.BUILD[0]] = load_build

  def load_bytearray8(self):
    (length,) = struct.unpack("<Q", self.read(8))
    remaining = self._file_remaining()
    if length > remaining:
      raise CheckpointError(f"{self._path}: BYTEARRAY8 declares {length} bytes but only {remaining} remain")
    self.append(bytearray(self.read(length)))
  dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

  def _file_remaining(self) -> int:
    frame = self._unframer.current_frame
    if frame is not None:
      return len(frame.getbuffer()) - frame.tell()
    return self._file_read.__self__.remaining()

  def _track_tuple(self):
    value = self.stack[-1]
    depth = 1 + max((self._tuple_depth[id(v)][0] for v in value if type(v) is tuple and id(v) in self._tuple_depth),
                    default=0)
    if depth > MAX_DEPTH:
      raise CheckpointError(f"{self._path}: tuples nested deeper than {MAX_DEPTH}")
    self._tuple_depth[id(value)] = (depth, value)  # keeps the tuple alive, so its id stays unique

  def load_tuple(self):
    super().load_tuple()
    self._track_tuple()
  dispatch[pickle.TUPLE[0]] = load_tuple

  def load_tuple1(self):
    super().load_tuple1()
    self._track_tuple()
  dispatch[pickle.TUPLE1[0]] = load_tuple1

  def load_tuple2(self):
    super().load_tuple2()
    self._track_tuple()
  dispatch[pickle.TUPLE2[0]] = load_tuple2

  def load_tuple3(self):
    super().load_tuple3()
    self._track_tuple()
  dispatch[pickle.TUPLE3[0]] = load_tuple3


_PASS_THROUGH = (type(None), bool, int, float, complex, str, bytes, bytearray, np.ndarray, np.generic, slice,
                 set, frozenset)


def to_plain(root: Any, source: str, budget: LoadBudget, build_tensor: Callable[[TensorRef], Any] | None = None):
  """Containers → plain dict/list/tuple (Namespace stays a dict subclass), numpy stand-ins → arrays.

  Shared objects stay shared (converted once); cycles, nesting deeper than MAX_DEPTH, trees whose expanded size
  exceeds `budget.max_nodes` and objects that are not plain data are refused.
  """
  converted: dict[int, tuple[Any, int]] = {}  # id → (plain value, expanded node count)
  in_progress: set[int] = set()

  def convert(obj, depth: int) -> tuple[Any, int]:
    key = id(obj)
    if key in converted:
      return converted[key]
    if key in in_progress:
      raise CheckpointError(f"{source}: the pickle contains a reference cycle")
    if depth > MAX_DEPTH:
      raise CheckpointError(f"{source}: containers nested deeper than {MAX_DEPTH}")
    in_progress.add(key)
    if isinstance(obj, dict):
      items, count = [], 1
      for k, v in obj.items():
        (pk, nk), (pv, nv) = convert(k, depth + 1), convert(v, depth + 1)
        items.append((pk, pv))
        count += nk + nv
      plain = Namespace(items) if isinstance(obj, Namespace) else dict(items)
    elif type(obj) in (list, tuple):
      parts = [convert(v, depth + 1) for v in obj]
      plain, count = type(obj)(p for p, _ in parts), 1 + sum(n for _, n in parts)
    elif isinstance(obj, TensorRef) and build_tensor is not None:
      plain, count = build_tensor(obj), 1
    elif isinstance(obj, _PickledArray):
      plain, count = obj.resolve(budget), 1
    elif isinstance(obj, _PickledDType):
      plain, count = obj.resolve(), 1
    elif isinstance(obj, _PASS_THROUGH):
      plain, count = obj, 1
    else:
      raise CheckpointError(f"{source}: unexpected object {describe(obj)} in the checkpoint (not plain data)")
    if count > budget.max_nodes:
      raise CheckpointError(f"{source}: the pickle's containers expand to more than {budget.max_nodes} nodes "
                            f"(shared references multiply them)")
    in_progress.discard(key)
    converted[key] = (plain, count)
    return plain, count

  return convert(root, 0)[0]
