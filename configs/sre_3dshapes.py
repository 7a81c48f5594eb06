"""SRE on the embedded 3DShapes testbed generator, initialised with SeFa — the library's main job.

  python -m ganlatent_jax.main --config=configs/sre_3dshapes.py --workdir=/tmp/sre_3dshapes
  python -m ganlatent_jax.main --config=configs/sre_3dshapes.py:quick --workdir=/tmp/sre_quick   # seconds

A short run (minutes on 2 CPU cores) with a reduced evaluation budget. The paper-length run is one override away:

  python -m ganlatent_jax.main --config=configs/sre_3dshapes.py --workdir=/tmp/sre_paper \\
      --config.steps=6000 --config.evaluation.protocol.num_train=10000 --config.evaluation.protocol.steps=3000 \\
      --config.evaluation.protocol.mig_num_train=10000 --config.evaluation.protocol.dci_num_train=10000 \\
      --config.evaluation.protocol.factor_vae_num_variance_estimate=10000 \\
      --config.evaluation.protocol.factor_vae_num_train=10000 --config.evaluation.protocol.beta_vae_num_train=10000

Defaults follow the paper for 3DShapes (K = 10, e = 1, Adam 1e-4 for both updates) with upstream's batch of 32
(16 pairs; the paper says 64: --config.batch_size=64). Shifts are applied in W with truncation 0.8, as upstream.
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = "sre"
  c.generator = "testbed:shapes3d"
  c.generator_format = ""
  c.num_devices = 0                    # 0 = all devices
  c.seed = 0

  c.num_directions = 10                # K
  c.shift_range = 1.0                  # e: ε ~ U(−e, e)
  c.space = ""                         # '' = the initialisation's space ('w' for SeFa on StyleGAN2)
  c.truncation = 0.8                   # ψ in W around w̄ (computed once from truncation_samples latents); 1.0 = none
  # 'after_truncation': w̄ + ψ(w − w̄) + D·ε (the README's numbers); 'before_truncation': upstream's train_ours,
  # w̄ + ψ(w + D·ε − w̄), i.e. an effective shift ψ·D·ε (the paper rows of launch/sre_table.py use it)
  c.shift_order = "after_truncation"
  c.truncation_samples = 4096
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))   # class-conditional generators
  c.batch_size = 32                    # images per update (B/2 pairs)
  c.steps = 300
  c.directions = ml_collections.ConfigDict(dict(learning_rate=1e-4))

  c.init = ml_collections.ConfigDict()
  c.init.method = "sefa"               # 'sefa' | 'ganspace' | 'random' | 'file'
  # 'genforce' (the SeFa authors' code; the README's SRE rows) | 'sre' (SRE's upstream start: rosinality's stack
  # without its last layer, `directions.closed_form`) | 'rosinality' | 'first_layer' (an oracle's A)
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
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=1))

  c.evaluation = common.encoder_evaluation("shapes3d")
  c.evaluation.include_init = True     # also score the initial directions (the 'before' of metrics.json)
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds instead of minutes: K = 3, a narrow ranker, 2 steps, a token evaluation budget."""
  c.num_directions = 3
  c.batch_size = 8
  c.steps = 2
  c.ranker.width = 4
  c.truncation_samples = 64
  c.log_every = 1
  c.image_every = 0
  c.checkpoint_every = 2
  c.progress_bar = False
  common.quick_evaluation(c.evaluation)
  return c
