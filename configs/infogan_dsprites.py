"""InfoGAN on procedural dSprites (64×64×1): DCGAN generator fed [c, z], DCGAN discriminator with a Q head.

  python -m ganlatent_jax.main --config=configs/infogan_dsprites.py --workdir=/tmp/infogan_dsprites
  python -m ganlatent_jax.main --config=configs/infogan_dsprites.py:quick --workdir=/tmp/infogan_quick   # seconds

Five continuous codes c ~ U(−1, 1) (dSprites has five varying factors) and 11 noise dims. At the end: traversal PNGs
per code, samples, the EMA generator and metrics.json (MIG, FactorVAE of the Q-head representation).
"""
from ganlatent_jax import cli

gan_dsprites = cli.config_module(__file__, "gan_dsprites")
infogan_3dshapes = cli.config_module(__file__, "infogan_3dshapes")


def get_config(arg=None):
  c = infogan_3dshapes.add_infogan(gan_dsprites.engine_config(), num_codes=5)
  c.steps = 10000
  return cli.config_variant(c, arg, quick=lambda c: infogan_3dshapes.quick_infogan(gan_dsprites.quick_training(c)))
