"""NVlabs network pickles read as data: tensors bit-identical to upstream's state_dict, nothing executed."""
from __future__ import annotations

import builtins
import json
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest

from ganlatent_jax.port import nvlabs_pickle, torch_pickle
from ganlatent_jax.port._unpickler import CheckpointError, UnsafeCheckpointError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "nvlabs")
ADA = os.path.join(FIXTURES, "ada_small.pkl")
EVIL_SRC = os.path.join(FIXTURES, "evil", "ada_small_evil_src.pkl")
EVIL_REDUCE = os.path.join(FIXTURES, "evil", "ada_small_evil_reduce.pkl")
PWNED = "/tmp/PWNED"  # what the evil fixtures' payloads would create


def rewrite_strings(data: bytes, replace) -> bytes:
  """The pickle with string arguments rewritten by `replace(text) -> text` and FRAME lengths recomputed."""
  ops = list(pickletools.genops(data))
  pieces, frames = [], []  # frames: (index in pieces, end offset in the original)
  for i, (op, arg, pos) in enumerate(ops):
    end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
    raw = data[pos:end]
    if op.name in ("SHORT_BINUNICODE", "BINUNICODE") and replace(arg) != arg:
      text = replace(arg).encode("utf-8")
      raw = (b"\x8c" + bytes([len(text)]) if len(text) < 256 else b"X" + struct.pack("<I", len(text))) + text
    if op.name == "FRAME":
      frames.append((len(pieces), end + arg))
    pieces.append((pos, raw))
  for index, frame_end in frames:
    length = sum(len(raw) for pos, raw in pieces[index + 1:] if pos < frame_end)
    pieces[index] = (pieces[index][0], b"\x95" + struct.pack("<Q", length))
  return b"".join(raw for _, raw in pieces)


@pytest.fixture(scope="module")
def ada():
  return nvlabs_pickle.load_network_pickle(ADA)


def test_snapshot_layout_and_state_dict_match_upstream(ada):
  keys = json.load(open(os.path.join(FIXTURES, "ada_small_keys.json")))
  assert list(ada) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]  # pickled order
  assert sorted(ada) == sorted(keys["top_level_keys"])
  assert ada["training_set_kwargs"] == keys["training_set_kwargs"]
  for name in ("G_ema", "D", "augment_pipe"):
    state = nvlabs_pickle.state_dict(ada[name])
    expected = keys["state_dict_shapes"][name]
    assert list(state) == list(expected), name  # same order as torch's state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == {k: list(v) for k, v in expected.items()}
  g_ema = ada["G_ema"]
  assert g_ema.class_name == "Generator" and g_ema.module_known == "stylegan2-ada-pytorch training/networks.py"
  assert g_ema.state["_init_kwargs"]["synthesis_kwargs"]["conv_clamp"] == 256
  layer = nvlabs_pickle.submodule(g_ema, "synthesis.b8.conv0").state
  assert layer["up"] == 2 and float(layer["act_gain"]) == pytest.approx(np.sqrt(2))
  io = np.load(os.path.join(FIXTURES, "ada_small_io.npz"))
  np.testing.assert_array_equal(nvlabs_pickle.state_dict(g_ema)["mapping.w_avg"], io["w_avg"])
  g_train = nvlabs_pickle.state_dict(ada["G"])
  assert not np.array_equal(g_train["mapping.w_avg"], io["w_avg"])  # G and G_ema are told apart


def test_numpy1_names_are_read_like_numpy2(ada, tmp_path):
  data = open(ADA, "rb").read()
  np1 = rewrite_strings(data, lambda s: s.replace("numpy._core.", "numpy.core.") if s.startswith("numpy._core") else s)
  assert b"numpy._core" not in np1 and b"numpy.core.multiarray" in np1
  path = tmp_path / "np1.pkl"
  path.write_bytes(np1)
  loaded = nvlabs_pickle.load_network_pickle(path)
  for name in ("G_ema", "G", "D"):
    a, b = nvlabs_pickle.state_dict(ada[name]), nvlabs_pickle.state_dict(loaded[name])
    assert all(np.array_equal(a[k], b[k]) for k in a)
  assert nvlabs_pickle.submodule(loaded["G_ema"], "mapping.fc0").state["weight_gain"] == \
      nvlabs_pickle.submodule(ada["G_ema"], "mapping.fc0").state["weight_gain"]


