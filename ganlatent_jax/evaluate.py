"""Measures a generator (and optionally directions found by a method) and writes metrics.json in the workdir.

  python -m ganlatent_jax.evaluate --config=configs/evaluate_tpl_stylegan2.py --workdir=DIR [--config.key=value ...]

`config.evaluation` is a comma-separated list of:
  * `tpl`   — Traversal Perceptual Length (PS-SC) over `config.directions` (z dimensions by default);
  * `ppl_z`, `ppl_w` — Perceptual Path Length (StyleGAN) in Z / in W;
  * `fid`   — Fréchet Inception Distance of generated images to `config.fid.reference` (a pytorch-fid statistics
              .npz with `mu`/`sigma`, or `dataset:NAME` for a dataset of `ganlatent_jax.data`);
  * `method` — whatever `evaluate(config, workdir)` of the method module `config.method` returns (the default for a
              method's own config, which has no `evaluation` key: `--config=configs/sefa_stylegan2.py`).
`config.directions` is '' (the generator's z dimensions), a directions.npz, or 'method' (the directions that
`config.method`'s `evaluate(config, workdir)` returns, e.g. of a SeFa run in the same workdir).
LPIPS needs torchvision's VGG16 (`config.lpips.vgg16_path` or $GANLATENT_VGG16_PATH); FID needs an Inception-v3 file
(`config.fid.inception`: torchvision `inception_v3_google-*.pth` or pytorch-fid `pt_inception-2015-12-05-*.pth`).
The config is locked, as for `ganlatent_jax.main`.
"""
import os
import time

from absl import app, flags, logging
from ml_collections import config_flags

from ganlatent_jax import cli

KINDS = ("tpl", "ppl_z", "ppl_w", "fid", "method")


def parse_kinds(spec: str) -> list[str]:
  kinds = [k.strip() for k in (spec or "").split(",") if k.strip()]
  unknown = [k for k in kinds if k not in KINDS]
  if not kinds or unknown:
    raise ValueError(f"config.evaluation={spec!r}: expected a comma-separated list of {list(KINDS)}")
  return kinds


def _method_results(config, workdir, cache: dict):
  from ganlatent_jax import methods
  if "method" not in cache:
    module = methods.get(config.get("method"))
    if not hasattr(module, "evaluate"):
      raise ValueError(f"method {config.method!r} has no evaluate(config, workdir)")
    cache["method"] = module.evaluate(config, workdir)
  return cache["method"]


def _jsonable(value):
  from ganlatent_jax.directions.base import Directions
  if isinstance(value, Directions):
    return dict(space=value.space, latent_dim=value.latent_dim, num_directions=value.num_directions,
                layers=value.layers, meta=value.meta)
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  return value


def _directions(config, workdir, cache):
  from ganlatent_jax import directions as directions_lib
  from ganlatent_jax.methods._common import parse_layers
  spec = config.get("directions", "")
  if not spec:
    directions = None
  elif spec == "method":
    directions = _method_results(config, workdir, cache).get("directions")
    if directions is None:
      raise ValueError(f"config.directions='method': {config.method}.evaluate returned no 'directions'")
  else:
    directions = directions_lib.load(spec)
  dims = parse_layers(config.tpl.get("dims", "all"))
  if dims is not None:
    import numpy as np
    from ganlatent_jax.directions.base import Directions
    directions = directions or Directions(np.eye(cache["gen"].latent_dim, dtype=np.float32), "z")
    bad = [d for d in dims if not 0 <= d < directions.num_directions]
    if bad:
      raise ValueError(f"config.tpl.dims={config.tpl.dims!r}: {bad} out of range for "
                       f"{directions.num_directions} directions")
    directions = directions.select(dims)
  return directions


def _distance(config, cache):
  if "lpips" not in cache:
    from ganlatent_jax.nets import lpips
    heads = config.lpips.get("heads", "shipped")
    if heads not in ("shipped", "none"):
      raise ValueError(f"config.lpips.heads={heads!r}: 'shipped' (lpips 0.1.4 heads) or 'none' (baseline)")
    cache["lpips"] = lpips.load_lpips(config.lpips.get("vgg16_path") or None, version=config.lpips.version,
                                      heads=None if heads == "none" else "shipped")
  return cache["lpips"]


