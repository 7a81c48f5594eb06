"""Fuzz worker for the torch reader: generates seeded hostile files and loads each one (run by test_port_fuzz.py).

  python tests/torch_fuzz_worker.py SEED COUNT WORKDIR FIXTURE [FIXTURE ...]

Prints one JSON line per case: {"case", "kind", "outcome", "seconds"}; outcome is "ok", the CheckpointError class
name, "memory" (a MemoryError wrapped in a CheckpointError: the load allocated beyond the cap) or "escaped: ..."
(any other exception — a bug). The parent runs this under a memory and CPU-time cap, so a crash, an unbounded
allocation or a hang shows as a signal or a non-zero exit.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import random
import struct
import sys
import time
import zipfile

import torch_file_builder as tb  # beside this script (the script's directory is on sys.path)

from ganlatent_jax.port import torch_pickle

_INTERESTING = [0, 1, 2, 3, 4, 7, 255, 256, 65535, 2**31 - 1, 2**32, 2**40, 2**62, 2**63 - 1, -1, -2, -2**31]
_GLOBALS = [("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"), ("torch", "FloatStorage"),
            ("torch", "LongStorage"), ("collections", "OrderedDict"), ("numpy", "dtype"), ("numpy", "ndarray"),
            ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"), ("argparse", "Namespace"),
            ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"), ("_codecs", "encode"),
            ("os", "system"), ("builtins", "eval"), ("numpy", "frombuffer")]


def _int(rng: random.Random) -> int:
  return rng.choice(_INTERESTING) if rng.random() < 0.6 else rng.randint(-1000, 1000)


def _random_opcode(rng: random.Random) -> bytes:
  """One opcode with a plausible (or hostile) argument, from the protocol's opcode table."""
  kind = rng.randrange(14)
  n = _int(rng)
  if kind == 0:
    return pickle.BININT + struct.pack("<i", max(-2**31, min(2**31 - 1, n)))
  if kind == 1:
    data = pickle.encode_long(n)
    return pickle.LONG1 + bytes([len(data)]) + data
  if kind == 2:
    module, name = rng.choice(_GLOBALS)
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()
  if kind == 3:  # a length prefix that may lie about what follows
    opcode, width = rng.choice([(pickle.BINBYTES, "<I"), (pickle.BINUNICODE, "<I"), (pickle.BINBYTES8, "<Q"),
                                (pickle.BYTEARRAY8, "<Q"), (pickle.BINUNICODE8, "<Q"), (pickle.FRAME, "<Q")])
    length = abs(n) % (2**32 if width == "<I" else 2**64)
    return opcode + struct.pack(width, length) + bytes(rng.randrange(8))
  if kind == 4:
    return rng.choice([pickle.BINPUT, pickle.BINGET]) + bytes([rng.randrange(4)])
  if kind == 5:
    return pickle.BINUNICODE + struct.pack("<I", 3) + rng.choice([b"abc", b"cpu", b"0\x00\x00"])
  if kind == 6:
    return tb.dumps(tb.storage(rng.choice(["FloatStorage", "LongStorage"]), str(rng.randrange(3)), _int(rng)))[2:-1]
  if kind == 7:
    return pickle.LONG4 + struct.pack("<i", n % 2**31) + bytes(rng.randrange(4))
  return rng.choice([pickle.MARK, pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.EMPTY_LIST, pickle.APPEND,
                     pickle.APPENDS, pickle.EMPTY_DICT, pickle.SETITEM, pickle.SETITEMS, pickle.REDUCE, pickle.BUILD,
                     pickle.NEWOBJ, pickle.BINPERSID, pickle.DUP, pickle.POP, pickle.NONE, pickle.EMPTY_TUPLE,
                     pickle.STOP, pickle.MEMOIZE, pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET,
                     pickle.OBJ, pickle.STACK_GLOBAL, pickle.TUPLE3])


