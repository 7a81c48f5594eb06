"""LD (Voynov & Babenko 2020) on the dSprites testbed generator (or an SN-GAN from GANLatentDiscovery: MNIST,
AnimeFaces), LeNet reconstructor, upstream's defaults.

  python -m ganlatent_jax.main --config=configs/ld_dsprites.py --workdir=/tmp/ld_dsprites
  python -m ganlatent_jax.main --config=configs/ld_dsprites.py:quick --workdir=/tmp/ld_quick     # seconds
  python -m ganlatent_jax.main --config=configs/ld_dsprites.py --workdir=/tmp/ld_sngan \\
      --config.generator=/path/to/SN_MNIST --config.evaluation.enabled=False   # args.json + generator.pt folder

Defaults are upstream's (run_train.py / trainer.Params): ortho deformator with random init, K = latent size, shifts
6·U(−1, 1) with |ε| ≥ 0.5, batch 32, Adam 1e-4 for both networks, loss CE + 0.25·|ε̂ − ε|. Writes results.json
(reconstructor accuracy on fresh shifts), directions.npz, images/traversal.png and metrics.json (accuracy, and the
encoder protocol's scores on procedural dSprites) in the workdir.
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = "ld"
  c.generator = "testbed:dsprites"   # an upstream checkpoint, a converted dir, or testbed:NAME
  c.generator_format = ""            # force a checkpoint format ('' = auto-detect)
  c.space = "z"                      # 'z' | 'w' (StyleGAN2: upstream's w_shift)
  c.truncation = 1.0                 # ψ in W for space 'w' (1.0 = none)
  # Class-conditional generators (configs/ld_imagenet.py): classes drawn per example, BigGAN's truncation.
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=1.0))
  c.num_directions = 0               # K, upstream directions_count (0 = the latent size)
  c.max_latent_dim = 0               # deformator out_dim; the shift is zero-padded to the latent (0 = latent size)
  c.deformator = ml_collections.ConfigDict(dict(
      type="ortho",                  # 'fc' | 'linear' | 'id' | 'ortho' | 'proj' | 'random'
      random_init=True,              # upstream deformator_random_init: linear eye + 0.1·N, ortho A ~ N(0, 1)
      inner_dim=1024,                # 'fc' only
      learning_rate=1e-4))
  c.shift_predictor = ml_collections.ConfigDict(dict(
      kind="lenet",                  # 'lenet' | 'resnet' (the reconstructor)
      lenet_width=2,
      resnet=ml_collections.ConfigDict(dict(stem_width=64, stage_widths=(64, 128, 256, 512),
                                            blocks_per_stage=(2, 2, 2, 2))),   # ResNet-18
      learning_rate=1e-4))
  c.shift_scale = 6.0
  c.min_shift = 0.5
  c.shift_distribution = "uniform"   # 'uniform' | 'normal'
  c.label_weight = 1.0
  c.shift_weight = 0.25
  c.batch_size = 32
  c.steps = 100_000
  c.seed = 2
  c.num_devices = 0                  # 0 = all
  c.log_every = 10
  c.checkpoint_every = 1000
  c.keep_checkpoints = 2
  c.image_every = 1000
  c.progress_bar = True
  c.traversal = ml_collections.ConfigDict(dict(span=6.0, steps=7, num_samples=2,
                                               max_directions=16))   # picture: the first 16 directions (0 = all)
  c.evaluation = common.encoder_evaluation("dsprites")
  c.evaluation.accuracy_batches = 100   # upstream validate_classifier: 100 batches
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds: K = 4 directions of a 'linear' deformator, a width-1 LeNet, 2 steps, a token evaluation."""
  c.num_directions = 4
  c.deformator.type = "linear"
  c.shift_predictor.lenet_width = 1
  c.batch_size = 8
  c.steps = 2
  c.log_every = 1
  c.checkpoint_every = 2
  c.image_every = 0
  c.progress_bar = False
  c.traversal.update(steps=3, num_samples=1, max_directions=2)
  c.evaluation.accuracy_batches = 1
  common.quick_evaluation(c.evaluation)
  return c
