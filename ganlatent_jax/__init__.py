"""ganlatent_jax: find, refine and measure interpretable directions in GAN latent spaces, in JAX/Flax."""
__version__ = "0.1.0"
