"""Directions in latent spaces: the `Directions` type and the discovery baselines (SeFa, GANSpace, random, LD import)."""
from ganlatent_jax.directions.base import Directions, load, orthonormalize
from ganlatent_jax.directions.pca import ganspace
from ganlatent_jax.directions.random_directions import random
from ganlatent_jax.directions.closed_form import sefa
from ganlatent_jax.directions.ld_import import (directions_from_deformator, load_deformator_directions,
                                                load_run_directions)

__all__ = ["Directions", "directions_from_deformator", "ganspace", "load", "load_deformator_directions",
           "load_run_directions", "orthonormalize", "random", "sefa"]
