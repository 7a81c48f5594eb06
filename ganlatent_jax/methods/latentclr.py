"""LatentCLR (Yüksel et al., ICCV 2021): directions found by contrasting the feature changes they cause.

  python -m ganlatent_jax.main --config=configs/latentclr_ffhq.py --workdir=/tmp/latentclr \
      --config.generator=/path/to/stylegan2-ffhq-config-f.pt

Each step draws N latents z_i (in Z, or in StyleGAN2's W), applies K edits z_i^k = z_i + α_k d_k(z_i) with a
direction model (`directions/latentclr_models.py`: global, linear or non-linear), and takes the feature divergences
f_i^k = P(G_f(z_i^k)) − P(G_f(z_i)) at one feature tap G_f of the generator (any name in `info.feature_layers`;
StyleGAN2 'conv1', BigGAN 'layers.N'), P an optional projector. `contrastive_loss` then pulls together the
divergences of one edit over different samples and pushes apart those of different edits. Restricting the edit to
a range of W+ slots (`config.layers`) leaves the other slots at the unedited w (upstream's `feed_layers`).

The loop is `training.loop.run` (resume, per-step RNG, NaN stop, TensorBoard, orbax checkpoints, progress bar).
Outputs: model.msgpack (the direction model's variables), images/traversal.png, results.json; a global model also
writes directions.npz (a `Directions`), conditional models are queried per sample with `per_sample_directions`.
With `config.evaluation.enabled` the directions (global model) and SeFa's are scored with the SRE/Khrulkov encoder
protocol (MIG, FactorVAE, ...) into metrics.json, with a side-by-side traversal sheet. The prior, BigGAN's class
(`config.conditional.classes`: the edits are learnt in its first class) and the truncation are the run's
`generators.sampling.Sampler`.

Where this differs from upstream (catlab-team/latentclr) on purpose:
  * the loss defaults to the paper's formula (`variant='paper'`); upstream's is `variant='upstream'` (see
    `contrastive_loss`);
  * projector features are only L2-normalised before the difference when `config.projector.normalize` (upstream's
    projectors always normalise, the paper does not);
  * pictures with W truncation ψ truncate the base w before the edit (upstream's `forward` truncates the edited w,
    which scales the edit by ψ). Training, as upstream's, never truncates W: its features come from
    `partial_forward`, which ignores ψ (`training_sampler`);
  * the step sizes α are drawn per direction for every model kind (upstream's global model draws one α per step).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ganlatent_jax import console, generators, io, parallel, viz
from ganlatent_jax.directions import latentclr_models as models
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators import sampling
from ganlatent_jax.losses.latentclr import (VARIANTS, contrastive_accuracy, contrastive_loss,  # noqa: F401 (public
                                            similarity_summary)                               # here, as before)
from ganlatent_jax.methods import _common
from ganlatent_jax.training import loop

MODEL_FILE = "model.msgpack"
# key(config.seed + offset) of each random draw of a run (fixed: the README's LatentCLR numbers were drawn from them).
STREAMS = dict(preview=0, pictures=0, w_avg=1, evaluation=0, ganspace=2, task=3)
TASK_SAMPLES = 64   # latents of the contrastive-task check (`contrastive_task`)
GANSPACE_SAMPLES = 100_000   # w samples of the GANSpace baseline's PCA (SRE's init.ganspace_samples default)


# ---------------------------------------------------------------------------------------------------------------
# Where the edits happen and what is compared.

@dataclasses.dataclass(frozen=True)
class Target:
  """The working latent space, the edited W+ slots and the feature tap (static); the prior, the class and the
  truncation come from the run's sampler."""
  family: str
  space: str                              # 'z' or 'w' (the base latent edited by the model)
  layers: tuple[int, int] | None          # W+ slots [start, stop) that get the edit (None = all)
  num_ws: int
  feature_layer: str

  @property
  def directions_space(self) -> str:
    return "w+" if self.layers is not None else self.space

  def to_working(self, sampler: sampling.Sampler, z: jax.Array) -> jax.Array:
    """Prior samples → the base latents the model edits ((N, D) in Z or W, W truncated when the run truncates)."""
    return sampler.to_space(z, self.space)

  def _generator_input(self, sampler: sampling.Sampler, latents: jax.Array,
                       base: jax.Array | None) -> tuple[jax.Array, dict[str, Any]]:
    kwargs = sampler.picture_kwargs()   # a class-conditional generator: its (first) class and truncation
    if self.space == "z":
      if "w" in sampler.gen.info.latent_spaces and sampler.truncation is not None:
        # In Z, W truncation happens inside the call.
        kwargs.update(truncation=sampler.truncation, truncation_latent=sampler.w_avg)
      return latents, kwargs
    kwargs["input_is_latent"] = True
    if self.layers is None:
      return latents, kwargs
    start, stop = self.layers
    mask = jnp.zeros((self.num_ws,), bool).at[start:stop].set(True)[None, :, None]
    return jnp.where(mask, latents[:, None, :], base[:, None, :]), kwargs

  def features(self, sampler: sampling.Sampler, latents: jax.Array, base: jax.Array | None = None) -> jax.Array:
    """Flattened features (B, F) of working-space latents (B, D); `base` fills the unedited W+ slots."""
    x, kwargs = self._generator_input(sampler, latents, base if base is not None else latents)
    out = sampler.gen.features(x, layers=(self.feature_layer,), **kwargs)[self.feature_layer]
    return out.reshape(out.shape[0], -1).astype(jnp.float32)

  def render(self, sampler: sampling.Sampler, latents: jax.Array, base: jax.Array) -> jax.Array:
    x, kwargs = self._generator_input(sampler, latents, base)
    kwargs.pop("input_is_latent", None)
    if self.space == "z":
      return sampler.gen(x, **kwargs)
    return sampler.gen.synthesis(x, **kwargs)


