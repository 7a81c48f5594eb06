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

import functools
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganlatent_jax import directions as directions_lib
from ganlatent_jax import io, parallel, viz
from ganlatent_jax.directions.base import Directions, orthonormalize, shift_latents
from ganlatent_jax.generators import sampling
from ganlatent_jax.methods import _common
from ganlatent_jax.metrics import generated_domain
from ganlatent_jax.nets import resnet as resnet_lib
from ganlatent_jax.training import loop

INIT_METHODS = ("sefa", "ganspace", "random", "file")
# Where a training shift D·ε enters relative to W truncation (see shift_scale); the first is the default.
SHIFT_ORDERS = ("after_truncation", "before_truncation")
RANKER_FILE = "ranker.msgpack"
# The run's RNG streams: key(config.seed + offset). Fixed: the README's SRE table was drawn from them.
STREAMS = dict(pictures=0, init=7, w_avg=11, preview=13, evaluation=17)


@flax.struct.dataclass
class State:
  step: jax.Array
  params: Any           # {'directions': raw D (latent_dim × K), used as orthonormalize(D); 'ranker': ResNet params}
  batch_stats: Any      # the ranker's batch-norm statistics
  opt_state: Any        # {'directions': Adam state, 'ranker': Adam state}


def check_config(config) -> None:
  """Config values the method reads, checked before anything is loaded or written."""
  _common.check_loop(config)
  _common.check_positive(config, "num_directions", "truncation_samples", "ranker.width")
  batch = int(config.batch_size)
  if batch % 2:
    raise ValueError(f"config.batch_size={batch} must be even (pairs of shifted images)")
  if not float(config.shift_range) > 0:
    raise ValueError(f"config.shift_range={config.shift_range!r} must be > 0 (ε ~ U(−e, e))")
  for key in ("directions.learning_rate", "ranker.learning_rate"):
    if not float(_common._lookup(config, key)) > 0:
      raise ValueError(f"config.{key}={_common._lookup(config, key)!r} must be > 0")
  if config.init.method not in INIT_METHODS:
    raise ValueError(f"config.init.method={config.init.method!r}; expected one of {INIT_METHODS}")
  if config.get("shift_order", SHIFT_ORDERS[0]) not in SHIFT_ORDERS:
    raise ValueError(f"config.shift_order={config.shift_order!r}; expected one of {SHIFT_ORDERS}")


def shift_scale(config, sampler: sampling.Sampler, space: str) -> float:
  """The factor on D·ε of a training shift. 'after_truncation' (ours): w̄ + ψ(w − w̄) + D·ε, factor 1;
  'before_truncation' (upstream's train_ours): w̄ + ψ(w + D·ε − w̄) = w̄ + ψ(w − w̄) + ψ·D·ε, factor ψ — the same
  images as shifting before truncating, since truncation is affine. Only W shifts are truncated."""
  order = config.get("shift_order", SHIFT_ORDERS[0])
  if order == "before_truncation" and space in ("w", "w+") and sampler.truncation not in (None, 1.0):
    return float(sampler.truncation)
  return 1.0


def ranker_module(config) -> resnet_lib.ResNet:
  """ResNet-18 (3→stem conv as torchvision) with a K-way head; widths from config.ranker.width (64 = standard)."""
  width = int(config.ranker.width)
  return resnet_lib.ResNet(stem_width=width, stage_widths=(width, 2 * width, 4 * width, 8 * width),
                           heads=(("scales", int(config.num_directions)),))


def initial_directions(config, gen, rng: jax.Array) -> Directions:
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
    if k > dim:
      raise ValueError(f"config.num_directions={k} exceeds the {space} size {dim}: orthonormal directions need K <= {dim}")
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


def optimizers(config) -> dict[str, optax.GradientTransformation]:
  return {"ranker": optax.adam(float(config.ranker.learning_rate)),
          "directions": optax.adam(float(config.directions.learning_rate))}


