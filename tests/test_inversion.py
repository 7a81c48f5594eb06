"""ganlatent_jax.inversion: the blurred loss against numpy references with explicit 2-D convolution loops, the masked
transformations against numpy, projected-Adam inversion on a tiny generator, Eq. 5's recursive trajectories, the
discard rule and batch sharding."""
import dataclasses
import math

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax import inversion, parallel
from ganlatent_jax.generators import dcgan
from ganlatent_jax.generators.base import Generator, GeneratorInfo, init_from_latent
from ganlatent_jax.inversion import losses, optimize, transforms

# ---------------------------------------------------------------------------------------------------------------
# Numpy references.


def reference_kernel(sigma, kernel):
  """The explicit 2-D kernel: 'gaussian' normalised on integer offsets |i| ≤ ⌈3σ⌉; 'upstream' as the released code."""
  if kernel == "gaussian":
    radius = math.ceil(3 * sigma)
    offsets = np.arange(-radius, radius + 1)
    k = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma ** 2))
    return k / k.sum()
  size = int(round(6 * sigma))
  x = np.linspace(-size / 2, size / 2, size)
  return np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)


def reference_blur(images, k):
  """2-D correlation per channel with TF 'SAME' zero padding (⌊(S−1)/2⌋ before), by loops over the kernel taps."""
  s = k.shape[0]
  before, after = (s - 1) // 2, s - 1 - (s - 1) // 2
  padded = np.pad(images, ((0, 0), (before, after), (before, after), (0, 0)))
  height, width = images.shape[1:3]
  out = np.zeros_like(images, dtype=np.float64)
  for i in range(s):
    for j in range(s):
      out += k[i, j] * padded[:, i:i + height, j:j + width, :]
  return out


def reference_loss(x, y, sigma, mask, kernel, mask_mode):
  error = (x - y).astype(np.float64)
  mask = np.broadcast_to(mask, x.shape).astype(np.float64)
  if mask_mode == "both":
    error = error * mask
  blurred = reference_blur(error, reference_kernel(sigma, kernel))
  return (mask * blurred ** 2).mean(axis=(1, 2, 3)) / mask.mean(axis=(1, 2, 3))


