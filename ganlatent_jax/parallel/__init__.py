"""Devices: one mesh per run, batch sharding over a 'data' axis, replicated parameters, per-step RNG.

Everything runs through `jax.jit` with `NamedSharding`s (no pmap). A jitted step written for one device runs
unchanged on a mesh: inputs placed with `shard_batch`/`replicate` carry their shardings into the computation, and
XLA inserts the cross-device reductions (e.g. the mean of a loss over the global batch).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
# At exit every process waits in jax.distributed's shutdown barrier while process 0 alone writes the run's report and
# summary (report.html reads the event files and images of the workdir, possibly on gs://). jax's default of 30 s
# aborted process 0 of a two-process run on a loaded machine (slow set, 2026-12-03); a crashed process is still
# found by the heartbeat (100 s), not by this timeout.
SHUTDOWN_TIMEOUT_SECONDS = 900


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """`jax.distributed.initialize` for a multi-process run, before any other jax call. None arguments are found by
  jax from the cluster (TPU VM metadata, SLURM variables). On a CPU-only backend (JAX_PLATFORMS=cpu, as
  launch/local.py sets) cross-process collectives need an implementation: gloo."""
  if os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id, shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_SECONDS)


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D mesh over the first `num_devices` devices (all of them by default), axis 'data'."""
  devices = jax.devices()
  if num_devices is not None and num_devices > 0:
    if num_devices > len(devices):
      raise ValueError(f"config asks for {num_devices} devices but only {len(devices)} are available")
    devices = devices[:num_devices]
  return Mesh(np.array(devices), (DATA_AXIS,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data'; other axes whole."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh, name: str = "batch_size") -> None:
  """A clear error when the global batch cannot be split evenly over the devices."""
  devices = mesh.devices.size
  if batch_size % devices:
    raise ValueError(f"config.{name}={batch_size} is not divisible by the {devices} devices of the mesh; "
                     f"use a multiple of {devices} (or set config.num_devices)")


def shard_batch(tree: Any, mesh: Mesh) -> Any:
  """Places host arrays (the global batch on every process) split over the 'data' axis."""
  sharding = data_sharding(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def place(x):
    x = np.asarray(x)
    per_process = x.shape[0] // jax.process_count()
    local = x[jax.process_index() * per_process:(jax.process_index() + 1) * per_process]
    return jax.make_array_from_process_local_data(sharding, local, x.shape)

  return jax.tree.map(place, tree)


def process_rows(global_batch: int) -> slice:
  """The rows of a global batch this process holds (its devices' shards: processes own consecutive blocks of the
  'data' axis, devices ordered by process as `make_mesh` lays them out)."""
  per_process = global_batch // jax.process_count()
  start = jax.process_index() * per_process
  return slice(start, start + per_process)


def shard_local_batch(local: np.ndarray, global_batch: int, mesh: Mesh) -> jax.Array:
  """The global batch, split over 'data', from this process's rows only (`process_rows`): host data is read and
  rendered only by the process whose devices hold it."""
  sharding = data_sharding(mesh)
  if jax.process_count() == 1:
    return jax.device_put(local, sharding)
  return jax.make_array_from_process_local_data(sharding, np.asarray(local), (global_batch, *local.shape[1:]))


def replicate(tree: Any, mesh: Mesh) -> Any:
  return jax.device_put(tree, replicated_sharding(mesh))


def process_0_value(value: np.ndarray) -> np.ndarray:
  """Process 0's host value in every process (a decision read from files must be the same everywhere, or the
  processes would run different computations and wait for each other forever); the value itself when alone."""
  if jax.process_count() == 1:
    return np.asarray(value)
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(value)))


def step_rng(seed: int, step: int | jax.Array) -> jax.Array:
  """The PRNG key of a step: a pure function of (seed, step), so a resumed run draws what the original would."""
  return jax.random.fold_in(jax.random.key(seed), step)


def step_numpy_rng(seed: int, step: int) -> np.random.RandomState:
  """Host-side randomness of a step (data sampling), also a pure function of (seed, step)."""
  return np.random.RandomState(np.random.SeedSequence([seed, step]).generate_state(1)[0])
