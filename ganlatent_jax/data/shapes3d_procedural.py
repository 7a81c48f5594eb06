"""Procedural 3DShapes: a numpy ray tracer of the 3DShapes room, vectorised over the batch.

The scene copies the layout of DeepMind's 3DShapes: a floor, two back walls meeting in a corner behind an object
that stands in the middle of the floor, seen from above and in front. The orientation factor turns the camera about
the vertical axis through the object, so the wall corner slides sideways and the object turns, as in the real data.
Every surface is traced analytically (ray/plane, ray/box, ray/cylinder, ray/sphere) per pixel, shaded with one
directional light from the upper left (Lambert plus ambient, a highlight on the object) and shadowed by the object.

Colours enter only at the end: the tracer returns, per pixel, how much of each of the three surfaces (floor, wall,
object) it sees times that surface's shading. The three hues multiply those weights, so the geometry of a
(shape, scale, orientation) triple — 480 of them — is traced once per process and cached, and a batch then costs
one small matrix product per pixel.
"""
from __future__ import annotations

import threading

import numpy as np

from ganlatent_jax.data.base import GroundTruthData, hsv_hue_to_rgb

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTORS_NUM_VALUES = (10, 10, 10, 8, 4, 15)
HUE_VALUES = np.linspace(0.0, 1.0, 10, endpoint=False)
SCALE_VALUES = np.linspace(0.75, 1.25, 8)
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
ORIENTATION_DEGREES = np.linspace(-30.0, 30.0, 15)
FLOOR, WALL, OBJECT = 0, 1, 2  # the surfaces, in the order of the weight channels

