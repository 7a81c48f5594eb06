"""GANSpace as a command: PCA directions (in W, or a layer's activations regressed to z) with traversal pictures."""
from __future__ import annotations

import os

import jax

from ganlatent_jax import directions as directions_lib
from ganlatent_jax import parallel
from ganlatent_jax.methods import _common


def init(config, gen):
  return directions_lib.ganspace(gen, int(config.num_directions), int(config.num_samples),
                                 jax.random.key(config.seed), layer=config.layer or None,
                                 batch_size=int(config.batch_size),
                                 mesh=parallel.make_mesh(config.get("num_devices") or None))


def train(config, workdir: str) -> dict:
  gen = _common.load_generator(config)
  directions, stds = init(config, gen)
  os.makedirs(workdir, exist_ok=True)
  outputs = _common.write_directions(workdir, gen, directions, config)
  _common.write_json(os.path.join(workdir, "results.json"),
                     {"method": "ganspace", "layer": config.layer, "stds": stds, "outputs": outputs,
                      "generator": config.generator, "num_samples": config.num_samples})
  return outputs


def evaluate(config, workdir: str) -> dict:
  return {"directions": directions_lib.load(os.path.join(workdir, "directions.npz"))}
