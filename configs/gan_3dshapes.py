"""StyleGAN2 on procedural 3DShapes (64×64×3): the `testbed:shapes3d` generator.

  python -m ganlatent_jax.main --config=configs/gan_3dshapes.py --workdir=/work/testbed_runs/shapes3d

Widths are small so that training fits in about 1.5–2 h on 2 CPU cores; it resumes from the workdir if interrupted.
Quick run (tests): --config.steps=2 --config.batch_size=8 --config.generator.channels='(8,8,8,8,8)'
  --config.generator.style_dim=8 --config.generator.n_mlp=1 --config.discriminator.width=4
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.method = "gan"
  c.seed = 0
  c.num_devices = 0                 # 0 = every device
  c.steps = 20000
  c.batch_size = 16
  c.log_every = 50
  c.checkpoint_every = 250
  c.keep_checkpoints = 2
  c.image_every = 1000
  c.progress_bar = True
  c.data = ml_collections.ConfigDict(dict(name="shapes3d"))
  c.generator = ml_collections.ConfigDict(dict(
      family="stylegan2", size=64, style_dim=64, n_mlp=2, lr_mlp=0.01,
      channels=(64, 64, 32, 16, 8),             # widths at 4, 8, 16, 32, 64
      random_noise=True))
  c.discriminator = ml_collections.ConfigDict(dict(kind="stylegan2", width=8, max_width=64, equalized=True,
                                                   stddev_group=4, aux_hidden=0))
  c.g_lr = 0.0025
  c.d_lr = 0.0025
  c.beta1 = 0.0
  c.beta2 = 0.99
  c.r1_gamma = 0.1
  c.r1_every = 16
  c.ema_decay = 0.999
  # StyleGAN2's own regularisers (rosinality's train.py defaults): they shape W, where SeFa and SRE work.
  c.pl_weight = 2.0                 # path-length regularisation, 0 = off
  c.pl_every = 4
  c.pl_batch_shrink = 2
  c.pl_decay = 0.01
  c.style_mixing = 0.9              # probability of a two-w batch with a random crossover layer, 0 = off
  return c
