"""LatentCLR directions of a StyleGAN2 FFHQ generator (any rosinality checkpoint or converted dir), upstream's
settings.

  python -m ganlatent_jax.main --config=configs/latentclr_ffhq.py --workdir=/tmp/latentclr_ffhq \\
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt

Defaults follow upstream (catlab-team/latentclr, README's StyleGAN2 example and conf/): edits in W, trained
untruncated as upstream (pictures truncated at 0.7), features at 'conv1', non-linear model, α = 1, Adam lr 1e-3
with weight decay 1e-3 and ×0.2 at steps 1000 and 5000, batch 8. The loss is the paper's (`--config.loss.variant=upstream --config.loss.temperature=0.5
--config.projector.normalize=True` reproduces upstream's). Other options: --config.model.kind=global|linear|nonlinear,
--config.space=z, --config.layers=0-3 (edit only these W+ slots), --config.alpha='(-3.0,3.0)' (α ~ U[-3, 3] per
direction per step), --config.projector.kind=linear.
Writes model.msgpack, images/traversal.png, results.json (and directions.npz for a global model) in the workdir;
TensorBoard scalars (loss, accuracy) and checkpoints as every method; rerunning resumes. No ground truth: no
evaluation (configs/latentclr_3dshapes.py has one).
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = "latentclr"
  c.generator = ""                   # required: a rosinality .pt, a converted dir, or testbed:NAME
  c.generator_format = ""            # force a checkpoint format ('' = auto-detect)
  c.num_devices = 0                  # 0 = every device
  c.seed = 0
  c.steps = 10000
  c.batch_size = 8                   # N latents per step (each edited by all K directions)
  c.log_every = 50
  c.checkpoint_every = 500
  c.keep_checkpoints = 2
  c.image_every = 1000
  c.progress_bar = True

  c.num_directions = 32              # K
  c.space = "w"                      # 'z' or 'w'
  c.layers = "all"                   # W+ slots that get the edit: 'all', 'a-b' (contiguous)
  c.feature_layer = "conv1"          # any name in the generator's info.feature_layers
  c.truncation = 0.7                 # ψ in W of the pictures' base latents (1.0 = none); training ignores it
  # Class-conditional generators (configs/latentclr_imagenet.py): the edits are learnt in the first class.
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))
  c.alpha = (1.0, 1.0)               # step size α: fixed when lo == hi, else U[lo, hi] per direction per step
  c.model = ml_collections.ConfigDict(dict(kind="nonlinear", depth=3))
  c.projector = ml_collections.ConfigDict(dict(kind="identity", features=128, normalize=False, train=True))
  c.loss = ml_collections.ConfigDict(dict(variant="paper", temperature=0.5))
  c.optimizer = ml_collections.ConfigDict(dict(learning_rate=1e-3, weight_decay=1e-3, decay_steps=(1000, 5000),
                                               decay_factor=0.2, grad_clip_norm=0.0))
  c.traversal = ml_collections.ConfigDict(dict(span=5.0, steps=7, num_samples=2))
  c.evaluation = common.encoder_evaluation("", enabled=False)
  return cli.config_variant(c, arg, quick=quick_on_testbed)


def quick_on_testbed(c):
  """Seconds, on the 3DShapes testbed (or --config.generator)."""
  c.generator = c.generator or "testbed:shapes3d"
  return quick(c)


def quick(c):
  """Seconds: K = 3 global directions, 2 steps of a batch of 8."""
  c.num_directions = 3
  c.model.kind = "global"
  c.steps = 2
  c.log_every = 1
  c.checkpoint_every = 2
  c.image_every = 0
  c.progress_bar = False
  c.traversal.update(steps=3, num_samples=1)
  common.quick_evaluation(c.evaluation)
  return c
