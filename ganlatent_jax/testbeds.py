"""A GAN run (finished or not) as a shipped testbed generator with a model card, and its quality re-measured.

  python -m ganlatent_jax.testbeds export --workdir=/work/testbed_runs/dsprites --name=dsprites \\
      --classifier_steps=4000
  python -m ganlatent_jax.testbeds remeasure --name=dsprites-v1 --classifier_steps=4000

`export` writes the run's EMA generator, samples.png, quality.json and MODEL_CARD.md to the package's
assets/testbed/NAME (or --out). `remeasure` needs no run: it measures the shipped generator again (after a change to
`metrics.quality` or to a dataset's identifiable labels) and rewrites quality.json and the card's Quality section,
leaving its training record as it was. A testbed's dataset is its name up to a version suffix (`shapes3d-v1` →
`shapes3d`).

This module sits above `methods/` (it reads a GAN run's export or restores it through the engine, and measures it
with `metrics`), so no method imports it.
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

from ganlatent_jax import io, viz
from ganlatent_jax.methods import gan
from ganlatent_jax.metrics import quality

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


def run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a GAN run in `workdir` was trained with (its config.json)."""
  with open(os.path.join(workdir, "config.json")) as f:
    return ml_collections.ConfigDict(json.load(f))


def run_generator(workdir: str):
  """(the run's EMA generator as a `Generator`, its family config dict, its step) — from the run's own export when training finished
  (workdir/generator, written by `methods.gan.train`; no checkpoint is read), else from the latest checkpoint."""
  from ganlatent_jax.generators.load import load
  config = run_config(workdir)
  exported = os.path.join(workdir, gan.EXPORT_DIR)
  record = os.path.join(workdir, "training_time.json")
  if os.path.exists(os.path.join(exported, "generator.json")) and os.path.exists(record):
    with open(record) as f:
      step = int(json.load(f)["step"])
    if step >= int(config.steps):
      with open(os.path.join(exported, "generator.json")) as f:
        return load(exported), json.load(f)["config"], step
  terms = None
  if config.method == "infogan":
    from ganlatent_jax.methods import infogan   # a run of the InfoGAN method exports like a plain GAN run
    terms = infogan.terms_factory(config)
  engine, state = gan.restore(config, workdir, terms)
  return gan.ema_generator(engine, state, source=workdir), engine.gen.config, int(jax.device_get(state.step))


def dataset_of(name: str) -> str:
  """The dataset of testbed `name`: its name up to a version suffix (`shapes3d-v1` → `shapes3d`)."""
  return name.split("-v", 1)[0]


def measure(generator, dataset, num_samples: int, classifier_steps: int, classifier_cache: str | None,
            seed: int = 0) -> tuple[dict, np.ndarray]:
  """(`metrics.quality.quality_report` of the generator's samples, with the latent probe in w and z; the samples)."""
  return quality.measure_generator(generator, dataset, num_samples, classifier_steps, classifier_cache, seed,
                                   log=lambda m: logging.info("%s", m))


classifier_cache_path = quality.classifier_cache_path


def quality_section(report: dict, classifier_steps: int, num_samples: int, command: str) -> list[str]:
  """The model card's '## Quality' section (its lines): the measures, the latent probe and each target, met or not."""
  targets = quality.quality_targets(report)
  lines = ["## Quality", "",
           f"Factor classifier (`metrics.quality`) trained on {classifier_steps} batches of 64 real images, on the "
           "dataset's identifiable labels (values that render alike merged, factors an image does not show masked: "
           "see `identifiable_labels` of the dataset); confident = top probability ≥ "
           f"{report['threshold']}; {num_samples} generated vs {num_samples} real images. Measured by `{command}`.",
           "", quality.format_report(report), "", "| target | met | measured |", "|---|---|---|",
           *[f"| {name} | {'yes' if met else '**no**'} | {measured} |" for name, met, measured in targets], ""]
  missed = [name for name, met, _ in targets if not met]
  lines.append("Targets: " + ("all met." if not missed else f"NOT met: {', '.join(missed)}."))
  if report["real"]["coverage"] < 0.9:
    lines += ["", f"The real-image reference itself covers only {report['real']['coverage']:.3f} of the pairs: the "
              "classifier cannot tell some values apart even on real images (per-factor table above), so the "
              "coverage target is out of reach of any generator as measured by this classifier; compare the "
              "generated and real rows factor by factor."]
  return lines + [""]


