"""LD (Voynov & Babenko, 2020: "Unsupervised Discovery of Interpretable Directions in the GAN Latent Space").

  python -m ganlatent_jax.main --config=configs/ld_sngan.py --workdir=/tmp/ld --config.generator=PATH

Every step, for a batch of z from the prior: a direction index k ~ U{0..K−1} and a magnitude ε = scale·U(−1, 1)
(or scale·N(0, 1)) pushed away from 0 (0 < |ε| < min_shift becomes ±min_shift); the deformator maps the basis shift
ε·e_k to a latent shift; the frozen generator renders G(z) and G(z + shift); the reconstructor (shift predictor) sees
the pair and predicts k (logits) and ε. Loss = label_weight·CE(k) + shift_weight·mean|ε̂ − ε|, one gradient for both
networks, one Adam per network ('id'/'random' deformators have no parameters, so only the reconstructor learns).

The generator is frozen (its variables are an argument of the jitted step, never in the train state). The outer loop
(resume, per-step RNG, NaN stop, TensorBoard, checkpoints) is `training.loop.run`. At the end: `results.json` with
the reconstructor's accuracy on fresh shifts (eval mode, like upstream `validate_classifier`), and for linear-type
deformators `directions.npz` + `images/traversal.png` (`methods._common.write_directions`); an 'fc' deformator has no
direction matrix, so only its traversal picture (rendered through the deformator itself) is written.
Class-conditional generators (BigGAN, configs/ld_biggan.py): every example draws its class from
config.target_classes, shared by the image and its shifted twin; z is the generator's truncated noise.
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
from ganlatent_jax.directions import ld_import, spaces
from ganlatent_jax.methods import _common
from ganlatent_jax.nets.ld import (DEFORMATOR_TYPES, LINEAR_DEFORMATOR_TYPES, LatentDeformator, LeNetShiftPredictor,
                                   ResNetShiftPredictor)
from ganlatent_jax.training import loop

SHIFT_PREDICTORS = ("lenet", "resnet")
SHIFT_DISTRIBUTIONS = ("uniform", "normal")
LD_SPACES = ("z", "w")


@flax.struct.dataclass
class LDState:
  step: jax.Array
  deformator_params: Any
  deformator_state: Any    # non-trained collections: 'batch_stats' ('fc'), 'constants' ('random')
  predictor_params: Any
  predictor_state: Any     # 'batch_stats'
  deformator_opt_state: Any
  predictor_opt_state: Any


class Batch(NamedTuple):
  z: jax.Array              # (B, latent_dim)
  target: jax.Array         # (B,) direction indices
  shifts: jax.Array         # (B,) magnitudes ε
  basis_shift: jax.Array    # (B, K) = ε·e_k
  classes: jax.Array        # (B,) class ids of a class-conditional generator (zeros otherwise)


Conditioning = _common.Conditioning


def conditioning(config, gen) -> Conditioning | None:
  """The class conditioning from config.target_classes (upstream's `--target_class`, default 239; each example draws
  its class from the list, an image and its shifted twin share it — upstream draws the twin's class again, so with
  several classes its shift would also change the class) and config.truncation (None for unconditional
  generators)."""
  return _common.conditioning(gen, config.get("target_classes", None) or (), float(config.get("truncation", 1.0)),
                              "config.target_classes", "config.truncation")


def _render(gen, latents, space: str, cond: Conditioning | None, classes) -> jax.Array:
  return spaces.render(gen, latents, space, **({} if cond is None else cond.gen_kwargs(classes)))


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
  kind = config.deformator.type
  if kind not in DEFORMATOR_TYPES:
    raise ValueError(f"config.deformator.type={kind!r}; known: {DEFORMATOR_TYPES}")
  if kind in ("fc", "ortho", "id") and k != out_dim:
    raise ValueError(f"a {kind!r} deformator needs config.num_directions == config.max_latent_dim (0 = latent size "
                     f"{width}), got {k} and {out_dim}")
  deformator = LatentDeformator(type=kind, input_dim=k, out_dim=out_dim, shift_dim=width,
                                inner_dim=int(config.deformator.inner_dim))
  height, _, channels = gen.image_shape
  if config.shift_predictor == "lenet":
    if height < 32:
      raise ValueError(f"the LeNet shift predictor needs images of at least 32×32, the generator makes {height}")
    predictor = LeNetShiftPredictor(num_directions=k, channels=channels, width=int(config.lenet_width))
  elif config.shift_predictor == "resnet":
    r = config.resnet
    predictor = ResNetShiftPredictor(num_directions=k, stem_width=int(r.stem_width),
                                     stage_widths=tuple(int(w) for w in r.stage_widths),
                                     blocks_per_stage=tuple(int(d) for d in r.blocks_per_stage))
  else:
    raise ValueError(f"config.shift_predictor={config.shift_predictor!r}; expected one of {SHIFT_PREDICTORS}")
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

class LDTrainer(NamedTuple):
  nets: Networks
  deformator_optimizer: Any
  predictor_optimizer: Any
  init_fn: Any
  train_step: Any            # jitted (state, gen, w_avg, rng) -> (state, metrics)
  accuracy_step: Any         # jitted (state, gen, w_avg, rng) -> {'accuracy', 'shift_error'} (eval mode)
  cond: Conditioning | None  # class-conditional generators only
  sample_batch: Any          # rng -> Batch (traced inside the steps)
  image_pair: Any            # (gen, w_avg, batch, latent shift) -> (G(z), G(z + shift)), one class per pair


def make_trainer(config, gen, mesh) -> LDTrainer:
  parallel.check_batch_size(config.batch_size, mesh)
  if config.shift_distribution not in SHIFT_DISTRIBUTIONS:
    raise ValueError(f"config.shift_distribution={config.shift_distribution!r}; expected one of {SHIFT_DISTRIBUTIONS}")
  nets = make_networks(config, gen)
  cond = conditioning(config, gen)
  deformator, predictor, space = nets.deformator, nets.predictor, nets.space
  d_opt = optax.adam(config.deformator_lr)
  p_opt = optax.adam(config.shift_predictor_lr)
  batch, k = int(config.batch_size), nets.num_directions
  truncation = float(config.get("truncation", 1.0))
  batch_sharding = parallel.data_sharding(mesh)
  replicated = parallel.replicated_sharding(mesh)
  example_image = jnp.zeros((1, *gen.image_shape), jnp.float32)

  def init_fn(rng):
    d_key, perturb_key, p_key = jax.random.split(rng, 3)
    d_params, d_state = _split_variables(deformator.init({"params": d_key}, jnp.zeros((1, k), jnp.float32)))
    if config.deformator.random_init:
      d_params = _random_init(deformator.type, d_params, perturb_key)
    p_params, p_state = _split_variables(predictor.init(p_key, example_image, example_image))
    return LDState(step=jnp.zeros((), jnp.int32), deformator_params=d_params, deformator_state=d_state,
                   predictor_params=p_params, predictor_state=p_state,
                   deformator_opt_state=d_opt.init(d_params), predictor_opt_state=p_opt.init(p_params))

  def sample_batch(rng) -> Batch:
    z_key, shift_key = jax.random.split(rng)   # as before conditioning existed: unconditional runs reproduce
    z = _common.sample_prior(cond, gen, z_key, batch)
    target, shifts, basis = make_shifts(shift_key, batch, k, float(config.shift_scale), float(config.min_shift),
                                        config.shift_distribution)
    classes = (jnp.zeros((batch,), jnp.int32) if cond is None
               else cond.sample_classes(jax.random.fold_in(rng, 1), batch))
    return Batch(*(jax.lax.with_sharding_constraint(a, batch_sharding) for a in (z, target, shifts, basis, classes)))

  def image_pair(gen, w_avg, data: Batch, shift):
    latents = spaces.to_space(gen, data.z, space, truncation, w_avg)
    return (_render(gen, latents, space, cond, data.classes),
            _render(gen, latents + shift, space, cond, data.classes))

  def step_fn(state: LDState, gen, w_avg, rng):
    data = sample_batch(rng)

    def loss_fn(d_params, p_params):
      shift, d_updates = deformator.apply({"params": d_params, **state.deformator_state}, data.basis_shift,
                                          train=True, mutable=["batch_stats"])
      images, shifted = image_pair(gen, w_avg, data, shift)
      (logits, shift_prediction), p_updates = predictor.apply(
          {"params": p_params, **state.predictor_state}, images, shifted, train=True, mutable=["batch_stats"])
      label_loss = config.label_weight * jnp.mean(
          optax.softmax_cross_entropy_with_integer_labels(logits, data.target))
      shift_loss = config.shift_weight * jnp.mean(jnp.abs(shift_prediction - data.shifts))
      accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == data.target).astype(jnp.float32))
      metrics = {"loss": label_loss + shift_loss, "label_loss": label_loss, "shift_loss": shift_loss,
                 "accuracy": accuracy}
      return label_loss + shift_loss, (metrics, d_updates, p_updates)

    (_, (metrics, d_updates, p_updates)), (d_grads, p_grads) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True)(state.deformator_params, state.predictor_params)
    d_step, d_opt_state = d_opt.update(d_grads, state.deformator_opt_state, state.deformator_params)
    p_step, p_opt_state = p_opt.update(p_grads, state.predictor_opt_state, state.predictor_params)
    new_state = state.replace(
        step=state.step + 1,
        deformator_params=optax.apply_updates(state.deformator_params, d_step),
        deformator_state={**state.deformator_state, **d_updates},
        predictor_params=optax.apply_updates(state.predictor_params, p_step),
        predictor_state={**state.predictor_state, **p_updates},
        deformator_opt_state=d_opt_state, predictor_opt_state=p_opt_state)
    return new_state, metrics

  def accuracy_fn(state: LDState, gen, w_avg, rng):
    data = sample_batch(rng)
    shift = deformator.apply({"params": state.deformator_params, **state.deformator_state}, data.basis_shift)
    images, shifted = image_pair(gen, w_avg, data, shift)
    logits, shift_prediction = predictor.apply({"params": state.predictor_params, **state.predictor_state},
                                               images, shifted)
    return {"accuracy": jnp.mean((jnp.argmax(logits, axis=-1) == data.target).astype(jnp.float32)),
            "shift_error": jnp.mean(jnp.abs(shift_prediction - data.shifts))}

  # The state, the frozen generator and w̄ are replicated, the batch drawn inside is split over 'data'; fixed
  # shardings in and out, so each function compiles once.
  train_step = jax.jit(step_fn, in_shardings=(replicated,) * 4, out_shardings=(replicated, replicated),
                       donate_argnums=(0,))
  accuracy_step = jax.jit(accuracy_fn, in_shardings=(replicated,) * 4, out_shardings=replicated)
  return LDTrainer(nets, d_opt, p_opt, init_fn, train_step, accuracy_step, cond, sample_batch, image_pair)


def deformator_variables(state: LDState):
  return {"params": state.deformator_params, **state.deformator_state}


def mean_w_if_needed(config, gen, space: str):
  """w̄ for truncation in W (computed once); a zero placeholder otherwise (the step's signature is fixed)."""
  if space == "w" and float(config.get("truncation", 1.0)) != 1.0:
    return spaces.mean_w(gen, jax.random.key(config.seed + 1))
  return jnp.zeros((max(gen.info.w_dim, 1),), jnp.float32)


def reconstructor_accuracy(trainer: LDTrainer, state: LDState, gen, w_avg, seed: int, num_batches: int) -> dict:
  """Mean eval-mode accuracy (and |ε̂ − ε|) over `num_batches` fresh batches (upstream uses 100)."""
  key = jax.random.key(seed)
  results = [jax.device_get(trainer.accuracy_step(state, gen, w_avg, jax.random.fold_in(key, i)))
             for i in range(num_batches)]
  return {name: float(np.mean([r[name] for r in results])) for name in results[0]}


# ---------------------------------------------------------------------------------------------------------------
# Pictures.

@functools.partial(jax.jit, static_argnames=("deformator", "space", "truncation", "cond"))
def _deformed_images(gen, deformator, d_variables, latents, basis_shift, w_avg, space, truncation, cond):
  base = spaces.to_space(gen, latents, space, truncation, w_avg)
  return spaces.render(gen, base + deformator.apply(d_variables, basis_shift), space,
                       **({} if cond is None else cond.picture_kwargs()))


def deformator_traversal(gen, deformator: LatentDeformator, d_variables, z, *, space: str, span: float, steps: int,
                         num_directions: int, truncation: float = 1.0, w_avg=None, batch_size: int = 32,
                         cond: Conditioning | None = None) -> np.ndarray:
  """A traversal picture through the deformator itself (any type, 'fc' included): rows = direction × sample,
  columns = ε from −span to span."""
  z = jnp.asarray(z)
  n, k_count = z.shape[0], min(num_directions, deformator.input_dim)
  shifts = np.linspace(-span, span, steps, dtype=np.float32)
  basis = np.zeros((k_count, n, steps, deformator.input_dim), np.float32)
  for k in range(k_count):
    basis[k, :, :, k] = shifts[None, :]
  basis = jnp.asarray(basis.reshape(-1, deformator.input_dim))
  latents = jnp.repeat(jnp.tile(z, (k_count, 1)), steps, axis=0)
  w_avg = jnp.zeros((max(gen.info.w_dim, 1),), jnp.float32) if w_avg is None else w_avg
  images = np.concatenate([np.asarray(_deformed_images(gen, deformator, d_variables, latents[i:i + batch_size],
                                                       basis[i:i + batch_size], w_avg, space, truncation, cond))
                           for i in range(0, latents.shape[0], batch_size)])
  images = viz.to_display(images, gen.info.output_range)
  return viz.image_grid(images.reshape(k_count * n, steps, *images.shape[1:]))


# ---------------------------------------------------------------------------------------------------------------
# Entry points.

def setup(config):
  """(mesh, generator replicated over the mesh, trainer, w̄)."""
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  gen = _common.load_generator(config)
  trainer = make_trainer(config, gen, mesh)
  gen = jax.device_put(gen, parallel.replicated_sharding(mesh))
  return mesh, gen, trainer, mean_w_if_needed(config, gen, trainer.nets.space)


def write_outputs(config, workdir: str, gen, trainer: LDTrainer, state: LDState, w_avg) -> dict[str, str]:
  """directions.npz + traversal PNG (linear types) or the deformator's own traversal PNG ('fc')."""
  nets = trainer.nets
  variables = jax.device_get(deformator_variables(state))
  shown = min(int(config.traversal.max_directions) or nets.num_directions, nets.num_directions)
  cond = trainer.cond
  if nets.deformator.type in LINEAR_DEFORMATOR_TYPES:
    meta = dict(generator=config.generator, step=int(jax.device_get(state.step)), **_common.conditioning_record(cond))
    directions = ld_import.directions_from_deformator(nets.deformator, variables, space=nets.space, meta=meta)
    return _common.write_directions(workdir, gen, directions, config, max_rendered=shown, cond=cond)
  latents = _common.sample_prior(cond, gen, jax.random.key(config.seed), int(config.traversal.num_samples))
  logging.info("an %r deformator is non-linear: it has no direction matrix, so no directions.npz is written",
               nets.deformator.type)
  path = os.path.join(workdir, "images", "traversal.png")
  truncation = float(config.get("truncation", 1.0))
  grid = deformator_traversal(gen, nets.deformator, variables, latents, space=nets.space,
                              span=float(config.traversal.span), steps=int(config.traversal.steps),
                              num_directions=shown, truncation=truncation, w_avg=w_avg, cond=cond)
  viz.save_png(path, grid)
  return {"traversal": path}


def train(config, workdir: str) -> dict:
  mesh, gen, trainer, w_avg = setup(config)
  nets = trainer.nets

  def image_fn(state):
    z = _common.sample_prior(trainer.cond, gen, jax.random.key(config.seed), 1)
    return {"traversal": deformator_traversal(
        gen, nets.deformator, deformator_variables(state), z, space=nets.space, span=float(config.traversal.span),
        steps=int(config.traversal.steps), num_directions=min(nets.num_directions, 8),
        truncation=float(config.get("truncation", 1.0)), w_avg=w_avg, cond=trainer.cond)}

  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=trainer.init_fn,
                   train_step=lambda state, rng: trainer.train_step(state, gen, w_avg, rng),
                   images_per_step=2 * int(config.batch_size), image_fn=image_fn)
  accuracy = reconstructor_accuracy(trainer, state, gen, w_avg, config.seed + 2, int(config.eval_batches))
  outputs = write_outputs(config, workdir, gen, trainer, state, w_avg)
  _common.write_json(os.path.join(workdir, "results.json"), {
      "method": "ld", "generator": config.generator, "deformator": nets.deformator.type,
      "shift_predictor": config.shift_predictor, "space": nets.space, "num_directions": nets.num_directions,
      "step": int(jax.device_get(state.step)), "chance_accuracy": 1.0 / nets.num_directions, **accuracy,
      **_common.conditioning_record(trainer.cond),
      "outputs": outputs,
      **({} if nets.deformator.type in LINEAR_DEFORMATOR_TYPES else {
          "note": f"an {nets.deformator.type!r} deformator is non-linear: no direction matrix, no directions.npz; "
                  f"images/traversal.png is rendered through the deformator"})})
  logging.info("LD: reconstructor accuracy %.3f (chance %.3f)", accuracy["accuracy"], 1.0 / nets.num_directions)
  return outputs


def evaluate(config, workdir: str) -> dict:
  """The latest checkpoint's reconstructor accuracy on fresh shifts (eval mode)."""
  from ganlatent_jax import checkpoint as checkpoint_lib
  mesh, gen, trainer, w_avg = setup(config)
  checkpointer = checkpoint_lib.Checkpointer(workdir, save_every=0)
  try:
    if checkpointer.latest_step() is None:
      raise FileNotFoundError(f"{workdir}: no LD checkpoint to evaluate")
    state = loop.init_or_restore(trainer.init_fn, config.seed, mesh, checkpointer)
  finally:
    checkpointer.close()
  return {"step": int(jax.device_get(state.step)),
          **reconstructor_accuracy(trainer, state, gen, w_avg, config.seed + 2, int(config.eval_batches))}
