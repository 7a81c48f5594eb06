"""What the method modules share: loading the generator and its sampler, named RNG streams, checking config values,
layer ranges, direction outputs (directions.npz + pictures) and the evaluation (metrics.json): the encoder protocol
and the generated-domain scores with their probe and random reference rows."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from ganlatent_jax import console, generators, io, viz
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators import sampling


# ---------------------------------------------------------------------------------------------------------------
# Generator, sampler, keys.

def load_generator(config) -> generators.Generator:
  path = config.get("generator", "")
  if not isinstance(path, str) or not path:
    raise ValueError(f"config.generator={path!r}: give a checkpoint path, a converted directory or 'testbed:NAME'")
  return generators.load(path, format=config.get("generator_format") or None)


def stream(config, streams: Mapping[str, int], name: str) -> jax.Array:
  """The key of the run's RNG stream `name`: key(config.seed + streams[name]). Each method lists its streams in one
  `STREAMS` table, so a number in the README can be traced to the draws that made it (and stays reproducible)."""
  return jax.random.key(int(config.seed) + int(streams[name]))


def make_sampler(config, gen: generators.Generator, streams: Mapping[str, int],
                 w_avg_samples: int = sampling.W_AVG_SAMPLES) -> sampling.Sampler:
  """The run's sampler (`generators.sampling.from_config`), w̄ from the stream 'w_avg'."""
  return sampling.from_config(config, gen, rng=stream(config, streams, "w_avg"), w_avg_samples=w_avg_samples)


# ---------------------------------------------------------------------------------------------------------------
# Config values.

