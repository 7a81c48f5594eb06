"""Directions in latent spaces: the `Directions` type and the discovery baselines (SeFa, GANSpace, random, LD import)."""
from ganlatent_jax.directions.base import Directions, load, orthonormalize
from ganlatent_jax.directions.pca import ganspace
from ganlatent_jax.directions.random_directions import random
from ganlatent_jax.directions.closed_form import sefa

__all__ = ["Directions", "ganspace", "load", "orthonormalize", "random", "sefa"]