def stylegan2_tap_slot(name: str) -> int:
  """The last W+ slot a StyleGAN2 feature tap depends on (conv1 → 0, to_rgb1 → 1, convs.i → i + 1,
  to_rgbs.j → 2j + 3; 'mod__X' is X's style, which depends on X's slot)."""
  name = name.removeprefix("mod__")
  if name == "conv1":
    return 0
  if name == "to_rgb1":
    return 1
  kind, index = name.split(".")
  return int(index) + 1 if kind == "convs" else 2 * int(index) + 3


def make_target(config, gen: generators.Generator) -> Target:
  info = gen.info
  space = config.space
  if space not in ("z", "w"):
    raise ValueError(f"config.space={space!r}: LatentCLR edits 'z' or 'w' (restrict W+ slots with config.layers)")
  if space == "w" and "w" not in info.latent_spaces:
    raise ValueError(f"config.space='w' but a {info.family} generator has only {info.latent_spaces}")
  layers = _common.parse_layers(config.layers)
  layer_range = None
  if layers is not None:
    if space != "w":
      raise ValueError(f"config.layers={config.layers!r} restricts W+ slots: it needs config.space='w'")
    if layers != list(range(layers[0], layers[-1] + 1)) or not 0 <= layers[0] <= layers[-1] < info.num_ws:
      raise ValueError(f"config.layers={config.layers!r} must be a contiguous range inside the generator's W+ slots "
                       f"0..{info.num_ws - 1}")
    if layers != list(range(info.num_ws)):
      layer_range = (layers[0], layers[-1] + 1)
  feature_layer = config.feature_layer
  if info.feature_layers and feature_layer not in info.feature_layers:
    raise ValueError(f"config.feature_layer={feature_layer!r} is not a feature tap of this {info.family} generator; "
                     f"available: {list(info.feature_layers)}")
  if layer_range is not None and info.family == "stylegan2":
    last = stylegan2_tap_slot(feature_layer)
    if not layer_range[0] <= last:
      raise ValueError(f"config.feature_layer={feature_layer!r} only sees W+ slots 0..{last}, none of the edited "
                       f"slots {config.layers!r}: every divergence would be 0; pick a later layer")
  return Target(family=info.family, space=space, layers=layer_range, num_ws=info.num_ws, feature_layer=feature_layer)


