"""SeFa directions of the 3DShapes testbed (or any StyleGAN2 / BigGAN / SN-GAN / ProgGAN generator), with
traversal pictures and the encoder-protocol scores.

  python -m ganlatent_jax.main --config=configs/sefa_3dshapes.py --workdir=/tmp/sefa
  python -m ganlatent_jax.main --config=configs/sefa_3dshapes.py:quick --workdir=/tmp/sefa_quick     # seconds
  python -m ganlatent_jax.main --config=configs/sefa_3dshapes.py --workdir=/tmp/sefa_ffhq \\
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt --config.evaluation.enabled=False

Writes directions.npz, images/traversal.png, results.json (eigenvalues) and metrics.json in the workdir.
BigGAN (first-layer SeFa, pictures of one class): --config.generator=/path/to/biggan-deep-256
--config.variant=first_layer --config.conditional.classes='(207,)' [--config.conditional.truncation=0.4]
--config.evaluation.enabled=False.
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = "sefa"
  c.generator = "testbed:shapes3d"   # a rosinality .pt, a converted dir, or testbed:NAME
  c.generator_format = ""            # force a checkpoint format ('' = auto-detect)
  c.num_directions = 10
  c.variant = "genforce"             # 'genforce' | 'rosinality' | 'sre' | 'first_layer'
  c.layers = "all"                   # W+ slots for 'genforce': 'all', 'a-b' or 'i,j,k'
  c.seed = 0
  c.truncation = 0.7                 # the pictures' ψ in W (1.0 = none)
  # Class-conditional generators (BigGAN) only: the class of the pictures, the noise/batch-norm truncation.
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=2))
  c.evaluation = common.encoder_evaluation("shapes3d")
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  c.num_directions = 3
  c.traversal.update(steps=3, num_samples=1)
  common.quick_evaluation(c.evaluation)
  return c
