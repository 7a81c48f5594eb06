"""Inception-v3 state dicts → `InceptionFeatures` (FID's feature extractor), read without torch.

Two published files, same key names (torchvision `Inception3` module paths, BasicConv2d = `{name}.conv.weight` +
`{name}.bn.{weight,bias,running_mean,running_var}`):
  * torchvision `inception_v3_google-0cc3c7bd.pth`: `fc` has 1000 classes; holds `AuxLogits.*` (a training-only
    head, ignored here) → variant 'torchvision';
  * pytorch-fid `pt_inception-2015-12-05-6726825d.pth`: `fc` has 1008 classes (the TF graph's), no `AuxLogits`
    → variant 'fid' (pytorch-fid's patched pooling, see `ganlatent_jax.nets.inception`).
The variant cannot be seen in the weights themselves, so it is inferred from the class count unless given.
Widths come from the checkpoint; every conv's input width is checked against the concatenated block outputs, so
a wrong or truncated file is refused with the offending keys named. `num_batches_tracked` is ignored.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.nets.inception import (BLOCKS, CONVS, FID_INPUT_SIZE, STEM, VARIANTS, InceptionFeatures,
                                          build_inception, conv_input_widths, conv_names)
from ganlatent_jax.port.keys import (CheckpointKeyError, StateDictReader, check_tree_shapes, conv_oihw_to_hwio,
                                     linear_to_dense)
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file

FID_NUM_CLASSES = 1008  # the 2015 TF Inception graph's class count (pytorch-fid's file)


def _kernel_shape(name: str) -> tuple[int, int]:
  """(kh, kw) of the conv at a dotted module path (fixed by the architecture)."""
  for layer in STEM:
    if layer != "maxpool" and layer[0] == name:
      return layer[1]
  block, conv = name.split(".")
  kind = dict(BLOCKS)[block]
  return next(c[1] for c in CONVS[kind] if c[0] == conv)


def sniff_variant(state_dict: dict[str, np.ndarray]) -> str:
  """'fid' for the 1008-class TF graph (pytorch-fid), 'torchvision' otherwise."""
  fc = state_dict.get("fc.weight")
  return "fid" if fc is not None and np.shape(fc)[0] == FID_NUM_CLASSES else "torchvision"


def convert_inception(state_dict: dict[str, np.ndarray], source: str, *, variant: Optional[str] = None,
                      keep_fc: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
  """(config, variables {'params', 'batch_stats'}) of a flat Inception-v3 state dict (see the module docstring)."""
  if "Conv2d_1a_3x3.conv.weight" not in state_dict:
    raise CheckpointKeyError(f"{source}: no 'Conv2d_1a_3x3.conv.weight': not an Inception-v3 state dict "
                             f"(torchvision inception_v3 or pytorch-fid pt_inception)")
  variant = variant or sniff_variant(state_dict)
  if variant not in VARIANTS:
    raise ValueError(f"Inception variant must be one of {VARIANTS}, got {variant!r}")
  names = conv_names()
  widths = {name: int(np.shape(state_dict[f"{name}.conv.weight"])[0]) if f"{name}.conv.weight" in state_dict
            else 0 for name in names}
  in_channels = int(np.shape(state_dict["Conv2d_1a_3x3.conv.weight"])[1])
  inputs = conv_input_widths(widths, in_channels)
  reader = StateDictReader(state_dict, source)
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  for name in names:
    width = widths[name]
    weight = reader.take(f"{name}.conv.weight", (width, inputs[name], *_kernel_shape(name)))
    conv_params = {"conv": {"kernel": conv_oihw_to_hwio(weight) if weight.ndim == 4 else weight},
                   "bn": {"scale": reader.take(f"{name}.bn.weight", (width,)),
                          "bias": reader.take(f"{name}.bn.bias", (width,))}}
    conv_stats = {"bn": {"mean": reader.take(f"{name}.bn.running_mean", (width,)),
                         "var": reader.take(f"{name}.bn.running_var", (width,))}}
    path = name.split(".")
    _nested(params, path)[path[-1]] = conv_params
    _nested(stats, path)[path[-1]] = conv_stats
  reader.ignore(["*.num_batches_tracked", "AuxLogits.*"])  # the aux head only runs in training
  num_classes = 0
  if keep_fc and reader.has("fc.weight"):
    num_classes = int(np.shape(state_dict["fc.weight"])[0])
    params["fc"] = {"kernel": linear_to_dense(reader.take("fc.weight", (num_classes, inputs["fc"]))),
                    "bias": reader.take("fc.bias", (num_classes,))}
  else:
    reader.ignore(["fc.*"])
  reader.finish()
  config = {"architecture": "inception_v3", "variant": variant, "num_classes": num_classes,
            "in_channels": in_channels, "conv_widths": [[name, widths[name]] for name in names]}
  variables = {"params": params, "batch_stats": stats}
  module = build_inception(config)
  dummy = jax.ShapeDtypeStruct((1, FID_INPUT_SIZE, FID_INPUT_SIZE, in_channels), jnp.float32)
  check_tree_shapes(jax.eval_shape(module.init, jax.random.PRNGKey(0), dummy), variables, source)
  return config, variables


def _nested(tree: dict, path: list[str]) -> dict:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  return tree


def load_inception(path: str | os.PathLike, *, variant: Optional[str] = None,
                   keep_fc: bool = False) -> InceptionFeatures:
  """FID's feature extractor from a torchvision or pytorch-fid Inception-v3 `.pth` (variant inferred if None)."""
  tree = load_torch_file(path)
  if isinstance(tree, dict) and "state_dict" in tree and isinstance(tree["state_dict"], dict):
    tree = tree["state_dict"]
  config, variables = convert_inception(flatten_state_dict(tree), str(path), variant=variant, keep_fc=keep_fc)
  return InceptionFeatures(variables=jax.tree_util.tree_map(jnp.asarray, variables), module=build_inception(config))


def inception_from_state_dict(state_dict: dict[str, np.ndarray], source: str, *, variant: Optional[str] = None,
                              keep_fc: bool = False) -> InceptionFeatures:
  config, variables = convert_inception(state_dict, source, variant=variant, keep_fc=keep_fc)
  return InceptionFeatures(variables=jax.tree_util.tree_map(jnp.asarray, variables), module=build_inception(config))
