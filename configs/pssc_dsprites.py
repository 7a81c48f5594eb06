"""PS-SC on procedural dSprites (64×64×1) without SC modules (`C_global-2` × 4: d = 8), as the paper's Table 5 model
(Sec. 4.4: SC hurt dSprites, 81.47 with vs 83.54 without); everything else as configs/pssc_3dshapes.py.

  python -m ganlatent_jax.main --config=configs/pssc_dsprites.py --workdir=/tmp/pssc_dsprites
  python -m ganlatent_jax.main --config=configs/pssc_dsprites.py:quick --workdir=/tmp/pssc_quick   # seconds
  python -m ganlatent_jax.evaluate --config=configs/pssc_dsprites.py --workdir=/tmp/pssc_dsprites

With SC: --config.architecture.modules=<the 3DShapes list with C_spgroup-4-2 in place of C_global-2>;
upstream's InfoGAN baseline: --config.pssc.loss=infogan_l2.
"""
from ganlatent_jax import cli

pssc_3dshapes = cli.config_module(__file__, "pssc_3dshapes")


def quick(c):
  """Seconds: 64×64 (the dataset's only size), d = 4 (two C_global-2), 4–8 channels, 2 steps."""
  return pssc_3dshapes.quick_networks(c, "[Const-8, ResConv-up-1, C_global-2, ResConv-up-1, Noise-1, ResConv-up-1, "
                                         "C_global-2, ResConv-up-1, ResConv-id-1]")


def get_config(arg=None):
  return cli.config_variant(pssc_3dshapes.pssc_config("dsprites", "C_global-2", image_channels=1), arg, quick=quick)
