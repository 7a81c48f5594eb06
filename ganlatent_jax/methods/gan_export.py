"""A GAN run (finished or not) as a shipped testbed generator with a model card, and its quality re-measured.

  python -m ganlatent_jax.methods.gan export --workdir=/work/testbed_runs/dsprites --name=dsprites \\
      --classifier_steps=1500
  python -m ganlatent_jax.methods.gan remeasure --name=dsprites --classifier_steps=1500

`export` writes the run's EMA generator, samples.png, quality.json and MODEL_CARD.md to the package's
assets/testbed/NAME (or --out). `remeasure` needs no run: it measures the shipped generator again (after a change to
`metrics.quality` or to a dataset's identifiable labels) and rewrites quality.json and the card's Quality section,
leaving its training record as it was.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import struct

import jax
import ml_collections
import numpy as np

from ganlatent_jax import viz
from ganlatent_jax.methods import gan

DEFAULT_CLASSIFIER_STEPS = 400


def training_seconds(workdir: str) -> float:
  """Wall time spent training, summed over the run's sessions (first to last event of each TensorBoard file)."""
  from tensorboardX.proto import event_pb2
  total = 0.0
  for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
    data, offset, times = open(path, "rb").read(), 0, []
    while offset + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[offset + 12:offset + 12 + length])
      times.append(event.wall_time)
      offset += 12 + length + 4
    if times:
      total += max(times) - min(times)
  return total


def restore_run(workdir: str):
  """(config, engine, state) of a run's latest checkpoint."""
  from ganlatent_jax import checkpoint as checkpoint_lib
  from ganlatent_jax.training import loop
  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  terms = None
  if config.method == "infogan":
    from ganlatent_jax.methods import infogan
    terms = infogan.terms_factory(config)
  mesh, engine = gan.setup(config, terms)
  checkpointer = checkpoint_lib.Checkpointer(workdir, save_every=0)
  if checkpointer.latest_step() is None:
    raise FileNotFoundError(f"{workdir}: no checkpoint to export")
  state = loop.init_or_restore(engine.init_fn, config.seed, mesh, checkpointer)
  checkpointer.close()
  return config, engine, state


def generated_images(generator, num_samples: int, seed: int) -> np.ndarray:
  """`num_samples` images of z ~ N(0, I) drawn with `seed`, NHWC in [0, 1] (the same set for export and remeasure)."""
  render = jax.jit(lambda g, z: g(z))
  z = jax.random.normal(jax.random.key(seed), (num_samples, generator.latent_dim))
  images = np.concatenate([np.asarray(render(generator, z[i:i + 100])) for i in range(0, num_samples, 100)])
  return np.clip((images + 1.0) / 2.0, 0.0, 1.0)


def measure(generator, dataset, num_samples: int, classifier_steps: int, classifier_cache: str | None,
            seed: int = 0) -> tuple[dict, np.ndarray]:
  """(`metrics.quality.quality_report` of the generator's samples, the samples)."""
  from ganlatent_jax.metrics import quality
  images = generated_images(generator, num_samples, seed)
  classifier = quality.load_or_train_classifier(dataset, classifier_cache, steps=classifier_steps, seed=seed,
                                                log=lambda m: logging.info("%s", m))
  return quality.quality_report(classifier, dataset, images, seed=seed + 1), images


def classifier_cache_path(directory: str, dataset_name: str, shape, classifier_steps: int) -> str:
  # "_identifiable": trained on the dataset's identifiable labels; a cache of the earlier all-labels classifier
  # must not be picked up.
  return os.path.join(directory, f"classifier_{dataset_name}_{shape[0]}x{shape[1]}_{classifier_steps}"
                                 "_identifiable.msgpack")


def quality_section(report: dict, classifier_steps: int, num_samples: int, command: str) -> list[str]:
  """The model card's '## Quality' section (its lines)."""
  from ganlatent_jax.metrics import quality
  met = report["generated"]["coverage"] >= 0.9 and abs(report["confidence_gap"]) <= 0.1
  lines = ["## Quality", "",
           f"Factor classifier (`metrics.quality`) trained on {classifier_steps} batches of 64 real images, on the "
           "dataset's identifiable labels (values that render alike merged, factors an image does not show masked: "
           "see `identifiable_labels` of the dataset); confident = top probability ≥ "
           f"{report['threshold']}; {num_samples} generated vs {num_samples} real images. Measured by `{command}`.",
           "", quality.format_report(report), "",
           "Targets: coverage ≥ 0.9 and generated mean confidence within 0.1 of the real reference: "
           + ("met." if met else "NOT met.")]
  if report["real"]["coverage"] < 0.9:
    lines += ["", f"The real-image reference itself covers only {report['real']['coverage']:.3f} of the pairs: the "
              "classifier cannot tell some values apart even on real images (per-factor table above), so the "
              "coverage target is out of reach of any generator as measured by this classifier; compare the "
              "generated and real rows factor by factor."]
  return lines + [""]


def _classifier_flag(classifier_steps: int) -> str:
  return f" --classifier_steps={classifier_steps}" if classifier_steps != DEFAULT_CLASSIFIER_STEPS else ""


def _remeasure_command(name: str, classifier_steps: int) -> str:
  return f"python -m ganlatent_jax.methods.gan remeasure --name={name}{_classifier_flag(classifier_steps)}"


