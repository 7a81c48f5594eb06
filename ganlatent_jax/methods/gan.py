"""GAN training engine: a jitted, sharded D-then-G step over any generator family and discriminator.

  python -m ganlatent_jax.main --config=configs/gan_shapes3d.py --workdir=/tmp/gan_shapes3d

Losses: the non-saturating logistic loss (D: softplus(D(G(z))) + softplus(-D(x)); G: softplus(-D(G(z)))), the R1
penalty γ/2·E‖∇ₓD(x)‖² applied lazily every `r1_every` steps and multiplied by `r1_every` on those steps (StyleGAN2's
lazy regularisation, with Adam's lr and betas of D corrected for the extra updates), an EMA of G's parameters (the
weights that get exported), separate optax Adam optimizers for G and D.

The outer loop (resume, per-step RNG, NaN stop, TensorBoard, checkpoints) is `training.loop.run`; this module only
supplies `init_fn` and `train_step`. Real images are drawn on the host from the procedural dataset with
`parallel.step_numpy_rng(seed, step)` (a pure function of the step, so a resumed run sees the same data), sharded
over the 'data' axis; latents are drawn inside the step from the step's key.

Methods that add terms (InfoGAN's Q head and mutual-information loss, PS-SC, UD-GAN, ...) subclass `GANTerms`:
  * `sample_latents(rng, batch)` → a dict of latent arrays (default {'z': N(0, I)});
  * `generator_input(latents)` → the array fed to the generator (default latents['z']);
  * `d_loss(latents, fake_aux, real_aux)` / `g_loss(latents, fake_aux)` → (extra scalar loss, {name: metric}),
    where `*_aux` is the discriminator's auxiliary head output (see `nets.discriminators`), or None.
The engine adds these to its own losses inside the one jitted step, so no method copies the step or the loop.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import time
from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ganlatent_jax import parallel, viz
from ganlatent_jax.generators.load import family_module, save_converted
from ganlatent_jax.nets import discriminators
from ganlatent_jax.training import loop

EXPORT_DIR = "generator"          # the EMA generator, as a converted generator dir, written at the end of training


# ---------------------------------------------------------------------------------------------------------------
# Hooks.

class GANTerms:
  """The plain GAN: z ~ N(0, I), no extra loss. Subclass to add latents, heads and losses (see module doc)."""
  aux_outputs: int = 0  # size of the discriminator's auxiliary head (0 = none)

  def __init__(self, latent_dim: int):
    self.latent_dim = latent_dim

  def sample_latents(self, rng: jax.Array, batch: int) -> dict[str, jax.Array]:
    return {"z": jax.random.normal(rng, (batch, self.latent_dim), jnp.float32)}

  def generator_input(self, latents: Mapping[str, jax.Array]) -> jax.Array:
    return latents["z"]

  def d_loss(self, latents, fake_aux, real_aux) -> tuple[jax.Array, dict[str, jax.Array]]:
    del latents, fake_aux, real_aux
    return jnp.zeros((), jnp.float32), {}

  def g_loss(self, latents, fake_aux) -> tuple[jax.Array, dict[str, jax.Array]]:
    del latents, fake_aux
    return jnp.zeros((), jnp.float32), {}


# ---------------------------------------------------------------------------------------------------------------
# State and losses.

@flax.struct.dataclass
class GANState:
  step: jax.Array
  g_params: Any
  g_ema_params: Any
  g_frozen: Any            # the generator's non-trained collections (StyleGAN2 noise buffers), exported as they are
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any


def nonsaturating_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))


def nonsaturating_g_loss(fake_logits: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(-fake_logits))


def r1_penalty(d_logits_fn: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """E_x ‖∇ₓ D(x)‖² over the batch (the sum of logits has the per-sample gradients as its gradient)."""
  grads = jax.grad(lambda x: jnp.sum(d_logits_fn(x)))(real)
  return jnp.mean(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """The EMA decay at `step` (0-based): min(decay, (1 + step) / (10 + step)), so early averages are not dominated
  by the random init (TensorFlow's ExponentialMovingAverage with num_updates)."""
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(jnp.float32(decay), (1.0 + step) / (10.0 + step))


def ema_update(ema, params, decay):
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


# ---------------------------------------------------------------------------------------------------------------
# Generator and data plumbing.

@dataclasses.dataclass(frozen=True)
class GeneratorSpec:
  """A family's linen module trained from scratch: config (as saved to generator.json), module, static info."""
  config: dict
  module: Any
  info: Any
  random_noise: bool = False   # StyleGAN2: fresh per-sample noise while training (upstream's randomize_noise)

  def apply(self, params, frozen, z, rng):
    kwargs = {"noise_rng": rng} if self.random_noise else {}
    return self.module.apply({"params": params, **frozen}, z, **kwargs)


def generator_config(gcfg: Mapping[str, Any]) -> dict:
  """The family config dict from the run config's `generator` section (family + the family's make_config args)."""
  gcfg = dict(gcfg)
  family = gcfg.pop("family")
  gcfg.pop("random_noise", None)
  module = family_module(family)
  if family == "stylegan2":
    widths = tuple(int(w) for w in gcfg.pop("channels"))
    size = int(gcfg["size"])
    resolutions = [2 ** i for i in range(2, int(np.log2(size)) + 1)]
    if len(widths) != len(resolutions):
      raise ValueError(f"config.generator.channels must give one width per resolution {resolutions}, got {widths}")
    gcfg["channels"] = dict(zip(resolutions, widths))
  if not hasattr(module, "make_config"):
    raise ValueError(f"generator family {family!r} has no make_config(); cannot train it from a run config")
  params = inspect.signature(module.make_config).parameters
  takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
  unknown = [] if takes_any else sorted(set(gcfg) - set(params))
  if unknown:
    raise ValueError(f"config.generator has key(s) {unknown} that {family}.make_config does not take "
                     f"(it takes {sorted(params)})")
  return module.make_config(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in gcfg.items()})