class Projector(nn.Module):
  """P: flattened features → 'identity' or a trainable 'linear' map; L2-normalised when `normalize` (upstream)."""
  kind: str
  features: int
  normalize: bool

  @nn.compact
  def __call__(self, x):
    if self.kind == "linear":
      x = nn.Dense(self.features, name="linear")(x)
    elif self.kind != "identity":
      raise ValueError(f"config.projector.kind={self.kind!r}; expected 'identity' or 'linear'")
    return models.unit(x) if self.normalize else x


# ---------------------------------------------------------------------------------------------------------------
# Training state and step.

@flax.struct.dataclass
class State:
  step: jax.Array
  params: Any           # {'model': ..., 'projector': ...}
  batch_stats: Any      # the non-linear model's BatchNorm statistics ({} otherwise)
  opt_state: optax.OptState


def make_optimizer(config) -> optax.GradientTransformation:
  """Upstream's Adam: L2 weight decay added to the gradient (torch Adam's weight_decay), MultiStepLR schedule."""
  o = config.optimizer
  schedule = optax.piecewise_constant_schedule(
      float(o.learning_rate), {int(m): float(o.decay_factor) for m in o.decay_steps})
  parts = []
  if o.get("grad_clip_norm", 0.0):
    parts.append(optax.clip_by_global_norm(float(o.grad_clip_norm)))
  parts += [optax.add_decayed_weights(float(o.weight_decay)), optax.scale_by_adam(), optax.scale_by_schedule(schedule),
            optax.scale(-1.0)]
  return optax.chain(*parts)


@dataclasses.dataclass
class Problem:
  """Everything the jitted step closes over (static); the sampler (generator, w̄) is the step's frozen argument."""
  config: Any
  target: Target
  model: models.DirectionModel
  projector: Projector
  optimizer: optax.GradientTransformation
  sampler: sampling.Sampler       # replicated on the mesh

  @property
  def alpha(self) -> tuple[float, float]:
    return tuple(float(a) for a in self.config.alpha)


def check_config(config) -> None:
  """Config values LatentCLR reads, checked before anything is loaded or written."""
  _common.check_loop(config)
  _common.check_positive(config, "num_directions", "model.depth", "projector.features", "traversal.steps",
                         "traversal.num_samples")
  if int(config.num_directions) < 2 or int(config.batch_size) < 2:
    raise ValueError(f"config.num_directions={config.num_directions} and config.batch_size={config.batch_size} must "
                     f"be >= 2 (positives are other samples, negatives other edits)")
  if not float(config.optimizer.learning_rate) > 0:
    raise ValueError(f"config.optimizer.learning_rate={config.optimizer.learning_rate!r} must be > 0")
  if not float(config.loss.temperature) > 0:
    raise ValueError(f"config.loss.temperature={config.loss.temperature!r} must be > 0")
  if config.loss.variant not in VARIANTS:
    raise ValueError(f"config.loss.variant={config.loss.variant!r}; expected one of {VARIANTS}")
  if config.evaluation.enabled and config.model.kind != "global":
    raise ValueError("config.evaluation.enabled scores fixed directions: it needs config.model.kind='global'")


def make_problem(config, sampler: sampling.Sampler, mesh) -> Problem:
  gen = sampler.gen
  target = make_target(config, gen)
  dim = gen.info.w_dim if target.space == "w" else gen.info.latent_dim
  model = models.make_model(config.model.kind, int(config.num_directions), dim, int(config.model.depth))
  projector = Projector(config.projector.kind, int(config.projector.features), bool(config.projector.normalize))
  return Problem(config, target, model, projector, make_optimizer(config), parallel.replicate(sampler, mesh))