# Scene constants (world units; y is up, the object stands at the origin, the camera looks along -z at azimuth 0).
_OBJECT_SIZE = 1.3           # half-width of the object at scale 1
_WALL_DISTANCE = 4.2         # distance of each wall plane from the vertical axis through the object
_CAMERA_DISTANCE = 10.0
_CAMERA_HEIGHT = 5.5
_LOOK_AT_HEIGHT = 1.4
_FIELD_OF_VIEW_DEGREES = 44.0
_LIGHT_DIRECTION = np.asarray([-0.35, 0.8, 0.5]) / np.linalg.norm([-0.35, 0.8, 0.5])
_OBJECT_AMBIENT, _OBJECT_DIFFUSE, _OBJECT_SPECULAR = 0.28, 0.8, 0.18
_ROOM_AMBIENT, _ROOM_DIFFUSE = 0.62, 0.42
_SHADOW_FACTOR = 0.62        # light left in the object's shadow
_EPSILON = 1e-4
# Walls: inward normals of the two planes n·p = -_WALL_DISTANCE; they meet in a vertical corner at x = 0 behind.
_WALL_NORMALS = np.asarray([[1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]) / np.sqrt(2.0)


def _camera_rays(orientation_degrees: np.ndarray, resolution: int, supersample: int):
  """Origins (N, 1, 3) and unit directions (N, P, 3), P = (resolution * supersample)² in row-major image order."""
  azimuth = np.deg2rad(np.asarray(orientation_degrees, np.float64))
  origin = np.stack([_CAMERA_DISTANCE * np.sin(azimuth), np.full_like(azimuth, _CAMERA_HEIGHT),
                     _CAMERA_DISTANCE * np.cos(azimuth)], axis=-1)
  target = np.asarray([0.0, _LOOK_AT_HEIGHT, 0.0])
  forward = target - origin
  forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
  right = np.cross(forward, [0.0, 1.0, 0.0])
  right /= np.linalg.norm(right, axis=-1, keepdims=True)
  up = np.cross(right, forward)
  size = resolution * supersample
  centres = (np.arange(size) + 0.5) / size * 2.0 - 1.0  # pixel centres in [-1, 1]
  half_width = np.tan(np.deg2rad(_FIELD_OF_VIEW_DEGREES) / 2.0)
  screen_x = np.tile(centres, size) * half_width
  screen_y = -np.repeat(centres, size) * half_width  # image rows go down
  directions = (forward[:, None, :] + screen_x[None, :, None] * right[:, None, :]
                + screen_y[None, :, None] * up[:, None, :])
  directions /= np.sqrt(_dot(directions, directions))[..., None]
  return origin[:, None, :].astype(np.float32), directions.astype(np.float32)


def _nearest(candidates):
  """The nearest of several (t (…), normal (…, 3)) hits; t = inf where a candidate misses."""
  t, normal = candidates[0]
  normal = np.broadcast_to(normal, t.shape + (3,))
  for other_t, other_normal in candidates[1:]:
    closer = other_t < t
    t, normal = np.where(closer, other_t, t), np.where(closer[..., None], other_normal, normal)
  return t, normal


def _positive(t, valid):
  return np.where(valid & (t > _EPSILON), t, np.inf).astype(np.float32)


def _dot(x, y):
  # Spelled out: numpy reductions over a length-3 last axis are several times slower than three products.
  return sum(x[..., k] * y[..., k] for k in range(x.shape[-1]))


# The ray/solid functions take rays as origins and unit directions (…, 3) and sizes broadcastable to (…);
# they return (t (…), normal (…, 3)) with t = inf for a miss.
def _box(origin, direction, half_size):
  """Axis-aligned cube [-a, a] × [0, 2a] × [-a, a] (slab method)."""
  a = half_size[..., None]
  lower = np.concatenate([-a, 0.0 * a, -a], axis=-1)
  upper = np.concatenate([a, 2.0 * a, a], axis=-1)
  safe = np.where(np.abs(direction) < 1e-9, 1e-9, direction)
  t_lower, t_upper = (lower - origin) / safe, (upper - origin) / safe
  t_enter, t_exit = np.minimum(t_lower, t_upper), np.maximum(t_lower, t_upper)
  axis = np.argmax(t_enter, axis=-1)
  near, far = t_enter.max(axis=-1), t_exit.min(axis=-1)
  normal = -np.sign(np.take_along_axis(direction, axis[..., None], -1)) * (np.arange(3) == axis[..., None])
  return _positive(near, near <= far), normal.astype(np.float32)


def _sphere(origin, direction, centre, radius):
  offset = origin - centre
  b = _dot(offset, direction)
  disc = b * b - (_dot(offset, offset) - radius ** 2)
  t = -b - np.sqrt(np.maximum(disc, 0.0))
  normal = (origin + t[..., None] * direction - centre) / radius[..., None]
  return _positive(t, disc > 0), normal


def _cylinder_side(origin, direction, axis, centre, radius, half_length):
  """Side wall of a cylinder along world `axis` (0 = x, 1 = y) about `centre`."""
  across = [k for k in range(3) if k != axis]
  offset = origin - centre
  o2, d2 = offset[..., across], direction[..., across]
  a, b, c = _dot(d2, d2), _dot(o2, d2), _dot(o2, o2) - radius ** 2
  disc = b * b - a * c
  t = (-b - np.sqrt(np.maximum(disc, 0.0))) / np.maximum(a, 1e-12)
  along = offset[..., axis] + t * direction[..., axis]
  normal = (offset + t[..., None] * direction) * (np.arange(3) != axis) / radius[..., None]
  return _positive(t, (disc > 0) & (np.abs(along) <= half_length)), normal


def _flat_cap(origin, direction, height, radius):
  """Horizontal disc of `radius` at y = height about the vertical axis; normal up."""
  safe = np.where(np.abs(direction[..., 1]) < 1e-9, 1e-9, direction[..., 1])
  t = (height - origin[..., 1]) / safe
  hit = origin + t[..., None] * direction
  inside = hit[..., 0] ** 2 + hit[..., 2] ** 2 <= radius ** 2
  return _positive(t, inside), np.asarray([0.0, 1.0, 0.0], np.float32)


def _solid(shape: str, o, d, a):
  """Ray hits of one of the four objects of half-size a, standing on the floor at the origin."""
  zeros = np.zeros_like(a)
  if shape == "cube":
    return _box(o, d, a)
  if shape == "cylinder":
    radius, height = 0.95 * a, 2.0 * a  # a squat can: as wide as tall, so its flat top shows
    centre = np.stack([zeros, height / 2, zeros], -1)
    return _nearest([_cylinder_side(o, d, 1, centre, radius, height / 2), _flat_cap(o, d, height, radius)])
  if shape == "sphere":
    radius = 1.05 * a
    return _sphere(o, d, np.stack([zeros, radius, zeros], -1), radius)
  # capsule: a cylinder lying along x with hemispherical ends
  radius, half_length = 0.7 * a, 0.8 * a
  caps = [_sphere(o, d, np.stack([side * half_length, radius, zeros], -1), radius) for side in (-1.0, 1.0)]
  return _nearest([_cylinder_side(o, d, 0, np.stack([zeros, radius, zeros], -1), radius, half_length)] + caps)


_BOUNDING_RADIUS = 1.8  # × half-size, about (0, a, 0): contains every solid above


def _trace_object(shape_ids, half_sizes, origin, direction):
  """(t (N, P), normal (N, P, 3)) of each image's object.

  Only rays that meet the object's bounding sphere are traced (a few percent of the frame), gathered flat and
  grouped by shape.
  """
  origin, direction = np.broadcast_arrays(origin, direction)
  a = half_sizes[:, None]
  offset = origin - np.stack([np.zeros_like(a), a, np.zeros_like(a)], -1)
  b = _dot(offset, direction)
  disc = b * b - (_dot(offset, offset) - (_BOUNDING_RADIUS * a) ** 2)
  image, ray = np.nonzero((disc > 0) & (np.sqrt(np.maximum(disc, 0.0)) - b > 0))
  t = np.full(direction.shape[:2], np.inf, np.float32)
  normal = np.zeros(direction.shape, np.float32)
  o, d, ray_shape, ray_size = origin[image, ray], direction[image, ray], shape_ids[image], half_sizes[image]
  for shape in np.unique(ray_shape):
    rows = np.flatnonzero(ray_shape == shape)
    t[image[rows], ray[rows]], normal[image[rows], ray[rows]] = _solid(SHAPE_NAMES[shape], o[rows], d[rows],
                                                                       ray_size[rows])
  return t, normal


def _trace_room(origin, direction):
  """(t, normal, surface) of the floor and walls seen by each ray."""
  candidates = [(_positive(-origin[..., 1] / np.minimum(direction[..., 1], -1e-9), direction[..., 1] < 0),
                 np.asarray([0.0, 1.0, 0.0], np.float32))]
  for normal in _WALL_NORMALS.astype(np.float32):
    facing = direction @ normal
    t = (-_WALL_DISTANCE - origin @ normal) / np.where(facing < 0, facing, -1.0)
    candidates.append((_positive(t, facing < 0), normal))
  t, normal = _nearest(candidates)
  surface = np.where(t == candidates[0][0], FLOOR, WALL)
  return t, normal, surface


def trace_geometry(shape_ids, scale_ids, orientation_ids, *, resolution: int = 64, supersample: int = 2):
  """Surface weights (N, resolution, resolution, 3) float32 of (shape, scale, orientation) index triples.

  Channel k is the fraction of the pixel covered by surface k (floor, wall, object) times its shading; an image
  is `weights @ [floor_rgb, wall_rgb, object_rgb]`. `supersample`² rays per pixel give smooth edges.
  """
  shape_ids, scale_ids, orientation_ids = (np.asarray(v, np.int64).reshape(-1)
                                           for v in (shape_ids, scale_ids, orientation_ids))
  half_sizes = (_OBJECT_SIZE * SCALE_VALUES[scale_ids]).astype(np.float32)
  light = _LIGHT_DIRECTION.astype(np.float32)

  # Camera rays and the lit room depend on the orientation only: trace them once per distinct orientation.
  orientations, inverse = np.unique(orientation_ids, return_inverse=True)
  origin, direction = _camera_rays(ORIENTATION_DEGREES[orientations], resolution, supersample)
  room_t, room_normal, surface = _trace_room(origin, direction)
  room_shade = _ROOM_AMBIENT + _ROOM_DIFFUSE * np.clip(room_normal @ light, 0.0, 1.0)
  halfway = light - direction
  halfway /= np.sqrt(_dot(halfway, halfway))[..., None]
  room_point = origin + room_t[..., None] * direction
  num = len(shape_ids)

  def per_image(x):  # a view when the batch has one orientation (the cache fills by orientation), else a gather
    return np.broadcast_to(x, (num,) + x.shape[1:]) if len(orientations) == 1 else x[inverse.reshape(-1)]

  origin, direction, room_t, surface, room_shade, halfway, room_point = map(
      per_image, (origin, direction, room_t, surface, room_shade, halfway, room_point))

  object_t, object_normal = _trace_object(shape_ids, half_sizes, origin, direction)
  on_object = object_t < room_t
  surface = np.where(on_object, OBJECT, surface)

  # Object: Lambert + ambient + a soft highlight (Blinn) so curved and flat faces read differently.
  lambert = np.clip(object_normal @ light, 0.0, 1.0)
  specular = np.clip(_dot(object_normal, halfway), 0.0, 1.0) ** 24
  object_shade = _OBJECT_AMBIENT + _OBJECT_DIFFUSE * lambert + _OBJECT_SPECULAR * specular

  # Room: darkened where the object blocks the light.
  shadow_t, _ = _trace_object(shape_ids, half_sizes, room_point, np.broadcast_to(light, room_point.shape))
  room_shade = np.where(np.isfinite(shadow_t), _SHADOW_FACTOR * room_shade, room_shade)

  # Clipping before averaging keeps the weights of a pixel summing to at most 1, so images stay in [0, 1].
  shade = np.clip(np.where(on_object, object_shade, room_shade), 0.0, 1.0, dtype=np.float32)
  weights = (surface[..., None] == np.arange(3)) * shade[..., None]
  weights = weights.reshape(-1, resolution, supersample, resolution, supersample, 3).mean(axis=(2, 4))
  return weights.astype(np.float32)


def hue_palette(floor_hue_ids, wall_hue_ids, object_hue_ids) -> np.ndarray:
  """(N, 3 surfaces, 3 channels) RGB of the floor, wall and object hue indices."""
  return hsv_hue_to_rgb(HUE_VALUES[np.stack([floor_hue_ids, wall_hue_ids, object_hue_ids], -1)])


def colorize(weights: np.ndarray, palette: np.ndarray) -> np.ndarray:
  """Images (N, H, W, 3) in [0, 1] from surface weights (N, H, W, 3) and palettes (N, 3, 3)."""
  num, height, width, _ = weights.shape
  images = np.matmul(weights.reshape(num, height * width, 3), palette).reshape(num, height, width, 3)
  return np.clip(images, 0.0, 1.0, out=images)  # only rounding can leave [0, 1]


def render_shapes3d(factors: np.ndarray, *, resolution: int = 64, supersample: int = 2) -> np.ndarray:
  """Images (N, resolution, resolution, 3) float32 of factor rows in FACTOR_NAMES order, traced without a cache."""
  factors = np.asarray(factors)
  weights = trace_geometry(factors[:, 4], factors[:, 3], factors[:, 5], resolution=resolution,
                           supersample=supersample)
  return colorize(weights, hue_palette(factors[:, 0], factors[:, 1], factors[:, 2]))


_GEOMETRY_GRID = (FACTORS_NUM_VALUES[4], FACTORS_NUM_VALUES[3], FACTORS_NUM_VALUES[5])  # shape, scale, orientation


class _GeometryTable:
  """The weights of all 480 (shape, scale, orientation) triples, traced on first use (thread-safe)."""

  def __init__(self, resolution: int, supersample: int):
    self.resolution, self.supersample = resolution, supersample
    self.weights = np.zeros((int(np.prod(_GEOMETRY_GRID)), resolution * resolution, 3), np.float32)
    self.done = np.zeros(len(self.weights), bool)
    self.lock = threading.Lock()

  def fill(self, codes: np.ndarray, chunk: int = 32):
    with self.lock:
      missing = np.unique(codes[~self.done[codes]])
      orientation_of_missing = np.unravel_index(missing, _GEOMETRY_GRID)[2]
      # One orientation per call lets the tracer share the camera rays and the room; chunks of at most `chunk`
      # triples bound its temporaries (~10 MB per triple).
      for orientation in np.unique(orientation_of_missing):
        same = missing[orientation_of_missing == orientation]
        for start in range(0, len(same), chunk):
          part = same[start:start + chunk]
          shape, scale, orientation_ids = np.unravel_index(part, _GEOMETRY_GRID)
          traced = trace_geometry(shape, scale, orientation_ids, resolution=self.resolution,
                                  supersample=self.supersample)
          self.weights[part] = traced.reshape(len(part), -1, 3)
          self.done[part] = True

  def render(self, factors: np.ndarray) -> np.ndarray:
    codes = np.ravel_multi_index((factors[:, 4], factors[:, 3], factors[:, 5]), _GEOMETRY_GRID)
    self.fill(codes)
    palette = hue_palette(factors[:, 0], factors[:, 1], factors[:, 2])
    images = np.empty((len(codes), self.resolution * self.resolution, 3), np.float32)
    # One matrix product per distinct geometry, straight into the output (no gathered copy of the weights).
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(codes)]):
      rows = order[start:stop]
      images[rows] = np.matmul(self.weights[sorted_codes[start]], palette[rows])
    np.clip(images, 0.0, 1.0, out=images)  # only rounding can leave [0, 1]
    return images.reshape(len(codes), self.resolution, self.resolution, 3)


