"""SeFa as a command: closed-form directions of a generator, saved with traversal pictures.

Closed form, so there is no training state or step (no `make`): `train` computes and writes the directions,
`evaluate` scores them with the encoder protocol (config.evaluation).
"""
from __future__ import annotations

import os
from typing import Any

from ganlatent_jax import directions as directions_lib
from ganlatent_jax import io
from ganlatent_jax.directions.closed_form import VARIANTS  # noqa: F401 (public: the config's choices)
from ganlatent_jax.methods import _common

# key(config.seed + offset) of each random draw of a run.
STREAMS = dict(pictures=0, w_avg=1, evaluation=17)


def check_config(config) -> None:
  _common.check_positive(config, "num_directions", "traversal.steps", "traversal.num_samples")
  if config.variant not in VARIANTS:
    raise ValueError(f"config.variant={config.variant!r}; expected one of {VARIANTS}")


def directions(config, gen):
  """(Directions, eigenvalues) of `gen` for the config's variant and layers."""
  return directions_lib.sefa(gen, int(config.num_directions), variant=config.variant,
                             layers=_common.parse_layers(config.layers))


def train(config, workdir: str) -> dict[str, str]:
  """directions.npz, images/traversal.png, results.json (eigenvalues) and, with config.evaluation.enabled,
  metrics.json. Returns the paths written."""
  check_config(config)
  gen = _common.load_generator(config)
  sampler = _common.make_sampler(config, gen, STREAMS)   # checked before any work: nothing half-written
  found, eigenvalues = directions(config, gen)
  io.makedirs(workdir)
  outputs = _common.write_directions(workdir, sampler, found, config, _common.stream(config, STREAMS, "pictures"))
  outputs["results"] = os.path.join(workdir, "results.json")
  _common.write_json(outputs["results"], {"method": "sefa", "variant": config.variant, "eigenvalues": eigenvalues[:64],
                                          "outputs": dict(outputs), "generator": config.generator,
                                          "sampling": sampler.record()})
  if config.evaluation.enabled:
    evaluate(config, workdir, sampler=sampler)
    outputs["metrics"] = os.path.join(workdir, "metrics.json")
  return outputs


def evaluate(config, workdir: str, sampler=None) -> dict[str, Any]:
  """The encoder protocol's scores of the run's directions.npz (config.evaluation), written to metrics.json."""
  sampler = sampler or _common.make_sampler(config, _common.load_generator(config), STREAMS)
  return _common.evaluate_directions(config, workdir, sampler, [("directions", _common.load_directions(workdir))],
                                     _common.stream(config, STREAMS, "evaluation"))
