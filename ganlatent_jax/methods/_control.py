"""The control measure of directions on a generator whose factor can be measured (Plumerault et al.'s evaluation,
reading notes §2.4–2.5), shared by methods/plumerault.py (its own directions, one column per transformation) and the
'control' metric of `python -m ganlatent_jax.evaluate` (any directions.npz: per factor the best column, chosen on
latents disjoint from the scoring ones), with the two reference rows of every table:

  * probe: the supervised direction — least squares of the measured factor on z over `probe_samples` prior draws
           (`directions.probe.probe_from_arrays`); how far one linear direction can go on this generator;
  * random: `num_random` orthonormal random directions with the same selection (the best of K by chance).

Estimators (config `estimators` {factor: spec} and `side_effects` (spec, …)):
  'sprite:<x|y|area|scale|spread>'  exact statistics of a bright object on a dark background (metrics.control);
  'intensity'                       the image's mean intensity in [0, 1];
  'classifier:<factor>'             the factor classifier's expected factor value Σ_k p_k·v_k (metrics.quality,
                                    trained on config.evaluation.dataset and cached beside the workdir).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.directions import Directions, probe, random_directions
from ganlatent_jax.metrics import control

KINDS = ("sprite", "intensity", "classifier")
# fold_in(rng, ·) of each random draw of a control evaluation.
FOLDS = dict(evaluation=0, selection=1, probe=2, random=3)
MIN_MASS = 0.002   # fraction of the image: below, nothing is drawn (0.02, the paper's filter, drops small sprites)


def check_spec(spec: str, where: str) -> str:
  kind, _, name = spec.partition(":")
  if kind not in KINDS or (kind == "sprite" and name not in control.SPRITE_STATISTICS) or \
     (kind == "intensity" and name) or (kind == "classifier" and not name):
    raise ValueError(f"{where}={spec!r}: expected 'sprite:<{'|'.join(control.SPRITE_STATISTICS)}>', 'intensity' or "
                     f"'classifier:<factor name>'")
  return spec


def make_estimator(specs: Sequence[str], value_range: tuple[float, float],
                   classifier_fn: Callable[[], Any] | None = None) -> Callable[[np.ndarray], np.ndarray]:
  """images (B, H, W, C) in `value_range` → (B, len(specs)) values, NaN where a measurement failed.
  classifier_fn() → (FactorClassifier, dataset), called once, only if a 'classifier:' spec is present."""
  specs = [check_spec(spec, "estimator") for spec in specs]
  needs_classifier = any(spec.startswith("classifier:") for spec in specs)
  classifier, dataset = (classifier_fn() if needs_classifier and classifier_fn else (None, None))
  if needs_classifier and classifier is None:
    raise ValueError(f"estimators {specs}: a 'classifier:' estimator needs config.evaluation.dataset")
  if classifier is not None:
    unknown = [s.partition(":")[2] for s in specs if s.startswith("classifier:") and
               s.partition(":")[2] not in classifier.factor_names]
    if unknown:
      raise ValueError(f"estimators: the classifier has no factor {unknown}; it has {list(classifier.factor_names)}")
  low, high = value_range

  def estimate(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, np.float64)
    columns, stats, probs = [], None, None
    for spec in specs:
      kind, _, name = spec.partition(":")
      if kind == "sprite":
        stats = control.sprite_statistics(images, value_range, MIN_MASS) if stats is None else stats
        columns.append(stats[:, control.SPRITE_STATISTICS.index(name)])
      elif kind == "intensity":
        columns.append(control.intensity_map(images, value_range).mean(axis=(1, 2)))
      else:
        if probs is None:
          probs = classifier.predict(np.clip((images - low) / (high - low), 0, 1).astype(np.float32))[0]
        index = classifier.factor_names.index(name)
        values = np.asarray(dataset.factor_values[index], np.float64)
        columns.append(probs[index] @ values)
    return np.stack(columns, axis=1)

  return estimate


def _names(spec: str, side_effects: Sequence[str]) -> list[str]:
  return [spec] + [s for s in side_effects if s != spec]


def probe_matrix(generate_fn, latents: np.ndarray, estimate_fn, batch_size: int) -> np.ndarray:
  """(D, 1): the least-squares direction of the measured factor (first estimator column) on the latents."""
  values = np.concatenate([estimate_fn(np.asarray(generate_fn(latents[s:s + batch_size])))[:, 0]
                           for s in range(0, len(latents), batch_size)])
  finite = np.isfinite(values)
  if finite.sum() <= latents.shape[1]:
    raise ValueError(f"the probe's least squares needs more measured images than latent dimensions "
                     f"({latents.shape[1]}): {int(finite.sum())} of {len(values)} were measured (raise probe_samples)")
  return probe.probe_from_arrays(latents[finite], values[finite, None])


def score_directions(section: Mapping[str, Any], generate_fn, sampler_z: Callable[[jax.Array, int], Any],
                     directions: Directions | None, rng: jax.Array, estimator_fn: Callable[[Sequence[str]], Any],
                     *, columns: Mapping[str, int] | None = None) -> dict[str, Any]:
  """Control rows of `directions` (and the probe/random references in `section.references`) per factor.

  section: estimators {factor: spec}, side_effects (specs), t_max, num_t, core_t_max, num_latents,
  num_selection_latents, batch_size, references, probe_samples, num_random (0 = the number of directions).
  columns {factor: column}: fixed columns (a method's own directions), else the column is selected by the core
  rel_std on the selection latents. Returns {"directions": {factor: row}, "probe": …, "random": …}; a row holds
  "column", "selection_rel_std", the curve and the summaries of `control.factor_scores`.
  """
  if directions is not None and directions.space != "z":
    raise ValueError(f"the control measure edits z (z − ⟨z,u⟩u + t·u under the N(0, I) prior); these directions "
                     f"live in {directions.space!r}")
  estimators = dict(section["estimators"])
  side_effects = tuple(section.get("side_effects", ()))
  batch_size = int(section["batch_size"])
  latents = np.asarray(sampler_z(jax.random.fold_in(rng, FOLDS["evaluation"]), int(section["num_latents"])))
  selection = np.asarray(sampler_z(jax.random.fold_in(rng, FOLDS["selection"]),
                                   int(section["num_selection_latents"])))
  measure = dict(t_max=float(section["t_max"]), num_t=int(section["num_t"]), core_t_max=float(section["core_t_max"]),
                 batch_size=batch_size)
  latent_dim = latents.shape[1]

  def row(matrix: np.ndarray, names: list[str], estimate, column: int | None) -> dict[str, Any]:
    scores = None
    if column is None:
      column, scores = control.select_direction(generate_fn, matrix, selection, estimate, batch_size=batch_size,
                                                core_t_max=measure["core_t_max"] or control.CORE_T_MAX)
    out = control.factor_scores(generate_fn, matrix[:, column], latents, estimate, names, **measure)
    out["column"] = int(column)
    if scores is not None:
      out["selection_rel_std"] = scores
    return out

  results: dict[str, Any] = {}
  if directions is not None:
    results["directions"] = {}
  for name in section.get("references", ()):
    results[name] = {}
  for factor, spec in estimators.items():
    names = _names(spec, side_effects)
    estimate = estimator_fn(names)
    if directions is not None:
      column = None if columns is None else columns.get(factor)
      if columns is not None and column is None:
        continue
      results["directions"][factor] = row(directions.matrix, names, estimate, column)
    if "probe" in results:
      draws = np.asarray(sampler_z(jax.random.fold_in(rng, FOLDS["probe"]), int(section["probe_samples"])))
      results["probe"][factor] = row(probe_matrix(generate_fn, draws, estimate, batch_size), names, estimate, 0)
    if "random" in results:
      k = int(section.get("num_random") or (directions.num_directions if directions is not None else latent_dim))
      matrix = random_directions.random(latent_dim, k, jax.random.fold_in(rng, FOLDS["random"])).matrix
      results["random"][factor] = row(matrix, names, estimate, 0 if k == 1 else None)
  return results


def check_section(section: Mapping[str, Any], where: str) -> None:
  """Clear errors for a control section (config key names in the message)."""
  for key in ("num_latents", "num_selection_latents", "batch_size", "num_t"):
    if int(section[key]) < (2 if key != "num_t" else 1):
      raise ValueError(f"{where}.{key}={section[key]} is too small")
  if not section["estimators"]:
    raise ValueError(f"{where}.estimators is empty: name at least one factor and its estimator")
  for factor, spec in dict(section["estimators"]).items():
    check_spec(spec, f"{where}.estimators.{factor}")
  for spec in section.get("side_effects", ()):
    check_spec(spec, f"{where}.side_effects")
  unknown = [r for r in section.get("references", ()) if r not in ("probe", "random")]
  if unknown:
    raise ValueError(f"{where}.references={tuple(section['references'])!r}: only 'probe' and 'random'")


def classifier_loader(config, workdir: str, gen) -> Callable[[], Any]:
  """() → (FactorClassifier, dataset) for 'classifier:' estimators: config.evaluation.dataset's factor classifier,
  cached beside the workdir (the generated-domain labeller's cache, same file)."""
  loaded = []

  def load():
    if loaded:
      return loaded[0]
    from ganlatent_jax.methods import _common
    settings = dict(_common.GENERATED_DOMAIN_DEFAULTS, labels="classifier")
    section = config.evaluation.get("generated_domain") or {}
    for key in ("classifier_steps", "classifier_dir"):
      if key in section:
        settings[key] = section[key]
    labeller, _ = _common.generated_domain_labeller(config, workdir, gen, settings)
    loaded.append((labeller.classifier, labeller.dataset))
    return loaded[0]
  return load


def estimator_factory(config, workdir: str, gen) -> Callable[[Sequence[str]], Callable[[np.ndarray], np.ndarray]]:
  """specs → `make_estimator(specs, ...)` for `gen`'s output range, all sharing ONE classifier loader (loaded at most
  once per evaluation, only when a 'classifier:' spec asks for it)."""
  load = classifier_loader(config, workdir, gen)
  return lambda specs: make_estimator(specs, gen.info.output_range, load)


def render_fn(gen) -> Callable[[np.ndarray], np.ndarray]:
  """z (B, D) → images, jitted once per generator."""
  apply = jax.jit(lambda g, z: g(z))
  return lambda z: apply(gen, jnp.asarray(z, jnp.float32))
