"""The terminal of every command: quiet logging, progress bars with ETA, timed phases and a final summary.

  console.setup_logging(verbosity)        # once per command (cli.run does it from absl's --verbosity)
  for x in console.progress(items, "rendering"): ...   # or progress(total=n, desc=...) and .update(k)
  with console.phase("evaluation"): ...   # logged when it starts and ends; its wall time goes in the summary
  print(console.summary(workdir))         # where the outputs are, the headline numbers, the time per phase

Third-party libraries log a lot at INFO through absl and Python logging (orbax: ~50 lines per checkpoint; jax: the
backends it could not open). At verbosity 0 (absl's default) only this package's INFO lines and everyone's warnings
and errors reach the terminal; `--verbosity=1` (or higher) brings every library's INFO and debug lines back;
`--verbosity=-1` leaves warnings only.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from typing import Callable, Iterable, Iterator

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SHORT_FORMAT = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")


class OwnInfoOnly(logging.Filter):
  """Passes warnings and errors from anywhere; INFO and below only from this package's modules.

  Decided by the record's source file, not the logger's name: orbax and this package both log through absl's
  logger, so the name cannot tell them apart.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return True
    return record.pathname.startswith(_PACKAGE_DIR) or record.name.startswith("ganlatent_jax")


def _root_handlers() -> list[logging.Handler]:
  root = logging.getLogger()
  if not root.handlers:  # used outside absl.app: give the package a plain stderr handler
    root.addHandler(logging.StreamHandler(sys.stderr))
  return list(root.handlers)


def setup_logging(verbosity: int = 0) -> None:
  """Quiet third-party logging at `verbosity` ≤ 0 (see the module docstring); idempotent.

  Call before jax creates its backends: XLA's C++ logging level (TF_CPP_MIN_LOG_LEVEL) is read once, at load time.
  """
  verbosity = int(verbosity)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbosity >= 1 else "1")
  root = logging.getLogger()
  root.setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO if verbosity == 0 else logging.WARNING)
  try:  # absl keeps its own level on the 'absl' logger (set from --verbosity when absl.app runs)
    from absl import logging as absl_logging
    absl_logging.set_verbosity(max(min(verbosity, 1), -1))
  except ImportError:
    pass
  for handler in _root_handlers():
    for existing in [f for f in handler.filters if isinstance(f, OwnInfoOnly)]:
      handler.removeFilter(existing)
    if verbosity < 1:
      handler.addFilter(OwnInfoOnly())
      handler.setFormatter(_SHORT_FORMAT)


# ----------------------------------------------------------------------------------------------------------------
# Progress bars

_progress_enabled = True


def set_progress_enabled(enabled: bool) -> None:
  """Turns every progress bar of this process on or off (e.g. for log files; `config.progress_bar`)."""
  global _progress_enabled
  _progress_enabled = bool(enabled)


def _is_main_process() -> bool:
  jax = sys.modules.get("jax")  # never imports jax itself: the console must work before the backend starts
  return jax is None or jax.process_index() == 0


def progress(iterable: Iterable | None = None, desc: str = "", *, total: int | None = None, unit: str = "it",
             initial: int = 0, enabled: bool = True, **tqdm_kwargs):
  """A progress bar with rate and ETA on stderr, shown on process 0 only; wraps a loop like `tqdm`.

  `progress(items, "rendering")` iterates; `progress(total=n, desc="encoder", unit="step")` is updated by hand
  (`bar.update(k)`, `bar.set_postfix(...)`, `bar.close()`). Disabled bars cost nothing and keep the same interface.
  Without a terminal (a log file, a test capturing output) the bar prints at most one line per 30 s plus its final
  state, so logs stay short.
  """
  from tqdm import tqdm
  interactive = sys.stderr.isatty()
  disable = not (enabled and _progress_enabled and _is_main_process())
  kwargs = dict(desc=desc, total=total, unit=unit, initial=initial, disable=disable, dynamic_ncols=True,
                mininterval=0.5 if interactive else 30.0, file=sys.stderr, leave=True)
  if not interactive:
    kwargs["ncols"] = 100
  kwargs.update(tqdm_kwargs)
  return tqdm(iterable, **kwargs)  # tqdm prints the 0% line at once: a log shows that the phase started


# ----------------------------------------------------------------------------------------------------------------
# Timed phases and the final summary


@dataclasses.dataclass(frozen=True)
class PhaseTime:
  name: str
  seconds: float
  depth: int  # nesting level: an evaluation's metrics sit under the evaluation


# Entries are added when a phase starts (so the list is in start order) and get their time when it ends.
_phase_records: list[list] = []   # [name, depth, seconds or None]
_phase_depth = 0


def format_seconds(seconds: float) -> str:
  seconds = float(seconds)
  if seconds < 60:
    return f"{seconds:.1f} s"
  minutes, seconds = divmod(int(round(seconds)), 60)
  if minutes < 60:
    return f"{minutes} min {seconds:02d} s"
  hours, minutes = divmod(minutes, 60)
  return f"{hours} h {minutes:02d} min"


def start_phase(name: str) -> Callable[[], float]:
  """Starts a timed phase without a `with` block; the returned function ends it (once) and returns its seconds."""
  global _phase_depth
  log = logging.getLogger("ganlatent_jax")
  log.info("%s …", name)
  record = [name, _phase_depth, None]
  _phase_records.append(record)
  _phase_depth += 1
  start = time.perf_counter()

  def end() -> float:
    global _phase_depth
    if record[2] is None:
      _phase_depth -= 1
      record[2] = time.perf_counter() - start
      log.info("%s: %s", name, format_seconds(record[2]))
    return record[2]

  return end


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
  """Logs the start and the end (with wall time) of a phase and records it for `summary`; phases nest."""
  end = start_phase(name)
  try:
    yield
  finally:
    end()


def phase_times() -> list[PhaseTime]:
  """The phases finished in this process so far, in the order they started."""
  return [PhaseTime(name, seconds, depth) for name, depth, seconds in _phase_records if seconds is not None]


def reset_phases() -> None:
  global _phase_depth
  _phase_records.clear()
  _phase_depth = 0


def summary(workdir: str, phases: list[PhaseTime] | None = None) -> str:
  """The end-of-run text: where the outputs are, the headline numbers (before → after), the time per phase."""
  from ganlatent_jax import io
  from ganlatent_jax.viz import report  # lazily: the renderer reads JSON and event files, not needed before
  workdir = io.absolute(workdir)
  lines = [f"outputs: {workdir}"]
  report_path = os.path.join(workdir, report.REPORT_FILE)
  if io.exists(report_path):
    lines.append(f"report:  {report_path}")
  headline = report.headline_lines(workdir)
  if headline:
    lines.append("results:")
    lines.extend(f"  {line}" for line in headline)
  times = phase_times() if phases is None else phases
  if times:
    lines.append("wall time:")
    lines.extend(f"  {'  ' * t.depth}{t.name}: {format_seconds(t.seconds)}" for t in times)
  return "\n".join(lines)
