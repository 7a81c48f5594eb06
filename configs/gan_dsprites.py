"""DCGAN-style GAN on procedural dSprites (64×64×1): the `testbed:dsprites` generator.

  python -m ganlatent_jax.main --config=configs/gan_dsprites.py --workdir=/work/testbed_runs/dsprites

The engine, schedule and losses are those of configs/gan_3dshapes.py; the generator is the `dcgan` family (dense →
4×4 → four stride-2 5×5 transposed convs → 64×64×1, tanh; no batch norm: the R1-regularised logistic GAN does not
need it and the exported generator is then a plain function of z), the discriminator DCGAN-style convs.
Quick run: --config.steps=2 --config.batch_size=8 --config.generator.channels='(16,8,8,8)'
  --config.discriminator.width=4 --config.discriminator.max_width=16
"""

import ml_collections

from ganlatent_jax import cli


def get_config():
  c = cli.config_module(__file__, "gan_3dshapes").get_config()
  c.data = ml_collections.ConfigDict(dict(name="dsprites"))
  c.generator = ml_collections.ConfigDict(dict(family="dcgan", latent_dim=16, channels=(128, 64, 32, 16),
                                               out_channels=1, kernel_size=5, batch_norm=False))
  c.discriminator = ml_collections.ConfigDict(dict(kind="dcgan", width=16, max_width=128, aux_hidden=128))
  c.g_lr = 0.0002     # DCGAN's lr: at 1e-3 the tanh output saturated to all-black images (no gradient)
  c.d_lr = 0.0002
  c.beta1 = 0.5
  c.r1_gamma = 10.0   # Mescheder et al.'s R1 weight: binary sprites give D sharp, easily overfit edges
  c.pl_weight = 0.0    # path length and style mixing need a W space; the DCGAN family has none
  c.style_mixing = 0.0
  c.steps = 60000     # ~26 min alone on 2 cores; 20000 → 60000 took the Fréchet distance from 1951 to 892
  return c
