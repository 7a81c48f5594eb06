"""ganlatent_jax.nets"""
