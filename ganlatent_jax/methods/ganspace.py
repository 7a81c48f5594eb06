"""GANSpace as a command: PCA directions (in W, or a layer's activations regressed to z) with traversal pictures."""
from __future__ import annotations

import os

import jax

from ganlatent_jax import directions as directions_lib
from ganlatent_jax import parallel
from ganlatent_jax.methods import _common


def init(config, gen):
  cond = _common.config_conditioning(config, gen)
  # A class-conditional generator (BigGAN): PCA of one class's activations over its truncated noise.
  extra = {} if cond is None else dict(sample_z=lambda rng, num: cond.sample_z(gen, rng, num), **cond.picture_kwargs())
  return directions_lib.ganspace(gen, int(config.num_directions), int(config.num_samples),
                                 jax.random.key(config.seed), layer=config.layer or None,
                                 batch_size=int(config.batch_size),
                                 mesh=parallel.make_mesh(config.get("num_devices") or None), **extra)


def train(config, workdir: str) -> dict:
  gen = _common.load_generator(config)
  cond = _common.config_conditioning(config, gen)   # checked before any work: nothing half-written
  directions, stds = init(config, gen)
  os.makedirs(workdir, exist_ok=True)
  outputs = _common.write_directions(workdir, gen, directions, config, cond=cond)
  _common.write_json(os.path.join(workdir, "results.json"),
                     {"method": "ganspace", "layer": config.layer, "stds": stds, "outputs": outputs,
                      "generator": config.generator, "num_samples": config.num_samples,
                      **_common.conditioning_record(cond)})
  return outputs


def evaluate(config, workdir: str) -> dict:
  return {"directions": directions_lib.load(os.path.join(workdir, "directions.npz"))}
