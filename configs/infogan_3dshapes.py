"""InfoGAN on procedural 3DShapes (64×64×3): StyleGAN2 generator with [c, z] as its input, StyleGAN2 discriminator
with a Q head on its last hidden layer.

  python -m ganlatent_jax.main --config=configs/infogan_3dshapes.py --workdir=/tmp/infogan_3dshapes

Quick run: --config.steps=2 --config.batch_size=8 --config.data.resolution=16 --config.generator.size=16
  --config.generator.channels='(8,8,4)' --config.generator.style_dim=8 --config.infogan.num_codes=3
  --config.discriminator.width=4 --config.eval.mig_num_points=200 ... (see tests/test_infogan.py)
"""

import ml_collections

from ganlatent_jax import cli


def add_infogan(c, num_codes):
  """The InfoGAN sections on top of a GAN config."""
  c.method = "infogan"
  c.infogan = ml_collections.ConfigDict(dict(num_codes=num_codes, code_prior="uniform", mi_weight=1.0,
                                             learn_std=False))
  c.discriminator.aux_hidden = 128
  c.style_mixing = 0.0   # a mixed image no longer shows one code: InfoGAN's Q could not read it back
  # MIG / FactorVAE of the Q-head representation at the end (disentanglement_lib uses 10000 / 10000 / 5000 points).
  c.eval = ml_collections.ConfigDict(dict(seed=0, mig_num_points=10000, factor_vae_batch_size=64,
                                          factor_vae_num_train=10000, factor_vae_num_eval=5000,
                                          factor_vae_num_variance=10000))
  return c


def get_config():
  c = add_infogan(cli.config_module(__file__, "gan_3dshapes").get_config(), num_codes=6)
  c.steps = 10000
  return c
