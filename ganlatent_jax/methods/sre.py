"""SRE — Scale Ranking Estimator: refines an initial direction matrix D by learning to rank shift magnitudes.

Seed paper "Self-supervised Enhancement of Latent Discovery in GANs"; upstream VSSILPA/disentagled_latent_dirs
(`src/train.py`, `train_ours`). One training step is two alternating Adam updates:
  (a) ranker: B/2 latents duplicated, shifts ε¹, ε² ~ U(−e, e)^K, images of latent + D·ε with the gradient stopped;
      the ranker (ResNet-18, K-way head, batch norm in train mode) predicts ε̂; loss = BCE-with-logits of
      ε̂¹ − ε̂² against 1[ε¹ > ε²], mean over pairs and directions;
  (b) directions: fresh latents and shifts, gradients through the frozen generator to D only (no ranker weight
      gradients are computed), ranker in eval mode (running statistics).
D is used as Q of its QR decomposition with the sign fix (`directions.orthonormalize`) in both updates — the
retraction to orthonormal columns happens at every use, and Adam updates the raw parameter, as upstream.
Upstream labels pairs with 1[ε¹ < ε²] in one version; that only flips the sign of what the ranker learns.
Both updates run in one jitted step: the ranker update's new weights feed the directions update without a host
round trip, and the generator is compiled once.
Batch: the paper uses 64, upstream 32 (16 pairs); the default here is upstream's 32.
"""
from __future__ import annotations

import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganlatent_jax import directions as directions_lib
from ganlatent_jax import parallel, viz
from ganlatent_jax.directions import spaces
from ganlatent_jax.directions.base import Directions, orthonormalize, shift_latents
from ganlatent_jax.generators.base import Generator
from ganlatent_jax.methods import _common
from ganlatent_jax.nets import resnet as resnet_lib
from ganlatent_jax.training import loop

INIT_METHODS = ("sefa", "ganspace", "random", "file")


@flax.struct.dataclass
class State:
  step: jax.Array
  directions: jax.Array          # raw parameter (latent_dim × K); used as orthonormalize(directions)
  ranker_params: Any
  ranker_batch_stats: Any
  directions_opt_state: Any
  ranker_opt_state: Any


def ranker_module(config) -> resnet_lib.ResNet:
  """ResNet-18 (3→stem conv as torchvision) with a K-way head; widths from config.ranker.width (64 = standard)."""
  width = int(config.ranker.width)
  return resnet_lib.ResNet(stem_width=width, stage_widths=(width, 2 * width, 4 * width, 8 * width),
                           heads=(("scales", int(config.num_directions)),))


def initial_directions(config, gen: Generator, rng: jax.Array) -> Directions:
  """The D that SRE refines: SeFa, GANSpace, random, or a directions file; K = config.num_directions."""
  k = int(config.num_directions)
  method = config.init.method
  if method == "sefa":
    d, _ = directions_lib.sefa(gen, k, variant=config.init.sefa_variant,
                               layers=_common.parse_layers(config.init.layers))
  elif method == "ganspace":
    d, _ = directions_lib.ganspace(gen, k, int(config.init.ganspace_samples), rng)
  elif method == "random":
    space = config.space or ("w" if "w" in gen.info.latent_spaces else "z")
    dim = gen.info.w_dim if space != "z" else gen.latent_dim
    d = directions_lib.random(dim, k, rng, space=space)
  elif method == "file":
    d = directions_lib.load(config.init.path)
    if d.num_directions < k:
      raise ValueError(f"config.init.path={config.init.path!r} holds {d.num_directions} directions, "
                       f"config.num_directions={k}")
    d = d.select(range(k))
  else:
    raise ValueError(f"config.init.method={method!r}; expected one of {INIT_METHODS}")
  if config.space and config.space != d.space:
    raise ValueError(f"config.space={config.space!r} but the {method} initialisation lives in {d.space!r}")
  return d


def _bce_rank_loss(scales: jax.Array, eps1: jax.Array, eps2: jax.Array) -> tuple[jax.Array, jax.Array]:
  half = eps1.shape[0]
  diff = scales[:half] - scales[half:]
  target = (eps1 > eps2).astype(jnp.float32)
  loss = jnp.mean(optax.sigmoid_binary_cross_entropy(diff, target))
  accuracy = jnp.mean(((diff > 0) == (eps1 > eps2)).astype(jnp.float32))
  return loss, accuracy


