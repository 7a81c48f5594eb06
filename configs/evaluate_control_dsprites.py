"""Plumerault et al.'s control measure of any z directions on the dSprites testbed: per factor (x, y, scale) the best
column of the directions (chosen by rel_std on |t| <= 2 over selection latents), scored on other latents with the
sprite's exact barycentre / size, its side effects on the other factors, beside a supervised probe and random
directions. The README's control table scores SeFa, GANSpace and LD this way (launch/plumerault_table.py).

  python -m ganlatent_jax.evaluate --config=configs/evaluate_control_dsprites.py --workdir=/tmp/sefa_control \\
      --config.directions=/tmp/sefa/directions.npz [--config.seed=1]
  python -m ganlatent_jax.evaluate --config=configs/evaluate_control_dsprites.py:quick --workdir=/tmp/c_quick

Writes metrics.json: control.directions.<factor> (column, selection_rel_std, the curve, summary.core / summary.full:
rel_std, r2_t, spearman, monotone_fraction, gain; side effects), control.probe.<factor>, control.random.<factor>.
No directions (config.directions='') scores the probe and random rows only.
"""
import ml_collections

from ganlatent_jax import cli


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = ""                        # no method: a generator metric over config.directions
  c.generator = "testbed:dsprites"
  c.generator_format = ""
  c.directions = ""                    # a directions.npz in z ('' = only the probe and random rows)
  c.truncation = None
  c.conditional = ml_collections.ConfigDict(dict(classes=(), truncation=0.4))
  c.seed = 0
  c.evaluation = ml_collections.ConfigDict()
  c.evaluation.enabled = True
  c.evaluation.metrics = ("control",)
  c.evaluation.dataset = ml_collections.ConfigDict(dict(name="dsprites", source="procedural"))  # 'classifier:' only
  c.evaluation.protocol = ml_collections.ConfigDict()
  c.evaluation.protocol.control = ml_collections.ConfigDict(dict(
      estimators=ml_collections.ConfigDict(dict(horizontal_position="sprite:x", vertical_position="sprite:y",
                                                scale="sprite:scale")),
      side_effects=("sprite:x", "sprite:y", "sprite:scale"),
      t_max=5.0, num_t=11, core_t_max=2.0,   # the paper's grid and the core grid |t| <= 2 (headlined)
      num_latents=200, num_selection_latents=100, batch_size=64,
      references=("probe", "random"), probe_samples=2000,
      num_random=0))                       # 0 = as many random directions as config.directions has (K)
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds: 8 latents, 3 t values, one factor."""
  c.evaluation.protocol.control.update(num_latents=8, num_selection_latents=8, num_t=3, probe_samples=40,
                                       num_random=2)
  c.evaluation.protocol.control.estimators = ml_collections.ConfigDict(dict(horizontal_position="sprite:x"))
  return c
