"""Training-state checkpoints: orbax `CheckpointManager` under `workdir/checkpoints`, resumed automatically.

A training state is any pytree of arrays (a `flax.struct.dataclass` of params, optimizer states, step). It is restored
against its abstract twin (shapes, dtypes and shardings from `jax.eval_shape` + the run's shardings), so optax states
keep their types and arrays land on the devices the run uses. The loop decides when to save; this module only saves.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def abstract_like(state: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a concrete state: what `restore` needs."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


class Checkpointer:
  """Saves every `save_every` steps, keeps the last `keep`, restores the latest one."""

  def __init__(self, workdir: str | os.PathLike, save_every: int, keep: int = 2):
    self.directory = os.path.join(os.path.abspath(os.fspath(workdir)), "checkpoints")
    self.save_every = save_every
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """The state at `step` (latest by default); None when the workdir has no checkpoint yet."""
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))

  def should_save(self, step: int) -> bool:
    return self.save_every > 0 and step % self.save_every == 0

  def save(self, step: int, state: Any) -> None:
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
