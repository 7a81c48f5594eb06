"""LatentCLR on the 3DShapes testbed generator, scored against SeFa with MIG / FactorVAE (encoder protocol).

  python -m ganlatent_jax.main --config=configs/latentclr_3dshapes.py --workdir=/tmp/latentclr_3dshapes

Runs offline: `testbed:shapes3d` is the StyleGAN2 shipped in the package (64×64), the ground truth is the procedural
3DShapes. A global model (K fixed directions in W) is trained, then the SRE/Khrulkov protocol
(`metrics.encoder_protocol.evaluate_directions`) scores its directions and SeFa's (genforce variant, same K):
metrics.json = {"latentclr": {...}, "sefa": {...}}, images/traversal.png and images/traversal_comparison.png
(LatentCLR | SeFa). The eval budgets are disentanglement_lib's defaults reduced for 2 CPU cores.
"""

import ml_collections

from ganlatent_jax import cli


def get_config():
  c = cli.config_module(__file__, "latentclr_stylegan2").get_config()
  c.generator = "testbed:shapes3d"
  c.num_directions = 6               # 3DShapes has 6 factors
  c.model.kind = "global"
  c.truncation = 0.0                 # the testbed is sampled untruncated
  c.alpha = (-3.0, 3.0)
  c.batch_size = 16
  c.steps = 2000
  c.optimizer.decay_steps = (1000, 1500)
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=2))
  c.eval = ml_collections.ConfigDict(dict(
      enabled=True, dataset="shapes3d", source="procedural", resolution=64, seed=0,
      num_train=5000, num_val=1000, batch_size=64, steps=2000,
      mig_num_train=5000, factor_vae_num_train=5000, factor_vae_num_eval=2500,
      factor_vae_num_variance_estimate=5000, metrics=("mig", "factor_vae")))
  return c
