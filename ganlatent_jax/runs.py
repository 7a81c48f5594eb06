"""Many command-line runs, resumable: the scheduler of the launch scripts that reproduce the README's tables.

A `Run` is one command in its own workdir with the file that marks it finished (usually its metrics.json) and
optionally a file it needs first (another run's output). `execute` starts what is not finished yet, `workers` at a
time, logs each run to WORKDIR/run.log and writes WORKDIR/command.txt (the exact command and its wall time) when it
succeeds, so a table script can be interrupted and re-run and every cell names the command that produced it. A
finished cell also gets WORKDIR/scalars.json (its logged scalars, `training.events.write_scalars_record`): with
`--out=results/TABLE` its records (metrics.json, results.json, command.txt, config.json, scalars.json, directions)
are committed and its bulk is not (results/.gitignore), so a table longer than one session accumulates across
sessions — a later launcher skips the committed cells and `--table_only` aggregates them.

Several launchers may share one --out (e.g. split by --only, or a second one started later): while a launcher runs a
cell it holds WORKDIR/launcher.lock (host and pid, created exclusively), another launcher skips a cell whose lock is
live and any cell that finished after it made its plan; a lock whose process is gone (same host) is taken over.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Any, Callable, NamedTuple, Sequence

from ganlatent_jax.training import events

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Run(NamedTuple):
  workdir: str
  command: list[str]
  done: str              # the file that marks it finished
  requires: str = ""     # a file that must exist before it starts (another run's output)


LOCK_FILE = "launcher.lock"


def _lock_is_live(path: str) -> bool:
  """Whether the launcher named in a lock file may still run its cell (another host's, or an unreadable lock being
  written, counts as live: only a same-host process known to be gone is not)."""
  try:
    with open(path) as f:
      host, pid = f.read().split()
  except (OSError, ValueError):
    return True
  if host != socket.gethostname():
    return True
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def claim(workdir: str) -> bool:
  """Takes the cell's lock (exclusive create); False when a live launcher holds it. A stale lock is taken over."""
  path = os.path.join(workdir, LOCK_FILE)
  for _ in range(2):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      if _lock_is_live(path):
        return False
      try:
        os.remove(path)
      except FileNotFoundError:
        pass
      continue
    with os.fdopen(fd, "w") as f:
      f.write(f"{socket.gethostname()} {os.getpid()}\n")
    return True
  return False


def release(workdir: str) -> None:
  try:
    os.remove(os.path.join(workdir, LOCK_FILE))
  except FileNotFoundError:
    pass


def execute(runs: Sequence[Run], workers: int, cwd: str = REPO) -> int:
  """Runs what is not done yet, `workers` at a time (a run starts once its requirement exists); the first failure
  stops the others and returns its exit code. Cells another launcher holds or finished meanwhile are skipped; a cell
  that requires the output of a held one waits for it."""
  if workers < 1:
    raise ValueError(f"workers={workers} must be >= 1")
  pending = [r for r in runs if not os.path.exists(r.done)]
  active: dict[subprocess.Popen, tuple[Run, float, Any]] = {}
  held_elsewhere: set[str] = set()   # the done files of cells another launcher is running
  # `kill` (SIGTERM) unwinds through the finally below, so the children stop and the cells' locks are freed.
  main_thread = threading.current_thread() is threading.main_thread()
  previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
  try:
    while pending or active:
      ready = [r for r in pending if not r.requires or os.path.exists(r.requires)]
      while ready and len(active) < workers:
        run = ready.pop(0)
        pending.remove(run)
        if os.path.exists(run.done):
          continue
        os.makedirs(run.workdir, exist_ok=True)
        if not claim(run.workdir):
          print(f"[{time.strftime('%H:%M:%S')}] skipped: another launcher runs {run.workdir} (its "
                f"{LOCK_FILE} names it; delete the file if that launcher is gone)", flush=True)
          held_elsewhere.add(run.done)
          continue
        print(f"[{time.strftime('%H:%M:%S')}] {' '.join(run.command[1:])}", flush=True)
        log = open(os.path.join(run.workdir, "run.log"), "a")
        process = subprocess.Popen(run.command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        active[process] = (run, time.time(), log)
      if not active:
        waiting = [r for r in pending if r.requires in held_elsewhere]
        if not pending or not waiting:
          if pending:
            print(f"nothing can start: missing {sorted({r.requires for r in pending})}", flush=True)
          return 1 if pending else 0
      time.sleep(2)
      for process in [p for p in active if p.poll() is not None]:
        run, start, log = active.pop(process)
        log.close()
        release(run.workdir)
        if process.returncode:
          print(f"failed with exit code {process.returncode}; see {os.path.join(run.workdir, 'run.log')}", flush=True)
          return process.returncode
        with open(os.path.join(run.workdir, "command.txt"), "w") as f:
          f.write(" ".join(run.command[1:]) + f"\n# {time.time() - start:.0f} s\n")
        events.write_scalars_record(run.workdir)   # what a committed results/ cell keeps of its curves
    return 0
  finally:
    for process, (run, _, log) in active.items():   # a failure or an interrupt: stop the others, free their cells
      process.terminate()
      process.wait()
      log.close()
      release(run.workdir)
    if main_thread:
      signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame):
  raise SystemExit(128 + signum)


