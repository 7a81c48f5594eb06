"""Generator metrics: TPL (PS-SC) and PPL (StyleGAN, Z and W) of the 3DShapes testbed or any StyleGAN2 generator;
FID when given Inception weights and a reference.

  python -m ganlatent_jax.evaluate --config=configs/evaluate_3dshapes.py --workdir=/tmp/eval \\
      --config.evaluation.protocol.lpips.vgg16_path=/path/to/vgg16-397923af.pth \\
      [--config.generator=/path/to/stylegan2-ffhq-config-f.pt]

Writes metrics.json (and ppl_*_distances.npy) in the workdir. TPL over the directions of a run:
--config.directions=RUN_DIR/directions.npz. FID: --config.evaluation.metrics='("tpl","fid")'
--config.evaluation.protocol.fid.inception=/path/to/pt_inception-2015-12-05-6726825d.pth
--config.evaluation.protocol.fid.reference=/path/to/ffhq_stats.npz (pytorch-fid `--save-stats` output: mu, sigma).
The quick variant (`:quick`) is a token budget with LPIPS' baseline heads.
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = ""                      # no method: the generator's metrics (a method's config evaluates its run)
  c.generator = "testbed:shapes3d"   # a rosinality .pt, a converted dir, or testbed:NAME
  c.generator_format = ""            # force a checkpoint format ('' = auto-detect)
  c.directions = ""                  # TPL: '' = the z dimensions, or a directions.npz
  c.truncation = common.no_truncation()   # TPL's ψ in W for W directions (None = none)
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))   # class-conditional generators
  c.seed = 0
  c.evaluation = ml_collections.ConfigDict()
  c.evaluation.enabled = True
  c.evaluation.metrics = ("tpl", "ppl_z", "ppl_w")   # any of: tpl, ppl_z, ppl_w, fid
  c.evaluation.protocol = ml_collections.ConfigDict()
  # PS-SC defaults (metric 'tpl_0.1'): 25 points from -4 to 4, 50 traversals, active threshold 0.1, no crop.
  # bound 0 = upstream's: the coordinate over [-4, 4], or with relative=True ±2 around the sample. dims: 'all',
  # 'a-b' or 'i,j,k' (z dimensions or columns of the directions).
  c.evaluation.protocol.tpl = ml_collections.ConfigDict(dict(
      num_traversals=50, points_per_dim=25, bound=0.0, relative=False, active_threshold=0.1, crop=False,
      batch_size=100, dims="all"))
  # StyleGAN defaults: ε = 1e-4, 'end' sampling; its published numbers use 50000 samples.
  c.evaluation.protocol.ppl = ml_collections.ConfigDict(dict(num_samples=50000, epsilon=1e-4, sampling="end",
                                                             crop=False, batch_size=16))
  c.evaluation.protocol.fid = ml_collections.ConfigDict(dict(inception="", variant="", reference="",
                                                             num_samples=50000, batch_size=50))
  c.evaluation.protocol.lpips = ml_collections.ConfigDict(dict(vgg16_path="", version="0.1", heads="shipped"))
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds: two z dimensions, 2 traversals of 3 points, 4 PPL samples, LPIPS' baseline (no learned heads)."""
  c.evaluation.protocol.tpl.update(dims="0-1", num_traversals=2, points_per_dim=3)
  c.evaluation.protocol.ppl.update(num_samples=4, batch_size=4)
  c.evaluation.protocol.lpips.heads = "none"
  return c
