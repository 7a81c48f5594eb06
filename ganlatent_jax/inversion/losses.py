"""The blurred reconstruction loss of Plumerault et al. (ICLR 2020), Eq. 3: L(x, y) = ‖k_σ ∗ (x − y)‖², per sample.

Why blur (the paper's App. A): the generator cannot reproduce the phase of high-frequency texture, so a plain MSE
penalises high-frequency magnitude and pulls the inversion towards blurry images; a Gaussian kernel down-weights
exactly those frequencies (by ≈ exp(−σ²|ω|²/2)).

The blur is separable and applied as two banded Toeplitz matrices, Y = M_h · X · M_wᵀ per channel: exact zero
padding ('SAME'), a plain matmul (fast on XLA:CPU, where convolutions are slow) and easy to check against numpy.

Kernels (1-D taps; the 2-D kernel is their outer product):
  * 'gaussian' (default): taps at integer offsets |i| ≤ ⌈3σ⌉, normalised to sum 1, centred, so σ is exact.
    σ = 0 gives the identity (the loss is then the MSE).
  * 'upstream': the released code's kernel, bit for bit: S = round(6σ) taps at linspace(−S/2, S/2, S) (spacing
    S/(S−1), applied one pixel apart), 2-D values exp(−(x² + y²)/(2σ²)) / (√(2π)σ), not normalised; an even S is
    padded like TF's 'SAME' (⌊(S−1)/2⌋ before, the rest after), i.e. shifted by half a pixel.

Masks (1 where the transformed target is defined), mask_mode:
  * 'both' (default, the paper's "L ignores the undefined regions"): mean over H, W, C of m·(k ∗ (m·(x − y)))²,
    divided by the mean of m;
  * 'after_blur' (upstream): mean of m·(k ∗ (x − y))² divided by the mean of m; the target's fill value leaks into
    valid pixels within ≈ 3σ of the mask's edge.
The normaliser is per sample (upstream divides by the batch-global mask mean; the two agree when the batch shares
one mask, which upstream guarantees and we do not need).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

KERNELS = ("gaussian", "upstream")
MASK_MODES = ("both", "after_blur")


def gaussian_taps(sigma: float, kernel: str = "gaussian") -> np.ndarray:
  """1-D taps (float64) whose outer product is the 2-D blur kernel (see the module doc)."""
  if kernel not in KERNELS:
    raise ValueError(f"kernel={kernel!r}; expected one of {KERNELS}")
  sigma = float(sigma)
  if not sigma >= 0 or not math.isfinite(sigma):
    raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
  if sigma == 0:
    return np.ones(1)
  if kernel == "gaussian":
    radius = math.ceil(3 * sigma)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    return taps / taps.sum()
  size = int(round(6 * sigma))
  if size < 1:
    raise ValueError(f"kernel='upstream' needs round(6·sigma) >= 1, got sigma={sigma}")
  positions = np.linspace(-size / 2, size / 2, size)
  # The 2-D constant 1/(√(2π)σ) split evenly between the two 1-D factors.
  return np.exp(-positions ** 2 / (2 * sigma ** 2)) / np.sqrt(np.sqrt(2 * np.pi) * sigma)


def blur_matrix(size: int, taps: np.ndarray) -> np.ndarray:
  """(size, size) matrix M with (M·x)[i] = Σ_k taps[k]·x[i + k − ⌊(S−1)/2⌋], zeros outside (TF 'SAME' correlation)."""
  taps = np.asarray(taps, np.float64)
  pad_before = (len(taps) - 1) // 2
  rows = np.arange(size)[:, None]
  cols = np.arange(size)[None, :]
  index = cols - rows + pad_before
  inside = (index >= 0) & (index < len(taps))
  return np.where(inside, taps[np.clip(index, 0, len(taps) - 1)], 0.0)


@functools.lru_cache(maxsize=64)
def _blur_matrices(height: int, width: int, sigma: float, kernel: str) -> tuple[np.ndarray, np.ndarray]:
  taps = gaussian_taps(sigma, kernel)
  return blur_matrix(height, taps).astype(np.float32), blur_matrix(width, taps).astype(np.float32)


def blur(images, sigma: float, kernel: str = "gaussian"):
  """NHWC images blurred channel by channel (zero padding); σ and kernel are Python values (static under jit)."""
  images = jnp.asarray(images)
  if images.ndim != 4:
    raise ValueError(f"images must be NHWC, got shape {images.shape}")
  if float(sigma) == 0:
    return images
  rows, cols = _blur_matrices(images.shape[1], images.shape[2], float(sigma), kernel)
  return jnp.einsum("hi,bijc,wj->bhwc", rows, images, cols, precision="highest")


def blurred_loss(x, y, sigma: float, mask=None, kernel: str = "gaussian", mask_mode: str = "both"):
  """(B,) blurred squared error of Eq. 3 between NHWC images x and y (any number of channels).

  mask: None (everything valid) or validity weights broadcastable to x: (B, H, W), (B, H, W, 1) or (B, H, W, C).
  See the module doc for the kernels and mask modes; σ = 0 is the (masked) MSE.
  """
  if mask_mode not in MASK_MODES:
    raise ValueError(f"mask_mode={mask_mode!r}; expected one of {MASK_MODES}")
  x, y = jnp.asarray(x), jnp.asarray(y)
  if x.shape != y.shape or x.ndim != 4:
    raise ValueError(f"x and y must be NHWC of one shape, got {x.shape} and {y.shape}")
  if mask is not None:
    mask = jnp.asarray(mask, x.dtype)
    if mask.ndim == 3:
      mask = mask[..., None]
    try:
      jnp.broadcast_shapes(mask.shape, x.shape)
    except ValueError as e:
      raise ValueError(f"mask of shape {mask.shape} does not broadcast to the images' {x.shape}") from e
  gaussian_taps(sigma, kernel)  # validates sigma and kernel outside the trace
  return _blurred_loss(x, y, mask, float(sigma), kernel, mask_mode)


@functools.partial(jax.jit, static_argnames=("sigma", "kernel", "mask_mode"))
def _blurred_loss(x, y, mask, sigma: float, kernel: str, mask_mode: str):
  # Jitted (inlined when traced inside another jit): eager calls compile once per shape instead of op by op.
  error = x - y
  if mask is None:
    return jnp.mean(blur(error, sigma, kernel) ** 2, axis=(1, 2, 3))
  mask = jnp.broadcast_to(mask, x.shape)
  if mask_mode == "both":
    error = error * mask
  blurred = blur(error, sigma, kernel)
  mask_mean = jnp.mean(mask, axis=(1, 2, 3))
  # A sample whose target is undefined everywhere has nothing to match: loss 0, not 0/0.
  return jnp.mean(mask * blurred ** 2, axis=(1, 2, 3)) / jnp.maximum(mask_mean, 1e-12)
