"""Converter for PyPI `pytorch-pretrained-biggan` checkpoints (BigGAN-deep 128/256/512) → `generators.biggan`.

Accepted inputs:
  * a directory holding `config.json` + `pytorch_model.bin` (what `BigGAN.from_pretrained(dir)` reads);
  * a state-dict file (`.bin`/`.pth`/`.pt`, zip or legacy torch format) with its config found next to it:
    `config.json` in the same directory, or the S3 cache naming `<name>-config.json` beside `<name>-pytorch_model.bin`,
    or `<stem>.json` / `<stem>-config.json` / `<stem>_config.json`. Elsewhere, call
    `convert(path, config_path=...)` directly (`generators.load` has no way to pass it).
The up-sampling flags of `layers` are not recoverable from the weights, so a config is required; every size in it is
checked against the checkpoint's tensors (mismatches are named by key).

Spectral norm is applied here, in eval mode: W = weight_orig / σ, σ = u · (W_mat v) with the stored u, v.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ganlatent_jax.generators import biggan as family
from ganlatent_jax.port import keys
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file

NAME = "biggan_pretrained"
WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"
_SIGNATURE_KEYS = ("embeddings.weight", "generator.gen_z.weight_orig")


# ----------------------------------------------------------------------------------------------------------------
# Locating the files.

def _config_candidates(weights_path: str) -> list[str]:
  directory, filename = os.path.split(os.path.abspath(weights_path))
  stem = os.path.splitext(filename)[0]
  names = [CONFIG_NAME]
  if filename.endswith(WEIGHTS_NAME) and filename != WEIGHTS_NAME:  # 'biggan-deep-128-pytorch_model.bin'
    names.append(filename[:-len(WEIGHTS_NAME)] + CONFIG_NAME)
  names += [f"{stem}.json", f"{stem}-{CONFIG_NAME}", f"{stem}_{CONFIG_NAME}"]
  return [os.path.join(directory, name) for name in names]


def locate(path: str, config_path: str | None = None) -> tuple[str, str]:
  """(weights file, config file) for a checkpoint directory or state-dict file."""
  path = os.fspath(path)
  if os.path.isdir(path):
    weights = os.path.join(path, WEIGHTS_NAME)
    candidates = [os.path.join(path, CONFIG_NAME)]
  else:
    weights = path
    candidates = _config_candidates(path)
  if not os.path.exists(weights):
    raise FileNotFoundError(f"{path}: no BigGAN weights file {weights}")
  if config_path is not None:
    candidates = [os.fspath(config_path)]
  for candidate in candidates:
    if os.path.isfile(candidate):
      return weights, candidate
  raise FileNotFoundError(f"{path}: BigGAN config.json not found (looked for {candidates}); the up-sampling layout "
                          f"cannot be read from the weights — pass config_path= to generators.formats.biggan_pretrained.convert")


def read_upstream_config(config_file: str) -> dict[str, Any]:
  try:
    with open(config_file, encoding="utf-8") as f:
      raw = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{config_file}: unreadable BigGAN config ({e})") from e
  if not isinstance(raw, dict):
    raise ValueError(f"{config_file}: a BigGAN config must be a JSON object")
  try:
    return family.normalize_config(raw)
  except ValueError as e:
    raise ValueError(f"{config_file}: {e}") from e


def sniff(path: str, checkpoint) -> bool:
  if checkpoint is None:
    if not (os.path.isdir(path) and os.path.isfile(os.path.join(path, WEIGHTS_NAME))):
      return False
    try:
      with open(os.path.join(path, CONFIG_NAME), encoding="utf-8") as f:
        raw = json.load(f)
    except (OSError, ValueError):
      return False
    return isinstance(raw, dict) and {"layers", "channel_width", "n_stats"} <= set(raw)
  if not isinstance(checkpoint, dict):
    return False
  return all(key in checkpoint for key in _SIGNATURE_KEYS)


# ----------------------------------------------------------------------------------------------------------------
# The key map: every upstream module, where it goes in our tree, and how its layout changes.

def _set(tree: dict, path: tuple[str, ...], value) -> None:
  for name in path[:-1]:
    tree = tree.setdefault(name, {})
  tree[path[-1]] = value


class _Converter:

  def __init__(self, state_dict: dict[str, np.ndarray], config: dict[str, Any], source: str):
    self.reader = keys.StateDictReader(state_dict, source)
    self.config = config
    self.params: dict = {}
    self.stats: dict = {}
    self.sigmas: dict[str, float] = {}

  def sn_weight(self, prefix: str, shape: tuple[int, ...]) -> np.ndarray:
    """Eval-mode spectral-normed weight of upstream module `prefix` (PyTorch layout)."""
    expected = {"weight_orig": shape, "weight_u": (shape[0],), "weight_v": (int(np.prod(shape[1:])),)}
    present = all(self.reader.has(f"{prefix}.{name}") for name in expected)
    weight_orig, u, v = (self.reader.take(f"{prefix}.{name}", s) for name, s in expected.items())
    if not present or (weight_orig.shape, u.shape, v.shape) != tuple(expected.values()):
      return np.zeros(shape, np.float32)  # missing or mis-shaped: reported by finish()
    weight = keys.spectral_normalize(weight_orig, u, v)
    # σ as the converted weight carries it (not recomputed), for checks against upstream's values.
    self.sigmas[prefix] = float(np.linalg.norm(weight_orig.astype(np.float64)) /
                                np.linalg.norm(weight.astype(np.float64)))
    return weight

  def sn_linear(self, prefix: str, path: tuple[str, ...], in_features: int, out_features: int, bias: bool):
    _set(self.params, path + ("kernel",), keys.linear_to_dense(self.sn_weight(prefix, (out_features, in_features))))
    if bias:
      _set(self.params, path + ("bias",), self.reader.take(f"{prefix}.bias", (out_features,)))

  def sn_conv(self, prefix: str, path: tuple[str, ...], in_channels: int, out_channels: int, size: int, bias: bool):
    weight = self.sn_weight(prefix, (out_channels, in_channels, size, size))
    _set(self.params, path + ("kernel",), keys.conv_oihw_to_hwio(weight))
    if bias:
      _set(self.params, path + ("bias",), self.reader.take(f"{prefix}.bias", (out_channels,)))

  def statistics(self, prefix: str, path: tuple[str, ...], channels: int):
    n_stats = self.config["n_stats"]
    for name in ("running_means", "running_vars"):
      _set(self.stats, path + (name,), self.reader.take(f"{prefix}.{name}", (n_stats, channels)))

  def conditional_bn(self, prefix: str, path: tuple[str, ...], channels: int):
    self.statistics(prefix, path, channels)
    cond_dim = 2 * self.config["z_dim"]
    for name in ("scale", "offset"):
      self.sn_linear(f"{prefix}.{name}", path + (name,), cond_dim, channels, bias=False)

  def run(self) -> dict:
    cfg = self.config
    ch, z_dim = cfg["channel_width"], cfg["z_dim"]
    embedding = self.reader.take("embeddings.weight", (z_dim, cfg["num_classes"]))
    _set(self.params, ("embeddings", "kernel"), keys.linear_to_dense(embedding))
    self.sn_linear("generator.gen_z", ("gen_z",), 2 * z_dim, 4 * 4 * 16 * ch, bias=True)
    for i, spec in enumerate(family.layer_plan(cfg)):
      prefix, path = f"generator.layers.{i}", (f"layers_{i}",)
      if spec.kind == "attention":
        c = spec.in_channels
        for name, c_in, c_out in (("theta", c, c // 8), ("phi", c, c // 8), ("g", c, c // 2), ("o_conv", c // 2, c)):
          self.sn_conv(f"{prefix}.snconv1x1_{name}", path + (name,), c_in, c_out, 1, bias=False)
        gamma = self.reader.take(f"{prefix}.gamma", (1,))
        _set(self.params, path + ("gamma",), gamma.reshape(()) if gamma.shape == (1,) else np.zeros((), np.float32))
        continue
      mid = spec.middle_channels
      convs = ((spec.in_channels, mid, 1), (mid, mid, 3), (mid, mid, 3), (mid, spec.out_channels, 1))
      for k, (c_in, c_out, size) in enumerate(convs):
        self.conditional_bn(f"{prefix}.bn_{k}", path + (f"bn_{k}",), c_in)
        self.sn_conv(f"{prefix}.conv_{k}", path + (f"conv_{k}",), c_in, c_out, size, bias=True)
    self.statistics("generator.bn", ("bn",), ch)
    _set(self.params, ("bn", "scale"), self.reader.take("generator.bn.weight", (ch,)))
    _set(self.params, ("bn", "bias"), self.reader.take("generator.bn.bias", (ch,)))
    self.sn_conv("generator.conv_to_rgb", ("conv_to_rgb",), ch, ch, 3, bias=True)
    self.reader.finish()
    return {"params": self.params, "batch_stats": self.stats}


def convert_state_dict(state_dict: dict[str, np.ndarray], config: dict[str, Any], source: str = "BigGAN state dict",
                       ) -> tuple[dict, dict[str, float]]:
  """Flat upstream state dict + normalized config → (variables, {upstream SN module: eval-mode σ})."""
  converter = _Converter(state_dict, config, source)
  variables = converter.run()
  return variables, converter.sigmas


def convert(path: str, checkpoint=None, *, config_path: str | None = None) -> tuple[dict[str, Any], dict]:
  """A checkpoint directory or state-dict file (+ config.json, see the module docstring) → (config, variables)."""
  path = os.fspath(path)
  weights, config_file = locate(path, config_path)
  if checkpoint is None:
    checkpoint = load_torch_file(weights)
  if not isinstance(checkpoint, dict):
    raise ValueError(f"{weights}: expected a BigGAN state dict, got {type(checkpoint).__name__}")
  config = read_upstream_config(config_file)
  variables, _ = convert_state_dict(flatten_state_dict(checkpoint), config, source=weights)
  return config, variables


__all__ = ["NAME", "convert", "convert_state_dict", "locate", "read_upstream_config", "sniff"]
