"""GANSpace directions of the 3DShapes testbed (or any StyleGAN2 / BigGAN generator): PCA of W samples (or of a
layer's activations, regressed back to z), with traversal pictures and the encoder-protocol scores.

  python -m ganlatent_jax.main --config=configs/ganspace_3dshapes.py --workdir=/tmp/ganspace
  python -m ganlatent_jax.main --config=configs/ganspace_3dshapes.py:quick --workdir=/tmp/ganspace_quick  # seconds
  python -m ganlatent_jax.main --config=configs/ganspace_3dshapes.py --workdir=/tmp/ganspace_ffhq \\
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt --config.num_samples=1000000 \\
      --config.evaluation.enabled=False

BigGAN (no W: PCA of a layer's activations for one class over its truncated noise): --config.layer=layers.0
--config.conditional.classes='(207,)' [--config.conditional.truncation=0.4] --config.evaluation.enabled=False.
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
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
  c.truncation = 0.7                 # the pictures' ψ in W (1.0 = none)
  # Class-conditional generators (BigGAN) only: the class of the samples and pictures, the noise/BN truncation.
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=2))
  c.evaluation = common.encoder_evaluation("shapes3d")
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  c.num_directions = 3
  c.num_samples = 256
  c.batch_size = 64
  c.traversal.update(steps=3, num_samples=1)
  common.quick_evaluation(c.evaluation)
  return c
