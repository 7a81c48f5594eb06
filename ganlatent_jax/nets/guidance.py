"""UD-GAN-G's guidance functions: differentiable image → feature maps that restrict what a siamese network sees
("Unlabeled Disentangling of GANs with Guided Siamese Networks", Sec. 3.3, App. B–D).

Images are NHWC in the model range [−1, 1] (the generators' tanh output); gradients flow back into the generator.
  * dSprites (App. D, Eq. 8), with intensity I = (x + 1)/2 averaged over channels and pixel-centre coordinates
    normalised to [−1, 1] (u_k = (2k + 1)/W − 1):
        Z = Σ I + eps,  M̂_x = Σ u·I / Z,  M̂_y = Σ v·I / Z,  Ŝ = Σ ((u − M̂_x)² + (v − M̂_y)²)·I / Z
    (`center_of_mass` (B, 2) as (x, y), `size_estimate` (B,)). eps = 1e-6·H·W keeps an empty (all −1) frame finite
    with finite gradients; x ∈ [−1, 1] is assumed, not clipped (a clip would zero the gradient of saturated pixels).
    The paper feeds these scalars to small MLPs; `fit_standardization` measures their mean/std on unlabelled real
    images once so every guided input is on a common (unit) scale.
  * CelebA (Sec. 3.3, Fig. 2): four equal horizontal bands of an aligned face, top / mid-upper / mid-lower / bottom
    (`band(images, index, count=4)`), and halves (`count=2`, App. C).
  * MS-Celeb (App. C): an edge detector (unspecified in the paper: here the Sobel magnitude of the grey image,
    √(g_x² + g_y² + 1e-8), reflect padding) and the mean colour of the image.
  * Coloured MNIST (App. B): the mean colour of randomly sampled pixels (`random_pixel_mean`).
`GUIDANCES` names them for configs: com_x, com_y, size, mean_colour, edges, band0…band3 (= top, mid_upper,
mid_lower, bottom), top_half, bottom_half.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

MASS_EPS_PER_PIXEL = 1e-6
SOBEL_EPS = 1e-8
CELEBA_BANDS = ("top", "mid_upper", "mid_lower", "bottom")


def intensity(images: jax.Array) -> jax.Array:
  """(B, H, W): (x + 1)/2 averaged over channels (model range [−1, 1] → [0, 1])."""
  return jnp.mean((images + 1.0) * 0.5, axis=-1)


def pixel_coordinates(size: int) -> jax.Array:
  """Pixel-centre coordinates of `size` pixels normalised to [−1, 1]: (2k + 1)/size − 1."""
  return (2.0 * jnp.arange(size, dtype=jnp.float32) + 1.0) / size - 1.0


def _moments(images: jax.Array):
  weights = intensity(images)
  _, h, w = weights.shape
  v, u = pixel_coordinates(h)[:, None], pixel_coordinates(w)[None, :]
  mass = jnp.sum(weights, axis=(1, 2)) + MASS_EPS_PER_PIXEL * h * w
  mx = jnp.sum(weights * u, axis=(1, 2)) / mass
  my = jnp.sum(weights * v, axis=(1, 2)) / mass
  spread = jnp.sum(weights * (jnp.square(u - mx[:, None, None]) + jnp.square(v - my[:, None, None])), axis=(1, 2))
  return mx, my, spread / mass


def center_of_mass(images: jax.Array) -> jax.Array:
  """(B, 2): (M̂_x, M̂_y) of Eq. 8, x along columns (right), y along rows (down), in [−1, 1]."""
  mx, my, _ = _moments(images)
  return jnp.stack([mx, my], axis=1)


def size_estimate(images: jax.Array) -> jax.Array:
  """(B,): Ŝ of Eq. 8, the intensity-weighted mean squared distance from the centre of mass (units of [−1, 1]²)."""
  return _moments(images)[2]


def com_x(images):
  return _moments(images)[0][:, None]


def com_y(images):
  return _moments(images)[1][:, None]


def size(images):
  return _moments(images)[2][:, None]


def crop(images: jax.Array, top: int, left: int, height: int, width: int) -> jax.Array:
  """images[:, top:top+height, left:left+width] with the bounds checked (static ints)."""
  _, h, w, _ = images.shape
  if not (0 <= top and top + height <= h and 0 <= left and left + width <= w and height > 0 and width > 0):
    raise ValueError(f"crop ({top}, {left}, {height}, {width}) does not fit images of {h}×{w}")
  return images[:, top:top + height, left:left + width]


def band(images: jax.Array, index: int, count: int = 4) -> jax.Array:
  """Horizontal band `index` of `count` equal bands (rows [index·H/count, (index+1)·H/count)); H % count == 0."""
  h = images.shape[1]
  if h % count or not 0 <= index < count:
    raise ValueError(f"band {index} of {count}: needs 0 ≤ index < count and a height divisible by count, got {h}")
  return crop(images, index * h // count, 0, h // count, images.shape[2])


def sobel_magnitude(images: jax.Array) -> jax.Array:
  """(B, H, W, 1): √(g_x² + g_y² + 1e-8) of the channel-mean image, 3×3 Sobel with reflect padding."""
  grey = jnp.mean(images, axis=-1)
  p = jnp.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="reflect")
  h, w = grey.shape[1:]
  s = lambda dy, dx: p[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
  gx = (s(-1, 1) + 2 * s(0, 1) + s(1, 1)) - (s(-1, -1) + 2 * s(0, -1) + s(1, -1))
  gy = (s(1, -1) + 2 * s(1, 0) + s(1, 1)) - (s(-1, -1) + 2 * s(-1, 0) + s(-1, 1))
  return jnp.sqrt(jnp.square(gx) + jnp.square(gy) + SOBEL_EPS)[..., None]


def mean_colour(images: jax.Array) -> jax.Array:
  """(B, C): the mean of every channel over all pixels."""
  return jnp.mean(images, axis=(1, 2))


def random_pixel_mean(images: jax.Array, rng: jax.Array, num_pixels: int) -> jax.Array:
  """(B, C): the mean colour of `num_pixels` pixels drawn without replacement (independently per image)."""
  b, h, w, c = images.shape
  if not 0 < num_pixels <= h * w:
    raise ValueError(f"random_pixel_mean: num_pixels={num_pixels} must be in 1…{h * w}")
  keys = jax.random.split(rng, b)
  picks = jax.vmap(lambda k: jax.random.choice(k, h * w, (num_pixels,), replace=False))(keys)
  flat = images.reshape(b, h * w, c)
  return jnp.mean(jnp.take_along_axis(flat, picks[..., None], axis=1), axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Registry and standardisation.

@dataclasses.dataclass(frozen=True)
class Guidance:
  fn: Callable[[jax.Array], jax.Array]
  kind: str          # 'vector': (B, D) for an MLP; 'image': NHWC for a conv trunk
  description: str


def _band_guidance(index: int, count: int, name: str) -> Guidance:
  return Guidance(lambda images: band(images, index, count), "image", f"{name} band ({index + 1} of {count})")


GUIDANCES: dict[str, Guidance] = {
    "com_x": Guidance(com_x, "vector", "centre of mass, x (Eq. 8)"),
    "com_y": Guidance(com_y, "vector", "centre of mass, y (Eq. 8)"),
    "size": Guidance(size, "vector", "object size (Eq. 8)"),
    "mean_colour": Guidance(mean_colour, "vector", "mean colour"),
    "edges": Guidance(sobel_magnitude, "image", "Sobel edge magnitude"),
    **{f"band{i}": _band_guidance(i, 4, name) for i, name in enumerate(CELEBA_BANDS)},
    "top_half": _band_guidance(0, 2, "top"),
    "bottom_half": _band_guidance(1, 2, "bottom"),
}


def get(name: str) -> Guidance:
  if name not in GUIDANCES:
    raise ValueError(f"unknown guidance {name!r}; known: {sorted(GUIDANCES)}")
  return GUIDANCES[name]


def fit_standardization(fn: Callable[[jax.Array], jax.Array], images: np.ndarray,
                        batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std) over unlabelled real images (model range), float32: per output dim of a vector guidance (B, D), per
  channel of an image guidance (B, H, W, C) — every axis but the last is averaged. A zero std (a constant feature)
  becomes 1 so that standardising never divides by zero."""
  outputs = np.concatenate([np.asarray(fn(jnp.asarray(images[i:i + batch_size])), np.float64)
                            for i in range(0, len(images), batch_size)])
  axes = tuple(range(outputs.ndim - 1))
  mean, std = outputs.mean(axis=axes), outputs.std(axis=axes)
  return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def standardized(fn: Callable[[jax.Array], jax.Array], mean, std) -> Callable[[jax.Array], jax.Array]:
  """x ↦ (fn(x) − mean)/std (an affine map: correlations with the factors are unchanged)."""
  mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  return lambda images: (fn(images) - mean) / std
