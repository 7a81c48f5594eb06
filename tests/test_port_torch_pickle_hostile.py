"""Hostile checkpoint files (issue 16, findings 1, 2, 4, 5, 6): each is refused with a CheckpointError naming the
file, without reading outside a buffer, allocating what the file cannot justify, or changing a later load."""
import itertools
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

import torch_file_builder as tb
from conftest import fixture_path
from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port.torch_pickle import CheckpointError, UnsafeCheckpointError

FLOAT = "FloatStorage"


def _zip_tensor(path, offset, size, stride, values=(1.0, 2.0, 3.0, 4.0)):
  ref = tb.storage(FLOAT, "0", len(values))
  tb.zip_file(path, tb.dumps({"w": tb.tensor(ref, offset, size, stride)}), {"0": tb.floats(values)})


def _legacy_tensor(path, offset, size, stride, values=(1.0, 2.0, 3.0, 4.0)):
  ref = tb.legacy_storage(FLOAT, "0", len(values))
  tb.legacy_file(path, tb.dumps({"w": tb.tensor(ref, offset, size, stride)}),
                 [("0", len(values), tb.floats(values))])


WRITERS = pytest.mark.parametrize("writer", [_zip_tensor, _legacy_tensor], ids=["zip", "legacy"])


# ---------------------------------------------------------------------------------------- 1. out-of-bounds views


@WRITERS
@pytest.mark.parametrize("offset,size,stride", [
    (0, (4,), (-1,)),            # walks backwards from element 0: reads 3 elements before the storage
    (-2, (2,), (1,)),            # negative offset
    (0, (2, 2), (-1, 1)),        # mixed signs: lowest element is -1
    (0, (2,), (2**62,)),         # stride beyond any storage
    (3, (2,), (1,)),             # one past the end
    (4, (), ()),                 # a scalar at the end
])
def test_view_outside_its_storage_is_refused(tmp_path, writer, offset, size, stride):
  path = tmp_path / "oob.pt"
  writer(path, offset, size, stride)
  with pytest.raises(CheckpointError, match=r"oob\.pt: tensor of size .* outside its storage of 4 elements"):
    torch_pickle.load_torch_file(path)


def _reference_view(storage, offset, size, stride):
  """Element i of the view is storage[offset + Σ i_k·stride_k] (gathered index by index)."""
  out = np.empty(size, storage.dtype)
  for index in itertools.product(*(range(n) for n in size)):
    out[index] = storage[offset + sum(i * s for i, s in zip(index, stride))]
  return out


@WRITERS
@pytest.mark.parametrize("offset,size,stride", [
    (3, (4,), (-1,)), (3, (2, 2), (-2, -1)), (1, (2, 3), (1, 0)), (0, (2, 2), (1, 2)), (2, (), ()), (0, (0, 5), (9, 9)),
])
def test_views_inside_their_storage_match_a_gather(tmp_path, writer, offset, size, stride):
  path = tmp_path / "ok.pt"
  values = np.arange(1.0, 5.0, dtype=np.float32)
  writer(path, offset, size, stride, values)
  got = torch_pickle.load_torch_file(path)["w"]
  np.testing.assert_array_equal(got, _reference_view(values, offset, size, stride))
  assert got.shape == size and got.flags.c_contiguous


def test_view_bounds_match_brute_force():
  rng = np.random.default_rng(0)
  for _ in range(300):
    ndim = int(rng.integers(1, 4))
    size = tuple(int(n) for n in rng.integers(1, 4, ndim))
    stride = tuple(int(s) for s in rng.integers(-5, 6, ndim))
    offset = int(rng.integers(-3, 20))
    touched = [offset + sum(i * s for i, s in zip(index, stride))
               for index in itertools.product(*(range(n) for n in size))]
    assert torch_pickle.view_bounds(offset, size, stride) == (min(touched), max(touched))


# ---------------------------------------------------------------------------------- 2. object dtypes / fake storages


def _numpy_array(spec, shape, raw, state_byteorder="|"):
  dtype = tb.Build(tb.Call(tb.Global("numpy", "dtype"), spec, False, True),
                   (3, state_byteorder, None, None, None, -1, -1, 63))
  array = tb.Call(tb.Global("numpy.core.multiarray", "_reconstruct"), tb.Global("numpy", "ndarray"), (0,), b"b")
  return tb.Build(array, (1, shape, dtype, False, raw))


