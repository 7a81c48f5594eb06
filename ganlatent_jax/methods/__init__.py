"""ganlatent_jax.methods"""