def check_positive(config, *keys: str) -> None:
  """Each dotted key must hold an integer > 0 (batch sizes, log intervals, counts)."""
  for key in keys:
    value = _lookup(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
      raise ValueError(f"config.{key}={value!r} must be a positive integer")


def check_non_negative(config, *keys: str) -> None:
  for key in keys:
    value = _lookup(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or value < 0:
      raise ValueError(f"config.{key}={value!r} must be >= 0")


def check_loop(config) -> None:
  """The keys `training.loop.run` reads: steps >= 0, log_every > 0, checkpoint_every > 0, batch_size > 0."""
  check_non_negative(config, "steps", "image_every")
  check_positive(config, "batch_size", "log_every", "checkpoint_every")


def _lookup(config, dotted: str):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


def parse_layers(spec: str) -> list[int] | None:
  """'' or 'all' → None; '2-5' → [2, 3, 4, 5]; '0,1,4' → [0, 1, 4]."""
  spec = (spec or "").strip()
  if spec in ("", "all"):
    return None
  layers: list[int] = []
  try:
    for part in spec.split(","):
      if "-" in part:
        lo, hi = part.split("-")
        layers.extend(range(int(lo), int(hi) + 1))
      else:
        layers.append(int(part))
  except ValueError:
    raise ValueError(f"config.layers={spec!r}: expected 'all', 'a-b' or 'i,j,k'") from None
  return layers


def write_json(path: str, payload: dict[str, Any]) -> None:
  io.write_json(path, payload, sort_keys=True)


# ---------------------------------------------------------------------------------------------------------------
# Direction outputs.

def traversal_kwargs(config, sampler: sampling.Sampler, directions: Directions) -> dict[str, Any]:
  """viz.traversal_grid settings: config.traversal's span and steps, the run's W truncation around its one w̄ (for
  directions in W), a class-conditional generator's first class."""
  t = config.traversal
  kwargs: dict[str, Any] = dict(span=(-float(t.span), float(t.span)), steps=int(t.steps), **sampler.picture_kwargs())
  if sampler.truncation is not None and directions.space != "z" and not sampler.conditional:
    kwargs.update(w_truncation=sampler.truncation, w_avg=sampler.w_avg)
  return kwargs


def write_directions(workdir: str, sampler: sampling.Sampler, directions: Directions, config, rng: jax.Array,
                     comparison: Sequence[tuple[str, Directions]] = (),
                     max_rendered: int | None = None) -> dict[str, str]:
  """directions.npz (all directions), images/traversal.png of the first `max_rendered` (all when None), and a
  side-by-side sheet when `comparison` is given. Pictures start from config.traversal.num_samples prior draws
  (from `rng`), in the first class of a class-conditional generator."""
  gen = sampler.gen
  outputs = {"directions": os.path.join(workdir, "directions.npz")}
  io.makedirs(os.path.join(workdir, "images"))
  directions.save(outputs["directions"])
  latents = sampler.z(rng, int(config.traversal.num_samples))
  outputs["traversal"] = os.path.join(workdir, "images", "traversal.png")
  shown = directions if max_rendered is None else directions.select(range(min(max_rendered,
                                                                              directions.num_directions)))
  with console.phase("traversal pictures"):
    viz.traversal_grid(gen, shown, latents, path=outputs["traversal"], **traversal_kwargs(config, sampler, shown))
    if comparison:
      grids = [viz.traversal_grid(gen, d, latents, **traversal_kwargs(config, sampler, d)) for _, d in comparison]
      outputs["comparison"] = os.path.join(workdir, "images", "traversal_comparison.png")
      viz.contact_sheet(grids, [name for name, _ in comparison], path=outputs["comparison"])
  return outputs


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: the encoder protocol (SRE / Khrulkov et al.) on a ground-truth dataset.

def protocol_config(config, sampler: sampling.Sampler):
  """`metrics.encoder_protocol.ProtocolConfig` from config.evaluation: `protocol` holds its fields by name,
  `metrics` the metric names; the W truncation is the run's."""
  from ganlatent_jax.metrics import encoder_protocol
  ev = config.evaluation
  fields = {f.name for f in dataclasses.fields(encoder_protocol.ProtocolConfig)}
  protocol = dict(ev.protocol)
  unknown = sorted(set(protocol) - fields)
  if unknown:
    raise ValueError(f"config.evaluation.protocol has key(s) {unknown} that the encoder protocol does not take; "
                     f"known: {sorted(fields - {'truncation', 'metrics'})}")
  for key, value in protocol.items():
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
      raise ValueError(f"config.evaluation.protocol.{key}={value!r} must be > 0")
  metrics = tuple(ev.metrics)
  known = ("mig", "factor_vae", "dci", "beta_vae")
  if not metrics or set(metrics) - set(known):
    raise ValueError(f"config.evaluation.metrics={metrics!r}: expected a non-empty subset of {known}")
  truncation = None if sampler.conditional else sampler.truncation
  return encoder_protocol.ProtocolConfig(**protocol, truncation=truncation, metrics=metrics)


def evaluation_dataset(config):
  from ganlatent_jax import data
  section = dict(config.evaluation.dataset)
  if not section.get("name"):
    raise ValueError("config.evaluation.dataset.name is empty: the encoder protocol needs a ground-truth dataset "
                     "(e.g. 'shapes3d' for testbed:shapes3d)")
  return data.get_dataset(section.pop("name"), **section)


def evaluate_directions(config, workdir: str, sampler: sampling.Sampler, named: Sequence[tuple[str, Directions]],
                        rng: jax.Array, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """Scores each named Directions with the encoder protocol (same keys for each, so only the directions differ) and,
  with config.evaluation.generated_domain.enabled, adds the generated-domain scores to each one's row and the
  reference rows (`probe`, `random`; see `generated_domain_evaluation`); writes metrics.json =
  {**extra, name: scores, ..., reference: scores, ..., 'generated_domain': how they were labelled} and returns it."""
  from ganlatent_jax.metrics import encoder_protocol
  if sampler.conditional:
    raise ValueError(f"config.evaluation: the encoder protocol has no class-conditional path; a "
                     f"{sampler.gen.info.family} generator is class-conditional (set config.evaluation.enabled=False)")
  protocol = protocol_config(config, sampler)
  dataset = evaluation_dataset(config)
  settings = generated_domain_settings(config)
  results: dict[str, Any] = {"evaluation": config.evaluation.to_dict(), "seed": int(config.seed), **(extra or {})}

  finished = FinishedRows(workdir)

  def protocol_scores(name: str, directions: Directions) -> dict[str, Any]:
    key = row_fingerprint(config, sampler, directions)
    scores = finished.get(name, key)
    if scores is not None:
      return scores
    with console.phase(f"evaluation: {name}"):   # the end-of-run summary times each set of directions
      scores = encoder_protocol.evaluate_directions(sampler.gen, directions, dataset, protocol, rng,
                                                    np.random.RandomState(int(config.seed)))
    finished.put(name, key, scores)
    return scores

  for name, directions in named:
    results[name] = protocol_scores(name, directions)
  if settings is not None:
    rows, references, about = generated_domain_evaluation(config, workdir, sampler, named, rng, settings)
    for name, scores in rows.items():
      results[name].update(scores)
    for name, (directions, scores) in references.items():
      with_protocol = settings["references_protocol"] and directions is not None
      results[name] = {**(protocol_scores(name, directions) if with_protocol else {}), **scores}
    results["generated_domain"] = about
  write_json(os.path.join(workdir, "metrics.json"), results)
  finished.clear()
  return results


# Each row of the encoder protocol costs minutes (an encoder trained, then MIG / FactorVAE / DCI on real images); a
# run stopped during its evaluation (a session's end, a preempted VM) would start the evaluation over.
FINISHED_ROWS_FILE = "evaluation_rows.json"


def row_fingerprint(config, sampler: sampling.Sampler, directions: Directions) -> str:
  """What a protocol row's scores depend on: the directions (values, space, layers), the evaluation settings, the
  seed, the generator and the sampler's truncation. Every row draws from fresh generators seeded by these, so
  equal fingerprints give equal scores whatever ran before."""
  import hashlib
  matrix = np.ascontiguousarray(directions.matrix, dtype=np.float64)
  described = json.dumps({"space": directions.space, "layers": directions.layers, "shape": matrix.shape,
                          "evaluation": config.evaluation.to_dict(), "seed": int(config.seed),
                          "generator": config.get("generator", ""), "truncation": sampler.truncation},
                         sort_keys=True, default=str)
  return hashlib.sha256(described.encode() + matrix.tobytes()).hexdigest()


class FinishedRows:
  """The protocol rows an evaluation has finished, in WORKDIR/evaluation_rows.json (atomic writes) until its
  metrics.json is written: a resumed evaluation reuses a row whose fingerprint (`row_fingerprint`) matches and
  recomputes any other. Single-process runs only: in a multi-process run every process must take the same branch
  (the protocol's steps are collective), and a per-host workdir could differ between them."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, FINISHED_ROWS_FILE)
    self.enabled = jax.process_count() == 1
    self.rows: dict[str, Any] = {}
    if self.enabled and io.exists(self.path):
      try:
        self.rows = json.loads(io.read_text(self.path))
      except ValueError:   # unreadable (it is written atomically, so only by hand): recompute every row
        self.rows = {}

  def get(self, name: str, key: str) -> dict[str, Any] | None:
    row = self.rows.get(name)
    if not isinstance(row, dict) or row.get("fingerprint") != key:
      return None
    logging.info("evaluation: %s: finished before the run was stopped; read from %s", name, FINISHED_ROWS_FILE)
    return row["scores"]

  def put(self, name: str, key: str, scores: dict[str, Any]) -> None:
    if self.enabled:
      self.rows[name] = {"fingerprint": key, "scores": scores}
      write_json(self.path, self.rows)

  def clear(self) -> None:
    if self.enabled:
      io.remove(self.path, missing_ok=True)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: generated-domain scores (metrics.generated_domain) and the reference rows beside the method's.

GENERATED_DOMAIN_DEFAULTS = dict(
    enabled=True, labels="auto", num_train=6000, num_test=1000, dci_num_train=2000, batch_size=64,
    metrics=("mig", "dci", "factor_vae"), references=("probe", "random"), references_protocol=False,
    probe="regression", probe_num_samples=6000, classifier_steps=1500, classifier_dir="",
    partial_factors="per_factor")
REFERENCES = ("probe", "random")
LABELS = ("auto", "exact", "classifier")
# Offsets of the reference rows' draws from config.seed / the evaluation key: the probe is fitted on other samples
# than those it is scored on (seed config.seed), and the random row has its own key.
PROBE_SEED_OFFSET = 1
RANDOM_DIRECTIONS_FOLD = 1


def generated_domain_settings(config) -> dict[str, Any] | None:
  """config.evaluation.generated_domain checked (every key of GENERATED_DOMAIN_DEFAULTS, no other), or None when the
  section is absent or disabled."""
  section = config.evaluation.get("generated_domain")
  if section is None or not section.get("enabled", False):
    return None
  settings = dict(section)
  unknown, missing = sorted(set(settings) - set(GENERATED_DOMAIN_DEFAULTS)), \
      sorted(set(GENERATED_DOMAIN_DEFAULTS) - set(settings))
  if unknown or missing:
    raise ValueError(f"config.evaluation.generated_domain: unknown key(s) {unknown}, missing key(s) {missing}; "
                     f"configs/common.py's generated_domain_evaluation() has them all")
  for key in ("num_train", "num_test", "dci_num_train", "batch_size", "probe_num_samples", "classifier_steps"):
    check_positive(config, f"evaluation.generated_domain.{key}")
  from ganlatent_jax.directions import probe
  from ganlatent_jax.metrics import generated_domain
  settings["metrics"], settings["references"] = tuple(settings["metrics"]), tuple(settings["references"])
  checks = [("labels", settings["labels"] in LABELS, f"one of {LABELS}"),
            ("metrics", bool(settings["metrics"]) and set(settings["metrics"]) <= set(generated_domain.METRICS),
             f"a non-empty subset of {generated_domain.METRICS}"),
            ("references", set(settings["references"]) <= set(REFERENCES), f"a subset of {REFERENCES}"),
            ("probe", settings["probe"] in probe.METHODS, f"one of {probe.METHODS}"),
            ("partial_factors", settings["partial_factors"] in generated_domain.PARTIAL_FACTORS,
             f"one of {generated_domain.PARTIAL_FACTORS}")]
  for key, ok, expected in checks:
    if not ok:
      raise ValueError(f"config.evaluation.generated_domain.{key}={settings[key]!r}: expected {expected}")
  return settings


def classifier_directory(setting: str, workdir: str) -> str:
  """Where a run caches its factor classifier: `setting`, or ('') the workdir's parent, so the runs beside each other
  (seeds, table cells) train it once between them instead of once each."""
  return setting or os.path.dirname(io.absolute(workdir).rstrip("/"))


def generated_domain_labeller(config, workdir: str, gen: generators.Generator, settings: Mapping[str, Any]):
  """(labeller, description). labels 'exact' (or 'auto' on an oracle generator): the oracle's exact factors;
  'classifier' (or 'auto' otherwise): the factor classifier of `metrics.quality` trained on config.evaluation's
  dataset, cached in classifier_dir ('' = the workdir's parent, shared by the runs beside it) and trained only when
  absent there."""
  from ganlatent_jax.generators import oracle
  from ganlatent_jax.metrics import generated_domain, quality
  is_oracle = gen.info.family == oracle.FAMILY
  labels = settings["labels"] if settings["labels"] != "auto" else ("exact" if is_oracle else "classifier")
  if labels == "exact":
    if not is_oracle:
      raise ValueError(f"config.evaluation.generated_domain.labels='exact': a {gen.info.family} generator has no "
                       f"exact factors (only testbed:oracle-*); use 'classifier' or 'auto'")
    return generated_domain.OracleLabeller(gen), {"labels": "exact"}
  dataset = evaluation_dataset(config)
  if tuple(dataset.observation_shape) != tuple(gen.image_shape):
    raise ValueError(f"config.evaluation.dataset: its images {tuple(dataset.observation_shape)} and the generator's "
                     f"{tuple(gen.image_shape)} differ; the factor classifier cannot label them")
  steps = int(settings["classifier_steps"])
  directory = classifier_directory(settings["classifier_dir"], workdir)
  io.makedirs(directory)
  path = quality.classifier_cache_path(directory, config.evaluation.dataset.name, dataset.observation_shape, steps)
  cached = io.exists(path)
  with console.phase("factor classifier" + (" (cached)" if cached else f" ({steps} steps)")):
    classifier = quality.load_or_train_classifier(dataset, path, steps=steps, seed=0)
  return (generated_domain.ClassifierLabeller(classifier, dataset),
          {"labels": "classifier", "classifier": path, "classifier_steps": steps,
           # None: read from a cache written before caches kept their training record
           "classifier_train_accuracy": list(classifier.train_accuracy) or None})


def generated_domain_evaluation(config, workdir: str, sampler: sampling.Sampler,
                                named: Sequence[tuple[str, Directions]], rng: jax.Array,
                                settings: Mapping[str, Any] | None = None):
  """(rows: {name: generated-domain scores} of the named directions, references: {row: (Directions or None where
  none could be made, scores)},
  about: how the samples were labelled). Every set is scored on the same samples (seed config.seed), so only the
  directions differ. Reference rows, in the named directions' space (the first one's; 'w+' is scored in 'w'):
    probe  — the supervised ceiling: one least-squares (or logistic) probe direction per factor, fitted on
             probe_num_samples other samples (`directions.probe`), saved as probe_directions.npz in the workdir;
    random — the floor: as many random orthonormal directions as the first named set has.
  Direction recovery (Hungarian on |cos| against the true directions) is part of each row on an oracle generator."""
  from ganlatent_jax.directions import probe, random_directions
  from ganlatent_jax.metrics import generated_domain
  settings = settings or generated_domain_settings(config)
  if settings is None:
    raise ValueError("config.evaluation.generated_domain is absent or disabled")
  if not named:
    raise ValueError("generated_domain_evaluation: no directions to score")
  clashes = sorted({name for name, _ in named} & set(settings["references"]))
  if clashes:
    raise ValueError(f"directions named {clashes} clash with config.evaluation.generated_domain.references")
  gen = sampler.gen
  labeller, about = generated_domain_labeller(config, workdir, gen, settings)
  truncation = None if sampler.conditional else sampler.truncation
  seed = int(config.seed)
  score_kwargs = dict(num_train=int(settings["num_train"]), num_test=int(settings["num_test"]),
                      dci_num_train=int(settings["dci_num_train"]), batch_size=int(settings["batch_size"]),
                      metrics=settings["metrics"], seed=seed, truncation=truncation,
                      partial_factors=settings["partial_factors"])

  def score(name: str, directions: Directions) -> dict[str, Any]:
    with console.phase(f"generated-domain scores: {name}"):
      return generated_domain.generated_domain_scores(gen, directions, labeller, **score_kwargs)

  rows = {name: score(name, directions) for name, directions in named}
  first = named[0][1]
  space = "z" if first.space == "z" else "w"
  references: dict[str, tuple[Directions, dict[str, Any]]] = {}
  for reference in settings["references"]:
    if reference == "probe":
      with console.phase("probe directions"):
        try:
          directions = probe.probe_directions(gen, labeller, space, num=int(settings["probe_num_samples"]),
                                              batch_size=int(settings["batch_size"]), seed=seed + PROBE_SEED_OFFSET,
                                              method=settings["probe"], truncation=truncation,
                                              partial_factors=settings["partial_factors"])
        except probe.NoVaryingFactor as e:   # e.g. a barely trained GAN: the row says why it has no scores
          references[reference] = (None, {"generated_scores_undefined": str(e)})
          continue
      directions.save(os.path.join(workdir, "probe_directions.npz"))
    else:
      latent_dim = first.latent_dim
      directions = random_directions.random(latent_dim, min(first.num_directions, latent_dim),
                                            jax.random.fold_in(rng, RANDOM_DIRECTIONS_FOLD), space=space)
    references[reference] = (directions, score(reference, directions))
  about.update(space=space, truncation=None if space == "z" else truncation, num_samples=score_kwargs["num_train"] + score_kwargs["num_test"])
  return rows, references, about


def code_axes_generated_domain(config, workdir: str, gen: generators.Generator, num_codes: int, name: str,
                               rng: jax.Array) -> dict[str, Any]:
  """Generated-domain scores of a GAN trained with a structured code — the first `num_codes` dims of z (UD-GAN's
  knobs, InfoGAN's c) — as {name: scores, 'probe': ..., 'random': ..., 'generated_domain': how they were labelled},
  or {} when config.evaluation.generated_domain is absent or disabled. The code's own axes are its 'directions', so
  each sample's code is the code it was drawn with (from `gen.sample_z`: the prior G was trained on): the paper's
  claim (this code controls that factor) measured on G's own images, no encoder, beside the same probe and random
  rows as every direction method's."""
  settings = generated_domain_settings(config)
  if settings is None:
    return {}
  axes = Directions(np.eye(gen.latent_dim, num_codes, dtype=np.float32), space="z", meta={"source": name})
  rows, references, about = generated_domain_evaluation(config, workdir, sampling.make_sampler(gen),
                                                        [(name, axes)], rng, settings)
  return {name: rows[name], **{ref: scores for ref, (_, scores) in references.items()}, "generated_domain": about}


def load_directions(workdir: str, name: str = "directions") -> Directions:
  path = os.path.join(workdir, f"{name}.npz")
  io.wait_for_writer(f"{name}.npz")
  if not io.exists(path):
    raise FileNotFoundError(f"{path} does not exist: run `python -m ganlatent_jax.main` with this config and workdir "
                            f"first")
  return Directions.load(path)
