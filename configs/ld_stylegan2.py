"""LD (Voynov & Babenko 2020) on a StyleGAN2 generator: shifts in W (upstream's w_shift), ResNet-18 reconstructor.

  python -m ganlatent_jax.main --config=configs/ld_stylegan2.py --workdir=/tmp/ld_stylegan2 \
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt

Everything else as configs/ld_sngan.py (upstream defaults). Upstream StyleGAN2 runs use K = 512 (the W size).
"""
import importlib.util
import pathlib


def _load(name):
  spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).with_name(f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config():
  c = _load("ld_sngan").get_config()
  c.generator = "testbed:shapes3d"
  c.space = "w"
  c.shift_predictor = "resnet"
  c.traversal.truncation = 0.7
  return c