def make(config, sampler: sampling.Sampler, initial: Directions, mesh):
  """(init_fn, train_step): `init_fn(rng) -> State` (D from `initial`, a fresh ranker and Adam states) and
  `train_step(state, rng) -> (state, metrics)`, jitted once with the state donated; the sampler (generator, w̄) is
  its non-donated first argument."""
  check_config(config)
  batch = int(config.batch_size)
  parallel.check_batch_size(batch, mesh)
  half, k, e = batch // 2, int(config.num_directions), float(config.shift_range)
  space, layers = initial.space, initial.layers
  scale = shift_scale(config, sampler, space)
  ranker = ranker_module(config)
  opts = optimizers(config)
  sharding = parallel.data_sharding(mesh)
  matrix = jnp.asarray(initial.matrix)
  in_channels = sampler.gen.image_shape[-1]

  def init_fn(rng):
    variables = resnet_lib.init_resnet(rng, ranker, in_channels=in_channels)
    params = {"directions": matrix, "ranker": variables["params"]}
    return State(step=jnp.zeros((), jnp.int32), params=params, batch_stats=variables["batch_stats"],
                 opt_state={name: opt.init(params[name]) for name, opt in opts.items()})

  def images_of(s: sampling.Sampler, d_raw, z_half, classes, eps):
    base = s.to_space(z_half, space)
    base = jax.lax.with_sharding_constraint(jnp.concatenate([base, base], axis=0), sharding)
    classes = None if classes is None else jnp.concatenate([classes, classes])
    return s.render(shift_latents(base, orthonormalize(d_raw), scale * eps, layers), space, classes)

  def draw(s: sampling.Sampler, rng):
    z_rng, e_rng = jax.random.split(rng)
    z = s.z(z_rng, half)
    classes = s.class_ids(jax.random.fold_in(rng, 1), half)   # class-conditional generators only
    eps = jax.random.uniform(e_rng, (batch, k), minval=-e, maxval=e)
    return z, classes, jax.lax.with_sharding_constraint(eps, sharding)

  def step(s: sampling.Sampler, state: State, rng):
    ranker_rng, directions_rng = jax.random.split(rng)

    # (a) ranker update: images are constants.
    z, classes, eps = draw(s, ranker_rng)
    images = jax.lax.stop_gradient(images_of(s, state.params["directions"], z, classes, eps))

    def ranker_loss(params):
      out, updates = ranker.apply({"params": params, "batch_stats": state.batch_stats}, images, train=True,
                                  mutable=["batch_stats"])
      loss, accuracy = _bce_rank_loss(out["scales"], eps[:half], eps[half:])
      return loss, (updates["batch_stats"], accuracy)

    (r_loss, (batch_stats, r_acc)), r_grads = jax.value_and_grad(ranker_loss, has_aux=True)(state.params["ranker"])
    r_updates, ranker_opt_state = opts["ranker"].update(r_grads, state.opt_state["ranker"], state.params["ranker"])
    ranker_params = optax.apply_updates(state.params["ranker"], r_updates)

    # (b) directions update: gradient through the frozen generator to D only; ranker in eval mode.
    z, classes, eps = draw(s, directions_rng)
    frozen = {"params": ranker_params, "batch_stats": batch_stats}

    def directions_loss(d_raw):
      out = ranker.apply(frozen, images_of(s, d_raw, z, classes, eps), train=False)
      return _bce_rank_loss(out["scales"], eps[:half], eps[half:])

    d_raw = state.params["directions"]
    (d_loss, d_acc), d_grads = jax.value_and_grad(directions_loss, has_aux=True)(d_raw)
    d_updates, directions_opt_state = opts["directions"].update(d_grads, state.opt_state["directions"], d_raw)
    new_directions = optax.apply_updates(d_raw, d_updates)
    q = orthonormalize(new_directions)
    metrics = {"ranker_loss": r_loss, "ranker_accuracy": r_acc, "directions_loss": d_loss,
               "directions_accuracy": d_acc,
               "orthonormality_error": jnp.max(jnp.abs(q.T @ q - jnp.eye(k)))}
    return State(step=state.step + 1, params={"directions": new_directions, "ranker": ranker_params},
                 batch_stats=batch_stats,
                 opt_state={"directions": directions_opt_state, "ranker": ranker_opt_state}), metrics

  # Outputs replicated like the loop's initial state, so step 2 reuses step 1's executable instead of compiling
  # again for whatever sharding XLA would have chosen.
  jitted = jax.jit(step, donate_argnums=(1,), out_shardings=parallel.replicated_sharding(mesh))
  return init_fn, functools.partial(jitted, sampler)


