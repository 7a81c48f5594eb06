"""ganlatent_jax.viz"""
