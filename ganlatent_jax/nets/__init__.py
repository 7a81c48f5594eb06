"""Networks that are not generators: conv primitives, ResNet-18, VGG16 + LPIPS, LD nets, small encoders."""
from ganlatent_jax.nets.lpips import LPIPS, load_lpips, lpips_distance

__all__ = ["LPIPS", "load_lpips", "lpips_distance"]
