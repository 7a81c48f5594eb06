"""The evaluation protocol of SRE / Khrulkov et al. (2021) for directions in a GAN's latent space.

Directions are not an encoder, so disentanglement metrics cannot score them directly. The protocol:
  1. sample latents, render images, and compute each image's coordinates along the K directions,
     c_k = ⟨latent, d_k⟩ in the directions' space (W for StyleGAN2 'w'/'w+' directions), standardised;
  2. train an encoder E: image → c on generated images (a train set, and a disjoint validation set for R²);
  3. represent REAL ground-truth images with E and compute MIG, FactorVAE, DCI and β-VAE on them.
Unlike upstream (which reused samples), train, validation and the metric samples are all different draws.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganlatent_jax import console, parallel
from ganlatent_jax.directions import spaces
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators.base import Generator
from ganlatent_jax.metrics import disentanglement
from ganlatent_jax.nets.encoders import ConvEncoder


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
  num_train: int = 10000        # generated training images for the encoder
  num_val: int = 2000           # generated validation images (R² per direction)
  batch_size: int = 64
  steps: int = 3000
  learning_rate: float = 1e-3
  truncation: float | None = None
  render_batch_size: int = 64
  # metric budgets (disentanglement_lib defaults)
  mig_num_train: int = 10000
  dci_num_train: int = 10000
  dci_num_test: int = 5000
  factor_vae_num_train: int = 10000
  factor_vae_num_eval: int = 5000
  factor_vae_num_variance_estimate: int = 10000
  beta_vae_num_train: int = 10000
  beta_vae_num_eval: int = 5000
  metrics: tuple[str, ...] = ("mig", "factor_vae", "dci", "beta_vae")


def direction_coefficients(gen: Generator, directions: Directions, z: jax.Array,
                           truncation: float | None = None, w_avg: jax.Array | None = None) -> jax.Array:
  """(B, K): each latent's coordinate along each direction, in the directions' space (W+ directions use w)."""
  space = "z" if directions.space == "z" else "w"
  latents = spaces.to_space(gen, z, space, truncation, w_avg)
  return latents @ jnp.asarray(directions.matrix)


def generate_labelled_images(gen: Generator, directions: Directions, rng: jax.Array, num: int, batch_size: int,
                             truncation: float | None = None, w_avg=None) -> tuple[np.ndarray, np.ndarray]:
  """uint8 NHWC images (display range) and their direction coefficients (float32)."""
  lo, hi = gen.info.output_range
  space = "z" if directions.space == "z" else "w"

  @jax.jit
  def render(g, z):
    latents = spaces.to_space(g, z, space, truncation, w_avg)
    images = spaces.render(g, latents, space)
    images = jnp.clip((images - lo) / (hi - lo), 0.0, 1.0)
    return jnp.round(images * 255).astype(jnp.uint8), latents @ jnp.asarray(directions.matrix)

  images, coefficients = [], []
  for i, start in enumerate(console.progress(range(0, num, batch_size), f"rendering {num} images", unit="batch")):
    z = gen.sample_z(jax.random.fold_in(rng, i), min(batch_size, num - start))
    x, c = render(gen, z)
    images.append(np.asarray(x))
    coefficients.append(np.asarray(c))
  return np.concatenate(images), np.concatenate(coefficients).astype(np.float32)


@dataclasses.dataclass
class TrainedEncoder:
  module: ConvEncoder
  params: Any
  target_mean: np.ndarray
  target_std: np.ndarray
  val_r2: np.ndarray          # per direction, on held-out generated images
  final_loss: float

  def represent_fn(self, batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    apply = jax.jit(self.module.apply)

    def represent(images: np.ndarray) -> np.ndarray:
      images = np.asarray(images, np.float32)
      out = [np.asarray(apply(self.params, images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
      return np.concatenate(out)

    return represent


def train_encoder(images: np.ndarray, targets: np.ndarray, val_images: np.ndarray, val_targets: np.ndarray,
                  config: ProtocolConfig, rng: jax.Array, mesh=None) -> TrainedEncoder:
  """Regresses standardised targets from uint8 images with Adam (MSE); batches sharded over the mesh."""
  mesh = mesh or parallel.make_mesh()
  parallel.check_batch_size(config.batch_size, mesh, "encoder batch_size")
  mean, std = targets.mean(0), targets.std(0) + 1e-8
  standardized = (targets - mean) / std
  module = ConvEncoder(outputs=targets.shape[1])
  init_rng, data_rng = jax.random.split(rng)
  params = module.init(init_rng, jnp.zeros((1, *images.shape[1:]), jnp.float32))
  optimizer = optax.adam(config.learning_rate)
  opt_state = optimizer.init(params)
  params, opt_state = parallel.replicate((params, opt_state), mesh)

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      return jnp.mean((module.apply(p, x.astype(jnp.float32) / 255.0) - y) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  order_rng = np.random.RandomState(np.asarray(jax.random.key_data(data_rng))[-1] % (2 ** 31))
  loss = np.nan
  bar = console.progress(total=config.steps, desc="encoder training", unit="step")
  for _ in range(config.steps):
    idx = order_rng.randint(0, len(images), config.batch_size)
    x, y = parallel.shard_batch((images[idx], standardized[idx]), mesh)
    params, opt_state, loss = step(params, opt_state, x, y)
    # One step in flight at a time: queued sharded steps on simulated CPU devices can starve a collective's threads.
    loss = float(loss)
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
  bar.close()
  encoder = TrainedEncoder(module, jax.device_get(params), mean, std, np.zeros(targets.shape[1]), float(loss))
  predicted = encoder.represent_fn()(val_images.astype(np.float32) / 255.0)
  val_standardized = (val_targets - mean) / std
  residual = np.sum((predicted - val_standardized) ** 2, axis=0)
  total = np.sum((val_standardized - val_standardized.mean(0)) ** 2, axis=0) + 1e-12
  encoder.val_r2 = 1.0 - residual / total
  return encoder


def evaluate_directions(gen: Generator, directions: Directions, dataset, config: ProtocolConfig,
                        rng: jax.Array, random_state: np.random.RandomState, mesh=None) -> dict[str, Any]:
  """The full protocol: encoder on generated images, metrics on real ground-truth images."""
  if tuple(dataset.observation_shape) != tuple(gen.image_shape):
    raise ValueError(f"the generator's images {gen.image_shape} and the dataset's {dataset.observation_shape} differ")
  train_rng, val_rng, encoder_rng, mean_rng = jax.random.split(rng, 4)
  w_avg = None
  if config.truncation is not None and directions.space != "z":
    w_avg = spaces.mean_w(gen, mean_rng)
  with console.phase(f"encoder on generated images ({directions.num_directions} directions)"):
    images, targets = generate_labelled_images(gen, directions, train_rng, config.num_train,
                                               config.render_batch_size, config.truncation, w_avg)
    val_images, val_targets = generate_labelled_images(gen, directions, val_rng, config.num_val,
                                                       config.render_batch_size, config.truncation, w_avg)
    encoder = train_encoder(images, targets, val_images, val_targets, config, encoder_rng, mesh)
  represent = encoder.represent_fn()
  results: dict[str, Any] = {"encoder_val_r2": encoder.val_r2.tolist(),
                             "encoder_val_r2_mean": float(np.mean(encoder.val_r2)),
                             "encoder_final_loss": encoder.final_loss}
  if "mig" in config.metrics:
    with console.phase("MIG"):
      results.update(disentanglement.mig(dataset, represent, random_state, num_train=config.mig_num_train))
  if "factor_vae" in config.metrics:
    with console.phase("FactorVAE score"):
      fv = disentanglement.factor_vae_score(
          dataset, represent, random_state, num_train=config.factor_vae_num_train,
          num_eval=config.factor_vae_num_eval, num_variance_estimate=config.factor_vae_num_variance_estimate)
    results.update({f"factor_vae_{k}": v for k, v in fv.items()})
  if "dci" in config.metrics:
    with console.phase("DCI"):
      d = disentanglement.dci(dataset, represent, random_state, num_train=config.dci_num_train,
                              num_test=config.dci_num_test)
    results.update({f"dci_{k}": v for k, v in d.items()})
  if "beta_vae" in config.metrics:
    with console.phase("β-VAE score"):
      b = disentanglement.beta_vae_score(dataset, represent, random_state, num_train=config.beta_vae_num_train,
                                         num_eval=config.beta_vae_num_eval)
    results.update({f"beta_vae_{k}": v for k, v in b.items()})
  return results
