"""The methods, one module each, all with the same contract (docs/architecture.md, "The method contract"):

  train(config, workdir) -> dict      the files it wrote (name -> path)
  evaluate(config, workdir) -> dict   metrics of a finished run in `workdir`, also written to workdir/metrics.json
  make(config, ...) -> (init_fn, train_step)   training methods only: `init_fn(rng) -> State`, and
      `train_step(state, rng) -> (state, metrics)` a pure function jitted once, the state donated
  State                               training methods only: one flax.struct.dataclass (step, params, opt_state,
                                      batch_stats)

`REGISTRY` maps `config.method` to its module; `python -m ganlatent_jax.main` and `python -m ganlatent_jax.evaluate`
dispatch through it. A new method is a module here plus one line in REGISTRY (tests/test_methods.py checks the
contract of every entry).
"""
from __future__ import annotations

from types import ModuleType

from ganlatent_jax.methods import betavae, gan, ganspace, infogan, latentclr, ld, plumerault, pssc, sefa, sre, udgan

REGISTRY: dict[str, ModuleType] = {
    "sre": sre,
    "sefa": sefa,
    "ganspace": ganspace,
    "ld": ld,
    "latentclr": latentclr,
    "gan": gan,
    "infogan": infogan,
    "plumerault": plumerault,
    "pssc": pssc,
    "udgan": udgan,
    "betavae": betavae,
}


def get(name: str | None) -> ModuleType:
  """The method module named by `config.method`."""
  if name not in REGISTRY:
    raise ValueError(f"config.method={name!r} is not a method of ganlatent_jax; available: {sorted(REGISTRY)}")
  return REGISTRY[name]
