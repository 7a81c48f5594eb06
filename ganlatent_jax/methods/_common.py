"""What the method modules share: loading the generator and its sampler, named RNG streams, checking config values,
layer ranges, direction outputs (directions.npz + pictures) and the encoder-protocol evaluation (metrics.json)."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from ganlatent_jax import console, generators, io, viz
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators import sampling


# ---------------------------------------------------------------------------------------------------------------
# Generator, sampler, keys.

def load_generator(config) -> generators.Generator:
  path = config.get("generator", "")
  if not isinstance(path, str) or not path:
    raise ValueError(f"config.generator={path!r}: give a checkpoint path, a converted directory or 'testbed:NAME'")
  return generators.load(path, format=config.get("generator_format") or None)


def stream(config, streams: Mapping[str, int], name: str) -> jax.Array:
  """The key of the run's RNG stream `name`: key(config.seed + streams[name]). Each method lists its streams in one
  `STREAMS` table, so a number in the README can be traced to the draws that made it (and stays reproducible)."""
  return jax.random.key(int(config.seed) + int(streams[name]))


def make_sampler(config, gen: generators.Generator, streams: Mapping[str, int],
                 w_avg_samples: int = sampling.W_AVG_SAMPLES) -> sampling.Sampler:
  """The run's sampler (`generators.sampling.from_config`), w̄ from the stream 'w_avg'."""
  return sampling.from_config(config, gen, rng=stream(config, streams, "w_avg"), w_avg_samples=w_avg_samples)


# ---------------------------------------------------------------------------------------------------------------
# Config values.

