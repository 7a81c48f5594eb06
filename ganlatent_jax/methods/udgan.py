"""UD-GAN and UD-GAN-G ("Unlabeled Disentangling of GANs with Guided Siamese Networks", ICLR 2019 submission; no
public code exists) on the GAN engine of `methods/_gan.py`.

  python -m ganlatent_jax.main --config=configs/udgan_dsprites.py --workdir=/tmp/udgan_dsprites
  python -m ganlatent_jax.main --config=configs/udgan_g_dsprites.py --workdir=/tmp/udgan_g_dsprites
  python -m ganlatent_jax.main --config=configs/udgan_dsprites.py:quick --workdir=/tmp/udgan_quick   # seconds
  python -m ganlatent_jax.evaluate --config=configs/udgan_dsprites.py --workdir=/tmp/udgan_dsprites

The generator input is N_A one-dimensional knobs q_i ~ U(−1, 1) (plus `noise_dim` noise dims, never chosen). Every
batch of B fakes is B/4 quadruplets (`losses.udgan.quadruplet_latents`): for a chosen knob i, x_11, x_12, x_21, x_22
share knob i within a row n and everything else within a column m, and each image is marginally a prior draw, so D
sees correctly distributed fakes and is not modified. One 1-D embedding φ_i per knob (`embed_dim` dims): the
unguided knobs share one network (the discriminator's architecture, `udgan.siamese`, its auxiliary head of
num_unguided·E outputs), each guided knob (UD-GAN-G) has a small MLP on its guidance measure (`nets.guidance`,
standardised with mean/std of unlabelled real images so every MLP input is on a unit scale). The contrastive loss
with the adaptive margin |q¹_i − q²_i| (Eq. 2, `contrastive_loss`) is minimised by the siamese networks (trained by
D's optimizer, in the D step, on the batch's detached fakes) and by G (in the G step, through the updated φ), both
weighted by λ_φ = `udgan.weight`.

Why guidance matters: with an unrestricted φ_i the loss only asks each knob to be recoverable from the image (like
InfoGAN's Q); a guided φ_X sees only M̂_x(G(z)), so G must make the centre of mass depend on q_X alone.

At the end of training the workdir gets traversals/knob_K[_guidance].png (rows: base latents, columns: knob K over
[−1, 1]), samples.png, generator/ and metrics.json (`evaluate`): β-VAE, FactorVAE and MIG scores of the concatenated
siamese outputs on real images of the training data (the paper's representation), `knob_effect` (mean |ΔG| per knob
over its range: a knob G ignores scores 0) and, for guided knobs, the correlation of each guidance measure with the
ground-truth factors on real images (the paper's Table 7 on our data) and `guidance_only`: the same scores of the
guidance measures themselves (the control row: how much of the score the guidance alone gives). The siamese networks live in the checkpoint
(`state.params['siamese']`); `make_represent_fn(engine, state)` rebuilds the encoder.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganlatent_jax import parallel, viz
from ganlatent_jax.losses import udgan as udgan_losses
from ganlatent_jax.losses.udgan import contrastive_loss, energy_distance, quadruplet_latents  # noqa: F401 (public)
from ganlatent_jax.methods import _common, _gan, _gan_data, _gan_run
from ganlatent_jax.nets import discriminators, guidance

# key(config.seed + offset) of the draws outside the training steps (those come from parallel.step_rng).
STREAMS = dict(init=0, evaluation=0, standardization=0, traversals=7, knob_effect=11, generated_domain=17,
               samples=_gan.SAMPLES_STREAM)
EVALUATION_METRICS = ("beta_vae", "factor_vae", "mig")
MARGINS = ("adaptive", "fixed")
SIAMESE = "siamese"
State = _gan.State   # the engine's: params {'generator', 'discriminator', 'siamese'}, batch_stats, opt_state


# ---------------------------------------------------------------------------------------------------------------
# The siamese networks.

class ScalarMLP(nn.Module):
  """A guided knob's φ on a (standardised) vector guidance: d_in → hidden… → E, leaky ReLU 0.2."""
  hidden: tuple[int, ...]
  out: int

  @nn.compact
  def __call__(self, x):
    for i, width in enumerate(self.hidden):
      x = nn.leaky_relu(nn.Dense(width, name=f"dense_{i}")(x), 0.2)
    return nn.Dense(self.out, name="out")(x)


