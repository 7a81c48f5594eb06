"""A checkpointed run resumes / is evaluated only with the config it was trained with (`training.run_config`)."""
import json
import pathlib

import pytest

from ganlatent_jax import cli, parallel
from ganlatent_jax.training import loop, run_config
import toy_training
CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def _train(workdir, **overrides):
  c = toy_training.config(**overrides)
  mesh = parallel.make_mesh()
  init_fn, step = toy_training.make(c, mesh)
  return loop.run(config=c, workdir=str(workdir), mesh=mesh, init_fn=init_fn, train_step=step, images_per_step=16)


@pytest.mark.parametrize("recorded, current, expected", [
    ({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2}}, {}),
    ({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}}, {"b.c": (2, 3)}),
    ({"a": 1}, {"a": 1, "new": True}, {"new": ("<absent>", True)}),                  # a key born after the run
    ({"a": 1, "gone": 0}, {"a": 1}, {"gone": (0, "<absent>")}),
    ({"steps": 10, "evaluation": {"x": 1}, "traversal": {"span": 3}, "num_devices": 8, "log_every": 5},
     {"steps": 20, "evaluation": {"x": 2, "y": 1}, "traversal": {"span": 5}, "num_devices": 1, "log_every": 1}, {}),
    ({"t": [1, 2]}, {"t": [1, 2]}, {}),
])
def test_differences(recorded, current, expected):
  assert run_config.differences(recorded, current) == expected


@pytest.mark.parametrize("recorded, current, refused", [
    ({}, {"aux_equalized": True}, True),                       # a PS-SC run from before 2026-12-04, today's config
    ({}, {"aux_equalized": False}, False),                     # ... with the override that matches it (LEGACY_DEFAULTS)
    ({"aux_equalized": True}, {"aux_equalized": True}, False),
    ({"aux_equalized": True, "width": 8}, {"aux_equalized": True, "width": 4}, True),
])
def test_a_pssc_run_is_not_read_into_another_q_head(tmp_path, recorded, current, refused):
  config = cli.load_config(str(CONFIGS / "pssc_3dshapes.py"))
  run = run_config.as_json(config)
  run["recognizer"] = {**{k: v for k, v in run["recognizer"].items() if k != "aux_equalized"}, **recorded}
  (tmp_path / "config.json").write_text(json.dumps(run))
  config.recognizer.update(current)
  found = run_config.differences(run, run_config.as_json(config), "pssc")
  assert bool(found) == refused, found
  if refused:
    with pytest.raises(ValueError, match=r"trained with another config .*\n  recognizer\.(aux_equalized|width): the run "
                                         r"has .*, this config has"):
      run_config.check_matches_run(config, str(tmp_path))
  else:
    run_config.check_matches_run(config, str(tmp_path))


def test_a_resume_with_another_model_is_refused_and_the_record_kept(tmp_path):
  _train(tmp_path, steps=10)
  recorded = (tmp_path / "config.json").read_text()
  # before 2026-12-04 this resumed: the checkpoint restored into a model trained at another learning rate, and the
  # run's config.json was overwritten with the new one
  with pytest.raises(ValueError, match=r"learning_rate: the run has 0\.01, this config has 0\.5"):
    _train(tmp_path, steps=20, learning_rate=0.5)
  assert (tmp_path / "config.json").read_text() == recorded
  c = toy_training.config(learning_rate=0.5)
  init_fn, _ = toy_training.make(c, parallel.make_mesh())
  with pytest.raises(ValueError, match=r"learning_rate"):
    loop.restore_latest(init_fn, c, parallel.make_mesh(), str(tmp_path))   # a method's evaluate
  state = _train(tmp_path, steps=20, log_every=2, checkpoint_every=4)   # the loop's own keys may change
  assert int(state.step) == 20


def test_a_fresh_start_records_any_config(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"learning_rate": 3.0}))   # no checkpoint: nothing to restore
  _train(tmp_path, steps=2, learning_rate=0.5)
  assert json.loads((tmp_path / "config.json").read_text())["learning_rate"] == 0.5
