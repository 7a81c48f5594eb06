"""Disentanglement, control, rescoring and generator metrics (disentanglement_lib semantics and defaults)."""
from ganlatent_jax.metrics.control import control_measure, edited_latents, sprite_estimator, sprite_statistics
from ganlatent_jax.metrics.disentanglement import (beta_vae_score, dci, dci_from_arrays, factor_vae_score, mig,
                                                   mig_from_arrays, mig_per_factor)
from ganlatent_jax.metrics.generator_metrics import (feature_statistics, frechet_distance, perceptual_path_length,
                                                     traversal_perceptual_length)
from ganlatent_jax.metrics.rescoring import rescoring_matrix, rescoring_summary

__all__ = ["beta_vae_score", "control_measure", "dci", "dci_from_arrays", "edited_latents", "factor_vae_score",
           "feature_statistics", "frechet_distance", "mig", "mig_from_arrays", "mig_per_factor",
           "perceptual_path_length",
           "rescoring_matrix", "rescoring_summary", "sprite_estimator", "sprite_statistics",
           "traversal_perceptual_length"]
