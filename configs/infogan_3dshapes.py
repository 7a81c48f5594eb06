"""InfoGAN on procedural 3DShapes (64×64×3): StyleGAN2 generator with [c, z] as its input, StyleGAN2 discriminator
with a Q head on its last hidden layer.

  python -m ganlatent_jax.main --config=configs/infogan_3dshapes.py --workdir=/tmp/infogan_3dshapes
  python -m ganlatent_jax.main --config=configs/infogan_3dshapes.py:quick --workdir=/tmp/infogan_quick   # seconds
  python -m ganlatent_jax.evaluate --config=configs/infogan_3dshapes.py --workdir=/tmp/infogan_3dshapes
"""

import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")
gan_3dshapes = cli.config_module(__file__, "gan_3dshapes")


def add_infogan(c, num_codes):
  """The InfoGAN sections on top of a GAN config."""
  c.method = "infogan"
  c.infogan = ml_collections.ConfigDict(dict(num_codes=num_codes, code_prior="uniform", mi_weight=1.0,
                                             learn_std=False))
  c.discriminator.aux_hidden = 128
  c.style_mixing = 0.0   # a mixed image no longer shows one code: InfoGAN's Q could not read it back
  # MIG / FactorVAE / DCI of the Q-head representation of real images of the training data at the end
  # (disentanglement_lib's budgets: 10000 MIG points, 10000 / 5000 FactorVAE votes, DCI on 10000 / 5000 images, the
  # PS-SC table's rows use 2000 / 1000); β-VAE's budget for the UD-GAN table's InfoGAN row
  # (--config.evaluation.metrics='("beta_vae","factor_vae","mig")', as UD-GAN's configs).
  c.evaluation = ml_collections.ConfigDict(dict(
      enabled=True, metrics=("mig", "factor_vae", "dci"),
      protocol=ml_collections.ConfigDict(dict(mig_num_points=10000, factor_vae_batch_size=64,
                                              factor_vae_num_train=10000, factor_vae_num_eval=5000,
                                              factor_vae_num_variance=10000, beta_vae_batch_size=64,
                                              beta_vae_num_train=2000, beta_vae_num_eval=1000,
                                              dci_num_train=10000, dci_num_test=5000))))
  return common.code_generated_domain(c)


def quick_infogan(c):
  """A token evaluation budget on top of a GAN config's quick variant (measures nothing)."""
  c.infogan.num_codes = min(c.infogan.num_codes, 3)
  c.discriminator.aux_hidden = 8
  c.evaluation.protocol.update(mig_num_points=200, factor_vae_batch_size=8, factor_vae_num_train=8,
                               factor_vae_num_eval=4, factor_vae_num_variance=200, beta_vae_batch_size=8,
                               beta_vae_num_train=20, beta_vae_num_eval=10, dci_num_train=64, dci_num_test=64)
  common.quick_code_generated_domain(c)
  return c


def get_config(arg=None):
  c = add_infogan(gan_3dshapes.get_config(), num_codes=6)
  c.steps = 10000
  return cli.config_variant(c, arg, quick=lambda c: quick_infogan(gan_3dshapes.quick_training(c)))
