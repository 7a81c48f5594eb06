"""ganlatent_jax.directions"""
