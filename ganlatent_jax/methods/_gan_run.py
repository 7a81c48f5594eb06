"""The GAN engine's pictures, export and entry points, shared by the GAN-training methods (`methods.gan`, `infogan`,
`pssc`, `udgan`): sample sheets of the EMA generator, its export as a converted generator dir, and `train_method`, the
one `train` sequence (train resuming, export, the method's pictures, its metrics) every GAN method runs."""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np

from ganlatent_jax import io, parallel, viz
from ganlatent_jax.generators.load import family_module, save_converted, with_latent_prior
from ganlatent_jax.methods._gan import EXPORT_DIR, SAMPLES_STREAM, Engine, State, make_engine
from ganlatent_jax.methods._gan_data import dataset_from_config
from ganlatent_jax.training import loop


# ---------------------------------------------------------------------------------------------------------------
# Pictures and export.

_APPLY = jax.jit(lambda module, variables, z: module.apply(variables, z), static_argnums=0)


def sample_images(engine: Engine, state: State, num: int, seed: int | None = None) -> np.ndarray:
  """`num` samples of the EMA generator (its stored noise buffers) as display images in [0, 1], NHWC; latents from
  key(seed), by default the run's 'samples' stream (the same pictures at every log step)."""
  seed = int(engine.config.seed) + SAMPLES_STREAM if seed is None else seed
  latents = engine.terms.sample_latents(jax.random.key(seed), num)
  images = _APPLY(engine.gen.module, {"params": state.generator_ema, **state.generator_buffers},
                  engine.terms.generator_input(latents))
  return np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)


def sample_grid(engine: Engine, state: State, num: int, path: str | None = None) -> np.ndarray:
  """`num` EMA samples as one uint8 picture, 8 per row (saved as PNG when `path` is given)."""
  return viz.images_to_grid(viz.to_display(sample_images(engine, state, num), (0.0, 1.0)), path=path)


def _ema_variables(state: State):
  return {"params": jax.device_get(state.generator_ema), **jax.device_get(state.generator_buffers)}


def export_generator(engine: Engine, state: State, directory: str, source: str = "") -> None:
  """Writes the EMA generator as a converted generator dir (`generators.load(directory)` works)."""
  save_converted(directory, engine.gen.config, _ema_variables(state), source=source,
                 latent_prior=engine.terms.latent_prior())


def ema_generator(engine: Engine, state: State, source: str = ""):
  """The EMA generator as a `generators.Generator` in memory (what `export_generator` writes, loaded back)."""
  gen = family_module(engine.gen.config["family"]).build(engine.gen.config, _ema_variables(state), source)
  return with_latent_prior(gen, engine.terms.latent_prior())


# ---------------------------------------------------------------------------------------------------------------
# Entry points.

def setup(config: ml_collections.ConfigDict, terms_factory=None) -> tuple[Any, Engine]:
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  dataset = dataset_from_config(config)
  engine = make_engine(config, mesh, terms_factory, dataset)
  if tuple(dataset.observation_shape) != tuple(engine.gen.info.image_shape):
    raise ValueError(f"dataset {config.data.name} has images {tuple(dataset.observation_shape)} but the generator "
                     f"makes {tuple(engine.gen.info.image_shape)}")
  return mesh, engine


def run_training(config, workdir: str, engine: Engine, mesh,
                 log_fn: Callable[[State], Mapping[str, float]] | None = None) -> State:
  """Trains (resuming) to config.steps; `log_fn` as `training.loop.run`'s (a method's host-side scalars)."""
  start = time.time()
  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=engine.init_fn, train_step=engine.loop_step,
                   images_per_step=config.batch_size,
                   image_fn=lambda s: {"samples": sample_grid(engine, s, 32)}, log_fn=log_fn)
  _record_time(workdir, time.time() - start, int(jax.device_get(state.step)))
  return state


def restore(config, workdir: str, terms_factory=None) -> tuple[Engine, State]:
  """(engine, state) of the latest checkpoint of a run in `workdir` (trained with `config`)."""
  mesh, engine = setup(config, terms_factory)
  return engine, loop.restore_latest(engine.init_fn, config, mesh, workdir)


def _record_time(workdir: str, seconds: float, step: int) -> None:
  """Accumulates wall time over resumed runs in workdir/training_time.json (for model cards)."""
  path = os.path.join(workdir, "training_time.json")
  record = {"seconds": 0.0, "sessions": 0}
  if io.exists(path):
    record = json.loads(io.read_text(path))
  io.write_json(path, {"seconds": record["seconds"] + seconds, "sessions": record["sessions"] + 1, "step": step})


def write_outputs(engine: Engine, state: State, workdir: str, method: str) -> dict[str, str]:
  """The EMA generator (a converted generator dir) and 64 of its samples."""
  outputs = {"generator": os.path.join(workdir, EXPORT_DIR), "samples": os.path.join(workdir, "samples.png")}
  export_generator(engine, state, outputs["generator"], source=f"ganlatent_jax {method} {workdir}")
  sample_grid(engine, state, 64, path=outputs["samples"])
  logging.info("exported the EMA generator to %s", outputs["generator"])
  return outputs


def train_method(config: ml_collections.ConfigDict, workdir: str, method: str, terms_factory,
                 pictures: Callable[[Engine, State, str], Mapping[str, str]] | None = None,
                 write_metrics: Callable[[Any, str, Engine, State], Any] | None = None,
                 log_fn: Callable[[Engine], Callable[[State], Mapping[str, float]]] | None = None) -> dict[str, str]:
  """A GAN method's `train`: trains (resuming) to config.steps, exports the EMA generator and its samples, adds the
  method's `pictures(engine, state, workdir)` → {name: path} and, with config.evaluation.enabled,
  `write_metrics(config, workdir, engine, state)` (→ workdir/metrics.json); `log_fn(engine)` gives the loop's
  host-side scalars. Returns every output's path."""
  mesh, engine = setup(config, terms_factory)
  state = run_training(config, workdir, engine, mesh, log_fn=log_fn(engine) if log_fn else None)
  outputs = write_outputs(engine, state, workdir, method)
  if pictures is not None:
    outputs.update(pictures(engine, state, workdir))
  if config.evaluation.enabled and write_metrics is not None:
    write_metrics(config, workdir, engine, state)
    outputs["metrics"] = os.path.join(workdir, "metrics.json")
  return outputs
