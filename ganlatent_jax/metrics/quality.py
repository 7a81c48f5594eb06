"""Sample quality of a generator trained on ground-truth data, judged by a factor classifier trained on real data.

A small conv net with one softmax head per factor is trained on procedural real images (`train_factor_classifier`).
On a set of images it gives, per factor, a predicted value and its probability (the confidence). Then:
  * coverage: the fraction of all (factor, value) pairs that occur among the confident predictions
    (probability ≥ `threshold`). A generator that collapses onto part of the data leaves pairs uncovered;
  * mean confidence: the mean over images and factors of the top probability. Blurry or implausible samples get
    unconfident predictions; a real-image reference says what "confident" means for this classifier;
  * Fréchet distance between Gaussian fits of the classifier's penultimate features on real and generated images
    (FID's formula in a feature space that knows the factors).
`quality_report` computes all of them for generated images and the real-image reference, and — given the latents
the images were generated from — the **latent probe**: per factor, the held-out accuracy of a linear classifier from
a latent space (w, z) to the classifier's label of the image. It says how linearly the latent encodes each factor,
which is what direction methods look for. `quality_targets` judges a report against the testbed targets.

Only what an image can show is asked: the dataset's `identifiable_labels` merges factor values rendered as the same
image and masks factors an image does not determine (dSprites' orientation of squares and ellipses, which are
symmetric). The classifier is trained on those labels with masked losses, and coverage and confidence of a factor
are measured on the images whose predicted factors make it identifiable, out of `identifiable_num_values` values.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganlatent_jax.metrics import generator_metrics
from ganlatent_jax.nets import layers

DEFAULT_THRESHOLD = 0.5


class FactorClassifierNet(nn.Module):
  """Stride-2 4×4 convs (width doubling, capped) down to 4×4, a dense feature layer, one linear head per factor."""
  num_values: tuple[int, ...]
  width: int = 32
  feature_dim: int = 128

  @nn.compact
  def __call__(self, images):
    x = images * 2.0 - 1.0
    width, i = self.width, 0
    while x.shape[1] > 4:
      x = jax.nn.leaky_relu(layers.Conv2d(min(width, 4 * self.width), (4, 4), stride=2, padding=1,
                                          name=f"conv_{i}")(x), 0.2)
      width, i = width * 2, i + 1
    features = jax.nn.relu(nn.Dense(self.feature_dim, name="features")(x.reshape(x.shape[0], -1)))
    logits = nn.Dense(sum(self.num_values), name="heads")(features)
    return logits, features


def split_logits(logits: jax.Array, num_values: Sequence[int]) -> list[jax.Array]:
  return jnp.split(logits, np.cumsum(num_values)[:-1], axis=-1)


@dataclasses.dataclass
class FactorClassifier:
  net: FactorClassifierNet
  params: Any
  factor_names: tuple[str, ...]
  train_accuracy: tuple[float, ...] = ()

  @property
  def num_values(self) -> tuple[int, ...]:
    return self.net.num_values

  def predict(self, images: np.ndarray, batch_size: int = 256) -> tuple[list[np.ndarray], np.ndarray]:
    """(per-factor probabilities [(N, values_i)], penultimate features (N, F)) for images NHWC in [0, 1]."""
    apply = _apply_fn(self.net)
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
      logits, features = apply(self.params, jnp.asarray(images[start:start + batch_size], jnp.float32))
      probs.append([np.asarray(jax.nn.softmax(l, axis=-1)) for l in split_logits(logits, self.num_values)])
      feats.append(np.asarray(features))
    return [np.concatenate([p[i] for p in probs]) for i in range(len(self.num_values))], np.concatenate(feats)


_APPLY_CACHE: dict = {}


def _apply_fn(net):
  if net not in _APPLY_CACHE:
    _APPLY_CACHE[net] = jax.jit(lambda params, x: net.apply({"params": params}, x))
  return _APPLY_CACHE[net]


def train_factor_classifier(dataset, *, steps: int = 1500, batch_size: int = 64, learning_rate: float = 2e-3,
                            width: int = 32, feature_dim: int = 128, seed: int = 0,
                            log: Callable[[str], None] | None = None) -> FactorClassifier:
  """Trains the factor classifier on `dataset.sample` batches (cross-entropy summed over factors, Adam)."""
  num_values = tuple(int(v) for v in dataset.factors_num_values)
  net = FactorClassifierNet(num_values=num_values, width=width, feature_dim=feature_dim)
  shape = tuple(dataset.observation_shape)
  params = net.init(jax.random.key(seed), jnp.zeros((1, *shape), jnp.float32))["params"]
  schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.05)
  optimizer = optax.adam(schedule)
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, images, labels, mask):
    def loss_fn(p):
      logits, _ = net.apply({"params": p}, images)
      heads = split_logits(logits, num_values)
      weights = mask / jnp.maximum(mask.sum(0), 1.0)   # per factor: the mean over the images that show it
      losses = [jnp.sum(weights[:, i] * optax.softmax_cross_entropy_with_integer_labels(h, labels[:, i]))
                for i, h in enumerate(heads)]
      accuracy = jnp.stack([jnp.sum(weights[:, i] * (jnp.argmax(h, -1) == labels[:, i]))
                            for i, h in enumerate(heads)])
      return sum(losses), accuracy
    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, accuracy

  random_state = np.random.RandomState(seed)
  recent = []
  for i in range(steps):
    factors, images = dataset.sample(batch_size, random_state)
    labels, mask = dataset.identifiable_labels(factors)
    params, opt_state, loss, accuracy = step(params, opt_state, images, labels, mask.astype(np.float32))
    recent.append(np.asarray(accuracy))
    recent = recent[-50:]
    if log is not None and (i + 1) % 250 == 0:
      log(f"factor classifier step {i + 1}/{steps}: loss {float(loss):.3f}, accuracy "
          f"{np.round(np.mean(recent, 0), 3).tolist()}")
  train_accuracy = tuple(float(a) for a in np.mean(recent, 0)) if recent else ()
  return FactorClassifier(net=net, params=params, factor_names=tuple(dataset.factor_names),
                          train_accuracy=train_accuracy)


def training_record_path(path: str) -> str:
  """The JSON beside a cached classifier that keeps its training accuracy per factor (the labels' quality: a run that
  reads the cache reports it as the run that trained it did)."""
  return os.path.splitext(path)[0] + ".json"


def save_classifier(classifier: FactorClassifier, path: str) -> None:
  """Atomically (a cache another run may read while this one writes): the params, then the training record."""
  from ganlatent_jax import io
  io.save_variables(path, jax.device_get(classifier.params))
  io.write_json(training_record_path(path), {"factor_names": list(classifier.factor_names),
                                             "train_accuracy": list(classifier.train_accuracy)})


def load_or_train_classifier(dataset, path: str | None = None, **train_kwargs) -> FactorClassifier:
  """The classifier cached at `path` (params, and its training accuracy when the cache has the record: caches
  written before 2026-12-05 have none, `train_accuracy` is then ()), trained with the same kwargs; else trained and
  saved there."""
  import flax.serialization
  from ganlatent_jax import io
  if path and io.exists(path):
    num_values = tuple(int(v) for v in dataset.factors_num_values)
    net = FactorClassifierNet(num_values=num_values, width=train_kwargs.get("width", 32),
                              feature_dim=train_kwargs.get("feature_dim", 128))
    params = flax.serialization.msgpack_restore(io.read_bytes(path))
    record_path = training_record_path(path)
    record = json.loads(io.read_text(record_path)) if io.exists(record_path) else {}
    if record and list(record["factor_names"]) != list(dataset.factor_names):
      raise ValueError(f"{record_path}: a classifier of factors {record['factor_names']}, not the dataset's "
                       f"{list(dataset.factor_names)}")
    return FactorClassifier(net=net, params=params, factor_names=tuple(dataset.factor_names),
                            train_accuracy=tuple(float(a) for a in record.get("train_accuracy", ())))
  classifier = train_factor_classifier(dataset, **train_kwargs)
  if path:
    save_classifier(classifier, path)
  return classifier


def coverage_and_confidence(probs: Sequence[np.ndarray], threshold: float = DEFAULT_THRESHOLD,
                            dataset=None) -> dict[str, Any]:
  """Coverage of (factor, value) pairs among confident predictions, and mean top probability.

  With a `dataset`, predictions are read through its `identifiable_labels` (values merged, factors masked by the
  other predicted factors) and coverage is out of its `identifiable_num_values`."""
  predicted = np.stack([p.argmax(axis=-1) for p in probs], axis=1)
  if dataset is None:
    labels, mask, num_values = predicted, np.ones(predicted.shape, bool), [p.shape[-1] for p in probs]
  else:
    labels, mask = dataset.identifiable_labels(predicted)
    num_values = dataset.identifiable_num_values
  covered, total, per_factor_coverage, per_factor_confidence = 0, 0, [], []
  for i, p in enumerate(probs):
    top = p.max(axis=-1)[mask[:, i]]
    seen = np.unique(labels[mask[:, i], i][top >= threshold])
    covered += len(seen)
    total += num_values[i]
    per_factor_coverage.append(len(seen) / num_values[i])
    per_factor_confidence.append(float(top.mean()) if top.size else 0.0)
  return {"coverage": covered / total, "mean_confidence": float(np.mean(per_factor_confidence)),
          "coverage_per_factor": per_factor_coverage, "confidence_per_factor": per_factor_confidence}


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
  # The eigh route: the small classifier's ReLU features have dead units, so their covariances are singular.
  return generator_metrics.frechet_distance_from_features(features_a, features_b, method="eigh")


def latent_probe(latents: Mapping[str, np.ndarray], probs: Sequence[np.ndarray], dataset=None, *,
                 train_fraction: float = 0.75, seed: int = 0) -> dict[str, Any]:
  """Per factor and latent space, the held-out accuracy of a linear classifier from the latent to the factor label.

  latents: {space name: (N, D)} for the same N images whose per-factor classifier probabilities are `probs`. Labels
  are the classifier's predictions read through the dataset's `identifiable_labels` (a masked factor is probed on
  the images that show it only). The classifier is multinomial logistic regression on standardised latents, fit on
  a random `train_fraction` of the samples and scored on the rest; `majority` is the held-out rate of the most
  frequent label (what predicting a constant gets), the floor to read the accuracies against."""
  from sklearn.linear_model import LogisticRegression
  predicted = np.stack([p.argmax(axis=-1) for p in probs], axis=1)
  labels, mask = (predicted, np.ones(predicted.shape, bool)) if dataset is None else \
      dataset.identifiable_labels(predicted)
  num = len(predicted)
  if any(len(x) != num for x in latents.values()):
    raise ValueError(f"latent_probe: every latent needs one row per image ({num}); got "
                     f"{ {k: len(v) for k, v in latents.items()} }")
  is_train = np.zeros(num, bool)
  is_train[np.random.RandomState(seed).permutation(num)[:int(round(train_fraction * num))]] = True
  result: dict[str, Any] = {"train_fraction": train_fraction, "majority": [],
                            **{space: [] for space in latents}}
  for i in range(predicted.shape[1]):
    train, test = is_train & mask[:, i], ~is_train & mask[:, i]
    y_train, y_test = labels[train, i], labels[test, i]
    if len(np.unique(y_train)) < 2 or not test.any():  # nothing to learn or to score: the factor never varies
      result["majority"].append(float("nan"))
      for space in latents:
        result[space].append(float("nan"))
      continue
    result["majority"].append(float(np.bincount(y_test).max() / len(y_test)))
    for space, x in latents.items():
      x = np.asarray(x, np.float64).reshape(num, -1)
      mean, std = x[train].mean(0), x[train].std(0) + 1e-8
      model = LogisticRegression(max_iter=2000).fit((x[train] - mean) / std, y_train)
      result[space].append(float(model.score((x[test] - mean) / std, y_test)))
  return result


def quality_targets(report: dict[str, Any], *, frechet_ratio: float = 5.0, confidence_gap: float = 0.03,
                    factor_confidence: float = 0.9, coverage: float = 0.9) -> list[tuple[str, bool, str]]:
  """The testbed targets as (name, met, what was measured): every (factor, value) pair covered, Fréchet distance
  within `frechet_ratio` × the real-vs-real floor, generated mean confidence within `confidence_gap` of the real
  reference, and every factor's generated confidence ≥ `factor_confidence`."""
  g = report["generated"]
  ratio = report["frechet_distance"] / max(report["frechet_distance_real_vs_real"], 1e-12)
  weakest = int(np.argmin(g["confidence_per_factor"]))
  names = report["factor_names"]
  return [
      (f"coverage ≥ {coverage}", g["coverage"] >= coverage, f"{g['coverage']:.3f}"),
      (f"Fréchet ≤ {frechet_ratio:g}× floor", ratio <= frechet_ratio,
       f"{report['frechet_distance']:.4g} = {ratio:.1f}× the floor {report['frechet_distance_real_vs_real']:.4g}"),
      (f"confidence gap ≤ {confidence_gap}", report["confidence_gap"] <= confidence_gap,
       f"{report['confidence_gap']:.3f}"),
      (f"every factor's confidence ≥ {factor_confidence}", g["confidence_per_factor"][weakest] >= factor_confidence,
       f"lowest: {names[weakest]} {g['confidence_per_factor'][weakest]:.3f}"),
  ]