def test_array_built_by_the_pickle_is_not_a_storage(tmp_path):
  path = tmp_path / "fake_storage.pt"
  fake = _numpy_array("f4", (4,), tb.floats([1, 2, 3, 4]), "<")
  tb.zip_file(path, tb.dumps({"w": tb.tensor(fake, 0, (4,), (1,))}))
  with pytest.raises(UnsafeCheckpointError, match=r"fake_storage\.pt: a tensor's storage must come from the archive"):
    torch_pickle.load_torch_file(path)


@pytest.mark.parametrize("spec", ["O8", "f4,O8", "(2,)f4", "V8"])
def test_object_structured_and_void_dtypes_are_refused(tmp_path, spec):
  path = tmp_path / "objects.pt"
  tb.zip_file(path, tb.dumps({"a": _numpy_array(spec, (1,), [123456, 654321])}))
  with pytest.raises(CheckpointError, match=r"objects\.pt"):
    torch_pickle.load_torch_file(path)


def test_plain_numpy_arrays_and_scalars_still_load(tmp_path):
  path = tmp_path / "numpy_values.pt"
  values = {"a": np.arange(6, dtype=">i4").reshape(2, 3), "b": np.float32(1.5), "c": np.array(["ab", "c"]),
            "d": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
  tb.zip_file(path, pickle.dumps(values, protocol=2))
  loaded = torch_pickle.load_torch_file(path)
  for key, value in values.items():
    np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    assert np.asarray(loaded[key]).dtype == np.asarray(value).dtype, key


# --------------------------------------------------------------------------------------------- 4. state poisoning


@pytest.mark.parametrize("target,state", [
    (tb.Global("torch", FLOAT), {"dtype": tb.Call(tb.Global("numpy", "dtype"), "i4", False, True)}),
    (tb.Global("torch", FLOAT), (None, {"dtype": 1})),
    (tb.Global("argparse", "Namespace"), (None, {"__setstate__": tb.Global("builtins", "set")})),
    (tb.Global("torch._utils", "_rebuild_parameter"), (None, {"__defaults__": (1, 2)})),
    (tb.Global("collections", "OrderedDict"), (None, {"fromkeys": 1})),
])
def test_a_pickle_cannot_modify_the_stand_ins(tmp_path, target, state):
  baseline = torch_pickle.flatten_state_dict(
      torch_pickle.load_torch_file(fixture_path("ganlatentdiscovery/gld_proggan_tiny.pth")))
  path = tmp_path / "poison.pt"
  tb.zip_file(path, tb.dumps([tb.Build(target, state)]))
  with pytest.raises(UnsafeCheckpointError, match=r"poison\.pt: the pickle modifies"):
    torch_pickle.load_torch_file(path)
  after = torch_pickle.flatten_state_dict(
      torch_pickle.load_torch_file(fixture_path("ganlatentdiscovery/gld_proggan_tiny.pth")))
  assert after.keys() == baseline.keys()
  for key in baseline:
    assert after[key].dtype == baseline[key].dtype, key
    np.testing.assert_array_equal(after[key], baseline[key], err_msg=key)


# ------------------------------------------------------------------------------------------------ 5. memory bombs


def _peak_allocation(fn):
  tracemalloc.start()
  try:
    fn()
  finally:
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
  return peak


@WRITERS
@pytest.mark.parametrize("size", [(2**16, 2**16), (2**40,)])
def test_zero_stride_view_cannot_materialise_beyond_the_budget(tmp_path, writer, size):
  path = tmp_path / "expand.pt"
  writer(path, 0, size, (0,) * len(size))
  def load():
    with pytest.raises(CheckpointError, match=r"expand\.pt: tensor of size .* beyond what a file of this size"):
      torch_pickle.load_torch_file(path)
  assert _peak_allocation(load) < 32 << 20


@pytest.mark.parametrize("member", ["storage", "pickle"])
def test_deflated_member_is_checked_before_decompressing(tmp_path, member):
  path = tmp_path / "zipbomb.pt"
  numel = (300 << 20) // 4  # 300 MiB of zeros deflate to ~300 KiB: more than this file's budget
  zeros = bytes(numel * 4)
  if member == "storage":
    tb.zip_file(path, tb.dumps({"w": tb.tensor(tb.storage(FLOAT, "0", numel), 0, (1,), (1,))}), {"0": zeros},
                compression=zipfile.ZIP_DEFLATED)
  else:
    tb.zip_file(path, tb.dumps([]) + zeros, compression=zipfile.ZIP_DEFLATED)
  del zeros
  def load():
    with pytest.raises(CheckpointError, match=r"zipbomb\.pt: .* beyond what a file of this size may allocate"):
      torch_pickle.load_torch_file(path)
  assert _peak_allocation(load) < 32 << 20


def test_storage_larger_than_its_record_is_refused_before_reading(tmp_path):
  path = tmp_path / "short.pt"
  tb.zip_file(path, tb.dumps({"w": tb.tensor(tb.storage(FLOAT, "0", 2**40), 0, (1,), (1,))}), {"0": tb.floats([1])})
  with pytest.raises(CheckpointError, match=r"short\.pt: storage record 'archive/data/0' has 4 bytes, expected"):
    torch_pickle.load_torch_file(path)


def test_billion_laughs_sharing_is_bounded(tmp_path):
  path = tmp_path / "laughs.pt"
  node = tb.Put(["lol"], 0)
  for level in range(1, 64):  # 2^63 leaves if the sharing were expanded
    node = tb.Put([node, tb.Get(level - 1)], level)
  tb.zip_file(path, tb.dumps({"w": node}))
  with pytest.raises(CheckpointError, match=r"laughs\.pt: the pickle's containers expand to more than"):
    torch_pickle.load_torch_file(path)


def test_moderate_sharing_is_preserved(tmp_path):
  path = tmp_path / "shared.pt"
  tb.zip_file(path, tb.dumps({"a": tb.Put([1, 2], 0), "b": tb.Get(0)}))
  loaded = torch_pickle.load_torch_file(path)
  assert loaded == {"a": [1, 2], "b": [1, 2]} and loaded["a"] is loaded["b"]


# -------------------------------------------------------------------------------------------------- 6. raw errors


def _deep_lists(depth):
  return tb.Raw(pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1))


