"""`Directions`: K unit directions in a generator's latent space, with where they live and where they came from.

The matrix holds the directions as columns (latent_dim × K). `space` is 'z', 'w' or 'w+'; for 'w+' the shift is
applied to the W+ layers `layers = (start, stop)` only (all layers when None). Provenance (`meta`) is a JSON-able dict:
method, generator source, hyper-parameters, eigenvalues or stds, date.
"""
from __future__ import annotations

import dataclasses
import json
import os
from io import BytesIO as _BytesIO   # the stdlib module; `io` below is ganlatent_jax.io
from typing import Any

import jax.numpy as jnp
import numpy as np

from ganlatent_jax import io

SPACES = ("z", "w", "w+")


@dataclasses.dataclass(frozen=True)
class Directions:
  matrix: np.ndarray
  space: str = "z"
  layers: tuple[int, int] | None = None
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    matrix = np.asarray(self.matrix, np.float32)
    if matrix.ndim != 2:
      raise ValueError(f"Directions.matrix must be 2-D (latent_dim × K), got shape {matrix.shape}")
    if self.space not in SPACES:
      raise ValueError(f"Directions.space must be one of {SPACES}, got {self.space!r}")
    if self.layers is not None and (self.space != "w+" or len(self.layers) != 2 or self.layers[0] >= self.layers[1]):
      raise ValueError(f"Directions.layers={self.layers!r}: a (start, stop) range, only for space 'w+'")
    object.__setattr__(self, "matrix", matrix)
    if self.layers is not None:
      object.__setattr__(self, "layers", (int(self.layers[0]), int(self.layers[1])))

  @property
  def latent_dim(self) -> int:
    return self.matrix.shape[0]

  @property
  def num_directions(self) -> int:
    return self.matrix.shape[1]

  def normalized(self) -> "Directions":
    norms = np.linalg.norm(self.matrix, axis=0, keepdims=True)
    return dataclasses.replace(self, matrix=self.matrix / np.maximum(norms, 1e-12))

  def select(self, indices) -> "Directions":
    return dataclasses.replace(self, matrix=self.matrix[:, list(indices)])

  def with_meta(self, **meta) -> "Directions":
    return dataclasses.replace(self, meta={**self.meta, **meta})

  def shift(self, latents, coefficients):
    """latents + D·coefficients. latents (B, D) for z/w, (B, L, D) for w+; coefficients (B, K).

    Works on numpy or jax arrays (jit-safe: the matrix is a constant).
    """
    return shift_latents(latents, jnp.asarray(self.matrix), coefficients, self.layers)

  def save(self, path: str | os.PathLike) -> None:
    """Writes an .npz atomically (matrix, space, layers, meta as JSON) through io.open_atomic (0644, process 0)."""
    with io.open_atomic(os.fspath(path), "wb") as f:
      np.savez(f, matrix=self.matrix, space=np.array(self.space),
               layers=np.array(self.layers if self.layers is not None else (-1, -1)),
               meta=np.array(json.dumps(self.meta, default=_json_default)))

  @classmethod
  def load(cls, path: str | os.PathLike) -> "Directions":
    path = os.fspath(path)
    try:
      # np.load wants a local file or a seekable object: a gs:// file's bytes are read into memory first.
      source = _BytesIO(io.read_bytes(path)) if io.is_remote(path) else path
      with np.load(source, allow_pickle=False) as data:
        layers = tuple(int(v) for v in data["layers"])
        return cls(matrix=data["matrix"], space=str(data["space"]),
                   layers=None if layers == (-1, -1) else layers, meta=json.loads(str(data["meta"])))
    except (OSError, KeyError, ValueError) as e:
      raise ValueError(f"{path}: not a directions file written by Directions.save ({e})") from e


def _json_default(value):
  if isinstance(value, (np.ndarray, jnp.ndarray)):
    return np.asarray(value).tolist()
  if isinstance(value, np.generic):
    return value.item()
  raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def shift_latents(latents, matrix, coefficients, layers: tuple[int, int] | None = None):
  """latents + matrix·coefficients; for W+ latents (B, L, D) only on layers [start, stop) (all when None).

  The matrix may be a traced array (methods that learn directions differentiate through this).
  """
  delta = coefficients @ matrix.T  # (B, D)
  if latents.ndim == 2:
    return latents + delta
  if latents.ndim != 3:
    raise ValueError(f"latents must be (B, D) or (B, L, D), got shape {latents.shape}")
  num_layers = latents.shape[1]
  start, stop = layers or (0, num_layers)
  mask = jnp.zeros((num_layers,), latents.dtype).at[start:stop].set(1.0)
  return latents + delta[:, None, :] * mask[None, :, None]


def orthonormalize(matrix):
  """Q of the QR decomposition with the sign fix (columns × sign(diag R), 0 → +1): a deterministic retraction."""
  q, r = jnp.linalg.qr(matrix)
  signs = jnp.sign(jnp.diagonal(r))
  signs = jnp.where(signs == 0, 1.0, signs)
  return q * signs[None, :]


def load(path: str | os.PathLike) -> Directions:
  return Directions.load(path)
