"""The GAN engine every GAN-training method runs (`methods.gan`, `methods.infogan`; PS-SC and UD-GAN plug in through
`GANTerms`): a jitted, sharded D-then-G (or G-then-D: `step_order`) step over any generator family and
discriminator. Shared code of methods/, like `_common` — no method module imports another.

Losses and regularisers (`losses.gan`), as rosinality's `train.py` (StyleGAN2):
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

`make_engine(config, mesh, ...)` builds `init_fn` and the jitted `train_step(state, real_images, rng)` (state donated,
compiled once); the outer loop (resume, per-step RNG, NaN stop, TensorBoard, checkpoints) is `training.loop.run`,
given `Engine.loop_step`, which draws the step's real batch on the host with `parallel.step_numpy_rng(seed, step)` (a
pure function of the step, so a resumed run sees the same data) and shards it over 'data'; latents are drawn inside
the step from the step's key.

Methods that add terms (InfoGAN's Q head and mutual-information loss, PS-SC, UD-GAN, ...) subclass `GANTerms`:
  * `sample_latents(rng, batch)` → a dict of latent arrays (default {'z': N(0, I)});
  * `generator_input(latents)` → the array fed to the generator (default latents['z']);
  * `d_loss(nets, latents, fake, fake_aux, real, real_aux)` / `g_loss(nets, latents, fake, fake_aux, render)` →
    (extra scalar loss, {name: metric}): `fake`/`real` the batch's images, `*_aux` the discriminator's auxiliary head
    output (see `nets.discriminators`) or None, `nets` the parameters of the terms' own networks, and `render(g_input,
    rng=None)` G's images of other inputs under the parameters being differentiated (PS-SC's perturbed pairs: only
    the batch's own images are judged by D; rng None = per-pixel noise of a key derived from the batch's noise key);
  * `init_nets(rng)` → {name: params} of extra trainable networks, trained by the optimizer of `net_groups[name]`
    ('generator' or 'discriminator'; a Q network of G's objective trains with G).
The engine adds these to its own losses inside the one jitted step, so no method copies the step or the loop.
Pictures, the export and the methods' entry points (`setup`, `run_training`, `restore`, `train_method`) are
`methods._gan_run`.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ganlatent_jax import parallel
from ganlatent_jax.generators.load import family_module
from ganlatent_jax.generators.trainable import GeneratorSpec, make_generator_spec
from ganlatent_jax.methods._gan_data import real_images, to_model_range
from ganlatent_jax.losses.gan import (ema_decay_at, ema_update, lazy_adam, nonsaturating_d_loss,  # noqa: F401
                                      nonsaturating_g_loss, path_length_penalty, path_lengths, r1_penalty,
                                      style_mixing_index)
from ganlatent_jax.nets import discriminators
from ganlatent_jax.training import loop

EXPORT_DIR = "generator"          # the EMA generator, as a converted generator dir, written at the end of training
SAMPLES_STREAM = 1234            # key(config.seed + this): the sample sheets' latents (the same at every log step)
GENERATOR, DISCRIMINATOR = "generator", "discriminator"
STEP_ORDERS = ("d_then_g", "g_then_d")   # config.step_order: which network's phase of an iteration comes first


# ---------------------------------------------------------------------------------------------------------------
# Hooks.

class GANTerms:
  """The plain GAN: z ~ N(0, I), no extra loss. Subclass to add latents, heads, networks and losses (module doc)."""
  aux_outputs: int = 0  # size of the discriminator's auxiliary head (0 = none)
  # Whether G's input may be mixed with a second draw at a crossover layer (style mixing): not where the input
  # carries codes a loss reads back (InfoGAN), since a mixed image no longer shows one code.
  supports_style_mixing: bool = True
  net_groups: Mapping[str, str] = {}   # extra network name -> the optimizer that trains it (GENERATOR | DISCRIMINATOR)

  def __init__(self, latent_dim: int):
    self.latent_dim = latent_dim

  def latent_prior(self) -> tuple[tuple[str, int], ...]:
    """The prior of G's input that `sample_latents` draws, as `GeneratorInfo.latent_prior` segments (() = N(0, I)):
    the exported generator carries it, so `generators.load(...).sample_z` draws what G was trained on."""
    return ()

  def init_nets(self, rng: jax.Array) -> dict[str, Any]:
    del rng
    return {}

  def sample_latents(self, rng: jax.Array, batch: int) -> dict[str, jax.Array]:
    return {"z": jax.random.normal(rng, (batch, self.latent_dim), jnp.float32)}

  def generator_input(self, latents: Mapping[str, jax.Array]) -> jax.Array:
    return latents["z"]

  def d_loss(self, nets, latents, fake, fake_aux, real, real_aux) -> tuple[jax.Array, dict[str, jax.Array]]:
    del nets, latents, fake, fake_aux, real, real_aux
    return jnp.zeros((), jnp.float32), {}

  def g_loss(self, nets, latents, fake, fake_aux, render) -> tuple[jax.Array, dict[str, jax.Array]]:
    del nets, latents, fake, fake_aux, render
    return jnp.zeros((), jnp.float32), {}


# ---------------------------------------------------------------------------------------------------------------
# State.

@flax.struct.dataclass
class State:
  step: jax.Array
  params: Any        # trained by gradients: {'generator': G, 'discriminator': D, **the terms' extra networks}
  batch_stats: Any   # not trained by gradients: {'generator_ema': EMA of G's params (exported), 'generator_buffers':
                     # G's other collections (StyleGAN2 noise, exported as they are), 'path_length_mean': a scalar}
  opt_state: Any     # {'generator': Adam of G's group, 'discriminator': Adam of D's group}

  @property
  def generator_ema(self):
    return self.batch_stats["generator_ema"]

  @property
  def generator_buffers(self):
    return self.batch_stats["generator_buffers"]


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
  jitted_step: Callable     # train_step(state, real_images, rng) -> (state, metrics), jitted once, state donated
  init_fn: Callable
  dataset: Any = None
  regularisers: Any = None
  draw: Callable = None     # draw(rng, batch) -> (latents, G's input, style-mixing kwargs, noise key): one batch's inputs

  def real_batch(self, step: int):
    """The global real batch of `step`, images in [-1, 1], sharded over 'data': this process reads only its rows
    (`real_images`). config.data.mirror: each image flipped left-right with probability 1/2 (upstream's mirror
    augment for faces)."""
    rng = parallel.step_numpy_rng(self.config.seed, step)
    batch = int(self.config.batch_size)
    rows = parallel.process_rows(batch)   # every process draws the global batch's labels, reads only its rows
    images = real_images(self.dataset, batch, rng, rows)
    if self.config.data.get("mirror", False):
      flip = (rng.rand(batch) < 0.5)[rows]
      images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
    return parallel.shard_local_batch(to_model_range(images), batch, self.mesh)

  @functools.cached_property
  def loop_step(self) -> loop.HostBatchStep:
    """The loop's `train_step(state, rng)`: the step's real batch drawn on the host, then the jitted step."""
    return loop.HostBatchStep(self.jitted_step, self.real_batch)


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
  g_lazy_every: int      # G's Adam lazy-regularisation ratio k/(k+1): pl_every, or config.g_lazy_every (0 = none)

  @classmethod
  def from_config(cls, config, gen: GeneratorSpec, terms: GANTerms) -> "Regularisers":
    r1_gamma, pl_weight = float(config.r1_gamma), float(config.get("pl_weight", 0.0))
    style_mixing = float(config.get("style_mixing", 0.0))
    regs = cls(r1_gamma=r1_gamma, r1_every=int(config.r1_every) if r1_gamma > 0 else 0,
               pl_weight=pl_weight, pl_every=int(config.get("pl_every", 4)) if pl_weight > 0 else 0,
               pl_batch_shrink=int(config.get("pl_batch_shrink", 2)), pl_decay=float(config.get("pl_decay", 0.01)),
               style_mixing=style_mixing, g_lazy_every=0)
    # G's Adam follows G's own lazy regulariser (path length). StyleGAN2's TF training loop (PS-SC's upstream) also
    # corrects G by G_reg_interval/(G_reg_interval+1) when G has no regulariser at all: config.g_lazy_every says so.
    g_lazy_every = config.get("g_lazy_every")
    if g_lazy_every is None:
      g_lazy_every = regs.pl_every
    elif regs.pl_every and int(g_lazy_every) != regs.pl_every:
      raise ValueError(f"config.g_lazy_every={g_lazy_every} differs from config.pl_every={regs.pl_every}: with "
                       f"path-length regularisation on, G's Adam is corrected for it (leave g_lazy_every unset)")
    if int(g_lazy_every) < 0:
      raise ValueError(f"config.g_lazy_every={g_lazy_every} must be >= 0 (0 = plain Adam for G)")
    regs = dataclasses.replace(regs, g_lazy_every=int(g_lazy_every))
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


def _groups(terms: GANTerms) -> dict[str, tuple[str, ...]]:
  """The parameter names each optimizer trains: G (and the terms' networks of G's objective), D (and D's)."""
  bad = {name: group for name, group in terms.net_groups.items()
         if group not in (GENERATOR, DISCRIMINATOR) or name in (GENERATOR, DISCRIMINATOR)}
  if bad:
    raise ValueError(f"{type(terms).__name__}.net_groups={dict(terms.net_groups)}: names other than "
                     f"{GENERATOR!r}/{DISCRIMINATOR!r}, each trained by {GENERATOR!r} or {DISCRIMINATOR!r}; bad: {bad}")
  return {group: (group, *sorted(n for n, g in terms.net_groups.items() if g == group))
          for group in (GENERATOR, DISCRIMINATOR)}


def _betas(config, part: str) -> tuple[float, float]:
  """Adam's (β1, β2) of one network: its section's `beta1`/`beta2` where given, else the run's."""
  section = config[part]
  own = section.get("beta1"), section.get("beta2")
  return (float(config.beta1 if own[0] is None else own[0]), float(config.beta2 if own[1] is None else own[1]))


def make_engine(config: ml_collections.ConfigDict, mesh, terms_factory: Callable[[GeneratorSpec], GANTerms] = None,
                dataset=None) -> Engine:
  """Builds the pure init function and the jitted step from a run config.

  Config keys: batch_size, architecture (family + make_config args, learning_rate, random_noise), discriminator
  (kind, width, ..., learning_rate), beta1, beta2 (a part's own `beta1`/`beta2` override them), r1_gamma, r1_every,
  ema_decay; optional: step_order ('d_then_g' when absent, `STEP_ORDERS`), g_lazy_every (G's Adam correction without
  a G regulariser, upstream StyleGAN2-TF's G_reg_interval; absent = pl_every, or none); optional (StyleGAN2):
  pl_weight, pl_every, pl_batch_shrink, pl_decay, style_mixing (absent = off).
  """
  parallel.check_batch_size(config.batch_size, mesh)
  step_order = config.get("step_order", "d_then_g")
  if step_order not in STEP_ORDERS:
    raise ValueError(f"config.step_order={step_order!r}: one of {STEP_ORDERS} (D's phase first, as rosinality's "
                     f"train.py, or G's, as upstream StyleGAN2-TF and PS-SC)")
  gen = make_generator_spec(config.architecture)
  terms = terms_factory(gen) if terms_factory is not None else GANTerms(gen.info.latent_dim)
  regs = Regularisers.from_config(config, gen, terms)
  groups = _groups(terms)
  image_size = gen.info.image_shape[0]
  disc = discriminators.from_config(dict(config.discriminator), image_size, aux_outputs=terms.aux_outputs)
  g_optimizer = lazy_adam(config.architecture.learning_rate, *_betas(config, "architecture"), regs.g_lazy_every)
  d_optimizer = lazy_adam(config.discriminator.learning_rate, *_betas(config, "discriminator"), regs.r1_every)
  family = family_module(gen.config["family"])
  image_shape = gen.info.image_shape
  batch_sharding = parallel.data_sharding(mesh)
  num_ws = gen.info.num_ws

  def init_fn(rng):
    g_key, d_key = jax.random.split(rng)   # the terms' networks fold in: G and D draw what they drew without them
    variables = dict(family.init_variables(gen.config, g_key))
    g_params = variables.pop("params")
    d_params = disc.init(d_key, jnp.zeros((1, *image_shape), jnp.float32))["params"]
    params = {GENERATOR: g_params, DISCRIMINATOR: d_params, **terms.init_nets(jax.random.fold_in(rng, 2))}
    return State(step=jnp.zeros((), jnp.int32), params=params,
                 batch_stats={"generator_ema": g_params, "generator_buffers": variables,
                              "path_length_mean": jnp.zeros((), jnp.float32)},
                 opt_state={GENERATOR: g_optimizer.init({k: params[k] for k in groups[GENERATOR]}),
                            DISCRIMINATOR: d_optimizer.init({k: params[k] for k in groups[DISCRIMINATOR]})})

  def discriminate(d_params, images):
    return disc.apply({"params": d_params}, images)

  def mixing_kwargs(rng, z):
    """A second z and one crossover index per batch (only called when style mixing is on)."""
    mix_key, index_key = jax.random.split(rng)
    mix = _constrain_batch(jax.random.normal(mix_key, z.shape, z.dtype), batch_sharding, mesh)
    return {"mix_latent": mix, "inject_index": style_mixing_index(index_key, regs.style_mixing, num_ws)}

  def draw(rng, batch):
    """(latents, G's input, style-mixing kwargs, noise key) of one batch. The key is split further only when mixing
    is on, so runs without it draw exactly what they drew before mixing existed."""
    latent_key, noise_key = jax.random.split(rng)
    if regs.style_mixing > 0:
      latent_key, mix_key = jax.random.split(latent_key)
    latents = _constrain_batch(terms.sample_latents(latent_key, batch), batch_sharding, mesh)
    z = terms.generator_input(latents)
    kwargs = mixing_kwargs(mix_key, z) if regs.style_mixing > 0 else {}
    return latents, z, kwargs, noise_key

  def terms_nets(params):
    return {k: v for k, v in params.items() if k not in (GENERATOR, DISCRIMINATOR)}

  def update(optimizer, grads, opt_state, group):
    updates, opt_state = optimizer.update(grads, opt_state, group)
    return optax.apply_updates(group, updates), opt_state

  # One jitted step: D's adversarial update, D's lazy R1 update (its own step, as upstream), G's adversarial update
  # against the updated D, G's lazy path-length update, EMA — or G's phase first (`step_order='g_then_d'`, upstream
  # StyleGAN2-TF's training loop, so PS-SC's: D then judges the updated G's images). One dispatch per iteration,
  # and the regularisation passes sit in `lax.cond`s, so steps without them do not compute them.
  def d_phase(state: State, params, real, d_key):
    """D's updates on the batch's fresh fakes of G in `params`: (D's group, its optimizer state, metrics)."""
    batch = real.shape[0]
    buffers = state.generator_buffers
    d_group = {k: params[k] for k in groups[DISCRIMINATOR]}
    latents, z, kwargs, noise_key = draw(d_key, batch)
    fake = jax.lax.stop_gradient(gen.apply(params[GENERATOR], buffers, z, noise_key, **kwargs))

    def d_loss_fn(group):
      fake_logits, fake_aux = discriminate(group[DISCRIMINATOR], fake)
      real_logits, real_aux = discriminate(group[DISCRIMINATOR], real)
      adversarial = nonsaturating_d_loss(real_logits, fake_logits)
      extra, extra_metrics = terms.d_loss(terms_nets({**params, **group}), latents, fake, fake_aux, real, real_aux)
      metrics = {"d/loss": adversarial, "d/real_logit": jnp.mean(real_logits),
                 "d/fake_logit": jnp.mean(fake_logits), **{f"d/{k}": v for k, v in extra_metrics.items()}}
      return adversarial + extra, metrics

    (_, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_group)
    d_group, d_opt_state = update(d_optimizer, d_grads, state.opt_state[DISCRIMINATOR], d_group)

    if regs.r1_every:
      def r1_update(operand):
        group, opt_state = operand
        def r1_loss_fn(g):
          r1 = r1_penalty(lambda x: discriminate(g[DISCRIMINATOR], x)[0], real)
          return 0.5 * regs.r1_gamma * regs.r1_every * r1, r1
        (_, r1), grads = jax.value_and_grad(r1_loss_fn, has_aux=True)(group)
        return (*update(d_optimizer, grads, opt_state, group), r1)

      d_group, d_opt_state, r1 = jax.lax.cond(
          state.step % regs.r1_every == 0, r1_update,
          lambda operand: (*operand, jnp.zeros((), jnp.float32)), (d_group, d_opt_state))
      d_metrics["d/r1"] = r1  # 0 on the steps without the penalty
    return d_group, d_opt_state, d_metrics

  def g_phase(state: State, params, batch, g_key):
    """G's updates against D in `params`: (G's group, its optimizer state, the path-length mean, metrics)."""
    buffers = state.generator_buffers
    g_group = {k: params[k] for k in groups[GENERATOR]}

    def g_loss_fn(group):
      latents, z, kwargs, noise_key = draw(g_key, batch)
      fake = gen.apply(group[GENERATOR], buffers, z, noise_key, **kwargs)
      fake_logits, fake_aux = discriminate(params[DISCRIMINATOR], fake)
      adversarial = nonsaturating_g_loss(fake_logits)
      # rng=None: a key of its own derived from the batch's noise key (the images of other inputs get noise
      # independent of the batch's, as upstream's one G call on [c; c'] draws per row).
      render = lambda g_input, rng=None: gen.apply(group[GENERATOR], buffers, g_input,
                                                   jax.random.fold_in(noise_key, 1) if rng is None else rng)
      extra, extra_metrics = terms.g_loss(terms_nets({**params, **group}), latents, fake, fake_aux, render)
      return adversarial + extra, {"g/loss": adversarial, **{f"g/{k}": v for k, v in extra_metrics.items()}}

    (_, g_metrics), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_group)
    g_group, g_opt_state = update(g_optimizer, g_grads, state.opt_state[GENERATOR], g_group)
    pl_mean = state.batch_stats["path_length_mean"]

    if regs.pl_every:
      pl_batch = max(1, batch // regs.pl_batch_shrink)

      def pl_update(operand):
        group, opt_state, mean = operand
        _, z, kwargs, noise_key = draw(jax.random.fold_in(g_key, 1), pl_batch)
        path_key, synth_key = jax.random.split(noise_key)

        def pl_loss_fn(g):
          latent = gen.styles(g[GENERATOR], buffers, z, **kwargs)
          lengths = path_lengths(lambda l: gen.synthesis(g[GENERATOR], buffers, l, synth_key), latent, path_key)
          penalty, new_mean = path_length_penalty(lengths, mean, regs.pl_decay)
          return regs.pl_weight * regs.pl_every * penalty, (penalty, new_mean, jnp.mean(lengths))

        (_, (penalty, new_mean, length)), grads = jax.value_and_grad(pl_loss_fn, has_aux=True)(group)
        return (*update(g_optimizer, grads, opt_state, group), new_mean, penalty, length)

      g_group, g_opt_state, pl_mean, pl_penalty, pl_length = jax.lax.cond(
          state.step % regs.pl_every == 0, pl_update,
          lambda operand: (*operand, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)),
          (g_group, g_opt_state, pl_mean))
      g_metrics.update({"g/path_length_penalty": pl_penalty, "g/path_length": pl_length, "g/path_length_mean": pl_mean})
    return g_group, g_opt_state, pl_mean, g_metrics

  def step_fn(state: State, real: jax.Array, rng: jax.Array):
    d_key, g_key = jax.random.split(rng)
    params = state.params
    if step_order == "d_then_g":
      d_group, d_opt_state, d_metrics = d_phase(state, params, real, d_key)
      params = {**params, **d_group}
      g_group, g_opt_state, pl_mean, g_metrics = g_phase(state, params, real.shape[0], g_key)
      params = {**params, **g_group}
    else:
      g_group, g_opt_state, pl_mean, g_metrics = g_phase(state, params, real.shape[0], g_key)
      params = {**params, **g_group}
      d_group, d_opt_state, d_metrics = d_phase(state, params, real, d_key)
      params = {**params, **d_group}
    ema = ema_update(state.generator_ema, params[GENERATOR], ema_decay_at(state.step, config.ema_decay))
    new_state = state.replace(
        step=state.step + 1, params=params,
        batch_stats={"generator_ema": ema, "generator_buffers": state.generator_buffers, "path_length_mean": pl_mean},
        opt_state={GENERATOR: g_opt_state, DISCRIMINATOR: d_opt_state})
    return new_state, {**d_metrics, **g_metrics}

  # Fixed shardings in and out: the state stays replicated step after step, so the step compiles exactly once.
  replicated = parallel.replicated_sharding(mesh)
  jitted = jax.jit(step_fn, in_shardings=(replicated, batch_sharding, replicated),
                   out_shardings=(replicated, replicated), donate_argnums=(0,))
  return Engine(config=config, mesh=mesh, gen=gen, disc=disc, terms=terms, g_optimizer=g_optimizer,
                d_optimizer=d_optimizer, jitted_step=jitted, init_fn=init_fn, dataset=dataset, regularisers=regs,
                draw=draw)
