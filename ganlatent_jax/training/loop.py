"""The one training loop every method runs: resume, step, check, log, checkpoint.

A method supplies a pure `init_fn(rng) -> state` and a jitted `train_step(state, rng) -> (state, metrics)`; the loop
owns everything around them, so methods differ only in their maths:
  * abstract-first init (`jax.eval_shape`), then the state is either restored from `workdir/checkpoints` (latest
    step) or initialised directly with its shardings;
  * a resume is refused when the config differs from the run's config.json outside the loop's own keys
    (`run_config`): the checkpoint would be read into another model;
  * the per-step key is `parallel.step_rng(seed, step)`, a pure function of (seed, step): a resumed run continues
    bit-identically to an uninterrupted one;
  * every metric of every step is checked ON THE DEVICE (the first non-finite step and its metrics are kept there);
    metrics reach the host only at log, image and checkpoint steps, where a NaN/Inf raises `NonFiniteError` naming
    the step and metric before the bad state can be saved or shown, so the last good checkpoint stays intact;
  * scalars and images go to TensorBoard files in the workdir, a progress bar shows steps/s and images/s, the first
    step's time (compilation included) is logged.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from ganlatent_jax import checkpoint as checkpoint_lib
from ganlatent_jax import console, io, parallel
from ganlatent_jax.training import run_config
from ganlatent_jax.training.writer import MetricWriter

State = Any
Metrics = Mapping[str, jax.Array]


class NonFiniteError(FloatingPointError):
  """A loss or metric became NaN or Inf: the run stops, the last good checkpoint is kept."""


def save_config(config, workdir: str) -> None:
  """workdir/config.json: the record `run_config.check_matches_run` compares a resume's config with."""
  io.write_json(os.path.join(workdir, "config.json"), run_config.as_json(config), sort_keys=True)


@jax.jit
def _track_non_finite(tracker, step, metrics):
  """(first non-finite step or −1, that step's metrics): updated on the device, without a host round trip."""
  first_step, first_metrics = tracker
  floats = [v for v in jax.tree.leaves(metrics) if jnp.issubdtype(v.dtype, jnp.inexact)]
  finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in floats])) if floats else jnp.bool_(True)
  take = (first_step < 0) & ~finite
  return (jnp.where(take, step, first_step),
          jax.tree.map(lambda old, new: jnp.where(take, new, old), first_metrics, metrics))


def _new_tracker(metrics):
  return jnp.int32(-1), jax.tree.map(jnp.zeros_like, metrics)


def _check_finite(tracker) -> None:
  first_step, metrics = jax.device_get(tracker)
  if first_step < 0:
    return
  for name, value in metrics.items():
    value = np.asarray(value)
    if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
      raise NonFiniteError(f"step {int(first_step)}: {name} = {value.tolist()} is not finite; stopping (the last "
                           f"good checkpoint is kept)")


def _progress(total: int, initial: int, enabled: bool):
  if not enabled:
    return None
  return console.progress(total=total, initial=initial, desc="training", unit="step")


def _refresh_report(writer: MetricWriter, workdir: str) -> None:
  """report.html shows the run so far at each checkpoint; a report that fails to render never stops training."""
  writer.flush()
  try:
    from ganlatent_jax.viz import report
    report.write_report(workdir)
  except Exception as e:  # noqa: BLE001 — any rendering problem is reported, the run goes on
    logging.warning("report.html not refreshed at this checkpoint: %s: %s", type(e).__name__, e)


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


def restore_latest(init_fn: Callable[[jax.Array], State], config, mesh: Mesh, workdir: str,
                   what: str = "checkpoint", shardings: Any = None) -> State:
  """The state of the latest checkpoint in `workdir` (a finished or interrupted run), for a method's `evaluate`;
  FileNotFoundError naming the workdir when it holds none, ValueError when `config` is not the one the run was
  trained with (`run_config.check_matches_run`; its evaluation and loop keys may differ)."""
  checkpointer = checkpoint_lib.Checkpointer(workdir, save_every=0)
  try:
    if checkpointer.latest_step() is None:
      raise FileNotFoundError(f"{workdir}: no {what} to restore; run `python -m ganlatent_jax.main` with this "
                              f"config and workdir first")
    run_config.check_matches_run(config, workdir)
    return init_or_restore(init_fn, int(config.seed), mesh, checkpointer, shardings)
  finally:
    checkpointer.close()


class HostBatchStep:
  """The loop's `train_step(state, rng)` for a jitted `step(state, batch, rng)` whose real batch is drawn on the host
  (`batch_fn(step)`, e.g. the GAN engine's and the beta-VAE's images). The step number is read from the device once
  (at the first call, after a restore) and counted on the host after, so dispatch never waits for the previous step.
  `compile_ahead` lets a multi-process run compile the jitted step before its processes meet (`compile_then_meet`):
  compiling at the first call instead let one process reach the first collective over gloo's 30 s after another
  (slow set, 2026-12-03: a two-process GAN run on a loaded machine)."""

  def __init__(self, jitted_step: Callable, batch_fn: Callable[[int], Any]):
    self.jitted_step, self.batch_fn = jitted_step, batch_fn
    self._host_step: int | None = None

  def __call__(self, state: State, rng: jax.Array):
    if self._host_step is None:
      self._host_step = int(jax.device_get(state.step))
    batch = self.batch_fn(self._host_step)
    self._host_step += 1
    return self.jitted_step(state, batch, rng)

  def compile_ahead(self, state: State, rng: jax.Array) -> None:
    self.jitted_step.lower(state, self.batch_fn(int(jax.device_get(state.step))), rng).compile()


