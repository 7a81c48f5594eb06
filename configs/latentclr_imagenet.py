"""LatentCLR directions of a BigGAN-deep generator (pytorch-pretrained-biggan checkpoint directory or converted dir).

  python -m ganlatent_jax.main --config=configs/latentclr_imagenet.py --workdir=/tmp/latentclr_biggan \\
      --config.generator=/path/to/biggan-deep-256 --config.conditional.classes='(207,)'

Upstream's BigGAN setting (README example): class-conditional edits of z (truncated noise, truncation 0.4) with
α ~ U[−3, 3], features at 'layers.4', non-linear model, batch 16. Writes model.msgpack, images/traversal.png,
results.json (and directions.npz for --config.model.kind=global).
"""

from ganlatent_jax import cli

base = cli.config_module(__file__, "latentclr_ffhq")
common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = base.get_config()
  c.generator = ""                   # required: a BigGAN checkpoint directory or converted dir
  c.conditional.classes = (207,)     # ImageNet class id (207 = golden retriever); the edits are learnt in it
  c.conditional.truncation = 0.4     # noise truncation and the generator's BN truncation
  c.truncation = common.no_truncation()  # (ψ in W: BigGAN has no W)
  c.space = "z"
  c.feature_layer = "layers.4"
  c.alpha = (-3.0, 3.0)
  c.batch_size = 16
  c.traversal.span = 3.0
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds on a small BigGAN (give --config.generator): K = 3 global directions, 2 steps."""
  base.quick(c)
  c.batch_size = 8
  c.feature_layer = "layers.0"
  return c
