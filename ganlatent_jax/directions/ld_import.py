"""LD (Voynov & Babenko) deformators as `Directions`: from a deformator file, an upstream run folder, or a module.

A linear-type deformator ('linear', 'proj', 'ortho', 'random', 'id') maps the basis shift ε·e_k to ε·M[:, k] (plus a
constant bias for 'linear'/'proj'), so its directions are the columns of M (`port.ld.deformator_direction_matrix`).
Column lengths are kept: a traversal by ε then moves the latent exactly as the deformator did during training, so
traversal spans are in the same units as LD's shift magnitudes. The exception is 'proj', whose output is rescaled to
|ε|: its columns are normalised, which reproduces that shift exactly. The bias of 'linear'/'proj' is a constant
offset added to every shifted latent, not part of any direction; it is dropped (its norm is recorded in `meta`).
A non-linear 'fc' deformator has no matrix: importing one raises a ValueError saying so.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import numpy as np

from ganlatent_jax.directions.base import Directions
from ganlatent_jax.port import ld as ld_port

__all__ = ["directions_from_deformator", "load_deformator_directions", "load_run_directions", "run_latent_space"]


def directions_from_deformator(module, variables, *, space: str = "z", layers=None,
                               meta: Optional[Mapping[str, Any]] = None) -> Directions:
  """The directions of a (`nets.ld.LatentDeformator` module, variables) pair; see the module docstring."""
  matrix = np.asarray(ld_port.deformator_direction_matrix(module, variables), np.float32)
  norms = np.linalg.norm(matrix, axis=0)
  info: dict[str, Any] = dict(method="ld", deformator=module.type, k=int(matrix.shape[1]),
                              column_norms=[float(n) for n in norms])
  if module.type == "proj":
    matrix = matrix / np.maximum(norms, 1e-12)[None, :]
  if module.type in ("linear", "proj"):
    info["bias_norm"] = float(np.linalg.norm(np.asarray(variables["params"]["linear"]["bias"])))
  return Directions(matrix, space=space, layers=layers, meta={**info, **dict(meta or {})})


def load_deformator_directions(path: str | os.PathLike, type: str, *, space: str = "z",
                               latent_dim: Optional[int] = None, input_dim: Optional[int] = None,
                               random_matrix: Optional[np.ndarray] = None) -> Directions:
  """A `deformator_<step>.pt` file → Directions (latent_dim pads/truncates the rows to the generator's latent size;
  'id' needs latent_dim or input_dim, 'random' its matrix, which upstream never saves)."""
  module, variables = ld_port.load_deformator(path, type, input_dim=input_dim, shift_dim=latent_dim,
                                              random_matrix=random_matrix)
  return directions_from_deformator(module, variables, space=space, meta=dict(source=os.fspath(path)))


def run_latent_space(args: Mapping[str, Any]) -> str:
  """Where an upstream run's deformator shifts: W for StyleGAN2 with `w_shift` (upstream's default), else z."""
  is_stylegan2 = str(args.get("gan_type") or "").lower().startswith("stylegan2")
  return "w" if is_stylegan2 and args.get("w_shift", True) else "z"


def load_run_directions(run_dir: str | os.PathLike, step: Optional[int] = None, *, latent_dim: Optional[int] = None,
                        random_matrix: Optional[np.ndarray] = None, space: Optional[str] = None) -> Directions:
  """An upstream `run_train.py` results folder → Directions of its deformator (latest saved step by default).

  `space` defaults to the run's own (`run_latent_space`); meta records the run folder, step, gan_type and weights.
  """
  run = ld_port.load_ld_run(run_dir, step, latent_dim=latent_dim, random_matrix=random_matrix)
  meta = dict(source=os.fspath(run_dir), step=run.step, gan_type=run.args.get("gan_type"),
              generator=run.generator_path or run.args.get("gan_weights"))
  return directions_from_deformator(run.deformator, run.deformator_variables,
                                    space=space or run_latent_space(run.args), meta=meta)
