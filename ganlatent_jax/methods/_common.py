"""What every method's `train(config, workdir)` shares: loading its generator, parsing layer ranges, writing outputs."""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import jax
import numpy as np

from ganlatent_jax import generators, viz
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.directions import spaces


def load_generator(config) -> generators.Generator:
  path = config.get("generator", "")
  if not path:
    raise ValueError("config.generator is empty: give a checkpoint path, a converted directory or 'testbed:NAME'")
  return generators.load(path, format=config.get("generator_format") or None)


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
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(payload, f, indent=2, sort_keys=True, default=lambda v: np.asarray(v).tolist())
  os.replace(tmp, path)


def traversal_kwargs(config, gen: generators.Generator, directions: Directions) -> dict[str, Any]:
  """Traversal settings from config.traversal; W-space truncation needs w̄, computed once here."""
  t = config.traversal
  kwargs: dict[str, Any] = dict(span=(-float(t.span), float(t.span)), steps=int(t.steps))
  truncation = t.get("truncation", None)
  if truncation is not None and directions.space != "z":
    kwargs.update(w_truncation=float(truncation), w_avg=spaces.mean_w(gen, jax.random.key(config.seed + 1)))
  return kwargs


def write_directions(workdir: str, gen: generators.Generator, directions: Directions, config,
                     comparison: Sequence[tuple[str, Directions]] = (),
                     max_rendered: int | None = None, latents=None, **gen_kwargs) -> dict[str, str]:
  """directions.npz (all directions), images/traversal.png of the first `max_rendered` (all when None), and a
  side-by-side sheet when `comparison` is given. Pictures start from `latents` (default: config.traversal.num_samples
  draws of the prior); `gen_kwargs` go to the generator (e.g. BigGAN's class_vector and truncation)."""
  os.makedirs(os.path.join(workdir, "images"), exist_ok=True)
  outputs = {"directions": os.path.join(workdir, "directions.npz")}
  directions.save(outputs["directions"])
  if latents is None:
    latents = gen.sample_z(jax.random.key(config.seed), int(config.traversal.num_samples))
  kwargs = {**traversal_kwargs(config, gen, directions), **gen_kwargs}
  outputs["traversal"] = os.path.join(workdir, "images", "traversal.png")
  shown = directions if max_rendered is None else directions.select(range(min(max_rendered,
                                                                              directions.num_directions)))
  viz.traversal_grid(gen, shown, latents, path=outputs["traversal"], **kwargs)
  if comparison:
    grids = [viz.traversal_grid(gen, d, latents, **traversal_kwargs(config, gen, d), **gen_kwargs)
             for _, d in comparison]
    outputs["comparison"] = os.path.join(workdir, "images", "traversal_comparison.png")
    viz.contact_sheet(grids, [name for name, _ in comparison], path=outputs["comparison"])
  return outputs
