"""Seeded fuzzing of the torch reader (issue 16): random opcode streams, random tensor views and mutated valid
fixtures (flipped bytes, rewritten/swapped integers, truncated or missing zip members). Every case must load or
raise the documented CheckpointError — in a subprocess under a memory cap and a CPU-time cap, never a signal."""
import json
import os
import pathlib
import resource
import subprocess
import sys

import pytest

from conftest import fixture_path

WORKER = pathlib.Path(__file__).with_name("torch_fuzz_worker.py")
FIXTURES = ["ganlatentdiscovery/gld_deformator_id.pt", "lpips/lpips_weights/v0.1/alex.pth",
            "ganlatentdiscovery/gld_deformator_linear.pt", "legacy/stylegan2_rosinality_s32_legacy.pt"]
MEMORY_CAP = 3 << 30  # address space: python + jax + numpy need ~1.5 GiB; a load may add its (≤ 300 MiB) budget
SECONDS_PER_CASE = 5.0  # a generous per-case bound on a shared 2-core machine; typical cases take milliseconds


def _caps(cpu_seconds: int):
  def apply():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
  return apply


def _fuzz(tmp_path, seed: int, count: int, cpu_seconds: int):
  env = dict(os.environ, OPENBLAS_NUM_THREADS="1", JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, str(WORKER), str(seed), str(count), str(tmp_path),
                           *(str(fixture_path(f)) for f in FIXTURES)],
                          capture_output=True, text=True, env=env, timeout=cpu_seconds * 4,
                          preexec_fn=_caps(cpu_seconds))
  assert result.returncode == 0, (f"worker died with {result.returncode} (negative = signal) after "
                                  f"{result.stdout.count(chr(10))} cases: {result.stderr[-2000:]}")
  cases = [json.loads(line) for line in result.stdout.splitlines()]
  assert len(cases) == count
  bad = [c for c in cases if c["outcome"] not in ("ok", "CheckpointError", "UnsafeCheckpointError")]
  assert not bad, bad[:5]
  slow = [c for c in cases if c["seconds"] > SECONDS_PER_CASE]
  assert not slow, slow[:5]
  return cases


def test_fuzz_reader_quick(tmp_path):
  cases = _fuzz(tmp_path, seed=0, count=150, cpu_seconds=120)
  kinds = {c["kind"] for c in cases}
  assert {"opcodes-zip", "opcodes-legacy", "tensors", "fixture-zip", "fixture-truncate"} <= kinds
  assert any(c["outcome"] == "ok" for c in cases)  # the generator also produces loadable files
  assert any(c["outcome"] != "ok" for c in cases)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_reader_long(tmp_path, seed):
  _fuzz(tmp_path, seed=seed, count=4000, cpu_seconds=900)
