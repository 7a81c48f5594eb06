"""UD-GAN-G on procedural dSprites: configs/udgan_dsprites.py with knobs 7, 8, 9 guided by the centre of mass M̂_x,
M̂_y and the size Ŝ of the image (the paper's Eq. 8, `nets.guidance`, standardised on 4096 unlabelled real images),
each through its own small MLP; knobs 0–6 unguided (one shared siamese network).

  python -m ganlatent_jax.main --config=configs/udgan_g_dsprites.py --workdir=/tmp/udgan_g_dsprites
  python -m ganlatent_jax.main --config=configs/udgan_g_dsprites.py:quick --workdir=/tmp/udgan_g_quick   # seconds

metrics.json adds guidance_factor_correlation (the paper's Table 7 on our data).
"""
from ganlatent_jax import cli

common = cli.config_module(__file__, "common")
gan_dsprites = cli.config_module(__file__, "gan_dsprites")
udgan_dsprites = cli.config_module(__file__, "udgan_dsprites")


def get_config(arg=None):
  c = common.code_generated_domain(
      udgan_dsprites.add_udgan(gan_dsprites.engine_config(), num_unguided=7, guided=("com_x", "com_y", "size")))
  c.steps = 10000
  return cli.config_variant(c, arg, quick=udgan_dsprites.quick_udgan)
