"""SeFa as a command: closed-form directions of a generator, saved with traversal pictures.

Closed form, so there is no training state or step: `init` computes the directions, `train` writes them.
"""
from __future__ import annotations

import os

from ganlatent_jax import directions as directions_lib
from ganlatent_jax.methods import _common



def init(config, gen):
  return directions_lib.sefa(gen, int(config.num_directions), variant=config.variant,
                             layers=_common.parse_layers(config.layers))


def train(config, workdir: str) -> dict:
  gen = _common.load_generator(config)
  cond = _common.config_conditioning(config, gen)   # checked before any work: nothing half-written
  directions, eigenvalues = init(config, gen)
  os.makedirs(workdir, exist_ok=True)
  outputs = _common.write_directions(workdir, gen, directions, config, cond=cond)
  _common.write_json(os.path.join(workdir, "results.json"),
                     {"method": "sefa", "variant": config.variant, "eigenvalues": eigenvalues[:64],
                      "outputs": outputs, "generator": config.generator, **_common.conditioning_record(cond)})
  return outputs


def evaluate(config, workdir: str) -> dict:
  return {"directions": directions_lib.load(os.path.join(workdir, "directions.npz"))}
