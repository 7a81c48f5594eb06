"""ganlatent_jax.training"""