def random_tensor_pickle(rng: random.Random) -> tuple[bytes, dict[str, bytes]]:
  """A well-formed state dict whose tensors have random (often out-of-bounds) sizes, strides and offsets."""
  storages = {str(k): bytes(rng.randrange(64)) for k in range(rng.randint(1, 3))}
  entries = {}
  for i in range(rng.randint(1, 4)):
    key = rng.choice(list(storages))
    ndim = rng.randint(0, 3)
    ref = tb.storage(rng.choice(["FloatStorage", "HalfStorage", "ByteStorage"]), key,
                     len(storages[key]) // 4 if rng.random() < 0.7 else _int(rng))
    entries[f"t{i}"] = tb.tensor(ref, _int(rng) if rng.random() < 0.3 else rng.randrange(4),
                                 [_int(rng) if rng.random() < 0.2 else rng.randrange(4) for _ in range(ndim)],
                                 [_int(rng) if rng.random() < 0.4 else rng.randrange(-2, 3) for _ in range(ndim)])
  return tb.dumps(tb.ordered_dict(entries)), storages


def random_opcodes(rng: random.Random) -> bytes:
  body = b"".join(_random_opcode(rng) for _ in range(rng.randint(1, 30)))
  return pickle.PROTO + bytes([rng.randint(2, 5)]) + body + (pickle.STOP if rng.random() < 0.8 else b"")


def _mutate_ints(data: bytes, rng: random.Random) -> bytes:
  """Rewrites or swaps the fixed-width integer arguments (sizes, strides, offsets, numels) of a pickle."""
  try:
    ints = [(pos + 1, {"BININT1": 1, "BININT2": 2, "BININT": 4}[op.name])
            for op, _, pos in pickletools.genops(data) if op.name in ("BININT1", "BININT2", "BININT")]
  except Exception:  # noqa: BLE001 — an already-mutated pickle may not parse
    return data
  if not ints:
    return data
  out = bytearray(data)
  for _ in range(rng.randint(1, 4)):
    (a, width_a), (b, width_b) = rng.choice(ints), rng.choice(ints)
    if rng.random() < 0.5 and width_a == width_b:
      out[a:a + width_a], out[b:b + width_b] = out[b:b + width_b], out[a:a + width_a]
    else:
      out[a:a + width_a] = rng.getrandbits(8 * width_a).to_bytes(width_a, "little")
  return bytes(out)


def _flip(data: bytes, rng: random.Random) -> bytes:
  out = bytearray(data)
  for _ in range(rng.randint(1, 8)):
    if out:
      out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
  return bytes(out)


def mutate_zip(original: bytes, rng: random.Random) -> bytes:
  """Re-zips a valid archive with one member mutated: flipped bytes, rewritten integers or truncation."""
  with zipfile.ZipFile(io.BytesIO(original)) as archive:
    members = {name: archive.read(name) for name in archive.namelist()}
  name = rng.choice([n for n in members if n.endswith("data.pkl")] * 3 + list(members))
  operation = rng.choice(["flip", "ints", "ints", "truncate", "drop"])
  if operation == "flip":
    members[name] = _flip(members[name], rng)
  elif operation == "ints":
    members[name] = _mutate_ints(members[name], rng)
  elif operation == "truncate":
    members[name] = members[name][:rng.randrange(len(members[name]) + 1)]
  else:
    del members[name]
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w", compression=rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as archive:
    for member, data in members.items():
      archive.writestr(member, data)
  return out.getvalue()


def make_case(rng: random.Random, fixtures: list[bytes]) -> tuple[str, bytes]:
  kind = rng.choice(["opcodes-zip", "opcodes-legacy", "tensors", "fixture-zip", "fixture-zip", "fixture-bytes",
                     "fixture-truncate", "tensors-mutated"])
  if kind == "opcodes-zip":
    return kind, _zip_bytes(random_opcodes(rng), {})
  if kind == "opcodes-legacy":
    headers = b"".join(tb.dumps(h) for h in (tb.MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}))
    return kind, headers + random_opcodes(rng) + rng.randbytes(rng.randrange(32))
  if kind in ("tensors", "tensors-mutated"):
    data, storages = random_tensor_pickle(rng)
    if kind == "tensors-mutated":
      data = _mutate_ints(data, rng)
    if rng.random() < 0.5:
      return kind, _zip_bytes(data, storages)
    headers = b"".join(tb.dumps(h) for h in (tb.MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}))
    tail = tb.dumps(list(storages)) + b"".join(struct.pack("<q", len(v) // 4 if rng.random() < 0.8 else _int(rng))
                                               + v for v in storages.values())
    return kind, headers + data.replace(b"cpu", b"cpu", 1) + tail
  original = rng.choice(fixtures)
  if kind == "fixture-zip" and original[:2] == b"PK":
    return kind, mutate_zip(original, rng)
  if kind == "fixture-truncate":
    return kind, original[:rng.randrange(len(original))]
  return "fixture-bytes", _flip(original, rng)


def _zip_bytes(data: bytes, storages: dict[str, bytes]) -> bytes:
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w") as archive:
    archive.writestr("archive/data.pkl", data)
    for key, value in storages.items():
      archive.writestr(f"archive/data/{key}", value)
  return out.getvalue()


def _outcome(error: BaseException | None) -> str:
  if error is None:
    return "ok"
  if isinstance(error, torch_pickle.CheckpointError):
    cause = error.__cause__
    while cause is not None:
      if isinstance(cause, MemoryError):
        return "memory"
      cause = cause.__cause__
    return type(error).__name__
  return f"escaped: {type(error).__name__}: {str(error)[:200]}"


def main(argv: list[str]) -> int:
  seed, count, workdir = int(argv[1]), int(argv[2]), argv[3]
  fixtures = [open(path, "rb").read() for path in argv[4:]]
  for case in range(count):
    rng = random.Random(seed * 1_000_003 + case)
    kind, data = make_case(rng, fixtures)
    path = os.path.join(workdir, f"case_{seed}_{case}.pt")
    with open(path, "wb") as f:
      f.write(data)
    start, error = time.perf_counter(), None
    try:
      torch_pickle.load_torch_file(path)
    except Exception as e:  # noqa: BLE001 — classified below
      error = e
    print(json.dumps({"case": case, "kind": kind, "outcome": _outcome(error),
                      "seconds": round(time.perf_counter() - start, 3)}), flush=True)
    os.unlink(path)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
