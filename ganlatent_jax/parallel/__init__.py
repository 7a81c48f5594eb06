"""ganlatent_jax.parallel"""
