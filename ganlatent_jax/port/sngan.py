"""Format 'sngan_gld': GANLatentDiscovery's SN-GAN generator folders (`args.json` + `generator.pt`).

`generator.pt` is `GenWrapper.state_dict()` (keys `model.N.*`). Upstream loads it with `strict=False`, so a key-name
mismatch silently leaves random weights; here every key must be used exactly once. Each ResBlock registers its two
convs twice (`conv1` = `model.3`, `conv2` = `model.6` of the block's inner Sequential): both copies are read and must
be equal. All sizes (latent size, widths, depth, image channels) come from the tensors; `args.json`, when present,
is cross-checked against them.

Also holds the small PyTorch-layer readers (Linear, Conv2d, BatchNorm) the GANLatentDiscovery converters share.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port.keys import (CheckpointKeyError, StateDictReader, conv_oihw_to_hwio,
                                     linear_to_dense)

NAME = "sngan_gld"
ARGS_FILE = "args.json"
WEIGHTS_FILE = "generator.pt"
KNOWN_RESOLUTIONS = {"sn_resnet32": 32, "sn_resnet64": 64}


# --- PyTorch layer readers (shared by the GANLatentDiscovery converters) -------------------------------------------
def take_dense(reader: StateDictReader, prefix: str, in_features: int | None = None,
               out_features: int | None = None, bias: bool = True) -> dict[str, np.ndarray]:
  """nn.Linear at `prefix` → flax Dense params; sizes not given are read from the weight."""
  weight = reader.take(f"{prefix}.weight")
  if weight.ndim != 2:
    reader.misshaped.append(f"{prefix}.weight: checkpoint {weight.shape}, expected a 2-D Linear weight")
    weight = np.zeros((out_features or 0, in_features or 0), np.float32)
  out_features = weight.shape[0] if out_features is None else out_features
  in_features = weight.shape[1] if in_features is None else in_features
  if weight.shape != (out_features, in_features):
    reader.misshaped.append(f"{prefix}.weight: checkpoint {weight.shape}, expected {(out_features, in_features)}")
  params = {"kernel": linear_to_dense(weight)}
  if bias:
    params["bias"] = reader.take(f"{prefix}.bias", (out_features,))
  return params


def take_conv(reader: StateDictReader, prefix: str, in_channels: int | None = None,
              out_channels: int | None = None, bias: bool = True) -> dict[str, np.ndarray]:
  """nn.Conv2d at `prefix` → `nets.layers.Conv2d` params ('kernel' HWIO, 'bias')."""
  weight = reader.take(f"{prefix}.weight")
  if weight.ndim != 4:
    reader.misshaped.append(f"{prefix}.weight: checkpoint {weight.shape}, expected a 4-D conv weight")
    weight = np.zeros((out_channels or 0, in_channels or 0, 1, 1), np.float32)
  want = (weight.shape[0] if out_channels is None else out_channels,
          weight.shape[1] if in_channels is None else in_channels)
  if weight.shape[:2] != want:
    reader.misshaped.append(f"{prefix}.weight: checkpoint {weight.shape}, expected (out, in) = {want}")
  params = {"kernel": conv_oihw_to_hwio(weight)}
  if bias:
    params["bias"] = reader.take(f"{prefix}.bias", (weight.shape[0],))
  return params


def take_batch_norm(reader: StateDictReader, prefix: str,
                    num_features: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """nn.BatchNorm{1,2}d at `prefix` → (flax BatchNorm params, batch_stats). `num_batches_tracked` is not needed
  (momentum is set) and may be absent in old checkpoints."""
  scale = reader.take(f"{prefix}.weight", None if num_features is None else (num_features,))
  n = scale.shape[0]
  params = {"scale": scale, "bias": reader.take(f"{prefix}.bias", (n,))}
  stats = {"mean": reader.take(f"{prefix}.running_mean", (n,)), "var": reader.take(f"{prefix}.running_var", (n,))}
  reader.ignore([f"{prefix}.num_batches_tracked"])
  return params, stats


# --- the format ------------------------------------------------------------------------------------------------
def _weights_and_args_paths(path: str) -> tuple[str, str]:
  if os.path.isdir(path):
    return os.path.join(path, WEIGHTS_FILE), os.path.join(path, ARGS_FILE)
  return path, os.path.join(os.path.dirname(path), ARGS_FILE)


def _is_sngan_state_dict(state_dict: Any) -> bool:
  return (isinstance(state_dict, dict) and "model.0.weight" in state_dict
          and any(k.startswith("model.2.") and k.endswith("model.0.running_mean") for k in state_dict))


def sniff(path: str, checkpoint: Any) -> bool:
  weights, args = _weights_and_args_paths(path)
  if checkpoint is None:  # a directory
    if not (os.path.isfile(weights) and os.path.isfile(args)):
      return False
    try:
      checkpoint = torch_pickle.load_torch_file(weights)
    except (ValueError, OSError):
      return False
  if not isinstance(checkpoint, dict):
    return False
  return _is_sngan_state_dict(torch_pickle.flatten_state_dict(checkpoint))


def _read_args(args_path: str) -> dict[str, Any]:
  if not os.path.isfile(args_path):
    return {}
  try:
    with open(args_path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{args_path}: unreadable args.json ({e})") from e


def convert_state_dict(state_dict: dict[str, np.ndarray], source: str,
                       args: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
  """A flat `GenWrapper` state dict → (config, {'params', 'batch_stats'}) for `generators.sngan`."""
  reader = StateDictReader(state_dict, source)
  if "model.0.weight" not in state_dict:
    raise CheckpointKeyError(f"{source}: not an SN-GAN generator state dict (no 'model.0.weight'; "
                             f"keys start with {sorted(state_dict)[:5]})")
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  params["dense"] = take_dense(reader, "model.0")
  latent_dim = params["dense"]["kernel"].shape[0]
  dense_out = params["dense"]["kernel"].shape[1]

  channels = []
  index = 2
  while f"model.{index}.model.0.weight" in state_dict:
    block = f"model.{index}"
    name = f"blocks_{index - 2}"
    bn1, bn1_stats = take_batch_norm(reader, f"{block}.model.0")
    c_in = bn1["scale"].shape[0]
    conv1 = _take_duplicated_conv(reader, f"{block}.conv1", f"{block}.model.3", c_in)
    c_out = conv1["kernel"].shape[3]
    bn2, bn2_stats = take_batch_norm(reader, f"{block}.model.4", c_out)
    conv2 = _take_duplicated_conv(reader, f"{block}.conv2", f"{block}.model.6", c_out, c_out)
    params[name] = {"bn1": bn1, "conv1": conv1, "bn2": bn2, "conv2": conv2}
    stats[name] = {"bn1": bn1_stats, "bn2": bn2_stats}
    if c_in != c_out:
      params[name]["bypass_conv"] = take_conv(reader, f"{block}.bypass.1", c_in, c_out)
    if not channels:
      channels.append(c_in)
    elif channels[-1] != c_in:
      reader.misshaped.append(f"{block}.model.0.weight: block input width {c_in}, previous block gives {channels[-1]}")
    channels.append(c_out)
    index += 1
  if not channels:
    raise CheckpointKeyError(f"{source}: SN-GAN state dict without ResBlocks (no 'model.2.model.0.weight')")

  params["bn_out"], stats["bn_out"] = take_batch_norm(reader, f"model.{index}", channels[-1])
  params["conv_out"] = take_conv(reader, f"model.{index + 2}", channels[-1])
  image_channels = params["conv_out"]["kernel"].shape[3]
  seed_dim = math.isqrt(dense_out // channels[0]) if dense_out % channels[0] == 0 else 0
  if seed_dim ** 2 * channels[0] != dense_out:
    reader.misshaped.append(f"model.0.weight: {dense_out} outputs is not seed² × {channels[0]} channels")
  reader.finish()

  config = {"family": "sngan", "latent_dim": int(latent_dim), "channels": [int(c) for c in channels],
            "image_channels": int(image_channels), "seed_dim": int(seed_dim)}
  if args:
    _check_args(args, config, source)
    if "model" in args:
      config["model"] = str(args["model"])
  return config, {"params": params, "batch_stats": stats}


def _take_duplicated_conv(reader: StateDictReader, prefix: str, alias: str, in_channels: int,
                          out_channels: int | None = None) -> dict[str, np.ndarray]:
  """A conv registered under two names (same tensors): read both, require equality, keep one."""
  have = [p for p in (prefix, alias) if reader.has(f"{p}.weight")]
  if not have:
    return take_conv(reader, prefix, in_channels, out_channels)  # reports the missing key
  conv = take_conv(reader, have[0], in_channels, out_channels)
  for other in have[1:]:
    copy = take_conv(reader, other, in_channels, out_channels)
    for leaf in conv:
      if conv[leaf].shape != copy[leaf].shape or not np.array_equal(conv[leaf], copy[leaf]):
        raise CheckpointKeyError(f"{reader.source}: '{have[0]}' and '{other}' should hold the same conv "
                                 f"(upstream registers it twice) but their '{leaf}' tensors differ")
  return conv


def _check_args(args: dict[str, Any], config: dict[str, Any], source: str) -> None:
  problems = []
  for key in ("latent_dim", "image_channels"):
    if key in args and args[key] is not None and int(args[key]) != config[key]:
      problems.append(f"args.json {key}={args[key]} but the weights have {config[key]}")
  model = args.get("model")
  if model in KNOWN_RESOLUTIONS:
    size = config["seed_dim"] * 2 ** (len(config["channels"]) - 1)
    if size != KNOWN_RESOLUTIONS[model]:
      problems.append(f"args.json model={model!r} makes {KNOWN_RESOLUTIONS[model]}px images but the weights "
                      f"have {len(config['channels']) - 1} ResBlocks ({size}px)")
  if problems:
    raise CheckpointKeyError(f"{source}: " + "; ".join(problems))


def convert(path: str, checkpoint: Any) -> tuple[dict[str, Any], dict[str, Any]]:
  weights, args_path = _weights_and_args_paths(path)
  if checkpoint is None:
    if not os.path.isfile(weights):
      raise FileNotFoundError(f"{path}: an SN-GAN folder needs {WEIGHTS_FILE} (and {ARGS_FILE})")
    checkpoint = torch_pickle.load_torch_file(weights)
  if not isinstance(checkpoint, dict):
    raise CheckpointKeyError(f"{weights}: expected a state dict, got {type(checkpoint).__name__}")
  return convert_state_dict(torch_pickle.flatten_state_dict(checkpoint), weights, _read_args(args_path))
