"""LatentCLR on the 3DShapes testbed generator, scored against SeFa and GANSpace with MIG / FactorVAE / DCI
(encoder protocol) and the generated-domain scores.

  python -m ganlatent_jax.main --config=configs/latentclr_3dshapes.py --workdir=/tmp/latentclr_3dshapes
  python -m ganlatent_jax.main --config=configs/latentclr_3dshapes.py:quick --workdir=/tmp/latentclr_quick

Runs offline: `testbed:shapes3d` is the StyleGAN2 shipped in the package (64×64), the ground truth is the procedural
3DShapes. A global model (K fixed directions in W) is trained, then the SRE/Khrulkov protocol
(`metrics.encoder_protocol.evaluate_directions`) scores its directions, SeFa's (genforce variant, same K) and
GANSpace's (top K principal components of W), and the generated-domain scores add a probe and a random row:
metrics.json = {"latentclr": {...}, "sefa": {...}, "ganspace": {...}, "probe": {...}, "random": {...}},
images/traversal.png and images/traversal_comparison.png
(LatentCLR | SeFa). The evaluation budgets are disentanglement_lib's defaults reduced for 2 CPU cores. Everything
else as configs/latentclr_ffhq.py (upstream's settings).
"""

import ml_collections

from ganlatent_jax import cli

base = cli.config_module(__file__, "latentclr_ffhq")
common = cli.config_module(__file__, "common")


def get_config(arg=None):
  c = base.get_config()
  c.generator = "testbed:shapes3d"
  c.num_directions = 6               # 3DShapes has 6 factors
  c.model.kind = "global"
  c.truncation = common.no_truncation()  # the testbed is sampled untruncated
  c.alpha = (-3.0, 3.0)
  c.batch_size = 16
  c.steps = 2000
  c.optimizer.decay_steps = (1000, 1500)
  c.traversal = ml_collections.ConfigDict(dict(span=3.0, steps=7, num_samples=2))
  c.evaluation = common.encoder_evaluation("shapes3d")
  c.evaluation.protocol = ml_collections.ConfigDict(dict(
      num_train=5000, num_val=1000, batch_size=64, steps=2000, mig_num_train=5000, factor_vae_num_train=5000,
      factor_vae_num_eval=2500, factor_vae_num_variance_estimate=5000, dci_num_train=2000, dci_num_test=1000))
  # DCI's boosted trees on 2000 codes, the generated-domain DCI's budget (at disentanglement_lib's 10000 the trees
  # alone take ~5 min per set of directions on a 2-core CPU)
  c.evaluation.metrics = ("mig", "factor_vae", "dci")
  return cli.config_variant(c, arg, quick=base.quick)