def divergences(problem: Problem, sampler: sampling.Sampler, params, batch_stats, base: jax.Array,
                alphas: jax.Array, train: bool = True):
  """Feature divergences (K, N, F) of the K edits of `base` (N, D), and the model's updated BatchNorm stats."""
  t = problem.target
  project = lambda f: problem.projector.apply({"params": params["projector"]}, f)  # noqa: E731
  # As upstream, the unedited features (projector included) carry no gradient.
  original = jax.lax.stop_gradient(project(t.features(sampler, base)))
  variables = {"params": params["model"], **({"batch_stats": batch_stats} if batch_stats else {})}
  if train:
    directions, updates = models.apply_directions(problem.model, variables, base, train=True)
    batch_stats = updates.get("batch_stats", batch_stats)
  else:
    directions = models.apply_directions(problem.model, variables, base, train=False)
  edited = models.edit(base, directions, alphas)
  k, n, d = edited.shape
  tiled_base = jnp.broadcast_to(base[None], (k, n, d)).reshape(k * n, d)
  feats = project(t.features(sampler, edited.reshape(k * n, d), tiled_base))
  return feats.reshape(k, n, -1) - original[None], batch_stats


def training_sampler(sampler: sampling.Sampler) -> sampling.Sampler:
  """The sampler the contrastive task draws from: without W truncation (upstream computes the training features
  with `partial_forward`, which never truncates; ψ enters only its pictures). A class-conditional generator's noise
  truncation stays: upstream's BigGAN samples its training latents truncated."""
  return sampler if sampler.conditional else sampler.replace(truncation=None)


def make(config, sampler: sampling.Sampler, mesh):
  """(init_fn, train_step, problem): `init_fn(rng) -> State`; `train_step(state, rng) -> (state, metrics)` jitted
  once with the state donated (the sampler is its non-donated first argument)."""
  check_config(config)
  problem = make_problem(config, sampler, mesh)
  batch_size, k = int(config.batch_size), int(config.num_directions)
  parallel.check_batch_size(batch_size, mesh)
  batch_sharding = parallel.data_sharding(mesh)
  temperature, variant = float(config.loss.temperature), config.loss.variant
  train_projector = bool(config.projector.train)
  t = problem.target

  def init_fn(rng):
    model_rng, projector_rng = jax.random.split(rng)
    variables = models.init_variables(problem.model, model_rng)
    probe = jax.eval_shape(lambda: t.features(problem.sampler, jnp.zeros((2, problem.model.dim), jnp.float32)))
    projector_params = problem.projector.init(projector_rng, jnp.zeros(probe.shape, jnp.float32)).get("params", {})
    params = {"model": variables["params"], "projector": dict(projector_params)}
    return State(step=jnp.zeros((), jnp.int32), params=params, batch_stats=variables.get("batch_stats", {}),
                 opt_state=problem.optimizer.init(params))

  def step(s: sampling.Sampler, state: State, rng: jax.Array):
    s = training_sampler(s)
    z_rng, alpha_rng = jax.random.split(rng)
    z = jax.lax.with_sharding_constraint(s.z(z_rng, batch_size), batch_sharding)
    base = t.to_working(s, z)
    alphas = models.sample_alphas(alpha_rng, k, problem.alpha)

    def loss_fn(params):
      div, stats = divergences(problem, s, params, state.batch_stats, base, alphas, train=True)
      loss = contrastive_loss(div, temperature, variant)
      return loss, (stats, contrastive_accuracy(jax.lax.stop_gradient(div), temperature, variant))

    (loss, (stats, accuracy)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    if not train_projector:
      grads = {**grads, "projector": jax.tree.map(jnp.zeros_like, grads["projector"])}
    updates, opt_state = problem.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if not train_projector:
      params = {**params, "projector": state.params["projector"]}
    metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads)}
    return State(step=state.step + 1, params=params, batch_stats=stats, opt_state=opt_state), metrics

  # Fixed output shardings (replicated, as the loop initialises the state): step n's output is step n+1's input, so
  # letting XLA choose would recompile the step once more after the first call.
  replicated = parallel.replicated_sharding(mesh)
  jitted = jax.jit(step, out_shardings=(replicated, replicated), donate_argnums=(1,))
  return init_fn, functools.partial(jitted, problem.sampler), problem