def make_train_step(config, gen: Generator, template: Directions, mesh, w_avg):
  """The jitted step `(state, rng) -> (state, metrics)` with the generator and w̄ passed as (non-donated) args."""
  batch = int(config.batch_size)
  if batch % 2:
    raise ValueError(f"config.batch_size={batch} must be even (pairs of shifted images)")
  parallel.check_batch_size(batch, mesh)
  half, k, e = batch // 2, int(config.num_directions), float(config.shift_range)
  space, truncation = template.space, config.truncation
  ranker = ranker_module(config)
  ranker_opt, directions_opt = optimizers(config)
  sharding = parallel.data_sharding(mesh)

  def images_of(g, d_raw, z_half, eps, w_mean):
    base = spaces.to_space(g, z_half, space, truncation, w_mean)
    base = jax.lax.with_sharding_constraint(jnp.concatenate([base, base], axis=0), sharding)
    return spaces.render(g, shift_latents(base, orthonormalize(d_raw), eps, template.layers), space)

  def draw(rng):
    z_rng, e_rng = jax.random.split(rng)
    z = jax.random.normal(z_rng, (half, gen.latent_dim))
    eps = jax.random.uniform(e_rng, (batch, k), minval=-e, maxval=e)
    return z, jax.lax.with_sharding_constraint(eps, sharding)

  def step(state: State, g: Generator, w_mean, rng):
    ranker_rng, directions_rng = jax.random.split(rng)

    # (a) ranker update: images are constants.
    z, eps = draw(ranker_rng)
    images = jax.lax.stop_gradient(images_of(g, state.directions, z, eps, w_mean))

    def ranker_loss(params):
      out, updates = ranker.apply({"params": params, "batch_stats": state.ranker_batch_stats}, images, train=True,
                                  mutable=["batch_stats"])
      loss, accuracy = _bce_rank_loss(out["scales"], eps[:half], eps[half:])
      return loss, (updates["batch_stats"], accuracy)

    (r_loss, (batch_stats, r_acc)), r_grads = jax.value_and_grad(ranker_loss, has_aux=True)(state.ranker_params)
    r_updates, ranker_opt_state = ranker_opt.update(r_grads, state.ranker_opt_state, state.ranker_params)
    ranker_params = optax.apply_updates(state.ranker_params, r_updates)

    # (b) directions update: gradient through the frozen generator to D only; ranker in eval mode.
    z, eps = draw(directions_rng)
    frozen = {"params": ranker_params, "batch_stats": batch_stats}

    def directions_loss(d_raw):
      out = ranker.apply(frozen, images_of(g, d_raw, z, eps, w_mean), train=False)
      return _bce_rank_loss(out["scales"], eps[:half], eps[half:])

    (d_loss, d_acc), d_grads = jax.value_and_grad(directions_loss, has_aux=True)(state.directions)
    d_updates, directions_opt_state = directions_opt.update(d_grads, state.directions_opt_state, state.directions)
    new_directions = optax.apply_updates(state.directions, d_updates)
    q = orthonormalize(new_directions)
    metrics = {"ranker_loss": r_loss, "ranker_accuracy": r_acc, "directions_loss": d_loss,
               "directions_accuracy": d_acc,
               "orthonormality_error": jnp.max(jnp.abs(q.T @ q - jnp.eye(k)))}
    return State(step=state.step + 1, directions=new_directions, ranker_params=ranker_params,
                 ranker_batch_stats=batch_stats, directions_opt_state=directions_opt_state,
                 ranker_opt_state=ranker_opt_state), metrics

  # Outputs replicated like the loop's initial state, so step 2 reuses step 1's executable instead of compiling
  # again for whatever sharding XLA would have chosen.
  jitted = jax.jit(step, donate_argnums=(0,), out_shardings=parallel.replicated_sharding(mesh))
  train_step = lambda state, rng: jitted(state, gen, w_avg, rng)  # noqa: E731
  train_step.jitted = jitted
  return train_step


def optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  return optax.adam(float(config.ranker.learning_rate)), optax.adam(float(config.directions_learning_rate))


def init(config, gen: Generator, initial: Directions, image_shape) -> callable:
  """`init_fn(rng) -> State`: D from the initialisation, ranker from random init, fresh Adam states."""
  ranker = ranker_module(config)
  ranker_opt, directions_opt = optimizers(config)
  matrix = jnp.asarray(initial.matrix)

  def init_fn(rng):
    variables = resnet_lib.init_resnet(rng, ranker, in_channels=image_shape[-1])
    return State(step=jnp.zeros((), jnp.int32), directions=matrix, ranker_params=variables["params"],
                 ranker_batch_stats=variables["batch_stats"],
                 directions_opt_state=directions_opt.init(matrix),
                 ranker_opt_state=ranker_opt.init(variables["params"]))

  return init_fn


