"""What every method's `train(config, workdir)` shares: loading its generator, parsing layer ranges, writing outputs."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax import generators, viz
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.directions import spaces


def load_generator(config) -> generators.Generator:
  path = config.get("generator", "")
  if not path:
    raise ValueError("config.generator is empty: give a checkpoint path, a converted directory or 'testbed:NAME'")
  return generators.load(path, format=config.get("generator_format") or None)


@dataclasses.dataclass(frozen=True)
class Conditioning:
  """How a method calls a class-conditional generator (BigGAN): classes drawn from `target_classes` (pictures show
  the first), and the generator's own truncation: z = truncnorm(−2, 2)·t with BigGAN-deep's batch-norm statistics
  for t (the package convention, pytorch-pretrained-biggan's)."""
  target_classes: tuple[int, ...]
  truncation: float

  def sample_classes(self, rng: jax.Array, num: int) -> jax.Array:
    choice = jax.random.randint(rng, (num,), 0, len(self.target_classes))
    return jnp.asarray(self.target_classes, jnp.int32)[choice]

  def sample_z(self, gen: generators.Generator, rng: jax.Array, num: int) -> jax.Array:
    from ganlatent_jax.generators.biggan import truncated_noise
    return truncated_noise(rng, num, self.truncation, gen.latent_dim)

  def gen_kwargs(self, classes) -> dict[str, Any]:
    return dict(class_vector=classes, truncation=self.truncation)

  def picture_kwargs(self) -> dict[str, Any]:
    """One fixed class (the first) keeps a picture's rows comparable."""
    return self.gen_kwargs(jnp.full((1,), self.target_classes[0], jnp.int32))


def conditioning(gen: generators.Generator, classes: Sequence[int], truncation: float, classes_key: str,
                 truncation_key: str) -> Conditioning | None:
  """Validated class conditioning for `gen` (None for unconditional generators); errors name the config keys."""
  classes = tuple(int(c) for c in classes)
  if not gen.info.num_classes:
    if classes:
      raise ValueError(f"{classes_key}={classes} but the {gen.info.family} generator is not class-conditional")
    return None
  if not classes:
    raise ValueError(f"a class-conditional {gen.info.family} generator needs {classes_key} (ImageNet class ids)")
  outside = [c for c in classes if not 0 <= c < gen.info.num_classes]
  if outside:
    raise ValueError(f"{classes_key} has {outside} outside 0..{gen.info.num_classes - 1}")
  if not 0.0 < truncation <= 1.0:
    raise ValueError(f"{truncation_key}={truncation}: a {gen.info.family} generator's truncation is in (0, 1]")
  return Conditioning(classes, float(truncation))


def sample_prior(cond: Conditioning | None, gen: generators.Generator, rng: jax.Array, num: int) -> jax.Array:
  """z from the generator's prior, or from a class-conditional generator's truncated noise."""
  return gen.sample_z(rng, num) if cond is None else cond.sample_z(gen, rng, num)


def conditioning_record(cond: Conditioning | None) -> dict[str, Any]:
  """What results.json and directions' meta record of a conditioning (nothing for unconditional generators)."""
  return {} if cond is None else {"target_classes": list(cond.target_classes), "truncation": cond.truncation}


def config_conditioning(config, gen: generators.Generator) -> Conditioning | None:
  """The conditioning of a config's `conditional` section (classes, truncation), as the closed-form methods have."""
  section = config.get("conditional", None) or {}
  return conditioning(gen, section.get("classes", ()) or (), float(section.get("truncation", 1.0)),
                      "config.conditional.classes", "config.conditional.truncation")


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
                     max_rendered: int | None = None, cond: Conditioning | None = None) -> dict[str, str]:
  """directions.npz (all directions), images/traversal.png of the first `max_rendered` (all when None), and a
  side-by-side sheet when `comparison` is given. Pictures start from config.traversal.num_samples draws of the prior
  (of `cond`'s truncated noise, in its first class, for a class-conditional generator)."""
  if gen.info.num_classes and cond is None:
    raise ValueError(f"pictures of a class-conditional {gen.info.family} generator need its class conditioning")
  os.makedirs(os.path.join(workdir, "images"), exist_ok=True)
  outputs = {"directions": os.path.join(workdir, "directions.npz")}
  directions.save(outputs["directions"])
  latents = sample_prior(cond, gen, jax.random.key(config.seed), int(config.traversal.num_samples))
  gen_kwargs = {} if cond is None else cond.picture_kwargs()
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
