"""UD-GAN on procedural dSprites (64×64×1): the testbed's DCGAN generator fed 10 knobs q_i ~ U(−1, 1), its DCGAN
discriminator, and one siamese network of the discriminator's architecture with a 10-dim output (one 1-D φ_i per
knob, the paper's shared unguided network; spec A3, A4, A7).

  python -m ganlatent_jax.main --config=configs/udgan_dsprites.py --workdir=/tmp/udgan_dsprites
  python -m ganlatent_jax.main --config=configs/udgan_dsprites.py:quick --workdir=/tmp/udgan_quick   # seconds
  python -m ganlatent_jax.evaluate --config=configs/udgan_dsprites.py --workdir=/tmp/udgan_dsprites

The engine recipe (lr 2e-4, β1 0.5, R1 γ = 10, EMA) is configs/gan_dsprites.py's engine_config(); InfoGAN's G/D
networks are the same (the paper's "same G/D" condition), its G recipe is the testbed's (configs/infogan_dsprites.py
says why); the paper's Table-5 architecture is not used. Why DCGAN's 2e-4 although the plain GAN diverged on dSprites
at it (25000 steps, README "Testbed generators"): for the UD-GAN table's budgets it is the recipe that learns.
Measured 2026-12-03 (seed 0, evaluation off): at 2e-4 the EMA samples show sprites from step ~1000; at the testbed's
G recipe (lr 1e-4, β (0.7071, 0.995)) they were still black at step 3000 (isolated dots on 3.5% of the pixels, D's
real/fake logits +2.6/−2.4). λ_φ = 5 (the paper's 2D-shapes value); batch 32 = 8 quadruplets. Overrides:
--config.udgan.knob_sampling=per_batch (Eq. 3 literally), --config.udgan.margin=fixed (ablation of the adaptive margin). At the end: traversal PNGs per knob, samples, the EMA generator and metrics.json
(β-VAE, FactorVAE, MIG of the siamese outputs on real images; knob_effect).
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")
gan_dsprites = cli.config_module(__file__, "gan_dsprites")
# The siamese trunk copies D's architecture, not its optimizer settings: φ is trained by D's optimizer (spec A5).
OPTIMIZER_KEYS = ("learning_rate", "beta1", "beta2")


def add_udgan(c, num_unguided, guided=(), weight=5.0):
  """The UD-GAN sections on top of a GAN config (its generator's latent size becomes the number of knobs)."""
  c.method = "udgan"
  c.architecture.latent_dim = num_unguided + len(guided)
  c.udgan = ml_collections.ConfigDict(dict(
      num_unguided=num_unguided, guided=tuple(guided), noise_dim=0, weight=weight, embed_dim=1,
      knob_sampling="per_example", margin="adaptive", margin_value=1.0, scalar_hidden=(32, 32),
      standardization_images=4096,   # unlabelled real images measuring each guidance's mean/std (spec A10)
      siamese=ml_collections.ConfigDict(dict(
          {k: v for k, v in c.discriminator.to_dict().items() if k not in OPTIMIZER_KEYS}, aux_hidden=128))))
  c.batch_size = 32
  c.style_mixing = 0.0
  # Scores of the concatenated siamese outputs on real images of the training data at the end.
  c.evaluation = ml_collections.ConfigDict(dict(
      enabled=True, metrics=("beta_vae", "factor_vae", "mig"),
      protocol=ml_collections.ConfigDict(dict(
          beta_vae_batch_size=64, beta_vae_num_train=2000, beta_vae_num_eval=1000,
          factor_vae_batch_size=64, factor_vae_num_train=2000, factor_vae_num_eval=1000,
          factor_vae_num_variance=5000, mig_num_points=10000, knob_effect_num=64, guidance_num_points=10000))))
  return c


def quick_udgan(c):
  """Tiny networks, 2 steps, a token evaluation budget (measures nothing)."""
  c = gan_dsprites.quick_training(c)
  c.batch_size = 8      # 2 quadruplets
  c.num_devices = 1
  c.udgan.siamese.update(width=4, max_width=16, aux_hidden=8)
  c.udgan.update(scalar_hidden=(8,), standardization_images=64)
  c.evaluation.protocol.update(beta_vae_batch_size=8, beta_vae_num_train=20, beta_vae_num_eval=10,
                               factor_vae_batch_size=8, factor_vae_num_train=8, factor_vae_num_eval=4,
                               factor_vae_num_variance=64, mig_num_points=300, knob_effect_num=4,
                               guidance_num_points=64)
  common.quick_code_generated_domain(c)
  return c


def get_config(arg=None):
  c = common.code_generated_domain(add_udgan(gan_dsprites.engine_config(), num_unguided=10))
  c.steps = 10000
  return cli.config_variant(c, arg, quick=quick_udgan)
