"""Generated-domain scores of latent directions: disentanglement measured on the generator's own samples.

The encoder protocol (`metrics.encoder_protocol`) trains an encoder on generated images and scores it on real ones;
its numbers mix the directions with the encoder and with the transfer from generated to real images. Here nothing is
learnt: latents are sampled, each sample's code is its coordinates along the directions (⟨latent, d_k⟩ in the
directions' space, as the protocol's regression targets), its labels are its factors, and MIG, DCI and the FactorVAE
score are computed on (codes, labels) with the `*_from_arrays` metrics of `metrics.disentanglement`.

Labels come from a labeller:
  * `OracleLabeller(gen)`: an oracle generator's exact factors (`generators.oracle`), no image rendered;
  * `ClassifierLabeller(classifier, dataset)`: the factor classifier of `metrics.quality` on the rendered images,
    read through the dataset's `identifiable_labels`; a factor that some image does not show (dSprites' orientation
    of squares and ellipses) is scored on the samples that show it (`partial_factors='per_factor'`: each metric's
    per-factor part — mutual information, boosted trees, FactorVAE votes — uses that factor's known samples), or
    left out (`'drop'`); a factor scored on fewer than all samples is named under 'factors_partial', one left out
    under 'factors_left_out'.
On an oracle, `direction_recovery` also matches the directions to the true ones (Hungarian on |cos|).

    scores = generated_domain_scores(gen, directions, OracleLabeller(gen))      # or ClassifierLabeller(...)
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from ganlatent_jax.directions import spaces
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators import oracle
from ganlatent_jax.generators.base import Generator
from ganlatent_jax.metrics import disentanglement

METRICS = ("mig", "dci", "factor_vae")
RECOVERED_COSINE = 0.9
# A factor that some samples do not show (a labeller's mask): 'per_factor' scores it on the samples that show it
# (dSprites' orientation on the hearts), 'drop' leaves it out for all (the behaviour before 2026-12-03).
PARTIAL_FACTORS = ("per_factor", "drop")


class Labeller(Protocol):
  """Labels a batch of generated samples: (labels (B, F) int64, mask (B, F) bool: whether each label is known).
  A labeller that needs images is called (z, images); one that does not, (z, None, latents, space) with the
  latents that were rendered, in `space` ('z' or 'w', the latter truncated if asked)."""
  factor_names: tuple[str, ...]
  needs_images: bool

  def __call__(self, z: np.ndarray, images: np.ndarray | None, *rendered) -> tuple[np.ndarray, np.ndarray]: ...


class OracleLabeller:
  """An oracle generator's exact factors of the rendered latents (z, or w after any truncation: the factors the
  image shows), as dataset grid indices (needs no image)."""
  needs_images = False

  def __init__(self, gen: Generator):
    self.gen = gen
    self.factor_names = oracle.factor_names(gen)

  def __call__(self, z, images=None, latents=None, space="z"):
    labels = (oracle.factor_labels(self.gen, jnp.asarray(z)) if latents is None else
              oracle.factor_labels(self.gen, jnp.asarray(latents), space))
    return labels, np.ones(labels.shape, bool)


class ClassifierLabeller:
  """The factor classifier's most probable value per factor of images in [0, 1], made identifiable by `dataset`."""
  needs_images = True

  def __init__(self, classifier, dataset=None):
    self.classifier, self.dataset = classifier, dataset
    self.factor_names = tuple(classifier.factor_names)

  def __call__(self, z, images):
    probabilities, _ = self.classifier.predict(images)
    labels = np.stack([p.argmax(axis=-1) for p in probabilities], axis=1).astype(np.int64)
    if self.dataset is None:
      return labels, np.ones(labels.shape, bool)
    return self.dataset.identifiable_labels(labels)


@functools.partial(jax.jit, static_argnames=("num", "space", "with_images", "truncation"))
def _sample_batch(gen: Generator, key: jax.Array, w_avg: jax.Array | None, num: int, space: str, with_images: bool,
                  truncation: float | None):
  """z, the latents in `space` ('z' or 'w'), and (if asked) images in [0, 1]."""
  z = gen.sample_z(key, num)
  latents = spaces.to_space(gen, z, space, truncation, w_avg)
  if not with_images:
    return z, latents, None
  low, high = gen.info.output_range
  images = jnp.clip((spaces.render(gen, latents, space) - low) / (high - low), 0.0, 1.0)
  return z, latents, images


