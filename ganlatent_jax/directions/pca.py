"""GANSpace (Härkönen et al. 2020): principal directions of W samples, or of a layer's activations mapped back to z.

Streaming: samples are drawn in batches and only sufficient statistics are kept (sum and sum of outer products in
float64 for PCA; XᵀX and XᵀZ for the regression), so 10⁶ samples cost the memory of one batch plus D². Activations
wider than `max_dense_features` use sklearn's IncrementalPCA instead of a dense covariance.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax import parallel
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators.base import Generator


def _fix_signs(components: np.ndarray) -> np.ndarray:
  """Each column's largest-magnitude entry made positive (PCA's sign is arbitrary; this makes it reproducible)."""
  idx = np.argmax(np.abs(components), axis=0)
  signs = np.sign(components[idx, np.arange(components.shape[1])])
  return components * np.where(signs == 0, 1.0, signs)[None, :]


class StreamingPCA:
  """Exact PCA from streamed batches through the covariance's sufficient statistics (float64)."""

  def __init__(self, dim: int):
    self.count = 0
    self.total = np.zeros((dim,), np.float64)
    self.outer = np.zeros((dim, dim), np.float64)

  def update(self, batch: np.ndarray) -> None:
    batch = np.asarray(batch, np.float64)
    self.count += batch.shape[0]
    self.total += batch.sum(0)
    self.outer += batch.T @ batch

  def result(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (D,), components (D, k) unit columns, variances (k,)) sorted by variance, descending."""
    mean = self.total / self.count
    cov = (self.outer - self.count * np.outer(mean, mean)) / max(self.count - 1, 1)
    variances, vectors = np.linalg.eigh(cov)
    order = np.argsort(variances)[::-1][:k]
    return mean, _fix_signs(vectors[:, order]), np.maximum(variances[order], 0.0)


def latent_batches(gen: Generator, rng: jax.Array, num_samples: int, batch_size: int, mesh=None, sample_z=None):
  """The z batches GANSpace draws: batch i is sample_z(fold_in(rng, i)), the last one possibly smaller.

  `sample_z(rng, num)` defaults to the generator's prior. With a mesh, each batch whose size divides over the devices
  is split over the 'data' axis.
  """
  sample_z = sample_z or gen.sample_z
  for i, start in enumerate(range(0, num_samples, batch_size)):
    z = sample_z(jax.random.fold_in(rng, i), min(batch_size, num_samples - start))
    if mesh is not None and z.shape[0] % mesh.devices.size == 0:
      z = parallel.shard_batch(z, mesh)
    yield z


def ganspace(gen: Generator, k: int, num_samples: int, rng: jax.Array, layer: str | None = None,
             batch_size: int = 1024, max_dense_features: int = 4096, mesh=None, sample_z=None,
             **gen_kwargs) -> tuple[Directions, np.ndarray]:
  """Top-k GANSpace directions and their standard deviations (traversal ranges).

  layer=None on a generator with W: PCA of w = mapping(z); directions live in 'w', stds = sqrt(PCA variances).
  layer='name': PCA of that feature tap (flattened) over z samples, then each component is mapped back to z by least
  squares (z ≈ X·V, X = projections of the activations on the components); directions live in 'z' and stds are the
  activation-space component stds. `mesh`: the generator passes run with each batch split over its 'data' axis.
  `sample_z(rng, num)` replaces the generator's prior and `gen_kwargs` go to every call (BigGAN: truncated noise,
  class_vector and truncation).
  """
  if layer is None and "w" not in gen.info.latent_spaces:
    raise ValueError(f"a {gen.info.family} generator has no W space: pass layer= (one of "
                     f"{list(gen.info.feature_layers)})")
  pca_rng, regression_rng = jax.random.split(rng)
  if layer is None:
    mapping = jax.jit(lambda g, z: g.mapping(z))
    pca = StreamingPCA(gen.info.w_dim or gen.latent_dim)
    for z in latent_batches(gen, pca_rng, num_samples, batch_size, mesh, sample_z):
      pca.update(np.asarray(mapping(gen, z)))
    _, components, variances = pca.result(k)
    directions = Directions(components, space="w", meta=dict(
        method="ganspace", layer=None, num_samples=num_samples, source=gen.info.source,
        stds=np.sqrt(variances).tolist()))
    return directions, np.sqrt(variances)

  activations = jax.jit(lambda g, z: g.features(z, layers=(layer,), **gen_kwargs)[layer].reshape(z.shape[0], -1))
  feature_dim = int(np.prod(jax.eval_shape(activations, gen, jnp.zeros((1, gen.latent_dim))).shape[1:]))
  if feature_dim <= max_dense_features:
    pca = StreamingPCA(feature_dim)
    for z in latent_batches(gen, pca_rng, num_samples, batch_size, mesh, sample_z):
      pca.update(np.asarray(activations(gen, z)))
    mean, components, variances = pca.result(k)
  else:
    from sklearn.decomposition import IncrementalPCA
    ipca = IncrementalPCA(n_components=k)
    for z in latent_batches(gen, pca_rng, num_samples, max(batch_size, k), mesh, sample_z):
      ipca.partial_fit(np.asarray(activations(gen, z), np.float64))
    mean, components, variances = ipca.mean_, _fix_signs(ipca.components_.T), ipca.explained_variance_

  xtx = np.zeros((k, k), np.float64)
  xtz = np.zeros((k, gen.latent_dim), np.float64)
  for z in latent_batches(gen, regression_rng, num_samples, batch_size, mesh, sample_z):
    x = (np.asarray(activations(gen, z), np.float64) - mean) @ components
    xtx += x.T @ x
    xtz += x.T @ np.asarray(z, np.float64)
  v = np.linalg.solve(xtx + 1e-8 * np.eye(k), xtz)  # (k, latent_dim)
  z_directions = v.T / np.linalg.norm(v.T, axis=0, keepdims=True)
  directions = Directions(z_directions, space="z", meta=dict(
      method="ganspace", layer=layer, num_samples=num_samples, source=gen.info.source,
      stds=np.sqrt(variances).tolist()))
  return directions, np.sqrt(variances)
