"""ganlatent_jax.checkpoint"""
