"""ganlatent_jax.data"""