def _classifier_flag(classifier_steps: int) -> str:
  return f" --classifier_steps={classifier_steps}" if classifier_steps != DEFAULT_CLASSIFIER_STEPS else ""


def _remeasure_command(name: str, classifier_steps: int) -> str:
  return f"python -m ganlatent_jax.testbeds remeasure --name={name}{_classifier_flag(classifier_steps)}"


# The training config of each testbed dataset (the repository's configs/ follow `<method>_<data>.py`).
TRAINING_CONFIGS = {"shapes3d": "configs/gan_3dshapes.py", "dsprites": "configs/gan_dsprites.py"}
# Where the CPU recipe misses the targets: the config that should reach them on one accelerator (its docstring
# gives the expected time).
ACCELERATOR_CONFIGS = {"shapes3d": ("configs/gan_3dshapes.py:gpu", 1500),        # (config, classifier steps)
                       "dsprites": ("configs/gan_dsprites.py:gpu", 4000)}


def accelerator_lines(dataset: str, report: dict) -> list[str]:
  """The card's pointer to the accelerator recipe, when a target is missed and such a recipe exists."""
  if all(met for _, met, _ in quality.quality_targets(report)) or dataset not in ACCELERATOR_CONFIGS:
    return []
  config, classifier_steps = ACCELERATOR_CONFIGS[dataset]
  return ["## Reaching the targets", "",
          "This generator was trained on a 2-core CPU and misses the targets above: its networks are as narrow and its "
          "training as short as that CPU allows. The recipe that should reach them on one accelerator (wider "
          "networks, more images; expected time, an estimate, in the config's docstring):", "",
          f"`python -m ganlatent_jax.main --config={config} --workdir=runs/{dataset}_gpu` then "
          f"`python -m ganlatent_jax.testbeds export --workdir=runs/{dataset}_gpu --name={dataset} "
          f"--classifier_steps={classifier_steps}`", ""]


# Keys of a run config that change how a run is shown, not what it computes: left out of a card's command.
PRESENTATION_KEYS = ("progress_bar", "checkpoint_every", "keep_checkpoints", "log_every", "image_every")


def command_overrides(run_config: dict, default_config: dict, prefix: str = "") -> list[str]:
  """`--config.a.b=v` for every leaf where the run's config differs from the config file's (what the card's command
  must add to reproduce the run), in key order; presentation keys left out."""
  overrides = []
  for key in sorted(run_config):
    value, default = run_config[key], default_config.get(key, None)
    if isinstance(value, dict) and isinstance(default, dict):
      overrides += command_overrides(value, default, f"{prefix}{key}.")
    elif prefix + key not in PRESENTATION_KEYS and _normalised(value) != _normalised(default):
      text = "(" + ",".join(map(repr, value)) + ("," if len(value) == 1 else "") + ")" \
          if isinstance(value, (list, tuple)) else (value if isinstance(value, str) else repr(value))
      overrides.append(f"--config.{prefix}{key}={text}")
  return overrides


def _normalised(value):
  return tuple(_normalised(v) for v in value) if isinstance(value, (list, tuple)) else value


def _training_command(config, config_file: str, name: str) -> str:
  """The command that trained the run: the config file plus the overrides its config.json records (when the
  config file is at hand, i.e. run from a checkout)."""
  from ganlatent_jax import cli
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), config_file)
  overrides = []
  if os.path.exists(path):
    overrides = command_overrides(json.loads(config.to_json_best_effort()),
                                  json.loads(cli.load_config(path).to_json_best_effort()))
  return " ".join([f"python -m ganlatent_jax.main --config={config_file} --workdir=/work/testbed_runs/{name}",
                   *overrides])