def _deep_tuple_key(depth):  # hashing a deeply nested tuple overflows the C stack (a segfault, not an exception)
  return tb.Raw(pickle.EMPTY_DICT + pickle.EMPTY_TUPLE + pickle.TUPLE1 * depth + pickle.NONE + pickle.SETITEM)


def _cycle():
  return tb.Raw(pickle.EMPTY_LIST + pickle.BINPUT + b"\x00" + pickle.BINGET + b"\x00" + pickle.APPEND)


@pytest.mark.parametrize("payload,message", [
    (_deep_lists(200_000), "nested deeper than"),
    (_deep_tuple_key(1_000_000), "tuples nested deeper than"),
    (_cycle(), "reference cycle"),
    (tb.Raw(pickle.BINBYTES8 + (32 << 30).to_bytes(8, "little")), "declares 34359738368 bytes"),
    (tb.Raw(pickle.BYTEARRAY8 + (32 << 30).to_bytes(8, "little")), "declares 34359738368 bytes"),
    (tb.Raw(pickle.LONG4 + (2**31 - 1).to_bytes(4, "little")), "declares 2147483647 bytes"),
])
def test_hostile_structure_raises_checkpoint_error(tmp_path, payload, message):
  path = tmp_path / "structure.pt"
  tb.zip_file(path, tb.dumps(payload).replace(b"\x80\x02", b"\x80\x05", 1))
  with pytest.raises(CheckpointError, match=rf"structure\.pt: .*{message}"):
    torch_pickle.load_torch_file(path)


@pytest.mark.parametrize("numel", [2**61, -5, 10**6])
def test_legacy_numel_beyond_the_file_is_refused(tmp_path, numel):
  path = tmp_path / "numel.pt"
  ref = tb.legacy_storage(FLOAT, "0", 4)
  tb.legacy_file(path, tb.dumps({"w": tb.tensor(ref, 0, (4,), (1,))}), [("0", numel, tb.floats([1, 2, 3, 4]))])
  with pytest.raises(CheckpointError, match=rf"numel\.pt: storage '0' declares {numel} x float32 but only 16 bytes"):
    torch_pickle.load_torch_file(path)


def test_unexpected_objects_in_the_result_are_refused(tmp_path):
  path = tmp_path / "odd.pt"
  tb.zip_file(path, tb.dumps({"type": tb.Global("torch", FLOAT)}))
  with pytest.raises(CheckpointError, match=r"odd\.pt: unexpected object <StorageType>"):
    torch_pickle.load_torch_file(path)