def contrastive_task(problem: Problem, trained: State, initial: State, rng: jax.Array,
                     num_samples: int = TASK_SAMPLES) -> dict[str, Any]:
  """How hard the contrastive task is at the run's feature layer. On one batch of `num_samples` latents and step
  sizes: the loss, the accuracy and the mean same-edit (positive) and other-edit (negative, absolute) cosines of the
  feature divergences of the trained directions, of their initial values and of a fresh draw of the model's init
  (random directions); for a global model also the mean |cos(d_k, d_k at step 0)|. If the initial or random
  directions already solve the task (accuracy ≈ 1), the loss has no reason to prefer factor directions."""
  sampler = training_sampler(problem.sampler)
  z_rng, alpha_rng, random_rng = jax.random.split(rng, 3)
  base = problem.target.to_working(sampler, sampler.z(z_rng, num_samples))
  alphas = models.sample_alphas(alpha_rng, problem.model.num_directions, problem.alpha)
  fresh = models.init_variables(problem.model, random_rng)
  sets = {"trained": (trained.params, trained.batch_stats), "initial": (initial.params, initial.batch_stats),
          "random": ({**initial.params, "model": fresh["params"]}, fresh.get("batch_stats", {}))}
  temperature, variant = float(problem.config.loss.temperature), problem.config.loss.variant
  divergence_fn = jax.jit(lambda s, params, stats: divergences(problem, s, params, stats, base, alphas,
                                                               train=False)[0])
  result: dict[str, Any] = {"num_samples": num_samples}
  for name, (params, stats) in sets.items():
    div = divergence_fn(sampler, params, stats)
    positive, negative = similarity_summary(div)
    result[name] = {"loss": float(contrastive_loss(div, temperature, variant)),
                    "accuracy": float(contrastive_accuracy(div, temperature, variant)),
                    "positive_cos": positive, "negative_abs_cos": negative}
  if problem.model.kind == "global":
    now, start = (np.asarray(models.global_matrix({"params": p["model"]})) for p in (trained.params, initial.params))
    result["mean_abs_cos_to_initial"] = float(np.mean(np.abs(np.sum(now * start, axis=0))))
  return result


def _task_check(config, problem: Problem, init_fn, trained: State) -> dict[str, Any]:
  """`contrastive_task` of a run's trained state against its step-0 state (the loop initialises from key(seed))."""
  initial = jax.device_get(init_fn(jax.random.key(int(config.seed))))
  return contrastive_task(problem, jax.device_get(trained), initial, _common.stream(config, STREAMS, "task"))


def contrastive_task_of_run(config, workdir: str) -> dict[str, Any]:
  """`contrastive_task` of the run in `workdir` (its latest checkpoint; runs finished before it was recorded),
  written into its results.json as training now writes it."""
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  init_fn, _, problem = make(config, _common.make_sampler(config, _common.load_generator(config), STREAMS), mesh)
  task = _task_check(config, problem, init_fn, loop.restore_latest(init_fn, config, mesh, workdir))
  path = os.path.join(workdir, "results.json")
  _common.write_json(path, {**json.loads(io.read_text(path)), "contrastive_task": task})
  return task


# ---------------------------------------------------------------------------------------------------------------
# Using a trained model.

def model_variables(state: State) -> dict[str, Any]:
  variables = {"params": state.params["model"]}
  if state.batch_stats:
    variables["batch_stats"] = state.batch_stats
  return jax.device_get(variables)


@functools.partial(jax.jit, static_argnums=0)
def per_sample_directions(model: models.DirectionModel, variables, latents: jax.Array) -> jax.Array:
  """Unit directions (K, N, D) at working-space latents (N, D) (running BatchNorm statistics): for conditional
  models the direction depends on the latent; a global model gives the same K directions for every latent."""
  return models.apply_directions(model, variables, jnp.asarray(latents, jnp.float32), train=False)


