"""β-VAE (Higgins et al., 2017) as Plumerault et al. (ICLR 2020) train it for their Fig. 5, on a ground-truth dataset.

  python -m ganlatent_jax.main --config=configs/betavae_dsprites.py --workdir=/tmp/betavae --config.beta=10
  python -m ganlatent_jax.evaluate --config=configs/betavae_dsprites.py --workdir=/tmp/betavae --config.beta=10

The encoder and decoder are the `vae` generator family (App. B Table 1, `generators/vae.py`). Per step, a batch of
real images x in [0, 1] (drawn on the host from (seed, step), as the GAN engine draws its real batch, so a resumed
run sees the same data), q(z|x) = N(μ, σ²) from the encoder, one z = μ + σ·ε, and the loss
  mean over the batch of  Σ_pixels BCE(decoder logits(z), x)  +  β · Σ_dims KL(N(μ, σ²) ‖ N(0, 1)),
i.e. −ELBO with a Bernoulli likelihood and the KL weighted by β (`config.beta`; β = 1 is the plain VAE). Adam at
`config.optimizer.learning_rate` (the paper: 5e-4, batch 128, 1e5 steps). The loop (resume, per-step key, NaN stop,
TensorBoard, checkpoints) is `training.loop.run`.

At the end of training the workdir gets:
  * generator/ — the decoder as a converted generator directory: `--config.generator=WORKDIR/generator` loads it in
    any other method (Plumerault's control measure on it is Fig. 5);
  * encoder.msgpack — the encoder's variables ({'params': ...}, `generators.vae.encoder_from_config`);
  * images/samples.png (decoder on prior draws), images/reconstructions.png (pairs of rows: data, reconstruction
    from μ), images/traversal.png (each latent dimension swept over ±traversal.span);
  * metrics.json (`evaluate`, with config.evaluation.enabled): reconstruction error, KL per latent dimension and the
    active dimensions, and disentanglement scores of the encoder mean (the standard β-VAE measurement).
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganlatent_jax import generators, io, parallel, viz
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators import vae
from ganlatent_jax.methods import _common, _gan_data
from ganlatent_jax.training import loop

# key(config.seed + offset) of each random draw outside the training steps (those come from parallel.step_rng).
STREAMS = dict(init=0, pictures=3, evaluation=17)
EVALUATION_METRICS = ("mig", "factor_vae", "beta_vae")
EXPORT_DIR = "generator"
ENCODER_FILE = "encoder.msgpack"
PARTS = ("encoder", "decoder")


@flax.struct.dataclass
class State:
  step: jax.Array
  params: Any         # {'encoder': ..., 'decoder': ...}
  batch_stats: Any    # {} — the App. B networks have no batch statistics
  opt_state: Any      # {'encoder': Adam state, 'decoder': Adam state}


def check_config(config) -> None:
  """Config values the β-VAE reads, checked before anything is loaded or written."""
  _common.check_loop(config)
  _common.check_non_negative(config, "beta")
  _common.check_positive(config, "traversal.steps", "traversal.num_samples")
  for key in ("optimizer.learning_rate", "optimizer.eps"):
    if not float(_common._lookup(config, key)) > 0:
      raise ValueError(f"config.{key}={_common._lookup(config, key)!r} must be > 0")
  if config.evaluation.enabled:
    _common.check_positive(config, "evaluation.num_images", "evaluation.batch_size")
    _common.check_non_negative(config, "evaluation.active_threshold")
    metrics = tuple(config.evaluation.metrics)
    if set(metrics) - set(EVALUATION_METRICS):
      raise ValueError(f"config.evaluation.metrics={metrics!r}: expected a subset of {EVALUATION_METRICS}")
    _common.check_positive(config, *(f"evaluation.protocol.{k}" for k in config.evaluation.protocol))


def architecture(config) -> dict[str, Any]:
  """The `vae` family config from config.architecture (errors name the key)."""
  arch = dict(config.architecture)
  try:
    return vae.make_config(**arch)
  except ValueError as e:
    raise ValueError(f"config.architecture: {e}") from None


# ---------------------------------------------------------------------------------------------------------------
# The ELBO terms.

def gaussian_kl(mean: jax.Array, log_std: jax.Array) -> jax.Array:
  """KL(N(μ, σ²) ‖ N(0, 1)) per dimension, (B, D): ½(μ² + σ² − 1) − log σ."""
  return 0.5 * (jnp.square(mean) + jnp.exp(2.0 * log_std) - 1.0) - log_std


def bernoulli_nll(logits: jax.Array, images: jax.Array) -> jax.Array:
  """−log p(x | z) per image, (B,): the binary cross-entropy of x ∈ [0, 1] against sigmoid(logits), summed over
  pixels (stable in the logits)."""
  return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, images).reshape(images.shape[0], -1), axis=-1)


class Nets(NamedTuple):
  encoder: vae.VAEEncoder
  decoder: vae.VAEDecoder

  def terms(self, params, images, rng):
    """(reconstruction −log p(x|z) (B,), KL per dimension (B, D), μ) with one z = μ + σ·ε per image."""
    mean, log_std = self.encoder.apply({"params": params["encoder"]}, images)
    z = mean + jnp.exp(log_std) * jax.random.normal(rng, mean.shape, mean.dtype)
    logits = self.decoder.apply({"params": params["decoder"]}, z, method="logits")
    return bernoulli_nll(logits, images), gaussian_kl(mean, log_std), mean


def negative_elbo(nets: Nets, params, images, rng, beta: float):
  """(loss, metrics): mean over the batch of reconstruction + β·KL."""
  reconstruction, kl, _ = nets.terms(params, images, rng)
  kl_total = jnp.sum(kl, axis=-1)
  loss = jnp.mean(reconstruction + beta * kl_total)
  return loss, {"loss": loss, "reconstruction": jnp.mean(reconstruction), "kl": jnp.mean(kl_total),
                "elbo": -jnp.mean(reconstruction + kl_total)}


# ---------------------------------------------------------------------------------------------------------------
# The step.

class Parts(NamedTuple):
  """What `make` builds besides (init_fn, train_step)."""
  nets: Nets
  arch: dict[str, Any]
  dataset: Any
  mesh: Any
  loop_step: Any      # the loop's train_step(state, rng): the step's real batch drawn on the host, then the step


def make(config, mesh, dataset=None):
  """(init_fn, train_step, parts): `init_fn(rng) -> State`; `train_step(state, images, rng) -> (state, metrics)`
  jitted once with the state donated and the real batch split over 'data' (`parts.loop_step` draws it)."""
  check_config(config)
  parallel.check_batch_size(config.batch_size, mesh)
  arch = architecture(config)
  if dataset is None:
    try:
      dataset = _gan_data.make_dataset(**dict(config.data))
    except (TypeError, ValueError) as e:
      raise ValueError(f"config.data={dict(config.data)!r}: {e}") from None
  image_shape = (arch["image_size"], arch["image_size"], arch["out_channels"])
  if tuple(dataset.observation_shape) != image_shape:
    raise ValueError(f"config.data: {config.data.name} has images {tuple(dataset.observation_shape)} but "
                     f"config.architecture makes {image_shape} (image_size, out_channels)")
  nets = Nets(vae.encoder_from_config(arch), vae.module_from_config(arch))
  # The paper's TF2 Adam: Keras's ε = 1e-7. Adam is elementwise, so one Adam per part is the paper's single Adam.
  opt = optax.adam(float(config.optimizer.learning_rate), eps=float(config.optimizer.eps))
  beta = float(config.beta)

  def init_fn(rng):
    e_key, d_key = jax.random.split(rng)
    params = {"encoder": vae.init_encoder_variables(arch, e_key)["params"],
              "decoder": vae.init_variables(arch, d_key)["params"]}
    return State(step=jnp.zeros((), jnp.int32), params=params, batch_stats={},
                 opt_state={name: opt.init(params[name]) for name in PARTS})

  def step_fn(state: State, images, rng):
    grads, metrics = jax.grad(lambda p: negative_elbo(nets, p, images, rng, beta), has_aux=True)(state.params)
    params, opt_state = {}, {}
    for name in PARTS:
      updates, opt_state[name] = opt.update(grads[name], state.opt_state[name], state.params[name])
      params[name] = optax.apply_updates(state.params[name], updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  replicated = parallel.replicated_sharding(mesh)
  train_step = jax.jit(step_fn, in_shardings=(replicated, parallel.data_sharding(mesh), replicated),
                       out_shardings=(replicated, replicated), donate_argnums=(0,))
  loop_step = loop.HostBatchStep(train_step, functools.partial(real_batch, config, dataset, mesh))
  return init_fn, train_step, Parts(nets, arch, dataset, mesh, loop_step)


def real_batch(config, dataset, mesh, step: int) -> jax.Array:
  """The global batch of `step` in [0, 1], split over 'data': labels drawn from (seed, step) by every process, only
  this process's rows rendered (`_gan_data.real_images`)."""
  batch = int(config.batch_size)
  images = _gan_data.real_images(dataset, batch, parallel.step_numpy_rng(config.seed, step), parallel.process_rows(batch))
  return parallel.shard_local_batch(np.asarray(images, np.float32), batch, mesh)


