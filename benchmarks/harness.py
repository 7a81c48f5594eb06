"""Common benchmark harness: warm up, time >= 10 steps, print one final JSON line.

Every benchmark ends with
  {"name", "median_s", "min_s", "max_s", "images_per_s", "gflops", ...extra}
where gflops is the achieved rate (useful FLOPs per step / median step time), so runs on different machines and
frameworks can be compared line by line.
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Any, Callable


def block(value: Any) -> Any:
  """Waits for asynchronous (jax) results; a no-op for anything else."""
  try:
    import jax
    return jax.block_until_ready(value)
  except ImportError:  # the torch twins run in a venv without jax
    return value


def time_steps(step: Callable[[], Any], *, warmup: int = 2, steps: int = 10) -> list[float]:
  """Wall-clock seconds of each of `steps` calls of `step` after `warmup` untimed calls."""
  for _ in range(warmup):
    block(step())
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    block(step())
    times.append(time.perf_counter() - start)
  return times


def report(name: str, times: list[float], *, images_per_step: int, flops_per_step: float | None = None,
           **extra: Any) -> dict[str, Any]:
  median = statistics.median(times)
  result = {
      "name": name,
      "median_s": round(median, 6),
      "min_s": round(min(times), 6),
      "max_s": round(max(times), 6),
      "images_per_s": round(images_per_step / median, 3),
      "gflops": None if flops_per_step is None else round(flops_per_step / median / 1e9, 3),
      **extra,
  }
  print(json.dumps(result), flush=True)
  return result