class ImageTrunk(nn.Module):
  """A guided knob's φ on an image guidance (a band of the face, an edge map): 3×3 convs, stride 2 until the height
  is 4 (specs/udgan.md A12), leaky ReLU 0.2, then a dense layer to E."""
  widths: tuple[int, ...]
  out: int

  @nn.compact
  def __call__(self, x):
    for i, width in enumerate(self.widths):
      stride = 2 if x.shape[1] > 4 else 1
      x = nn.leaky_relu(nn.Conv(width, (3, 3), strides=stride, padding="SAME", name=f"conv_{i}")(x), 0.2)
    return nn.Dense(self.out, name="out")(x.reshape(x.shape[0], -1))


class SiameseBank(nn.Module):
  """Images NHWC in [−1, 1] → (B, N_A·E) embeddings, knob order: the unguided knobs first (one shared trunk with the
  discriminator's architecture; its logit is unused), then `guided` in config order, each with its own network on
  the guidance measure standardised by the constant `standardization` (mean, std) pairs (per dim of a vector
  guidance, per channel of an image one): an MLP for a vector guidance, an `ImageTrunk` for an image guidance (a
  CelebA band). A per-sample function of each image."""
  num_unguided: int
  guided: tuple[str, ...]
  embed_dim: int
  trunk: Any                       # the unguided trunk: a discriminator module with num_unguided·E aux outputs
  scalar_hidden: tuple[int, ...]
  standardization: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
  image_widths: tuple[int, ...] = (32, 64)

  @nn.compact
  def __call__(self, images):
    parts = []
    if self.num_unguided:
      parts.append(self.trunk(images)[1])
    for k, (name, (mean, std)) in enumerate(zip(self.guided, self.standardization)):
      g = guidance.get(name)
      measure = guidance.standardized(g.fn, np.asarray(mean), np.asarray(std))(images)
      network = (ImageTrunk(self.image_widths, self.embed_dim, name=f"guided_{k}_{name}") if g.kind == "image" else
                 ScalarMLP(self.scalar_hidden, self.embed_dim, name=f"guided_{k}_{name}"))
      parts.append(network(measure))
    return jnp.concatenate(parts, axis=-1)


def _check_guided(guided: Sequence[str]) -> tuple[str, ...]:
  for name in guided:
    guidance.get(name)   # ValueError naming the registry
  return tuple(guided)


def fit_standardization(dataset, guided: Sequence[str], num_images: int, seed: int):
  """((mean, std), …) per guided knob over `num_images` unlabelled real images (RandomState(seed))."""
  if not guided:
    return ()
  model = _gan_data.to_model_range(_gan_data.real_images(dataset, num_images, np.random.RandomState(seed)))
  out = []
  for name in guided:
    mean, std = guidance.fit_standardization(guidance.get(name).fn, model)
    out.append((tuple(float(v) for v in mean), tuple(float(v) for v in std)))
  return tuple(out)


# ---------------------------------------------------------------------------------------------------------------
# The terms.

