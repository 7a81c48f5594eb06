"""InfoGAN on procedural dSprites (64×64×1): DCGAN generator fed [c, z], DCGAN discriminator with a Q head.

  python -m ganlatent_jax.main --config=configs/infogan_dsprites.py --workdir=/tmp/infogan_dsprites

Five continuous codes c ~ U(−1, 1) (dSprites has five varying factors) and 11 noise dims. At the end: traversal PNGs
per code, samples, the EMA generator and metrics.json (MIG, FactorVAE of the Q-head representation).
Quick run (tests/test_infogan.py): --config.steps=2 --config.batch_size=8 --config.generator.channels='(16,8,8,8)'
  --config.discriminator.width=4 --config.discriminator.max_width=16 --config.eval.mig_num_points=300 ...
"""
from ganlatent_jax import cli


def get_config():
  base = cli.config_module(__file__, "gan_dsprites").get_config()
  c = cli.config_module(__file__, "infogan_3dshapes").add_infogan(base, num_codes=5)
  c.steps = 10000
  return c
