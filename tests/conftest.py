"""Test setup: 8 simulated CPU devices, set before jax is imported anywhere."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

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
