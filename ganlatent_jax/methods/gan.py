"""The plain GAN method: trains a generator from scratch on a ground-truth dataset with the GAN engine
(`methods._gan`: StyleGAN2's losses and regularisers, lazy R1 and path length, style mixing, EMA) and measures it.

  python -m ganlatent_jax.main --config=configs/gan_3dshapes.py --workdir=/tmp/gan_3dshapes
  python -m ganlatent_jax.evaluate --config=configs/gan_3dshapes.py --workdir=/tmp/gan_3dshapes

`train` writes checkpoints, the EMA generator (WORKDIR/generator, `generators.load` reads it) and samples.png, then
evaluates when `config.evaluation.enabled`. `evaluate(config, workdir)` measures the exported EMA generator against
the training data (`metrics.quality`: factor-classifier coverage/confidence, Fréchet distance of its features, the
latent probe) into metrics.json. The shipped testbeds are such runs (`python -m ganlatent_jax.testbeds export`).
"""
from __future__ import annotations

import os
from typing import Any, Callable

import ml_collections

from ganlatent_jax import io
from ganlatent_jax.methods import _common, _gan
# The engine's public names, for callers that know the method rather than the engine module.
from ganlatent_jax.methods._gan import (EXPORT_DIR, DISCRIMINATOR, GENERATOR, Engine, GANTerms,  # noqa: F401
                                        GeneratorSpec, Regularisers, State, make_engine)
from ganlatent_jax.methods._gan_run import (ema_generator, export_generator, restore, run_training,  # noqa: F401
                                            sample_grid, sample_images, setup, train_method, write_outputs)
from ganlatent_jax.methods._gan_data import dataset_from_config, make_dataset  # noqa: F401
from ganlatent_jax.losses.gan import (ema_decay_at, ema_update, lazy_adam, nonsaturating_d_loss,  # noqa: F401
                                      nonsaturating_g_loss, path_length_penalty, path_lengths, r1_penalty,
                                      style_mixing_index)

# key(config.seed + offset): the training steps' keys come from `parallel.step_rng(seed, step)`; these are the rest.
STREAMS = dict(init=0, evaluation=0, samples=_gan.SAMPLES_STREAM)


def make(config: ml_collections.ConfigDict, mesh, terms_factory: Callable[[GeneratorSpec], GANTerms] = None,
         dataset=None):
  """The contract's (init_fn, train_step, engine): `train_step(state, real_images, rng)`, jitted once."""
  engine = make_engine(config, mesh, terms_factory, dataset)
  return engine.init_fn, engine.jitted_step, engine


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
  return train_method(config, workdir, "gan", None,
                      write_metrics=lambda config, workdir, engine, state: evaluate(config, workdir))


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """`metrics.quality` of the run's exported EMA generator against its training data (config.evaluation.protocol:
  num_samples, classifier_steps, classifier_dir — where the classifier is cached, '' = the workdir's parent, as the
  generated-domain labeller's), written to workdir/metrics.json."""
  from ganlatent_jax.generators.load import load
  from ganlatent_jax.metrics import quality
  metrics = tuple(config.evaluation.metrics)
  if metrics != ("quality",):
    raise ValueError(f"config.evaluation.metrics={metrics!r}: the GAN engine's evaluation is ('quality',)")
  directory = os.path.join(workdir, EXPORT_DIR)
  io.wait_for_writer(EXPORT_DIR)
  if not io.exists(os.path.join(directory, "generator.json")):
    raise FileNotFoundError(f"{directory} does not exist: run `python -m ganlatent_jax.main` with this config and "
                            f"workdir first (it exports the EMA generator at the end of training)")
  protocol = config.evaluation.protocol
  _common.check_positive(config, "evaluation.protocol.num_samples", "evaluation.protocol.classifier_steps")
  dataset = dataset_from_config(config)
  cache = quality.classifier_cache_path(_common.classifier_directory(protocol.classifier_dir, workdir),
                                        config.data.name, dataset.observation_shape, int(protocol.classifier_steps))
  report, _ = quality.measure_generator(load(directory), dataset, int(protocol.num_samples),
                                        int(protocol.classifier_steps), cache, seed=int(config.seed))
  results = {"seed": int(config.seed), "evaluation": config.evaluation.to_dict(), "quality": report}
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  return results
