"""Random orthonormal directions: the baseline, and SRE's random initialisation."""
from __future__ import annotations

import jax
import numpy as np

from ganlatent_jax.directions.base import Directions, orthonormalize


def random(latent_dim: int, k: int, rng: jax.Array, space: str = "z", layers=None) -> Directions:
  """k orthonormal directions, uniformly distributed (QR of a Gaussian matrix with the sign fix)."""
  if k > latent_dim:
    raise ValueError(f"cannot draw k={k} orthonormal directions in a {latent_dim}-dimensional space")
  matrix = np.asarray(orthonormalize(jax.random.normal(rng, (latent_dim, k))))
  return Directions(matrix, space=space, layers=layers, meta=dict(method="random", k=k))