def quality_report(classifier: FactorClassifier, dataset, generated: np.ndarray, *, num_real: int | None = None,
                   threshold: float = DEFAULT_THRESHOLD, seed: int = 1,
                   latents: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
  """Coverage / confidence of `generated` images (NHWC in [0, 1]) and of as many real images, and the Fréchet
  distance between their classifier features; with `latents` ({space: (N, D)} of the generated images) also the
  `latent_probe`."""
  num_real = len(generated) if num_real is None else num_real
  _, real = dataset.sample(num_real, np.random.RandomState(seed))
  gen_probs, gen_features = classifier.predict(np.asarray(generated, np.float32))
  real_probs, real_features = classifier.predict(real)
  report = {"threshold": threshold, "num_generated": int(len(generated)), "num_real": int(num_real),
            "factor_names": list(classifier.factor_names),
            "generated": coverage_and_confidence(gen_probs, threshold, dataset),
            "real": coverage_and_confidence(real_probs, threshold, dataset),
            "frechet_distance": frechet_distance(real_features, gen_features)}
  # The same distance between two independent real sets: the floor that sampling noise alone gives.
  _, other_real = dataset.sample(num_real, np.random.RandomState(seed + 1000))
  report["frechet_distance_real_vs_real"] = frechet_distance(real_features, classifier.predict(other_real)[1])
  report["confidence_gap"] = report["real"]["mean_confidence"] - report["generated"]["mean_confidence"]
  if latents:
    report["latent_probe"] = latent_probe(latents, gen_probs, dataset)
  return report


def classifier_cache_path(directory: str, dataset_name: str, shape, classifier_steps: int) -> str:
  """Where a factor classifier of `dataset_name` images of `shape` trained `classifier_steps` batches is cached (it
  depends only on the dataset, so runs and testbeds share it)."""
  import os
  # "_identifiable": trained on the dataset's identifiable labels; a cache of the earlier all-labels classifier
  # must not be picked up.
  return os.path.join(directory, f"classifier_{dataset_name}_{shape[0]}x{shape[1]}_{classifier_steps}"
                                 "_identifiable.msgpack")


def generated_samples(generator, num_samples: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """(`num_samples` images of z drawn from the generator's prior (`sample_z`) with key(seed), NHWC in [0, 1]; their
  latents {'z', and 'w' where the generator has a W space}) — the same set for every measurement of one generator."""
  z = generator.sample_z(jax.random.key(seed), num_samples)
  parts = [jax.device_get(_render_with_latents(generator, z[i:i + 100])) for i in range(0, num_samples, 100)]
  images = np.clip((np.concatenate([p[0] for p in parts]) + 1.0) / 2.0, 0.0, 1.0)
  latents = {"w": np.concatenate([p[1] for p in parts])} if "w" in generator.info.latent_spaces else {}
  return images, {**latents, "z": np.asarray(z)}


@jax.jit
def _render_with_latents(generator, z):
  """(images, w) of z — w only where the generator has a W space (else z again). Jitted once per architecture."""
  return generator(z), (generator.mapping(z) if "w" in generator.info.latent_spaces else z)


def measure_generator(generator, dataset, num_samples: int, classifier_steps: int, classifier_cache: str | None,
                      seed: int = 0, log=None) -> tuple[dict[str, Any], np.ndarray]:
  """(`quality_report` of `num_samples` samples of `generator` against `dataset`, with the latent probe in w and z;
  the samples). The factor classifier is trained `classifier_steps` batches (seed `seed`) or read from the cache."""
  images, latents = generated_samples(generator, num_samples, seed)
  classifier = load_or_train_classifier(dataset, classifier_cache, steps=classifier_steps, seed=seed, log=log)
  return quality_report(classifier, dataset, images, seed=seed + 1, latents=latents), images


def format_report(report: dict[str, Any]) -> str:
  """A markdown table of a `quality_report`."""
  g, r = report["generated"], report["real"]
  lines = ["| | coverage | mean confidence |", "|---|---|---|",
           f"| generated ({report['num_generated']}) | {g['coverage']:.3f} | {g['mean_confidence']:.3f} |",
           f"| real reference ({report['num_real']}) | {r['coverage']:.3f} | {r['mean_confidence']:.3f} |", "",
           f"Fréchet distance (classifier features), real vs generated: {report['frechet_distance']:.4g}; "
           f"real vs real (sampling-noise floor): {report['frechet_distance_real_vs_real']:.4g}", "",
           "| factor | coverage gen / real | confidence gen / real |", "|---|---|---|"]
  for i, name in enumerate(report["factor_names"]):
    lines.append(f"| {name} | {g['coverage_per_factor'][i]:.3f} / {r['coverage_per_factor'][i]:.3f} | "
                 f"{g['confidence_per_factor'][i]:.3f} / {r['confidence_per_factor'][i]:.3f} |")
  probe = report.get("latent_probe")
  if probe:
    spaces = [k for k in probe if k not in ("train_fraction", "majority")]
    lines += ["", f"Latent probe (held-out accuracy of a linear classifier from the latent to the factor's label; "
                  f"{1 - probe['train_fraction']:.0%} of the samples held out):", "",
              "| factor | " + " | ".join(f"{s} probe" for s in spaces) + " | majority class |",
              "|---" * (len(spaces) + 2) + "|"]
    for i, name in enumerate(report["factor_names"]):
      lines.append(f"| {name} | " + " | ".join(f"{probe[s][i]:.3f}" for s in spaces)
                   + f" | {probe['majority'][i]:.3f} |")
  return "\n".join(lines)