def direction_matrix(raw_directions) -> np.ndarray:
  """The D that SRE's parameter stands for: the orthonormalisation of params['directions'] (SRE optimises an
  unconstrained matrix and orthonormalises it in every step)."""
  return np.asarray(orthonormalize(jnp.asarray(jax.device_get(raw_directions))))


def refined_directions(state: State, initial: Directions, config) -> Directions:
  matrix = direction_matrix(state.params["directions"])
  return Directions(matrix, space=initial.space, layers=initial.layers, meta=dict(
      method="sre", init=initial.meta, steps=int(jax.device_get(state.step)), shift_range=float(config.shift_range),
      batch_size=int(config.batch_size), source=initial.meta.get("source", "")))


def train(config, workdir: str) -> dict[str, str]:
  """Refines the initial directions; writes init_directions.npz, directions.npz, ranker.msgpack, the pictures and
  (config.evaluation.enabled) metrics.json. Returns the paths written."""
  check_config(config)
  gen = _common.load_generator(config)
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  sampler = _common.make_sampler(config, gen, STREAMS, int(config.truncation_samples))
  initial = initial_directions(config, gen, _common.stream(config, STREAMS, "init"))
  init_fn, train_step = make(config, sampler, initial, mesh)
  preview_z = sampler.z(_common.stream(config, STREAMS, "preview"), 1)

  def image_fn(state):
    d = refined_directions(state, initial, config)
    return {"traversal": viz.traversal_grid(gen, d, preview_z, **_common.traversal_kwargs(config, sampler, d))}

  # on an oracle, TensorBoard's recovery/* curves say whether D moves towards the true directions while it trains
  trace = generated_domain.recovery_trace(gen, initial)
  log_fn = None if trace is None else (lambda state: trace(refined_directions(state, initial, config)))

  io.makedirs(workdir)
  initial.save(os.path.join(workdir, "init_directions.npz"))
  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=init_fn, train_step=train_step,
                   images_per_step=2 * int(config.batch_size), image_fn=image_fn, log_fn=log_fn)
  refined = refined_directions(state, initial, config)
  outputs = _common.write_directions(workdir, sampler, refined, config, _common.stream(config, STREAMS, "pictures"),
                                     comparison=((f"{config.init.method} (init)", initial), ("SRE", refined)))
  outputs.update(init_directions=os.path.join(workdir, "init_directions.npz"), ranker=save_ranker(workdir, state))
  if config.evaluation.enabled:
    evaluate(config, workdir, sampler=sampler)
    outputs["metrics"] = os.path.join(workdir, "metrics.json")
  return outputs


def save_ranker(workdir: str, state: State) -> str:
  path = os.path.join(workdir, RANKER_FILE)
  io.save_variables(path, {"params": jax.device_get(state.params["ranker"]),
                           "batch_stats": jax.device_get(state.batch_stats)})
  return path


def load_ranker(workdir: str, config) -> tuple[resnet_lib.ResNet, Any]:
  """(ranker module, its variables) of a finished run."""
  path = os.path.join(workdir, RANKER_FILE)
  io.wait_for_writer(RANKER_FILE)
  if not io.exists(path):
    raise FileNotFoundError(f"{path} does not exist: not a finished SRE run")
  return ranker_module(config), io.load_variables(path)


def evaluate(config, workdir: str, sampler: sampling.Sampler | None = None) -> dict[str, Any]:
  """Disentanglement of the initial and refined directions (encoder protocol), written to metrics.json."""
  sampler = sampler or _common.make_sampler(config, _common.load_generator(config), STREAMS,
                                            int(config.truncation_samples))
  # Without include_init (e.g. ablations that share one initialisation) only the refined directions are scored.
  names = ("init_directions", "directions") if config.evaluation.include_init else ("directions",)
  return _common.evaluate_directions(config, workdir, sampler,
                                     [(name, _common.load_directions(workdir, name)) for name in names],
                                     _common.stream(config, STREAMS, "evaluation"))