def refined_directions(state: State, initial: Directions, config) -> Directions:
  matrix = np.asarray(orthonormalize(jnp.asarray(jax.device_get(state.directions))))
  return Directions(matrix, space=initial.space, layers=initial.layers, meta=dict(
      method="sre", init=initial.meta, steps=int(jax.device_get(state.step)), shift_range=float(config.shift_range),
      batch_size=int(config.batch_size), source=initial.meta.get("source", "")))


def train(config, workdir: str) -> dict[str, Any]:
  gen = _common.load_generator(config)
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  seed = int(config.seed)
  initial = initial_directions(config, gen, jax.random.key(seed + 7))
  w_avg = None
  if initial.space != "z" and config.truncation is not None and float(config.truncation) != 1.0:
    w_avg = spaces.mean_w(gen, jax.random.key(seed + 11), int(config.truncation_samples))
  train_step = make_train_step(config, gen, initial, mesh, w_avg)
  traversal_z = gen.sample_z(jax.random.key(seed + 13), 1)

  def image_fn(state):
    d = refined_directions(state, initial, config)
    return {"traversal": viz.traversal_grid(gen, d, traversal_z, **_common.traversal_kwargs(config, gen, d))}

  os.makedirs(workdir, exist_ok=True)
  initial.save(os.path.join(workdir, "init_directions.npz"))
  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=init(config, gen, initial, gen.image_shape),
                   train_step=train_step, images_per_step=2 * int(config.batch_size), image_fn=image_fn)
  refined = refined_directions(state, initial, config)
  outputs = _common.write_directions(workdir, gen, refined, config,
                                     comparison=((f"{config.init.method} (init)", initial), ("SRE", refined)))
  save_ranker(workdir, config, state)
  if config.evaluation.enabled:
    outputs["metrics"] = evaluate(config, workdir, gen=gen)
  return outputs


def save_ranker(workdir: str, config, state: State) -> str:
  path = os.path.join(workdir, "ranker.msgpack")
  payload = flax.serialization.to_bytes(
      {"params": jax.device_get(state.ranker_params), "batch_stats": jax.device_get(state.ranker_batch_stats)})
  with open(path + ".tmp", "wb") as f:
    f.write(payload)
  os.replace(path + ".tmp", path)
  return path


def load_ranker(workdir: str, config, image_shape) -> tuple[resnet_lib.ResNet, Any]:
  module = ranker_module(config)
  template = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, *image_shape)), train=False))
  with open(os.path.join(workdir, "ranker.msgpack"), "rb") as f:
    variables = flax.serialization.from_bytes(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template), f.read())
  return module, variables


def evaluate(config, workdir: str, gen: Generator | None = None) -> dict[str, Any]:
  """Disentanglement of the initial and refined directions (encoder protocol), written to metrics.json."""
  from ganlatent_jax import data
  from ganlatent_jax.metrics import encoder_protocol

  gen = gen or _common.load_generator(config)
  ev = config.evaluation
  dataset = data.get_dataset(ev.dataset)
  protocol = encoder_protocol.ProtocolConfig(
      num_train=int(ev.num_train), num_val=int(ev.num_val), steps=int(ev.encoder_steps),
      batch_size=int(ev.batch_size), truncation=config.truncation,
      mig_num_train=int(ev.metric_samples), dci_num_train=int(ev.metric_samples),
      dci_num_test=int(ev.metric_samples) // 2, factor_vae_num_train=int(ev.batch_metric_points),
      factor_vae_num_eval=int(ev.batch_metric_points) // 2, factor_vae_num_variance_estimate=int(ev.metric_samples),
      beta_vae_num_train=int(ev.batch_metric_points), beta_vae_num_eval=int(ev.batch_metric_points) // 2,
      metrics=tuple(ev.metrics))
  results: dict[str, Any] = {"evaluation": ev.to_dict(), "seed": int(config.seed)}
  # Without include_init (e.g. ablations that share one initialisation) only the refined directions are scored.
  for name in ("init_directions", "directions") if ev.include_init else ("directions",):
    d = directions_lib.load(os.path.join(workdir, f"{name}.npz"))
    results[name] = encoder_protocol.evaluate_directions(
        gen, d, dataset, protocol, jax.random.key(int(config.seed) + 17), np.random.RandomState(int(config.seed)))
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  return results
