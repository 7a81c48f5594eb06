"""StyleGAN2 on procedural 3DShapes (64×64×3): the `testbed:shapes3d` generator.

  python -m ganlatent_jax.main --config=configs/gan_3dshapes.py --workdir=/work/testbed_runs/shapes3d
  python -m ganlatent_jax.main --config=configs/gan_3dshapes.py:quick --workdir=/tmp/gan_quick   # seconds

Widths are small so that a run fits a 2-core CPU (20000 steps ≈ 3 h at 1.9 steps/s, idle); it resumes from the
workdir if interrupted. On this CPU it does not reach the testbed targets (see the shipped model card); `:gpu` is
the run that should, on one accelerator:

  python -m ganlatent_jax.main --config=configs/gan_3dshapes.py:gpu --workdir=runs/shapes3d_gpu

(4× wider G and D: 4.5M and 4.7M parameters; W of 256, batch 32, 150k steps = 4.8M images; ≈ 22 GFLOP per image trained, scaled from the
measured 0.46 of this config by the convolutions' c_in·c_out·r² — about 1e17 FLOP: 2–5 h on one A100 at 15–30% of
its TF32/FP32 peak. An estimate, not a measurement.) At the end the EMA generator is exported to WORKDIR/generator and measured (`metrics.quality`: coverage
and confidence of a factor classifier, Fréchet distance of its features, the latent probe) into metrics.json; the
shipped testbed is then written by `python -m ganlatent_jax.testbeds export` (launch/train_testbeds.sh).
"""
import ml_collections
from ml_collections import config_dict

from ganlatent_jax import cli


def quality_evaluation(classifier_steps: int, num_samples: int = 2000) -> ml_collections.ConfigDict:
  """The GAN engine's evaluation: `metrics.quality` of the exported EMA generator against the training data, with a
  factor classifier trained `classifier_steps` batches of 64 real images (cached in `classifier_dir`, '' = the
  workdir's parent, shared with the runs beside it) — the testbed model cards' measurement."""
  return ml_collections.ConfigDict(dict(
      enabled=True, metrics=("quality",),
      protocol=ml_collections.ConfigDict(dict(num_samples=num_samples, classifier_steps=classifier_steps,
                                              classifier_dir=""))))


def get_config(arg=None):
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
  c.architecture = ml_collections.ConfigDict(dict(
      family="stylegan2", size=64, style_dim=64, n_mlp=2, lr_mlp=0.01,
      channels=(64, 64, 32, 16, 8),             # widths at 4, 8, 16, 32, 64
      random_noise=True, learning_rate=0.0025,
      beta1=config_dict.placeholder(float), beta2=config_dict.placeholder(float)))   # None: the run's betas
  c.discriminator = ml_collections.ConfigDict(dict(kind="stylegan2", width=8, max_width=64, equalized=True,
                                                   stddev_group=4, aux_hidden=0, learning_rate=0.0025,
                                                   beta1=config_dict.placeholder(float),
                                                   beta2=config_dict.placeholder(float)))
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
  c.evaluation = quality_evaluation(classifier_steps=400)   # the shipped card's budget
  return cli.config_variant(c, arg, quick=quick, gpu=gpu)


def gpu(c):
  """One accelerator: widths and W as a small StyleGAN2 (rosinality's 64² channel rule at a quarter), batch 32."""
  c.update(steps=150000, batch_size=32, checkpoint_every=5000, image_every=5000, log_every=100)
  c.architecture.update(style_dim=256, n_mlp=4, channels=(256, 256, 256, 128, 64))
  c.discriminator.update(width=64, max_width=256)
  c.evaluation.protocol.classifier_steps = 1500
  return c


def quick(c):
  """Seconds: the tiny networks of `quick_training` and a token evaluation (measures nothing)."""
  c = quick_training(c)
  c.evaluation.protocol.update(num_samples=32, classifier_steps=2)
  return c


def quick_training(c):
  """The networks and loop of the quick variant: 16×16 images, a few channels, 2 steps."""
  c.update(steps=2, batch_size=8, log_every=1, checkpoint_every=2, image_every=0, progress_bar=False)
  c.data.resolution = 16
  c.architecture.update(size=16, style_dim=8, n_mlp=1, channels=(8, 8, 4))
  c.discriminator.update(width=4, max_width=8)
  c.r1_every = 2
  c.pl_every = 2
  return c
