"""Runs `ganlatent_jax.main` as N cooperating processes on this machine: a multi-host run without the hosts.

  python launch/local.py --num_processes=2 --devices_per_process=2 -- \
      --config=configs/sre_3dshapes.py:quick --workdir=/tmp/sre_2x2

Every argument after `--` goes to `python -m ganlatent_jax.main` in every process. Process i gets
`--jax_distributed --jax_coordinator_address=127.0.0.1:PORT --jax_num_processes=N --jax_process_id=i` and a CPU
backend with `devices_per_process` simulated devices (XLA_FLAGS), so the run forms one mesh of N × devices_per_process
devices with gloo collectives — the code paths of a TPU pod or a GPU cluster (global batches from per-process shards,
process-0 writes, multi-process orbax checkpoints), testable on a laptop. Each process's output is prefixed with
`[pI]`. If one process fails the others get `--grace` seconds to end by themselves (a config error fails in every
process, each naming the culprit), then are stopped (they would otherwise wait forever in a collective); the
launcher exits with the failing process's code.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(devices_per_process: int, base: dict | None = None) -> dict:
  """The environment of one process: CPU backend with `devices_per_process` devices (other XLA flags kept)."""
  env = dict(os.environ if base is None else base)
  flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices_per_process}"])
  env["JAX_PLATFORMS"] = "cpu"
  env.setdefault("PYTHONUNBUFFERED", "1")
  return env


def commands(num_processes: int, port: int, main_args: list[str]) -> list[list[str]]:
  return [[sys.executable, "-m", "ganlatent_jax.main", "--jax_distributed",
           f"--jax_coordinator_address=127.0.0.1:{port}", f"--jax_num_processes={num_processes}",
           f"--jax_process_id={i}", *main_args] for i in range(num_processes)]


def _relay(stream, prefix: str, sink) -> None:
  for line in iter(stream.readline, b""):
    sink.write(f"{prefix}{line.decode(errors='replace')}")
    sink.flush()


def launch(num_processes: int, devices_per_process: int, main_args: list[str], port: int = 0,
           timeout: float | None = None, grace: float = 10.0) -> int:
  """Runs the processes to the end; returns 0, or the exit code of the first process that failed."""
  if num_processes < 1 or devices_per_process < 1:
    raise ValueError(f"--num_processes={num_processes} and --devices_per_process={devices_per_process} must be >= 1")
  port = port or free_port()
  env = process_env(devices_per_process)
  procs, relays = [], []
  for i, cmd in enumerate(commands(num_processes, port, main_args)):
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p)
    t = threading.Thread(target=_relay, args=(p.stdout, f"[p{i}] ", sys.stdout), daemon=True)
    t.start()
    relays.append(t)
  deadline = None if timeout is None else time.monotonic() + timeout
  failed = 0
  try:
    while any(p.poll() is None for p in procs):
      codes = [p.poll() for p in procs]
      bad = [c for c in codes if c not in (None, 0)]
      if bad:
        failed = bad[0]
        break
      if deadline is not None and time.monotonic() > deadline:
        print(f"launch/local.py: timed out after {timeout} s", file=sys.stderr)
        failed = 124
        break
      time.sleep(0.2)
    else:
      failed = next((p.returncode for p in procs if p.returncode), 0)
    end = time.monotonic() + grace
    while failed and any(p.poll() is None for p in procs) and time.monotonic() < end:
      time.sleep(0.2)
  finally:
    for p in procs:   # a survivor of a failed peer waits in a collective forever: stop its whole group
      if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
      try:
        p.wait(timeout=20)
      except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    for t in relays:
      t.join(timeout=5)
  return failed


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if "--" in argv:
    split = argv.index("--")
    own, main_args = argv[:split], argv[split + 1:]
  else:
    own, main_args = argv, []
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument("--devices_per_process", type=int, default=1)
  parser.add_argument("--port", type=int, default=0, help="coordinator port (0 = a free one)")
  parser.add_argument("--timeout", type=float, default=None, help="seconds before every process is stopped")
  parser.add_argument("--grace", type=float, default=10.0,
                      help="seconds the other processes get to end by themselves after one failed")
  args = parser.parse_args(own)
  if not main_args:
    parser.error("give ganlatent_jax.main's arguments after `--` (at least --config and --workdir)")
  return launch(args.num_processes, args.devices_per_process, main_args, args.port, args.timeout, args.grace)


if __name__ == "__main__":
  sys.exit(main())
