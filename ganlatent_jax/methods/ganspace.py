"""GANSpace as a command: PCA directions (in W, or a layer's activations regressed to z) with traversal pictures.

Closed form (a streamed PCA), so there is no training state or step (no `make`): `train` computes and writes the
directions, `evaluate` scores them with the encoder protocol (config.evaluation).
"""
from __future__ import annotations

import os
from typing import Any

from ganlatent_jax import directions as directions_lib
from ganlatent_jax import io
from ganlatent_jax import parallel
from ganlatent_jax.generators import sampling
from ganlatent_jax.methods import _common

# key(config.seed + offset) of each random draw of a run (the PCA samples and the pictures share key(seed), as the
# README's runs did).
STREAMS = dict(samples=0, pictures=0, w_avg=1, evaluation=17)


def check_config(config) -> None:
  _common.check_positive(config, "num_directions", "num_samples", "batch_size", "traversal.steps",
                         "traversal.num_samples")
  if int(config.num_samples) < int(config.num_directions):
    raise ValueError(f"config.num_samples={config.num_samples} must be >= config.num_directions="
                     f"{config.num_directions} (PCA of fewer samples than components)")


def directions(config, sampler: sampling.Sampler):
  """(Directions, standard deviations): PCA over the run's prior (a class-conditional generator: one class's
  activations over its truncated noise)."""
  gen = sampler.gen
  extra = dict(sample_z=sampler.z, **sampler.picture_kwargs()) if sampler.conditional else {}
  latent_size = gen.info.w_dim if not config.layer and "w" in gen.info.latent_spaces else gen.latent_dim
  if int(config.num_directions) > latent_size:
    raise ValueError(f"config.num_directions={config.num_directions} exceeds the latent size {latent_size}")
  return directions_lib.ganspace(gen, int(config.num_directions), int(config.num_samples),
                                 _common.stream(config, STREAMS, "samples"), layer=config.layer or None,
                                 batch_size=int(config.batch_size),
                                 mesh=parallel.make_mesh(config.get("num_devices") or None), **extra)


def train(config, workdir: str) -> dict[str, str]:
  """directions.npz, images/traversal.png, results.json (standard deviations) and, with
  config.evaluation.enabled, metrics.json. Returns the paths written."""
  check_config(config)
  gen = _common.load_generator(config)
  sampler = _common.make_sampler(config, gen, STREAMS)   # checked before any work: nothing half-written
  found, stds = directions(config, sampler)
  io.makedirs(workdir)
  outputs = _common.write_directions(workdir, sampler, found, config, _common.stream(config, STREAMS, "pictures"))
  outputs["results"] = os.path.join(workdir, "results.json")
  _common.write_json(outputs["results"], {"method": "ganspace", "layer": config.layer, "stds": stds,
                                          "outputs": dict(outputs), "generator": config.generator,
                                          "num_samples": config.num_samples, "sampling": sampler.record()})
  if config.evaluation.enabled:
    evaluate(config, workdir, sampler=sampler)
    outputs["metrics"] = os.path.join(workdir, "metrics.json")
  return outputs


def evaluate(config, workdir: str, sampler=None) -> dict[str, Any]:
  """The encoder protocol's scores of the run's directions.npz (config.evaluation), written to metrics.json."""
  sampler = sampler or _common.make_sampler(config, _common.load_generator(config), STREAMS)
  return _common.evaluate_directions(config, workdir, sampler, [("directions", _common.load_directions(workdir))],
                                     _common.stream(config, STREAMS, "evaluation"))