@functools.partial(jax.jit, static_argnums=0)
def _render(target: Target, sampler: sampling.Sampler, latents, base):
  return target.render(sampler, latents, base)


def global_directions(model: models.DirectionModel, variables, target: Target, meta: dict[str, Any]) -> Directions:
  matrix = np.asarray(models.global_matrix(variables))
  return Directions(matrix, space=target.directions_space, layers=target.layers, meta=meta)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _traversal_latents(target: Target, model: models.DirectionModel, steps: int, sampler, variables, z, span):
  """Edited working-space latents (K·n·steps, D), direction-major, and the matching unedited bases."""
  base = target.to_working(sampler, z)
  directions = models.apply_directions(model, variables, base, train=False)               # (K, n, D)
  shifts = jnp.linspace(-span, span, steps)
  edited = base[None, :, None, :] + shifts[None, None, :, None] * directions[:, :, None, :]
  d = edited.shape[-1]
  return edited.reshape(-1, d), jnp.broadcast_to(base[None, :, None, :], edited.shape).reshape(-1, d)


def conditional_traversal(problem: Problem, variables, z: jax.Array, span: float, steps: int,
                          batch_size: int = 32) -> np.ndarray:
  """(K·n, steps, H, W, C) display images: latent i moved along d_k(z_i) (evaluated at z_i) by −span…span.

  Works for every model kind (a global model's d_k does not depend on z_i) and every generator family (BigGAN's
  class and truncation, W+ slot restriction and W truncation as in training)."""
  t, sampler = problem.target, problem.sampler
  edited, bases = jax.device_get(_traversal_latents(t, problem.model, int(steps), sampler, variables, z,
                                                    float(span)))
  images = np.concatenate([np.asarray(_render(t, sampler, edited[i:i + batch_size], bases[i:i + batch_size]))
                           for i in range(0, edited.shape[0], batch_size)])
  images = viz.to_display(images, sampler.gen.info.output_range)
  return images.reshape(problem.model.num_directions * z.shape[0], steps, *images.shape[1:])


def save_model(workdir: str, variables) -> str:
  path = os.path.join(workdir, MODEL_FILE)
  io.save_variables(path, variables)
  return path


def load_model(workdir: str) -> tuple[models.DirectionModel, dict[str, Any]]:
  """(model, variables) of a finished run, for `per_sample_directions`."""
  io.wait_for_writer(MODEL_FILE)
  for name in ("results.json", MODEL_FILE):
    if not io.exists(os.path.join(workdir, name)):
      raise FileNotFoundError(f"{os.path.join(workdir, name)} does not exist: not a finished LatentCLR run")
  spec = json.loads(io.read_text(os.path.join(workdir, "results.json")))["model"]
  model = models.make_model(spec["kind"], spec["num_directions"], spec["dim"], spec["depth"])
  template = jax.eval_shape(lambda rng: models.init_variables(model, rng), jax.random.key(0))
  return model, flax.serialization.from_bytes(template, io.read_bytes(os.path.join(workdir, MODEL_FILE)))


def _sefa_variant(gen) -> str:
  return "genforce" if gen.info.family == "stylegan2" else "first_layer"


