"""Plumerault et al.'s continuous factors on a user-supplied BigGAN-deep (the paper's setting, adapted: the paper used
TF-Hub's BigGAN with a hierarchical 120-d z; see specs/plumerault.md A14): horizontal and vertical translation and
zoom of the object, trajectories over the paper's 10 training classes merged into one direction per factor (Fig. 2,
bottom), t_max 0.5 with upstream's schedule, σ = 3·size/128.

  python -m ganlatent_jax.main --config=configs/plumerault_biggan.py --workdir=/tmp/plumerault_biggan \\
      --config.generator=/path/to/biggan-deep-128        # a pytorch-pretrained-biggan directory or a converted dir
  python -m ganlatent_jax.main --config=configs/plumerault_biggan.py:quick --workdir=/tmp/pb_quick \\
      --config.generator=tests/fixtures/biggan/biggan_tiny

No estimator of an object's position exists for natural images here (the paper uses a saliency network), so the
control measure is off: the run writes the trajectories, the directions with their g, the fit's R² (results.json)
and the pictures (traversal, the factor set to chosen values, g and the density of t). The prior is the package's
truncated noise truncnorm(−2, 2)·ψ at ψ = 1.0 (upstream: N(0, I)), and the ball's radius follows it
(ψ·√(0.7737·d)). Far beyond a 2-core CPU: 10 classes × 3 transforms × 50 trajectories × 500 BigGAN gradients.
"""
import ml_collections

from ganlatent_jax import cli

base = cli.config_module(__file__, "plumerault_dsprites")

# The paper's training classes (upstream run_example.sh): indigo bunting, European gallinule, rhinoceros beetle,
# balloon, mountain tent, pickup, tennis ball, yawl, cheeseburger, agaric.
PAPER_CLASSES = (14, 136, 306, 417, 672, 717, 852, 914, 933, 992)


def get_config(arg=None):
  c = base.get_config()
  c.generator = ""                    # required: a BigGAN-deep checkpoint directory or converted dir
  c.conditional = ml_collections.ConfigDict(dict(classes=PAPER_CLASSES, truncation=1.0))
  c.transforms = ("horizontal_position", "vertical_position", "scale")
  c.trajectories.update(num_trajectories=500, batch_size=10)          # 50 per class on average
  c.trajectories.t_max.update(horizontal_position=0.5, vertical_position=0.5, scale=0.5)
  c.evaluation.enabled = False        # no estimator of the factor on natural images (no saliency network)
  c.evaluation.generated_domain.enabled = False
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds on a small BigGAN: one transform, 4 trajectories over 2 classes, 2 steps."""
  base.quick(c)
  c.conditional.classes = (0, 1)
  c.transforms = ("scale",)
  c.trajectories.update(num_trajectories=4, batch_size=2)
  c.evaluation.enabled = False
  c.evaluation.generated_domain.enabled = False
  return c