def translation_masks(batch, height, width, seed):
  """Validity masks of random per-sample column shifts (a valid band of columns), (B, H, W, 1)."""
  shifts = np.random.RandomState(seed).randint(-width // 3, width // 3 + 1, size=batch)
  columns = np.arange(width)[None, :] - shifts[:, None]
  valid = (columns >= 0) & (columns < width)
  return np.broadcast_to(valid[:, None, :, None], (batch, height, width, 1)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The loss.


def test_upstream_kernel_numbers():
  taps = losses.gaussian_taps(3.0, "upstream")
  assert len(taps) == 18
  np.testing.assert_allclose(np.outer(taps, taps), reference_kernel(3.0, "upstream"), rtol=1e-12)
  assert abs(np.outer(taps, taps).sum() - 6.689) < 1e-3
  taps = losses.gaussian_taps(1.0, "upstream")
  assert len(taps) == 6 and abs(np.outer(taps, taps).sum() - 1.740) < 1e-3


@pytest.mark.parametrize("sigma", [1.0, 1.5, 3.0])
def test_gaussian_taps_are_odd_normalised_with_variance_sigma_squared(sigma):
  taps = losses.gaussian_taps(sigma)
  radius = math.ceil(3 * sigma)
  assert len(taps) == 2 * radius + 1
  assert abs(taps.sum() - 1) < 1e-12
  offsets = np.arange(-radius, radius + 1)
  assert abs((taps * offsets).sum()) < 1e-12
  # The cut at ⌈3σ⌉ removes ≈ 3% of a Gaussian's variance.
  assert 0.95 * sigma ** 2 < (taps * offsets ** 2).sum() <= sigma ** 2


def test_sigma_zero_is_the_mse():
  rng = np.random.RandomState(0)
  x, y = rng.normal(size=(2, 3, 8, 8, 2)).astype(np.float32)
  np.testing.assert_allclose(losses.blurred_loss(x, y, 0.0), ((x - y) ** 2).mean(axis=(1, 2, 3)), rtol=1e-6)


@pytest.mark.parametrize("kernel", ["gaussian", "upstream"])
@pytest.mark.parametrize("mask_mode", ["both", "after_blur"])
@pytest.mark.parametrize("size, channels, sigma", [((16, 16), 1, 1.0), ((20, 24), 3, 3.0), ((20, 24), 1, 3.0),
                                                  ((16, 16), 3, 1.0)])
def test_blurred_loss_matches_the_numpy_reference(kernel, mask_mode, channels, size, sigma):
  rng = np.random.RandomState(channels + size[1] + int(sigma))
  x, y = rng.uniform(-1, 1, size=(2, 3) + size + (channels,)).astype(np.float32)
  mask = translation_masks(3, *size, seed=channels)
  got = losses.blurred_loss(x, y, sigma, mask, kernel=kernel, mask_mode=mask_mode)
  assert got.shape == (3,)
  np.testing.assert_allclose(got, reference_loss(x, y, sigma, mask, kernel, mask_mode), rtol=1e-5)


def test_without_a_mask_every_pixel_counts():
  rng = np.random.RandomState(3)
  x, y = rng.normal(size=(2, 2, 12, 10, 3)).astype(np.float32)
  np.testing.assert_allclose(losses.blurred_loss(x, y, 1.5),
                             reference_loss(x, y, 1.5, np.ones((1, 1, 1, 1)), "gaussian", "after_blur"), rtol=1e-5)


@pytest.mark.parametrize("period, expected", [(4, math.exp(-(2 * math.pi / 4) ** 2 * 1.5 ** 2)),
                                              (64, math.exp(-(2 * math.pi / 64) ** 2 * 1.5 ** 2))])
def test_the_blur_weights_frequencies_like_the_paper_appendix_a(period, expected):
  """A sinusoidal error of period p keeps the energy fraction ≈ exp(−(2π/p)²σ²) away from the borders."""
  columns = np.arange(256)
  error = np.broadcast_to(np.sin(2 * np.pi * columns / period)[None, None, :, None], (1, 32, 256, 1))
  blurred = np.asarray(losses.blur(jnp.asarray(error, jnp.float32), 1.5))
  interior = (slice(None), slice(8, -8), slice(16, -16))
  ratio = (blurred[interior] ** 2).mean() / (error[interior] ** 2).mean()
  assert abs(ratio / expected - 1) < 0.1, (ratio, expected)


def test_mask_modes_on_a_difference_hidden_under_the_mask():
  rng = np.random.RandomState(1)
  x = rng.uniform(-1, 1, size=(2, 24, 24, 1)).astype(np.float32)
  mask = translation_masks(2, 24, 24, seed=5)
  mask[:, :, :4] = 0  # every sample has a masked band
  y = np.where(mask > 0, x, -1.0).astype(np.float32)  # differs only where the target is undefined
  assert np.all(np.asarray(losses.blurred_loss(x, y, 1.5, mask, mask_mode="both")) == 0)
  leak = losses.blurred_loss(x, y, 1.5, mask, mask_mode="after_blur")
  assert np.all(np.asarray(leak) > 0)
  # The leak stays within the kernel's reach (⌈3σ⌉ = 5 px) of the masked region.
  reach = 5
  far_mask = mask.copy()
  for b in range(2):
    invalid = np.where(mask[b, 0, :, 0] == 0)[0]
    near = np.zeros(24, bool)
    for c in invalid:
      near[max(0, c - reach):c + reach + 1] = True
    far_mask[b, :, near] = 0
  assert np.all(np.asarray(losses.blurred_loss(x, y, 1.5, far_mask, mask_mode="after_blur")) < 1e-12)


def test_per_sample_normalisation_equals_upstreams_batch_global_one_for_equal_masks():
  rng = np.random.RandomState(2)
  x, y = rng.normal(size=(2, 4, 16, 16, 3)).astype(np.float32)
  mask = np.broadcast_to(translation_masks(1, 16, 16, seed=3), (4, 16, 16, 1))
  error = reference_blur((x - y).astype(np.float64), reference_kernel(3.0, "upstream"))
  upstream = (error ** 2 * mask).mean(axis=(1, 2, 3)) / np.broadcast_to(mask, x.shape).mean()
  np.testing.assert_allclose(losses.blurred_loss(x, y, 3.0, mask, "upstream", "after_blur"), upstream, rtol=1e-5)


def test_bad_loss_arguments_are_named():
  x = np.zeros((1, 4, 4, 1), np.float32)
  with pytest.raises(ValueError, match="kernel="):
    losses.blurred_loss(x, x, 1.0, kernel="box")
  with pytest.raises(ValueError, match="mask_mode="):
    losses.blurred_loss(x, x, 1.0, mask=x, mask_mode="before")
  with pytest.raises(ValueError, match="sigma"):
    losses.gaussian_taps(-1.0)
  with pytest.raises(ValueError, match="mask of shape"):
    losses.blurred_loss(x, x, 1.0, mask=np.ones((1, 3, 4, 1)))


# ---------------------------------------------------------------------------------------------------------------
# Transformations.


def reference_zoom(image, t, fill):
  """Upstream's zoom in numpy: TF resize_with_crop_or_pad to n = int(size/s) with `fill`, then TF2 bilinear resize
  (half-pixel centres, indices clamped to the edge), written per output pixel."""
  height, width, channels = image.shape
  scale = 1.0 + t

  def crop_or_pad(array, axis, n, size):
    if n <= size:
      start = (size - n) // 2
      return np.take(array, np.arange(start, start + n), axis=axis)
    before = (n - size) // 2
    widths = [(0, 0)] * array.ndim
    widths[axis] = (before, n - size - before)
    return np.pad(array, widths, constant_values=fill)

  n_h, n_w = int(height / scale), int(width / scale)
  small = crop_or_pad(crop_or_pad(image.astype(np.float64), 0, n_h, height), 1, n_w, width)
  ones = crop_or_pad(crop_or_pad(np.ones((height, width, 1)), 0, n_h, height), 1, n_w, width)
  ones = np.where(np.isclose(ones, 1.0), 1.0, 0.0)  # the padded border of the ones is 0, whatever the fill

  def resize(array):
    out = np.zeros((height, width, array.shape[2]))
    for i in range(height):
      y = (i + 0.5) * n_h / height - 0.5
      y0 = math.floor(y)
      for j in range(width):
        x = (j + 0.5) * n_w / width - 0.5
        x0 = math.floor(x)
        value = 0.0
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
          for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            value = value + wy * wx * array[min(max(yy, 0), n_h - 1), min(max(xx, 0), n_w - 1)]
        out[i, j] = value
    return out

  return resize(small), resize(ones), width / n_w - 1.0


@pytest.mark.parametrize("axis, name", [(2, "horizontal_position"), (1, "vertical_position")])
def test_integer_translation_is_a_roll_with_fill_and_mask(axis, name):
  rng = np.random.RandomState(0)
  images = rng.uniform(-1, 1, size=(4, 10, 12, 2)).astype(np.float32)
  size = images.shape[axis]
  shifts = np.array([3, -2, 0, 5])
  targets, masks, realized = transforms.apply(name, images, shifts / size, fill=0.25)
  for b, shift in enumerate(shifts):
    expected = np.roll(images[b], shift, axis=axis - 1)
    index = np.arange(size) - shift
    valid = (index >= 0) & (index < size)
    shape = [1, 1, 1]
    shape[axis - 1] = size
    valid = valid.reshape(shape)
    np.testing.assert_array_equal(targets[b], np.where(valid, expected, np.float32(0.25)))
    np.testing.assert_array_equal(masks[b], np.broadcast_to(valid, images.shape[1:3] + (1,)).astype(np.float32))
  np.testing.assert_allclose(realized, shifts / size)


def test_translation_truncates_toward_zero_like_upstream():
  images = np.zeros((4, 8, 10, 1), np.float32)
  _, _, realized = transforms.apply("horizontal_position", images, np.array([0.19, -0.19, 0.3, -0.05]))
  np.testing.assert_allclose(realized, np.array([1, -1, 3, 0]) / 10)  # 0.3·10 is 3 even in float32


@pytest.mark.parametrize("scale", [0.5, 0.85, 1.15, 1.5])
def test_zoom_matches_tf_crop_or_pad_and_bilinear_resize(scale):
  rng = np.random.RandomState(1)
  images = rng.uniform(-1, 1, size=(1, 16, 20, 2)).astype(np.float32)
  targets, masks, realized = transforms.apply("scale", images, np.array([scale - 1.0]), fill=0.0)
  expected, expected_mask, expected_t = reference_zoom(images[0], scale - 1.0, 0.0)
  np.testing.assert_allclose(targets[0], expected, atol=1e-5)
  np.testing.assert_allclose(masks[0], expected_mask, atol=1e-5)
  assert abs(float(realized[0]) - expected_t) < 1e-6
  assert abs(float(realized[0]) + 1 - 20 / int(20 / scale)) < 1e-6


def test_zoom_fill_shows_where_the_mask_is_not_one():
  images = np.full((1, 12, 12, 1), 0.5, np.float32)
  targets, masks, _ = transforms.apply("scale", images, np.array([-0.5]), fill=-1.0)
  # A constant image stays constant where defined; the padded border blends towards the fill with the mask.
  np.testing.assert_allclose(targets, 0.5 * masks + (-1.0) * (1 - masks), atol=1e-6)
  assert masks.min() == 0 and masks.max() == 1


def test_brightness_adds_and_clips_to_the_output_range():
  images = np.array([-0.9, 0.0, 0.95], np.float32).reshape(1, 1, 3, 1).repeat(2, axis=0)
  targets, masks, realized = transforms.apply("brightness", images, np.array([0.1, -0.2]), output_range=(-1.0, 1.0))
  np.testing.assert_allclose(targets[0, 0, :, 0], [-0.8, 0.1, 1.0], atol=1e-6)
  np.testing.assert_allclose(targets[1, 0, :, 0], [-1.0, -0.2, 0.75], atol=1e-6)
  assert np.all(np.asarray(masks) == 1)
  np.testing.assert_allclose(realized, [0.1, -0.2])


def test_rotation_by_a_quarter_turn_is_rot90_counter_clockwise_and_zero_is_the_identity():
  rng = np.random.RandomState(2)
  images = rng.uniform(size=(2, 9, 9, 1)).astype(np.float32)
  targets, masks, _ = transforms.apply("rotation", images, np.array([math.pi / 2, 0.0]))
  np.testing.assert_allclose(targets[0], np.rot90(images[0], k=1, axes=(0, 1)), atol=1e-5)
  np.testing.assert_allclose(targets[1], images[1], atol=1e-6)
  np.testing.assert_allclose(masks, 1.0, atol=1e-5)
  _, masks, _ = transforms.apply("rotation", images, np.array([math.pi / 4, -math.pi / 4]))
  assert float(masks[0, 0, 0, 0]) < 0.01 and float(masks[0, 4, 4, 0]) > 0.99  # corners leave the frame


@pytest.mark.parametrize("name", transforms.TRANSFORMS)
def test_a_batch_with_per_sample_t_equals_the_loop_over_samples(name):
  rng = np.random.RandomState(3)
  images = rng.uniform(-1, 1, size=(3, 12, 12, 3)).astype(np.float32)
  t = np.array([0.25, -0.17, 0.1], np.float32)
  batched = transforms.apply(name, images, t, fill=0.3)
  for b in range(3):
    single = transforms.apply(name, images[b:b + 1], t[b:b + 1], fill=0.3)
    for got, want in zip(batched, single):
      np.testing.assert_allclose(np.asarray(got)[b], np.asarray(want)[0], atol=1e-6)


def test_unknown_transformation_is_named():
  with pytest.raises(ValueError, match="unknown transformation 'shear'"):
    transforms.apply("shear", np.zeros((1, 4, 4, 1)), 0.1)


# ---------------------------------------------------------------------------------------------------------------
# Projection, inversion and trajectories on a tiny generator.

LATENT_DIM = 8


@pytest.fixture(scope="module")
def tiny_generator():
  """A random DCGAN (latent 8, 16×16×1, no batch norm) with weights large enough to make G(z) depend on z."""
  config = dcgan.make_config(latent_dim=LATENT_DIM, channels=[16, 8], out_channels=1, kernel_size=3,
                             batch_norm=False)
  shapes = init_from_latent(dcgan.module_from_config(config))  # abstract: no eager init to compile
  leaves, treedef = jax.tree_util.tree_flatten(shapes)
  rng = np.random.default_rng(0)
  leaves = [rng.normal(0, 0.3 if leaf.ndim > 1 else 0.1, leaf.shape).astype(np.float32) for leaf in leaves]
  return dcgan.build(config, jax.tree_util.tree_unflatten(treedef, leaves))


def test_projection_onto_the_ball():
  rng = np.random.RandomState(0)
  z = rng.normal(size=(6, 5)).astype(np.float32) * np.array([[0.1], [0.5], [1.0], [2.0], [4.0], [8.0]], np.float32)
  projected = np.asarray(optimize.project_ball(jnp.asarray(z), 2.0))
  norms = np.linalg.norm(z, axis=1)
  assert np.all(np.linalg.norm(projected, axis=1) <= 2.0 + 1e-6)
  np.testing.assert_allclose(projected[norms <= 2], z[norms <= 2], rtol=1e-6)
  np.testing.assert_allclose(projected[norms > 2], z[norms > 2] * (2 / norms[norms > 2])[:, None], rtol=1e-5)
  center = np.full(5, 3.0, np.float32)
  around = np.asarray(optimize.project_ball(jnp.asarray(z), 2.0, jnp.asarray(center)))
  assert np.all(np.linalg.norm(around - center, axis=1) <= 2.0 + 1e-5)
  np.testing.assert_array_equal(np.asarray(optimize.project_ball(jnp.asarray(z), jnp.inf)), z)


SETTINGS = inversion.InversionSettings(steps=150, learning_rate=3e-2, sigma=1.0)


def test_inversion_recovers_a_known_latent(tiny_generator):
  rng = np.random.RandomState(1)
  z_star = rng.normal(size=(8, LATENT_DIM)).astype(np.float32)
  z_star *= (0.8 * math.sqrt(LATENT_DIM) / np.linalg.norm(z_star, axis=1))[:, None]  # inside the ball
  start = z_star + 0.3 * rng.normal(size=z_star.shape).astype(np.float32)
  target = np.asarray(tiny_generator(jnp.asarray(z_star)))
  z, errors = inversion.invert(tiny_generator, target, None, start, settings=SETTINGS)
  z = np.asarray(z)
  image = np.asarray(tiny_generator(jnp.asarray(z)))
  relative = np.linalg.norm((image - target).reshape(8, -1), axis=1) / np.linalg.norm(target.reshape(8, -1), axis=1)
  assert np.all(relative < 1e-2), relative
  assert np.all(np.linalg.norm(z - z_star, axis=1) < 0.05 * np.linalg.norm(z_star, axis=1))
  assert np.all(np.linalg.norm(z, axis=1) <= math.sqrt(LATENT_DIM) + 1e-5)
  np.testing.assert_allclose(errors, losses.blurred_loss(image, target, 1.0), rtol=1e-4, atol=1e-9)


def test_a_target_outside_the_ball_is_matched_on_its_boundary(tiny_generator):
  rng = np.random.RandomState(2)
  z_star = rng.normal(size=(8, LATENT_DIM)).astype(np.float32)
  z_star *= (1.5 * math.sqrt(LATENT_DIM) / np.linalg.norm(z_star, axis=1))[:, None]
  target = np.asarray(tiny_generator(jnp.asarray(z_star)))
  z, _, curve = inversion.invert(tiny_generator, target, None, z_star, settings=SETTINGS, return_curve=True)
  norms = np.linalg.norm(np.asarray(z), axis=1)
  assert np.all(norms <= math.sqrt(LATENT_DIM) + 1e-5)
  np.testing.assert_allclose(norms, math.sqrt(LATENT_DIM), rtol=1e-3)  # the constraint is active
  assert curve.shape == (SETTINGS.steps, 8) and float(curve[0].max()) == 0.0  # z* itself is the first iterate


def test_last_step_error_is_the_loss_before_the_final_update(tiny_generator):
  rng = np.random.RandomState(3)
  target = np.asarray(tiny_generator(jnp.asarray(rng.normal(size=(8, LATENT_DIM)), jnp.float32)))
  start = rng.normal(size=(8, LATENT_DIM)).astype(np.float32)
  settings = dataclasses.replace(SETTINGS, steps=5, error_at="last_step")
  _, errors, curve = inversion.invert(tiny_generator, target, None, start, settings=settings, return_curve=True)
  np.testing.assert_array_equal(errors, curve[-1])
  z, final = inversion.invert(tiny_generator, target, None, start, settings=dataclasses.replace(settings,
                                                                                                error_at="final"))
  np.testing.assert_allclose(final, losses.blurred_loss(tiny_generator(z), target, 1.0), rtol=1e-5)


def test_inversion_sharded_over_8_devices_equals_one_device(tiny_generator):
  rng = np.random.RandomState(4)
  target = np.asarray(tiny_generator(jnp.asarray(rng.normal(size=(8, LATENT_DIM)), jnp.float32)))
  masks = translation_masks(8, 16, 16, seed=4)
  start = rng.normal(size=(8, LATENT_DIM)).astype(np.float32)
  settings = dataclasses.replace(SETTINGS, steps=20)
  one_z, one_errors = inversion.invert(tiny_generator, target, masks, start, settings=settings,
                                       mesh=parallel.make_mesh(1))
  z, errors = inversion.invert(tiny_generator, target, masks, start, settings=settings, mesh=parallel.make_mesh(8))
  assert len(z.sharding.device_set) == 8
  np.testing.assert_allclose(np.asarray(z), np.asarray(one_z), atol=1e-5)
  np.testing.assert_allclose(np.asarray(errors), np.asarray(one_errors), rtol=1e-5, atol=1e-8)
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    inversion.invert(tiny_generator, target[:6], None, start[:6], settings=settings, mesh=parallel.make_mesh(8))


TRAJECTORY_SETTINGS = inversion.InversionSettings(steps=4, learning_rate=3e-2, sigma=1.0)
MAGNITUDES = np.arange(1, 6) / 16  # 1..5 px on a 16-px image


def test_trajectories_are_recursive_and_match_a_plain_loop_of_inversions(tiny_generator):
  rng = np.random.RandomState(5)
  z0 = (1.3 * rng.normal(size=(4, LATENT_DIM))).astype(np.float32)  # some starts outside the ball
  records = inversion.trajectories(tiny_generator, z0, "horizontal_position", MAGNITUDES, TRAJECTORY_SETTINGS)
  radius = math.sqrt(LATENT_DIM)
  num_latents, num_targets = 8, len(MAGNITUDES)
  assert len(records) == num_latents * num_targets == 40
  signs = np.repeat([1.0, -1.0], 4)
  np.testing.assert_array_equal(records.sign, np.repeat(signs, num_targets))
  np.testing.assert_array_equal(records.trajectory, np.repeat(np.tile(np.arange(4), 2), num_targets))
  np.testing.assert_array_equal(records.step, np.tile(np.arange(num_targets), num_latents))
  np.testing.assert_allclose(records.t, records.sign * np.tile(MAGNITUDES, num_latents), rtol=1e-6)
  np.testing.assert_allclose(records.t_realized, records.t, atol=1e-6)  # whole pixels here
  clipped = np.asarray(optimize.project_ball(jnp.asarray(np.concatenate([z0, z0])), radius))
  np.testing.assert_allclose(records.z0, np.repeat(clipped, num_targets, axis=0), rtol=1e-6)
  assert np.all(np.linalg.norm(records.z, axis=1) <= radius + 1e-5)

  # Eq. 5: each solve starts at the previous solution (the first at the clipped z0) ...
  z_start = records.z_start.reshape(num_latents, num_targets, -1)
  z = records.z.reshape(num_latents, num_targets, -1)
  np.testing.assert_array_equal(z_start[:, 0], clipped)
  np.testing.assert_array_equal(z_start[:, 1:], z[:, :-1])
  # ... towards a transform of the ORIGINAL image, with a fresh Adam: a plain loop of `invert` calls.
  original = np.asarray(tiny_generator(jnp.asarray(clipped)))
  current = clipped
  for n, magnitude in enumerate(MAGNITUDES):
    target, mask, _ = transforms.apply("horizontal_position", original, signs * magnitude)
    current, errors = inversion.invert(tiny_generator, target, mask, current, settings=TRAJECTORY_SETTINGS)
    np.testing.assert_allclose(z[:, n], np.asarray(current), atol=1e-5)
    np.testing.assert_allclose(records.error.reshape(num_latents, num_targets)[:, n], errors, rtol=1e-4, atol=1e-9)
  # The global discard of the worst tenth keeps 90% of the 40 records, the best ones.
  assert records.kept.sum() == 36
  assert records.error[records.kept].max() < records.error[~records.kept].min()
  assert len(records.kept_records()) == 36


def test_direct_scheme_solves_every_target_from_the_clipped_start(tiny_generator):
  """Fig. 8's naive inversion: each target of the schedule from z0, the same steps per target as Eq. 5."""
  z0 = np.random.RandomState(7).normal(size=(2, LATENT_DIM)).astype(np.float32)
  records = inversion.trajectories(tiny_generator, z0, "horizontal_position", MAGNITUDES[:3], TRAJECTORY_SETTINGS,
                                   scheme="direct")
  np.testing.assert_array_equal(records.z_start, records.z0)
  original = np.asarray(tiny_generator(jnp.asarray(records.z0[::3])))
  signs = np.repeat([1.0, -1.0], 2)
  z = records.z.reshape(4, 3, -1)
  for n, magnitude in enumerate(MAGNITUDES[:3]):
    target, mask, _ = transforms.apply("horizontal_position", original, signs * magnitude)
    solved, _ = inversion.invert(tiny_generator, target, mask, records.z0[::3], settings=TRAJECTORY_SETTINGS)
    np.testing.assert_allclose(z[:, n], np.asarray(solved), atol=1e-5)
  with pytest.raises(ValueError, match="scheme='sideways'"):
    inversion.trajectories(tiny_generator, z0, "scale", MAGNITUDES[:1], TRAJECTORY_SETTINGS, scheme="sideways")


BLOB_SIZE, BLOB_DIM, BLOB_PIXELS_PER_UNIT = 32, 16, 4.0


class _Blob(flax.linen.Module):
  """A Gaussian blob (σ = 1.5 px) on black in [−1, 1]: column 15.5 + 4·z[0], row 15.5 + 4·clip(z[1], ±2)."""

  @flax.linen.compact
  def __call__(self, z):
    grid = jnp.arange(BLOB_SIZE, dtype=jnp.float32)
    column = (BLOB_SIZE - 1) / 2 + BLOB_PIXELS_PER_UNIT * z[:, 0]
    row = (BLOB_SIZE - 1) / 2 + BLOB_PIXELS_PER_UNIT * jnp.clip(z[:, 1], -2, 2)
    blob = jnp.exp(-((grid[None, None, :] - column[:, None, None]) ** 2 +
                     (grid[None, :, None] - row[:, None, None]) ** 2) / (2 * 1.5 ** 2))
    return (2 * blob - 1)[..., None]


@pytest.mark.parametrize("shift, naive_stalls", [(12, True), (6, False)])
def test_recursive_inversion_reaches_a_far_target_where_the_naive_one_stalls(shift, naive_stalls):
  """Fig. 8 / App. E with a known answer: 12 px away the target blob does not overlap the start, so Eq. 4's loss is
  flat around z0 and its naive inversion stays stuck, while Eq. 5's five 2.4 px steps each start where the previous
  one overlaps the next target. 6 px away the blobs overlap and the naive inversion converges too (the comparison is
  not rigged). Same budget: 5 × 50 vs 250 steps, lr 0.1 (the paper's App. D), blur σ = 1."""
  gen = Generator({}, _Blob(), GeneratorInfo(family="blob", latent_dim=BLOB_DIM, image_shape=(BLOB_SIZE, BLOB_SIZE, 1)))
  z0 = np.random.RandomState(0).normal(size=(8, BLOB_DIM)).astype(np.float32)
  z0[:, 0] *= 0.3                                       # the blob starts within ~1 px of the centre column
  settings = inversion.InversionSettings(steps=50, learning_rate=0.1, sigma=1.0)
  result = inversion.convergence(gen, z0, "horizontal_position", shift / BLOB_SIZE, settings, stages=5, fill=-1.0)
  assert result["recursive"].shape == result["naive"].shape == (8, 250)
  np.testing.assert_allclose(result["naive"][:, 0], result["initial"])
  initial = np.median(result["initial"])
  assert np.median(result["recursive_final"]) < 1e-2 * initial
  if naive_stalls:
    assert np.median(result["naive_final"]) > 0.3 * initial           # measured: 0.51 of the initial loss
  else:
    assert np.median(result["naive_final"]) < 1e-3 * initial


def test_convergence_arguments_are_checked(tiny_generator):
  z0 = np.zeros((2, LATENT_DIM), np.float32)
  with pytest.raises(ValueError, match="stages >= 1"):
    inversion.convergence(tiny_generator, z0, "horizontal_position", 0.0)
  with pytest.raises(ValueError, match="error_at"):
    inversion.convergence(tiny_generator, z0, "horizontal_position", 0.25,
                          inversion.InversionSettings(error_at="last_step"))


def test_trajectories_without_steps_stay_at_the_clipped_start_and_compile_once(tiny_generator):
  settings = dataclasses.replace(TRAJECTORY_SETTINGS, steps=0)
  rng = np.random.RandomState(6)
  first = inversion.trajectories(tiny_generator, rng.normal(size=(4, LATENT_DIM)) * 2, "vertical_position",
                                 MAGNITUDES[:2], settings)
  compiled = optimize._trajectory_chunk._cache_size()
  z0 = rng.normal(size=(4, LATENT_DIM)) * 2
  second = inversion.trajectories(tiny_generator, z0, "vertical_position", MAGNITUDES[2:4], settings)
  assert optimize._trajectory_chunk._cache_size() == compiled  # new latents and magnitudes: no new compilation
  np.testing.assert_allclose(second.z, second.z0, rtol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(first.z, axis=1), math.sqrt(LATENT_DIM), rtol=1e-5)
  np.testing.assert_allclose(second.t, second.sign * np.tile(MAGNITUDES[2:4], 8), rtol=1e-6)


def test_trajectory_arguments_are_checked(tiny_generator):
  z0 = np.zeros((2, LATENT_DIM), np.float32)
  with pytest.raises(ValueError, match="magnitudes and must be > 0"):
    inversion.trajectories(tiny_generator, z0, "scale", [-0.1, 0.1], TRAJECTORY_SETTINGS)
  with pytest.raises(ValueError, match="unknown transformation"):
    inversion.trajectories(tiny_generator, z0, "shear", [0.1], TRAJECTORY_SETTINGS)
  with pytest.raises(ValueError, match=r"takes \(B, 8\)"):
    inversion.trajectories(tiny_generator, np.zeros((2, 5)), "scale", [0.1], TRAJECTORY_SETTINGS)
  with pytest.raises(ValueError, match="needs center="):
    inversion.invert(tiny_generator, np.zeros((2, 16, 16, 1)), None, z0,
                     settings=dataclasses.replace(TRAJECTORY_SETTINGS, space="w"))
  with pytest.raises(ValueError, match="error_at"):
    inversion.InversionSettings(error_at="first")


# ---------------------------------------------------------------------------------------------------------------
# The discard rule.


@pytest.mark.parametrize("count", [10, 11, 101])
def test_discard_keeps_the_errors_below_the_upstream_decile(count):
  errors = np.random.RandomState(count).permutation(count).astype(float)
  keep = inversion.discard_worst(errors)
  assert keep.sum() == (9 * count) // 10
  np.testing.assert_array_equal(keep, errors < np.sort(errors)[(9 * count) // 10])


def test_discard_drops_ties_at_the_threshold_and_non_finite_errors():
  errors = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, np.nan], float)  # 11 finite: θ = e_(9) = 9
  keep = inversion.discard_worst(errors)
  np.testing.assert_array_equal(keep, errors < 9)
  assert keep.sum() == 8
  np.testing.assert_array_equal(inversion.discard_worst(errors, 0.0), np.isfinite(errors))
  assert inversion.discard_worst(np.arange(30.0), 0.1).sum() == 27  # 0.1·30 must not round up to 4 discards
