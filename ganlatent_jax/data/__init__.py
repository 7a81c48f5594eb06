"""Ground-truth datasets with the disentanglement_lib interface, and image sources.

    from ganlatent_jax import data
    dataset = data.get_dataset("shapes3d")                   # procedural, no download
    factors, images = dataset.sample(64, np.random.RandomState(0))
    real = data.get_dataset("shapes3d", source="tfds")       # the real data, prepared once with TFDS
    faces = data.get_dataset("celeb_a", source="tfds", size=64)

Ground-truth datasets have num_factors, factor_names, factors_num_values, observation_shape, sample_factors,
sample_observations_from_factors, sample and sample_observations; image sources have sample_images and
iterate_batches. Nothing here touches jax: everything is numpy with an explicit numpy RandomState.
"""
from __future__ import annotations

# The modules are named *_procedural so that the functions `shapes3d` / `dsprites` below do not shadow them.

import inspect
from typing import Any, Callable

from ganlatent_jax.data.base import GroundTruthData, hsv_hue_to_rgb
from ganlatent_jax.data.dsprites_procedural import DSprites, render_dsprites
from ganlatent_jax.data.shapes3d_procedural import Shapes3D, render_shapes3d

SOURCES = ("procedural", "tfds")


def shapes3d(source: str = "procedural", **kwargs: Any):
  """3DShapes: 'procedural' (kwargs resolution=64, supersample=2) or 'tfds' (split, data_dir, download, index_dir)."""
  return get_dataset("shapes3d", source=source, **kwargs)


def dsprites(source: str = "procedural", **kwargs: Any):
  """dSprites: 'procedural' (DSprites()) or 'tfds' (split, data_dir, download, index_dir)."""
  return get_dataset("dsprites", source=source, **kwargs)


def celeb_a(source: str = "tfds", **kwargs: Any):
  """CelebA images (no factors) through TFDS: size, crop, split, data_dir, download."""
  return get_dataset("celeb_a", source=source, **kwargs)


def _tfds_ground_truth(name: str) -> Callable[..., Any]:
  def make(**kwargs):
    from ganlatent_jax.data.tfds_sources import TfdsGroundTruthData  # imports tensorflow_datasets lazily
    return TfdsGroundTruthData(name, **kwargs)
  return make


def _tfds_images(name: str) -> Callable[..., Any]:
  def make(**kwargs):
    from ganlatent_jax.data.tfds_sources import TfdsImages
    return TfdsImages(name, **kwargs)
  return make


# name -> source -> factory(**kwargs)
DATASETS: dict[str, dict[str, Callable[..., Any]]] = {
    "shapes3d": {"procedural": Shapes3D, "tfds": _tfds_ground_truth("shapes3d")},
    "dsprites": {"procedural": DSprites, "tfds": _tfds_ground_truth("dsprites")},
    "celeb_a": {"tfds": _tfds_images("celeb_a")},
}


def get_dataset(name: str, source: str = "procedural", **kwargs: Any):
  """The dataset `name` from `source` (a config's `dataset: {name, source, ...kwargs}`)."""
  if name not in DATASETS:
    raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
  if source not in DATASETS[name]:
    raise ValueError(f"dataset {name!r} has no source {source!r}; available: {sorted(DATASETS[name])}")
  factory = DATASETS[name][source]
  parameters = inspect.signature(factory).parameters
  if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
      raise ValueError(f"dataset {name!r} ({source}) has no option(s) {unknown}; its options: {sorted(parameters)}")
  return factory(**kwargs)


__all__ = ["DATASETS", "SOURCES", "DSprites", "GroundTruthData", "Shapes3D", "celeb_a", "dsprites", "get_dataset",
           "hsv_hue_to_rgb", "render_dsprites", "render_shapes3d", "shapes3d"]
