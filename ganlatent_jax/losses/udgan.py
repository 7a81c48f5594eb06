"""UD-GAN's quadruplets of latents and adaptive-margin contrastive loss ("Unlabeled Disentangling of GANs with
Guided Siamese Networks", ICLR 2019 submission, Sec. 3.2–3.4, Eqs. 2, 5–7; no public code exists).

Latents: z = N_A one-dimensional knobs q_i ~ U(−1, 1) (plus optional noise dims, never chosen as knobs). For a chosen
knob i two full samples q¹, q² give four latents z_nm, n, m ∈ {1, 2}:
    z_nm[i] = qⁿ[i],   z_nm[j] = qᵐ[j] (j ≠ i)
so x_11 = G(q¹), x_22 = G(q²) and x_12, x_21 swap knob i. Similar pairs (same q_i): (x_11, x_12), (x_21, x_22);
dissimilar pairs (different q_i): (x_1n, x_2m) for all n, m. Every z_nm is marginally U(−1, 1)^D, so the fakes the
discriminator sees are correctly distributed. A batch of B images is B/4 quadruplets in rows 4q + 2(n − 1) + (m − 1),
i.e. x_11, x_12, x_21, x_22; a sharded batch must be a multiple of 4 × devices so no quadruplet straddles devices.
The knob is drawn per quadruplet (`'per_example'`, default: same expectation as Eq. 3's i ~ Cat(N_A), lower variance)
or once per batch (`'per_batch'`, Eq. 3 literally).

Loss of one quadruplet (Eq. 2), ρ(a, b) = ‖φ_i(a) − φ_i(b)‖₂ and the adaptive margin γ = |q¹_i − q²_i|:
    L = ½ Σ_n ρ(x_n1, x_n2)² + ¼ Σ_n Σ_m max(0, γ − ρ(x_1n, x_2m))²
`contrastive_loss` averages it over quadruplets. ρ = 0 has no √ gradient: the similar term uses ρ² directly and the
hinge uses √ only where ρ² > 0 (gradient 0 at coincident embeddings, never NaN).
Eq. 5's energy-distance estimate D_E = −½ Σ_n ρ(x_n1, x_n2)² + ¼ Σ_{n,m} ρ(x_1n, x_2m)² satisfies exactly (Eq. 6)
D_E = −L + ¼ Σ_{n,m} [ρ² + max(0, γ − ρ)²] ≥ γ²/2 − L (Eq. 7; each bracket is ≥ γ²/2, the minimum at ρ = γ/2).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

KNOB_SAMPLING = ("per_example", "per_batch")
SIMILAR_PAIRS = ((0, 1), (2, 3))                      # (x_11, x_12), (x_21, x_22)
DISSIMILAR_PAIRS = ((0, 2), (0, 3), (1, 2), (1, 3))   # (x_1n, x_2m)


def check_quadruplet_batch(batch: int, num_devices: int = 1) -> int:
  """The number of quadruplets per batch; ValueError unless `batch` is a multiple of 4 × num_devices."""
  if batch < 1 or batch % (4 * num_devices):
    raise ValueError(f"UD-GAN batch_size={batch} must be a positive multiple of 4 × {num_devices} device(s) = "
                     f"{4 * num_devices} (groups of four images, none split across devices)")
  return batch // 4


def quadruplet_latents(rng: jax.Array, batch: int, num_knobs: int, noise_dim: int = 0,
                       knob_sampling: str = "per_example", num_devices: int = 1) -> dict[str, jax.Array]:
  """Latents of batch/4 quadruplets: {'z': (B, N_A + noise_dim), 'knob': (B,) int32, 'q1', 'q2': (B,) the chosen
  knob's two values, constant within each group of four}. Rows are x_11, x_12, x_21, x_22 of each quadruplet."""
  if knob_sampling not in KNOB_SAMPLING:
    raise ValueError(f"knob_sampling must be one of {KNOB_SAMPLING}, got {knob_sampling!r}")
  if num_knobs < 1 or noise_dim < 0:
    raise ValueError(f"need num_knobs ≥ 1 and noise_dim ≥ 0, got {num_knobs}, {noise_dim}")
  quads = check_quadruplet_batch(batch, num_devices)
  dim = num_knobs + noise_dim
  q_key, i_key = jax.random.split(rng)
  q = jax.random.uniform(q_key, (quads, 2, dim), jnp.float32, -1.0, 1.0)              # q¹, q² per quadruplet
  knob = jax.random.randint(i_key, () if knob_sampling == "per_batch" else (quads,), 0, num_knobs)
  knob = jnp.broadcast_to(knob, (quads,)).astype(jnp.int32)
  chosen = (jnp.arange(dim)[None, :] == knob[:, None])[:, None, None, :]              # (Q, 1, 1, D)
  z = jnp.where(chosen, q[:, :, None, :], q[:, None, :, :])                          # z[q, n, m]
  values = jnp.take_along_axis(q, knob[:, None, None], axis=2)[..., 0]               # (Q, 2): q¹_i, q²_i
  repeat = lambda a: jnp.repeat(a, 4, axis=0)
  return {"z": z.reshape(batch, dim), "knob": repeat(knob), "q1": repeat(values[:, 0]), "q2": repeat(values[:, 1])}


def knob_embeddings(embeddings: jax.Array, knob: jax.Array, embed_dim: int = 1) -> jax.Array:
  """(B, N_A·E) embeddings of a quadruplet batch (knob k in columns k·E…(k+1)·E) → (B/4, 4, E): each quadruplet's
  four images embedded by its chosen knob's φ. `knob` is per image (B,) as `quadruplet_latents` returns it."""
  batch = embeddings.shape[0]
  e = embeddings.reshape(batch // 4, 4, -1, embed_dim)
  k = knob[::4]
  return jnp.take_along_axis(e, k[:, None, None, None], axis=2)[:, :, 0]


def _squared_distances(emb: jax.Array, pairs) -> jax.Array:
  return jnp.stack([jnp.sum(jnp.square(emb[:, a] - emb[:, b]), axis=-1) for a, b in pairs], axis=1)


def _safe_sqrt(squared: jax.Array) -> jax.Array:
  return jnp.where(squared > 0, jnp.sqrt(jnp.where(squared > 0, squared, 1.0)), 0.0)


def _check(emb, q1, q2):
  if emb.ndim != 3 or emb.shape[1] != 4 or q1.shape != emb.shape[:1] or q2.shape != emb.shape[:1]:
    raise ValueError(f"contrastive_loss: emb must be (B, 4, E) (x_11, x_12, x_21, x_22) and q1, q2 (B,); got "
                     f"{emb.shape}, {q1.shape}, {q2.shape}")


def contrastive_loss_per_quadruplet(emb: jax.Array, q1: jax.Array, q2: jax.Array,
                                    margin: jax.Array | float | None = None) -> jax.Array:
  """(B,) Eq. 2 per quadruplet; `margin` overrides the adaptive γ = |q1 − q2| (e.g. a fixed-margin ablation)."""
  _check(emb, q1, q2)
  gamma = jnp.abs(q1 - q2) if margin is None else jnp.broadcast_to(jnp.asarray(margin, emb.dtype), q1.shape)
  similar = _squared_distances(emb, SIMILAR_PAIRS)                                   # (B, 2): ρ²
  rho = _safe_sqrt(_squared_distances(emb, DISSIMILAR_PAIRS))                         # (B, 4): ρ
  hinge = jnp.square(jax.nn.relu(gamma[:, None] - rho))
  return 0.5 * jnp.sum(similar, axis=1) + 0.25 * jnp.sum(hinge, axis=1)


def contrastive_loss(emb: jax.Array, q1: jax.Array, q2: jax.Array) -> jax.Array:
  """UD-GAN's Eq. 2 averaged over the B quadruplets: emb (B, 4, E) holds φ_i of x_11, x_12, x_21, x_22 (in that
  order) for each quadruplet's chosen knob i; q1, q2 (B,) are that knob's two values (adaptive margin |q1 − q2|)."""
  return jnp.mean(contrastive_loss_per_quadruplet(emb, q1, q2))


def energy_distance(emb: jax.Array) -> jax.Array:
  """(B,) Eq. 5: −½ Σ_n ρ(x_n1, x_n2)² + ¼ Σ_{n,m} ρ(x_1n, x_2m)² per quadruplet (for the Eq. 6–7 property tests)."""
  return (-0.5 * jnp.sum(_squared_distances(emb, SIMILAR_PAIRS), axis=1)
          + 0.25 * jnp.sum(_squared_distances(emb, DISSIMILAR_PAIRS), axis=1))
