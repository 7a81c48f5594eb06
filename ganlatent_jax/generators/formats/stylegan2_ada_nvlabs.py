"""NVlabs stylegan2-ada-pytorch network pickles → `generators.stylegan2_ada` variables.

Accepted: a snapshot `{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}` (G_ema is used, as upstream's
generate.py does) or a pickle of the Generator alone, read by `port.nvlabs_pickle` (nothing executed). The
architecture comes from the networks' own pickled attributes (`_init_kwargs`, each block's `architecture`, each
layer's `conv_clamp`, the FC layers' `bias_gain` = lr_multiplier) and the tensor shapes; every state-dict key is
mapped, missing/unexpected/mis-shaped keys are refused by name, and the stored FIR filters must be the configured
one. Real NVIDIA pickles trained with `num_fp16_res > 0` ran those blocks in float16 on GPU: the float32 port
computes the same function, not the same bits.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ganlatent_jax.generators import stylegan2_ada as family
from ganlatent_jax.nets import upfirdn
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, check_tree_shapes, conv_oihw_to_hwio
from ganlatent_jax.port.keys import linear_to_dense
from ganlatent_jax.port.nvlabs_pickle import PersistentObject, state_dict, submodule

NAME = "stylegan2_ada_nvlabs"


def network(checkpoint: Any, class_names=("Generator",)) -> PersistentObject | None:
  """The generator object of a snapshot (G_ema) or of a bare network pickle, or None."""
  if isinstance(checkpoint, dict):
    checkpoint = checkpoint.get("G_ema")
  if isinstance(checkpoint, PersistentObject) and checkpoint.class_name in class_names:
    return checkpoint
  return None


def sniff(path: str, checkpoint: Any) -> bool:
  g = network(checkpoint)
  if g is None:
    return False
  synthesis = (g.state.get("_modules") or {}).get("synthesis")
  return isinstance(synthesis, PersistentObject) and synthesis.class_name == "SynthesisNetwork" and \
      "b4" in (synthesis.state.get("_modules") or {})


def _attr(obj: PersistentObject, name: str, default=None):
  value = obj.state.get(name, default)
  return value.item() if isinstance(value, np.generic) else value


def config_from_network(g: PersistentObject, state: dict[str, np.ndarray], source: str) -> dict[str, Any]:
  def need(key):
    if key not in state:
      raise CheckpointKeyError(f"{source}: not a StyleGAN2-ADA generator, missing key {key!r}")
    return state[key]

  kwargs = g.state.get("_init_kwargs") or {}
  mapping = submodule(g, "mapping")
  fc_ids = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
  if not fc_ids:
    need("mapping.fc0.weight")
  resolutions = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
  img_resolution = resolutions[-1] if resolutions else int(kwargs.get("img_resolution", 0))
  blocks = {res: submodule(g, f"synthesis.b{res}") for res in resolutions}
  architectures = {_attr(block, "architecture", "skip") for block in blocks.values()}
  if len(architectures) != 1:
    raise CheckpointKeyError(f"{source}: blocks disagree on the architecture ({sorted(architectures)})")
  clamps = {_attr(submodule(g, f"synthesis.b{res}.conv1"), "conv_clamp") for res in resolutions}
  if len(clamps) != 1:
    raise CheckpointKeyError(f"{source}: layers disagree on conv_clamp ({sorted(map(str, clamps))}); per-block "
                             f"clamps (num_fp16_res with conv_clamp) are not supported")
  c_dim = int(_attr(mapping, "c_dim", 0) or 0)
  w_dim = int(need("mapping.w_avg").shape[0])
  filter_1d = [1.0, 3.0, 3.0, 1.0]
  stored = need("synthesis.b4.resample_filter")
  if not np.allclose(stored, upfirdn.make_kernel(filter_1d), atol=1e-6):
    raise CheckpointKeyError(f"{source}: synthesis.b4.resample_filter is not the [1,3,3,1] FIR filter")
  return family.make_config(
      z_dim=int(_attr(mapping, "z_dim", need("mapping.fc0.weight").shape[1])), w_dim=w_dim, c_dim=c_dim,
      img_resolution=img_resolution, img_channels=int(need(f"synthesis.b{img_resolution}.torgb.weight").shape[0]),
      mapping_layers=len(fc_ids),
      embed_features=int(need("mapping.embed.weight").shape[0]) if c_dim else None,
      layer_features=int(need("mapping.fc0.weight").shape[0]) if len(fc_ids) > 1 else w_dim,
      lr_multiplier=float(_attr(submodule(g, "mapping.fc0"), "bias_gain", 0.01)),
      channels={res: int(need(f"synthesis.b{res}.conv1.weight").shape[0]) for res in resolutions},
      architecture=architectures.pop(), conv_clamp=clamps.pop(), resample_filter=filter_1d)


def convert_network(g: PersistentObject, source: str):
  state = state_dict(g)
  config = config_from_network(g, state, source)
  reader = StateDictReader(state, source)
  fir = upfirdn.make_kernel(config["resample_filter"])
  problems: list[str] = []

  def take(key, shape):
    value = reader.take(key, shape)
    return value if value.shape == tuple(shape) else np.zeros(shape, np.float32)

  def check_filter(key):
    stored = reader.take(key, fir.shape)
    if stored.shape == fir.shape and not np.allclose(stored, fir, atol=1e-6):
      problems.append(f"{key}: stored FIR filter differs from {config['resample_filter']}")

  def linear(prefix, in_dim, out_dim):
    return {"kernel": linear_to_dense(take(f"{prefix}.weight", (out_dim, in_dim))),
            "bias": take(f"{prefix}.bias", (out_dim,))}

  w_dim, c_dim = config["w_dim"], config["c_dim"]
  mapping: dict[str, Any] = {}
  in_dim = config["z_dim"]
  if c_dim:
    mapping["embed"] = linear("mapping.embed", c_dim, config["embed_features"])
    in_dim += config["embed_features"]
  for i in range(config["mapping_layers"]):
    out_dim = w_dim if i == config["mapping_layers"] - 1 else config["layer_features"]
    mapping[f"fc{i}"] = linear(f"mapping.fc{i}", in_dim, out_dim)
    in_dim = out_dim

  synthesis_params: dict[str, Any] = {}
  synthesis_buffers: dict[str, Any] = {}
  in_ch = 0
  last = config["img_resolution"]
  for res, width in config["channels"]:
    prefix = f"synthesis.b{res}"
    check_filter(f"{prefix}.resample_filter")
    block: dict[str, Any] = {}
    block_buffers: dict[str, Any] = {}
    if res == 4:
      block["const"] = np.transpose(take(f"{prefix}.const", (width, 4, 4)), (1, 2, 0))
    for name, layer_in in (("conv0", in_ch), ("conv1", width)):
      if res == 4 and name == "conv0":
        continue
      key = f"{prefix}.{name}"
      check_filter(f"{key}.resample_filter")
      block[name] = {"affine": linear(f"{key}.affine", w_dim, layer_in),
                     "kernel": conv_oihw_to_hwio(take(f"{key}.weight", (width, layer_in, 3, 3))),
                     "noise_strength": take(f"{key}.noise_strength", ()), "bias": take(f"{key}.bias", (width,))}
      block_buffers[name] = {"noise_const": take(f"{key}.noise_const", (res, res))}
    if config["architecture"] == "resnet" and res > 4:
      check_filter(f"{prefix}.skip.resample_filter")
      block["skip"] = conv_oihw_to_hwio(take(f"{prefix}.skip.weight", (width, in_ch, 1, 1)))
    if config["architecture"] == "skip" or res == last:
      channels = config["img_channels"]
      block["torgb"] = {"affine": linear(f"{prefix}.torgb.affine", w_dim, width),
                        "kernel": conv_oihw_to_hwio(take(f"{prefix}.torgb.weight", (channels, width, 1, 1))),
                        "bias": take(f"{prefix}.torgb.bias", (channels,))}
    synthesis_params[f"b{res}"] = block
    synthesis_buffers[f"b{res}"] = block_buffers
    in_ch = width
  w_avg = take("mapping.w_avg", (w_dim,))
  reader.finish()
  if problems:
    raise CheckpointKeyError(f"{source}: " + "; ".join(problems))
  variables = {"params": {"mapping_net": mapping, "synthesis_net": synthesis_params},
               "buffers": {"w_avg": w_avg, "synthesis_net": synthesis_buffers}}
  check_tree_shapes(family.abstract_variables(config), variables, source)
  return config, variables


def convert(path: str, checkpoint: Any):
  g = network(checkpoint)
  if g is None:
    raise CheckpointKeyError(f"{path}: not a StyleGAN2-ADA network pickle (expected a snapshot with 'G_ema' or a "
                             f"pickled Generator)")
  return convert_network(g, str(path))
