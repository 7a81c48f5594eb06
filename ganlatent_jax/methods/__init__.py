"""One module per method, each with the same shape: a config schema, `init(...)`, a pure jitted
`train_step(state, rng) -> (state, metrics)`, `train(config, workdir)` and `evaluate(...)`."""
from __future__ import annotations

import importlib
import pkgutil


def available() -> list[str]:
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str | None):
  """The method module named by `config.method`."""
  if not name or name not in available():
    raise ValueError(f"config.method={name!r} is not a method of ganlatent_jax; available: {available()}")
  return importlib.import_module(f"{__name__}.{name}")
