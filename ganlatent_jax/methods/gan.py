"""GAN training engine: a jitted, sharded D-then-G step over any generator family and discriminator.

  python -m ganlatent_jax.main --config=configs/gan_3dshapes.py --workdir=/tmp/gan_3dshapes

Losses and regularisers, as rosinality's `train.py` (StyleGAN2):
  * the non-saturating logistic loss (D: softplus(D(G(z))) + softplus(-D(x)); G: softplus(-D(G(z))));
  * R1 on D, γ/2·E‖∇ₓD(x)‖², lazily: every `r1_every` steps a separate D update with the penalty × `r1_every`;
  * path-length regularisation on G (StyleGAN2 only, `pl_weight` > 0): every `pl_every` steps a separate G update
    with `pl_weight`·`pl_every`·E(‖Jᵀy‖ − a)², J the Jacobian of the image w.r.t. W+, y ~ N(0, I/(H·W)), a the
    running mean of the path lengths (decay `pl_decay`, kept in the state), on batch // `pl_batch_shrink` samples;
  * style mixing (StyleGAN2 only): with probability `style_mixing` a batch's W+ takes its layers ≥ a random
    crossover index (1…n_latent − 1, one per batch as upstream) from a second z;
  * an EMA of G's parameters (the weights that get exported).
Each network's Adam is corrected for its own lazy regulariser only (lr·k/(k+1), β^(k/(k+1)) with k its every):
D's by `r1_every`, G's by `pl_every` when path length is on and not at all otherwise.

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
  # Whether G's input may be mixed with a second draw at a crossover layer (style mixing): not where the input
  # carries codes a loss reads back (InfoGAN), since a mixed image no longer shows one code.
  supports_style_mixing: bool = True

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
  pl_mean: Any             # running mean of the path lengths (path-length regularisation), a scalar


def nonsaturating_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))


def nonsaturating_g_loss(fake_logits: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(-fake_logits))


def r1_penalty(d_logits_fn: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """E_x ‖∇ₓ D(x)‖² over the batch (the sum of logits has the per-sample gradients as its gradient)."""
  grads = jax.grad(lambda x: jnp.sum(d_logits_fn(x)))(real)
  return jnp.mean(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))


def path_lengths(synthesis_fn: Callable[[jax.Array], jax.Array], latent: jax.Array, rng: jax.Array) -> jax.Array:
  """Per-sample ‖Jᵀy‖ of StyleGAN2's path-length regulariser: J = ∂image/∂latent (latent W+ (B, L, D)),
  y ~ N(0, I)/√(H·W); the squared gradient is summed over D and averaged over the L layers (rosinality's
  `g_path_regularize`)."""
  images = jax.eval_shape(synthesis_fn, latent)   # the shape only: no forward pass is traced for it
  noise = jax.random.normal(rng, images.shape, images.dtype) / np.sqrt(images.shape[1] * images.shape[2])
  grad = jax.grad(lambda l: jnp.sum(synthesis_fn(l) * noise))(latent)
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grad), axis=2), axis=1))


def path_length_penalty(lengths: jax.Array, pl_mean: jax.Array, decay: float) -> tuple[jax.Array, jax.Array]:
  """(E(length − a)², a) with a = pl_mean + decay·(mean length − pl_mean), held constant (no gradient)."""
  target = jax.lax.stop_gradient(pl_mean + decay * (jnp.mean(lengths) - pl_mean))
  return jnp.mean(jnp.square(lengths - target)), target


def style_mixing_index(rng: jax.Array, probability: float, num_layers: int) -> jax.Array:
  """The crossover layer of one batch: uniform in 1…num_layers − 1 with `probability`, else num_layers (no mix)."""
  use_key, index_key = jax.random.split(rng)
  index = jax.random.randint(index_key, (), 1, num_layers)
  return jnp.where(jax.random.uniform(use_key) < probability, index, num_layers)


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

  @property
  def has_w(self) -> bool:
    return "w" in self.info.latent_spaces

  def _noise_kwargs(self, rng):
    return {"noise_rng": rng} if self.random_noise else {}

  def apply(self, params, frozen, z, rng, **kwargs):
    return self.module.apply({"params": params, **frozen}, z, **self._noise_kwargs(rng), **kwargs)

  def styles(self, params, frozen, z, **kwargs):
    """The W+ latent (B, num_ws, w_dim) of z (with `mix_latent`/`inject_index` for style mixing)."""
    return self.module.apply({"params": params, **frozen}, z, method="styles", **kwargs)

  def synthesis(self, params, frozen, latent, rng):
    return self.module.apply({"params": params, **frozen}, latent, method="synthesis", **self._noise_kwargs(rng))


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
  regularisers: Any = None
  draw: Callable = None     # draw(rng, batch) -> (latents, G's input, style-mixing kwargs, noise key): one batch's inputs

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


def lazy_adam(lr, beta1, beta2, lazy_every: int = 0):
  """Adam for a network whose regulariser runs as a separate update every `lazy_every` steps (0 = none).

  StyleGAN2's correction: with k regular updates plus one regularisation update per k steps, lr and betas are
  rescaled by k/(k+1) so the dynamics match an optimizer taking one update per step. A network without a lazy
  regulariser gets plain Adam (ratio 1)."""
  if lazy_every < 0:
    raise ValueError(f"lazy_every must be >= 0, got {lazy_every}")
  ratio = lazy_every / (lazy_every + 1.0) if lazy_every > 0 else 1.0
  return optax.adam(lr * ratio, b1=beta1 ** ratio, b2=beta2 ** ratio, eps=1e-8)


@dataclasses.dataclass(frozen=True)
class Regularisers:
  """The engine's regulariser and mixing settings, read and checked once from the run config."""
  r1_gamma: float
  r1_every: int          # 0 = no R1
  pl_weight: float
  pl_every: int          # 0 = no path-length regularisation
  pl_batch_shrink: int
  pl_decay: float
  style_mixing: float    # probability; 0 = off

  @classmethod
  def from_config(cls, config, gen: GeneratorSpec, terms: GANTerms) -> "Regularisers":
    r1_gamma, pl_weight = float(config.r1_gamma), float(config.get("pl_weight", 0.0))
    style_mixing = float(config.get("style_mixing", 0.0))
    regs = cls(r1_gamma=r1_gamma, r1_every=int(config.r1_every) if r1_gamma > 0 else 0,
               pl_weight=pl_weight, pl_every=int(config.get("pl_every", 4)) if pl_weight > 0 else 0,
               pl_batch_shrink=int(config.get("pl_batch_shrink", 2)), pl_decay=float(config.get("pl_decay", 0.01)),
               style_mixing=style_mixing)
    family = gen.config["family"]
    if r1_gamma < 0 or pl_weight < 0:
      raise ValueError(f"config.r1_gamma={r1_gamma} and config.pl_weight={pl_weight} must be >= 0")
    if r1_gamma > 0 and regs.r1_every < 1:
      raise ValueError(f"config.r1_every={config.r1_every} must be >= 1 when config.r1_gamma > 0")
    if pl_weight > 0:
      if not gen.has_w:
        raise ValueError(f"config.pl_weight={pl_weight}: path-length regularisation needs a generator with a W "
                         f"space (StyleGAN2); the {family} family has none — set config.pl_weight=0")
      if regs.pl_every < 1 or regs.pl_batch_shrink < 1 or not 0 < regs.pl_decay <= 1:
        raise ValueError(f"config.pl_every={regs.pl_every} and config.pl_batch_shrink={regs.pl_batch_shrink} must "
                         f"be >= 1 and config.pl_decay={regs.pl_decay} in (0, 1]")
    if not 0.0 <= style_mixing <= 1.0:
      raise ValueError(f"config.style_mixing={style_mixing} must be a probability in [0, 1]")
    if style_mixing > 0:
      if not gen.has_w:
        raise ValueError(f"config.style_mixing={style_mixing}: style mixing needs a generator with W+ (StyleGAN2); "
                         f"the {family} family has none — set config.style_mixing=0")
      if not terms.supports_style_mixing:
        raise ValueError(f"config.style_mixing={style_mixing}: {type(terms).__name__} feeds codes through G's input "
                         f"that a mixed image would no longer show — set config.style_mixing=0")
    return regs