class UDGANTerms(_gan.GANTerms):
  """Latents = quadruplets of knob draws; the siamese bank trained with D's optimizer; Eq. 2 in both steps."""
  supports_style_mixing = False   # a mixed image no longer shows its quadruplet's knob values
  net_groups = {SIAMESE: _gan.DISCRIMINATOR}

  def __init__(self, latent_dim: int, siamese: SiameseBank, image_shape: Sequence[int], noise_dim: int = 0,
               weight: float = 5.0, knob_sampling: str = "per_example", margin: str = "adaptive",
               margin_value: float = 1.0):
    super().__init__(latent_dim)
    self.num_knobs = siamese.num_unguided + len(siamese.guided)
    if self.num_knobs < 1 or noise_dim < 0 or self.num_knobs + noise_dim != latent_dim:
      raise ValueError(f"config.udgan.num_unguided ({siamese.num_unguided}) + len(config.udgan.guided) "
                       f"({len(siamese.guided)}) + config.udgan.noise_dim ({noise_dim}) must equal the generator's "
                       f"latent size config.architecture.latent_dim ({latent_dim}), with at least one knob")
    if knob_sampling not in udgan_losses.KNOB_SAMPLING:
      raise ValueError(f"config.udgan.knob_sampling={knob_sampling!r}: choose one of {udgan_losses.KNOB_SAMPLING}")
    if margin not in MARGINS:
      raise ValueError(f"config.udgan.margin={margin!r}: choose one of {MARGINS}")
    self.siamese, self.image_shape = siamese, tuple(image_shape)
    self.noise_dim, self.weight, self.knob_sampling = noise_dim, weight, knob_sampling
    self.margin, self.margin_value = margin, margin_value
    self.embed_dim = siamese.embed_dim

  def latent_prior(self):
    """Every dimension of z — knobs and extra noise — is drawn U(−1, 1) (`quadruplet_latents`)."""
    return (("uniform", self.latent_dim),)

  def knob_names(self) -> list[str]:
    return [f"knob_{k}" for k in range(self.siamese.num_unguided)] + [
        f"knob_{self.siamese.num_unguided + j}_{name}" for j, name in enumerate(self.siamese.guided)]

  def init_nets(self, rng):
    return {SIAMESE: self.siamese.init(rng, jnp.zeros((1, *self.image_shape), jnp.float32))["params"]}

  def sample_latents(self, rng, batch):
    return quadruplet_latents(rng, batch, self.num_knobs, self.noise_dim, self.knob_sampling)

  def embed(self, siamese_params, images):
    return self.siamese.apply({"params": siamese_params}, images)

  def contrastive(self, siamese_params, latents, images):
    """Eq. 2 averaged over the batch's quadruplets (each by its chosen knob's φ) and its metrics."""
    emb = udgan_losses.knob_embeddings(self.embed(siamese_params, images), latents["knob"], self.embed_dim)
    q1, q2 = latents["q1"][::4], latents["q2"][::4]
    margin = None if self.margin == "adaptive" else self.margin_value
    loss = jnp.mean(udgan_losses.contrastive_loss_per_quadruplet(emb, q1, q2, margin))
    return loss, {"udgan_contrastive": loss}

  def d_loss(self, nets, latents, fake, fake_aux, real, real_aux):
    loss, metrics = self.contrastive(nets[SIAMESE], latents, fake)
    return self.weight * loss, metrics

  def g_loss(self, nets, latents, fake, fake_aux, render):
    loss, metrics = self.contrastive(nets[SIAMESE], latents, fake)
    return self.weight * loss, metrics


def _num_devices(config) -> int:
  return parallel.make_mesh(config.get("num_devices") or None).devices.size


def terms_factory(config, dataset=None, num_devices: int | None = None):
  """The engine's terms factory. Checks the batch (quadruplets never straddle devices) and measures the guidance
  standardisation on real images (`dataset`, else the config's) before the engine is built."""
  u = config.udgan
  udgan_losses.check_quadruplet_batch(int(config.batch_size), num_devices or _num_devices(config))
  guided = _check_guided(tuple(u.guided))
  if u.siamese.kind == "stylegan2" and int(u.siamese.get("stddev_group", 4)) > 1:
    raise ValueError(f"config.udgan.siamese: a stylegan2 trunk with stddev_group="
                     f"{int(u.siamese.get('stddev_group', 4))} mixes statistics of the batch into every embedding; "
                     f"an embedding must be a per-sample function — set config.udgan.siamese.stddev_group=1")
  standardization = ()
  if guided:
    _common.check_positive(config, "udgan.standardization_images")
    if dataset is None:
      dataset = _gan_data.dataset_from_config(config)
    standardization = fit_standardization(dataset, guided, int(u.standardization_images),
                                          int(config.seed) + STREAMS["standardization"])

  def make(gen_spec):
    image_size = gen_spec.info.image_shape[0]
    trunk = discriminators.from_config(dict(u.siamese), image_size,
                                       aux_outputs=max(int(u.num_unguided), 1) * int(u.embed_dim))
    bank = SiameseBank(num_unguided=int(u.num_unguided), guided=guided, embed_dim=int(u.embed_dim), trunk=trunk,
                       scalar_hidden=tuple(int(h) for h in u.scalar_hidden), standardization=standardization,
                       image_widths=tuple(int(w) for w in u.get("image_widths", (32, 64))))
    return UDGANTerms(gen_spec.info.latent_dim, bank, gen_spec.info.image_shape, noise_dim=int(u.noise_dim),
                      weight=float(u.weight), knob_sampling=u.knob_sampling, margin=u.margin,
                      margin_value=float(u.margin_value))
  return make


def make(config: ml_collections.ConfigDict, mesh, dataset=None):
  """The contract's (init_fn, train_step, engine): the GAN engine's step with `UDGANTerms`."""
  engine = _gan.make_engine(config, mesh, terms_factory(config, dataset, mesh.devices.size), dataset)
  return engine.init_fn, engine.jitted_step, engine


# ---------------------------------------------------------------------------------------------------------------
# End-of-training outputs.

