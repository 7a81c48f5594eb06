"""Image transformations T_t with validity masks, batched with a per-sample parameter t (B,), jit-friendly.

Each transformation returns (targets NHWC, masks (B, H, W, 1) in [0, 1], realised t (B,)): the mask is 1 where the
transformed image is defined (the loss ignores the rest) and the realised parameter is what the image actually
underwent (e.g. translations move whole pixels).

  horizontal_position  t = fraction of the width; Δ = trunc(t·W) pixels (toward 0, as upstream); content moves right
                       for t > 0; vacated columns get `fill` and mask 0. Realised t = Δ/W.
  vertical_position    the same along the height; content moves down for t > 0. Realised t = Δ/H.
  scale                zoom by s = 1 + t about the image centre, as upstream: n = ⌊size/s⌋, centre crop (s > 1) or
                       pad with `fill` (s < 1) to n (TF's resize_with_crop_or_pad offsets), then bilinear resize back
                       to size (TF2 `tf.image.resize`: half-pixel centres, edge-clamped, no antialias). The mask is the
                       same pipeline applied to ones (soft edges, 0 in the padded border). Realised t = W/n_w − 1.
  brightness           additive: clip(x + t, output_range); mask ones; realised t = t. (Upstream's brightness cannot
                       run: its call names a function that does not exist; this is the paper's description.)
  rotation             (an extra: the paper names it, upstream has none) by t radians about the image centre,
                       counter-clockwise as displayed, bilinear with `fill` outside; mask = the rotated ones.
t·size within 1e-4 of an integer counts as that integer (float32 products such as 0.3·10 must not truncate to 2).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

TRANSFORMS = ("horizontal_position", "vertical_position", "scale", "brightness", "rotation")
_INTEGER_TOLERANCE = 1e-4


def apply(name: str, images, t, *, output_range: tuple[float, float] = (-1.0, 1.0), fill: float = 0.0):
  """(targets, masks (B, H, W, 1), realised t (B,)) of transformation `name` with per-sample t (scalar or (B,))."""
  if name not in TRANSFORMS:
    raise ValueError(f"unknown transformation {name!r}; available: {TRANSFORMS}")
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4:
    raise ValueError(f"images must be NHWC, got shape {images.shape}")
  t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), images.shape[:1])
  return _apply(name, images, t, tuple(float(v) for v in output_range), float(fill))


@functools.partial(jax.jit, static_argnames=("name", "output_range", "fill"))
def _apply(name: str, images, t, output_range: tuple[float, float], fill: float):
  # Jitted (inlined under another jit): an eager call compiles once per shape instead of op by op.
  if name == "horizontal_position":
    return translate(images, t, axis=2, fill=fill)
  if name == "vertical_position":
    return translate(images, t, axis=1, fill=fill)
  if name == "scale":
    return zoom(images, t, fill=fill)
  if name == "brightness":
    low, high = output_range
    return jnp.clip(images + t[:, None, None, None], low, high), jnp.ones(images.shape[:3] + (1,)), t
  return rotate(images, t, fill=fill)


def _whole_pixels(value):
  """trunc(value) with a tolerance: values within 1e-4 of an integer count as it."""
  return jnp.trunc(value + jnp.sign(value) * _INTEGER_TOLERANCE)


def translate(images, t, *, axis: int, fill: float = 0.0):
  """Shift by trunc(t·size) pixels along axis 1 (rows, down) or 2 (columns, right); vacated pixels = fill, mask 0."""
  size = images.shape[axis]
  shift = _whole_pixels(t * size).astype(jnp.int32)  # (B,)
  source = jnp.arange(size)[None, :] - shift[:, None]  # (B, size): the input index shown at each output index
  valid = (source >= 0) & (source < size)
  source = jnp.clip(source, 0, size - 1)
  if axis == 1:
    moved = jnp.take_along_axis(images, source[:, :, None, None], axis=1)
    valid = valid[:, :, None, None]
  elif axis == 2:
    moved = jnp.take_along_axis(images, source[:, None, :, None], axis=2)
    valid = valid[:, None, :, None]
  else:
    raise ValueError(f"translation axis must be 1 (rows) or 2 (columns), got {axis}")
  mask = jnp.broadcast_to(valid, images.shape[:3] + (1,)).astype(jnp.float32)
  return jnp.where(valid, moved, jnp.float32(fill)), mask, shift.astype(jnp.float32) / size


def _zoom_matrix(size: int, new_size):
  """(B, size, size) weights of output ← input along one axis for a crop/pad to new_size then a bilinear resize.

  Also returns the per-output sum of the weights on defined input pixels (1 inside, < 1 at padded borders).
  """
  new_size = new_size[:, None]  # (B, 1)
  position = (jnp.arange(size)[None, :] + 0.5) * (new_size / size) - 0.5  # half-pixel centres in the n-image
  floor = jnp.floor(position)
  lerp = position - floor
  lower = jnp.clip(floor, 0, new_size - 1).astype(jnp.int32)
  upper = jnp.clip(floor + 1, 0, new_size - 1).astype(jnp.int32)
  # resize_with_crop_or_pad: a crop drops ⌊(size − n)/2⌋ leading pixels, a pad adds ⌊(n − size)/2⌋.
  new_size = new_size.astype(jnp.int32)
  offset = jnp.where(new_size <= size, (size - new_size) // 2, -((new_size - size) // 2))

  def weights(index, weight):
    source = index + offset
    valid = (source >= 0) & (source < size)
    return jax.nn.one_hot(jnp.where(valid, source, 0), size) * (weight * valid)[..., None]

  matrix = weights(lower, 1.0 - lerp) + weights(upper, lerp)
  return matrix, matrix.sum(-1)


def zoom(images, t, *, fill: float = 0.0):
  """Zoom by s = 1 + t about the centre (upstream's crop-or-pad + bilinear resize); see the module doc."""
  _, height, width, _ = images.shape
  scale = 1.0 + t
  new_height = jnp.maximum(jnp.floor(height / scale + _INTEGER_TOLERANCE), 1.0)
  new_width = jnp.maximum(jnp.floor(width / scale + _INTEGER_TOLERANCE), 1.0)
  rows, row_mass = _zoom_matrix(height, new_height)
  cols, col_mass = _zoom_matrix(width, new_width)
  zoomed = jnp.einsum("bhi,bijc,bwj->bhwc", rows, images, cols, precision="highest")
  mask = (row_mass[:, :, None] * col_mass[:, None, :])[..., None]
  targets = zoomed + jnp.float32(fill) * (1.0 - mask)
  # A non-positive scale is meaningless: NaN (visible downstream) rather than a silent garbage image.
  bad = (scale <= 0)[:, None, None, None]
  return jnp.where(bad, jnp.nan, targets), jnp.where(bad, 0.0, mask), width / new_width - 1.0


def rotate(images, t, *, fill: float = 0.0):
  """Rotation by t radians about the image centre, counter-clockwise as displayed (rows grow downwards)."""
  batch, height, width, channels = images.shape
  center_y, center_x = (height - 1) / 2, (width - 1) / 2
  dy = jnp.arange(height, dtype=jnp.float32)[:, None] - center_y
  dx = jnp.arange(width, dtype=jnp.float32)[None, :] - center_x
  cos, sin = jnp.cos(t)[:, None, None], jnp.sin(t)[:, None, None]
  # The output pixel shows the input at the point rotated back by −t (screen coordinates, y down).
  source_x = center_x + dx * cos - dy * sin
  source_y = center_y + dx * sin + dy * cos
  x0, y0 = jnp.floor(source_x), jnp.floor(source_y)
  flat = images.reshape(batch, height * width, channels)
  values = jnp.zeros_like(images)
  mass = jnp.zeros((batch, height, width), jnp.float32)
  for oy, ox in ((0, 0), (0, 1), (1, 0), (1, 1)):
    ys, xs = y0 + oy, x0 + ox
    weight = (1 - jnp.abs(source_y - ys)) * (1 - jnp.abs(source_x - xs))
    valid = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    weight = jnp.where(valid, weight, 0.0)
    index = (jnp.clip(ys, 0, height - 1) * width + jnp.clip(xs, 0, width - 1)).astype(jnp.int32)
    gathered = jnp.take_along_axis(flat, index.reshape(batch, -1, 1), axis=1).reshape(images.shape)
    values = values + weight[..., None] * gathered
    mass = mass + weight
  mask = mass[..., None]
  return values + jnp.float32(fill) * (1.0 - mask), mask, t
