"""A generator family's module built to be TRAINED from a run config's `architecture` section (the GAN engine's
generator): the family config (as saved to generator.json), the linen module and its static info, and the calls the
engine makes (forward, W+ styles, synthesis) with StyleGAN2's per-sample training noise where asked. Builds only;
the training is `methods/_gan.py`'s.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping

import jax
import numpy as np

from ganlatent_jax.generators.load import family_module


@dataclasses.dataclass(frozen=True)
class GeneratorSpec:
  """A family's linen module trained from scratch: config (as saved to generator.json), module, static info."""
  config: dict
  module: Any
  info: Any
  random_noise: bool = False   # StyleGAN2: fresh per-sample noise while training (upstream's randomize_noise)

  @property
  def has_w(self) -> bool:
    return "w" in self.info.latent_spaces

  def _noise_kwargs(self, rng):
    return {"noise_rng": rng} if self.random_noise else {}

  def apply(self, params, buffers, z, rng, **kwargs):
    return self.module.apply({"params": params, **buffers}, z, **self._noise_kwargs(rng), **kwargs)

  def styles(self, params, buffers, z, **kwargs):
    """The W+ latent (B, num_ws, w_dim) of z (with `mix_latent`/`inject_index` for style mixing)."""
    return self.module.apply({"params": params, **buffers}, z, method="styles", **kwargs)

  def synthesis(self, params, buffers, latent, rng):
    return self.module.apply({"params": params, **buffers}, latent, method="synthesis", **self._noise_kwargs(rng))


# Keys of `config.architecture` that configure training, not the family's make_config.
_TRAINING_KEYS = ("family", "random_noise", "learning_rate", "beta1", "beta2")


def generator_config(architecture: Mapping[str, Any]) -> dict:
  """The family config dict from the run config's `architecture` section (family + the family's make_config args)."""
  arch = {k: v for k, v in dict(architecture).items() if k not in _TRAINING_KEYS}
  family = architecture["family"]
  module = family_module(family)
  if family == "stylegan2":
    widths = tuple(int(w) for w in arch.pop("channels"))
    size = int(arch["size"])
    resolutions = [2 ** i for i in range(2, int(np.log2(size)) + 1)]
    if len(widths) != len(resolutions):
      raise ValueError(f"config.architecture.channels must give one width per resolution {resolutions}, got {widths}")
    arch["channels"] = dict(zip(resolutions, widths))
  if not hasattr(module, "make_config"):
    raise ValueError(f"generator family {family!r} has no make_config(); cannot train it from a run config")
  params = inspect.signature(module.make_config).parameters
  takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
  unknown = [] if takes_any else sorted(set(arch) - set(params))
  if unknown:
    raise ValueError(f"config.architecture has key(s) {unknown} that {family}.make_config does not take "
                     f"(it takes {sorted(params)})")
  return module.make_config(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in arch.items()})


def make_generator_spec(architecture: Mapping[str, Any]) -> GeneratorSpec:
  config = generator_config(architecture)
  family = family_module(config["family"])
  variables = jax.eval_shape(lambda: family.init_variables(config, jax.random.key(0)))
  built = family.build(config, jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), variables), "training")
  return GeneratorSpec(config=config, module=built.module, info=built.info,
                       random_noise=bool(architecture.get("random_noise", False)) and trains_with_noise_rng(family))


def trains_with_noise_rng(family) -> bool:
  """Whether a family's module takes `noise_rng=` (fresh per-sample noise while training): StyleGAN2, and any family
  module that declares `TRAINS_WITH_NOISE_RNG = True` (PS-SC's `Noise` modules)."""
  return getattr(family, "FAMILY", None) == "stylegan2" or bool(getattr(family, "TRAINS_WITH_NOISE_RNG", False))
