"""SeFa directions of a StyleGAN2 generator (rosinality format, a converted dir, or a testbed), with traversals.

  python -m ganlatent_jax.main --config=configs/sefa_stylegan2.py --workdir=/tmp/sefa \
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt

Writes directions.npz, images/traversal.png and results.json (eigenvalues) in the workdir.
BigGAN (first-layer SeFa, pictures of one class): --config.generator=/path/to/biggan-deep-256
--config.variant=first_layer --config.conditional.classes='(207,)' [--config.conditional.truncation=0.4].
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.method = "sefa"
  c.generator = "testbed:shapes3d"   # a rosinality .pt, a converted dir, or testbed:NAME
  c.generator_format = ""            # force a checkpoint format ('' = auto-detect)
  c.num_directions = 10
  c.variant = "genforce"             # 'genforce' | 'rosinality' | 'first_layer'
  c.layers = "all"                   # W+ slots for 'genforce': 'all', 'a-b' or 'i,j,k'
  c.seed = 0
  # Class-conditional generators (BigGAN) only: the class of the pictures (and of GANSpace's samples), and the
  # generator's truncation (truncated noise + its batch-norm statistics).
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=2, truncation=0.7))
  return c
