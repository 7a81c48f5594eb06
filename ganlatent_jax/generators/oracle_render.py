"""The procedural dSprites and 3DShapes renderers (`data/*_procedural.py`) in JAX, differentiable in the factors.

Both take continuous factors and return images in [0, 1]. The scenes, constants and shading are those of the numpy
renderers (imported from them), with every hard decision made soft so that an image is a smooth function of its
factors and `jax.grad` through it means something:
  * edges: a pixel's coverage is sigmoid(−4 d) of the signed distance d (in pixels) of its centre to the edge, the
    slope of a one-pixel box filter at the edge (the numpy dSprites renderer is binary, its 3DShapes tracer
    averages 2×2 hard samples);
  * shape: a weighted blend of the shapes (`shape_weights`, sharp away from the midpoints between shapes): of the
    sprites' coverages for dSprites, of the solids' signed distance functions for 3DShapes;
  * 3DShapes: the solids (and their blends) are convex, so their signed distance is convex along a ray: its minimum
    (golden section) and first zero (bisection) are found without gradients, and the distance is read with gradients
    there (by the envelope theorem, and a Newton step for the hit, this gives the exact derivatives); the minimum
    over the ray, in pixels, gives the coverage; floor and walls are picked by a soft minimum of
    their ray distances; the object's shadow is a soft occlusion along the light ray.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganlatent_jax.data import dsprites_procedural as dsp
from ganlatent_jax.data import shapes3d_procedural as s3d

EDGE_SLOPE = 4.0          # sigmoid(−EDGE_SLOPE·d): the slope 1 / pixel of a box-filtered edge at its centre
SHAPE_SHARPNESS = 0.1     # std (in shape-index units) of the Gaussian bumps that weigh the shapes


def shape_weights(shape_position: jax.Array, num_shapes: int) -> jax.Array:
  """(B, num_shapes) blend weights of a continuous shape index in [−0.5, num_shapes − 0.5]: a softmax of Gaussian
  bumps at 0, 1, …, so the shape is pure except within ~0.1 of the midpoints, and smooth everywhere."""
  offsets = shape_position[:, None] - jnp.arange(num_shapes, dtype=shape_position.dtype)[None, :]
  return jax.nn.softmax(-0.5 * (offsets / SHAPE_SHARPNESS) ** 2, axis=-1)


# ---------------------------------------------------------------------------------------------------------------
# dSprites.

def _heart_polygon(num_vertices: int = 160) -> np.ndarray:
  """(num_vertices, 2) points of the heart's boundary (x, y) in the sextic's coordinates, one per polar angle about
  the origin (the heart is star-shaped about it): the root in r ∈ [0, 2] of (r² − 1)³ − r⁵ cos²θ sin³θ."""
  angles = np.linspace(0.0, 2.0 * np.pi, num_vertices, endpoint=False)
  cos2_sin3 = np.cos(angles) ** 2 * np.sin(angles) ** 3
  low, high = np.zeros_like(angles), np.full_like(angles, 2.0)
  for _ in range(60):
    middle = (low + high) / 2
    outside = (middle ** 2 - 1.0) ** 3 - middle ** 5 * cos2_sin3 > 0
    low, high = np.where(outside, low, middle), np.where(outside, middle, high)
  radius = (low + high) / 2
  return np.stack([radius * np.cos(angles), radius * np.sin(angles)], -1)


# The heart's boundary in sprite units (u, v) (`_inside` maps x = 1.2 u, y = 1.15 v + 0.12).
_HEART = _heart_polygon() / np.asarray([1.2, 1.15]) - np.asarray([0.0, 0.12 / 1.15])


def _polygon_distance(u: jax.Array, v: jax.Array, vertices: np.ndarray) -> jax.Array:
  """Unsigned distance from points (u, v) to a closed polygon (one segment at a time: no (…, segments) array)."""
  starts = jnp.asarray(vertices, jnp.float32)
  edges = jnp.asarray(np.roll(vertices, -1, axis=0) - vertices, jnp.float32)

  def closest(best, segment):
    (start_u, start_v), (edge_u, edge_v) = segment
    along = jnp.clip(((u - start_u) * edge_u + (v - start_v) * edge_v) / (edge_u ** 2 + edge_v ** 2), 0.0, 1.0)
    return jnp.minimum(best, (u - start_u - along * edge_u) ** 2 + (v - start_v - along * edge_v) ** 2), None

  squared, _ = lax.scan(closest, jnp.full(u.shape, jnp.inf, u.dtype), (starts, edges))
  return jnp.sqrt(squared + 1e-12)


def _sprite_distances(u: jax.Array, v: jax.Array) -> list[jax.Array]:
  """Signed distances (in units of the square's half side; < 0 inside) to the square, ellipse and heart of
  `dsprites_procedural._inside`. The square's is exact; the ellipse's is F / |∇F| of its implicit equation (first
  order, exact on the boundary); the heart's is the distance to a 160-gon on its boundary, signed by the sextic."""
  qx, qy = jnp.abs(u) - 1.0, jnp.abs(v) - 1.0
  outside = jnp.sqrt(jnp.maximum(qx, 0.0) ** 2 + jnp.maximum(qy, 0.0) ** 2 + 1e-12) - 1e-6
  square = outside + jnp.minimum(jnp.maximum(qx, qy), 0.0)
  ax, ay = 1.25, 0.62
  ellipse_f = (u / ax) ** 2 + (v / ay) ** 2 - 1.0
  ellipse = ellipse_f / jnp.maximum(jnp.sqrt((2 * u / ax ** 2) ** 2 + (2 * v / ay ** 2) ** 2), 0.5)
  x, y = u * 1.2, v * 1.15 + 0.12
  inside_heart = (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0
  heart = jnp.where(inside_heart, -1.0, 1.0) * _polygon_distance(u, v, _HEART)
  return [square, ellipse, heart]


def render_dsprites(shape: jax.Array, scale: jax.Array, orientation: jax.Array, pos_x: jax.Array,
                    pos_y: jax.Array, resolution: int = dsp.RESOLUTION) -> jax.Array:
  """Images (B, resolution, resolution, 1) in [0, 1] of continuous factors (B,) each: shape index in
  [−0.5, 2.5] (blended), scale (0.5…1), orientation (radians), pos_x / pos_y (0…1), as `render_dsprites`."""
  half_side = dsp._SPRITE_SIZE / 2.0 * scale                      # frame units
  span = 1.0 - 2.0 * dsp._POSITION_MARGIN
  centre_x = (dsp._POSITION_MARGIN + span * pos_x) * resolution   # pixels
  centre_y = (dsp._POSITION_MARGIN + span * pos_y) * resolution
  pixel = jnp.arange(resolution, dtype=jnp.float32) + 0.5
  dx = (pixel[None, None, :] - centre_x[:, None, None]) / resolution
  dy = (centre_y[:, None, None] - pixel[None, :, None]) / resolution   # v up, rows down
  cos, sin = jnp.cos(orientation)[:, None, None], jnp.sin(orientation)[:, None, None]
  half = half_side[:, None, None]
  u, v = (cos * dx + sin * dy) / half, (-sin * dx + cos * dy) / half
  pixels_per_unit = half * resolution
  coverages = jnp.stack([jax.nn.sigmoid(-EDGE_SLOPE * d * pixels_per_unit) for d in _sprite_distances(u, v)], -1)
  weights = shape_weights(shape, len(dsp.SHAPE_NAMES))[:, None, None, :]
  return jnp.sum(coverages * weights, axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------------
# 3DShapes. Vectors are (x, y, z) tuples of arrays, not (…, 3) arrays: XLA on CPU evaluates the distance functions
# ~25× faster on separate components than on a stacked last axis of size 3.

def _dot(u, v):
  return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _along(origin, direction, t):
  return tuple(o + t * d for o, d in zip(origin, direction))


def _normalized(v):
  norm = jnp.sqrt(jnp.maximum(_dot(v, v), 1e-24))
  return tuple(c / norm for c in v)


def _length(*components):
  return jnp.sqrt(sum(c * c for c in components) + 1e-12)


_CREASE = 0.01   # world units (a pixel's footprint is ~0.13): see `_box_distance`


def _smooth_max_below(a, b):
  """max(a, b) − (at most _CREASE, only where a ≈ b): smooth and convex, never above the max."""
  return (a + b) / 2 + jnp.sqrt((a - b) ** 2 / 4 + _CREASE ** 2) - _CREASE


def _box_distance(*q):
  """Signed distance from the offsets q_i = |p_i − centre_i| − half-extent_i of an axis-aligned box (or of a
  cylinder: radial and vertical offsets). Inside, max_i q_i is replaced by a smooth maximum from below: a ray that
  clips an edge has its deepest point on the crease between two faces, and there the envelope theorem that gives
  the coverage's derivative (`_object`) needs a smooth distance. The surface moves out by < 0.01 at the edges."""
  outside = _length(*(jnp.maximum(c, 0.0) for c in q))
  return outside + jnp.minimum(functools.reduce(_smooth_max_below, q), 0.0)


# The four solids of `shapes3d_procedural._solid`, half-size a, standing on the floor at the origin.
def _sdf_cube(x, y, z, a):
  return _box_distance(jnp.abs(x) - a, jnp.abs(y - a) - a, jnp.abs(z) - a)


def _sdf_cylinder(x, y, z, a):   # vertical, radius 0.95 a, height 2 a
  return _box_distance(_length(x, z) - 0.95 * a, jnp.abs(y - a) - a)


def _sdf_sphere(x, y, z, a):
  return _length(x, y - 1.05 * a, z) - 1.05 * a


def _sdf_capsule(x, y, z, a):    # along x: radius 0.7 a, segment half-length 0.8 a
  return _length(x - jnp.clip(x, -0.8 * a, 0.8 * a), y - 0.7 * a, z) - 0.7 * a


_SOLIDS = (_sdf_cube, _sdf_cylinder, _sdf_sphere, _sdf_capsule)   # in SHAPE_NAMES order
assert len(_SOLIDS) == len(s3d.SHAPE_NAMES)


def object_sdf(point, half_size: jax.Array, weights: jax.Array) -> jax.Array:
  """The blended solid's signed distance at point = (x, y, z): Σ_k weights[k] · sdf_k (exact for a pure shape).
  half_size and weights[..., k] broadcast against the coordinates."""
  return sum(weights[..., k] * solid(*point, half_size) for k, solid in enumerate(_SOLIDS))


_GOLDEN_STEPS = 18     # golden-section steps for the minimum along a ray (bracket × 0.618¹⁸ ≈ 2e-4)
_BISECTION_STEPS = 12  # bisection steps for the first crossing (bracket × 2⁻¹²)
_BOUNDING_RADIUS = s3d._BOUNDING_RADIUS
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _search(sdf, origin, direction, lower, upper):
  """Along rays origin + t·direction, t ∈ [lower, upper]: (t of the minimum of sdf, t of its first zero, or of the
  minimum when it has none). The solids and their blends are convex, so their signed distance is convex along any
  line: golden-section search finds the minimum, and bisection left of it the entry. No gradients flow (the callers
  read sdf at these t with gradients)."""
  origin, direction, lower, upper = lax.stop_gradient((origin, direction, lower, upper))

  def at(t):
    return sdf(_along(origin, direction, t))

  def golden(_, state):   # one new evaluation per step: the interior point kept is reused
    lo, hi, left, right, f_left, f_right = state
    keep_left = f_left < f_right
    new_lo, new_hi = jnp.where(keep_left, lo, left), jnp.where(keep_left, right, hi)
    new_left = jnp.where(keep_left, new_hi - _GOLDEN * (new_hi - new_lo), right)
    new_right = jnp.where(keep_left, left, new_lo + _GOLDEN * (new_hi - new_lo))
    f_probe = at(jnp.where(keep_left, new_left, new_right))
    return (new_lo, new_hi, new_left, new_right, jnp.where(keep_left, f_probe, f_right),
            jnp.where(keep_left, f_left, f_probe))

  left, right = upper - _GOLDEN * (upper - lower), lower + _GOLDEN * (upper - lower)
  lo, hi, *_ = lax.fori_loop(0, _GOLDEN_STEPS, golden, (lower, upper, left, right, at(left), at(right)))
  minimum_t = (lo + hi) / 2

  def bisect(_, bracket):   # left of the minimum a convex function decreases: inside = past the entry
    lo, hi = bracket
    middle = (lo + hi) / 2
    inside = at(middle) < 0
    return jnp.where(inside, lo, middle), jnp.where(inside, middle, hi)

  _, hit_t = lax.fori_loop(0, _BISECTION_STEPS, bisect, (lower, minimum_t))
  return minimum_t, hit_t


def _bounding_interval(origin, direction, half_size, min_t: float = 0.0):
  """t range of the chord of the object's bounding sphere along each ray (the closest approach ± radius)."""
  closest = -_dot((origin[0], origin[1] - half_size, origin[2]), direction)
  radius = _BOUNDING_RADIUS * half_size
  return jnp.maximum(closest - radius, min_t), jnp.maximum(closest + radius, min_t + 1e-3)


def _sdf_gradient(sdf, point):
  return jax.grad(lambda p: jnp.sum(sdf(p)))(point)


def _smoothed_normal(sdf, point, spacing):
  """The unit normal by central differences `spacing` (about half a pixel's footprint) apart: across an edge
  between two faces it turns continuously within about a pixel (an anti-aliased crease, and a shading that is
  differentiable where exact normals would jump)."""
  gradient = []
  for axis in range(3):
    offset = tuple(spacing if k == axis else 0.0 for k in range(3))
    gradient.append(sdf(tuple(p + o for p, o in zip(point, offset)))
                    - sdf(tuple(p - o for p, o in zip(point, offset))))
  return _normalized(tuple(gradient))


def _object(sdf, origin, direction, half_size, pixel_angle: float, footprint=None, min_t: float = 0.0):
  """(coverage, shading point) of the object along each ray. coverage = sigmoid(−4 · min distance / footprint),
  footprint = the world size of a pixel there (default: at the minimum, for camera rays); the shading point is the
  first hit, or the closest approach for a ray that misses."""
  lower, upper = _bounding_interval(origin, direction, half_size, min_t)
  minimum_t, hit_t = _search(sdf, origin, direction, lower, upper)
  minimum = sdf(_along(origin, direction, minimum_t))   # envelope theorem: d min / dθ = ∂sdf / ∂θ there
  footprint = minimum_t * pixel_angle if footprint is None else footprint
  coverage = jax.nn.sigmoid(-EDGE_SLOPE * minimum / footprint)
  # The hit's t(θ) solves sdf(o + t d; θ) = 0: one Newton step from the found t carries its exact derivative.
  slope = lax.stop_gradient(_dot(_sdf_gradient(sdf, _along(origin, direction, hit_t)), direction))
  slope = jnp.where(slope < -1e-3, slope, -1e-3)    # a ray enters where the distance decreases
  hit_t = hit_t - sdf(_along(origin, direction, hit_t)) / slope
  shading_t = jnp.where(lax.stop_gradient(minimum) < 0, hit_t, minimum_t)
  return coverage, _along(origin, direction, shading_t)


def _camera_rays(azimuth, resolution: int):
  """Origins ((B, 1) × 3) and unit directions ((B, P) × 3) of `shapes3d_procedural._camera_rays`, one ray per pixel
  (P = resolution², row-major)."""
  origin = (s3d._CAMERA_DISTANCE * jnp.sin(azimuth), jnp.full_like(azimuth, s3d._CAMERA_HEIGHT),
            s3d._CAMERA_DISTANCE * jnp.cos(azimuth))
  forward = _normalized((-origin[0], s3d._LOOK_AT_HEIGHT - origin[1], -origin[2]))
  right = _normalized((-forward[2], 0.0 * forward[0], forward[0]))     # forward × (0, 1, 0)
  up = (right[1] * forward[2] - right[2] * forward[1], right[2] * forward[0] - right[0] * forward[2],
        right[0] * forward[1] - right[1] * forward[0])                  # right × forward
  centres = (np.arange(resolution) + 0.5) / resolution * 2.0 - 1.0
  half_width = np.tan(np.deg2rad(s3d._FIELD_OF_VIEW_DEGREES) / 2.0)
  screen_x = jnp.asarray(np.tile(centres, resolution) * half_width, jnp.float32)[None, :]
  screen_y = jnp.asarray(-np.repeat(centres, resolution) * half_width, jnp.float32)[None, :]
  direction = _normalized(tuple(f[:, None] + screen_x * r[:, None] + screen_y * u[:, None]
                                for f, r, u in zip(forward, right, up)))
  return tuple(o[:, None] for o in origin), direction


def _pixel_angle(resolution: int) -> float:
  return float(2.0 * np.tan(np.deg2rad(s3d._FIELD_OF_VIEW_DEGREES) / 2.0) / resolution)


_FAR = 1e4   # the distance given to a plane a ray does not meet (finite, so gradients stay finite)


def _room(origin, direction, pixel_angle: float):
  """(t, floor weight, wall weight, shade without shadow), each (B, P): the floor and walls, picked by a softmin of
  their ray distances whose temperature is ~ a pixel's footprint (a soft edge where two planes meet)."""
  normals = [(0.0, 1.0, 0.0)] + [tuple(float(c) for c in n) for n in s3d._WALL_NORMALS]
  offsets = [0.0, -s3d._WALL_DISTANCE, -s3d._WALL_DISTANCE]    # plane n·p = offset
  distances = []
  for normal, offset in zip(normals, offsets):
    facing = _dot(direction, normal)
    toward = facing < -1e-6
    t = (offset - _dot(origin, normal)) / jnp.where(toward, facing, -1.0)
    distances.append(jnp.where(toward & (t > 0), t, _FAR))
  distances = jnp.stack(distances, -1)
  nearest = lax.stop_gradient(jnp.min(distances, -1, keepdims=True))
  weights = jax.nn.softmax(-(distances - nearest) / (0.4 * nearest * pixel_angle), axis=-1)
  shades = jnp.asarray([s3d._ROOM_AMBIENT + s3d._ROOM_DIFFUSE * max(float(np.dot(n, s3d._LIGHT_DIRECTION)), 0.0)
                        for n in normals], jnp.float32)
  t = jnp.sum(weights * distances, -1)
  return t, weights[..., 0], weights[..., 1] + weights[..., 2], weights @ shades


def render_shapes3d_weights(shape: jax.Array, scale: jax.Array, orientation_degrees: jax.Array,
                            resolution: int = 64) -> jax.Array:
  """Surface weights (B, resolution, resolution, 3) of `shapes3d_procedural.trace_geometry` (floor, wall, object:
  coverage × shading) for continuous shape index (blended), scale (0.75…1.25) and orientation (degrees)."""
  batch = shape.shape[0]
  half_size = (s3d._OBJECT_SIZE * scale)[:, None]                          # (B, 1)
  blend = shape_weights(shape, len(_SOLIDS))[:, None, :]                   # (B, 1, 4)
  sdf = functools.partial(object_sdf, half_size=half_size, weights=blend)
  light = tuple(float(c) for c in s3d._LIGHT_DIRECTION)
  pixel_angle = _pixel_angle(resolution)
  origin, direction = _camera_rays(jnp.deg2rad(orientation_degrees), resolution)
  origin = tuple(jnp.broadcast_to(o, direction[0].shape) for o in origin)

  room_t, floor_weight, wall_weight, room_shade = _room(origin, direction, pixel_angle)
  room_point = _along(origin, direction, room_t)
  # Soft shadow: the object's occlusion of the light, with a penumbra about a pixel wide at the receiving point.
  light_rays = tuple(jnp.full_like(room_t, c) for c in light)
  shadow, _ = _object(sdf, room_point, light_rays, half_size, pixel_angle, footprint=room_t * pixel_angle,
                      min_t=1e-3)
  room_shade = room_shade * (1.0 - (1.0 - s3d._SHADOW_FACTOR) * shadow)

  coverage, point = _object(sdf, origin, direction, half_size, pixel_angle)
  normal = _smoothed_normal(sdf, point, 0.5 * pixel_angle * _length(*(p - o for p, o in zip(point, origin))))
  halfway = _normalized(tuple(l - d for l, d in zip(light, direction)))
  lambert = jnp.clip(_dot(normal, light), 0.0, 1.0)
  specular = jnp.clip(_dot(normal, halfway), 0.0, 1.0) ** 24
  object_shade = s3d._OBJECT_AMBIENT + s3d._OBJECT_DIFFUSE * lambert + s3d._OBJECT_SPECULAR * specular

  room_shade, object_shade = jnp.clip(room_shade, 0.0, 1.0), jnp.clip(object_shade, 0.0, 1.0)
  weights = jnp.stack([(1 - coverage) * floor_weight * room_shade, (1 - coverage) * wall_weight * room_shade,
                       coverage * object_shade], -1)
  return weights.reshape(batch, resolution, resolution, 3)


def hsv_hue_to_rgb(hue: jax.Array) -> jax.Array:
  """`data.base.hsv_hue_to_rgb` in JAX: RGB (…, 3) of hues (periodic, any real), piecewise linear in the hue."""
  six = jnp.mod(hue[..., None] * 6.0, 6.0)
  distance = jnp.abs(six - jnp.asarray([3.0, 2.0, 4.0]))
  return jnp.stack([jnp.clip(distance[..., 0] - 1.0, 0.0, 1.0), jnp.clip(2.0 - distance[..., 1], 0.0, 1.0),
                    jnp.clip(2.0 - distance[..., 2], 0.0, 1.0)], -1)


def render_shapes3d(floor_hue, wall_hue, object_hue, scale, shape, orientation_degrees,
                    resolution: int = 64) -> jax.Array:
  """Images (B, resolution, resolution, 3) in [0, 1] of continuous factors (B,) each, as `render_shapes3d`."""
  weights = render_shapes3d_weights(shape, scale, orientation_degrees, resolution)
  palette = hsv_hue_to_rgb(jnp.stack([floor_hue, wall_hue, object_hue], -1))     # (B, 3 surfaces, 3)
  return jnp.clip(jnp.einsum("bhws,bsc->bhwc", weights, palette), 0.0, 1.0)
