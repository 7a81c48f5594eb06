"""LD (Voynov & Babenko 2020) on an SN-GAN generator (GANLatentDiscovery's MNIST / AnimeFaces), LeNet reconstructor.

  python -m ganlatent_jax.main --config=configs/ld_sngan.py --workdir=/tmp/ld_sngan \
      --config.generator=/path/to/SN_MNIST   # a GANLatentDiscovery SN-GAN folder (args.json + generator.pt)

Defaults are upstream's (run_train.py / trainer.Params): ortho deformator with random init, K = latent size, shifts
6·U(−1, 1) with |ε| ≥ 0.5, batch 32, Adam 1e-4 for both networks, loss CE + 0.25·|ε̂ − ε|. Writes results.json
(reconstructor accuracy on fresh shifts), directions.npz and images/traversal.png in the workdir.
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.method = "ld"
  c.generator = "testbed:dsprites"   # an upstream checkpoint, a converted dir, or testbed:NAME
  c.generator_format = ""            # force a checkpoint format ('' = auto-detect)
  c.space = "z"                      # 'z' | 'w' (StyleGAN2: upstream's w_shift)
  c.truncation = 1.0                 # W truncation ψ (1.0 = none) for space 'w'; BigGAN: its own truncation
  c.target_classes = ()              # class-conditional generators: classes drawn per example (configs/ld_biggan.py)
  c.num_directions = 0               # K, upstream directions_count (0 = the latent size)
  c.max_latent_dim = 0               # deformator out_dim; the shift is zero-padded to the latent (0 = latent size)
  c.deformator = ml_collections.ConfigDict(dict(
      type="ortho",                  # 'fc' | 'linear' | 'id' | 'ortho' | 'proj' | 'random'
      random_init=True,              # upstream deformator_random_init: linear eye + 0.1·N, ortho A ~ N(0, 1)
      inner_dim=1024))               # 'fc' only
  c.shift_predictor = "lenet"        # 'lenet' | 'resnet' (the reconstructor)
  c.lenet_width = 2
  c.resnet = ml_collections.ConfigDict(dict(stem_width=64, stage_widths=(64, 128, 256, 512),
                                            blocks_per_stage=(2, 2, 2, 2)))   # ResNet-18
  c.shift_scale = 6.0
  c.min_shift = 0.5
  c.shift_distribution = "uniform"   # 'uniform' | 'normal'
  c.deformator_lr = 1e-4
  c.shift_predictor_lr = 1e-4
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
  c.eval_batches = 100               # upstream validate_classifier: 100 batches
  c.traversal = ml_collections.ConfigDict(dict(span=6.0, steps=7, num_samples=2, truncation=1.0,
                                               max_directions=16))   # picture: the first 16 directions (0 = all)
  return c