def make_generator_spec(gcfg: Mapping[str, Any]) -> GeneratorSpec:
  config = generator_config(gcfg)
  family = family_module(config["family"])
  variables = jax.eval_shape(lambda: family.init_variables(config, jax.random.key(0)))
  built = family.build(config, jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), variables), "training")
  return GeneratorSpec(config=config, module=built.module, info=built.info,
                       random_noise=bool(gcfg.get("random_noise", False)) and config["family"] == "stylegan2")


def make_dataset(name: str, **kwargs):
  """A ground-truth dataset of `ganlatent_jax.data` (config.data: name, source='procedural', kwargs)."""
  from ganlatent_jax import data
  return data.get_dataset(name, **kwargs)


def to_model_range(images01: np.ndarray) -> np.ndarray:
  return (np.asarray(images01, np.float32) * 2.0 - 1.0)


# ---------------------------------------------------------------------------------------------------------------
# The engine.

@dataclasses.dataclass
class Engine:
  config: ml_collections.ConfigDict
  mesh: Any
  gen: GeneratorSpec
  disc: Any
  terms: GANTerms
  g_optimizer: Any
  d_optimizer: Any
  jitted_step: Callable
  init_fn: Callable
  dataset: Any = None

  def real_batch(self, step: int):
    """The global real batch of `step`, images in [-1, 1], sharded over 'data'."""
    _, images = self.dataset.sample(self.config.batch_size, parallel.step_numpy_rng(self.config.seed, step))
    return parallel.shard_batch(to_model_range(images), self.mesh)

  def train_step(self, state: GANState, rng: jax.Array):
    """The loop's `train_step`: draws the step's real batch on the host, then runs the jitted step."""
    step = int(jax.device_get(state.step))
    return self.jitted_step(state, self.real_batch(step), rng)

  def sample(self, params, frozen, z, rng=None):
    return self.gen.apply(params, frozen, z, rng)


def _adam(lr, beta1, beta2, every: int = 1):
  # StyleGAN2's lazy-regularisation correction: with the penalty applied every k steps, the optimizer behaves as if
  # it ran k/(k+1) of the steps, so lr and betas are rescaled to keep the effective dynamics.
  ratio = every / (every + 1.0) if every > 0 else 1.0
  return optax.adam(lr * ratio, b1=beta1 ** ratio, b2=beta2 ** ratio, eps=1e-8)


