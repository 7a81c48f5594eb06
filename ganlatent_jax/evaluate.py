"""Evaluates a run, or measures a generator, and writes metrics.json in the workdir.

  python -m ganlatent_jax.evaluate --config=configs/<method>_<data>.py --workdir=RUN_DIR [--config.key=value ...]
  python -m ganlatent_jax.evaluate --config=configs/evaluate_3dshapes.py --workdir=DIR [--config.key=value ...]

A method's own config (`config.method` in `ganlatent_jax.methods.REGISTRY`) runs that method's
`evaluate(config, workdir)` on the finished run in the workdir — the same config (and overrides) that trained it.

A generator-metrics config (`config.method = ''`, configs/evaluate_3dshapes.py) measures `config.generator`:
`config.evaluation.metrics` is a tuple of
  * `tpl`   — Traversal Perceptual Length (PS-SC) over `config.directions` ('' = the z dimensions, or a
              directions.npz), W truncated by `config.truncation` (None = none) for W directions;
  * `ppl_z`, `ppl_w` — Perceptual Path Length (StyleGAN) in Z / in W;
  * `fid`   — Fréchet Inception Distance of the run's samples (`generators.sampling`) to
              `config.evaluation.protocol.fid.reference` (a pytorch-fid statistics .npz with `mu`/`sigma`, or
              `dataset:NAME` for a dataset of `ganlatent_jax.data`);
  * `control` — Plumerault et al.'s control measure of `config.directions` (a z directions.npz) per factor of
              `protocol.control.estimators`: the best column chosen on separate latents, scored with its side
              effects, beside a supervised probe and random directions (`methods._control`;
              configs/evaluate_control_dsprites.py);
with each metric's settings in `config.evaluation.protocol.<tpl|ppl|fid|control|lpips>`. LPIPS needs torchvision's VGG16
(`protocol.lpips.vgg16_path` or $GANLATENT_VGG16_PATH); FID needs an Inception-v3 file (`protocol.fid.inception`:
torchvision `inception_v3_google-*.pth` or pytorch-fid `pt_inception-2015-12-05-*.pth`).
The config is locked, as for `ganlatent_jax.main`. The command then rewrites the workdir's report.html with the new
scores and prints the run's summary.
"""
from __future__ import annotations

import os
import time

from absl import app, flags, logging
from ml_collections import config_flags

from ganlatent_jax import cli

GENERATOR_METRICS = ("tpl", "ppl_z", "ppl_w", "fid", "control")
STREAMS = dict(metrics=0)   # key(seed): each metric folds in its index in GENERATOR_METRICS


def check_metrics(metrics) -> tuple[str, ...]:
  metrics = tuple(metrics)
  unknown = [k for k in metrics if k not in GENERATOR_METRICS]
  if not metrics or unknown:
    raise ValueError(f"config.evaluation.metrics={metrics!r}: expected a non-empty tuple of {list(GENERATOR_METRICS)}")
  return metrics


def _directions(config, gen):
  from ganlatent_jax import directions as directions_lib
  from ganlatent_jax.methods._common import parse_layers
  tpl = config.evaluation.protocol.tpl
  spec = config.get("directions", "")
  directions = directions_lib.load(spec) if spec else None
  dims = parse_layers(tpl.get("dims", "all"))
  if dims is not None:
    import numpy as np
    from ganlatent_jax.directions.base import Directions
    directions = directions or Directions(np.eye(gen.latent_dim, dtype=np.float32), "z")
    bad = [d for d in dims if not 0 <= d < directions.num_directions]
    if bad:
      raise ValueError(f"config.evaluation.protocol.tpl.dims={tpl.dims!r}: {bad} out of range for "
                       f"{directions.num_directions} directions")
    directions = directions.select(dims)
  return directions


def _distance(config, cache):
  if "lpips" not in cache:
    from ganlatent_jax.port import lpips  # reads the VGG16 file and the shipped heads
    section = config.evaluation.protocol.lpips
    heads = section.get("heads", "shipped")
    if heads not in ("shipped", "none"):
      raise ValueError(f"config.evaluation.protocol.lpips.heads={heads!r}: 'shipped' (lpips 0.1.4 heads) or 'none' "
                       f"(baseline)")
    cache["lpips"] = lpips.load_lpips(section.get("vgg16_path") or None, version=section.version,
                                      heads=None if heads == "none" else "shipped")
  return cache["lpips"]


