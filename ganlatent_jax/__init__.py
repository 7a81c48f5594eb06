"""ganlatent_jax: find, refine and measure interpretable directions in GAN latent spaces, in JAX/Flax."""
# First, before anything imports jax: the library's CPU XLA flags and malloc settings (see platform.py).
from ganlatent_jax import platform as _platform

_platform.apply_cpu_settings()

__version__ = "0.1.0"
