"""SRE on the embedded 3DShapes testbed generator, initialised with SeFa — the library's main job.

  python -m ganlatent_jax.main --config=configs/sre_3dshapes.py --workdir=/tmp/sre_3dshapes

A short run (minutes on 2 CPU cores) with a reduced evaluation budget. The paper-length run is one override away:

  python -m ganlatent_jax.main --config=configs/sre_3dshapes.py --workdir=/tmp/sre_paper \
      --config.steps=6000 --config.evaluation.metric_samples=10000 --config.evaluation.batch_metric_points=10000 \
      --config.evaluation.num_train=10000 --config.evaluation.encoder_steps=3000

Defaults follow the paper for 3DShapes (K = 10, e = 1, Adam 1e-4 for both updates) with upstream's batch of 32
(16 pairs; the paper says 64: --config.batch_size=64). Shifts are applied in W with truncation 0.8, as upstream.
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.method = "sre"
  c.generator = "testbed:shapes3d"
  c.generator_format = ""
  c.num_devices = 0                    # 0 = all devices
  c.seed = 0

  c.num_directions = 10                # K
  c.shift_range = 1.0                  # e: ε ~ U(−e, e)
  c.space = ""                         # '' = the initialisation's space ('w' for SeFa on StyleGAN2)
  c.truncation = 0.8                   # in W, around w̄ (computed once from truncation_samples latents)
  c.truncation_samples = 4096
  c.batch_size = 32                    # images per update (B/2 pairs)
  c.steps = 300
  c.directions_learning_rate = 1e-4

  c.init = ml_collections.ConfigDict()
  c.init.method = "sefa"               # 'sefa' | 'ganspace' | 'random' | 'file'
  c.init.sefa_variant = "genforce"
  c.init.layers = "all"
  c.init.ganspace_samples = 100_000
  c.init.path = ""                     # for 'file': a directions.npz (e.g. from LD or LatentCLR)

  c.ranker = ml_collections.ConfigDict()
  c.ranker.width = 64                  # ResNet-18 base width (64 = torchvision)
  c.ranker.learning_rate = 1e-4

  c.log_every = 10
  c.checkpoint_every = 100
  c.keep_checkpoints = 2
  c.image_every = 100
  c.progress_bar = True
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=1, truncation=0.8))

  c.evaluation = ml_collections.ConfigDict()
  c.evaluation.enabled = True
  c.evaluation.dataset = "shapes3d"
  c.evaluation.num_train = 4000        # generated images for the encoder (protocol)
  c.evaluation.num_val = 1000
  c.evaluation.encoder_steps = 1500
  c.evaluation.batch_size = 64
  c.evaluation.metric_samples = 4000   # MIG/DCI samples, FactorVAE variance estimate; disentanglement_lib: 10000
  # FactorVAE votes / β-VAE points for training (evaluation: half); each is a batch of 64 (β-VAE: 64 pairs of)
  # images, so this dominates the evaluation time. disentanglement_lib: 10000 (see the paper-length command).
  c.evaluation.batch_metric_points = 1000
  c.evaluation.include_init = True     # also score the initial directions (the 'before' of metrics.json)
  c.evaluation.metrics = ("mig", "factor_vae", "dci", "beta_vae")
  return c