def _generated_images(sampler, rng, num, batch_size):
  """NHWC images in [0, 1] (clipped, as FID tools read 8-bit images) of `num` samples of the run's sampler."""
  import jax
  import jax.numpy as jnp
  low, high = sampler.gen.info.output_range
  for start in range(0, num, batch_size):
    images = sampler.images(jax.random.fold_in(rng, start), min(batch_size, num - start))
    yield jnp.clip((images - low) / (high - low), 0.0, 1.0)


def _fid(config, sampler, rng, workdir):
  import numpy as np
  from ganlatent_jax import io
  from ganlatent_jax.metrics import generator_metrics as gm
  from ganlatent_jax.nets.inception import compute_features
  from ganlatent_jax.port.inception import load_inception
  cfg = config.evaluation.protocol.fid
  if not cfg.inception:
    raise ValueError("config.evaluation.protocol.fid.inception is empty: give a torchvision "
                     "inception_v3_google-*.pth or a pytorch-fid pt_inception-2015-12-05-*.pth file")
  if not cfg.reference:
    raise ValueError("config.evaluation.protocol.fid.reference is empty: give a statistics .npz (mu, sigma) or "
                     "'dataset:NAME'")
  model = load_inception(cfg.inception, variant=cfg.get("variant") or None)
  features = np.concatenate([compute_features(model, images, batch_size=int(cfg.batch_size))
                             for images in _generated_images(sampler, rng, int(cfg.num_samples),
                                                             int(cfg.batch_size))])
  mu, sigma = gm.feature_statistics(features)
  with io.open_atomic(os.path.join(workdir, "fid_generated_stats.npz")) as f:
    np.savez(f, mu=mu, sigma=sigma)
  if cfg.reference.startswith("dataset:"):
    from ganlatent_jax import data
    dataset = data.get_dataset(cfg.reference.split(":", 1)[1])
    images = dataset.sample_observations(int(cfg.num_samples), np.random.RandomState(int(config.seed)))
    ref_mu, ref_sigma = gm.feature_statistics(compute_features(model, images, batch_size=int(cfg.batch_size)))
  else:
    with np.load(cfg.reference) as stats:
      if "mu" not in stats or "sigma" not in stats:
        raise ValueError(f"{cfg.reference}: a FID statistics file needs arrays 'mu' and 'sigma', has {stats.files}")
      ref_mu, ref_sigma = stats["mu"], stats["sigma"]
  return dict(fid=gm.frechet_distance(mu, sigma, ref_mu, ref_sigma), num_samples=int(features.shape[0]),
              variant=model.module.variant, reference=cfg.reference)


def _control_rows(config, sampler, rng, workdir):
  from ganlatent_jax import directions as directions_lib
  from ganlatent_jax.methods import _control
  section = dict(config.evaluation.protocol.control)
  _control.check_section(section, "config.evaluation.protocol.control")
  if sampler.conditional:
    raise ValueError("config.evaluation.metrics: 'control' edits z under the N(0, I) prior; a class-conditional "
                     "generator has no estimator here")
  spec = config.get("directions", "")
  found = directions_lib.load(spec) if spec else None
  gen = sampler.gen
  rows = _control.score_directions(section, _control.render_fn(gen), sampler.z, found, rng,
                                   _control.estimator_factory(config, workdir, gen))
  rows["directions_file"] = spec
  return rows


