"""LPIPS from files: the linear-head weights (the `lpips` package's `weights/v0.x/<net>.pth`) → per-layer channel
weights, and `load_lpips` / `default_lpips`, which read torchvision's VGG16 and build `nets.lpips.LPIPS`.

The real heads of lpips 0.1.4 ship with this package (ganlatent_jax/assets/lpips/v0.{0,1}/{vgg,alex,squeeze}.pth,
BSD-2-Clause, see third_party/lpips/LICENSE). Each file holds `lin{k}.model.1.weight` of shape (1, C_k, 1, 1): a 1×1
conv without bias (`model.0` is a Dropout, hence index 1). We keep them as (C_k,) vectors.
"""
from __future__ import annotations

import functools
import os
import pathlib
import re
from typing import Optional, Sequence

import numpy as np

from ganlatent_jax.nets.lpips import LPIPS, make_lpips
from ganlatent_jax.nets.vgg import build_vgg
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file
from ganlatent_jax.port.torchvision import convert_vgg

VGG16_PATH_ENV = "GANLATENT_VGG16_PATH"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

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


def lpips_from_vgg_state_dict(vgg_state_dict: dict[str, np.ndarray], source: str, *, version: str = "0.1",
                              heads: Optional[Sequence[np.ndarray]] | str = "shipped") -> LPIPS:
  """LPIPS from a flat torchvision VGG state dict. `heads`: "shipped" (lpips 0.1.4 vgg heads of `version`), a
  sequence of (C,) arrays, or None for the baseline (lpips=False)."""
  if version not in VERSIONS:
    raise ValueError(f"LPIPS version must be '0.0' or '0.1', got {version!r}")
  config, variables = convert_vgg(vgg_state_dict, source, keep_classifier=False)
  backbone = build_vgg(config)
  if isinstance(heads, str):
    if heads != "shipped":
      raise ValueError(f"heads must be 'shipped', a sequence of arrays or None, got {heads!r}")
    widths = tuple(block[-1] for block in backbone.block_widths)
    heads = load_lpips_heads(shipped_heads_path("vgg", version), channels=widths)
  return make_lpips(backbone, variables, heads, version=version, source=source)


def resolve_vgg16_path(vgg16_path: Optional[str | os.PathLike] = None) -> str:
  """The torchvision VGG16 file: the argument, else $GANLATENT_VGG16_PATH; a clear error if neither exists."""
  path = vgg16_path if vgg16_path is not None else os.environ.get(VGG16_PATH_ENV)
  if not path:
    raise FileNotFoundError(
        "LPIPS needs torchvision's ImageNet-pretrained VGG16 weights, which are not shipped with ganlatent_jax and "
        f"are not downloaded automatically. Get `vgg16-397923af.pth` (torchvision VGG16_Weights.IMAGENET1K_V1, "
        f"{VGG16_URL}; also in ~/.cache/torch/hub/checkpoints/ after any torchvision use) and pass its path as "
        f"`vgg16_path=` or set the environment variable {VGG16_PATH_ENV}.")
  if not os.path.isfile(path):
    source = "vgg16_path" if vgg16_path is not None else f"${VGG16_PATH_ENV}"
    raise FileNotFoundError(f"{source} points to {str(path)!r}, which is not a file (expected torchvision's "
                            f"vgg16-397923af.pth, {VGG16_URL})")
  return str(path)


def load_lpips(vgg16_path: Optional[str | os.PathLike] = None, *, version: str = "0.1",
               heads: Optional[Sequence[np.ndarray]] | str = "shipped") -> LPIPS:
  """LPIPS-VGG from torchvision's `vgg16-397923af.pth` (see `resolve_vgg16_path`) and the shipped heads."""
  path = resolve_vgg16_path(vgg16_path)
  return lpips_from_vgg_state_dict(flatten_state_dict(load_torch_file(path)), path, version=version, heads=heads)


@functools.lru_cache(maxsize=2)
def _default_lpips(path: str) -> LPIPS:
  return load_lpips(path)


def default_lpips() -> LPIPS:
  """The v0.1 LPIPS-VGG with the VGG16 from $GANLATENT_VGG16_PATH, loaded once per process."""
  return _default_lpips(resolve_vgg16_path())
