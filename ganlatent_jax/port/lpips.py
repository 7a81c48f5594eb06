"""LPIPS linear-head weights (the `lpips` package's `weights/v0.x/<net>.pth`) → per-layer channel weights.

The real heads of lpips 0.1.4 ship with this package (ganlatent_jax/assets/lpips/v0.{0,1}/{vgg,alex,squeeze}.pth,
BSD-2-Clause, see third_party/lpips/LICENSE). Each file holds `lin{k}.model.1.weight` of shape (1, C_k, 1, 1): a 1×1
conv without bias (`model.0` is a Dropout, hence index 1). We keep them as (C_k,) vectors.
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import Optional

import numpy as np

from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file

SHIPPED_HEADS_DIR = pathlib.Path(__file__).resolve().parents[1] / "assets" / "lpips"
VERSIONS = ("0.0", "0.1")
BACKBONES = ("vgg", "alex", "squeeze")
_HEAD_KEY = re.compile(r"lin(\d+)\.model\.1\.weight$")


def shipped_heads_path(net: str = "vgg", version: str = "0.1") -> pathlib.Path:
  """Path of the shipped lpips 0.1.4 head weights for `net` ('vgg', 'alex', 'squeeze') and `version`."""
  if net not in BACKBONES or version not in VERSIONS:
    raise ValueError(f"no shipped LPIPS heads for net={net!r}, version={version!r}; "
                     f"available: nets {BACKBONES}, versions {VERSIONS}")
  return SHIPPED_HEADS_DIR / f"v{version}" / f"{net}.pth"


def convert_lpips_heads(state_dict: dict[str, np.ndarray], source: str,
                        channels: Optional[tuple[int, ...]] = None) -> tuple[np.ndarray, ...]:
  """(C_0,), (C_1,), ... head weights from the flat state dict. `channels`, when given, are the backbone tap widths
  the heads must match (checked per key)."""
  layers = sorted(int(m.group(1)) for key in state_dict if (m := _HEAD_KEY.match(key)))
  if not layers:
    raise CheckpointKeyError(f"{source}: no 'lin<k>.model.1.weight' keys: not an LPIPS head file")
  if layers != list(range(len(layers))):
    raise CheckpointKeyError(f"{source}: LPIPS heads should be lin0..lin{len(layers) - 1}, found lin{layers}")
  if channels is not None and len(channels) != len(layers):
    raise CheckpointKeyError(f"{source}: {len(layers)} LPIPS heads for a backbone with {len(channels)} taps "
                             f"(widths {tuple(channels)})")
  reader = StateDictReader(state_dict, source)
  heads = []
  for k in layers:
    key = f"lin{k}.model.1.weight"
    width = channels[k] if channels is not None else state_dict[key].shape[1]
    heads.append(reader.take(key, (1, width, 1, 1)).reshape(-1))
  reader.finish()
  return tuple(heads)


def load_lpips_heads(path: str | os.PathLike, channels: Optional[tuple[int, ...]] = None) -> tuple[np.ndarray, ...]:
  """Head weights from an lpips `.pth` file (read without torch)."""
  return convert_lpips_heads(flatten_state_dict(load_torch_file(path)), str(path), channels)
