"""β-VAE on procedural dSprites (64×64×1) with Plumerault et al.'s App. B architecture: the decoders of their Fig. 5.

  python -m ganlatent_jax.main --config=configs/betavae_dsprites.py --workdir=/tmp/betavae_b10 --config.beta=10
  python -m ganlatent_jax.main --config=configs/betavae_dsprites.py:paper --workdir=/tmp/betavae_b10 --config.beta=10
  python -m ganlatent_jax.main --config=configs/betavae_dsprites.py:quick --workdir=/tmp/betavae_quick   # seconds
  python -m ganlatent_jax.evaluate --config=configs/betavae_dsprites.py --workdir=/tmp/betavae_b10 --config.beta=10

Bernoulli likelihood, KL weighted by `beta` (the paper: β ∈ {1, 5, 10, 20}), Adam 5e-4, batch 128, latent size 10.
The paper trains 1e5 steps (the `:paper` variant); the default is a 2-core CPU budget of 2e4 steps (specs/
plumerault.md's resource table). The decoder is written to WORKDIR/generator: `--config.generator=WORKDIR/generator`
in configs/plumerault_dsprites.py measures control on it (launch/betavae_control.py runs the whole figure).
"""
import ml_collections

from ganlatent_jax import cli

PAPER_STEPS = 100_000


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = "betavae"
  c.seed = 0
  c.num_devices = 0                 # 0 = every device; batch_size must divide over them
  c.beta = 10.0                     # the KL weight; 1 = the plain VAE
  c.data = ml_collections.ConfigDict(dict(name="dsprites", source="procedural"))
  c.architecture = ml_collections.ConfigDict(dict(latent_dim=10, channels=(32, 32, 32, 32), hidden=256,
                                                  image_size=64, out_channels=1))
  c.optimizer = ml_collections.ConfigDict(dict(learning_rate=5e-4, eps=1e-7))   # Keras Adam's ε (the paper's TF2)
  c.steps = 20_000                  # CPU budget; the paper: PAPER_STEPS (`:paper`)
  c.batch_size = 128
  c.log_every = 100
  c.checkpoint_every = 1000
  c.keep_checkpoints = 2
  c.image_every = 2000
  c.progress_bar = True
  c.evaluation = ml_collections.ConfigDict(dict(
      enabled=True, num_images=5000, batch_size=250,
      active_threshold=0.01,         # nats of mean KL (active_dims), variance of μ_j (active_units)
      metrics=("mig", "factor_vae"),  # of the encoder mean on the training data
      protocol=ml_collections.ConfigDict(dict(mig_num_points=10000, factor_vae_batch_size=64,
                                              factor_vae_num_train=10000, factor_vae_num_eval=5000,
                                              factor_vae_num_variance=10000, beta_vae_batch_size=64,
                                              beta_vae_num_train=2000, beta_vae_num_eval=1000))))
  c.traversal = ml_collections.ConfigDict(dict(span=2.5, steps=9, num_samples=1))
  return cli.config_variant(c, arg, quick=quick, paper=paper)


def paper(c):
  c.steps = PAPER_STEPS
  c.checkpoint_every = 5000
  return c


def quick(c):
  """Seconds: a few steps of a narrow network at batch 8, a token evaluation (measures nothing)."""
  c.update(steps=4, batch_size=8, log_every=2, checkpoint_every=2, image_every=0, progress_bar=False, num_devices=1)
  c.architecture.update(channels=(8, 8, 8, 8), hidden=16)
  c.evaluation.update(num_images=32, batch_size=16)
  c.evaluation.protocol.update(mig_num_points=200, factor_vae_batch_size=8, factor_vae_num_train=8,
                               factor_vae_num_eval=4, factor_vae_num_variance=200, beta_vae_batch_size=8,
                               beta_vae_num_train=20, beta_vae_num_eval=10)
  c.traversal.update(steps=3)
  return c
