"""torchvision `vgg16` (plain VGG) and `resnet18`/`resnet34` state dicts → our parameter trees.

Architecture sizes (widths, depths, input channels, class counts) are read from the state dict, never assumed, so
the official files (`vgg16-397923af.pth`, `resnet18-f37072fd.pth`), width-reduced test copies and checkpoints with
other input channels/heads convert alike. Every key is accounted for: missing, unexpected or mis-shaped keys raise
`CheckpointKeyError` naming them. BatchNorm's `num_batches_tracked` is not needed (momentum is fixed) and is ignored
when present (old torchvision files lack it).
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.nets.resnet import ResNet, build_resnet
from ganlatent_jax.nets.vgg import CLASSIFIER_POOL_SIZE, VGG, build_vgg, conv_feature_indices
from ganlatent_jax.port.keys import (CheckpointKeyError, StateDictReader, check_tree_shapes, conv_oihw_to_hwio,
                                     linear_to_dense)
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file


def _load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  tree = load_torch_file(path)
  if isinstance(tree, dict) and "state_dict" in tree and isinstance(tree["state_dict"], dict):
    tree = tree["state_dict"]  # a training checkpoint wrapping the model's state dict
  return flatten_state_dict(tree)


def _conv(reader: StateDictReader, key: str, bias: bool,
          shape: Optional[tuple[int, int, int, int]] = None) -> dict[str, np.ndarray]:
  """A conv's params. `shape` (out, in, kh, kw), where the architecture already fixes it, is checked and stands in
  for a missing weight (which `finish()` then reports by name)."""
  weight = reader.take(f"{key}.weight", shape)
  if not reader.has(f"{key}.weight"):
    weight = np.zeros(shape if shape is not None else (0, 0, 0, 0), np.float32)
  elif weight.ndim != 4:
    raise CheckpointKeyError(f"{reader.source}: {key}.weight should be a 4-D conv weight (out, in, kh, kw), "
                             f"got shape {weight.shape}")
  params = {"kernel": conv_oihw_to_hwio(weight)}
  if bias:
    params["bias"] = reader.take(f"{key}.bias", (weight.shape[0],))
  return params


def _out_width(reader: StateDictReader, keys: Sequence[str]) -> int:
  """Output width of a layer from the first of `keys` present (its own weight, else a neighbour's), 0 if none."""
  for key in keys:
    if reader.has(key):
      return int(reader.state_dict[key].shape[0])
  return 0


def _linear(reader: StateDictReader, key: str, in_features: Optional[int] = None) -> dict[str, np.ndarray]:
  """A Linear's params (kernel (in, out), bias); a wrong input width is reported as a mis-shaped key."""
  weight_key = f"{key}.weight"
  if not reader.has(weight_key):
    reader.take(weight_key)  # recorded as missing
    reader.take(f"{key}.bias")
    return {"kernel": np.zeros((in_features or 0, 0), np.float32), "bias": np.zeros((0,), np.float32)}
  out_features = int(reader.state_dict[weight_key].shape[0]) if np.ndim(reader.state_dict[weight_key]) else 0
  weight = reader.take(weight_key, None if in_features is None else (out_features, in_features))
  if weight.ndim != 2:
    raise CheckpointKeyError(f"{reader.source}: {weight_key} should be a 2-D Linear weight (out, in), "
                             f"got shape {weight.shape}")
  return {"kernel": linear_to_dense(weight), "bias": reader.take(f"{key}.bias", (out_features,))}


def _batch_norm(reader: StateDictReader, key: str, channels: int) -> tuple[dict, dict]:
  params = {"scale": reader.take(f"{key}.weight", (channels,)), "bias": reader.take(f"{key}.bias", (channels,))}
  stats = {"mean": reader.take(f"{key}.running_mean", (channels,)),
           "var": reader.take(f"{key}.running_var", (channels,))}
  reader.ignore([f"{key}.num_batches_tracked"])
  return params, stats


# ----------------------------------------------------------------------------------------------------------- VGG


def _vgg_block_widths(state_dict: dict[str, np.ndarray], prefix: str, source: str) -> list[list[int]]:
  """Block structure from the `features.N.weight` indices: consecutive convs are 2 apart (conv, ReLU); a gap of 3
  means a max-pool in between. Refuses BatchNorm VGGs (`vgg16_bn`), whose index pattern differs."""
  pattern = re.compile(re.escape(prefix) + r"features\.(\d+)\.weight$")
  indices = sorted(int(m.group(1)) for key in state_dict if (m := pattern.match(key)))
  if not indices:
    raise CheckpointKeyError(f"{source}: no '{prefix}features.N.weight' keys: not a torchvision VGG state dict")
  if any(state_dict[f"{prefix}features.{i}.weight"].ndim != 4 for i in indices):
    raise CheckpointKeyError(f"{source}: 1-D `features.N.weight` tensors found — a BatchNorm VGG (vgg*_bn), "
                             "which is not supported (only plain VGG)")
  blocks, previous = [], None
  for index in indices:
    if previous is None or index - previous == 3:
      blocks.append([])
    elif index - previous != 2:
      raise CheckpointKeyError(f"{source}: unexpected gap between features.{previous} and features.{index}: not "
                               "a plain torchvision VGG layout (conv, ReLU[, MaxPool]), or a conv weight is missing")
    blocks[-1].append(int(state_dict[f"{prefix}features.{index}.weight"].shape[0]))
    previous = index
  if indices[0] != 0:
    raise CheckpointKeyError(f"{source}: the first conv should be features.0, found features.{indices[0]}")
  return blocks


def convert_vgg(state_dict: dict[str, np.ndarray], source: str, *, keep_classifier: bool = True,
                prefix: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
  """(config, variables {'params': ...}) of a torchvision plain-VGG state dict (flat 'features.N.*' keys).

  `keep_classifier=False` drops `classifier.*` (4096-wide Linears: 480 MB in the official VGG16) for feature use.
  """
  block_widths = _vgg_block_widths(state_dict, prefix, source)
  reader = StateDictReader(state_dict, source)
  params = {}
  for indices in conv_feature_indices(block_widths):
    for index in indices:
      params[f"features_{index}"] = _conv(reader, f"{prefix}features.{index}", bias=True)
  classifier_widths = None
  if keep_classifier:
    classifier_widths, in_features = [], block_widths[-1][-1] * math.prod(CLASSIFIER_POOL_SIZE)
    for index in (0, 3, 6):
      params[f"classifier_{index}"] = _linear(reader, f"{prefix}classifier.{index}", in_features)
      in_features = params[f"classifier_{index}"]["kernel"].shape[1]
      classifier_widths.append(int(in_features))
  else:
    reader.ignore([f"{prefix}classifier.*"])
  reader.finish()
  config = {"architecture": "torchvision_vgg", "block_widths": block_widths, "classifier_widths": classifier_widths}
  variables = {"params": params}
  _check_against_module(build_vgg(config), variables, in_channels=int(params["features_0"]["kernel"].shape[2]),
                        source=source)
  return config, variables


def load_vgg(path: str | os.PathLike, *, keep_classifier: bool = True) -> tuple[VGG, dict[str, Any]]:
  """(module, variables) from a torchvision VGG `.pth` file (e.g. `vgg16-397923af.pth`)."""
  config, variables = convert_vgg(_load_state_dict(path), str(path), keep_classifier=keep_classifier)
  return build_vgg(config), variables


# -------------------------------------------------------------------------------------------------------- ResNet


def _resnet_stages(state_dict: dict[str, np.ndarray], prefix: str, source: str) -> list[int]:
  depths = []
  while any(k.startswith(f"{prefix}layer{len(depths) + 1}.") for k in state_dict):
    stage = len(depths) + 1
    pattern = re.compile(re.escape(f"{prefix}layer{stage}.") + r"(\d+)\.")
    blocks = {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}
    if blocks != set(range(len(blocks))) or not blocks:
      raise CheckpointKeyError(f"{source}: blocks of {prefix}layer{stage} are not numbered 0..n-1: {sorted(blocks)}")
    depths.append(len(blocks))
  if not depths:
    raise CheckpointKeyError(f"{source}: no '{prefix}layer1.*' keys: not a torchvision ResNet state dict")
  if any(k.startswith(prefix) and ".conv3." in k for k in state_dict):
    raise CheckpointKeyError(f"{source}: `conv3` keys found — a Bottleneck ResNet (50/101/152), not supported "
                             "(only BasicBlock ResNets such as resnet18/34)")
  return depths


def read_resnet(reader: StateDictReader, *, prefix: str = "", keep_fc: bool = True,
                heads: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
  """Reads a torchvision ResNet under `prefix` from `reader` without calling `finish()`, so that converters of
  networks containing one (e.g. GANLatentDiscovery's reconstructor, `prefix="features_extractor."`) can read their
  other keys from the same reader.

  `keep_fc`: convert `{prefix}fc` as head 'fc' (else its keys are ignored). `heads`: names of further Linear heads on
  the pooled features, stored at top-level keys `{name}.weight/.bias` (e.g. 'type_estimator', 'shift_estimator').
  Returns (config, variables {'params', 'batch_stats'}); check them with `check_resnet_variables` after `finish()`.
  """
  state_dict, source = reader.state_dict, reader.source
  depths = _resnet_stages(state_dict, prefix, source)
  params, stats = {}, {}
  stem_width = _out_width(reader, [f"{prefix}conv1.weight", f"{prefix}bn1.weight"])
  params["conv1"] = _conv(reader, f"{prefix}conv1", bias=False)
  in_channels = int(params["conv1"]["kernel"].shape[2])
  params["bn1"], stats["bn1"] = _batch_norm(reader, f"{prefix}bn1", stem_width)
  stage_widths, in_width = [], stem_width
  for s, depth in enumerate(depths):
    for b in range(depth):
      key, name = f"{prefix}layer{s + 1}.{b}", f"layer{s + 1}_{b}"
      block_params, block_stats = {}, {}
      width = _out_width(reader, [f"{key}.conv1.weight", f"{key}.bn1.weight", f"{key}.conv2.weight"])
      block_params["conv1"] = _conv(reader, f"{key}.conv1", bias=False, shape=(width, in_width, 3, 3))
      block_params["bn1"], block_stats["bn1"] = _batch_norm(reader, f"{key}.bn1", width)
      block_params["conv2"] = _conv(reader, f"{key}.conv2", bias=False, shape=(width, width, 3, 3))
      block_params["bn2"], block_stats["bn2"] = _batch_norm(reader, f"{key}.bn2", width)
      stride = 2 if (s > 0 and b == 0) else 1
      if stride != 1 or in_width != width:
        block_params["downsample_conv"] = _conv(reader, f"{key}.downsample.0", bias=False,
                                                shape=(width, in_width, 1, 1))
        block_params["downsample_bn"], block_stats["downsample_bn"] = _batch_norm(reader, f"{key}.downsample.1", width)
      params[name], stats[name] = block_params, block_stats
      in_width = width
    stage_widths.append(in_width)
  head_sizes = []
  head_keys = ([(f"{prefix}fc", "fc")] if keep_fc else []) + [(name, name) for name in heads]
  if not keep_fc:
    reader.ignore([f"{prefix}fc.*"])
  for key, name in head_keys:
    params[name] = _linear(reader, key, in_width)
    head_sizes.append([name, int(params[name]["kernel"].shape[1])])
  config = {"architecture": "torchvision_resnet", "in_channels": in_channels, "stem_width": stem_width,
            "stage_widths": stage_widths, "blocks_per_stage": depths, "heads": head_sizes}
  return config, {"params": params, "batch_stats": stats}


def check_resnet_variables(config: dict[str, Any], variables: dict[str, Any], source: str) -> None:
  """Converted variables must match `build_resnet(config)` exactly (paths and shapes); call after `finish()`."""
  _check_against_module(build_resnet(config), variables, in_channels=config["in_channels"], source=source)


def convert_resnet(state_dict: dict[str, np.ndarray], source: str, *, keep_fc: bool = True, prefix: str = "",
                   heads: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
  """(config, variables) of a torchvision BasicBlock-ResNet state dict; every key must be used (see `read_resnet`)."""
  reader = StateDictReader(state_dict, source)
  config, variables = read_resnet(reader, prefix=prefix, keep_fc=keep_fc, heads=heads)
  reader.finish()
  check_resnet_variables(config, variables, source)
  return config, variables


def load_resnet(path: str | os.PathLike, *, keep_fc: bool = True) -> tuple[ResNet, dict[str, Any]]:
  """(module, variables) from a torchvision ResNet `.pth` file (e.g. `resnet18-f37072fd.pth`)."""
  config, variables = convert_resnet(_load_state_dict(path), str(path), keep_fc=keep_fc)
  return build_resnet(config), variables


def _check_against_module(module, variables, *, in_channels: int, source: str) -> None:
  """The converted tree must have exactly the module's parameter paths and shapes (abstract init, no compute)."""
  dummy = jax.ShapeDtypeStruct((1, 32, 32, in_channels), jnp.float32)
  expected = jax.eval_shape(module.init, jax.random.PRNGKey(0), dummy)
  check_tree_shapes({k: expected[k] for k in variables}, variables, source)
  missing_collections = sorted(set(expected) - set(variables))
  if missing_collections:
    raise CheckpointKeyError(f"{source}: converted variables lack collections {missing_collections}")
