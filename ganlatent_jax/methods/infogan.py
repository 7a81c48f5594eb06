"""InfoGAN (Chen et al. 2016) with continuous codes, on the GAN engine of `methods/_gan.py`.

  python -m ganlatent_jax.main --config=configs/infogan_dsprites.py --workdir=/tmp/infogan_dsprites
  python -m ganlatent_jax.evaluate --config=configs/infogan_dsprites.py --workdir=/tmp/infogan_dsprites

The generator input is [c, z]: `num_codes` continuous codes c ~ U(−1, 1) (or N(0, 1)) and noise z ~ N(0, I) filling
the rest of the generator's latent size. A Q head on the discriminator's last hidden features (the trunk is shared)
predicts c from G([c, z]) as a factorised Gaussian: mean, and log-std when `learn_std` (else std 1). The mutual-
information lower bound is maximised by minimising λ·NLL(c | Q(G(c, z))), added to both the D step (trains Q and the
trunk) and the G step (trains G). At the end of training the workdir gets:
  * traversals/code_K.png — rows: base latents, columns: code K swept over its range, other inputs fixed;
  * samples.png, generator/ (the EMA generator, loadable with `generators.load`);
  * metrics.json — MIG and the FactorVAE score of the representation "Q-head mean of a real image" on the training
    data (`evaluate(config, workdir)`, config.evaluation: enabled, metrics ⊆ ('mig', 'factor_vae'), protocol budgets).
The state, step and loop are the GAN engine's (`_gan.State`, `_gan.make`); this module only adds `InfoGANTerms`.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganlatent_jax import viz
from ganlatent_jax.methods import _common, _gan, _gan_data, _gan_run

# key(config.seed + offset) of the draws outside the training steps (those come from parallel.step_rng).
STREAMS = dict(init=0, evaluation=0, traversals=7, generated_domain=17, samples=_gan.SAMPLES_STREAM)
EVALUATION_METRICS = ("mig", "factor_vae", "beta_vae", "dci")
State = _gan.State   # the engine's: params {'generator', 'discriminator' (with the Q head)}, batch_stats, opt_state

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(codes: jax.Array, q_out: jax.Array, learn_std: bool) -> jax.Array:
  """Mean over the batch of Σ_k −log N(c_k; μ_k, σ_k²), from Q's output [μ (, log σ)] (log σ clipped for safety)."""
  num_codes = codes.shape[-1]
  mean = q_out[:, :num_codes]
  log_std = jnp.clip(q_out[:, num_codes:2 * num_codes], -5.0, 5.0) if learn_std else jnp.zeros_like(mean)
  nll = 0.5 * jnp.square((codes - mean) * jnp.exp(-log_std)) + log_std + 0.5 * LOG_2PI
  return jnp.mean(jnp.sum(nll, axis=-1))


class InfoGANTerms(_gan.GANTerms):
  """Latents {'c': codes, 'z': noise}; the MI loss on the discriminator's auxiliary (Q) output."""

  def __init__(self, latent_dim: int, num_codes: int, code_prior: str = "uniform", mi_weight: float = 1.0,
               learn_std: bool = False):
    super().__init__(latent_dim)
    if not 0 < num_codes <= latent_dim:
      raise ValueError(f"config.infogan.num_codes={num_codes} must be in [1, generator latent size {latent_dim}]")
    if code_prior not in ("uniform", "normal"):
      raise ValueError(f"config.infogan.code_prior={code_prior!r}: choose 'uniform' (U(-1, 1)) or 'normal'")
    self.num_codes, self.code_prior, self.mi_weight, self.learn_std = num_codes, code_prior, mi_weight, learn_std
    self.noise_dim = latent_dim - num_codes
    self.aux_outputs = num_codes * (2 if learn_std else 1)

  def sample_codes(self, rng, batch):
    if self.code_prior == "uniform":
      return jax.random.uniform(rng, (batch, self.num_codes), jnp.float32, -1.0, 1.0)
    return jax.random.normal(rng, (batch, self.num_codes), jnp.float32)

  def latent_prior(self):
    """G's input is [c; z]: the codes' prior, then N(0, I) noise."""
    if self.code_prior == "normal":
      return ()
    return (("uniform", self.num_codes),) + ((("normal", self.noise_dim),) if self.noise_dim else ())

  def sample_latents(self, rng, batch):
    code_key, noise_key = jax.random.split(rng)
    return {"c": self.sample_codes(code_key, batch),
            "z": jax.random.normal(noise_key, (batch, self.noise_dim), jnp.float32)}

  def generator_input(self, latents):
    return jnp.concatenate([latents["c"], latents["z"]], axis=-1)

  def mi_loss(self, latents, q_out):
    return gaussian_nll(latents["c"], q_out, self.learn_std)

  def d_loss(self, nets, latents, fake, fake_aux, real, real_aux):
    loss = self.mi_loss(latents, fake_aux)
    return self.mi_weight * loss, {"mi_nll": loss}

  def g_loss(self, nets, latents, fake, fake_aux, render):
    loss = self.mi_loss(latents, fake_aux)
    return self.mi_weight * loss, {"mi_nll": loss}

  def code_range(self) -> tuple[float, float]:
    return (-1.0, 1.0) if self.code_prior == "uniform" else (-2.0, 2.0)