def _constrain_batch(tree, sharding, mesh):
  """Shards a batch over 'data' when it divides the devices (the path-length batch may be smaller than the mesh)."""
  def constrain(a):
    return jax.lax.with_sharding_constraint(a, sharding) if a.shape[0] % mesh.devices.size == 0 else a
  return jax.tree.map(constrain, tree)


def make_engine(config: ml_collections.ConfigDict, mesh, terms_factory: Callable[[GeneratorSpec], GANTerms] = None,
                dataset=None) -> Engine:
  """Builds the pure init function and the jitted step from a run config.

  Config keys: batch_size, generator (family + make_config args), discriminator (kind, width, ...), g_lr, d_lr,
  beta1, beta2, r1_gamma, r1_every, ema_decay; optional (StyleGAN2): pl_weight, pl_every, pl_batch_shrink, pl_decay,
  style_mixing (absent = off).
  """
  parallel.check_batch_size(config.batch_size, mesh)
  gen = make_generator_spec(config.generator)
  terms = terms_factory(gen) if terms_factory is not None else GANTerms(gen.info.latent_dim)
  regs = Regularisers.from_config(config, gen, terms)
  image_size = gen.info.image_shape[0]
  disc = discriminators.from_config(dict(config.discriminator), image_size, aux_outputs=terms.aux_outputs)
  g_optimizer = lazy_adam(config.g_lr, config.beta1, config.beta2, regs.pl_every)
  d_optimizer = lazy_adam(config.d_lr, config.beta1, config.beta2, regs.r1_every)
  family = family_module(gen.config["family"])
  image_shape = gen.info.image_shape
  batch_sharding = parallel.data_sharding(mesh)
  num_ws = gen.info.num_ws

  def init_fn(rng):
    g_key, d_key = jax.random.split(rng)
    variables = dict(family.init_variables(gen.config, g_key))
    g_params = variables.pop("params")
    d_params = disc.init(d_key, jnp.zeros((1, *image_shape), jnp.float32))["params"]
    return GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, g_ema_params=g_params, g_frozen=variables,
                    d_params=d_params, g_opt_state=g_optimizer.init(g_params), d_opt_state=d_optimizer.init(d_params),
                    pl_mean=jnp.zeros((), jnp.float32))

  def discriminate(d_params, images):
    return disc.apply({"params": d_params}, images)

  def mixing_kwargs(rng, z):
    """A second z and one crossover index per batch (only called when style mixing is on)."""
    mix_key, index_key = jax.random.split(rng)
    mix = _constrain_batch(jax.random.normal(mix_key, z.shape, z.dtype), batch_sharding, mesh)
    return {"mix_latent": mix, "inject_index": style_mixing_index(index_key, regs.style_mixing, num_ws)}

  def draw(rng, batch):
    """(latents, G's input, style-mixing kwargs) of one batch. The key is split further only when mixing is on, so
    runs without it draw exactly what they drew before mixing existed."""
    latent_key, noise_key = jax.random.split(rng)
    if regs.style_mixing > 0:
      latent_key, mix_key = jax.random.split(latent_key)
    latents = _constrain_batch(terms.sample_latents(latent_key, batch), batch_sharding, mesh)
    z = terms.generator_input(latents)
    kwargs = mixing_kwargs(mix_key, z) if regs.style_mixing > 0 else {}
    return latents, z, kwargs, noise_key

  def generate(state, g_params, rng, batch):
    latents, z, kwargs, noise_key = draw(rng, batch)
    return latents, gen.apply(g_params, state.g_frozen, z, noise_key, **kwargs)

  # One jitted step: D's adversarial update, D's lazy R1 update (its own step, as upstream), G's adversarial update
  # against the updated D, G's lazy path-length update, EMA. One dispatch and one host sync per iteration, and the
  # regularisation passes sit in `lax.cond`s, so steps without them do not compute them.
  def step_fn(state: GANState, real: jax.Array, rng: jax.Array):
    d_key, g_key = jax.random.split(rng)
    batch = real.shape[0]
    latents, fake = generate(state, state.g_params, d_key, batch)
    fake = jax.lax.stop_gradient(fake)

    def d_loss_fn(d_params):
      fake_logits, fake_aux = discriminate(d_params, fake)
      real_logits, real_aux = discriminate(d_params, real)
      adversarial = nonsaturating_d_loss(real_logits, fake_logits)
      extra, extra_metrics = terms.d_loss(latents, fake_aux, real_aux)
      metrics = {"d/loss": adversarial, "d/real_logit": jnp.mean(real_logits),
                 "d/fake_logit": jnp.mean(fake_logits), **{f"d/{k}": v for k, v in extra_metrics.items()}}
      return adversarial + extra, metrics

    (_, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
    d_updates, d_opt_state = d_optimizer.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    if regs.r1_every:
      def r1_update(operand):
        params, opt_state = operand
        def r1_loss_fn(p):
          r1 = r1_penalty(lambda x: discriminate(p, x)[0], real)
          return 0.5 * regs.r1_gamma * regs.r1_every * r1, r1
        (_, r1), grads = jax.value_and_grad(r1_loss_fn, has_aux=True)(params)
        updates, opt_state = d_optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, r1

      d_params, d_opt_state, r1 = jax.lax.cond(
          state.step % regs.r1_every == 0, r1_update,
          lambda operand: (*operand, jnp.zeros((), jnp.float32)), (d_params, d_opt_state))
      d_metrics["d/r1"] = r1  # 0 on the steps without the penalty

    def g_loss_fn(g_params):
      latents, fake = generate(state, g_params, g_key, batch)
      fake_logits, fake_aux = discriminate(d_params, fake)
      adversarial = nonsaturating_g_loss(fake_logits)
      extra, extra_metrics = terms.g_loss(latents, fake_aux)
      return adversarial + extra, {"g/loss": adversarial, **{f"g/{k}": v for k, v in extra_metrics.items()}}

    (_, g_metrics), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    g_updates, g_opt_state = g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    pl_mean = state.pl_mean

    if regs.pl_every:
      pl_batch = max(1, batch // regs.pl_batch_shrink)

      def pl_update(operand):
        params, opt_state, mean = operand
        _, z, kwargs, noise_key = draw(jax.random.fold_in(g_key, 1), pl_batch)
        path_key, synth_key = jax.random.split(noise_key)

        def pl_loss_fn(p):
          latent = gen.styles(p, state.g_frozen, z, **kwargs)
          lengths = path_lengths(lambda l: gen.synthesis(p, state.g_frozen, l, synth_key), latent, path_key)
          penalty, new_mean = path_length_penalty(lengths, mean, regs.pl_decay)
          return regs.pl_weight * regs.pl_every * penalty, (penalty, new_mean, jnp.mean(lengths))

        (_, (penalty, new_mean, length)), grads = jax.value_and_grad(pl_loss_fn, has_aux=True)(params)
        updates, opt_state = g_optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, new_mean, penalty, length

      g_params, g_opt_state, pl_mean, pl_penalty, pl_length = jax.lax.cond(
          state.step % regs.pl_every == 0, pl_update,
          lambda operand: (*operand, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)),
          (g_params, g_opt_state, state.pl_mean))
      g_metrics.update({"g/path_length_penalty": pl_penalty, "g/path_length": pl_length, "g/path_length_mean": pl_mean})

    g_ema = ema_update(state.g_ema_params, g_params, ema_decay_at(state.step, config.ema_decay))
    new_state = state.replace(step=state.step + 1, g_params=g_params, g_ema_params=g_ema, d_params=d_params,
                              g_opt_state=g_opt_state, d_opt_state=d_opt_state, pl_mean=pl_mean)
    return new_state, {**d_metrics, **g_metrics}

  # Fixed shardings in and out: the state stays replicated step after step, so the step compiles exactly once.
  replicated = parallel.replicated_sharding(mesh)
  jitted = jax.jit(step_fn, in_shardings=(replicated, batch_sharding, replicated),
                   out_shardings=(replicated, replicated), donate_argnums=(0,))
  return Engine(config=config, mesh=mesh, gen=gen, disc=disc, terms=terms, g_optimizer=g_optimizer,
                d_optimizer=d_optimizer, jitted_step=jitted, init_fn=init_fn, dataset=dataset, regularisers=regs,
                draw=draw)


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
