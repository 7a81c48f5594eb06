"""genforce PGGAN `.pth` (the SeFa / SRE model zoo) → `generators.pggan` variables.

Containers (as genforce's loaders accept them): the model-zoo file `{'generator', 'discriminator',
'generator_smooth'}`, a training checkpoint `{'models': {...}, ...}`, or a bare generator state dict;
`generator_smooth` is used when present, else `generator` (as `synthesize.py` and SeFa's `load_generator`).
Widths, depth and z_dim are read from the shapes; keys `lod`, `layer{i}.{weight,bias}`, `output{k}.{weight,bias}`
are all mapped and anything missing, extra or mis-shaped is refused by name. Only the default (non-fused,
use_wscale) PGGAN layout exists in the zoo; a fused layer's (in, out, k, k) weight is refused as mis-shaped.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ganlatent_jax.generators import pggan as family
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, check_tree_shapes, conv_oihw_to_hwio
from ganlatent_jax.port.torch_pickle import flatten_state_dict

NAME = "pggan_genforce"


def generator_state(checkpoint: Any) -> dict[str, np.ndarray] | None:
  """The generator state dict (flat) of a genforce checkpoint: generator_smooth, else generator, else the dict."""
  if not isinstance(checkpoint, dict):
    return None
  if isinstance(checkpoint.get("models"), dict):
    checkpoint = checkpoint["models"]
  for key in ("generator_smooth", "generator"):
    if isinstance(checkpoint.get(key), dict):
      return flatten_state_dict(checkpoint[key])
  return flatten_state_dict(checkpoint)


def sniff(path: str, checkpoint: Any) -> bool:
  state = generator_state(checkpoint)
  return state is not None and "layer0.weight" in state and "output0.weight" in state and "lod" in state \
      and not any(k.startswith("synthesis.") for k in state)


def convert_state_dict(state: dict[str, np.ndarray], source: str):
  if "layer0.weight" not in state or np.ndim(state["layer0.weight"]) != 4:
    raise CheckpointKeyError(f"{source}: not a genforce PGGAN generator (no 4-D 'layer0.weight')")
  num_outputs = len([k for k in state if re.fullmatch(r"output\d+\.weight", k)])
  resolution = 4 * 2 ** (num_outputs - 1)
  z_dim = int(state["layer0.weight"].shape[1])
  widths = {}
  for k in range(num_outputs):
    weight = state.get(f"layer{2 * k + 1}.weight")
    widths[4 * 2 ** k] = int(np.shape(weight)[0]) if weight is not None else 1
  image_channels = int(np.shape(state[f"output{num_outputs - 1}.weight"])[0])
  config = family.make_config(resolution=resolution, z_dim=z_dim, image_channels=image_channels, channels=widths)
  reader = StateDictReader(state, source)
  lod = reader.take("lod", ())
  if lod.shape == () and float(lod) != 0:
    raise CheckpointKeyError(f"{source}: lod = {float(lod)} (a checkpoint mid-progressive-training); only lod 0 "
                             f"models are converted (pass lod= at call time to view coarser heads)")

  def block(prefix, in_ch, out_ch, k, gain):
    weight = reader.take(f"{prefix}.weight", (out_ch, in_ch, k, k))
    if weight.shape != (out_ch, in_ch, k, k):
      weight = np.zeros((out_ch, in_ch, k, k), np.float32)
    bias = reader.take(f"{prefix}.bias", (out_ch,))
    return {"conv": {"kernel": conv_oihw_to_hwio(weight)},
            "scale": np.array([gain / math.sqrt(in_ch * k * k)], np.float32),
            "b": bias if bias.shape == (out_ch,) else np.zeros((out_ch,), np.float32)}

  params: dict[str, Any] = {}
  in_ch = z_dim
  for k, (_, width) in enumerate(config["channels"]):
    params[f"layers_{2 * k}"] = block(f"layer{2 * k}", in_ch, width, 4 if k == 0 else 3, math.sqrt(2))
    params[f"layers_{2 * k + 1}"] = block(f"layer{2 * k + 1}", width, width, 3, math.sqrt(2))
    params[f"outputs_{k}"] = block(f"output{k}", width, image_channels, 1, 1.0)
    in_ch = width
  reader.finish()
  variables = {"params": params}
  check_tree_shapes(family.abstract_variables(config), variables, source)
  return config, variables


def convert(path: str, checkpoint: Any):
  state = generator_state(checkpoint)
  if state is None:
    raise CheckpointKeyError(f"{path}: not a genforce checkpoint (expected a dict)")
  return convert_state_dict(state, str(path))
