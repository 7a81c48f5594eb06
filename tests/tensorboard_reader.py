"""Reads scalars back from TensorBoard event files without TensorFlow: the report's reader (one implementation)."""
from ganlatent_jax.viz.report import read_events, read_scalars

__all__ = ["read_events", "read_scalars"]