def evaluate(config, workdir: str, sampler: sampling.Sampler | None = None) -> dict[str, Any]:
  """MIG/FactorVAE (encoder protocol, config.evaluation; with the generated-domain scores and their probe/random
  rows when configured) of the run's global directions and of the closed-form baselines with the same K: SeFa's
  and, on a generator with W, GANSpace's (PCA of GANSPACE_SAMPLES w) — metrics.json = {"latentclr": {...},
  "sefa": {...}, "ganspace": {...}, ...}; also images/traversal_comparison.png."""
  from ganlatent_jax import directions as directions_lib
  if not config.evaluation.enabled:
    raise ValueError("config.evaluation.enabled is False: LatentCLR's evaluation is the encoder protocol")
  sampler = sampler or _common.make_sampler(config, _common.load_generator(config), STREAMS)
  gen = sampler.gen
  directions = _common.load_directions(workdir)
  variant = _sefa_variant(gen)
  sefa_directions, _ = directions_lib.sefa(gen, directions.num_directions, variant=variant)
  named = [("latentclr", directions), ("sefa", sefa_directions)]
  if "w" in gen.info.latent_spaces:
    ganspace_directions, _ = directions_lib.ganspace(gen, directions.num_directions, GANSPACE_SAMPLES,
                                                     _common.stream(config, STREAMS, "ganspace"))
    named.append(("ganspace", ganspace_directions))
  results = _common.evaluate_directions(config, workdir, sampler, named,
                                        _common.stream(config, STREAMS, "evaluation"))
  latents = sampler.z(_common.stream(config, STREAMS, "pictures"), int(config.traversal.num_samples))
  named = [("LatentCLR", directions), (f"SeFa ({variant})", sefa_directions)]
  grids = [viz.traversal_grid(gen, d, latents, **_common.traversal_kwargs(config, sampler, d)) for _, d in named]
  viz.contact_sheet(grids, [name for name, _ in named],
                    path=os.path.join(workdir, "images", "traversal_comparison.png"))
  return results


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
  """Trains the direction model; writes model.msgpack, images/traversal.png, results.json, directions.npz (global
  model) and, with config.evaluation.enabled, metrics.json. Returns the paths written."""
  check_config(config)
  gen = _common.load_generator(config)
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  init_fn, train_step, problem = make(config, _common.make_sampler(config, gen, STREAMS), mesh)
  sampler = problem.sampler
  span, steps = float(config.traversal.span), int(config.traversal.steps)
  preview = sampler.z(_common.stream(config, STREAMS, "preview"), 1)

  def image_fn(state):
    return {"traversal": viz.image_grid(conditional_traversal(problem, model_variables(state), preview, span, steps))}

  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=init_fn, train_step=train_step,
                   image_fn=image_fn, images_per_step=int(config.batch_size) * (int(config.num_directions) + 1))
  variables = model_variables(state)
  outputs = {"model": save_model(workdir, variables)}
  with console.phase("contrastive task check"):
    task = _task_check(config, problem, init_fn, state)
  t = problem.target
  meta = dict(method="latentclr", model=config.model.kind, feature_layer=t.feature_layer, loss=config.loss.variant,
              temperature=float(config.loss.temperature), alpha=list(problem.alpha), steps=int(config.steps),
              source=gen.info.source, **sampler.record())
  if config.model.kind == "global":
    outputs["directions"] = os.path.join(workdir, "directions.npz")
    global_directions(problem.model, variables, t, meta).save(outputs["directions"])
  latents = sampler.z(_common.stream(config, STREAMS, "pictures"), int(config.traversal.num_samples))
  outputs["traversal"] = os.path.join(workdir, "images", "traversal.png")
  viz.save_png(outputs["traversal"], viz.image_grid(conditional_traversal(problem, variables, latents, span, steps)))
  outputs["results"] = os.path.join(workdir, "results.json")
  _common.write_json(outputs["results"], {
      "method": "latentclr", "generator": config.generator, "outputs": dict(outputs), "step": int(state.step),
      "model": dict(kind=problem.model.kind, num_directions=problem.model.num_directions, dim=problem.model.dim,
                    depth=problem.model.depth),
      "space": t.directions_space, "layers": t.layers, "feature_layer": t.feature_layer,
      "sampling": sampler.record(), "contrastive_task": task})
  if config.evaluation.enabled:
    evaluate(config, workdir, sampler=sampler)
    outputs.update(metrics=os.path.join(workdir, "metrics.json"),
                   traversal_comparison=os.path.join(workdir, "images", "traversal_comparison.png"))
  return outputs
