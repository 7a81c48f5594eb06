"""A run stopped during its evaluation resumes at the first unfinished protocol row (`methods._common.FinishedRows`):
the rows it had finished are read back, and the metrics.json it writes equals an uninterrupted evaluation's."""
import json
import pathlib

import jax
import numpy as np
import pytest

from ganlatent_jax import cli
from ganlatent_jax.directions import Directions
from ganlatent_jax.methods import _common
from ganlatent_jax.metrics import encoder_protocol

SEFA_CONFIG = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "sefa_3dshapes.py")


def _config():
  config = cli.load_config(SEFA_CONFIG + ":quick")   # the quick protocol: seconds per row
  config.generator = "testbed:oracle-dsprites"
  config.evaluation.dataset.name = "dsprites"
  config.evaluation.generated_domain.enabled = False
  return config


def _named(sampler, seed=0):
  dim = sampler.gen.latent_dim
  matrix = np.linalg.qr(np.random.RandomState(seed).randn(dim, 4))[0]
  return [("first", Directions(matrix[:, :2], space="z")), ("second", Directions(matrix[:, 2:], space="z"))]


class StopAtCall:
  """encoder_protocol.evaluate_directions that raises at its `stop_at`-th call (a run killed during that row) and
  counts the calls."""

  def __init__(self, stop_at=None):
    self.real, self.stop_at, self.calls = encoder_protocol.evaluate_directions, stop_at, 0

  def __call__(self, *args, **kwargs):
    self.calls += 1
    if self.calls == self.stop_at:
      raise KeyboardInterrupt("stopped during this row")
    return self.real(*args, **kwargs)


def test_a_stopped_evaluation_resumes_at_the_unfinished_row_with_the_uninterrupted_numbers(tmp_path, monkeypatch):
  config = _config()
  sampler = _common.make_sampler(config, _common.load_generator(config), {"w_avg": 1})
  named = _named(sampler)
  uninterrupted = _common.evaluate_directions(config, str(tmp_path / "a"), sampler, named, jax.random.key(3))

  workdir = tmp_path / "b"
  stopped = StopAtCall(stop_at=2)
  monkeypatch.setattr(encoder_protocol, "evaluate_directions", stopped)
  with pytest.raises(KeyboardInterrupt):
    _common.evaluate_directions(config, str(workdir), sampler, named, jax.random.key(3))
  kept = json.loads((workdir / _common.FINISHED_ROWS_FILE).read_text())
  assert list(kept) == ["first"] and not (workdir / "metrics.json").exists()

  resumed = StopAtCall()
  monkeypatch.setattr(encoder_protocol, "evaluate_directions", resumed)
  results = _common.evaluate_directions(config, str(workdir), sampler, named, jax.random.key(3))
  assert resumed.calls == 1   # only the row that had not finished
  assert results == uninterrupted
  assert json.loads((workdir / "metrics.json").read_text()) == json.loads((tmp_path / "a" / "metrics.json").read_text())
  assert not (workdir / _common.FINISHED_ROWS_FILE).exists()   # metrics.json is the result; nothing left behind


@pytest.mark.parametrize("change", ["directions", "evaluation", "seed", "generator"])
def test_a_kept_row_is_recomputed_when_what_it_depends_on_changed(change, tmp_path, monkeypatch):
  config = _config()
  sampler = _common.make_sampler(config, _common.load_generator(config), {"w_avg": 1})
  named = _named(sampler)
  fake = lambda gen, directions, *args, **kwargs: {"mig": float(directions.matrix[0, 0])}  # noqa: E731
  monkeypatch.setattr(encoder_protocol, "evaluate_directions", fake)
  key = _common.row_fingerprint(config, sampler, named[0][1])
  finished = _common.FinishedRows(str(tmp_path))
  finished.put("first", key, {"mig": -1.0})   # a marker no real evaluation gives
  assert _common.FinishedRows(str(tmp_path)).get("first", key) == {"mig": -1.0}
  if change == "directions":
    named = _named(sampler, seed=1)
  elif change == "evaluation":
    config.evaluation.protocol.steps = 3
  elif change == "seed":
    config.seed = 1
  else:
    config.generator = "testbed:oracle-shapes3d"   # the fingerprint only: this test never renders
  assert _common.row_fingerprint(config, sampler, named[0][1]) != key
  results = _common.evaluate_directions(config, str(tmp_path), sampler, named, jax.random.key(0))
  assert results["first"]["mig"] != -1.0
