"""LatentCLR directions of a StyleGAN2 generator (any rosinality checkpoint, a converted dir, or a testbed).

  python -m ganlatent_jax.main --config=configs/latentclr_stylegan2.py --workdir=/tmp/latentclr_ffhq \
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt

Defaults follow upstream (catlab-team/latentclr, README's StyleGAN2 example and conf/): edits in W with truncation
0.7, features at 'conv1', non-linear model, α = 1, Adam lr 1e-3 with weight decay 1e-3 and ×0.2 at steps 1000 and
5000, batch 8. The loss is the paper's (`--config.loss.variant=upstream --config.loss.temperature=0.5
--config.projector.normalize=True` reproduces upstream's). Other options: --config.model.kind=global|linear|nonlinear,
--config.space=z, --config.layers=0-3 (edit only these W+ slots), --config.alpha='(-3.0,3.0)' (α ~ U[-3, 3] per
direction per step), --config.projector.kind=linear.
Writes model.msgpack, images/traversal.png, results.json (and directions.npz for a global model) in the workdir;
TensorBoard scalars (loss, accuracy) and checkpoints as every method; rerunning resumes.
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.method = "latentclr"
  c.generator = "testbed:shapes3d"   # a rosinality .pt, a converted dir, or testbed:NAME
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
  c.truncation = 0.7                 # W truncation of the base latents (0 = none)
  c.alpha = (1.0, 1.0)               # step size α: fixed when lo == hi, else U[lo, hi] per direction per step
  c.model = ml_collections.ConfigDict(dict(kind="nonlinear", depth=3))
  c.projector = ml_collections.ConfigDict(dict(kind="identity", features=128, normalize=False, train=True))
  c.loss = ml_collections.ConfigDict(dict(variant="paper", temperature=0.5))
  c.optimizer = ml_collections.ConfigDict(dict(learning_rate=1e-3, weight_decay=1e-3, decay_steps=(1000, 5000),
                                               decay_factor=0.2, grad_clip_norm=0.0))
  c.traversal = ml_collections.ConfigDict(dict(span=5.0, steps=7, num_samples=2))
  return c
