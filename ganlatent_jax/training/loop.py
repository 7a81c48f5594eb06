"""The one training loop every method runs: resume, step, check, log, checkpoint.

A method supplies a pure `init_fn(rng) -> state` and a jitted `train_step(state, rng) -> (state, metrics)`; the loop
owns everything around them, so methods differ only in their maths:
  * abstract-first init (`jax.eval_shape`), then the state is either restored from `workdir/checkpoints` (latest
    step) or initialised directly with its shardings;
  * the per-step key is `parallel.step_rng(seed, step)`, a pure function of (seed, step): a resumed run continues
    bit-identically to an uninterrupted one;
  * every scalar metric is checked each step; NaN/Inf raises `NonFiniteError` naming the step and metric before the
    bad state can be saved, so the last good checkpoint stays intact;
  * scalars and images go to TensorBoard files in the workdir, a progress bar shows steps/s and images/s, the first
    step's time (compilation included) is logged.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np
from jax.sharding import Mesh

from ganlatent_jax import checkpoint as checkpoint_lib
from ganlatent_jax import parallel
from ganlatent_jax.training.writer import MetricWriter

State = Any
Metrics = Mapping[str, jax.Array]


class NonFiniteError(FloatingPointError):
  """A loss or metric became NaN or Inf: the run stops, the last good checkpoint is kept."""


def save_config(config, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True) if hasattr(config, "to_json_best_effort")
            else json.dumps(config, indent=2, sort_keys=True))


def _check_finite(step: int, metrics: Mapping[str, Any]) -> None:
  for name, value in metrics.items():
    value = np.asarray(value)
    if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
      raise NonFiniteError(f"step {step}: {name} = {value.tolist()} is not finite; stopping (the last good "
                           f"checkpoint is kept)")


def _progress(total: int, initial: int, enabled: bool):
  if not enabled:
    return None
  from tqdm import tqdm
  return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=2.0)


def init_or_restore(init_fn: Callable[[jax.Array], State], seed: int, mesh: Mesh,
                    checkpointer: checkpoint_lib.Checkpointer | None,
                    shardings: Any = None) -> State:
  """Abstract-first: the state's structure from `jax.eval_shape`, then restored or initialised in place.

  `shardings` (a pytree of shardings matching the state, or None for fully replicated) says where each array lives.
  """
  rng = jax.random.key(seed)
  abstract = jax.eval_shape(init_fn, rng)
  if shardings is None:
    shardings = jax.tree.map(lambda _: parallel.replicated_sharding(mesh), abstract)
  if checkpointer is not None and checkpointer.latest_step() is not None:
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    step = checkpointer.latest_step()
    logging.info("resuming from %s step %d", checkpointer.directory, step)
    return checkpointer.restore(target, step)
  return jax.jit(init_fn, out_shardings=shardings)(rng)


def run(*, config, workdir: str, mesh: Mesh, init_fn: Callable[[jax.Array], State],
        train_step: Callable[[State, jax.Array], tuple[State, Metrics]], images_per_step: int,
        image_fn: Callable[[State], Mapping[str, np.ndarray]] | None = None,
        state_shardings: Any = None, step_of: Callable[[State], Any] = lambda s: s.step) -> State:
  """Trains to `config.steps`, resuming from the workdir. Returns the final state.

  Config keys used: seed, steps, log_every, checkpoint_every, keep_checkpoints, image_every (0 = never).
  """
  os.makedirs(workdir, exist_ok=True)
  save_config(config, workdir)
  is_main = jax.process_index() == 0
  checkpointer = checkpoint_lib.Checkpointer(workdir, save_every=config.checkpoint_every,
                                             keep=config.get("keep_checkpoints", 2))
  writer = MetricWriter(workdir)
  state = init_or_restore(init_fn, config.seed, mesh, checkpointer, state_shardings)
  start = int(jax.device_get(step_of(state)))
  total = int(config.steps)
  bar = _progress(total, start, is_main and config.get("progress_bar", True))
  image_every = int(config.get("image_every", 0) or 0)
  last_log_time, last_log_step = time.perf_counter(), start
  try:
    for step in range(start, total):
      t0 = time.perf_counter()
      state, metrics = train_step(state, parallel.step_rng(config.seed, step))
      metrics = jax.device_get(metrics)
      _check_finite(step + 1, metrics)
      if step == start:
        logging.info("first step (compilation included): %.2f s", time.perf_counter() - t0)
      done = step + 1
      if bar is not None:
        bar.update(1)
      if done % config.log_every == 0 or done == total:
        now = time.perf_counter()
        steps_per_s = (done - last_log_step) / max(now - last_log_time, 1e-9)
        last_log_time, last_log_step = now, done
        scalars = {k: float(np.mean(v)) for k, v in metrics.items() if np.asarray(v).dtype.kind in "fiu"}
        scalars.update({"perf/steps_per_s": steps_per_s, "perf/images_per_s": steps_per_s * images_per_step})
        writer.scalars(done, scalars)
        if bar is not None:
          bar.set_postfix({"img/s": f"{steps_per_s * images_per_step:.1f}",
                           **{k: f"{v:.4g}" for k, v in list(scalars.items())[:3] if math.isfinite(v)}})
      if image_fn is not None and image_every and (done % image_every == 0 or done == total):
        writer.images(done, image_fn(state))
      if checkpointer.should_save(done) or done == total:
        checkpointer.save(done, state)
  finally:
    if bar is not None:
      bar.close()
    writer.close()
    checkpointer.close()
  return state
