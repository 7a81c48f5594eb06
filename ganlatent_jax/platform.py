"""CPU performance settings the library's commands apply to their process — all of them here, in one place.

`apply_cpu_settings()` is called by the entry points (`cli.run`, before jax creates its CPU backend, which reads
XLA_FLAGS only once), never on import: `import ganlatent_jax` leaves the process as it was. A program using the
library as a package calls it itself, first thing, to get the same speed. It is idempotent, never removes or overrides a flag already in XLA_FLAGS (a flag the user or
tests set, e.g. `--xla_force_host_platform_device_count=8`, wins), and does nothing when
`GANLATENT_JAX_CPU_SETTINGS=0` or when JAX_PLATFORMS excludes the CPU.

What it sets, and why (measured on a 2-core AVX-512 machine, jax 0.10.2; see benchmarks/README.md):
  * XLA_FLAGS `--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`: convolutions that remain on
    XLA's native lowering (maps of 8×8 and more, see `nets/layers.py`) run through Eigen instead of YNNPACK,
    which is faster for the shapes of the library's networks.
  * glibc malloc keeps freed memory (mmap threshold 1 GiB, no trimming): XLA:CPU allocates every intermediate
    buffer with malloc, and by default each buffer over 32 MiB is a fresh mmap whose pages are faulted in and zeroed
    by the kernel on every step — measured at 2–10× the cost of the copy itself for a 37 MB im2col buffer. Keeping
    freed memory in the heap makes the process hold on to its peak memory, as PyTorch's caching allocators do.
"""
from __future__ import annotations

import ctypes
import os
import sys
import warnings

OPT_OUT_ENV = "GANLATENT_JAX_CPU_SETTINGS"
XLA_CPU_FLAGS: dict[str, str] = {
    "xla_cpu_experimental_ynn_fusion_type": "-individual_convolution",
}
# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_SETTINGS = {_M_MMAP_THRESHOLD: 1 << 30, _M_TRIM_THRESHOLD: 2 ** 31 - 1}

_applied = False


def merged_xla_flags(existing: str, flags: dict[str, str]) -> str:
  """`existing` plus each `--name=value` of `flags` whose name `existing` does not mention already."""
  present = {token.lstrip("-").split("=", 1)[0] for token in existing.split()}
  added = [f"--{name}={value}" for name, value in flags.items() if name not in present]
  return " ".join([existing.strip(), *added]).strip()


def _backend_started() -> bool:
  if "jax" not in sys.modules:
    return False
  try:
    from jax._src import xla_bridge
    return bool(getattr(xla_bridge, "_backends", {}))
  except Exception:  # private API moved: assume the worst, and only warn
    return True


def _keep_freed_memory() -> bool:
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL("libc.so.6")
    return all(libc.mallopt(param, value) == 1 for param, value in _MALLOC_SETTINGS.items())
  except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
    return False


def apply_cpu_settings() -> None:
  global _applied
  if _applied or os.environ.get(OPT_OUT_ENV, "1") == "0":
    return
  platforms = os.environ.get("JAX_PLATFORMS", "")
  if platforms and "cpu" not in platforms.lower().split(","):
    return
  _applied = True
  merged = merged_xla_flags(os.environ.get("XLA_FLAGS", ""), XLA_CPU_FLAGS)
  if merged != os.environ.get("XLA_FLAGS", "").strip():
    if _backend_started():
      warnings.warn("ganlatent_jax.platform.apply_cpu_settings() ran after jax started its backend: its CPU XLA "
                    f"flags ({XLA_CPU_FLAGS}) are not applied; call it first or set XLA_FLAGS yourself.")
    else:
      os.environ["XLA_FLAGS"] = merged
  _keep_freed_memory()