_APPLY = jax.jit(lambda module, variables, inputs: module.apply(variables, inputs), static_argnums=0)
_EMBED = jax.jit(lambda bank, params, images: bank.apply({"params": params}, images * 2.0 - 1.0), static_argnums=0)


def _ema_images(engine: _gan.Engine, state: _gan.State, inputs) -> np.ndarray:
  """EMA-generator images of `inputs`, in [0, 1] (numpy)."""
  images = _APPLY(engine.gen.module, {"params": state.generator_ema, **state.generator_buffers},
                  jnp.asarray(inputs, jnp.float32))
  return np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)


def knob_sweep_inputs(base: np.ndarray, knob: int, values: np.ndarray) -> np.ndarray:
  """(rows·steps, D): each base latent with coordinate `knob` set to each of `values` (row-major)."""
  swept = np.repeat(base[:, None, :], len(values), axis=1)
  swept[:, :, knob] = values[None, :]
  return swept.reshape(-1, base.shape[-1])


def traversal_images(engine: _gan.Engine, state: _gan.State, knob: int, num_rows: int = 6, steps: int = 9,
                     seed: int = STREAMS["traversals"]) -> np.ndarray:
  """(num_rows, steps, H, W, C) images in [0, 1] sweeping knob `knob` over [−1, 1], every other input fixed."""
  base = np.random.RandomState(seed).uniform(-1.0, 1.0, (num_rows, engine.terms.latent_dim)).astype(np.float32)
  images = _ema_images(engine, state, knob_sweep_inputs(base, knob, np.linspace(-1.0, 1.0, steps, dtype=np.float32)))
  return images.reshape(num_rows, steps, *images.shape[1:])


def save_traversals(engine: _gan.Engine, state: _gan.State, directory: str, seed: int) -> dict[str, str]:
  paths = {}
  for knob, name in enumerate(engine.terms.knob_names()):
    paths[f"traversal_{name}"] = path = os.path.join(directory, f"{name}.png")
    viz.save_png(path, viz.image_grid(viz.to_display(traversal_images(engine, state, knob, seed=seed), (0.0, 1.0))))
  return paths


def knob_effect(engine: _gan.Engine, state: _gan.State, num: int, seed: int) -> list[float]:
  """Per knob, the mean |G(q_k = +1) − G(q_k = −1)| over `num` base latents (pixels in [0, 1]): 0 = G ignores the
  knob (the paper has no Lipschitz control, so a knob may act imperceptibly and still be recoverable by φ)."""
  base = np.random.RandomState(seed).uniform(-1.0, 1.0, (num, engine.terms.latent_dim)).astype(np.float32)
  effects = []
  for knob in range(engine.terms.num_knobs):
    images = _ema_images(engine, state, knob_sweep_inputs(base, knob, np.array([-1.0, 1.0], np.float32)))
    images = images.reshape(num, 2, -1)
    effects.append(float(np.mean(np.abs(images[:, 1] - images[:, 0]))))
  return effects


def make_represent_fn(engine: _gan.Engine, state: _gan.State):
  """images NHWC in [0, 1] (numpy) → the concatenated siamese outputs φ (numpy): UD-GAN's encoder."""
  params = state.params[SIAMESE]
  bank = engine.terms.siamese

  def represent(images):
    return np.asarray(_EMBED(bank, params, jnp.asarray(images, jnp.float32)))
  return represent


def guidance_represent_fn(guided: Sequence[str], standardization):
  """images NHWC in [0, 1] → the standardised guidance measures themselves (B, len(guided)): the README's "guidance
  measures only" row, which tells how much of UD-GAN-G's score comes from the guidance rather than from training."""
  if not guided or len(guided) != len(standardization):
    raise ValueError(f"guidance_represent_fn: need one (mean, std) per guidance, got {len(standardization)} for "
                     f"{tuple(guided)}")
  fns = [guidance.standardized(guidance.get(name).fn, np.asarray(mean), np.asarray(std))
         for name, (mean, std) in zip(guided, standardization)]
  measure = jax.jit(lambda images: jnp.concatenate([fn(images * 2.0 - 1.0) for fn in fns], axis=-1))

  def represent(images):
    return np.asarray(measure(jnp.asarray(images, jnp.float32)))
  return represent