def export_testbed(workdir: str, directory: str, name: str, num_samples: int = 2000,
                   classifier_steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0) -> dict:
  """Writes the run's EMA generator to `directory` with samples.png and MODEL_CARD.md (quality measured here)."""
  from ganlatent_jax.generators.load import load, save_converted
  config = run_config(workdir)
  generator, generator_config, step = run_generator(workdir)
  save_converted(directory, generator_config, jax.device_get(generator.variables), source=f"testbed:{name}")
  dataset = gan.dataset_from_config(config)
  # The classifier is cached next to the workdir: it depends only on the dataset, not on the run.
  cache = classifier_cache_path(os.path.dirname(os.path.abspath(workdir)), config.data.name,
                                dataset.observation_shape, classifier_steps)
  report, images = measure(load(directory), dataset, num_samples, classifier_steps, cache, seed)
  viz.images_to_grid(viz.to_display(images[:64], (0.0, 1.0)), path=os.path.join(directory, "samples.png"))
  io.write_json(os.path.join(directory, "quality.json"), report)
  config_file = TRAINING_CONFIGS.get(config.data.name, f"configs/gan_{config.data.name}.py")
  hours = training_seconds(workdir) / 3600.0
  card = [f"# testbed:{name}", "",
          f"A {generator.info.family} generator trained by `ganlatent_jax.methods.gan` on the procedural "
          f"`{config.data.name}` dataset ({'×'.join(map(str, generator.image_shape))}). Output range [-1, 1]; "
          "`generators.load(\"testbed:" + name + "\")`; a pure function of z"
          + (" (and of w: `mapping`/`synthesis`); noise inputs are the stored constant buffers." if
             "w" in generator.info.latent_spaces else "."), "",
          "## Training", "",
          f"- steps: {step} of the configured {config.steps} (batch {config.batch_size}: {step * config.batch_size} "
          f"real images seen)",
          f"- training time: {hours:.2f} h wall time on a shared 2-core CPU machine",
          f"- command: `{_training_command(config, config_file, name)}` then `python -m ganlatent_jax.testbeds export "
          f"--workdir=/work/testbed_runs/{name} --name={name}{_classifier_flag(classifier_steps)}`",
          "- exported weights: the EMA of G", "",
          *quality_section(report, classifier_steps, num_samples, _remeasure_command(name, classifier_steps)),
          *accelerator_lines(config.data.name, report),
          "## Config", "", "```json", json.dumps(generator_config, indent=2), "```", "",
          "Run config:", "", "```json", config.to_json_best_effort(indent=2, sort_keys=True), "```", "",
          "![samples](samples.png)", ""]
  io.write_text(os.path.join(directory, "MODEL_CARD.md"), "\n".join(card))
  return report


def remeasure_testbed(directory: str, name: str, num_samples: int = 2000,
                      classifier_steps: int = DEFAULT_CLASSIFIER_STEPS, classifier_dir: str | None = None,
                      seed: int = 0, dataset_kwargs: dict | None = None) -> dict:
  """Measures the generator in `directory` against testbed `name`'s dataset again (the samples and classifier seeds
  of `export_testbed`); rewrites quality.json and the card's Quality section."""
  from ganlatent_jax.generators.load import load
  card_path = os.path.join(directory, "MODEL_CARD.md")
  with open(card_path) as f:
    card = f.read()
  start = card.find("## Quality\n")
  end = card.find("\n## ", start + 1)
  if start < 0 or end < 0:
    raise ValueError(f"{card_path}: no '## Quality' section followed by another section to replace")
  generator = load(directory)
  dataset_name = dataset_of(name)
  dataset = gan.make_dataset(dataset_name, **(dataset_kwargs or {}))
  if tuple(dataset.observation_shape) != tuple(generator.image_shape):
    raise ValueError(f"{directory}: the generator makes {tuple(generator.image_shape)} images but dataset "
                     f"{dataset_name!r} has {tuple(dataset.observation_shape)}")
  cache = classifier_cache_path(classifier_dir, dataset_name, dataset.observation_shape, classifier_steps) \
      if classifier_dir else None
  report, _ = measure(generator, dataset, num_samples, classifier_steps, cache, seed)
  section = "\n".join(quality_section(report, classifier_steps, num_samples,
                                      _remeasure_command(name, classifier_steps)))
  io.write_json(os.path.join(directory, "quality.json"), report)
  io.write_text(card_path, card[:start] + section + card[end:])
  return report


def main(argv=None):
  import argparse
  from ganlatent_jax.generators.load import TESTBED_DIR
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("command", choices=["export", "remeasure"])
  parser.add_argument("--workdir", default=None, help="export: the GAN run")
  parser.add_argument("--name", required=True,
                      help="testbed name: its dataset, optionally with a version (shapes3d, dsprites-v1)")
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