def _generated_images(gen, rng, num, batch_size):
  """NHWC images in [0, 1] (clipped, as FID tools read 8-bit images) of `num` z ~ N(0, I)."""
  import jax
  import jax.numpy as jnp
  from ganlatent_jax.directions.spaces import render_jit
  low, high = gen.info.output_range
  for start in range(0, num, batch_size):
    z = gen.sample_z(jax.random.fold_in(rng, start), min(batch_size, num - start))
    yield jnp.clip((render_jit(gen, z, "z") - low) / (high - low), 0.0, 1.0)


def _fid(config, gen, rng, workdir):
  import numpy as np
  from ganlatent_jax.metrics import generator_metrics as gm
  from ganlatent_jax.nets.inception import compute_features
  from ganlatent_jax.port.inception import load_inception
  cfg = config.fid
  if not cfg.inception:
    raise ValueError("config.fid.inception is empty: give a torchvision inception_v3_google-*.pth or a pytorch-fid "
                     "pt_inception-2015-12-05-*.pth file")
  if not cfg.reference:
    raise ValueError("config.fid.reference is empty: give a statistics .npz (mu, sigma) or 'dataset:NAME'")
  model = load_inception(cfg.inception, variant=cfg.get("variant") or None)
  features = np.concatenate([compute_features(model, images, batch_size=int(cfg.batch_size))
                             for images in _generated_images(gen, rng, int(cfg.num_samples), int(cfg.batch_size))])
  mu, sigma = gm.feature_statistics(features)
  np.savez(os.path.join(workdir, "fid_generated_stats.npz"), mu=mu, sigma=sigma)
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


def evaluate(config, workdir: str) -> dict:
  """Runs every metric of `config.evaluation`; writes and returns the metrics.json payload."""
  import jax
  import numpy as np
  from ganlatent_jax.methods._common import load_generator, write_json
  from ganlatent_jax.metrics import generator_metrics as gm

  os.makedirs(workdir, exist_ok=True)
  # A method's own config (no `evaluation` key) runs that method's evaluate.
  kinds = parse_kinds(config.get("evaluation", "method" if config.get("method") else ""))
  cache: dict = {}
  payload: dict = {"evaluation": kinds, "seconds": {}}
  needs_generator = any(k != "method" for k in kinds)
  if needs_generator:
    cache["gen"] = gen = load_generator(config)
    payload["generator"] = gen.info.source
  rng = jax.random.key(int(config.seed))
  for index, kind in enumerate(kinds):
    start = time.time()
    kind_rng = jax.random.fold_in(rng, KINDS.index(kind))
    if kind == "method":
      payload["method"] = _jsonable(_method_results(config, workdir, cache))
    elif kind == "tpl":
      t = config.tpl
      truncation = float(t.get("truncation", 1.0))
      payload["tpl"] = gm.traversal_perceptual_length(
          gen, kind_rng, num_traversals=int(t.num_traversals), points_per_dim=int(t.points_per_dim),
          bound=float(t.bound) or None, relative=bool(t.relative), active_threshold=float(t.active_threshold),
          directions=_directions(config, workdir, cache), crop=bool(t.crop), distance_fn=_distance(config, cache),
          batch_size=int(t.batch_size), truncation=None if truncation == 1.0 else truncation)
    elif kind in ("ppl_z", "ppl_w"):
      p = config.ppl
      result = gm.perceptual_path_length(
          gen, kind_rng, space=kind[-1], num_samples=int(p.num_samples), epsilon=float(p.epsilon),
          sampling=p.sampling, crop=bool(p.crop), distance_fn=_distance(config, cache), batch_size=int(p.batch_size))
      np.save(os.path.join(workdir, f"{kind}_distances.npy"), np.asarray(result.pop("distances")))
      payload[kind] = result
    elif kind == "fid":
      payload["fid"] = _fid(config, gen, kind_rng, workdir)
    payload["seconds"][kind] = round(time.time() - start, 3)
    logging.info("%s done (%d/%d) in %.1fs", kind, index + 1, len(kinds), payload["seconds"][kind])
  write_json(os.path.join(workdir, "metrics.json"), payload)
  return payload


def _define_flags():
  """Defined when run as a program only, so `evaluate()` can be imported next to `ganlatent_jax.main`."""
  config = config_flags.DEFINE_config_file(
      "config", None, "Path to an evaluation config (configs/evaluate_*.py); override fields with --config.a.b=v.",
      lock_config=True)
  workdir = flags.DEFINE_string("workdir", None, "Directory for metrics.json (and a method run's outputs).")
  flags.mark_flags_as_required(["config", "workdir"])
  return config, workdir


def run():
  config, workdir = _define_flags()

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    evaluate(config.value, workdir.value)

  cli.run(main)


if __name__ == "__main__":
  run()
