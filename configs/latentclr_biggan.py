"""LatentCLR directions of a BigGAN-deep generator (pytorch-pretrained-biggan checkpoint directory or converted dir).

  python -m ganlatent_jax.main --config=configs/latentclr_biggan.py --workdir=/tmp/latentclr_biggan \
      --config.generator=/path/to/biggan-deep-256 --config.biggan_class=207

Upstream's BigGAN setting (README example): class-conditional edits of z (truncated noise, truncation 0.4) with
α ~ U[−3, 3], features at 'layers.4', non-linear model, batch 16. Writes model.msgpack, images/traversal.png,
results.json (and directions.npz for --config.model.kind=global).
"""

from ganlatent_jax import cli


def get_config():
  c = cli.config_module(__file__, "latentclr_stylegan2").get_config()
  c.generator = ""                   # required: a BigGAN checkpoint directory or converted dir
  c.biggan_class = 207               # ImageNet class id (207 = golden retriever)
  c.space = "z"
  c.feature_layer = "layers.4"
  c.truncation = 0.4                 # noise truncation and the generator's BN truncation
  c.alpha = (-3.0, 3.0)
  c.batch_size = 16
  c.traversal.span = 3.0
  return c
