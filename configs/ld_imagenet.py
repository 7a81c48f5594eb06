"""LD (Voynov & Babenko 2020) on a BigGAN-deep generator: class-conditional shifts of z, ResNet-18 reconstructor.

  python -m ganlatent_jax.main --config=configs/ld_imagenet.py --workdir=/tmp/ld_biggan \\
      --config.generator=/path/to/biggan-deep-256   # a pytorch-pretrained-biggan directory or a converted dir

Upstream's BigGAN run (run_train.py --gan_type BigGAN): ortho deformator, K = the z size, ResNet reconstructor,
target class 239 (--config.conditional.classes='(239,207)' mixes classes; an image and its shifted twin share one).
z = truncnorm(−2, 2)·truncation with BigGAN-deep's batch-norm statistics for that truncation (1.0 here, the closest
to upstream's untruncated N(0, I); 0.4 is the package README's sampling value). Everything else as
configs/ld_dsprites.py (upstream defaults). Pictures show the first class. No ground truth: no encoder protocol.
"""
from ganlatent_jax import cli

base = cli.config_module(__file__, "ld_dsprites")


def get_config(arg=None):
  c = base.get_config()
  c.generator = ""                   # required: a BigGAN-deep checkpoint directory or converted dir
  c.conditional.classes = (239,)     # ImageNet ids (239 = Bernese mountain dog)
  c.conditional.truncation = 1.0     # BigGAN's noise truncation and batch-norm statistics
  c.shift_predictor.kind = "resnet"
  c.evaluation.enabled = False       # the encoder protocol needs a ground-truth dataset
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds (on a small BigGAN): K = 4 'linear' directions, a 4-wide one-block ResNet, 2 steps."""
  base.quick(c)
  c.shift_predictor.resnet.update(stem_width=4, stage_widths=(4, 4, 4, 4), blocks_per_stage=(1, 1, 1, 1))
  c.evaluation.enabled = False
  return c
