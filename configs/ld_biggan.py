"""LD (Voynov & Babenko 2020) on a BigGAN-deep generator: class-conditional shifts of z, ResNet-18 reconstructor.

  python -m ganlatent_jax.main --config=configs/ld_biggan.py --workdir=/tmp/ld_biggan \
      --config.generator=/path/to/biggan-deep-256   # a pytorch-pretrained-biggan directory or a converted dir

Upstream's BigGAN run (run_train.py --gan_type BigGAN): ortho deformator, K = the z size, ResNet reconstructor,
target class 239 (--config.target_classes='(239,207)' mixes classes; an image and its shifted twin share one).
z = truncnorm(−2, 2)·truncation with BigGAN-deep's batch-norm statistics for that truncation (1.0 here, the closest
to upstream's untruncated N(0, I); 0.4 is the package README's sampling value). Everything else as
configs/ld_sngan.py (upstream defaults). Pictures show the first target class.
"""
from ganlatent_jax import cli


def get_config():
  c = cli.config_module(__file__, "ld_sngan").get_config()
  c.generator = ""                   # required: a BigGAN-deep checkpoint directory or converted dir
  c.target_classes = (239,)          # ImageNet ids (239 = Bernese mountain dog)
  c.truncation = 1.0                 # BigGAN's noise truncation and batch-norm statistics
  c.shift_predictor = "resnet"
  return c