def export_testbed(workdir: str, directory: str, name: str, num_samples: int = 2000,
                   classifier_steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0) -> dict:
  """Writes the run's EMA generator to `directory` with samples.png and MODEL_CARD.md (quality measured here)."""
  from ganlatent_jax.generators.load import load
  config, engine, state = restore_run(workdir)
  step = int(jax.device_get(state.step))
  gan.export_generator(engine, state, directory, source=f"testbed:{name}")
  # The classifier is cached next to the workdir: it depends only on the dataset, not on the run.
  cache = classifier_cache_path(os.path.dirname(os.path.abspath(workdir)), config.data.name,
                                engine.dataset.observation_shape, classifier_steps)
  report, images = measure(load(directory), engine.dataset, num_samples, classifier_steps, cache, seed)
  viz.images_to_grid(viz.to_display(images[:64], (0.0, 1.0)), path=os.path.join(directory, "samples.png"))
  with open(os.path.join(directory, "quality.json"), "w") as f:
    json.dump(report, f, indent=2)
  hours = training_seconds(workdir) / 3600.0
  card = [f"# testbed:{name}", "",
          f"A {engine.gen.config['family']} generator trained by `ganlatent_jax.methods.gan` on the procedural "
          f"`{config.data.name}` dataset ({'×'.join(map(str, engine.gen.info.image_shape))}). Output range [-1, 1]; "
          "`generators.load(\"testbed:" + name + "\")`; a pure function of z"
          + (" (and of w: `mapping`/`synthesis`); noise inputs are the stored constant buffers." if
             "w" in engine.gen.info.latent_spaces else "."), "",
          "## Training", "",
          f"- steps: {step} of the configured {config.steps} (batch {config.batch_size}: {step * config.batch_size} "
          f"real images seen)",
          f"- training time: {hours:.2f} h wall time on a shared 2-core CPU machine",
          f"- command: `python -m ganlatent_jax.main --config=configs/gan_{name}.py "
          f"--workdir=/work/testbed_runs/{name}` then `python -m ganlatent_jax.methods.gan export "
          f"--workdir=/work/testbed_runs/{name} --name={name}{_classifier_flag(classifier_steps)}`",
          "- exported weights: the EMA of G", "",
          *quality_section(report, classifier_steps, num_samples, _remeasure_command(name, classifier_steps)),
          "## Config", "", "```json", json.dumps(engine.gen.config, indent=2), "```", "",
          "Run config:", "", "```json", config.to_json_best_effort(indent=2, sort_keys=True), "```", "",
          "![samples](samples.png)", ""]
  with open(os.path.join(directory, "MODEL_CARD.md"), "w") as f:
    f.write("\n".join(card))
  return report


def remeasure_testbed(directory: str, name: str, num_samples: int = 2000,
                      classifier_steps: int = DEFAULT_CLASSIFIER_STEPS, classifier_dir: str | None = None,
                      seed: int = 0, dataset_kwargs: dict | None = None) -> dict:
  """Measures the generator in `directory` against dataset `name` again (the samples and classifier seeds of
  `export_testbed`); rewrites quality.json and the card's Quality section."""
  from ganlatent_jax.generators.load import load
  card_path = os.path.join(directory, "MODEL_CARD.md")
  with open(card_path) as f:
    card = f.read()
  start = card.find("## Quality\n")
  end = card.find("\n## ", start + 1)
  if start < 0 or end < 0:
    raise ValueError(f"{card_path}: no '## Quality' section followed by another section to replace")
  generator = load(directory)
  dataset = gan.make_dataset(name, **(dataset_kwargs or {}))
  if tuple(dataset.observation_shape) != tuple(generator.image_shape):
    raise ValueError(f"{directory}: the generator makes {tuple(generator.image_shape)} images but dataset {name!r} "
                     f"has {tuple(dataset.observation_shape)}")
  cache = classifier_cache_path(classifier_dir, name, dataset.observation_shape, classifier_steps) \
      if classifier_dir else None
  report, _ = measure(generator, dataset, num_samples, classifier_steps, cache, seed)
  section = "\n".join(quality_section(report, classifier_steps, num_samples,
                                      _remeasure_command(name, classifier_steps)))
  # Written to temporary files first and renamed, so a failure leaves the card and quality.json as they were.
  for path, text in ((os.path.join(directory, "quality.json"), json.dumps(report, indent=2)),
                     (card_path, card[:start] + section + card[end:])):
    with open(path + ".tmp", "w") as f:
      f.write(text)
    os.replace(path + ".tmp", path)
  return report


def main(argv=None):
  import argparse
  from ganlatent_jax.generators.load import TESTBED_DIR
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("command", choices=["export", "remeasure"])
  parser.add_argument("--workdir", default=None, help="export: the GAN run")
  parser.add_argument("--name", required=True, help="testbed name = its dataset (shapes3d, dsprites)")
  parser.add_argument("--out", default=None, help="default: the package's assets/testbed/NAME")
  parser.add_argument("--num_samples", type=int, default=2000)
  parser.add_argument("--classifier_steps", type=int, default=DEFAULT_CLASSIFIER_STEPS)
  parser.add_argument("--classifier_dir", default=None, help="remeasure: where to cache the trained classifier")
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO)
  directory = args.out or str(TESTBED_DIR / args.name)
  if args.command == "export":
    if not args.workdir:
      parser.error("export needs --workdir")
    report = export_testbed(args.workdir, directory, args.name, args.num_samples, args.classifier_steps)
  else:
    report = remeasure_testbed(directory, args.name, args.num_samples, args.classifier_steps, args.classifier_dir)
  print(json.dumps({k: report[k] for k in ("generated", "real", "frechet_distance")}, indent=2))


if __name__ == "__main__":
  main()
