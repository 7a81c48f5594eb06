"""TPL model selection (metrics/tpl.py): the per-dimension TPL on an analytic toy generator with the pixel distance,
Eq. 10's rotated-axis length, and `select_by_tpl` on synthetic TPL values."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax.generators.base import Generator, GeneratorInfo
from ganlatent_jax.metrics import tpl


class LinearToy(nn.Module):
  """image = Σ_i z_i · pattern_i (4×4 grey), patterns fixed by the test."""
  patterns: tuple

  def __call__(self, z):
    p = jnp.asarray(np.array(self.patterns, np.float32))         # (d, 16)
    return (z @ p).reshape(z.shape[0], 4, 4, 1)


def toy_generator(patterns):
  patterns = np.asarray(patterns, np.float32)
  info = GeneratorInfo(family="toy", latent_dim=patterns.shape[0], image_shape=(4, 4, 1), output_range=(-1.0, 1.0))
  return Generator(variables={}, module=LinearToy(tuple(map(tuple, patterns))), info=info)


def test_tpl_per_dimension_with_the_pixel_distance_is_analytic():
  patterns = np.zeros((3, 16), np.float32)
  patterns[0] = 0.05        # strong
  patterns[1, :4] = 0.01    # weak
  gen = toy_generator(patterns)     # dimension 2 does nothing
  key, result = tpl.tpl_per_dimension(gen, jax.random.key(0), num_traversals=3, points_per_dim=9,
                                      active_threshold=1e-4, batch_size=27)
  assert key == "tpl_pixel" and result["distance"] == "pixel_mse"
  step = 8.0 / 8
  expected = [8 * step ** 2 * np.mean(p ** 2) for p in patterns]   # 8 segments of mean((step · pattern)²)
  np.testing.assert_allclose(result["per_dim"], expected, rtol=1e-5, atol=1e-12)
  assert result["active_dims"] == [0, 1] and result["num_active"] == 2
  assert result["tpl"] == pytest.approx(sum(expected[:2]), rel=1e-5)
  assert float(tpl.pixel_distance(jnp.ones((2, 3, 3, 1)), jnp.zeros((2, 3, 3, 1)))[0]) == 1.0


def test_rotated_axis_length_has_minima_on_the_axes_for_a_disentangled_pair():
  # Two codes painting disjoint halves, an L1 distance: dis_cum(α) ∝ |cos α| + |sin α|, minimal at multiples of 90°.
  patterns = np.zeros((3, 16), np.float32)
  patterns[0, :8] = 0.1
  patterns[1, 8:] = 0.1
  patterns[2] = 0.3
  gen = toy_generator(patterns)
  l1 = lambda x, y: jnp.mean(jnp.abs(x - y), axis=(1, 2, 3))
  angles = np.arange(-90, 181, 15)
  values = tpl.rotated_axis_length(gen, np.array([0.0, 0.0, 0.7]), (0, 1), angles, grid_points=6, distance_fn=l1)
  rad = np.deg2rad(angles)
  shape = np.abs(np.cos(rad)) + np.abs(np.sin(rad))
  np.testing.assert_allclose(values / values[angles == 0], shape, rtol=1e-4)
  assert set(angles[values <= values.min() * (1 + 1e-5)]) == {-90, 0, 90, 180}


def test_select_by_tpl_ranks_models_with_enough_active_dims():
  results = {
      "seed0": {"tpl": 3.0, "num_active": 6},
      "seed1": {"tpl": 1.0, "num_active": 3},     # cheats: encodes too few factors
      "seed2": {"tpl": 2.0, "num_active": 7},
      "seed3": {"tpl": 2.0, "num_active": 6},     # tie with seed2: by name
      "seed4": {"tpl": float("nan"), "num_active": 8},
      "seed5": {"tpl": 5.0, "num_active": 9},
  }
  chosen = tpl.select_by_tpl(results, min_active=6, top_k=2)
  assert chosen["selected"] == ["seed2", "seed3"]
  assert [row["name"] for row in chosen["ranked"]] == ["seed2", "seed3", "seed0", "seed5"]
  assert set(chosen["excluded"]) == {"seed1", "seed4"} and "3 active dims" in chosen["excluded"]["seed1"]
  assert tpl.select_by_tpl(results, min_active=0)["selected"][0] == "seed1"
  pixel = {name: {"tpl_pixel": r["tpl"], "num_active": r["num_active"]} for name, r in results.items()}
  assert tpl.select_by_tpl(pixel, 6, key="tpl_pixel", top_k=1)["selected"] == ["seed2"]
  with pytest.raises(ValueError, match="'seed0' has no 'tpl'"):
    tpl.select_by_tpl(pixel, 6)
