"""UD-GAN's quadruplets and adaptive-margin contrastive loss (losses/udgan.py) against numpy references, the
energy-distance identity (Eq. 6) and bound (Eq. 7), and a toy siamese network that learns to recover a knob."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from ganlatent_jax.losses import udgan


def np_reference(emb, q1, q2):
  """Eq. 2 literally, one quadruplet at a time (emb (B, 4, E): x_11, x_12, x_21, x_22), and its gradient."""
  losses, grads = [], np.zeros_like(emb)
  for b in range(len(emb)):
    x = {(1, 1): emb[b, 0], (1, 2): emb[b, 1], (2, 1): emb[b, 2], (2, 2): emb[b, 3]}
    index = {(1, 1): 0, (1, 2): 1, (2, 1): 2, (2, 2): 3}
    gamma = abs(q1[b] - q2[b])
    loss = 0.0
    for n in (1, 2):   # similar pairs (x_n1, x_n2)
      d = x[n, 1] - x[n, 2]
      loss += 0.5 * d @ d
      grads[b, index[n, 1]] += d
      grads[b, index[n, 2]] -= d
    for n in (1, 2):   # dissimilar pairs (x_1n, x_2m)
      for m in (1, 2):
        d = x[1, n] - x[2, m]
        rho = np.linalg.norm(d)
        hinge = max(0.0, gamma - rho)
        loss += 0.25 * hinge ** 2
        if hinge > 0 and rho > 0:
          g = -0.5 * hinge * d / rho
          grads[b, index[1, n]] += g
          grads[b, index[2, m]] -= g
    losses.append(loss)
  return np.mean(losses), grads / len(emb)


def _draw(seed, batch=6, dim=3, scale=0.5):
  rs = np.random.RandomState(seed)
  return rs.normal(size=(batch, 4, dim)) * scale, rs.uniform(-1, 1, batch), rs.uniform(-1, 1, batch)


_value_and_grad = jax.jit(jax.value_and_grad(udgan.contrastive_loss))


def _ours(emb, q1, q2):
  with jax.enable_x64(True):
    value, grad = _value_and_grad(jnp.asarray(emb), jnp.asarray(q1), jnp.asarray(q2))
    return float(value), np.asarray(grad)


@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_contrastive_loss_and_gradient_match_the_numpy_reference(dim, seed):
  emb, q1, q2 = _draw(seed, dim=dim)
  value, grad = _ours(emb, q1, q2)
  ref_value, ref_grad = np_reference(emb, q1, q2)
  assert value == pytest.approx(ref_value, rel=1e-6)
  np.testing.assert_allclose(grad, ref_grad, rtol=1e-6, atol=1e-12)
  # float32 (what training uses) agrees too.
  f32 = udgan.contrastive_loss(*(jnp.asarray(a, jnp.float32) for a in (emb, q1, q2)))
  assert float(f32) == pytest.approx(ref_value, rel=1e-5)


def test_edge_cases():
  emb, q1, q2 = _draw(2, batch=1)
  same = np.repeat(emb[:, :1], 4, axis=1)                      # every ρ = 0: the hinge is γ² on 4 pairs
  value, grad = _ours(same, q1, q2)
  assert value == pytest.approx((q1[0] - q2[0]) ** 2, rel=1e-9) and np.all(np.isfinite(grad))
  value, _ = _ours(emb, q1, q1)                                 # γ = 0: the similar term only
  assert value == pytest.approx(0.5 * (np.sum((emb[0, 0] - emb[0, 1]) ** 2) + np.sum((emb[0, 2] - emb[0, 3]) ** 2)))
  far = emb.copy()
  far[:, 2:] += 10.0                                            # every dissimilar ρ > γ: hinge inactive
  value, _ = _ours(far, q1, q2)
  assert value == pytest.approx(np_reference(far, q1, q1)[0], rel=1e-9)
  with pytest.raises(ValueError, match=r"\(B, 4, E\)"):
    udgan.contrastive_loss(jnp.zeros((2, 3, 1)), jnp.zeros(2), jnp.zeros(2))


def test_energy_distance_identity_and_bound():
  rs = np.random.RandomState(3)
  emb = rs.normal(size=(1000, 4, 2)) * rs.uniform(0.01, 1.0, size=(1000, 1, 1))
  q1, q2 = rs.uniform(-1, 1, 1000), rs.uniform(-1, 1, 1000)
  with jax.enable_x64(True):
    loss = np.asarray(udgan.contrastive_loss_per_quadruplet(jnp.asarray(emb), jnp.asarray(q1), jnp.asarray(q2)))
    energy = np.asarray(udgan.energy_distance(jnp.asarray(emb)))
  gamma = np.abs(q1 - q2)
  rho = np.stack([np.linalg.norm(emb[:, a] - emb[:, b], axis=-1) for a, b in udgan.DISSIMILAR_PAIRS], axis=1)
  bracket = 0.25 * np.sum(rho ** 2 + np.maximum(0, gamma[:, None] - rho) ** 2, axis=1)
  np.testing.assert_allclose(energy, -loss + bracket, rtol=1e-9, atol=1e-12)     # Eq. 6
  assert np.all(energy >= gamma ** 2 / 2 - loss - 1e-12)                        # Eq. 7


# ------------------------------------------------------------------------------------------------- quadruplets

def test_quadruplets_have_the_pair_structure_and_uniform_marginals():
  num_knobs, noise = 5, 2
  latents = udgan.quadruplet_latents(jax.random.key(0), 4 * 4096, num_knobs, noise_dim=noise)
  z = np.asarray(latents["z"]).reshape(4096, 4, num_knobs + noise)
  knob = np.asarray(latents["knob"]).reshape(4096, 4)
  assert np.all(knob == knob[:, :1]) and knob.max() < num_knobs               # noise dims never chosen
  k = knob[:, 0]
  rows = np.arange(4096)
  x11, x12, x21, x22 = (z[:, j] for j in range(4))
  others = np.ones((4096, num_knobs + noise), bool)
  others[rows, k] = False
  # Similar pairs share knob i; the first index n picks knob i's sample, the second m every other coordinate.
  np.testing.assert_array_equal(x11[rows, k], x12[rows, k])
  np.testing.assert_array_equal(x21[rows, k], x22[rows, k])
  np.testing.assert_array_equal(x11[others], x21[others])
  np.testing.assert_array_equal(x12[others], x22[others])
  assert np.all(x11[rows, k] != x21[rows, k]) and np.all(x11[others] != x12[others])
  np.testing.assert_array_equal(np.asarray(latents["q1"]).reshape(4096, 4)[:, 0], x11[rows, k])
  np.testing.assert_array_equal(np.asarray(latents["q2"]).reshape(4096, 4)[:, 0], x22[rows, k])
  assert scipy.stats.kstest(z.ravel(), scipy.stats.uniform(-1, 2).cdf).pvalue > 0.01
  for j in range(4):   # each image of the quadruplet is marginally U(−1, 1)^D
    assert scipy.stats.kstest(z[:, j].ravel(), scipy.stats.uniform(-1, 2).cdf).pvalue > 0.001
  assert scipy.stats.chisquare(np.bincount(k, minlength=num_knobs)).pvalue > 0.001


def test_per_batch_knob_and_batch_checks():
  latents = udgan.quadruplet_latents(jax.random.key(1), 32, 7, knob_sampling="per_batch")
  assert len(set(np.asarray(latents["knob"]).tolist())) == 1
  with pytest.raises(ValueError, match="multiple of 4"):
    udgan.quadruplet_latents(jax.random.key(0), 10, 3)
  with pytest.raises(ValueError, match=r"4 × 8 device\(s\) = 32"):
    udgan.check_quadruplet_batch(16, num_devices=8)
  assert udgan.check_quadruplet_batch(64, num_devices=8) == 16


def test_knob_embeddings_select_the_chosen_knobs_columns():
  emb = jnp.arange(8 * 3 * 2, dtype=jnp.float32).reshape(8, 6)        # 3 knobs × E = 2
  knob = jnp.repeat(jnp.array([2, 0]), 4)
  picked = np.asarray(udgan.knob_embeddings(emb, knob, embed_dim=2))
  np.testing.assert_array_equal(picked[0], np.asarray(emb)[:4, 4:6])
  np.testing.assert_array_equal(picked[1], np.asarray(emb)[4:, 0:2])


# ------------------------------------------------------------------------------------------------------ toy test

def toy_generator(z):
  """8×8 images: a Gaussian blob whose column is knob 0 and whose brightness is knob 1 (model range)."""
  grid = jnp.arange(8, dtype=jnp.float32)
  centre = 3.5 + 2.5 * z[:, 0]
  brightness = 0.6 + 0.35 * z[:, 1]
  blob = jnp.exp(-0.5 * (jnp.square(grid[None, None, :] - centre[:, None, None])
                         + jnp.square(grid[None, :, None] - 3.5)))
  return (brightness[:, None, None] * blob) * 2.0 - 1.0


class TinySiamese(nn.Module):
  @nn.compact
  def __call__(self, images):
    h = nn.tanh(nn.Dense(32)(images.reshape(images.shape[0], -1)))
    return nn.Dense(2)(h)        # φ_0, φ_1: one 1-D embedding per knob (a shared unguided network)


def test_a_siamese_network_learns_to_recover_the_knobs_of_a_toy_generator():
  net = TinySiamese()
  params = net.init(jax.random.key(0), jnp.zeros((1, 8, 8)))
  optimizer = optax.adam(1e-2)
  opt_state = optimizer.init(params)

  def loss_fn(p, rng):
    latents = udgan.quadruplet_latents(rng, 256, 2)
    emb = net.apply(p, toy_generator(latents["z"]))
    quads = udgan.knob_embeddings(emb, latents["knob"])
    return udgan.contrastive_loss(quads, latents["q1"][::4], latents["q2"][::4])

  @jax.jit
  def train(params, opt_state, rng):
    def step(carry, key):
      p, s = carry
      loss, grads = jax.value_and_grad(loss_fn)(p, key)
      updates, s = optimizer.update(grads, s, p)
      return (optax.apply_updates(p, updates), s), loss
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), jax.random.split(rng, 300))
    return params, losses

  params, losses = train(params, opt_state, jax.random.key(1))
  losses = np.asarray(losses)
  assert losses[-20:].mean() < losses[:5].mean() / 5
  z = np.asarray(jax.random.uniform(jax.random.key(2), (2000, 2), minval=-1, maxval=1))
  emb = np.asarray(net.apply(params, toy_generator(jnp.asarray(z))))
  corr = np.corrcoef(np.concatenate([emb, z], axis=1).T)[:2, 2:]   # [φ_k, q_j]
  assert abs(corr[0, 0]) >= 0.95 and abs(corr[1, 1]) >= 0.95, corr
  assert abs(corr[0, 1]) <= 0.2 and abs(corr[1, 0]) <= 0.2, corr
