"""Plumerault et al.'s continuous factors on the 3DShapes testbed (StyleGAN2, z in R^64): exploratory, the paper has
no counterpart. Zoom, horizontal translation and brightness, each measured on the generated images by what the
testbed can tell: the factor classifier's expected object scale (zoom), its expected orientation (a translation
slides the wall corner, like the camera yaw: a loose proxy) and the mean intensity (exact).

  python -m ganlatent_jax.main --config=configs/plumerault_3dshapes.py --workdir=/tmp/plumerault_3dshapes
  python -m ganlatent_jax.main --config=configs/plumerault_3dshapes.py:quick --workdir=/tmp/p3_quick  # seconds

A zoom also scales the room, which the generator cannot render; a translation moves the floor edge: expect partial
control, and read the side effects (reading notes §2.3). The classifier (config.evaluation.generated_domain.
classifier_steps) is trained on procedural 3DShapes once and cached beside the workdir.
"""
import ml_collections

from ganlatent_jax import cli

base = cli.config_module(__file__, "plumerault_dsprites")
common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = base.get_config()
  c.generator = "testbed:shapes3d"
  c.transforms = ("scale", "horizontal_position", "brightness")
  c.trajectories.update(num_trajectories=96)
  c.evaluation.estimators = ml_collections.ConfigDict(dict(
      scale="classifier:scale", horizontal_position="classifier:orientation", brightness="intensity"))
  c.evaluation.side_effects = ("classifier:scale", "classifier:orientation", "intensity")
  c.evaluation.dataset = ml_collections.ConfigDict(dict(name="shapes3d", source="procedural"))
  c.evaluation.generated_domain = common.generated_domain_evaluation()
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  base.quick(c)
  c.transforms = ("brightness",)
  c.evaluation.estimators = ml_collections.ConfigDict(dict(brightness="intensity"))
  c.evaluation.side_effects = ("intensity",)
  c.evaluation.probe_samples = 80                  # the probe's least squares needs more images than z has dims
  c.evaluation.generated_domain.enabled = False    # its classifier would dominate a seconds-long run
  return c
