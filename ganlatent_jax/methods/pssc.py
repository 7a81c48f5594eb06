"""PS-SC (Zhu, Xu, Tao, "Where and What? Examining Interpretable Disentangled Representations", CVPR 2021) on the GAN
engine of `methods/_gan.py`: the modular generator of family `pssc` (Spatial Constriction modules with cumax masks,
`generators/pssc.py`), a recognizer Q, and the Perceptual Simplicity loss (`losses/pssc.py`).

  python -m ganlatent_jax.main --config=configs/pssc_3dshapes.py --workdir=/tmp/pssc_3dshapes
  python -m ganlatent_jax.main --config=configs/pssc_dsprites.py:quick --workdir=/tmp/pssc_quick   # seconds
  python -m ganlatent_jax.evaluate --config=configs/pssc_3dshapes.py --workdir=/tmp/pssc_3dshapes

The code c ~ N(0, I_d) is G's whole input (no mapping, no z; per-pixel noise inside G's `Noise` modules). Per G step
(upstream `training/loss_ps_sc.py: G_logistic_ns_ps_sc`), with `config.pssc.loss`:
  * 'ps': pairs c, c′ = c + Δ·onehot(k) (k uniform per row, Δ = ε·N(0, eps_std²) or ε), x = G(c) (the batch D
    judges) and x′ = G(c′) rendered with independent noise; r, r′ = Q([x; x′]) in one call (Q's minibatch stddev
    mixes x and x′ rows, as upstream); loss += λ·ps_loss (upstream's normalisation, or Eq. 9's with
    reduction='paper' = 2/d × upstream);
  * 'infogan_l2': upstream's InfoGAN baseline, loss += λ·mean_b ‖Q(G(c)) − c‖₂ (not squared).
Q is a StyleGAN2 discriminator body with a d-way linear head (`config.recognizer`), an extra network of the engine
trained by G's optimizer only (`net_groups = {'q': 'generator'}`); it never sees real images in training. The D step
is the engine's unpaired one.

At the end of training the workdir gets samples.png, generator/ (the EMA generator), recognizer.msgpack (Q's
params) + recognizer.json (its config), traversals/code_K.png (rows: base codes, columns: code K over [−2, 2]),
masks/code_K.png (the same traversal with code K's spatial mask tinted red; codes of SC modules only),
traversals/by_tpl.png after TPL is measured (one row per code, highest TPL first, masks tinted; the order in
the TPL block's `order` in metrics.json) and,
with `config.evaluation.enabled`, metrics.json: `q` = MIG, DCI and FactorVAE of "Q of a real image" on the training
data (upstream's protocol: Q on real images in [−1, 1]); FactorVAE as `factor_vae` with the protocol's vote batch /
prune threshold (the configs: disentanglement_lib's 64 / 0.05) and as `factor_vae_upstream` with upstream PS-SC's
(60 / 0.1, `upstream_factor_vae`), and with 'tpl' in the metrics the TPL of the EMA generator (`metrics.tpl`: pixel
distance → key `tpl_pixel`; LPIPS-VGG → key `tpl` when `evaluation.protocol.tpl_vgg16_path` names torchvision's
VGG16 file, `tpl_distance`), and for G's with SC modules `mask_area` (each SC code's mask area,
`generators.pssc.mask_area_summary`: which codes kept a region). While G trains, TensorBoard's masks/area_code_K
follow the same areas at every log step (`mask_area_log_fn`): when a code's region grows or dies.

Q's minibatch stddev makes its output depend on its batch-mates (as upstream); metric batches are fed whole, a batch
that is not a multiple of the group is padded by repeating its last image and the padded rows dropped.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganlatent_jax import io, viz
from ganlatent_jax.generators import pssc as pssc_generators
from ganlatent_jax.losses import pssc as pssc_losses
from ganlatent_jax.losses.pssc import ps_loss  # noqa: F401 (public: the PS loss beside the method that trains with it)
from ganlatent_jax.methods import _common, _gan, _gan_data, _gan_run
from ganlatent_jax.nets import discriminators

# key(config.seed + offset) of the draws outside the training steps (those come from parallel.step_rng).
STREAMS = dict(init=0, evaluation=0, traversals=7, tpl=11, masks=13, generated_domain=17,
               samples=_gan.SAMPLES_STREAM)
# Codes the mask areas logged while training average over (TensorBoard masks/*, every log step; the same codes and
# noise each time, so the logged values are a curve): fewer than the evaluation's, for speed.
MASK_LOG_SAMPLES = 64
EVALUATION_METRICS = ("mig", "factor_vae", "factor_vae_upstream", "dci", "tpl")
# 'factor_vae_upstream': Q's FactorVAE again with upstream PS-SC's vote batch and pruning
# (metrics/factor_vae_metric.py: batch 60, dims with std < 0.1 pruned), the protocol of the paper's Table 5, beside
# 'factor_vae' (the configs' disentanglement_lib 64 / 0.05, comparable with every other table here); same vote budgets
# and seed stream.
UPSTREAM_FACTOR_VAE_KEYS = ("factor_vae_upstream_batch_size", "factor_vae_upstream_prune_threshold")
LOSSES = ("ps", "infogan_l2")
RECOGNIZER = "q"
State = _gan.State   # the engine's: params {'generator', 'discriminator', 'q'}, batch_stats, opt_state
TRAVERSAL_SPAN = 2.0  # traversal pictures sweep each code over [−2, 2] (upstream's grids); TPL uses [−4, 4]


class PSSCTerms(_gan.GANTerms):
  """Latents {'z': c, 'c_prime': c′, 'k': perturbed dim}; the PS (or InfoGAN-L2) loss of a recognizer Q on G's images."""
  supports_style_mixing = False   # PS-SC's G has no W+ anyway
  net_groups = {RECOGNIZER: _gan.GENERATOR}

  def __init__(self, latent_dim: int, image_shape: tuple[int, ...], recognizer: Mapping[str, Any], loss: str = "ps",
               weight: float = 0.01, epsilon: float = 3.0, random_eps: bool = True, eps_std: float = 2.0,
               reduction: str = "upstream"):
    super().__init__(latent_dim)
    if loss not in LOSSES:
      raise ValueError(f"config.pssc.loss={loss!r}: choose one of {LOSSES}")
    if reduction not in pssc_losses.REDUCTIONS:
      raise ValueError(f"config.pssc.reduction={reduction!r}: choose one of {pssc_losses.REDUCTIONS}")
    if weight < 0 or (loss == "ps" and (epsilon <= 0 or eps_std <= 0)):
      raise ValueError(f"config.pssc: weight={weight} must be >= 0, epsilon={epsilon} and eps_std={eps_std} > 0")
    self.image_shape = tuple(image_shape)
    self.loss, self.weight, self.reduction = loss, float(weight), reduction
    self.epsilon, self.random_eps, self.eps_std = float(epsilon), bool(random_eps), float(eps_std)
    self.recognizer_config = dict(recognizer)
    self.recognizer = discriminators.from_config(self.recognizer_config, self.image_shape[0], aux_outputs=latent_dim)

  def init_nets(self, rng):
    return {RECOGNIZER: self.recognizer.init(rng, jnp.zeros((1, *self.image_shape), jnp.float32))["params"]}

  def recognize(self, q_params, images):
    """Q's (B, d) code predictions of images in [−1, 1]."""
    return self.recognizer.apply({"params": q_params}, images)[1]

  def sample_latents(self, rng, batch):
    code_key, pair_key = jax.random.split(rng)
    c = jax.random.normal(code_key, (batch, self.latent_dim), jnp.float32)
    c_prime, k, _ = pssc_losses.perturb(pair_key, c, self.epsilon, self.random_eps, self.eps_std)
    return {"z": c, "c_prime": c_prime, "k": k}

  def g_loss(self, nets, latents, fake, fake_aux, render):
    c = latents["z"]
    if self.loss == "infogan_l2":
      r = self.recognize(nets[RECOGNIZER], fake)
      loss = pssc_losses.infogan_l2_loss(c, r)
      return self.weight * loss, {"infogan_l2": loss, "q_mse": jnp.mean(jnp.square(r - c))}
    x_prime = render(latents["c_prime"])   # noise independent of x's (upstream: one G call on [c; c′])
    both = self.recognize(nets[RECOGNIZER], jnp.concatenate([fake, x_prime], axis=0))
    r, r_prime = both[:c.shape[0]], both[c.shape[0]:]
    loss = jnp.mean(pssc_losses.ps_loss_per_example(c, latents["c_prime"], r, r_prime, latents["k"],
                                                    self.reduction))
    return self.weight * loss, {"ps_loss": loss, "q_mse": jnp.mean(jnp.square(r - c))}