def sample_latents_and_labels(gen: Generator, labeller: Labeller, num: int, space: str = "z", *,
                              batch_size: int = 64, seed: int = 0, truncation: float | None = None
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(latents (num, D) in `space` — 'z', or 'w' for W and W+ directions —, labels (num, F), mask (num, F)) of
  `num` samples drawn from jax.random.key(seed). One compiled sampler per (generator, batch size, space)."""
  space = "z" if space == "z" else "w"
  if space == "w" and "w" not in gen.info.latent_spaces:
    raise ValueError(f"a {gen.info.family} generator has no W space (latent spaces: {gen.info.latent_spaces})")
  key, mean_key = jax.random.split(jax.random.key(seed))
  w_avg = spaces.mean_w(gen, mean_key) if truncation not in (None, 1.0) and space == "w" else None
  latents, labels, masks = [], [], []
  for index, start in enumerate(range(0, num, batch_size)):
    count = min(batch_size, num - start)
    # A short last batch is drawn full-size and cut, so the sampler compiles once.
    z, batch_latents, images = _sample_batch(gen, jax.random.fold_in(key, index), w_avg, batch_size, space,
                                             labeller.needs_images, truncation)
    if labeller.needs_images:
      batch_labels, batch_mask = labeller(np.asarray(z)[:count], np.asarray(images)[:count])
    else:   # labels of what was rendered: with truncation in W that is not z's factors
      batch_labels, batch_mask = labeller(np.asarray(z)[:count], None, np.asarray(batch_latents)[:count], space)
    latents.append(np.asarray(batch_latents)[:count])
    labels.append(np.asarray(batch_labels))
    masks.append(np.asarray(batch_mask))
  return np.concatenate(latents), np.concatenate(labels), np.concatenate(masks)


def direction_recovery(found: Directions, true: Directions, threshold: float = RECOVERED_COSINE) -> dict[str, Any]:
  """Matches each true direction to a distinct found one maximising the summed |cos| (Hungarian); the mean |cos|
  over true directions (0 for one left unmatched when there are fewer found than true) and the fraction recovered
  at |cos| ≥ threshold."""
  if found.space != true.space or found.latent_dim != true.latent_dim:
    raise ValueError(f"directions to compare live in different spaces: found {found.space} ({found.latent_dim}-d), "
                     f"true {true.space} ({true.latent_dim}-d)")
  cosines = np.abs(found.normalized().matrix.T @ true.normalized().matrix)     # (K found, F true)
  rows, columns = scipy.optimize.linear_sum_assignment(-cosines)
  per_factor = np.zeros(true.num_directions)
  matched = np.full(true.num_directions, -1)
  per_factor[columns], matched[columns] = cosines[rows, columns], rows
  return {"recovery_mean_abs_cos": float(per_factor.mean()),
          "recovery_fraction": float(np.mean(per_factor >= threshold)),
          "recovery_abs_cos_per_factor": per_factor.tolist(),
          "recovery_matched_direction_per_factor": matched.tolist(), "recovery_threshold": threshold}


def mean_abs_cos_to_start(directions: Directions, start: Directions) -> float:
  """Mean |cos| of each direction with the start's direction of the same index: 1 = D did not move."""
  return float(np.mean(np.abs(np.sum(directions.normalized().matrix * start.normalized().matrix, axis=0))))


def recovery_trace(gen, initial: Directions) -> Callable[[Directions], dict[str, float]] | None:
  """On an oracle generator, the scalars a direction method logs while it trains (`training.loop.run`'s log_fn):
  does D move towards the true directions (recovery/mean_abs_cos, recovery/fraction) and how far from where it
  started (recovery/abs_cos_to_init: mean |cos| of each direction with its initial one)? None on other generators
  and outside Z and W, where nothing is known."""
  if gen.info.family != oracle.FAMILY or initial.space not in ("z", "w"):
    return None
  true = oracle.true_directions(gen, initial.space)

  def trace(directions: Directions) -> dict[str, float]:
    recovery = direction_recovery(directions, true)
    return {"recovery/mean_abs_cos": recovery["recovery_mean_abs_cos"],
            "recovery/fraction": recovery["recovery_fraction"],
            "recovery/abs_cos_to_init": mean_abs_cos_to_start(directions, initial)}
  return trace


def check_partial_factors(partial_factors: str) -> None:
  """Refuses an unknown `partial_factors` before any sampling is paid for."""
  if partial_factors not in PARTIAL_FACTORS:
    raise ValueError(f"partial_factors={partial_factors!r}; expected one of {PARTIAL_FACTORS}")


def known_labels(mask: np.ndarray, partial_factors: str) -> np.ndarray:
  """(N, F) bool: which labels the scores may use. 'per_factor' keeps the labeller's mask (a factor is scored on the
  samples that show it); 'drop' marks a factor unknown everywhere unless every sample shows it (left out)."""
  check_partial_factors(partial_factors)
  return np.broadcast_to(mask.all(axis=0), mask.shape) if partial_factors == "drop" else mask


def _dci_train_size(num_train: int, dci_num_train: int | None) -> int:
  return num_train if dci_num_train is None else min(int(dci_num_train), num_train)


def scorable_factors(labels: np.ndarray, known: np.ndarray, num_train: int,
                     dci_num_train: int | None = None) -> np.ndarray:
  """(F,) bool: the factors every score is defined for — two values or more among the known labels of the first
  num_train rows (MIG divides by the factor's entropy) and, when DCI is computed (`dci_num_train` given), of its
  first dci_num_train rows (a boosted tree needs two classes) with a known label among the test rows after
  num_train."""
  def varies(rows):
    return np.array([len(np.unique(labels[rows][known[rows][:, j], j])) > 1 for j in range(labels.shape[1])])
  kept = varies(slice(None, num_train))
  if dci_num_train is not None:
    kept &= varies(slice(None, dci_num_train)) & known[num_train:].any(axis=0)
  return kept


def scores_from_arrays(codes: np.ndarray, labels: np.ndarray, num_train: int, metrics: Sequence[str] = METRICS,
                       seed: int = 0, dci_num_train: int | None = None,
                       known: np.ndarray | None = None) -> dict[str, Any]:
  """MIG on the first num_train rows, DCI trained on the first dci_num_train of them (all when None: its boosted
  trees cost ~100 s per 1000 samples of 6 factors on a loaded 2-core CPU) and tested on the rows after num_train,
  FactorVAE on all rows; with `known` (rows, factors) bool, each factor on its known rows only. Besides MIG, its
  per-factor terms and each factor's top code ('mig_per_factor', 'mig_top_code': lists in the labels' order)."""
  unknown = set(metrics) - set(METRICS)
  if unknown:
    raise ValueError(f"unknown generated-domain metric(s) {sorted(unknown)}; known: {list(METRICS)}")
  if known is not None and known.all():
    known = None   # the unmasked computation, bit for bit
  part = (lambda rows: None) if known is None else (lambda rows: known[rows])
  results: dict[str, float] = {}
  if "mig" in metrics:
    if codes.shape[1] < 2:   # MIG is the gap between a factor's two most informative codes: undefined for one
      results["mig_undefined"] = f"MIG needs at least 2 codes; these directions give {codes.shape[1]}"
    else:
      gaps, top = disentanglement.mig_per_factor(codes[:num_train], labels[:num_train],
                                                 known=part(slice(None, num_train)))
      # The terms beside their mean: a code topping several factors is what MIG cannot see (see mig_per_factor).
      results.update(mig=float(np.mean(gaps)), mig_per_factor=gaps.tolist(), mig_top_code=top.tolist())
  if "dci" in metrics:
    dci_train = _dci_train_size(num_train, dci_num_train)
    dci = disentanglement.dci_from_arrays(codes[:dci_train], labels[:dci_train], codes[num_train:],
                                          labels[num_train:], random_state=seed,
                                          known_train=part(slice(None, dci_train)),
                                          known_test=part(slice(num_train, None)))
    results.update({f"dci_{name}": value for name, value in dci.items()})
  if "factor_vae" in metrics:
    factor_vae = disentanglement.factor_vae_from_arrays(codes, labels, random_state=seed, known=part(slice(None)))
    results.update({f"factor_vae_{name}": value for name, value in factor_vae.items()})
  return results


def generated_domain_scores(gen: Generator, directions: Directions, labeller: Labeller, *, num_train: int = 6000,
                            num_test: int = 2000, batch_size: int = 64, seed: int = 0,
                            metrics: Sequence[str] = METRICS, truncation: float | None = None,
                            dci_num_train: int | None = None,
                            partial_factors: str = "per_factor") -> dict[str, Any]:
  """MIG, DCI and FactorVAE of the directions' codes against the labeller's labels on num_train + num_test samples
  (DCI's test split is the last num_test; it trains on the first dci_num_train, all num_train when None), plus
  direction recovery when `gen` is an oracle. Keys are prefixed 'generated_' (e.g. 'generated_mig'), so they sit
  beside the encoder protocol's in one metrics.json."""
  if directions.latent_dim != (gen.latent_dim if directions.space == "z" else gen.info.w_dim or gen.latent_dim):
    raise ValueError(f"{directions.latent_dim}-d {directions.space} directions do not fit this generator "
                     f"(latent_dim {gen.latent_dim}, w_dim {gen.info.w_dim})")
  if num_train < 2 or num_test < 1:
    raise ValueError(f"num_train must be ≥ 2 and num_test ≥ 1, got {num_train} and {num_test}")
  check_partial_factors(partial_factors)
  latents, labels, mask = sample_latents_and_labels(gen, labeller, num_train + num_test, directions.space,
                                                    batch_size=batch_size, seed=seed, truncation=truncation)
  codes = latents @ directions.matrix
  names = np.asarray(labeller.factor_names)
  mask = known_labels(mask, partial_factors)
  kept = scorable_factors(labels, mask, num_train, _dci_train_size(num_train, dci_num_train) if "dci" in metrics
                          else None)
  if kept.any():
    scores = scores_from_arrays(codes, labels[:, kept], num_train, metrics, seed, dci_num_train, mask[:, kept])
  else:   # e.g. a barely trained GAN whose images all get one label: nothing to score, said so
    scores = {"scores_undefined": f"no factor takes two values over the {num_train} samples' labels "
                                  f"(of {list(names)}): every metric is undefined"}
  results: dict[str, Any] = {f"generated_{name}": value for name, value in scores.items()}
  results.update(generated_num_samples=num_train + num_test, generated_factors=names[kept].tolist(),
                 generated_factors_partial=names[kept & ~mask.all(axis=0)].tolist(),
                 generated_factors_left_out=names[~kept].tolist())
  if gen.info.family == oracle.FAMILY and directions.space in ("z", "w"):
    results.update(direction_recovery(directions, oracle.true_directions(gen, directions.space)))
  return results
