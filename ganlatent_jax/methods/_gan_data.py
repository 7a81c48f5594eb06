"""The GAN methods' data (shared code of methods/, beside the engine `_gan.py`): the training dataset a config names,
real image draws that a multi-process run splits by rows, the model's [-1, 1] range, and the scores of a method's
representation of real images (Q heads, siamese embeddings, encoder means) on that dataset."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

DCI_BATCH = 64   # images per represent() call while DCI collects codes (a Q with minibatch stddev needs whole groups)


def make_dataset(name: str, **kwargs):
  """A ground-truth dataset of `ganlatent_jax.data` (config.data: name, source='procedural', kwargs)."""
  from ganlatent_jax import data
  kwargs.pop("mirror", None)   # an augmentation of the engine (Engine.real_batch), not a dataset option
  return data.get_dataset(name, **kwargs)


def dataset_from_config(config):
  """The dataset of `config.data` (name + the dataset's keyword arguments): what a GAN method trains on."""
  return make_dataset(config.data.name, **{k: v for k, v in dict(config.data).items() if k != "name"})


def real_images(dataset, num: int, rng: np.random.RandomState, rows: slice = slice(None)) -> np.ndarray:
  """Rows `rows` of `num` real images in [0, 1] drawn with `rng`, from a ground-truth dataset (factors drawn for all
  `num`, then only the chosen rows rendered — or, for TFDS, their records chosen for all and read for the rows) or
  an image-only source (`sample_images`: CelebA from TFDS). The draws do not depend on `rows`, so every process of
  a multi-process run reads its own part of the same global batch; rows=all is `dataset.sample(num, rng)[1]`."""
  if hasattr(dataset, "sample_factors"):
    factors = dataset.sample_factors(num, rng)
    if hasattr(dataset, "records_for_factors"):   # TFDS: choose every row's record, read only ours
      return dataset.read_observations(dataset.records_for_factors(factors, rng)[rows])
    return dataset.sample_observations_from_factors(factors[rows], rng)
  if hasattr(dataset, "images"):                   # TfdsImages: sample_images draws record indices, then reads
    return dataset.images(rng.randint(len(dataset), size=num)[rows])
  if hasattr(dataset, "sample_images"):
    return dataset.sample_images(num, rng)[rows]
  return dataset.sample(num, rng)[1][rows]


def has_factors(dataset) -> bool:
  """Whether a dataset has ground-truth factor labels (the representation scores need them)."""
  return hasattr(dataset, "sample") and hasattr(dataset, "factors_num_values")


def to_model_range(images01: np.ndarray) -> np.ndarray:
  return (np.asarray(images01, np.float32) * 2.0 - 1.0)


def representation_scores(dataset, represent: Callable, metrics, protocol, seed: int) -> dict[str, Any]:
  """Scores of a GAN method's representation of real images (InfoGAN's and PS-SC's Q, UD-GAN's siamese outputs)
  on the training dataset, each metric from its own RandomState(seed): 'mig' (on `mig_num_points` images; a
  too-small sample gives 'mig_error'), 'factor_vae' (`factor_vae_*` budgets, `factor_vae_prune_threshold` where
  given), 'beta_vae' (`beta_vae_*`), 'dci' (disentanglement, completeness, informativeness on `dci_num_train` /
  `dci_num_test` images)."""
  from ganlatent_jax.metrics import disentanglement
  results: dict[str, Any] = {}
  if "beta_vae" in metrics:
    results["beta_vae"] = disentanglement.beta_vae_score(
        dataset, represent, np.random.RandomState(seed), batch_size=int(protocol.beta_vae_batch_size),
        num_train=int(protocol.beta_vae_num_train), num_eval=int(protocol.beta_vae_num_eval))
  if "mig" in metrics:
    factors, images = dataset.sample(int(protocol.mig_num_points), np.random.RandomState(seed))
    codes = np.concatenate([represent(images[i:i + 256]) for i in range(0, len(images), 256)])
    try:
      results["mig"] = disentanglement.mig_from_arrays(codes, factors)["mig"]
    except ValueError as e:  # e.g. too few points for every factor to vary
      results["mig_error"] = str(e)
  if "factor_vae" in metrics:
    prune = protocol.get("factor_vae_prune_threshold")
    results["factor_vae"] = disentanglement.factor_vae_score(
        dataset, represent, np.random.RandomState(seed), batch_size=int(protocol.factor_vae_batch_size),
        num_train=int(protocol.factor_vae_num_train), num_eval=int(protocol.factor_vae_num_eval),
        num_variance_estimate=int(protocol.factor_vae_num_variance),
        **({} if prune is None else {"prune_threshold": float(prune)}))
  if "dci" in metrics:
    results["dci"] = disentanglement.dci(dataset, represent, np.random.RandomState(seed),
                                         num_train=int(protocol.dci_num_train), num_test=int(protocol.dci_num_test),
                                         batch_size=DCI_BATCH)
  return results