def _no_code_runs(monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError("the loader tried to compile or execute code")
  monkeypatch.setattr(builtins, "exec", refuse)
  monkeypatch.setattr(builtins, "eval", refuse)
  monkeypatch.setattr(builtins, "compile", refuse)
  monkeypatch.setattr(os, "system", refuse)


def test_evil_module_source_loads_same_tensors_and_runs_nothing(ada, tmp_path, monkeypatch):
  existed = os.path.exists(PWNED)
  marker = tmp_path / "marker"
  data = open(ADA, "rb").read()
  payload = rewrite_strings(data, lambda s: f"open({str(marker)!r}, 'w').close()\n" + s if "class SynthesisLayer" in s
                            else s)
  (tmp_path / "payload.pkl").write_bytes(payload)
  _no_code_runs(monkeypatch)
  for path in (EVIL_SRC, tmp_path / "payload.pkl"):
    evil = nvlabs_pickle.load_network_pickle(path)
    assert evil["G_ema"].module_known is None  # not one of upstream's files: reported, never run
    a, b = nvlabs_pickle.state_dict(ada["G_ema"]), nvlabs_pickle.state_dict(evil["G_ema"])
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
  assert not marker.exists()
  assert os.path.exists(PWNED) == existed


def test_evil_reduce_is_refused_by_name(monkeypatch):
  existed = os.path.exists(PWNED)
  _no_code_runs(monkeypatch)
  with pytest.raises(UnsafeCheckpointError, match=r"ada_small_evil_reduce\.pkl.*posix\.system"):
    nvlabs_pickle.load_network_pickle(EVIL_REDUCE)
  assert os.path.exists(PWNED) == existed


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("torch_utils.persistence", "persistent_class"),
                                         ("dnnlib.util", "call_func_by_name"), ("numpy", "load")])
def test_other_globals_are_refused(tmp_path, module, name):
  path = tmp_path / "bad.pkl"
  path.write_bytes(b"\x80\x04" + b"\x8c" + bytes([len(module)]) + module.encode() + b"\x8c" + bytes([len(name)])
                   + name.encode() + b"\x93" + b")R.")
  with pytest.raises(UnsafeCheckpointError, match=f"{module}.{name}"):
    nvlabs_pickle.load_network_pickle(path)


def test_easydict_with_arguments_and_persistent_record_without_source_are_refused(tmp_path):
  easy = tmp_path / "easy.pkl"
  easy.write_bytes(pickle.dumps(0)[:2] + b"\x8c\x0bdnnlib.util\x8c\x08EasyDict\x93K\x01\x85\x81.")
  with pytest.raises(UnsafeCheckpointError, match="EasyDict"):
    nvlabs_pickle.load_network_pickle(easy)
  record = tmp_path / "record.pkl"
  record.write_bytes(b"\x80\x04\x8c\x17torch_utils.persistence\x8c\x1b_reconstruct_persistent_obj\x93"
                     b"}\x8c\x04type\x8c\x05classs\x85R.")
  with pytest.raises(CheckpointError, match="record.pkl.*module_src"):
    nvlabs_pickle.load_network_pickle(record)


def test_truncated_and_corrupt_blobs_name_the_file(tmp_path):
  data = open(ADA, "rb").read()
  path = tmp_path / "cut.pkl"
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(CheckpointError, match="cut.pkl"):
    nvlabs_pickle.load_network_pickle(path)
  # A storage blob whose declared element count exceeds its data.
  for op, arg, pos in pickletools.genops(data):
    if op.name == "BINBYTES":
      blob = arg
      break
  bad = blob.replace(b"M\x00\x02N", b"M\x00\x04N", 1)
  assert bad != blob
  path = tmp_path / "blob.pkl"
  path.write_bytes(data.replace(blob, bad, 1))
  with pytest.raises(CheckpointError, match="blob.pkl.*storage blob"):
    nvlabs_pickle.load_network_pickle(path)


def test_load_checkpoint_routes_torch_files_to_the_torch_reader():
  pth = os.path.join(os.path.dirname(__file__), "fixtures", "genforce", "genforce_pggan_tiny.pth")
  assert not nvlabs_pickle.is_network_pickle(pth) and nvlabs_pickle.is_network_pickle(ADA)
  direct = torch_pickle.load_torch_file(pth)
  routed = nvlabs_pickle.load_checkpoint(pth)
  assert set(routed) == set(direct) == {"generator", "discriminator", "generator_smooth"}
