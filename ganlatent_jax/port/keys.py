"""Bookkeeping shared by every converter: which upstream keys were used, missing, unexpected or mis-shaped.

A converter reads a flat upstream state dict through a `StateDictReader`, taking each key it needs (and saying what
layout change it applies). `finish()` then refuses the checkpoint if any key was missing or left unused, and
`check_tree_shapes` compares the converted tree with the module's abstract init, naming each mismatch.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Iterable

import jax
import numpy as np


class CheckpointKeyError(ValueError):
  """Missing, unexpected or mis-shaped keys, all listed by name."""


class StateDictReader:

  def __init__(self, state_dict: dict[str, np.ndarray], source: str):
    self.state_dict = state_dict
    self.source = source
    self.used: set[str] = set()
    self.missing: list[str] = []
    self.misshaped: list[str] = []

  def has(self, key: str) -> bool:
    return key in self.state_dict

  def take(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The array at `key` (float32 unless integer), recorded as used; a placeholder if missing (reported later)."""
    if key not in self.state_dict:
      self.missing.append(key)
      return np.zeros(shape or (0,), np.float32)
    self.used.add(key)
    value = np.asarray(self.state_dict[key])
    if shape is not None and tuple(value.shape) != tuple(shape):
      self.misshaped.append(f"{key}: checkpoint {tuple(value.shape)}, expected {tuple(shape)}")
    if value.dtype.kind == "f":
      value = value.astype(np.float32)
    return value

  def ignore(self, patterns: Iterable[str]) -> None:
    """Marks keys matching the glob patterns as deliberately unused (duplicated tensors, unused heads...)."""
    for key in self.state_dict:
      if any(fnmatch.fnmatchcase(key, p) for p in patterns):
        self.used.add(key)

  def finish(self) -> None:
    unexpected = sorted(set(self.state_dict) - self.used)
    problems = []
    if self.missing:
      problems.append(f"missing keys: {sorted(set(self.missing))}")
    if unexpected:
      problems.append(f"unexpected keys: {unexpected}")
    if self.misshaped:
      problems.append(f"mis-shaped keys: {self.misshaped}")
    if problems:
      raise CheckpointKeyError(f"{self.source}: checkpoint does not match the architecture — " + "; ".join(problems))


def _flat_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in leaves}


def check_tree_shapes(expected: Any, converted: Any, source: str) -> None:
  """Raises `CheckpointKeyError` naming every param path missing, extra or of a different shape."""
  want, got = _flat_shapes(expected), _flat_shapes(converted)
  missing = sorted(set(want) - set(got))
  extra = sorted(set(got) - set(want))
  misshaped = [f"{k}: converted {got[k]}, module expects {want[k]}" for k in sorted(set(want) & set(got))
               if want[k] != got[k]]
  problems = []
  if missing:
    problems.append(f"params missing after conversion: {missing}")
  if extra:
    problems.append(f"params the module does not have: {extra}")
  if misshaped:
    problems.append(f"mis-shaped params: {misshaped}")
  if problems:
    raise CheckpointKeyError(f"{source}: " + "; ".join(problems))


# Layout changes, written down once.
def conv_oihw_to_hwio(w: np.ndarray) -> np.ndarray:
  """PyTorch conv weight (out, in, kh, kw) → (kh, kw, in, out)."""
  return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))


def conv_transpose_iohw_to_hwio(w: np.ndarray) -> np.ndarray:
  """PyTorch conv_transpose weight (in, out, kh, kw) → (kh, kw, in, out) (no flip; see nets.layers)."""
  return np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1)))


def linear_to_dense(w: np.ndarray) -> np.ndarray:
  """PyTorch Linear weight (out, in) → (in, out)."""
  return np.ascontiguousarray(w.T)


def spectral_normalize(weight_orig: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Eval-mode spectral norm: W / σ with σ = u · (W_mat v) from the stored vectors (no power iteration, no SVD)."""
  w_mat = weight_orig.reshape(weight_orig.shape[0], -1).astype(np.float64)
  sigma = float(np.dot(u.astype(np.float64), w_mat @ v.astype(np.float64)))
  return (weight_orig / sigma).astype(np.float32)
