"""NVlabs stylegan3 network pickles (T and R configs) → `generators.stylegan3` variables.

Read by `port.nvlabs_pickle` (nothing executed); G_ema is used. Each synthesis layer's geometry (up/down factors,
padding, conv kernel, ToRGB flag, clamp) comes from its pickled attributes and its FIR filters from its buffers
(into the config: they are constants of the architecture, and must be concrete for the separable filtering); the
input's size, sampling rate and bandwidth likewise. Every tensor key is mapped; missing/extra/mis-shaped keys are
refused by name. R configs' radial down filters (2-D) are kept 2-D.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ganlatent_jax.generators import stylegan3 as family
from ganlatent_jax.generators.formats.stylegan2_ada_nvlabs import network
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, check_tree_shapes, conv_oihw_to_hwio
from ganlatent_jax.port.keys import linear_to_dense
from ganlatent_jax.port.nvlabs_pickle import PersistentObject, state_dict, submodule

NAME = "stylegan3_nvlabs"


def sniff(path: str, checkpoint: Any) -> bool:
  g = network(checkpoint)
  if g is None:
    return False
  synthesis = (g.state.get("_modules") or {}).get("synthesis")
  return isinstance(synthesis, PersistentObject) and "input" in (synthesis.state.get("_modules") or {}) \
      and "layer_names" in synthesis.state


def _scalar(value):
  return value.item() if isinstance(value, (np.generic, np.ndarray)) and np.size(value) == 1 else value


def convert_network(g: PersistentObject, source: str):
  state = state_dict(g)
  reader = StateDictReader(state, source)

  def take(key, shape):
    value = reader.take(key, shape)
    return value if value.shape == tuple(shape) else np.zeros(shape, np.float32)

  def linear(prefix, in_dim, out_dim):
    return {"kernel": linear_to_dense(take(f"{prefix}.weight", (out_dim, in_dim))),
            "bias": take(f"{prefix}.bias", (out_dim,))}

  mapping = submodule(g, "mapping").state
  synthesis = submodule(g, "synthesis").state
  z_dim, w_dim, c_dim = int(_scalar(mapping["z_dim"])), int(_scalar(mapping["w_dim"])), int(_scalar(mapping["c_dim"]))
  num_fc = len([k for k in state if re.fullmatch(r"mapping\.fc\d+\.weight", k)])
  lr = float(_scalar(submodule(g, "mapping.fc0").state.get("bias_gain", 0.01)))
  mapping_params: dict[str, Any] = {}
  in_dim = z_dim
  if c_dim:
    mapping_params["embed"] = linear("mapping.embed", c_dim, w_dim)
    in_dim += w_dim
  for i in range(num_fc):
    mapping_params[f"fc{i}"] = linear(f"mapping.fc{i}", in_dim, w_dim)
    in_dim = w_dim
  inp = submodule(g, "synthesis.input").state
  channels = int(_scalar(inp["channels"]))
  size = np.broadcast_to(np.asarray(inp["size"]), (2,))
  if size[0] != size[1]:
    raise CheckpointKeyError(f"{source}: non-square synthesis input {list(size)} is not supported")
  input_config = {"channels": channels, "size": int(size[0]), "sampling_rate": float(_scalar(inp["sampling_rate"])),
                  "bandwidth": float(_scalar(inp["bandwidth"]))}
  params: dict[str, Any] = {"input": {"weight": take("synthesis.input.weight", (channels, channels)),
                                      "affine": linear("synthesis.input.affine", w_dim, 4)}}
  buffers: dict[str, Any] = {"input": {"transform": take("synthesis.input.transform", (3, 3)),
                                       "freqs": take("synthesis.input.freqs", (channels, 2)),
                                       "phases": take("synthesis.input.phases", (channels,))}}
  layers = []
  in_ch = channels
  for name in synthesis["layer_names"]:
    attrs = submodule(g, f"synthesis.{name}").state
    prefix = f"synthesis.{name}"
    out_ch, k = int(_scalar(attrs["out_channels"])), int(_scalar(attrs["conv_kernel"]))
    filters = {}
    for which in ("up_filter", "down_filter"):
      if f"{prefix}.{which}" in state:
        taps = reader.take(f"{prefix}.{which}")
        if taps.ndim != 1 and not (which == "down_filter" and taps.ndim == 2 and taps.shape[0] == taps.shape[1]):
          raise CheckpointKeyError(f"{source}: {prefix}.{which} has shape {taps.shape}; expected 1-D taps (or a "
                                   f"square 2-D radial down filter)")
        filters[which] = taps.astype(float).tolist()
      else:
        filters[which] = []
    clamp = _scalar(attrs.get("conv_clamp"))
    layers.append({"name": name, "out_channels": out_ch, "conv_kernel": k, "is_torgb": bool(_scalar(attrs["is_torgb"])),
                   "up": int(_scalar(attrs["up_factor"])), "down": int(_scalar(attrs["down_factor"])),
                   "padding": [int(p) for p in attrs["padding"]], **filters,
                   "conv_clamp": None if clamp is None else float(clamp)})
    params[name] = {"affine": linear(f"{prefix}.affine", w_dim, in_ch),
                    "kernel": conv_oihw_to_hwio(take(f"{prefix}.weight", (out_ch, in_ch, k, k))),
                    "bias": take(f"{prefix}.bias", (out_ch,))}
    buffers[name] = {"magnitude_ema": take(f"{prefix}.magnitude_ema", ())}
    in_ch = out_ch
  w_avg = take("mapping.w_avg", (w_dim,))
  reader.finish()
  config = {"family": family.FAMILY, "z_dim": z_dim, "w_dim": w_dim, "c_dim": c_dim,
            "img_resolution": int(_scalar(synthesis["img_resolution"])),
            "img_channels": int(_scalar(synthesis["img_channels"])), "mapping_layers": num_fc, "lr_multiplier": lr,
            "output_scale": float(_scalar(synthesis["output_scale"])), "input": input_config, "layers": layers}
  variables = {"params": {"mapping_net": mapping_params, "synthesis_net": params},
               "buffers": {"w_avg": w_avg, "synthesis_net": buffers}}
  check_tree_shapes(family.abstract_variables(config), variables, source)
  return config, variables


def convert(path: str, checkpoint: Any):
  g = network(checkpoint)
  if g is None:
    raise CheckpointKeyError(f"{path}: not a StyleGAN3 network pickle (expected a snapshot with 'G_ema')")
  return convert_network(g, str(path))
