"""The terminal: third-party INFO lines filtered by source file, progress bars with ETA, timed phases, the summary."""
import io
import json
import logging
import os

import pytest
from absl import logging as absl_logging

from ganlatent_jax import console


def _record(level, pathname, name="absl", message="hello"):
  return logging.LogRecord(name, level, pathname, 1, message, None, None)


@pytest.mark.parametrize("level,path,name,passes", [
    (logging.INFO, "/usr/lib/python3/site-packages/orbax/checkpoint/checkpoint_manager.py", "absl", False),
    (logging.INFO, "/usr/lib/python3/site-packages/jax/_src/xla_bridge.py", "jax._src.xla_bridge", False),
    (logging.DEBUG, "/x/site-packages/tensorboardX/writer.py", "tensorboardX", False),
    (logging.WARNING, "/x/site-packages/orbax/checkpoint/checkpoint_manager.py", "absl", True),
    (logging.ERROR, "/x/site-packages/jax/_src/xla_bridge.py", "jax", True),
    (logging.INFO, os.path.join(os.path.dirname(console.__file__), "training", "loop.py"), "root", True),
    (logging.INFO, "<stdin>", "ganlatent_jax", True),
])
def test_filter_keeps_own_info_and_everyones_warnings(level, path, name, passes):
  assert console.OwnInfoOnly().filter(_record(level, path, name)) is passes


def _capture_root(verbosity):
  stream = io.StringIO()
  handler = logging.StreamHandler(stream)
  root = logging.getLogger()
  saved = root.handlers[:], root.level
  root.handlers[:] = [handler]
  try:
    console.setup_logging(verbosity)
    for record in (_record(logging.INFO, "/site-packages/orbax/x.py", message="orbax says hi"),
                   _record(logging.WARNING, "/site-packages/orbax/x.py", message="orbax warns"),
                   _record(logging.INFO, console.__file__, message="own info")):
      if record.levelno >= root.getEffectiveLevel():
        root.handle(record)
  finally:
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
    absl_logging.set_verbosity(absl_logging.INFO)
  return stream.getvalue()


@pytest.mark.parametrize("verbosity,shown,hidden", [
    (0, ["own info", "orbax warns"], ["orbax says hi"]),
    (1, ["own info", "orbax warns", "orbax says hi"], []),
    (-1, ["orbax warns"], ["own info", "orbax says hi"]),
])
def test_verbosity_brings_third_party_info_back(verbosity, shown, hidden):
  text = _capture_root(verbosity)
  for line in shown:
    assert line in text
  for line in hidden:
    assert line not in text


def test_setup_logging_twice_installs_one_filter():
  root = logging.getLogger()
  saved = root.handlers[:]
  root.handlers[:] = [logging.StreamHandler(io.StringIO())]
  try:
    console.setup_logging(0)
    console.setup_logging(0)
    assert sum(isinstance(f, console.OwnInfoOnly) for f in root.handlers[0].filters) == 1
    console.setup_logging(1)
    assert not any(isinstance(f, console.OwnInfoOnly) for f in root.handlers[0].filters)
  finally:
    root.handlers[:] = saved
    absl_logging.set_verbosity(absl_logging.INFO)


def test_progress_shows_count_and_eta_without_a_terminal(capsys):
  bar = console.progress(total=4, desc="encoder", unit="step")
  for _ in range(4):
    bar.update(1)
  bar.close()
  err = capsys.readouterr().err
  assert "encoder" in err and "4/4" in err and "0/4" in err  # the start line and the final state
  assert "<" in err  # tqdm's "elapsed<remaining" ETA field
  assert list(console.progress(range(3), "items")) == [0, 1, 2]


def test_progress_can_be_switched_off(capsys):
  console.set_progress_enabled(False)
  try:
    assert list(console.progress(range(3), "quiet")) == [0, 1, 2]
  finally:
    console.set_progress_enabled(True)
  assert "quiet" not in capsys.readouterr().err


def test_phases_nest_in_start_order_and_the_summary_lists_them(tmp_path):
  console.reset_phases()
  with console.phase("training"):
    pass
  with console.phase("evaluation"):
    with console.phase("mig"):
      pass
    end = console.start_phase("dci")
    assert end() == end()  # ends once
  times = console.phase_times()
  assert [(t.name, t.depth) for t in times] == [("training", 0), ("evaluation", 0), ("mig", 1), ("dci", 1)]
  (tmp_path / "metrics.json").write_text(json.dumps({
      "init_directions": {"mig": 0.1, "factor_vae_eval_accuracy": 0.5},
      "directions": {"mig": 0.25, "factor_vae_eval_accuracy": 0.75}, "evaluation": {"num_train": 10}}))
  text = console.summary(str(tmp_path))
  assert f"outputs: {tmp_path}" in text
  assert "MIG: 0.100 → 0.250 (init → refined)" in text
  assert "FactorVAE: 0.500 → 0.750 (init → refined)" in text
  assert "\n  training: " in text and "\n    mig: " in text  # nested phases indented
  console.reset_phases()


@pytest.mark.parametrize("seconds,text", [(3.21, "3.2 s"), (125, "2 min 05 s"), (7260, "2 h 01 min")])
def test_format_seconds(seconds, text):
  assert console.format_seconds(seconds) == text
