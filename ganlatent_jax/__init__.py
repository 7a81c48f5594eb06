"""ganlatent_jax: find, refine and measure interpretable directions in GAN latent spaces, in JAX/Flax.

Importing the package changes nothing in the process (no XLA flags, no malloc settings): the commands apply the
library's CPU settings through `cli.run`; a program using the package calls `ganlatent_jax.platform.
apply_cpu_settings()` first if it wants them.
"""

__version__ = "0.1.0"
