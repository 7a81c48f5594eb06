"""Test setup: 8 simulated CPU devices and a shared compilation cache, set before jax is imported anywhere."""
import getpass
import os
import tempfile
import zlib

# 8 simulated devices share 2 cores: on a loaded machine a collective can wait for its threads longer than XLA's
# default 40 s termination timeout (which aborts the process), so the tests allow 10 minutes.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8"
                           " --xla_cpu_collective_call_terminate_timeout_seconds=600").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the whole run — both xdist workers and every subprocess a test starts (the
# CLI and multi-process tests) inherit it: the suite compiles the same tiny generators, steps and pictures in many
# places, and compilation is most of its time. Per user and per checkout, so runs of other trees never mix; JAX
# keys entries by the program, the backend and its version, so a stale entry is never used.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"ganlatent_jax_tests_{getpass.getuser()}_{zlib.crc32(os.path.abspath(__file__).encode()):08x}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

# The library's CPU settings, as its commands apply them (importing the package does not).
from ganlatent_jax import platform  # noqa: E402

platform.apply_cpu_settings()

import pathlib  # noqa: E402

import pytest  # noqa: E402

SHARED_FIXTURES = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
LOCAL_FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


def fixture_path(relative: str) -> pathlib.Path:
  """A golden fixture: tests/fixtures/ first (copied data), then ../shared/fixtures/."""
  for root in (LOCAL_FIXTURES, SHARED_FIXTURES):
    candidate = root / relative
    if candidate.exists():
      return candidate
  raise FileNotFoundError(f"golden fixture {relative!r} not found in {LOCAL_FIXTURES} or {SHARED_FIXTURES}")


def free_port() -> int:
  """A TCP port on 127.0.0.1 that is free now (a coordinator's, an emulator's)."""
  import contextlib
  import socket
  with contextlib.closing(socket.socket()) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture
def fixtures():
  return fixture_path
