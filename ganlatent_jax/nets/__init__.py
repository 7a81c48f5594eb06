"""Networks that are not generators: conv primitives, ResNet-18, VGG16 + LPIPS, LD nets, small encoders."""
from ganlatent_jax.nets.lpips import LPIPS, lpips_distance, make_lpips

__all__ = ["LPIPS", "lpips_distance", "make_lpips"]  # LPIPS from files: ganlatent_jax.port.lpips.load_lpips
