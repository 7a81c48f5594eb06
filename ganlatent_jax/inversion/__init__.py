"""GAN inversion by optimisation: the blurred loss, masked image transformations, jitted batched projected-Adam
inversion and recursive trajectories (Plumerault et al., ICLR 2020). Fits no directions and writes no files."""
from ganlatent_jax.inversion.losses import blur, blur_matrix, blurred_loss, gaussian_taps
from ganlatent_jax.inversion.optimize import (SCHEMES, InversionSettings, TrajectoryRecords, convergence, default_radius,
                                              discard_worst, invert, project_ball, trajectories)
from ganlatent_jax.inversion.transforms import TRANSFORMS, apply as transform

__all__ = ["InversionSettings", "SCHEMES", "TRANSFORMS", "TrajectoryRecords", "blur", "blur_matrix", "blurred_loss",
           "convergence", "default_radius", "discard_worst", "gaussian_taps", "invert", "project_ball", "trajectories", "transform"]
