"""Pure-functional Flax generators with weights ported from upstream checkpoints."""
from ganlatent_jax.generators.base import Generator, GeneratorInfo
from ganlatent_jax.generators.load import convert, load, save_converted

__all__ = ["Generator", "GeneratorInfo", "convert", "load", "save_converted"]
