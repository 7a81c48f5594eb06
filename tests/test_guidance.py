"""UD-GAN-G's guidance functions (nets/guidance.py): exact values on lit pixels and blocks, rendered dSprites with
known position and size, finite-difference gradients, crops/edges/colour properties, the paper's Table 7."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax.data import dsprites_procedural as dsp
from ganlatent_jax.nets import guidance

W = 64
MASS_EPS = guidance.MASS_EPS_PER_PIXEL * W * W

moments = jax.jit(lambda images: (guidance.center_of_mass(images), guidance.size_estimate(images)))


def lit(pixels, size=W):
  image = -np.ones((1, size, size, 1), np.float32)
  for r, c in pixels:
    image[0, r, c] = 1.0
  return jnp.asarray(image)


def np_moments(images):
  """Eq. 8 in float64 with our intensity, coordinates and eps."""
  weights = (np.asarray(images, np.float64).mean(axis=-1) + 1) / 2
  h, w = weights.shape[1:]
  v, u = ((2 * np.arange(h) + 1) / h - 1)[:, None], ((2 * np.arange(w) + 1) / w - 1)[None, :]
  z = weights.sum(axis=(1, 2)) + guidance.MASS_EPS_PER_PIXEL * h * w
  mx, my = (weights * u).sum(axis=(1, 2)) / z, (weights * v).sum(axis=(1, 2)) / z
  size = (weights * ((u - mx[:, None, None]) ** 2 + (v - my[:, None, None]) ** 2)).sum(axis=(1, 2)) / z
  return np.stack([mx, my], axis=1), size


@pytest.mark.parametrize("r,c", [(0, 0), (10, 40), (63, 5)])
def test_single_lit_pixel(r, c):
  com, size = moments(lit([(r, c)]))
  shrink = 1.0 / (1.0 + MASS_EPS)   # Z = Σ I + eps
  u, v = (2 * c + 1) / W - 1, (2 * r + 1) / W - 1
  np.testing.assert_allclose(com[0], [u * shrink, v * shrink], rtol=1e-5)
  # Ŝ = 0 up to the eps bias: ((u − M̂_x)² + (v − M̂_y)²)/Z with M̂ = u/Z, Z = 1 + eps.
  expected = ((u - u * shrink) ** 2 + (v - v * shrink) ** 2) * shrink
  assert float(size[0]) == pytest.approx(expected, rel=1e-3, abs=1e-9) and expected < 5e-5


@pytest.mark.parametrize("k", [2, 3, 6])
def test_lit_block_size_and_translation(k):
  block = [(10 + i, 20 + j) for i in range(k) for j in range(k)]
  com, size = moments(lit(block))
  mass = k * k
  expected = 2 * (k * k - 1) / 12 * (2 / W) ** 2
  assert float(size[0]) == pytest.approx(expected, rel=3e-3)       # exact without the eps in Z
  np.testing.assert_allclose(size, np_moments(lit(block))[1], rtol=1e-5)
  moved_com, moved_size = moments(lit([(r + 7, c - 3) for r, c in block]))
  shift = mass / (mass + MASS_EPS)
  np.testing.assert_allclose(moved_com[0] - com[0], [-3 * 2 / W * shift, 7 * 2 / W * shift], rtol=1e-4)
  assert float(moved_size[0]) == pytest.approx(float(size[0]), rel=2e-3)   # exact up to the eps bias


def test_rendered_sprites_with_known_position_and_size():
  # Squares at orientation 0 of every scale, at three positions: the centre of mass is the sprite centre, the size
  # is that of a uniform square of side s: 2 · s²/12 (pixel quantisation: ±1 pixel on the side).
  factors = np.array([[0, scale, 0, px, py] for scale in range(6) for px, py in ((0, 0), (15, 20), (31, 31))])
  images = dsp.render_dsprites(factors) * 2.0 - 1.0
  com, size = (np.asarray(a, np.float64) for a in moments(jnp.asarray(images)))
  span = 1 - 2 * dsp._POSITION_MARGIN
  centre_x = (dsp._POSITION_MARGIN + span * dsp.POSITION_VALUES[factors[:, 3]]) * 2 - 1
  centre_y = (dsp._POSITION_MARGIN + span * dsp.POSITION_VALUES[factors[:, 4]]) * 2 - 1
  np.testing.assert_allclose(com[:, 0], centre_x, atol=1.0 / W)   # half a pixel (pixel = 2/W)
  np.testing.assert_allclose(com[:, 1], centre_y, atol=1.0 / W)
  side = dsp._SPRITE_SIZE * dsp.SCALE_VALUES[factors[:, 1]] * 2      # in [−1, 1] units
  pixel = 2.0 / W
  assert np.all(size >= 2 * (side - pixel) ** 2 / 12) and np.all(size <= 2 * (side + pixel) ** 2 / 12)
  assert np.all(np.diff(size.reshape(6, 3), axis=0) > 0)            # grows with the scale factor


@pytest.mark.parametrize("name", ["com_x", "com_y", "size", "mean_colour", "edges", "band1"])
def test_gradients_match_finite_differences(name):
  fn = guidance.get(name).fn
  rs = np.random.RandomState(0)
  with jax.enable_x64(True):
    image = jnp.asarray(np.tanh(rs.normal(size=(1, 16, 16, 1)) * 2), jnp.float64)
    weights = jnp.asarray(rs.normal(size=np.shape(fn(image))), jnp.float64)
    objective = jax.jit(lambda x: jnp.sum(fn(x) * weights))
    grad = np.asarray(jax.grad(objective)(image))
    for r, c in [(0, 0), (3, 11), (8, 8), (15, 2), (6, 5)]:
      step = np.zeros(image.shape)
      step[0, r, c, 0] = 1e-5
      fd = (float(objective(image + step)) - float(objective(image - step))) / 2e-5
      assert grad[0, r, c, 0] == pytest.approx(fd, rel=1e-4, abs=1e-8), (r, c)


def test_empty_frame_and_intensity_scaling():
  empty = -jnp.ones((2, W, W, 1))
  com, size = moments(empty)
  assert np.all(np.isfinite(com)) and np.all(np.isfinite(size))
  grad = jax.jit(jax.grad(lambda x: jnp.sum(guidance.center_of_mass(x)) + jnp.sum(guidance.size_estimate(x))))(empty)
  assert np.all(np.isfinite(grad))
  sprite = jnp.asarray(dsp.render_dsprites(np.array([[2, 3, 7, 10, 20]])) * 2.0 - 1.0)
  dim = (sprite + 1.0) * 0.25 - 1.0       # half the intensity
  (a, s), (b, t) = moments(sprite), moments(dim)
  np.testing.assert_allclose(a, b, rtol=1e-3)
  np.testing.assert_allclose(s, t, rtol=1e-3)


band_grad = jax.jit(jax.grad(lambda x, index: jnp.sum(jnp.sin(guidance.band(x, index)))), static_argnums=1)


def test_bands_edges_and_colours():
  rs = np.random.RandomState(1)
  images = jnp.asarray(rs.uniform(-1, 1, size=(2, 16, 12, 3)), jnp.float32)
  for index in range(4):
    crop = guidance.band(images, index)
    np.testing.assert_array_equal(crop, images[:, 4 * index:4 * index + 4])
    grad = np.asarray(band_grad(images, index))
    outside = np.ones(16, bool)
    outside[4 * index:4 * index + 4] = False
    assert np.all(grad[:, outside] == 0) and np.all(grad[:, ~outside] != 0)
  assert guidance.get("bottom_half").fn(images).shape == (2, 8, 12, 3)
  with pytest.raises(ValueError, match="divisible"):
    guidance.band(images[:, :15], 0)
  constant = jnp.full((1, 8, 8, 3), 0.3)
  np.testing.assert_allclose(guidance.sobel_magnitude(constant), 1e-4, rtol=1e-3)
  edges = guidance.sobel_magnitude(images)
  assert edges.shape == (2, 16, 12, 1)
  np.testing.assert_allclose(guidance.sobel_magnitude(images + 0.4), edges, rtol=1e-4, atol=1e-5)
  perm = rs.permutation(16 * 12)
  shuffled = images.reshape(2, -1, 3)[:, perm].reshape(images.shape)
  np.testing.assert_allclose(guidance.mean_colour(shuffled), guidance.mean_colour(images), rtol=1e-5)
  np.testing.assert_allclose(guidance.random_pixel_mean(images, jax.random.key(0), 16 * 12),
                             guidance.mean_colour(images), rtol=1e-5)
  assert guidance.random_pixel_mean(images, jax.random.key(0), 5).shape == (2, 3)
  with pytest.raises(ValueError, match="unknown guidance 'nope'"):
    guidance.get("nope")


def test_table7_correlations_and_standardisation_on_procedural_dsprites():
  data = dsp.DSprites()
  factors, images01 = data.sample(3000, np.random.RandomState(0))
  images = images01 * 2.0 - 1.0
  proxies = jax.jit(lambda x: jnp.concatenate([guidance.com_x(x), guidance.com_y(x), guidance.size(x)], axis=1))
  values = np.concatenate([np.asarray(proxies(jnp.asarray(images[i:i + 1000]))) for i in range(0, 3000, 1000)])
  corr = np.corrcoef(np.concatenate([values, factors.astype(np.float64)], axis=1).T)[:3, 3:]  # proxy × factor
  assert corr[0, 3] >= 0.99 and corr[1, 4] >= 0.99 and corr[2, 1] >= 0.85, corr
  assert -0.5 <= corr[2, 0] <= -0.25, corr
  off = np.ones_like(corr, bool)
  off[0, 3] = off[1, 4] = off[2, 1] = off[2, 0] = False
  off[:2, 2] = False
  assert np.all(np.abs(corr[off]) <= 0.06), corr
  # The heart's centroid is off its box centre and turns with it: a small orientation term (paper: 0.027).
  assert np.all(np.abs(corr[:2, 2]) <= 0.15), corr
  mean, std = guidance.fit_standardization(proxies, images, batch_size=1000)
  scaled = np.asarray(jax.jit(guidance.standardized(proxies, mean, std))(jnp.asarray(images[:1000])))
  np.testing.assert_allclose(scaled.mean(axis=0), ((values[:1000] - mean) / std).mean(axis=0), rtol=1e-4, atol=1e-5)
  full = (values - mean) / std
  np.testing.assert_allclose(full.mean(axis=0), 0.0, atol=1e-4)
  np.testing.assert_allclose(full.std(axis=0), 1.0, atol=1e-3)
