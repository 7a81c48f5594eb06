"""Writes the shipped oracle generators (assets/testbed/oracle-NAME) and measures how real their images look.

    python -m ganlatent_jax.generators.oracle_assets --name=dsprites [--classifier_steps=1500]
        [--classifier_dir=DIR] [--out=DIR]

writes generator.json + variables.msgpack (A drawn from the config's seed: the same files every time), samples.png
and MODEL_CARD.md. The card reports the accuracy of the factor classifier of `metrics.quality`, trained on the
procedural dataset's real images, on oracle images: at random latents (labels: the nearest grid value of each
continuous factor) and at the dataset's own factor combinations (`oracle.latents_for_factors`), beside its accuracy
on real images. Accuracy is read through the dataset's `identifiable_labels`, as the classifier was trained.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
from typing import Any

import jax
import numpy as np

from ganlatent_jax import io
from ganlatent_jax.generators import oracle
from ganlatent_jax.generators.base import Generator

CONFIGS = {"dsprites": oracle.make_config(dataset="dsprites", latent_dim=16, condition=4.0, seed=0),
           "shapes3d": oracle.make_config(dataset="shapes3d", latent_dim=16, condition=4.0, seed=1)}
DEFAULT_CLASSIFIER_STEPS = 1500


def procedural_dataset(name: str):
  from ganlatent_jax.data import dsprites_procedural, shapes3d_procedural
  return {"dsprites": dsprites_procedural.DSprites, "shapes3d": shapes3d_procedural.Shapes3D}[name]()


@jax.jit
def _images_from_z(gen: Generator, z: jax.Array) -> jax.Array:
  return (gen(z) + 1.0) / 2.0


@jax.jit
def _images_from_w(gen: Generator, w: jax.Array) -> jax.Array:
  return (gen.synthesis(w) + 1.0) / 2.0


def _in_batches(function, gen: Generator, latents: jax.Array, batch_size: int = 64) -> np.ndarray:
  return np.concatenate([np.asarray(function(gen, latents[start:start + batch_size]))
                         for start in range(0, len(latents), batch_size)])


def classifier_accuracy(classifier, dataset, images: np.ndarray, factors: np.ndarray) -> list[float]:
  """Per factor: the fraction of images (showing the factor) whose predicted value is the true one."""
  probabilities, _ = classifier.predict(images)
  predicted = np.stack([p.argmax(axis=-1) for p in probabilities], axis=1)
  true_labels, mask = dataset.identifiable_labels(factors)
  predicted_labels, _ = dataset.identifiable_labels(predicted)
  return [float(np.mean((predicted_labels[:, i] == true_labels[:, i])[mask[:, i]])) for i in range(factors.shape[1])]


def measure_realism(gen: Generator, dataset, classifier, num: int = 2000, seed: int = 0) -> dict[str, Any]:
  """The classifier's per-factor accuracy on oracle images at random latents, on oracle images of the dataset's
  factor combinations, and on real images (the reference)."""
  random_state = np.random.RandomState(seed)
  z = gen.sample_z(jax.random.key(seed), num)
  at_random = classifier_accuracy(classifier, dataset, _in_batches(_images_from_z, gen, z),
                                  oracle.factor_labels(gen, z))
  grid_factors = dataset.sample_factors(num, random_state)
  at_grid = classifier_accuracy(classifier, dataset,
                                _in_batches(_images_from_w, gen, oracle.latents_for_factors(gen, grid_factors)),
                                grid_factors)
  real_factors = dataset.sample_factors(num, random_state)
  real = classifier_accuracy(classifier, dataset, dataset.sample_observations_from_factors(real_factors, None),
                             real_factors)
  return {"factor_names": list(oracle.factor_names(gen)), "num_images": num, "random_latents": at_random,
          "dataset_factors": at_grid, "real_images": real, "random_latents_min": min(at_random),
          "dataset_factors_min": min(at_grid)}


TARGET_ACCURACY = 0.95   # issue 23 item 1: the factor classifier labels oracle images (at dataset factors) this well
# Why a factor misses the target, as measured when the shipped card was made (2026-12-01, 1500 classifier steps,
# seeds 0): kept with the code so that a regeneration keeps the explanation beside the new numbers.
GAP_NOTES = {
    "dsprites": {
        "pos_x": "as good as on real images: the classifier, not the oracle, is the limit; at random latents the "
                 "continuous position falls between grid values",
        "pos_y": "as good as on real images: the classifier, not the oracle, is the limit",
        "orientation": "the classifier does not learn it in this budget even on real images (40 heart orientations "
                       "9° apart); this column says nothing about the oracle",
        "scale": "not geometry (sprite areas match the dataset within 1–2 % at every scale: 65.3 vs 64.4 pixels at "
                 "the smallest, 251.9 vs 251.0 at the largest) but edges: the dataset's sprites are binary, the "
                 "oracle's anti-aliased (≈ one pixel of grey, needed for gradients in the latent), and the "
                 "classifier, trained on hard edges only, reads the grey rim as a larger sprite (mean predicted − "
                 "true = +0.67 grid steps on oracle images, 0.00 on real ones)",
        "shape": "the oracle's soft edges (see scale): 56 of 102 oracle squares are called hearts. A classifier "
                 "trained with the oracle's edge softness (or on blurred real images), or a sharper oracle edge at "
                 "evaluation time, would close this; the threshold was not changed",
    },
}


def _target_section(name: str, report: dict[str, Any], classifier_steps: int) -> list[str]:
  """Whether each factor reaches TARGET_ACCURACY on oracle images at dataset factors, and (GAP_NOTES) why not."""
  names, oracle_acc, real_acc = report["factor_names"], report["dataset_factors"], report["real_images"]
  missed = [i for i, a in enumerate(oracle_acc) if a < TARGET_ACCURACY]
  if not missed:
    return [f"**Target (≥ {TARGET_ACCURACY} on oracle images at dataset factors) met** by every factor."]
  notes = GAP_NOTES.get(name, {})
  lines = [f"**Target (issue 23 item 1: ≥ {TARGET_ACCURACY} on oracle images at dataset factors) NOT met** for "
           f"{', '.join(names[i] for i in missed)} ({classifier_steps} classifier steps). Per factor:", ""]
  for i in missed:
    note = notes.get(names[i], "no explanation recorded yet (oracle_assets.GAP_NOTES)")
    lines.append(f"- **{names[i]}**: {oracle_acc[i]:.3f} on oracle images vs {real_acc[i]:.3f} on real images — {note}.")
  return lines


def _table(report: dict[str, Any]) -> list[str]:
  lines = ["| factor | oracle, random latents | oracle, dataset factors | real images |", "|---|---|---|---|"]
  for i, name in enumerate(report["factor_names"]):
    lines.append(f"| {name} | {report['random_latents'][i]:.3f} | {report['dataset_factors'][i]:.3f} | "
                 f"{report['real_images'][i]:.3f} |")
  return lines


def model_card(name: str, gen: Generator, report: dict[str, Any], classifier_steps: int) -> str:
  config = gen.info.config_dict()
  matrix = oracle.entangling_matrix(gen)
  num_factors = len(report["factor_names"])
  row_norms = np.linalg.norm(matrix[:num_factors], axis=1)
  return "\n".join([
      f"# testbed:oracle-{name}", "",
      f"The procedural {name} renderer (`data/{name}_procedural.py`) re-written in JAX as a generator whose factor "
      "directions are known (`generators/oracle.py`, renderer `generators/oracle_render.py`). Jittable and "
      "differentiable in the latent: soft (≈ one-pixel, box-filter-like) edges, the shape a sharp but smooth blend "
      "of the shapes, hues piecewise linear. Output range [-1, 1]; `generators.load(\"testbed:oracle-" + name +
      "\")`; latent spaces z and w (`mapping` / `synthesis`).", "",
      "## The map", "",
      f"z ~ N(0, I_{config['latent_dim']}) → w = A z → factor i = the grid-index coordinate "
      "n_i·Φ(w_i / ‖a_i‖) − 1/2 (uniform on [−1/2, n_i − 1/2], rounded = the dataset's factor class) mapped "
      f"affinely to the factor's value, for the first {num_factors} coordinates of w; the other "
      f"{config['latent_dim'] - num_factors} change nothing.", "",
      f"A ({config['latent_dim']}×{config['latent_dim']}, `params/mapping/kernel` = Aᵀ, seed {config['seed']}, "
      f"`oracle.entangling_map`): factor rows s_i·q_i with q_i orthonormal (uniformly random) and s_i log-spaced in "
      f"[1, {config['condition']:g}] (here {np.round(row_norms, 3).tolist()}), so the factors are independent; "
      "the nuisance rows are random and not orthogonal to them (SeFa's 'first_layer' and GANSpace do not get the "
      f"factors for free). Condition number of A: {np.linalg.cond(matrix):.2f}.", "",
      "True directions (`oracle.true_directions(gen, space)` or `oracle.oracle_directions(\"" + name + "\", space)`"
      "): the unit rows q_i in Z, the unit vectors e_i in W, in factor order "
      f"{report['factor_names']}.", "",
      "## Realism", "",
      f"Accuracy of the factor classifier of `metrics.quality` ({classifier_steps} steps on real procedural images, "
      f"identifiable labels) on {report['num_images']} images of each kind. Random latents are labelled with the "
      "nearest grid value of each continuous factor, so a latent between two grid values can be called either.", "",
      *_table(report), "", *_target_section(name, report, classifier_steps), "",
      f"Regenerate (assets and this card): `python -m ganlatent_jax.generators.oracle_assets --name={name} "
      f"--classifier_steps={classifier_steps}`. Written {datetime.date.today().isoformat()}.", ""])


def write_oracle(name: str, directory: str | os.PathLike, classifier=None, classifier_steps: int = 0,
                 num_images: int = 2000) -> dict[str, Any]:
  """Writes the oracle's files into `directory`; with a classifier, measures it and writes the card."""
  from ganlatent_jax import viz
  from ganlatent_jax.generators.load import load, save_converted
  config = CONFIGS[name]
  directory = pathlib.Path(directory)
  save_converted(directory, config, oracle.init_variables(config), source=f"testbed:oracle-{name}")
  gen = load(directory)
  samples = _in_batches(_images_from_z, gen, gen.sample_z(jax.random.key(0), 32))   # in [0, 1]
  viz.images_to_grid(viz.to_display(samples, (0.0, 1.0)), ncols=8, path=str(directory / "samples.png"))
  if classifier is None:
    return {}
  report = measure_realism(gen, procedural_dataset(name), classifier, num_images)
  io.write_json(directory / "realism.json", report)
  io.write_text(directory / "MODEL_CARD.md", model_card(name, gen, report, classifier_steps))
  return report


def main(argv=None):
  from ganlatent_jax.metrics import quality
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--name", required=True, choices=sorted(CONFIGS))
  parser.add_argument("--out", default=None, help="default: the package's assets/testbed/oracle-NAME")
  parser.add_argument("--classifier_steps", type=int, default=DEFAULT_CLASSIFIER_STEPS)
  parser.add_argument("--classifier_dir", default=None, help="cache the classifier here (trained if absent)")
  parser.add_argument("--num_images", type=int, default=2000)
  args = parser.parse_args(argv)
  from ganlatent_jax.generators.load import TESTBED_DIR
  out = args.out or TESTBED_DIR / f"oracle-{args.name}"
  cache = (os.path.join(args.classifier_dir, f"classifier_{args.name}_{args.classifier_steps}.msgpack")
           if args.classifier_dir else None)
  classifier = quality.load_or_train_classifier(procedural_dataset(args.name), cache, steps=args.classifier_steps,
                                                log=print)
  report = write_oracle(args.name, out, classifier, args.classifier_steps, args.num_images)
  print(json.dumps(report, indent=2))


if __name__ == "__main__":
  main()