def generator_metrics(config, workdir: str) -> dict:
  """Runs every metric of `config.evaluation.metrics` on `config.generator`; writes and returns metrics.json."""
  import jax
  import numpy as np
  from ganlatent_jax import io
  from ganlatent_jax.methods import _common
  from ganlatent_jax.metrics import generator_metrics as gm

  metrics = check_metrics(config.evaluation.metrics)
  protocol = config.evaluation.protocol
  io.makedirs(workdir)
  gen = _common.load_generator(config)
  sampler = _common.make_sampler(config, gen, dict(w_avg=1))
  payload: dict = {"evaluation": list(metrics), "generator": gen.info.source, "seconds": {}}
  cache: dict = {}
  rng = _common.stream(config, STREAMS, "metrics")
  for index, kind in enumerate(metrics):
    start = time.time()
    kind_rng = jax.random.fold_in(rng, GENERATOR_METRICS.index(kind))
    if kind == "tpl":
      t = protocol.tpl
      payload["tpl"] = gm.traversal_perceptual_length(
          gen, kind_rng, num_traversals=int(t.num_traversals), points_per_dim=int(t.points_per_dim),
          bound=float(t.bound) or None, relative=bool(t.relative), active_threshold=float(t.active_threshold),
          directions=_directions(config, gen), crop=bool(t.crop), distance_fn=_distance(config, cache),
          batch_size=int(t.batch_size), truncation=sampler.truncation)
    elif kind in ("ppl_z", "ppl_w"):
      p = protocol.ppl
      result = gm.perceptual_path_length(
          gen, kind_rng, space=kind[-1], num_samples=int(p.num_samples), epsilon=float(p.epsilon),
          sampling=p.sampling, crop=bool(p.crop), distance_fn=_distance(config, cache), batch_size=int(p.batch_size))
      with io.open_atomic(os.path.join(workdir, f"{kind}_distances.npy")) as f:
        np.save(f, np.asarray(result.pop("distances")))
      payload[kind] = result
    elif kind == "fid":
      payload["fid"] = _fid(config, sampler, kind_rng, workdir)
    elif kind == "control":
      payload["control"] = _control_rows(config, sampler, kind_rng, workdir)
    payload["seconds"][kind] = round(time.time() - start, 3)
    logging.info("%s done (%d/%d) in %.1fs", kind, index + 1, len(metrics), payload["seconds"][kind])
  _common.write_json(os.path.join(workdir, "metrics.json"), payload)
  return payload


def evaluate(config, workdir: str) -> dict:
  """A method config: `REGISTRY[config.method].evaluate(config, workdir)`; a generator-metrics config (no method):
  `generator_metrics(config, workdir)`. Both write workdir/metrics.json."""
  from ganlatent_jax import methods
  if config.get("method"):
    return methods.get(config.method).evaluate(config, workdir)
  if "evaluation" not in config or "protocol" not in config.evaluation:
    raise ValueError("the config has neither config.method (a method's run) nor config.evaluation.protocol "
                     "(generator metrics: see configs/evaluate_3dshapes.py)")
  return generator_metrics(config, workdir)


def finish(workdir: str, config=None) -> None:
  """After metrics.json: the workdir's report.html shows the new scores (issue 24; `config` is recorded as
  config.json when the run left none), and the summary is printed."""
  import jax
  from ganlatent_jax import console
  from ganlatent_jax.viz import report
  if jax.process_index() != 0:   # one writer per run directory
    return
  report.write_report(workdir, config)
  print(console.summary(workdir), flush=True)


def _define_flags():
  """Defined when run as a program only, so `evaluate()` can be imported next to `ganlatent_jax.main`."""
  config = config_flags.DEFINE_config_file(
      "config", None, "A method's config (configs/<method>_<data>.py) or a generator-metrics config "
      "(configs/evaluate_*.py); override fields with --config.a.b=v.", lock_config=True)
  workdir = flags.DEFINE_string("workdir", None, "The run's directory (metrics.json is written there): a local path "
                                "or gs://bucket/path.")
  flags.mark_flags_as_required(["config", "workdir"])
  return config, workdir


def run():
  config, workdir = _define_flags()

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from ganlatent_jax import io
    try:
      io.check_filesystem(workdir.value)
    except ValueError as e:
      raise app.UsageError(str(e)) from None
    metrics = evaluate(config.value, workdir.value)
    logging.info("metrics.json written in %s: %s", workdir.value, sorted(metrics))
    finish(workdir.value, config.value)

  cli.run(main)


if __name__ == "__main__":
  run()
