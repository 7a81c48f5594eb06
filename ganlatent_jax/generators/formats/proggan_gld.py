"""Format 'proggan_gld': GANLatentDiscovery's ProgGAN `.pth` state dict (`features.N.conv.weight`,
`features.N.wscale.{scale,b}`, `output.conv.weight`, `output.wscale.{scale,b}`).

Depth, widths, kernel sizes and the latent size (block 0's input width) are read from the tensors. Which blocks
upsample is not recorded in the weights: the upstream layout (blocks 2, 4, 6, ...) is assumed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ganlatent_jax.generators.proggan import upstream_upsample_pattern
from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, conv_oihw_to_hwio

NAME = "proggan_gld"


def sniff(path: str, checkpoint: Any) -> bool:
  if not isinstance(checkpoint, dict):
    return False
  flat = torch_pickle.flatten_state_dict(checkpoint)
  return "features.0.conv.weight" in flat and "features.0.wscale.scale" in flat and "output.conv.weight" in flat


def _take_block(reader: StateDictReader, prefix: str, in_channels: int | None) -> dict[str, np.ndarray]:
  weight = reader.take(f"{prefix}.conv.weight")
  if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
    reader.misshaped.append(f"{prefix}.conv.weight: checkpoint {weight.shape}, expected (out, in, k, k)")
    weight = np.zeros((1, in_channels or 1, 1, 1), np.float32)
  elif in_channels is not None and weight.shape[1] != in_channels:
    reader.misshaped.append(f"{prefix}.conv.weight: checkpoint {weight.shape}, expected {in_channels} input channels")
  return {"conv": {"kernel": conv_oihw_to_hwio(weight)},
          "scale": reader.take(f"{prefix}.wscale.scale", (1,)),
          "b": reader.take(f"{prefix}.wscale.b", (weight.shape[0],))}


def convert_state_dict(state_dict: dict[str, np.ndarray], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
  if "features.0.conv.weight" not in state_dict:
    raise CheckpointKeyError(f"{source}: not a ProgGAN generator state dict (no 'features.0.conv.weight'; "
                             f"keys start with {sorted(state_dict)[:5]})")
  reader = StateDictReader(state_dict, source)
  params: dict[str, Any] = {}
  channels, kernel_sizes = [], []
  in_channels = None
  while f"features.{len(channels)}.conv.weight" in state_dict:
    i = len(channels)
    block = _take_block(reader, f"features.{i}", in_channels)
    params[f"blocks_{i}"] = block
    kh, _, c_in, c_out = block["conv"]["kernel"].shape
    if i == 0:
      latent_dim = c_in
    channels.append(int(c_out))
    kernel_sizes.append(int(kh))
    in_channels = c_out
  params["output"] = _take_block(reader, "output", in_channels)
  image_channels = params["output"]["conv"]["kernel"].shape[3]
  reader.finish()
  config = {"family": "proggan", "latent_dim": int(latent_dim), "channels": channels, "kernel_sizes": kernel_sizes,
            "upsample": list(upstream_upsample_pattern(len(channels))), "image_channels": int(image_channels)}
  return config, {"params": params}


def convert(path: str, checkpoint: Any) -> tuple[dict[str, Any], dict[str, Any]]:
  if checkpoint is None:
    checkpoint = torch_pickle.load_torch_file(path)
  if not isinstance(checkpoint, dict):
    raise CheckpointKeyError(f"{path}: expected a ProgGAN state dict, got {type(checkpoint).__name__}")
  return convert_state_dict(torch_pickle.flatten_state_dict(checkpoint), path)