def make_engine(config: ml_collections.ConfigDict, mesh, terms_factory: Callable[[GeneratorSpec], GANTerms] = None,
                dataset=None) -> Engine:
  """Builds the pure init function and the jitted step from a run config.

  Config keys: batch_size, generator (family + make_config args), discriminator (kind, width, ...), g_lr, d_lr,
  beta1, beta2, r1_gamma, r1_every, ema_decay.
  """
  parallel.check_batch_size(config.batch_size, mesh)
  gen = make_generator_spec(config.generator)
  terms = terms_factory(gen) if terms_factory is not None else GANTerms(gen.info.latent_dim)
  image_size = gen.info.image_shape[0]
  disc = discriminators.from_config(dict(config.discriminator), image_size, aux_outputs=terms.aux_outputs)
  r1_every = int(config.r1_every) if config.r1_gamma > 0 else 0
  g_optimizer = _adam(config.g_lr, config.beta1, config.beta2)
  d_optimizer = _adam(config.d_lr, config.beta1, config.beta2, r1_every)
  family = family_module(gen.config["family"])
  image_shape = gen.info.image_shape
  batch_sharding = parallel.data_sharding(mesh)

  def init_fn(rng):
    g_key, d_key = jax.random.split(rng)
    variables = dict(family.init_variables(gen.config, g_key))
    g_params = variables.pop("params")
    d_params = disc.init(d_key, jnp.zeros((1, *image_shape), jnp.float32))["params"]
    return GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, g_ema_params=g_params, g_frozen=variables,
                    d_params=d_params, g_opt_state=g_optimizer.init(g_params), d_opt_state=d_optimizer.init(d_params))

  def discriminate(d_params, images):
    return disc.apply({"params": d_params}, images)

  def generate(state, g_params, rng, batch):
    latent_key, noise_key = jax.random.split(rng)
    latents = terms.sample_latents(latent_key, batch)
    latents = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, batch_sharding), latents)
    return latents, gen.apply(g_params, state.g_frozen, terms.generator_input(latents), noise_key)

  # One jitted step does the D update and then the G update (against the updated D, as StyleGAN2's alternation):
  # one dispatch and one host sync per iteration instead of two, and XLA schedules both halves together.
  def step_fn(state: GANState, real: jax.Array, rng: jax.Array):
    d_key, g_key = jax.random.split(rng)
    batch = real.shape[0]
    latents, fake = generate(state, state.g_params, d_key, batch)
    fake = jax.lax.stop_gradient(fake)
    do_r1 = (state.step % max(r1_every, 1) == 0) if r1_every else jnp.bool_(False)

    def d_loss_fn(d_params):
      fake_logits, fake_aux = discriminate(d_params, fake)
      real_logits, real_aux = discriminate(d_params, real)
      adversarial = nonsaturating_d_loss(real_logits, fake_logits)
      r1 = jax.lax.cond(do_r1, lambda: r1_penalty(lambda x: discriminate(d_params, x)[0], real),
                        lambda: jnp.zeros((), jnp.float32))
      extra, extra_metrics = terms.d_loss(latents, fake_aux, real_aux)
      total = adversarial + (0.5 * config.r1_gamma * max(r1_every, 1)) * r1 + extra
      metrics = {"d/loss": adversarial, "d/real_logit": jnp.mean(real_logits),
                 "d/fake_logit": jnp.mean(fake_logits), **{f"d/{k}": v for k, v in extra_metrics.items()}}
      return total, (metrics, r1)

    (_, (d_metrics, r1)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
    d_updates, d_opt_state = d_optimizer.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    def g_loss_fn(g_params):
      latents, fake = generate(state, g_params, g_key, batch)
      fake_logits, fake_aux = discriminate(d_params, fake)
      adversarial = nonsaturating_g_loss(fake_logits)
      extra, extra_metrics = terms.g_loss(latents, fake_aux)
      return adversarial + extra, {"g/loss": adversarial, **{f"g/{k}": v for k, v in extra_metrics.items()}}

    (_, g_metrics), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    g_updates, g_opt_state = g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    g_ema = ema_update(state.g_ema_params, g_params, ema_decay_at(state.step, config.ema_decay))
    new_state = state.replace(step=state.step + 1, g_params=g_params, g_ema_params=g_ema, d_params=d_params,
                              g_opt_state=g_opt_state, d_opt_state=d_opt_state)
    metrics = {**d_metrics, **g_metrics}
    if r1_every:
      metrics["d/r1"] = r1  # 0 on the steps without the penalty
    return new_state, metrics

  # Fixed shardings in and out: the state stays replicated step after step, so the step compiles exactly once.
  replicated = parallel.replicated_sharding(mesh)
  jitted = jax.jit(step_fn, in_shardings=(replicated, batch_sharding, replicated),
                   out_shardings=(replicated, replicated), donate_argnums=(0,))
  return Engine(config=config, mesh=mesh, gen=gen, disc=disc, terms=terms, g_optimizer=g_optimizer,
                d_optimizer=d_optimizer, jitted_step=jitted, init_fn=init_fn, dataset=dataset)


# ---------------------------------------------------------------------------------------------------------------
# Pictures and export.

def sample_images(engine: Engine, state: GANState, num: int, seed: int = 1234, params=None) -> np.ndarray:
  """`num` samples of the EMA generator (deterministic noise) as display images in [0, 1], NHWC."""
  latents = engine.terms.sample_latents(jax.random.key(seed), num)
  params = state.g_ema_params if params is None else params
  images = jax.jit(lambda p, f, z: engine.gen.module.apply({"params": p, **f}, z))(
      params, state.g_frozen, engine.terms.generator_input(latents))
  return np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)


