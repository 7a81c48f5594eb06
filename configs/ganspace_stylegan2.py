"""GANSpace directions of a StyleGAN2 generator: PCA of W samples (or of a layer, regressed back to z).

  python -m ganlatent_jax.main --config=configs/ganspace_stylegan2.py --workdir=/tmp/ganspace \
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt --config.num_samples=1000000

BigGAN (no W: PCA of a layer's activations for one class over its truncated noise): --config.layer=layers.0
--config.conditional.classes='(207,)' [--config.conditional.truncation=0.4].
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.method = "ganspace"
  c.generator = "testbed:shapes3d"
  c.generator_format = ""
  c.num_directions = 10
  c.num_samples = 100_000            # the paper uses 10^6; streaming keeps memory at one batch + D²
  c.batch_size = 1024                # split over the devices of the mesh
  c.num_devices = 0                  # 0 = all devices
  c.layer = ""                       # '' = PCA in W; a feature tap name (e.g. 'conv1') = activation PCA → z
  c.seed = 0
  # Class-conditional generators (BigGAN) only: the class of the pictures (and of GANSpace's samples), and the
  # generator's truncation (truncated noise + its batch-norm statistics).
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=2, truncation=0.7))
  return c
