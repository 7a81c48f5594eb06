"""Test instrumentation (put on PYTHONPATH by tests/test_multiprocess.py, never by the library): in the process
started with `--jax_process_id=N` (N > 0), records every Python-level write under $GANLATENT_AUDIT_DIR — opens for
writing, mkdir, rename, remove — except inside its `checkpoints/` (orbax's own multi-process writes) to
$GANLATENT_AUDIT_LOG, one path per line. The test asserts that log is empty: only process 0 writes run files."""
import os
import sys

_DIR = os.environ.get("GANLATENT_AUDIT_DIR")
_LOG = os.environ.get("GANLATENT_AUDIT_LOG")
_ID = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--jax_process_id=")), None)
if _ID is None:   # sys.argv may not be set yet at site time; `python -m` keeps it in /proc
  try:
    with open("/proc/self/cmdline", "rb") as f:
      _ID = next((a.split("=", 1)[1] for a in f.read().decode().split("\0") if a.startswith("--jax_process_id=")),
                 None)
  except OSError:
    pass

if _DIR and _LOG and _ID not in (None, "0"):
  _ROOT = os.path.realpath(_DIR)
  _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
  _log = open(_LOG, "a", buffering=1)   # opened before the hook exists: not recorded

  def _inside(path):
    if isinstance(path, bytes):
      path = path.decode(errors="replace")
    if not isinstance(path, (str, os.PathLike)):
      return None
    real = os.path.realpath(os.fspath(path))
    if real == _ROOT or not real.startswith(_ROOT + os.sep):
      return None
    relative = os.path.relpath(real, _ROOT)
    return None if relative.split(os.sep)[0] == "checkpoints" else relative

  def _hook(event, args):
    if event == "open":
      path, mode, flags = args
      writes = (any(c in mode for c in "wax+") if isinstance(mode, str) else False) or \
               (isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
      paths = [path] if writes else []
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate"):
      paths = [args[0]]
    elif event == "os.rename":
      paths = [args[0], args[1]]
    else:
      return
    for path in paths:
      relative = _inside(path)
      if relative is not None:
        _log.write(f"{event} {relative}\n")

  sys.addaudithook(_hook)
