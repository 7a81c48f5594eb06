"""LD (Voynov & Babenko, 2020: "Unsupervised Discovery of Interpretable Directions in the GAN Latent Space").

  python -m ganlatent_jax.main --config=configs/ld_dsprites.py --workdir=/tmp/ld [--config.generator=PATH]

Every step, for a batch of z from the prior: a direction index k ~ U{0..K−1} and a magnitude ε = scale·U(−1, 1)
(or scale·N(0, 1)) pushed away from 0 (0 < |ε| < min_shift becomes ±min_shift); the deformator maps the basis shift
ε·e_k to a latent shift; the frozen generator renders G(z) and G(z + shift); the reconstructor (shift predictor) sees
the pair and predicts k (logits) and ε. Loss = label_weight·CE(k) + shift_weight·mean|ε̂ − ε|, one gradient for both
networks, one Adam per network ('id'/'random' deformators have no parameters, so only the reconstructor learns).

The generator is frozen (its variables are an argument of the jitted step, never in the train state). The outer loop
(resume, per-step RNG, NaN stop, TensorBoard, checkpoints) is `training.loop.run`. At the end: `results.json` with
the reconstructor's accuracy on fresh shifts (eval mode, like upstream `validate_classifier`), and for linear-type
deformators `directions.npz` + `images/traversal.png` (`methods._common.write_directions`); an 'fc' deformator has no
direction matrix, so only its traversal picture (rendered through the deformator itself) is written. `evaluate`
(and `train` with config.evaluation.enabled) writes metrics.json: the accuracy, and for linear-type deformators the
encoder protocol's scores of the directions.
Class-conditional generators (BigGAN, configs/ld_imagenet.py): every example draws its class from
config.conditional.classes, shared by the image and its shifted twin; z is the generator's truncated noise.
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

from ganlatent_jax import parallel, viz
from ganlatent_jax.directions import ld_import
from ganlatent_jax.generators import sampling
from ganlatent_jax.methods import _common
from ganlatent_jax.nets.ld import (DEFORMATOR_TYPES, LINEAR_DEFORMATOR_TYPES, LatentDeformator, LeNetShiftPredictor,
                                   ResNetShiftPredictor)
from ganlatent_jax.training import loop

SHIFT_PREDICTORS = ("lenet", "resnet")
SHIFT_DISTRIBUTIONS = ("uniform", "normal")
LD_SPACES = ("z", "w")
# key(config.seed + offset) of each random draw of a run (fixed: the README's LD rows were drawn from them).
STREAMS = dict(pictures=0, preview=0, w_avg=1, accuracy=2, evaluation=17)


@flax.struct.dataclass
class State:
  step: jax.Array
  params: Any         # {'deformator': ..., 'predictor': ...}
  batch_stats: Any    # their non-trained collections: {'deformator': {'batch_stats' ('fc') | 'constants'
                      # ('random')}, 'predictor': {'batch_stats'}}
  opt_state: Any      # {'deformator': Adam state, 'predictor': Adam state}


class Batch(NamedTuple):
  z: jax.Array              # (B, latent_dim)
  target: jax.Array         # (B,) direction indices
  shifts: jax.Array         # (B,) magnitudes ε
  basis_shift: jax.Array    # (B, K) = ε·e_k
  classes: jax.Array        # (B,) class ids of a class-conditional generator (zeros otherwise)


def check_config(config) -> None:
  """Config values LD reads, checked before anything is loaded or written."""
  _common.check_loop(config)
  _common.check_non_negative(config, "num_directions", "max_latent_dim", "shift_scale", "min_shift",
                             "label_weight", "shift_weight")
  _common.check_positive(config, "evaluation.accuracy_batches", "traversal.steps", "traversal.num_samples")
  for key in ("deformator.learning_rate", "shift_predictor.learning_rate"):
    if not float(_common._lookup(config, key)) > 0:
      raise ValueError(f"config.{key}={_common._lookup(config, key)!r} must be > 0")
  if config.shift_distribution not in SHIFT_DISTRIBUTIONS:
    raise ValueError(f"config.shift_distribution={config.shift_distribution!r}; expected one of {SHIFT_DISTRIBUTIONS}")
  if config.deformator.type not in DEFORMATOR_TYPES:
    raise ValueError(f"config.deformator.type={config.deformator.type!r}; known: {DEFORMATOR_TYPES}")
  if config.shift_predictor.kind not in SHIFT_PREDICTORS:
    raise ValueError(f"config.shift_predictor.kind={config.shift_predictor.kind!r}; expected one of "
                     f"{SHIFT_PREDICTORS}")


# ---------------------------------------------------------------------------------------------------------------
# Shifts and networks.

def make_shifts(rng: jax.Array, batch: int, num_directions: int, scale: float = 6.0, min_shift: float = 0.5,
                distribution: str = "uniform") -> tuple[jax.Array, jax.Array, jax.Array]:
  """Upstream `Trainer.make_shifts`: (target indices (B,), magnitudes (B,), basis shifts (B, K))."""
  index_key, shift_key = jax.random.split(rng)
  target = jax.random.randint(index_key, (batch,), 0, num_directions)
  if distribution == "uniform":
    shifts = jax.random.uniform(shift_key, (batch,), minval=-1.0, maxval=1.0)
  elif distribution == "normal":
    shifts = jax.random.normal(shift_key, (batch,))
  else:
    raise ValueError(f"config.shift_distribution={distribution!r}; expected one of {SHIFT_DISTRIBUTIONS}")
  shifts = scale * shifts
  # Tiny shifts are indistinguishable from no shift: upstream moves them to ±min_shift (0 itself is left alone).
  shifts = jnp.where((shifts > 0) & (shifts < min_shift), min_shift, shifts)
  shifts = jnp.where((shifts < 0) & (shifts > -min_shift), -min_shift, shifts)
  basis_shift = jax.nn.one_hot(target, num_directions, dtype=jnp.float32) * shifts[:, None]
  return target, shifts, basis_shift


class Networks(NamedTuple):
  deformator: LatentDeformator
  predictor: Any
  space: str
  latent_width: int          # size of the space the deformator shifts (z or w)
  num_directions: int


def _space(config, gen) -> str:
  space = config.get("space", "z")
  if space not in LD_SPACES:
    raise ValueError(f"config.space={space!r}; LD shifts z or w: one of {LD_SPACES}")
  if space not in gen.info.latent_spaces:
    raise ValueError(f"config.space={space!r} but a {gen.info.family} generator has only {gen.info.latent_spaces}")
  return space


def make_networks(config, gen) -> Networks:
  """The deformator and reconstructor for `gen`, sizes from the config (0 = the latent size, as upstream)."""
  space = _space(config, gen)
  width = gen.info.w_dim if space == "w" else gen.latent_dim
  k = int(config.num_directions) or width
  out_dim = int(config.max_latent_dim) or width
  if out_dim > width:
    raise ValueError(f"config.max_latent_dim={out_dim} exceeds the {space} size {width}")
  kind = config.deformator.type
  if kind not in DEFORMATOR_TYPES:
    raise ValueError(f"config.deformator.type={kind!r}; known: {DEFORMATOR_TYPES}")
  if kind in ("fc", "ortho", "id") and k != out_dim:
    raise ValueError(f"a {kind!r} deformator needs config.num_directions == config.max_latent_dim (0 = latent size "
                     f"{width}), got {k} and {out_dim}")
  deformator = LatentDeformator(type=kind, input_dim=k, out_dim=out_dim, shift_dim=width,
                                inner_dim=int(config.deformator.inner_dim))
  height, _, channels = gen.image_shape
  sp = config.shift_predictor
  if sp.kind == "lenet":
    if height < 32:
      raise ValueError(f"the LeNet shift predictor needs images of at least 32×32, the generator makes {height}")
    predictor = LeNetShiftPredictor(num_directions=k, channels=channels, width=int(sp.lenet_width))
  elif sp.kind == "resnet":
    r = sp.resnet
    predictor = ResNetShiftPredictor(num_directions=k, stem_width=int(r.stem_width),
                                     stage_widths=tuple(int(w) for w in r.stage_widths),
                                     blocks_per_stage=tuple(int(d) for d in r.blocks_per_stage))
  else:
    raise ValueError(f"config.shift_predictor.kind={sp.kind!r}; expected one of {SHIFT_PREDICTORS}")
  return Networks(deformator, predictor, space, width, k)


def _split_variables(variables) -> tuple[Any, Any]:
  variables = dict(variables)
  return variables.pop("params", {}), variables


def _random_init(kind: str, params, rng):
  """Upstream `deformator_random_init` (run_train.py's default): 'linear'/'proj' weights eye + 0.1·N, 'ortho' A ~ N."""
  if kind in ("linear", "proj"):
    kernel = params["linear"]["kernel"]
    return {**params, "linear": {**params["linear"],
                                 "kernel": kernel + 0.1 * jax.random.normal(rng, kernel.shape, kernel.dtype)}}
  if kind == "ortho":
    return {**params, "log_mat_half": jax.random.normal(rng, params["log_mat_half"].shape)}
  return params


# ---------------------------------------------------------------------------------------------------------------
# The step.

class Parts(NamedTuple):
  """What `make` builds besides (init_fn, train_step), for evaluation and pictures."""
  nets: Networks
  accuracy_step: Any         # jitted (sampler, state, rng) -> {'accuracy', 'shift_error'} (eval mode)
  sample_batch: Any          # (sampler, rng) -> Batch (traced inside the steps)
  image_pair: Any            # (sampler, batch, latent shift) -> (G(z), G(z + shift)), one class per pair


def make(config, sampler: sampling.Sampler, mesh):
  """(init_fn, train_step, parts): `init_fn(rng) -> State`; `train_step(state, rng) -> (state, metrics)` jitted once
  with the state donated (the sampler — frozen generator, w̄ — is its non-donated first argument)."""
  check_config(config)
  parallel.check_batch_size(config.batch_size, mesh)
  gen = sampler.gen
  nets = make_networks(config, gen)
  deformator, predictor, space = nets.deformator, nets.predictor, nets.space
  opts = {"deformator": optax.adam(float(config.deformator.learning_rate)),
          "predictor": optax.adam(float(config.shift_predictor.learning_rate))}
  batch, k = int(config.batch_size), nets.num_directions
  batch_sharding = parallel.data_sharding(mesh)
  replicated = parallel.replicated_sharding(mesh)
  example_image = jnp.zeros((1, *gen.image_shape), jnp.float32)

  def init_fn(rng):
    d_key, perturb_key, p_key = jax.random.split(rng, 3)
    d_params, d_state = _split_variables(deformator.init({"params": d_key}, jnp.zeros((1, k), jnp.float32)))
    if config.deformator.random_init:
      d_params = _random_init(deformator.type, d_params, perturb_key)
    p_params, p_state = _split_variables(predictor.init(p_key, example_image, example_image))
    params = {"deformator": d_params, "predictor": p_params}
    return State(step=jnp.zeros((), jnp.int32), params=params,
                 batch_stats={"deformator": d_state, "predictor": p_state},
                 opt_state={name: opt.init(params[name]) for name, opt in opts.items()})

  def sample_batch(s: sampling.Sampler, rng) -> Batch:
    z_key, shift_key = jax.random.split(rng)   # as before conditioning existed: unconditional runs reproduce
    z = s.z(z_key, batch)
    target, shifts, basis = make_shifts(shift_key, batch, k, float(config.shift_scale), float(config.min_shift),
                                        config.shift_distribution)
    classes = s.class_ids(jax.random.fold_in(rng, 1), batch)
    classes = jnp.zeros((batch,), jnp.int32) if classes is None else classes
    return Batch(*(jax.lax.with_sharding_constraint(a, batch_sharding) for a in (z, target, shifts, basis, classes)))

  def image_pair(s: sampling.Sampler, data: Batch, shift):
    latents = s.to_space(data.z, space)
    classes = data.classes if s.conditional else None
    return s.render(latents, space, classes), s.render(latents + shift, space, classes)

  def step_fn(s: sampling.Sampler, state: State, rng):
    data = sample_batch(s, rng)

    def loss_fn(params):
      shift, d_updates = deformator.apply({"params": params["deformator"], **state.batch_stats["deformator"]},
                                          data.basis_shift, train=True, mutable=["batch_stats"])
      images, shifted = image_pair(s, data, shift)
      (logits, shift_prediction), p_updates = predictor.apply(
          {"params": params["predictor"], **state.batch_stats["predictor"]}, images, shifted, train=True,
          mutable=["batch_stats"])
      label_loss = config.label_weight * jnp.mean(
          optax.softmax_cross_entropy_with_integer_labels(logits, data.target))
      shift_loss = config.shift_weight * jnp.mean(jnp.abs(shift_prediction - data.shifts))
      accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == data.target).astype(jnp.float32))
      metrics = {"loss": label_loss + shift_loss, "label_loss": label_loss, "shift_loss": shift_loss,
                 "accuracy": accuracy}
      return label_loss + shift_loss, (metrics, d_updates, p_updates)

    (_, (metrics, d_updates, p_updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    params, opt_state = {}, {}
    for name, opt in opts.items():
      updates, opt_state[name] = opt.update(grads[name], state.opt_state[name], state.params[name])
      params[name] = optax.apply_updates(state.params[name], updates)
    batch_stats = {"deformator": {**state.batch_stats["deformator"], **d_updates},
                   "predictor": {**state.batch_stats["predictor"], **p_updates}}
    return State(step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state), metrics

  def accuracy_fn(s: sampling.Sampler, state: State, rng):
    data = sample_batch(s, rng)
    shift = deformator.apply(deformator_variables(state), data.basis_shift)
    images, shifted = image_pair(s, data, shift)
    logits, shift_prediction = predictor.apply({"params": state.params["predictor"],
                                                **state.batch_stats["predictor"]}, images, shifted)
    return {"accuracy": jnp.mean((jnp.argmax(logits, axis=-1) == data.target).astype(jnp.float32)),
            "shift_error": jnp.mean(jnp.abs(shift_prediction - data.shifts))}

  # The state and the sampler (frozen generator, w̄) are replicated, the batch drawn inside is split over 'data';
  # fixed shardings in and out, so each function compiles once.
  train_step = jax.jit(step_fn, in_shardings=(replicated,) * 3, out_shardings=(replicated, replicated),
                       donate_argnums=(1,))
  accuracy_step = jax.jit(accuracy_fn, in_shardings=(replicated,) * 3, out_shardings=replicated)
  return init_fn, functools.partial(train_step, sampler), Parts(nets, accuracy_step, sample_batch, image_pair)


def deformator_variables(state: State):
  return {"params": state.params["deformator"], **state.batch_stats["deformator"]}


def reconstructor_accuracy(parts: Parts, state: State, sampler: sampling.Sampler, rng: jax.Array,
                           num_batches: int) -> dict:
  """Mean eval-mode accuracy (and |ε̂ − ε|) over `num_batches` fresh batches (upstream uses 100)."""
  results = [jax.device_get(parts.accuracy_step(sampler, state, jax.random.fold_in(rng, i)))
             for i in range(num_batches)]
  return {name: float(np.mean([r[name] for r in results])) for name in results[0]}


# ---------------------------------------------------------------------------------------------------------------
# Pictures.

@functools.partial(jax.jit, static_argnames=("deformator", "space"))
def _deformed_images(sampler, deformator, d_variables, latents, basis_shift, space):
  base = sampler.to_space(latents, space)
  return sampler.render(base + deformator.apply(d_variables, basis_shift), space,
                        sampler.picture_kwargs().get("class_vector"))


def deformator_traversal(sampler: sampling.Sampler, deformator: LatentDeformator, d_variables, z, *, space: str,
                         span: float, steps: int, num_directions: int, batch_size: int = 32) -> np.ndarray:
  """A traversal picture through the deformator itself (any type, 'fc' included): rows = direction × sample,
  columns = ε from −span to span (a class-conditional generator: its first class)."""
  z = jnp.asarray(z)
  n, k_count = z.shape[0], min(num_directions, deformator.input_dim)
  shifts = np.linspace(-span, span, steps, dtype=np.float32)
  basis = np.zeros((k_count, n, steps, deformator.input_dim), np.float32)
  for k in range(k_count):
    basis[k, :, :, k] = shifts[None, :]
  basis = jnp.asarray(basis.reshape(-1, deformator.input_dim))
  latents = jnp.repeat(jnp.tile(z, (k_count, 1)), steps, axis=0)
  images = np.concatenate([np.asarray(_deformed_images(sampler, deformator, d_variables, latents[i:i + batch_size],
                                                       basis[i:i + batch_size], space))
                           for i in range(0, latents.shape[0], batch_size)])
  images = viz.to_display(images, sampler.gen.info.output_range)
  return viz.image_grid(images.reshape(k_count * n, steps, *images.shape[1:]))


# ---------------------------------------------------------------------------------------------------------------
# Entry points.

def setup(config):
  """(mesh, sampler replicated over the mesh, init_fn, train_step, parts)."""
  check_config(config)
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  gen = _common.load_generator(config)
  sampler = jax.device_put(_common.make_sampler(config, gen, STREAMS), parallel.replicated_sharding(mesh))
  init_fn, train_step, parts = make(config, sampler, mesh)
  return mesh, sampler, init_fn, train_step, parts


def _directions(config, parts: Parts, state: State, sampler: sampling.Sampler):
  nets = parts.nets
  meta = dict(generator=config.generator, step=int(jax.device_get(state.step)), **sampler.record())
  return ld_import.directions_from_deformator(nets.deformator, jax.device_get(deformator_variables(state)),
                                              space=nets.space, meta=meta)


def write_outputs(config, workdir: str, sampler: sampling.Sampler, parts: Parts, state: State) -> dict[str, str]:
  """directions.npz + traversal PNG (linear types) or the deformator's own traversal PNG ('fc')."""
  nets = parts.nets
  shown = min(int(config.traversal.max_directions) or nets.num_directions, nets.num_directions)
  rng = _common.stream(config, STREAMS, "pictures")
  if nets.deformator.type in LINEAR_DEFORMATOR_TYPES:
    return _common.write_directions(workdir, sampler, _directions(config, parts, state, sampler), config, rng,
                                    max_rendered=shown)
  latents = sampler.z(rng, int(config.traversal.num_samples))
  logging.info("an %r deformator is non-linear: it has no direction matrix, so no directions.npz is written",
               nets.deformator.type)
  path = os.path.join(workdir, "images", "traversal.png")
  grid = deformator_traversal(sampler, nets.deformator, jax.device_get(deformator_variables(state)), latents,
                              space=nets.space, span=float(config.traversal.span), steps=int(config.traversal.steps),
                              num_directions=shown)
  viz.save_png(path, grid)
  return {"traversal": path}


def train(config, workdir: str) -> dict[str, str]:
  """Trains the deformator and reconstructor; writes results.json, the directions and pictures (see the module
  docstring) and, with config.evaluation.enabled, metrics.json. Returns the paths written."""
  mesh, sampler, init_fn, train_step, parts = setup(config)
  nets = parts.nets
  preview = sampler.z(_common.stream(config, STREAMS, "preview"), 1)

  def image_fn(state):
    return {"traversal": deformator_traversal(
        sampler, nets.deformator, deformator_variables(state), preview, space=nets.space,
        span=float(config.traversal.span), steps=int(config.traversal.steps),
        num_directions=min(nets.num_directions, 8))}

  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=init_fn, train_step=train_step,
                   images_per_step=2 * int(config.batch_size), image_fn=image_fn)
  accuracy = reconstructor_accuracy(parts, state, sampler, _common.stream(config, STREAMS, "accuracy"),
                                    int(config.evaluation.accuracy_batches))
  outputs = write_outputs(config, workdir, sampler, parts, state)
  outputs["results"] = os.path.join(workdir, "results.json")
  linear = nets.deformator.type in LINEAR_DEFORMATOR_TYPES
  _common.write_json(outputs["results"], {
      "method": "ld", "generator": config.generator, "deformator": nets.deformator.type,
      "shift_predictor": config.shift_predictor.kind, "space": nets.space, "num_directions": nets.num_directions,
      "step": int(jax.device_get(state.step)), "chance_accuracy": 1.0 / nets.num_directions, **accuracy,
      "sampling": sampler.record(), "outputs": dict(outputs),
      **({} if linear else {
          "note": f"an {nets.deformator.type!r} deformator is non-linear: no direction matrix, no directions.npz; "
                  f"images/traversal.png is rendered through the deformator"})})
  logging.info("LD: reconstructor accuracy %.3f (chance %.3f)", accuracy["accuracy"], 1.0 / nets.num_directions)
  if config.evaluation.enabled:
    _metrics(config, workdir, sampler, parts, state, accuracy)
    outputs["metrics"] = os.path.join(workdir, "metrics.json")
  return outputs


def _metrics(config, workdir, sampler, parts: Parts, state: State, accuracy: dict) -> dict[str, Any]:
  extra = {"step": int(jax.device_get(state.step)), "reconstructor": accuracy}
  if config.evaluation.enabled and parts.nets.deformator.type in LINEAR_DEFORMATOR_TYPES:
    return _common.evaluate_directions(config, workdir, sampler, [("directions", _common.load_directions(workdir))],
                                       _common.stream(config, STREAMS, "evaluation"), extra=extra)
  results = {"seed": int(config.seed), **extra}
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  return results


def evaluate(config, workdir: str) -> dict[str, Any]:
  """The latest checkpoint's reconstructor accuracy on fresh shifts (eval mode) and, with
  config.evaluation.enabled and a linear-type deformator, the encoder protocol's scores of its directions;
  written to metrics.json."""
  mesh, sampler, init_fn, _, parts = setup(config)
  state = loop.restore_latest(init_fn, config, mesh, workdir, "LD checkpoint")
  accuracy = reconstructor_accuracy(parts, state, sampler, _common.stream(config, STREAMS, "accuracy"),
                                    int(config.evaluation.accuracy_batches))
  return _metrics(config, workdir, sampler, parts, state, accuracy)
