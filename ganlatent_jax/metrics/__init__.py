"""ganlatent_jax.metrics"""
