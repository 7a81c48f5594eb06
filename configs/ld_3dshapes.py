"""LD (Voynov & Babenko 2020) on the 3DShapes testbed (or any StyleGAN2): shifts in W (upstream's w_shift), ResNet-18
reconstructor.

  python -m ganlatent_jax.main --config=configs/ld_3dshapes.py --workdir=/tmp/ld_3dshapes
  python -m ganlatent_jax.main --config=configs/ld_3dshapes.py --workdir=/tmp/ld_ffhq \\
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt --config.evaluation.enabled=False

Everything else as configs/ld_dsprites.py (upstream defaults). Upstream StyleGAN2 runs use K = 512 (the W size).
"""
from ganlatent_jax import cli

base = cli.config_module(__file__, "ld_dsprites")


def get_config(arg=None):
  c = base.get_config()
  c.generator = "testbed:shapes3d"
  c.space = "w"
  c.shift_predictor.kind = "resnet"
  c.evaluation.dataset.name = "shapes3d"
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds: K = 4 'linear' directions in W, a 4-wide one-block ResNet, 2 steps, a token evaluation."""
  base.quick(c)
  c.shift_predictor.resnet.update(stem_width=4, stage_widths=(4, 4, 4, 4), blocks_per_stage=(1, 1, 1, 1))
  return c
