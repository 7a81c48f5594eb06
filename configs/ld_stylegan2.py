"""LD (Voynov & Babenko 2020) on a StyleGAN2 generator: shifts in W (upstream's w_shift), ResNet-18 reconstructor.

  python -m ganlatent_jax.main --config=configs/ld_stylegan2.py --workdir=/tmp/ld_stylegan2 \
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt

Everything else as configs/ld_sngan.py (upstream defaults). Upstream StyleGAN2 runs use K = 512 (the W size).
"""
from ganlatent_jax import cli


def get_config():
  c = cli.config_module(__file__, "ld_sngan").get_config()
  c.generator = "testbed:shapes3d"
  c.space = "w"
  c.shift_predictor = "resnet"
  c.traversal.truncation = 0.7
  return c