def _number_list(text: str, kind: type, what: str) -> list:
  try:
    return [kind(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None


def int_list(text: str) -> list[int]:
  """'0,1,2' -> [0, 1, 2] (an argparse type: --seeds=0,1,2)."""
  return _number_list(text, int, "integers")


def float_list(text: str) -> list[float]:
  """'1e-3,1e-2' -> [0.001, 0.01] (an argparse type: --directions_lrs=1e-3,1e-2)."""
  return _number_list(text, float, "numbers")


def table_parser(description: str, workers: int = 1,
                 workers_help: str = "concurrent runs (each uses every core)") -> argparse.ArgumentParser:
  """The arguments of every table launcher: --out (the runs' root and the table's files), --seeds (a list of ints),
  --workers, --table_only (aggregate what exists, start nothing) and --only (start some cells only)."""
  parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True)
  parser.add_argument("--seeds", default="0,1,2", type=int_list)
  parser.add_argument("--workers", type=int, default=workers, help=workers_help)
  parser.add_argument("--table_only", action="store_true", help="no runs: aggregate what exists")
  parser.add_argument("--only", default="",
                      help="start only the runs whose workdir under --out matches one of these comma-separated glob "
                           "patterns (e.g. '*_lr*/*'); the table still aggregates every run that exists")
  return parser


def parse_with_overrides(parser: argparse.ArgumentParser, argv=None) -> tuple[argparse.Namespace, list[str]]:
  """The launcher's own arguments and the rest (`--config.KEY=VALUE` overrides for its runs, after an optional --)."""
  args, extra = parser.parse_known_args(argv)
  return args, [a for a in extra if a != "--"]


def selected(runs: Sequence[Run], out: str, only: str) -> list[Run]:
  """The runs whose workdir relative to `out` matches one of the comma-separated glob patterns `only` (all if it is
  empty); a pattern list that matches nothing is an error naming the plan's workdirs."""
  patterns = [p for p in only.split(",") if p.strip()]
  if not patterns:
    return list(runs)
  chosen = [r for r in runs if any(fnmatch.fnmatch(os.path.relpath(r.workdir, out), p) for p in patterns)]
  if not chosen:
    names = ", ".join(os.path.relpath(r.workdir, out) for r in runs)
    raise ValueError(f"--only={only!r} matches none of the plan's runs: {names}")
  return chosen


def aligned_budget(config: str, reference: str, cwd: str = REPO) -> tuple[str, ...]:
  """`--config.*` overrides giving the run of `config` the batch size and every evaluation-protocol budget it shares
  with `reference` (config files relative to `cwd`), for a table whose rows must differ by the method only: a
  baseline scored on 10000 FactorVAE votes beside rows scored on 1000 differs by its estimator's noise as well.
  Only the values that differ are overridden; keys `reference` has and `config` lacks are left alone."""
  from ganlatent_jax import cli
  run, ref = (cli.load_config(os.path.join(cwd, path)) for path in (config, reference))
  overrides = [f"--config.batch_size={ref.batch_size}"] if run.batch_size != ref.batch_size else []
  run_protocol, ref_protocol = run.evaluation.get("protocol", {}), ref.evaluation.get("protocol", {})
  for key in sorted(set(run_protocol) & set(ref_protocol)):
    if run_protocol[key] != ref_protocol[key]:
      overrides.append(f"--config.evaluation.protocol.{key}={ref_protocol[key]}")
  return tuple(overrides)


def run_table(args: argparse.Namespace, plan: Callable[[], Sequence[Run]], cwd: str = REPO) -> int:
  """Creates --out and executes the plan (its --only selection) unless --table_only: 0, or the first failed run's
  exit code."""
  os.makedirs(args.out, exist_ok=True)
  if args.table_only:
    return 0
  return execute(selected(plan(), args.out, args.only), args.workers, cwd)