# ---------------------------------------------------------------------------------------------------------------
# Pictures and outputs.

@functools.partial(jax.jit, static_argnums=0)
def _encode(encoder: vae.VAEEncoder, params, images):
  return encoder.apply({"params": params}, images)


@functools.partial(jax.jit, static_argnums=0)
def _decode(decoder: vae.VAEDecoder, params, z):
  return decoder.apply({"params": params}, z)


def decoder_generator(parts: Parts, state: State, source: str = "") -> generators.Generator:
  return vae.build(parts.arch, {"params": jax.device_get(state.params["decoder"])}, source)


def encoder_means(parts: Parts, state: State, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """μ(x) of images NHWC in [0, 1] (numpy), in batches."""
  params = state.params["encoder"]
  return np.concatenate([np.asarray(_encode(parts.nets.encoder, params, jnp.asarray(images[i:i + batch_size],
                                                                                    jnp.float32))[0])
                         for i in range(0, len(images), batch_size)])


def reconstruction_grid(parts: Parts, state: State, images: np.ndarray, columns: int = 8) -> np.ndarray:
  """Pairs of rows: `columns` data images, then their reconstructions from μ."""
  images = np.asarray(images[:columns], np.float32)
  decoded = np.asarray(_decode(parts.nets.decoder, state.params["decoder"], jnp.asarray(encoder_means(
      parts, state, images))))
  return viz.image_grid(viz.to_display(np.stack([images, decoded]), (0.0, 1.0)))


def write_outputs(config, workdir: str, parts: Parts, state: State) -> dict[str, str]:
  """generator/ (the decoder), encoder.msgpack and the pictures (module docstring)."""
  outputs = {"generator": os.path.join(workdir, EXPORT_DIR), "encoder": os.path.join(workdir, ENCODER_FILE)}
  gen = decoder_generator(parts, state, source=f"ganlatent_jax betavae {workdir}")
  generators.save_converted(outputs["generator"], parts.arch, gen.variables,
                            source=f"ganlatent_jax betavae {workdir} (beta={float(config.beta):g})")
  io.save_variables(outputs["encoder"], {"params": jax.device_get(state.params["encoder"])})
  images_dir = os.path.join(workdir, "images")
  io.makedirs(images_dir)
  key = _common.stream(config, STREAMS, "pictures")
  outputs["samples"] = os.path.join(images_dir, "samples.png")
  viz.sample_grid(gen, key, 32, path=outputs["samples"])
  outputs["reconstructions"] = os.path.join(images_dir, "reconstructions.png")
  real = parts.dataset.sample(8, np.random.RandomState(int(config.seed) + STREAMS["pictures"]))[1]
  viz.save_png(outputs["reconstructions"], reconstruction_grid(parts, state, real))
  outputs["traversal"] = os.path.join(images_dir, "traversal.png")
  axes = Directions(np.eye(gen.latent_dim, dtype=np.float32), space="z", meta={"method": "betavae latent axes"})
  t = config.traversal
  viz.traversal_grid(gen, axes, gen.sample_z(jax.random.fold_in(key, 1), int(t.num_samples)),
                     span=(-float(t.span), float(t.span)), steps=int(t.steps), path=outputs["traversal"])
  return outputs


# ---------------------------------------------------------------------------------------------------------------
# Evaluation.

def scores(config, parts: Parts, state: State) -> dict[str, Any]:
  """Reconstruction error, KL per latent dimension and active dimensions on config.evaluation.num_images data
  images (drawn from the 'evaluation' stream), and the disentanglement scores of μ (config.evaluation.metrics)."""
  ev = config.evaluation
  seed = int(config.seed) + STREAMS["evaluation"]
  images = parts.dataset.sample(int(ev.num_images), np.random.RandomState(seed))[1].astype(np.float32)
  terms = jax.jit(parts.nets.terms)
  key, batch = _common.stream(config, STREAMS, "evaluation"), int(ev.batch_size)
  reconstruction, kl, means, mse = [], [], [], []
  for i in range(0, len(images), batch):
    chunk = jnp.asarray(images[i:i + batch])
    r, k, m = jax.device_get(terms(state.params, chunk, jax.random.fold_in(key, i)))
    decoded = np.asarray(_decode(parts.nets.decoder, state.params["decoder"], jnp.asarray(m)))
    reconstruction.append(r), kl.append(k), means.append(m)
    mse.append(np.mean(np.square(decoded - np.asarray(chunk)), axis=(1, 2, 3)))
  reconstruction, kl, means = np.concatenate(reconstruction), np.concatenate(kl), np.concatenate(means)
  kl_per_dim = kl.mean(axis=0)
  threshold = float(ev.active_threshold)
  results: dict[str, Any] = {
      "step": int(jax.device_get(state.step)), "beta": float(config.beta), "num_images": int(len(images)),
      "reconstruction": float(reconstruction.mean()),   # −log p(x|z) per image, nats, one z ~ q(z|x)
      "kl": float(kl.sum(axis=1).mean()), "elbo": float(-(reconstruction + kl.sum(axis=1)).mean()),
      "pixel_mse": float(np.concatenate(mse).mean()),   # of the reconstruction from μ, per pixel
      "kl_per_dim": kl_per_dim.tolist(),
      # a dimension is active when its mean KL exceeds the threshold (nats), or (Burda et al. 2016) when μ_j varies
      # over the data: Var_x(μ_j) > threshold
      "active_dims": int(np.sum(kl_per_dim > threshold)),
      "active_units": int(np.sum(means.var(axis=0) > threshold))}
  metrics = tuple(ev.metrics)
  if metrics:
    results["encoder_mean"] = _gan_data.representation_scores(
        parts.dataset, lambda x: encoder_means(parts, state, x), metrics, ev.protocol, seed)
  return results


def _write_metrics(config, workdir: str, parts: Parts, state: State) -> dict[str, Any]:
  results = {"seed": int(config.seed), "evaluation": config.evaluation.to_dict(), **scores(config, parts, state)}
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  logging.info("β-VAE (β=%g): reconstruction %.2f nats, KL %.2f, active dims %d", results["beta"],
               results["reconstruction"], results["kl"], results["active_dims"])
  return results


# ---------------------------------------------------------------------------------------------------------------
# Entry points.

def setup(config):
  """(mesh, init_fn, parts)."""
  check_config(config)
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  init_fn, _, parts = make(config, mesh)
  return mesh, init_fn, parts


def train(config, workdir: str) -> dict[str, str]:
  """Trains the β-VAE; writes the decoder as a generator, the encoder, pictures and, with config.evaluation.enabled,
  metrics.json. Returns the paths written."""
  mesh, init_fn, parts = setup(config)
  preview = parts.dataset.sample(8, np.random.RandomState(int(config.seed) + STREAMS["pictures"]))[1]
  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=init_fn, train_step=parts.loop_step,
                   images_per_step=int(config.batch_size),
                   image_fn=lambda s: {"reconstructions": reconstruction_grid(parts, s, preview)})
  outputs = write_outputs(config, workdir, parts, state)
  if config.evaluation.enabled:
    _write_metrics(config, workdir, parts, state)
    outputs["metrics"] = os.path.join(workdir, "metrics.json")
  return outputs


def evaluate(config, workdir: str) -> dict[str, Any]:
  """The scores of the latest checkpoint in `workdir` (see `scores`), written to metrics.json."""
  mesh, init_fn, parts = setup(config)
  state = loop.restore_latest(init_fn, config, mesh, workdir, "β-VAE checkpoint")
  return _write_metrics(config, workdir, parts, state)
