"""One module per method, each with the same shape: a config schema, `init(...)`, a pure jitted
`train_step(state, rng) -> (state, metrics)`, `train(config, workdir)` and `evaluate(...)`."""
from __future__ import annotations

import importlib
import pkgutil


def _candidates() -> list[str]:
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def available() -> list[str]:
  """Method names: the modules of this package that define `train(config, workdir)`."""
  return [name for name in _candidates() if hasattr(importlib.import_module(f"{__name__}.{name}"), "train")]


def get(name: str | None):
  """The method module named by `config.method`."""
  if name and name in _candidates():
    module = importlib.import_module(f"{__name__}.{name}")
    if hasattr(module, "train"):
      return module
  raise ValueError(f"config.method={name!r} is not a method of ganlatent_jax; available: {available()}")