def sample_grid(engine: Engine, state: GANState, num: int, path: str | None = None) -> np.ndarray:
  """`num` EMA samples as one uint8 picture, 8 per row (saved as PNG when `path` is given)."""
  return viz.images_to_grid(viz.to_display(sample_images(engine, state, num), (0.0, 1.0)), path=path)


def export_generator(engine: Engine, state: GANState, directory: str, source: str = "") -> None:
  """Writes the EMA generator as a converted generator dir (`generators.load(directory)` works)."""
  variables = {"params": jax.device_get(state.g_ema_params), **jax.device_get(state.g_frozen)}
  save_converted(directory, engine.gen.config, variables, source=source)


# ---------------------------------------------------------------------------------------------------------------
# Entry point.

def setup(config: ml_collections.ConfigDict, terms_factory=None):
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  data_kwargs = {k: v for k, v in dict(config.data).items() if k != "name"}
  dataset = make_dataset(config.data.name, **data_kwargs)
  engine = make_engine(config, mesh, terms_factory, dataset)
  if tuple(dataset.observation_shape) != tuple(engine.gen.info.image_shape):
    raise ValueError(f"dataset {config.data.name} has images {tuple(dataset.observation_shape)} but the generator "
                     f"makes {tuple(engine.gen.info.image_shape)}")
  return mesh, engine


def run_training(config, workdir: str, engine: Engine, mesh) -> GANState:
  start = time.time()
  state = loop.run(config=config, workdir=workdir, mesh=mesh, init_fn=engine.init_fn, train_step=engine.train_step,
                   images_per_step=config.batch_size,
                   image_fn=lambda s: {"samples": sample_grid(engine, s, 32)})
  _record_time(workdir, time.time() - start, int(jax.device_get(state.step)))
  return state


def _record_time(workdir: str, seconds: float, step: int) -> None:
  """Accumulates wall time over resumed runs in workdir/training_time.json (for model cards)."""
  path = os.path.join(workdir, "training_time.json")
  record = {"seconds": 0.0, "sessions": 0}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  record = {"seconds": record["seconds"] + seconds, "sessions": record["sessions"] + 1, "step": step}
  with open(path, "w") as f:
    json.dump(record, f, indent=2)


def train(config: ml_collections.ConfigDict, workdir: str) -> GANState:
  mesh, engine = setup(config)
  state = run_training(config, workdir, engine, mesh)
  export_generator(engine, state, os.path.join(workdir, EXPORT_DIR), source=f"ganlatent_jax gan {workdir}")
  sample_grid(engine, state, 64, path=os.path.join(workdir, "samples.png"))
  logging.info("exported the EMA generator to %s", os.path.join(workdir, EXPORT_DIR))
  return state


if __name__ == "__main__":   # `python -m ganlatent_jax.methods.gan export|remeasure ...` (the model cards' command)
  from ganlatent_jax.methods import gan_export
  gan_export.main()