def terms_factory(config):
  def make(gen_spec):
    return InfoGANTerms(gen_spec.info.latent_dim, int(config.infogan.num_codes), config.infogan.code_prior,
                        float(config.infogan.mi_weight), bool(config.infogan.learn_std))
  return make


def make(config: ml_collections.ConfigDict, mesh, dataset=None):
  """The contract's (init_fn, train_step, engine): the GAN engine's step with `InfoGANTerms`."""
  engine = _gan.make_engine(config, mesh, terms_factory(config), dataset)
  return engine.init_fn, engine.jitted_step, engine


# ---------------------------------------------------------------------------------------------------------------
# End-of-training outputs.

_APPLY = jax.jit(lambda module, variables, inputs: module.apply(variables, inputs), static_argnums=0)
_Q_MEANS = jax.jit(lambda disc, params, images, num_codes: disc.apply({"params": params}, images * 2.0 - 1.0)[1][
    :, :num_codes], static_argnums=(0, 3))


def traversal_images(engine: _gan.Engine, state: _gan.State, code: int, num_rows: int = 6, steps: int = 9,
                     seed: int = STREAMS["traversals"]) -> np.ndarray:
  """(num_rows, steps, H, W, C) EMA-generator images in [0, 1] sweeping code `code`, all other inputs fixed."""
  terms: InfoGANTerms = engine.terms
  latents = terms.sample_latents(jax.random.key(seed), num_rows)
  lo, hi = terms.code_range()
  values = jnp.linspace(lo, hi, steps)
  codes = jnp.repeat(latents["c"][:, None, :], steps, axis=1).at[:, :, code].set(values[None, :])
  noise = jnp.repeat(latents["z"][:, None, :], steps, axis=1)
  inputs = jnp.concatenate([codes, noise], axis=-1).reshape(num_rows * steps, -1)
  images = _APPLY(engine.gen.module, {"params": state.generator_ema, **state.generator_buffers}, inputs)
  images = np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)
  return images.reshape(num_rows, steps, *images.shape[1:])


def save_traversals(engine: _gan.Engine, state: _gan.State, directory: str, seed: int) -> dict[str, str]:
  paths = {}
  for code in range(engine.terms.num_codes):
    paths[f"traversal_code_{code}"] = path = os.path.join(directory, f"code_{code}.png")
    viz.save_png(path, viz.image_grid(viz.to_display(traversal_images(engine, state, code, seed=seed),
                                                     (0.0, 1.0))))
  return paths


def make_represent_fn(engine: _gan.Engine, state: _gan.State):
  """images NHWC in [0, 1] (numpy) → Q-head code means (numpy): InfoGAN's encoder."""
  d_params = state.params[_gan.DISCRIMINATOR]

  def represent(images):
    return np.asarray(_Q_MEANS(engine.disc, d_params, jnp.asarray(images, jnp.float32), engine.terms.num_codes))
  return represent


def _scores(config, engine: _gan.Engine, state: _gan.State) -> dict[str, Any]:
  """MIG, FactorVAE, DCI (and β-VAE when asked) scores of the Q-head representation on the training dataset."""
  metrics = tuple(config.evaluation.metrics)
  if not metrics or set(metrics) - set(EVALUATION_METRICS):
    raise ValueError(f"config.evaluation.metrics={metrics!r}: expected a non-empty subset of {EVALUATION_METRICS}")
  protocol = config.evaluation.protocol
  _common.check_positive(config, *(f"evaluation.protocol.{k}" for k in protocol))
  scores = _gan_data.representation_scores(engine.dataset, make_represent_fn(engine, state), metrics, protocol,
                                      int(config.seed) + STREAMS["evaluation"])
  return {"step": int(jax.device_get(state.step)), **scores}


def _write_metrics(config, workdir: str, engine: _gan.Engine, state: _gan.State) -> dict[str, Any]:
  results = {"seed": int(config.seed), "evaluation": config.evaluation.to_dict(),
             "q_head": _scores(config, engine, state)}
  results.update(_common.code_axes_generated_domain(config, workdir, _gan_run.ema_generator(engine, state),
                                                    engine.terms.num_codes, "codes",
                                                    _common.stream(config, STREAMS, "generated_domain")))
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  logging.info("InfoGAN metrics: %s", results["q_head"])
  return results


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
  return _gan_run.train_method(config, workdir, "infogan", terms_factory(config),
                               pictures=lambda engine, state, workdir: save_traversals(
                                   engine, state, os.path.join(workdir, "traversals"),
                                   seed=int(config.seed) + STREAMS["traversals"]),
                               write_metrics=_write_metrics)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """The Q-head scores of the run in `workdir` (its latest checkpoint: Q is part of D), written to metrics.json."""
  engine, state = _gan_run.restore(config, workdir, terms_factory(config))
  return _write_metrics(config, workdir, engine, state)