def check_positive(config, *keys: str) -> None:
  """Each dotted key must hold an integer > 0 (batch sizes, log intervals, counts)."""
  for key in keys:
    value = _lookup(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
      raise ValueError(f"config.{key}={value!r} must be a positive integer")


def check_non_negative(config, *keys: str) -> None:
  for key in keys:
    value = _lookup(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or value < 0:
      raise ValueError(f"config.{key}={value!r} must be >= 0")


def check_loop(config) -> None:
  """The keys `training.loop.run` reads: steps >= 0, log_every > 0, checkpoint_every > 0, batch_size > 0."""
  check_non_negative(config, "steps", "image_every")
  check_positive(config, "batch_size", "log_every", "checkpoint_every")


def _lookup(config, dotted: str):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


def parse_layers(spec: str) -> list[int] | None:
  """'' or 'all' → None; '2-5' → [2, 3, 4, 5]; '0,1,4' → [0, 1, 4]."""
  spec = (spec or "").strip()
  if spec in ("", "all"):
    return None
  layers: list[int] = []
  try:
    for part in spec.split(","):
      if "-" in part:
        lo, hi = part.split("-")
        layers.extend(range(int(lo), int(hi) + 1))
      else:
        layers.append(int(part))
  except ValueError:
    raise ValueError(f"config.layers={spec!r}: expected 'all', 'a-b' or 'i,j,k'") from None
  return layers


def write_json(path: str, payload: dict[str, Any]) -> None:
  io.write_json(path, payload, sort_keys=True)


# ---------------------------------------------------------------------------------------------------------------
# Direction outputs.

def traversal_kwargs(config, sampler: sampling.Sampler, directions: Directions) -> dict[str, Any]:
  """viz.traversal_grid settings: config.traversal's span and steps, the run's W truncation around its one w̄ (for
  directions in W), a class-conditional generator's first class."""
  t = config.traversal
  kwargs: dict[str, Any] = dict(span=(-float(t.span), float(t.span)), steps=int(t.steps), **sampler.picture_kwargs())
  if sampler.truncation is not None and directions.space != "z" and not sampler.conditional:
    kwargs.update(w_truncation=sampler.truncation, w_avg=sampler.w_avg)
  return kwargs


def write_directions(workdir: str, sampler: sampling.Sampler, directions: Directions, config, rng: jax.Array,
                     comparison: Sequence[tuple[str, Directions]] = (),
                     max_rendered: int | None = None) -> dict[str, str]:
  """directions.npz (all directions), images/traversal.png of the first `max_rendered` (all when None), and a
  side-by-side sheet when `comparison` is given. Pictures start from config.traversal.num_samples prior draws
  (from `rng`), in the first class of a class-conditional generator."""
  gen = sampler.gen
  outputs = {"directions": os.path.join(workdir, "directions.npz")}
  os.makedirs(os.path.join(workdir, "images"), exist_ok=True)
  directions.save(outputs["directions"])
  latents = sampler.z(rng, int(config.traversal.num_samples))
  outputs["traversal"] = os.path.join(workdir, "images", "traversal.png")
  shown = directions if max_rendered is None else directions.select(range(min(max_rendered,
                                                                              directions.num_directions)))
  with console.phase("traversal pictures"):
    viz.traversal_grid(gen, shown, latents, path=outputs["traversal"], **traversal_kwargs(config, sampler, shown))
    if comparison:
      grids = [viz.traversal_grid(gen, d, latents, **traversal_kwargs(config, sampler, d)) for _, d in comparison]
      outputs["comparison"] = os.path.join(workdir, "images", "traversal_comparison.png")
      viz.contact_sheet(grids, [name for name, _ in comparison], path=outputs["comparison"])
  return outputs


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: the encoder protocol (SRE / Khrulkov et al.) on a ground-truth dataset.

def protocol_config(config, sampler: sampling.Sampler):
  """`metrics.encoder_protocol.ProtocolConfig` from config.evaluation: `protocol` holds its fields by name,
  `metrics` the metric names; the W truncation is the run's."""
  from ganlatent_jax.metrics import encoder_protocol
  ev = config.evaluation
  fields = {f.name for f in dataclasses.fields(encoder_protocol.ProtocolConfig)}
  protocol = dict(ev.protocol)
  unknown = sorted(set(protocol) - fields)
  if unknown:
    raise ValueError(f"config.evaluation.protocol has key(s) {unknown} that the encoder protocol does not take; "
                     f"known: {sorted(fields - {'truncation', 'metrics'})}")
  for key, value in protocol.items():
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
      raise ValueError(f"config.evaluation.protocol.{key}={value!r} must be > 0")
  metrics = tuple(ev.metrics)
  known = ("mig", "factor_vae", "dci", "beta_vae")
  if not metrics or set(metrics) - set(known):
    raise ValueError(f"config.evaluation.metrics={metrics!r}: expected a non-empty subset of {known}")
  truncation = None if sampler.conditional else sampler.truncation
  return encoder_protocol.ProtocolConfig(**protocol, truncation=truncation, metrics=metrics)


def evaluation_dataset(config):
  from ganlatent_jax import data
  section = dict(config.evaluation.dataset)
  if not section.get("name"):
    raise ValueError("config.evaluation.dataset.name is empty: the encoder protocol needs a ground-truth dataset "
                     "(e.g. 'shapes3d' for testbed:shapes3d)")
  return data.get_dataset(section.pop("name"), **section)


def evaluate_directions(config, workdir: str, sampler: sampling.Sampler, named: Sequence[tuple[str, Directions]],
                        rng: jax.Array, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """Scores each named Directions with the encoder protocol (same keys for each, so only the directions differ);
  writes metrics.json = {**extra, name: scores, ...} and returns it."""
  from ganlatent_jax.metrics import encoder_protocol
  if sampler.conditional:
    raise ValueError(f"config.evaluation: the encoder protocol has no class-conditional path; a "
                     f"{sampler.gen.info.family} generator is class-conditional (set config.evaluation.enabled=False)")
  protocol = protocol_config(config, sampler)
  dataset = evaluation_dataset(config)
  results: dict[str, Any] = {"evaluation": config.evaluation.to_dict(), "seed": int(config.seed), **(extra or {})}
  for name, directions in named:
    with console.phase(f"evaluation: {name}"):   # the end-of-run summary times each set of directions
      results[name] = encoder_protocol.evaluate_directions(sampler.gen, directions, dataset, protocol, rng,
                                                           np.random.RandomState(int(config.seed)))
  write_json(os.path.join(workdir, "metrics.json"), results)
  return results


def load_directions(workdir: str, name: str = "directions") -> Directions:
  path = os.path.join(workdir, f"{name}.npz")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} does not exist: run `python -m ganlatent_jax.main` with this config and workdir "
                            f"first")
  return Directions.load(path)
