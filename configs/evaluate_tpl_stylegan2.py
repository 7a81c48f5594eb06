"""TPL (PS-SC) and PPL (StyleGAN, Z and W) of a StyleGAN2 generator; FID when given Inception weights + reference.

  python -m ganlatent_jax.evaluate --config=configs/evaluate_tpl_stylegan2.py --workdir=/tmp/eval \
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt --config.lpips.vgg16_path=/path/to/vgg16-397923af.pth

Writes metrics.json (and ppl_*_distances.npy) in the workdir. TPL over SeFa directions of a run in the same
workdir: add --config.method=sefa --config.directions=method (or --config.directions=/path/to/directions.npz).
FID: --config.evaluation=tpl,fid --config.fid.inception=/path/to/pt_inception-2015-12-05-6726825d.pth
--config.fid.reference=/path/to/ffhq_stats.npz (pytorch-fid `--save-stats` output: mu, sigma).
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.evaluation = "tpl,ppl_z,ppl_w"   # comma list of: tpl, ppl_z, ppl_w, fid, method
  c.generator = "testbed:shapes3d"   # a rosinality .pt, a converted dir, or testbed:NAME
  c.generator_format = ""            # force a checkpoint format ('' = auto-detect)
  c.method = ""                      # for evaluation 'method' / directions 'method': the method of the workdir's run
  c.directions = ""                  # '' = the z dimensions, a directions.npz, or 'method'
  c.seed = 0
  # PS-SC defaults (metric 'tpl_0.1'): 25 points from -4 to 4, 50 traversals, active threshold 0.1, no crop.
  # bound 0 = upstream's: the coordinate over [-4, 4], or with relative=True ±2 around the sample. dims: 'all',
  # 'a-b' or 'i,j,k' (z dimensions or columns of the directions); truncation (in W, for w/w+ directions): 1 = none.
  c.tpl = ml_collections.ConfigDict(dict(num_traversals=50, points_per_dim=25, bound=0.0, relative=False,
                                         active_threshold=0.1, crop=False, batch_size=100, dims="all",
                                         truncation=1.0))
  # StyleGAN defaults: ε = 1e-4, 'end' sampling; its published numbers use 50000 samples.
  c.ppl = ml_collections.ConfigDict(dict(num_samples=50000, epsilon=1e-4, sampling="end", crop=False,
                                         batch_size=16))
  c.fid = ml_collections.ConfigDict(dict(inception="", variant="", reference="", num_samples=50000,
                                         batch_size=50))
  c.lpips = ml_collections.ConfigDict(dict(vgg16_path="", version="0.1", heads="shipped"))
  return c