_TABLES: dict[tuple[int, int], _GeometryTable] = {}


def _table(resolution: int, supersample: int) -> _GeometryTable:
  if (resolution, supersample) not in _TABLES:
    _TABLES[(resolution, supersample)] = _GeometryTable(resolution, supersample)
  return _TABLES[(resolution, supersample)]


def warm_geometry_cache(resolution: int = 64, supersample: int = 2):
  """Traces now every geometry that Shapes3D(resolution, supersample) has not traced yet (else: on first use)."""
  _table(resolution, supersample).fill(np.arange(len(_table(resolution, supersample).weights)))


class Shapes3D(GroundTruthData):
  """Procedural 3DShapes with the real dataset's factors, order and cardinalities:
  floor hue 10, wall hue 10, object hue 10, scale 8 (0.75…1.25), shape 4 (cube, cylinder, sphere, capsule),
  orientation 15 (−30°…30°). Deterministic: the same factors always give the same image."""

  factor_names = FACTOR_NAMES
  factors_num_values = FACTORS_NUM_VALUES

  def __init__(self, resolution: int = 64, supersample: int = 2):
    if resolution < 8 or supersample < 1:
      raise ValueError(f"shapes3d: resolution must be >= 8 and supersample >= 1, got {resolution}, {supersample}")
    self.observation_shape = (resolution, resolution, 3)
    self._table = _table(resolution, supersample)

  @property
  def factor_values(self) -> tuple[np.ndarray, ...]:
    """The physical value of each factor index, as the real dataset stores them (hues in [0, 1), degrees)."""
    return (HUE_VALUES, HUE_VALUES, HUE_VALUES, SCALE_VALUES, np.arange(4.0), ORIENTATION_DEGREES)

  def sample_observations_from_factors(self, factors, random_state=None) -> np.ndarray:
    del random_state  # rendering is deterministic
    return self._table.render(self.check_factors(factors))
