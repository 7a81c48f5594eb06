"""TPL (PS-SC), PPL (StyleGAN) and the Fréchet distance, on toy generators whose answers are known."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_path
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators.base import Generator, GeneratorInfo
from ganlatent_jax.metrics import generator_metrics as gm
from ganlatent_jax.port.lpips import lpips_from_vgg_state_dict
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file

SIZE = 16


class LinearToy(nn.Module):
  """images = (latent @ A).reshape(H, W, C): z dims with a zero row of A change nothing. mapping(z) = z @ M."""
  channels: int = 3
  nonlinear: bool = False  # tanh(latent @ A): where a traversal runs matters, not only its span

  def setup(self):
    self.basis = self.variable("params", "basis", jnp.zeros, (1, 1))        # (D, H·W·C), given by `make_toy`
    self.mapping_matrix = self.variable("params", "mapping", jnp.zeros, (1, 1))

  def mapping(self, z):
    return z @ self.mapping_matrix.value

  def synthesis(self, w):
    if w.ndim == 3:
      w = w[:, 0]
    flat = w @ self.basis.value
    return (jnp.tanh(10 * flat) if self.nonlinear else flat).reshape(w.shape[0], SIZE, SIZE, self.channels)

  def __call__(self, z):
    return self.synthesis(z)


def make_toy(active=(0, 2), latent_dim=4, channels=3, output_range=(-1.0, 1.0), seed=0, nonlinear=False):
  rng = np.random.RandomState(seed)
  basis = np.zeros((latent_dim, SIZE * SIZE * channels), np.float32)
  for k in active:
    basis[k] = rng.standard_normal(SIZE * SIZE * channels) * 0.1 * (k + 1)
  mapping = rng.standard_normal((latent_dim, latent_dim)).astype(np.float32)
  info = GeneratorInfo(family="toy", latent_dim=latent_dim, image_shape=(SIZE, SIZE, channels),
                       latent_spaces=("z", "w", "w+"), num_ws=2, w_dim=latent_dim, output_range=output_range)
  variables = {"params": {"basis": jnp.asarray(basis), "mapping": jnp.asarray(mapping)}}
  return Generator(variables=variables, module=LinearToy(channels=channels, nonlinear=nonlinear), info=info), basis


def mse(x, y):
  return jnp.mean(jnp.square(x - y), axis=(1, 2, 3))


@pytest.fixture(scope="module")
def tiny_lpips():
  state = flatten_state_dict(load_torch_file(fixture_path("torchvision/tv_vgg16_tiny.pth")))
  return lpips_from_vgg_state_dict(state, "tiny-vgg", heads=None)


# ---------------------------------------------------------------------------------------------------- Fréchet


FRECHET_METHODS = pytest.mark.parametrize("method", ["sqrtm", "eigh"])


@FRECHET_METHODS
def test_frechet_distance_of_identical_statistics_is_zero(method):
  features = np.random.RandomState(0).standard_normal((200, 6))
  mu, sigma = gm.feature_statistics(features)
  assert abs(gm.frechet_distance(mu, sigma, mu, sigma, method=method)) < 1e-10
  assert abs(gm.frechet_distance_from_features(features, features, method=method)) < 1e-10


@FRECHET_METHODS
def test_frechet_distance_of_shifted_means_is_squared_shift(method):
  features = np.random.RandomState(1).standard_normal((300, 5))
  shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
  np.testing.assert_allclose(gm.frechet_distance_from_features(features, features + shift, method=method),
                             shift @ shift, rtol=1e-9)


@FRECHET_METHODS
def test_frechet_distance_of_gaussians_by_hand(method):
  # Diagonal covariances: Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) = Σ_i (σ1_i − σ2_i)².
  s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
  mu1, mu2 = np.zeros(3), np.array([0.0, 1.0, 1.0])
  expected = 2.0 + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  np.testing.assert_allclose(gm.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method=method), expected,
                             rtol=1e-10)


def test_frechet_distance_methods_agree_on_correlated_features():
  rng = np.random.RandomState(3)
  a = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
  b = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8)) + 0.3
  np.testing.assert_allclose(gm.frechet_distance_from_features(a, b, method="eigh"),
                             gm.frechet_distance_from_features(a, b), rtol=1e-8)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
@FRECHET_METHODS
def test_frechet_distance_handles_singular_covariances(method):
  # Rank-deficient (fewer samples than dims; sqrtm: the ε-regularised / real-part path): ≈ 0 for identical sets.
  features = np.random.RandomState(2).standard_normal((4, 10))
  mu, sigma = gm.feature_statistics(features)
  value = gm.frechet_distance(mu, sigma, mu, sigma, method=method)
  assert np.isfinite(value) and abs(value) < 1e-4


def test_frechet_distance_names_bad_shapes():
  with pytest.raises(ValueError, match="different lengths"):
    gm.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
  with pytest.raises(ValueError, match=r"\(N ≥ 2, D\)"):
    gm.feature_statistics(np.zeros((1, 3)))
  with pytest.raises(ValueError, match="'sqrtm' or 'eigh'"):
    gm.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="svd")


# -------------------------------------------------------------------------------------------------------- TPL


@pytest.mark.parametrize("points,bound", [(5, 4.0), (9, 2.0)])
def test_tpl_matches_hand_computation_and_finds_active_dims(points, bound):
  gen, basis = make_toy(active=(0, 2))
  out = gm.traversal_perceptual_length(gen, jax.random.key(0), num_traversals=3, points_per_dim=points,
                                       bound=bound, distance_fn=mse, active_threshold=1e-3, batch_size=2 * points)
  # Linear generator: each of the P−1 steps moves the image by step·A_k, MSE = step²·mean(A_k²).
  step = 2 * bound / (points - 1)
  expected = (points - 1) * step ** 2 * np.mean(basis.astype(np.float64) ** 2, axis=1)
  np.testing.assert_allclose(out["per_dim"], expected, rtol=1e-4, atol=1e-9)
  np.testing.assert_allclose(out["per_dim_std"], 0.0, atol=1e-6)
  assert out["active_dims"] == [0, 2] and out["num_active"] == 2
  np.testing.assert_allclose(out["tpl"], expected[0] + expected[2], rtol=1e-4)
  np.testing.assert_allclose(out["mean_distance"], out["tpl"] / 4, rtol=1e-12)


def test_tpl_absolute_and_relative_traversals_and_directions():
  gen, basis = make_toy(active=(1,))
  # A rotated basis: direction 0 mixes dims 0 and 1 (active through dim 1), direction 1 is dim 3 (inactive).
  directions = Directions(np.array([[0.6, 0.0], [0.8, 0.0], [0.0, 0.0], [0.0, 1.0]], np.float32), "z")
  kwargs = dict(num_traversals=2, points_per_dim=5, distance_fn=mse, active_threshold=1e-3, directions=directions)
  absolute = gm.traversal_perceptual_length(gen, jax.random.key(1), **kwargs)
  relative = gm.traversal_perceptual_length(gen, jax.random.key(1), relative=True, **kwargs)
  expected = 4 * 2.0 ** 2 * np.mean((0.8 * basis[1].astype(np.float64)) ** 2)  # 4 steps of 2 over [−4, 4]
  # For a linear generator only the span matters, not where it is centred; relative defaults to ±2 (upstream).
  assert (absolute["bound"], relative["bound"]) == (4.0, 2.0)
  for out, scale in ((absolute, 1.0), (relative, 0.25)):
    np.testing.assert_allclose(out["per_dim"], [expected * scale, 0.0], rtol=1e-4, atol=1e-9)
    assert out["active_dims"] == [0]


def test_tpl_absolute_traversal_sets_the_coordinate():
  # Only dim 1 matters and the generator is nonlinear: an absolute traversal renders the same frames whatever the
  # sample (std 0); a relative one starts from the sample's own coordinate (std > 0).
  gen, _ = make_toy(active=(1,), nonlinear=True)
  kwargs = dict(num_traversals=4, points_per_dim=5, distance_fn=mse, bound=1.0)
  absolute = gm.traversal_perceptual_length(gen, jax.random.key(4), **kwargs)
  relative = gm.traversal_perceptual_length(gen, jax.random.key(4), relative=True, **kwargs)
  assert absolute["per_dim_std"][1] < 1e-6 * absolute["per_dim"][1]
  assert relative["per_dim_std"][1] > 1e-3 * relative["per_dim"][1]


def test_tpl_in_w_plus_and_summary():
  gen, _ = make_toy(active=(0, 1, 2, 3))
  directions = Directions(np.eye(4, dtype=np.float32)[:, :2], "w+", layers=(0, 1))
  out = gm.traversal_perceptual_length(gen, jax.random.key(2), num_traversals=2, points_per_dim=3,
                                       distance_fn=mse, directions=directions, active_threshold=0.0)
  assert out["space"] == "w+" and len(out["per_dim"]) == 2 and out["num_active"] == 2
  summary = gm.tpl_summary(np.array([[1.0, 0.05, 3.0], [3.0, 0.05, 1.0]]), active_threshold=0.1)
  assert summary["active_dims"] == [0, 2] and summary["tpl"] == 4.0
  np.testing.assert_allclose(summary["mean_std"], 2.0 / 3)
  np.testing.assert_allclose(summary["norm_dist_std"], np.hypot(4.0 / 3, 2.0 / 3))


def test_tpl_with_lpips_structure_sees_inactive_dims(tiny_lpips):
  gen, _ = make_toy(active=(1,), latent_dim=3, output_range=(-3.0, 3.0))
  out = gm.traversal_perceptual_length(gen, jax.random.key(3), num_traversals=2, points_per_dim=4,
                                       distance_fn=tiny_lpips, active_threshold=1e-6)
  assert out["active_dims"] == [1]
  assert out["per_dim"][1] > 0.1 and out["per_dim"][0] < 1e-10 and out["per_dim"][2] < 1e-10


def test_tpl_rejects_bad_settings():
  gen, _ = make_toy()
  with pytest.raises(ValueError, match="points_per_dim"):
    gm.traversal_perceptual_length(gen, jax.random.key(0), points_per_dim=1, distance_fn=mse)
  with pytest.raises(ValueError, match=r"directions \[1\] are zero"):
    gm.traversal_perceptual_length(gen, jax.random.key(0), distance_fn=mse,
                                   directions=Directions(np.eye(4, 2, dtype=np.float32) * [1, 0], "z"))


# -------------------------------------------------------------------------------------------------------- PPL


def test_slerp_is_a_unit_great_circle():
  rng = np.random.RandomState(0)
  a, b = jnp.asarray(rng.standard_normal((5, 8))), jnp.asarray(rng.standard_normal((5, 8)))
  np.testing.assert_allclose(gm.slerp(a, b, jnp.zeros(5)), gm.normalize(a), atol=1e-6)
  np.testing.assert_allclose(gm.slerp(a, b, jnp.ones(5)), gm.normalize(b), atol=1e-5)
  half = gm.slerp(a, b, jnp.full(5, 0.5))
  np.testing.assert_allclose(jnp.linalg.norm(half, axis=-1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(half, gm.normalize(gm.normalize(a) + gm.normalize(b)), atol=1e-5)


@pytest.mark.parametrize("space", ["z", "w"])
def test_ppl_is_deterministic_and_scales_with_the_distance(space):
  gen, _ = make_toy(active=(0, 1, 2, 3))
  kwargs = dict(space=space, num_samples=12, batch_size=4, sampling="full", distance_fn=mse)
  first = gm.perceptual_path_length(gen, jax.random.key(5), **kwargs)
  again = gm.perceptual_path_length(gen, jax.random.key(5), **kwargs)
  other = gm.perceptual_path_length(gen, jax.random.key(6), **kwargs)
  assert first["distances"] == again["distances"] and first["ppl"] == again["ppl"]
  assert first["distances"] != other["distances"]
  assert len(first["distances"]) == 12 and first["num_kept"] == 12  # 1/99 'lower'/'higher' keep all of 12
  scaled = gm.perceptual_path_length(gen, jax.random.key(5), **{**kwargs, "distance_fn": lambda x, y: 3 * mse(x, y)})
  np.testing.assert_allclose(scaled["ppl"], 3 * first["ppl"], rtol=1e-5)


def test_ppl_in_w_of_a_linear_synthesis_is_the_squared_endpoint_gap():
  # lerp in W: image difference = ε·(w1 − w0)·A, so distance/ε² = mean(((w1 − w0)A)²) for every t and every ε.
  gen, _ = make_toy(active=(0, 1, 2, 3))
  outs = [gm.perceptual_path_length(gen, jax.random.key(7), space="w", num_samples=8, batch_size=8, epsilon=eps,
                                    sampling=sampling, distance_fn=mse)
          for eps, sampling in [(1e-2, "end"), (1e-1, "end"), (1e-2, "full")]]
  np.testing.assert_allclose(outs[0]["distances"], outs[1]["distances"], rtol=1e-3)
  np.testing.assert_allclose(outs[0]["distances"], outs[2]["distances"], rtol=1e-3)


def test_ppl_summary_drops_outside_percentiles():
  # 201 values: the 1st percentile ('lower') is the 3rd smallest, the 99th ('higher') the 3rd largest.
  distances = np.concatenate([np.ones(197), [1000.0, -5.0, 999.0, -4.0]])
  out = gm.ppl_summary(distances)
  assert out["num_kept"] == 197 and out["ppl"] == 1.0
  assert out["ppl_unfiltered"] == pytest.approx(np.mean(distances))


def test_ppl_rejects_bad_settings():
  gen, _ = make_toy()
  with pytest.raises(ValueError, match="'z' or 'w'"):
    gm.perceptual_path_length(gen, jax.random.key(0), space="w+", distance_fn=mse)
  with pytest.raises(ValueError, match="'full' or 'end'"):
    gm.perceptual_path_length(gen, jax.random.key(0), sampling="middle", distance_fn=mse)
  z_only = gen.replace(info=GeneratorInfo(family="toy", latent_dim=4, image_shape=(SIZE, SIZE, 3)))
  with pytest.raises(ValueError, match="needs a generator with a mapping"):
    gm.perceptual_path_length(z_only, jax.random.key(0), space="w", distance_fn=mse)


def test_prepare_images_maps_range_gray_crop_and_downsample():
  gray = jnp.full((1, 8, 8, 1), 0.5)
  np.testing.assert_allclose(gm.prepare_images(gray, (0.0, 1.0)), jnp.zeros((1, 8, 8, 3)), atol=1e-7)
  cropped = gm.prepare_images(jnp.zeros((2, 16, 16, 3)), crop=True)
  assert cropped.shape == (2, 8, 8, 3)
  big = jnp.asarray(np.random.RandomState(0).uniform(-1, 1, (1, 512, 512, 3)).astype(np.float32))
  small = gm.prepare_images(big)
  assert small.shape == (1, 256, 256, 3)
  np.testing.assert_allclose(small[0, 0, 0], big[0, :2, :2].mean(axis=(0, 1)), rtol=1e-5)
