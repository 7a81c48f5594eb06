"""InfoGAN on procedural dSprites (64×64×1): DCGAN generator fed [c, z], DCGAN discriminator with a Q head.

  python -m ganlatent_jax.main --config=configs/infogan_dsprites.py --workdir=/tmp/infogan_dsprites
  python -m ganlatent_jax.main --config=configs/infogan_dsprites.py:quick --workdir=/tmp/infogan_quick   # seconds

Five continuous codes c ~ U(−1, 1) (dSprites has five varying factors) and 11 noise dims. At the end: traversal PNGs
per code, samples, the EMA generator and metrics.json (MIG, FactorVAE, DCI of the Q-head representation; the codes'
generated-domain scores with the probe and random rows).

Recipe: the testbed's (configs/gan_dsprites.py: G's Adam at lr 1e-4, β (0.7071, 0.995), D at DCGAN's 2e-4, β1 0.5),
not DCGAN's 2e-4 for both. Measured 2026-12-03, seed 0, batch 16 and 32, 3000 steps: at 2e-4 for both InfoGAN's
generator collapsed to black by step 1000 (99.9% of pixels at −1, per-pixel std over z 0.0005, Q's code NLL at its
no-information 5.4); at the testbed recipe (batch 32) it draws sprites at steps 1500–2750, D's logits near 0.
UD-GAN is the opposite (configs/udgan_dsprites.py), so the two run at different G recipes on the same G/D networks.
A likely reason, not isolated: UD-GAN's siamese loss (λ 5) pushes G to make visible changes early, which the faster
recipe serves; InfoGAN's MI term (weight 1, fixed-std Gaussian) gives G no such push against a winning D.
"""
from ganlatent_jax import cli

gan_dsprites = cli.config_module(__file__, "gan_dsprites")
infogan_3dshapes = cli.config_module(__file__, "infogan_3dshapes")


def get_config(arg=None):
  c = infogan_3dshapes.add_infogan(gan_dsprites.testbed_generator_recipe(gan_dsprites.engine_config()), num_codes=5)
  c.steps = 10000
  return cli.config_variant(c, arg, quick=lambda c: infogan_3dshapes.quick_infogan(gan_dsprites.quick_training(c)))