def guidance_factor_correlation(dataset, guided: Sequence[str], num: int, seed: int) -> dict[str, dict[str, float]]:
  """{guidance: {factor: Pearson r}} of each guidance measure with the ground-truth factors on `num` real images (the
  paper's Table 7 on our data); a constant factor or measure gets r = 0."""
  factors, images = dataset.sample(num, np.random.RandomState(seed))
  model = jnp.asarray(_gan_data.to_model_range(images))
  names = list(getattr(dataset, "factor_names", None) or [f"factor_{j}" for j in range(factors.shape[1])])
  out = {}
  for name in guided:
    if guidance.get(name).kind != "vector":   # an image (a band of a face) has no single value to correlate
      continue
    measure = np.asarray(guidance.get(name).fn(model), np.float64)[:, 0]
    row = {}
    for j, factor in enumerate(names):
      f = np.asarray(factors[:, j], np.float64)
      row[factor] = 0.0 if f.std() == 0 or measure.std() == 0 else float(np.corrcoef(measure, f)[0, 1])
    out[name] = row
  return out


def _scores(config, engine: _gan.Engine, state: _gan.State) -> dict[str, Any]:
  """β-VAE, FactorVAE and MIG of the siamese representation on the training dataset, knob_effect, and (UD-GAN-G) the
  guidance measures' correlation with the factors."""
  metrics = tuple(config.evaluation.metrics)
  labelled = _gan_data.has_factors(engine.dataset)
  if set(metrics) - set(EVALUATION_METRICS) or (labelled and not metrics) or (metrics and not labelled):
    raise ValueError(f"config.evaluation.metrics={metrics!r}: expected a non-empty subset of {EVALUATION_METRICS} "
                     f"on a dataset with factor labels, () on one without (CelebA: knob_effect only)")
  protocol = config.evaluation.protocol
  _common.check_positive(config, *(f"evaluation.protocol.{k}" for k in protocol))
  seed = int(config.seed) + STREAMS["evaluation"]
  results: dict[str, Any] = {"step": int(jax.device_get(state.step))}
  if metrics:
    results.update(_gan_data.representation_scores(engine.dataset, make_represent_fn(engine, state), metrics, protocol,
                                              seed))
  results["knob_names"] = engine.terms.knob_names()
  results["knob_effect"] = knob_effect(engine, state, int(protocol.knob_effect_num),
                                       int(config.seed) + STREAMS["knob_effect"])
  if engine.terms.siamese.guided and labelled:
    results["guidance_factor_correlation"] = guidance_factor_correlation(
        engine.dataset, engine.terms.siamese.guided, int(protocol.guidance_num_points), seed)
  return results


def _guidance_only_scores(config, engine: _gan.Engine) -> dict[str, Any]:
  """UD-GAN-G's control: the same scores (same protocol and seed) of the guidance measures themselves as the
  representation (`guidance_represent_fn`), so a table can tell how much of the siamese score the guidance alone
  gives; {} without vector guidances or factor labels."""
  bank = engine.terms.siamese
  vector = [(name, standard) for name, standard in zip(bank.guided, bank.standardization)
            if guidance.get(name).kind == "vector"]
  metrics = tuple(config.evaluation.metrics)
  if not vector or not metrics or not _gan_data.has_factors(engine.dataset):
    return {}
  represent = guidance_represent_fn(*zip(*vector))
  return {"guided": [name for name, _ in vector],
          **_gan_data.representation_scores(engine.dataset, represent, metrics, config.evaluation.protocol,
                                       int(config.seed) + STREAMS["evaluation"])}


def _write_metrics(config, workdir: str, engine: _gan.Engine, state: _gan.State) -> dict[str, Any]:
  results = {"seed": int(config.seed), "evaluation": config.evaluation.to_dict(),
             "siamese": _scores(config, engine, state)}
  guidance_only = _guidance_only_scores(config, engine)
  if guidance_only:
    results["guidance_only"] = guidance_only
  results.update(_common.code_axes_generated_domain(config, workdir, _gan_run.ema_generator(engine, state),
                                                    engine.terms.num_knobs, "knobs",
                                                    _common.stream(config, STREAMS, "generated_domain")))
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  logging.info("UD-GAN metrics: %s", results["siamese"])
  return results


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
  return _gan_run.train_method(config, workdir, "udgan", terms_factory(config),
                               pictures=lambda engine, state, workdir: save_traversals(
                                   engine, state, os.path.join(workdir, "traversals"),
                                   seed=int(config.seed) + STREAMS["traversals"]),
                               write_metrics=_write_metrics)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """The siamese scores of the run in `workdir` (its latest checkpoint holds φ), written to metrics.json."""
  engine, state = _gan_run.restore(config, workdir, terms_factory(config))
  return _write_metrics(config, workdir, engine, state)