FIRST_STEP_BARRIER_TIMEOUT_MS = 60 * 60 * 1000   # an hour: a large model's compilation on a slow host


def compile_then_meet(train_step: Callable, *args) -> None:
  """Multi-process runs only: compile the step in every process (ahead of time, when it is a jitted function or a
  partial of one; the later calls reuse the executable), then meet at a coordination-service barrier before its first
  execution. Gloo builds its communicator at the first collective with a fixed ~30 s rendezvous timeout, and the
  processes' compile times can differ by more than that on a loaded machine (2026-12-02: a 2-process SRE run beside
  another test worker failed with 'Gloo context initialization failed: DEADLINE_EXCEEDED'; the barrier's timeout is
  ours)."""
  if jax.process_count() == 1:
    return
  fn, lead, keywords = train_step, (), {}
  if isinstance(train_step, functools.partial):
    fn, lead, keywords = train_step.func, train_step.args, train_step.keywords
  if isinstance(fn, HostBatchStep):
    fn.compile_ahead(*args)
  elif hasattr(fn, "lower"):
    fn.lower(*lead, *args, **keywords).compile()
  from jax._src import distributed   # the coordination service's barrier (no collective, so no gloo timeout)
  client = distributed.global_state.client
  if client is not None:
    client.wait_at_barrier("ganlatent_jax: first training step", FIRST_STEP_BARRIER_TIMEOUT_MS)


def run(*, config, workdir: str, mesh: Mesh, init_fn: Callable[[jax.Array], State],
        train_step: Callable[[State, jax.Array], tuple[State, Metrics]], images_per_step: int,
        image_fn: Callable[[State], Mapping[str, np.ndarray]] | None = None,
        state_shardings: Any = None, step_of: Callable[[State], Any] = lambda s: s.step,
        log_fn: Callable[[State], Mapping[str, float]] | None = None) -> State:
  """Trains to `config.steps`, resuming from the workdir. Returns the final state.

  `log_fn(state)`: host-side scalars logged beside the step's metrics at every log step — what the jitted step
  cannot know, e.g. how far the current directions are from an oracle's true ones.

  Config keys used: seed, steps, log_every, checkpoint_every, keep_checkpoints, image_every (0 = never).
  """
  io.makedirs(workdir)
  checkpointer = checkpoint_lib.Checkpointer(workdir, save_every=config.checkpoint_every,
                                             keep=config.get("keep_checkpoints", 2))
  if checkpointer.latest_step() is not None:   # a resume: into the model the checkpoint was trained as, or refused
    try:
      run_config.check_matches_run(config, workdir)
    except ValueError:
      checkpointer.close()
      raise
  save_config(config, workdir)
  is_main = jax.process_index() == 0
  writer = MetricWriter(workdir)
  state = init_or_restore(init_fn, config.seed, mesh, checkpointer, state_shardings)
  start = int(jax.device_get(step_of(state)))
  total = int(config.steps)
  bar = _progress(total, start, is_main and config.get("progress_bar", True))
  image_every = int(config.get("image_every", 0) or 0)
  last_log_time, last_log_step = time.perf_counter(), start
  tracker = None
  if start < total:
    compile_then_meet(train_step, state, parallel.step_rng(config.seed, start))
  end_phase = console.start_phase("training")
  try:
    for step in range(start, total):
      t0 = time.perf_counter()
      state, metrics = train_step(state, parallel.step_rng(config.seed, step))
      done = step + 1
      previous, tracker = tracker, _track_non_finite(_new_tracker(metrics) if tracker is None else tracker, done,
                                                     metrics)
      if previous is not None:   # at most one step in flight (no transfer: queued sharded steps on simulated CPU
        jax.block_until_ready(previous)   # devices can starve a collective's threads), the next one is dispatched
      if step == start:
        jax.block_until_ready(metrics)
        logging.info("first step (compilation included): %.2f s", time.perf_counter() - t0)
      if bar is not None:
        bar.update(1)
      log_now = done % config.log_every == 0 or done == total
      image_now = image_fn is not None and image_every and (done % image_every == 0 or done == total)
      save_now = checkpointer.should_save(done) or done == total
      if log_now or image_now or save_now:
        _check_finite(tracker)   # the one host round trip: never log, show or save a non-finite state
      if log_now:
        metrics = jax.device_get(metrics)
        now = time.perf_counter()
        steps_per_s = (done - last_log_step) / max(now - last_log_time, 1e-9)
        last_log_time, last_log_step = now, done
        scalars = {k: float(np.mean(v)) for k, v in metrics.items() if np.asarray(v).dtype.kind in "fiu"}
        scalars.update({"perf/steps_per_s": steps_per_s, "perf/images_per_s": steps_per_s * images_per_step})
        if log_fn is not None:
          scalars.update({k: float(v) for k, v in log_fn(state).items()})
        writer.scalars(done, scalars)
        if bar is not None:
          bar.set_postfix({"img/s": f"{steps_per_s * images_per_step:.1f}",
                           **{k: f"{v:.4g}" for k, v in list(scalars.items())[:3] if math.isfinite(v)}})
      if image_now:
        writer.images(done, image_fn(state))
      if save_now:
        checkpointer.save(done, state)
        if is_main:
          _refresh_report(writer, workdir)
  finally:
    end_phase()
    if bar is not None:
      bar.close()
    writer.close()
    checkpointer.close()
  return state
