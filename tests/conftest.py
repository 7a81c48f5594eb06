"""Test setup: 8 simulated CPU devices, set before jax is imported anywhere."""
import os

# 8 simulated devices share 2 cores: on a loaded machine a collective can wait for its threads longer than XLA's
# default 40 s termination timeout (which aborts the process), so the tests allow 10 minutes.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8"
                           " --xla_cpu_collective_call_terminate_timeout_seconds=600").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

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


@pytest.fixture
def fixtures():
  return fixture_path