def terms_factory(config):
  section = config.pssc

  def make(gen_spec):
    return PSSCTerms(gen_spec.info.latent_dim, gen_spec.info.image_shape, dict(config.recognizer), section.loss,
                     float(section.weight), float(section.epsilon), bool(section.random_eps),
                     float(section.eps_std), section.reduction)
  return make


def make(config: ml_collections.ConfigDict, mesh, dataset=None):
  """The contract's (init_fn, train_step, engine): the GAN engine's step with `PSSCTerms`."""
  engine = _gan.make_engine(config, mesh, terms_factory(config), dataset)
  return engine.init_fn, engine.jitted_step, engine


# ---------------------------------------------------------------------------------------------------------------
# Q as an encoder of real images.

_RECOGNIZE = jax.jit(lambda terms, params, images: terms.recognize(params, images), static_argnums=0)


def make_represent_fn(engine: _gan.Engine, state: _gan.State):
  """images NHWC in [0, 1] (numpy) → Q's codes (numpy), each call's images as one batch (see the module doc)."""
  terms: PSSCTerms = engine.terms
  params = state.params[RECOGNIZER]
  group = max(1, int(terms.recognizer_config.get("stddev_group", 4)))

  def represent(images):
    images = np.asarray(images, np.float32) * 2.0 - 1.0
    num = len(images)
    padded = -(-num // group) * group if num > group else num
    if padded > num:
      images = np.concatenate([images, np.repeat(images[-1:], padded - num, axis=0)])
    return np.asarray(_RECOGNIZE(terms, params, jnp.asarray(images)))[:num]
  return represent


# ---------------------------------------------------------------------------------------------------------------
# Outputs.

_APPLY = jax.jit(lambda module, variables, inputs: module.apply(variables, inputs), static_argnums=0)
_MASKS = jax.jit(lambda module, variables, inputs: module.apply(variables, inputs, method="masks"), static_argnums=0)
_MASK_AREAS = jax.jit(lambda module, variables, z, noise_rng: jnp.mean(
    module.apply(variables, z, method="masks", noise_rng=noise_rng), axis=(0, 2, 3)), static_argnums=0)


def _traversal_inputs(engine: _gan.Engine, code: int, num_rows: int, steps: int, seed: int) -> jax.Array:
  """(num_rows·steps, d): num_rows base codes, code `code` of each swept over [−2, 2] in `steps` values."""
  codes = jax.random.normal(jax.random.key(seed), (num_rows, engine.terms.latent_dim), jnp.float32)
  values = jnp.linspace(-TRAVERSAL_SPAN, TRAVERSAL_SPAN, steps)
  return jnp.repeat(codes[:, None, :], steps, axis=1).at[:, :, code].set(values[None, :]).reshape(num_rows * steps, -1)


def traversal_images(engine: _gan.Engine, state: _gan.State, code: int, num_rows: int = 6, steps: int = 9,
                     seed: int = STREAMS["traversals"], with_masks: bool = False):
  """(num_rows, steps, H, W, C) EMA-generator images in [0, 1] sweeping code `code` over [−2, 2], the other codes
  and the noise (G's stored buffers) fixed; with `with_masks` also the code's masks (num_rows, steps, H, W)."""
  inputs = _traversal_inputs(engine, code, num_rows, steps, seed)
  variables = {"params": state.generator_ema, **state.generator_buffers}
  images = np.clip((np.asarray(_APPLY(engine.gen.module, variables, inputs), np.float32) + 1.0) / 2.0, 0.0, 1.0)
  images = images.reshape(num_rows, steps, *images.shape[1:])
  if not with_masks:
    return images
  masks = np.asarray(_MASKS(engine.gen.module, variables, inputs), np.float32)[:, code]
  return images, masks.reshape(num_rows, steps, *masks.shape[1:])


def mask_area_log_fn(engine: _gan.Engine, config: ml_collections.ConfigDict):
  """`training.loop.run`'s log_fn: each SC code's mask area of the EMA G at every log step (TensorBoard
  masks/area_code_N; MASK_LOG_SAMPLES fixed codes and noise of stream 'masks') — whether the masks spread or shrink
  while G trains, where metrics.json's `mask_area` sees only the end. None without SC modules."""
  codes = pssc_generators.spatial_codes(engine.gen.module)
  if not codes:
    return None
  code_key, noise_key = jax.random.split(_common.stream(config, STREAMS, "masks"))
  z = jax.random.normal(code_key, (MASK_LOG_SAMPLES, engine.terms.latent_dim), jnp.float32)

  def log_fn(state: _gan.State) -> dict[str, float]:
    variables = {"params": state.generator_ema, **state.generator_buffers}
    areas = np.asarray(_MASK_AREAS(engine.gen.module, variables, z, noise_key))
    return {f"masks/area_code_{code}": float(areas[code]) for code in codes}
  return log_fn


def mask_overlay(images: np.ndarray, masks: np.ndarray, strength: float = 0.6) -> np.ndarray:
  """RGB images in [0, 1] with a mask in [0, 1] tinted red: image·(1 − s·m) + s·m·(1, 0, 0)."""
  rgb = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
  weight = strength * np.clip(masks, 0.0, 1.0)[..., None]
  return rgb * (1.0 - weight) + weight * np.array([1.0, 0.0, 0.0], np.float32)


def write_outputs(engine: _gan.Engine, state: _gan.State, workdir: str, seed: int) -> dict[str, str]:
  """Q's params and config, one traversal picture per code and, for the codes of SC modules, the same traversal
  with the code's spatial mask overlaid (besides the engine's generator and samples)."""
  outputs = {"recognizer": os.path.join(workdir, "recognizer.msgpack"),
             "recognizer_config": os.path.join(workdir, "recognizer.json")}
  io.save_variables(outputs["recognizer"], {"params": jax.device_get(state.params[RECOGNIZER])})
  io.write_json(outputs["recognizer_config"], {**engine.terms.recognizer_config,
                                               "aux_outputs": engine.terms.latent_dim,
                                               "image_shape": list(engine.terms.image_shape)})
  spatial = set(pssc_generators.spatial_codes(engine.gen.module))
  for code in range(engine.terms.latent_dim):
    images, masks = traversal_images(engine, state, code, seed=seed, with_masks=True) if code in spatial else (
        traversal_images(engine, state, code, seed=seed), None)
    outputs[f"traversal_code_{code}"] = path = os.path.join(workdir, "traversals", f"code_{code}.png")
    viz.save_png(path, viz.image_grid(viz.to_display(images, (0.0, 1.0))))
    if masks is not None:
      outputs[f"mask_code_{code}"] = path = os.path.join(workdir, "masks", f"code_{code}.png")
      viz.save_png(path, viz.image_grid(viz.to_display(mask_overlay(images, masks), (0.0, 1.0))))
  return outputs


def tpl_distance(protocol):
  """TPL's image distance: LPIPS-VGG (the paper's; metrics key 'tpl') when protocol.tpl_vgg16_path names torchvision's
  VGG16 file, else None = the pixel distance (key 'tpl_pixel'). protocol.tpl_lpips_heads: 'shipped' (lpips 0.1
  linear heads) or 'none' (plain VGG feature distances)."""
  path = protocol.get("tpl_vgg16_path", "")
  if not path:
    return None
  heads = protocol.get("tpl_lpips_heads", "shipped")
  if heads not in ("shipped", "none"):
    raise ValueError(f"config.evaluation.protocol.tpl_lpips_heads={heads!r}: 'shipped' or 'none'")
  from ganlatent_jax.port import lpips   # reads the VGG16 file
  return lpips.load_lpips(path, heads="shipped" if heads == "shipped" else None)


def _scores(config, engine: _gan.Engine, state: _gan.State, generator) -> dict[str, Any]:
  """MIG and FactorVAE of Q on real images of the training data; TPL (`tpl_distance`) and the SC mask areas of the
  EMA generator `generator`."""
  from ganlatent_jax.metrics import tpl
  metrics = tuple(config.evaluation.metrics)
  if not metrics or set(metrics) - set(EVALUATION_METRICS):
    raise ValueError(f"config.evaluation.metrics={metrics!r}: expected a non-empty subset of {EVALUATION_METRICS}")
  protocol = config.evaluation.protocol
  _common.check_positive(config, *(f"evaluation.protocol.{k}" for k in protocol
                                   if k not in ("factor_vae_prune_threshold", "factor_vae_upstream_prune_threshold",
                                                "tpl_active_threshold",
                                                "tpl_vgg16_path", "tpl_lpips_heads")))
  seed = int(config.seed) + STREAMS["evaluation"]
  represent = make_represent_fn(engine, state)
  results: dict[str, Any] = {"step": int(jax.device_get(state.step))}
  q_scores = _gan_data.representation_scores(engine.dataset, represent, metrics, protocol, seed)
  if "factor_vae_upstream" in metrics:
    q_scores["factor_vae_upstream"] = upstream_factor_vae(engine.dataset, represent, protocol, seed)
  if q_scores:
    results["q"] = q_scores
  if "tpl" in metrics:
    key, summary = tpl.tpl_per_dimension(
        generator, jax.random.key(int(config.seed) + STREAMS["tpl"]),
        distance_fn=tpl_distance(protocol),
        num_traversals=int(protocol.tpl_num_traversals), points_per_dim=int(protocol.tpl_points_per_dim),
        active_threshold=float(protocol.tpl_active_threshold))
    results[key] = summary
  masks = pssc_generators.mask_area_summary(generator, _common.stream(config, STREAMS, "masks"))
  if masks:
    results["mask_area"] = masks
  return results


def upstream_factor_vae(dataset, represent, protocol, seed: int) -> dict[str, Any]:
  """Q's FactorVAE with upstream PS-SC's vote batch and prune threshold (`protocol.factor_vae_upstream_batch_size` /
  `_prune_threshold`: 60 / 0.1 in the configs) and the protocol's vote budgets: the 'factor_vae' block of
  `_gan_data.representation_scores` plus the batch and threshold it used."""
  missing = [k for k in UPSTREAM_FACTOR_VAE_KEYS if k not in protocol]
  if missing:
    raise ValueError(f"config.evaluation.metrics has 'factor_vae_upstream' but config.evaluation.protocol lacks "
                     f"{missing} (upstream: 60, 0.1)")
  batch, prune = int(protocol.factor_vae_upstream_batch_size), float(protocol.factor_vae_upstream_prune_threshold)
  upstream = ml_collections.ConfigDict(protocol.to_dict())
  upstream.update(factor_vae_batch_size=batch, factor_vae_prune_threshold=prune)
  scores = _gan_data.representation_scores(dataset, represent, ("factor_vae",), upstream, seed)["factor_vae"]
  return {**scores, "batch_size": batch, "prune_threshold": prune}


def tpl_order(per_dim) -> list[int]:
  """Codes from the highest TPL (the code that changes the image most) to the lowest; ties keep code order."""
  return [int(k) for k in np.argsort(-np.asarray(per_dim, np.float64), kind="stable")]


def tpl_ordered_rows(rows: Mapping[int, np.ndarray], order) -> np.ndarray:
  """One traversal row per code, (steps, H, W, C) in [0, 1] each, stacked in `order` → (codes, steps, H, W, 3)
  (`viz.to_display` makes grey rows RGB so rows with a red mask overlay and plain rows share one picture)."""
  return np.stack([viz.to_display(rows[code], (0.0, 1.0)) for code in order])


def write_tpl_ordered_traversals(engine: _gan.Engine, state: _gan.State, workdir: str, per_dim, seed: int) -> str:
  """traversals/by_tpl.png: one row per code (one base code of stream 'traversals'), ordered by `tpl_order`,
  SC codes with their spatial mask tinted red — which codes a run uses and where, in one picture."""
  spatial = set(pssc_generators.spatial_codes(engine.gen.module))
  rows = {}
  for code in range(engine.terms.latent_dim):
    if code in spatial:
      images, masks = traversal_images(engine, state, code, num_rows=1, seed=seed, with_masks=True)
      rows[code] = mask_overlay(images, masks)[0]
    else:
      rows[code] = traversal_images(engine, state, code, num_rows=1, seed=seed)[0]
  path = os.path.join(workdir, "traversals", "by_tpl.png")
  viz.save_png(path, viz.image_grid(tpl_ordered_rows(rows, tpl_order(per_dim))))
  return path


def _write_metrics(config, workdir: str, engine: _gan.Engine, state: _gan.State) -> dict[str, Any]:
  generator = _gan_run.ema_generator(engine, state)
  results = {"seed": int(config.seed), "evaluation": config.evaluation.to_dict(),
             **_scores(config, engine, state, generator)}
  tpl_key = next((key for key in ("tpl", "tpl_pixel") if key in results), None)
  if tpl_key:   # the traversals ordered by the run's TPL (the order kept in its block: `order`)
    per_dim = results[tpl_key]["per_dim"]
    write_tpl_ordered_traversals(engine, state, workdir, per_dim, seed=int(config.seed) + STREAMS["traversals"])
    results[tpl_key]["order"] = tpl_order(per_dim)
  results.update(_common.code_axes_generated_domain(config, workdir, generator,
                                                    engine.terms.latent_dim, "codes",
                                                    _common.stream(config, STREAMS, "generated_domain")))
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  logging.info("PS-SC metrics: %s", {k: v for k, v in results.items() if k != "evaluation"})
  return results


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
  return _gan_run.train_method(config, workdir, "pssc", terms_factory(config),
                               pictures=lambda engine, state, workdir: write_outputs(
                                   engine, state, workdir, seed=int(config.seed) + STREAMS["traversals"]),
                               write_metrics=_write_metrics,
                               log_fn=lambda engine: mask_area_log_fn(engine, config))


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """The scores of the run in `workdir` (its latest checkpoint: Q and the EMA G), written to metrics.json."""
  engine, state = _gan_run.restore(config, workdir, terms_factory(config))
  return _write_metrics(config, workdir, engine, state)
