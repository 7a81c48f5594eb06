"""A checkpointed run is resumed or evaluated only with the config it was trained with.

`training.loop.run` rewrites `workdir/config.json` at every start, and an orbax checkpoint restores into whatever
state the current config builds: a key that changes what the parameters MEAN without changing their shapes (an
equalized-lr head, an activation, a learning rate, the dataset) was read silently into another model — a resumed run
no longer equal to an uninterrupted one, an evaluation of a model that was never trained (found 2026-12-04 on PS-SC's
Q head, guarded there alone until this check covered every method). Before restoring, the current config is compared
with the run's recorded config.json, every key except those that only steer the loop and its outputs
(`RUN_CONTROL`); a difference is refused, naming each key with both values.

A key introduced after runs already existed is absent from their config.json. Where the behaviour those runs had is
known, `LEGACY_DEFAULTS` records it (method -> dotted key -> the value equal to the old behaviour), so a resume with
that value passes; otherwise the absent key is refused like a changed one. To resume anyway, edit the run's
config.json (a deliberate act, left in the run's record) or start a new workdir.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

from ganlatent_jax import io

# Top-level keys a resume or an evaluation may change: how far, how often and how visibly the loop runs, on how many
# devices (checkpoints are sharding-agnostic), and what is measured or drawn at the end.
RUN_CONTROL = frozenset({"steps", "log_every", "checkpoint_every", "keep_checkpoints", "image_every", "progress_bar",
                         "num_devices", "evaluation", "traversal"})

# The value of a key, for runs trained before the key existed, that reproduces their behaviour.
LEGACY_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    # Q's head was a plain Dense until 2026-12-04 (`recognizer.aux_equalized`, upstream's head_ps_sc is equalized).
    # ... and D's phase of an iteration came first, the GAN engine's default (`step_order`, upstream's G first).
    "pssc": {"recognizer.aux_equalized": False, "step_order": "d_then_g"},
}

_ABSENT = object()


def as_json(config) -> dict:
  """The config as its config.json records it (tuples as lists, placeholders as null)."""
  if hasattr(config, "to_json_best_effort"):
    return json.loads(config.to_json_best_effort(sort_keys=True))
  return json.loads(json.dumps(config, sort_keys=True, default=str))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping) and value:
      flat.update(_flatten(value, f"{name}."))
    else:
      flat[name] = value
  return flat


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any],
                method: str | None = None) -> dict[str, tuple[Any, Any]]:
  """dotted key -> (the run's value, this config's value) for every key outside `RUN_CONTROL` that differs; a side
  lacking the key shows `'<absent>'`. The run's absent keys take the method's `LEGACY_DEFAULTS` first."""
  legacy = LEGACY_DEFAULTS.get(method or "", {})
  recorded = {**legacy, **_flatten(recorded)}
  current = _flatten(current)
  show = lambda value: "<absent>" if value is _ABSENT else value   # noqa: E731
  found = {}
  for key in sorted(set(recorded) | set(current)):
    if key.split(".")[0] in RUN_CONTROL:
      continue
    old, new = recorded.get(key, _ABSENT), current.get(key, _ABSENT)
    if old != new:
      found[key] = (show(old), show(new))
  return found


def check_matches_run(config, workdir: str) -> None:
  """Refuses (ValueError naming each key, the run's value and this config's) to resume or evaluate the checkpointed
  run in `workdir` with a config that differs from its config.json outside `RUN_CONTROL`. Call it only when the
  workdir holds a checkpoint: a fresh start records whatever config it is given. A run without config.json (not
  written by this library's loop) is not checked."""
  path = os.path.join(workdir, "config.json")
  if not io.exists(path):
    return
  try:
    recorded = json.loads(io.read_text(path))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not JSON ({e}); it records the config this run was trained with — restore it or "
                     f"start a new workdir") from e
  current = as_json(config)
  found = differences(recorded, current, current.get("method"))
  if found:
    lines = "\n".join(f"  {key}: the run has {old!r}, this config has {new!r}" for key, (old, new) in found.items())
    raise ValueError(
        f"{workdir} holds a checkpoint trained with another config ({path}):\n{lines}\nIts parameters would be "
        f"restored into a model they were not trained for. Pass the run's values (--config.KEY=VALUE), or start a "
        f"new workdir; keys the loop may change on a resume: {sorted(RUN_CONTROL)}. A run trained before a key "
        f"existed has it '<absent>': if that run's behaviour equals this value, add the key to its config.json.")
