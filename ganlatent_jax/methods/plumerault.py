"""Plumerault et al. (ICLR 2020), "Controlling generative models with continuous factors of variations", as a command.

Per transformation T (config.transforms): recursive trajectories (Eq. 5: invert T_{±t_n}(G(z0)) from the previous
solution, `inversion.trajectories`) from config.trajectories.num_trajectories prior draws, in chunks written to
workdir/trajectories/<T>/chunk_NNNNN.npz (a rerun skips the chunks that exist: the run resumes); the global discard
of the worst tenth over all chunks; the direction model δt = g(⟨u, z_t⟩) − g(⟨u, z0⟩) (Eqs. 6–8,
`directions.continuous.fit`) on the kept records. Writes directions.npz (one unit column per transformation, g in
meta["factor_models"]), images/traversal.png, results.json and, with config.evaluation.enabled, metrics.json: the
paper's control measure (`metrics.control.control_measure`: z − ⟨z, u⟩u + t·u over a t grid, the std of the measured
factor per t, full and core grids, side effects on the other factors; `methods._control`) with a ground-truth estimator
per transformation ('sprite:x', 'sprite:y', 'sprite:scale', ...), beside a supervised probe and a random direction.

No training state (no `make`): the fit is a few thousand Adam steps on small arrays, redone deterministically on a
rerun. Labels: the realised parameter (whole pixels for translations), log(1 + t) for 'scale' (additive, as Eq. 8
needs), or the nominal t with trajectories.label='nominal' (upstream).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from ganlatent_jax import inversion, io, parallel, viz
from ganlatent_jax.directions import continuous
from ganlatent_jax.methods import _common, _control
from ganlatent_jax.metrics import control
from ganlatent_jax.viz import plots

# key(config.seed + offset) of each random draw of a run.
STREAMS = dict(trajectories=0, pictures=3, w_avg=1, fit=5, evaluation=17, model_checks=23)
LABELS = ("realized", "nominal")
LOSSES = ("blurred", "mse")           # Figs. 6/7 ablation: the blurred loss of Eq. 3, or the plain masked MSE
CONSTRAINTS = ("ball", "none")        # Eq. 2's ‖z‖ ≤ radius after every step, or none (ablation)
# Upstream's settings (the spec's right-hand column): the kernel, masking and optimiser of the released code.
PARITY = dict(kernel="upstream", mask_mode="after_blur", adam_eps=1e-7, error_at="last_step", reduction="mean",
              label="nominal", fit_mode="upstream", fit_init="random")


def check_config(config) -> None:
  t = config.trajectories
  _common.check_positive(config, "trajectories.num_trajectories", "trajectories.batch_size",
                         "trajectories.num_steps", "fit.batch_size", "traversal.steps", "traversal.num_samples")
  _common.check_non_negative(config, "trajectories.steps_per_target", "trajectories.sigma", "fit.epochs",
                             "trajectories.discard_fraction")
  unknown = [name for name in config.transforms if name not in inversion.TRANSFORMS]
  if not config.transforms or unknown:
    raise ValueError(f"config.transforms={tuple(config.transforms)!r}: expected names of {inversion.TRANSFORMS}")
  missing = [name for name in config.transforms if name not in t.t_max]
  if missing:
    raise ValueError(f"config.trajectories.t_max has no entry for {missing}")
  for key, allowed in (("scheme", inversion.SCHEMES), ("loss", LOSSES), ("constraint", CONSTRAINTS)):
    if t[key] not in allowed:
      raise ValueError(f"config.trajectories.{key}={t[key]!r}; expected one of {allowed}")
  if t.label not in LABELS:
    raise ValueError(f"config.trajectories.label={t.label!r}; expected one of {LABELS}")
  if config.space != "z":
    raise ValueError(f"config.space={config.space!r}: only 'z' (the Gaussian prior of Eqs. 2, 6 and 9) for now")
  if t.num_trajectories % t.batch_size:
    raise ValueError(f"config.trajectories.num_trajectories={t.num_trajectories} is not a multiple of "
                     f"config.trajectories.batch_size={t.batch_size}")
  if tuple(config.evaluation.metrics) != ("control",):
    raise ValueError(f"config.evaluation.metrics={tuple(config.evaluation.metrics)!r}: Plumerault's runs are scored "
                     f"with ('control',), the paper's control measure")
  if not 0 <= t.discard_fraction < 1:
    raise ValueError(f"config.trajectories.discard_fraction={t.discard_fraction} must be in [0, 1)")
  checks = config.evaluation.get("model_checks")
  if checks and int(checks.num_samples) > 0:
    if int(checks.num_samples) < 8:
      raise ValueError(f"config.evaluation.model_checks.num_samples={checks.num_samples}: need >= 8 (0 = off)")
    if not 0 < checks.low_quantile < checks.high_quantile < 1:
      raise ValueError(f"config.evaluation.model_checks: need 0 < low_quantile < high_quantile < 1, got "
                       f"{checks.low_quantile}, {checks.high_quantile}")


def _parity(config, key: str):
  return PARITY[key] if config.upstream_parity else None


def inversion_settings(config, image_size: int) -> inversion.InversionSettings:
  t = config.trajectories
  sigma = float(t.sigma) if t.sigma > 0 else 3.0 * image_size / 128  # the paper's 3 px at 128 px
  sigma = 0.0 if t.loss == "mse" else sigma                             # σ = 0 is the (masked) MSE
  return inversion.InversionSettings(
      steps=int(t.steps_per_target), learning_rate=float(t.learning_rate),
      adam_eps=_parity(config, "adam_eps") or float(t.adam_eps), sigma=sigma,
      kernel=_parity(config, "kernel") or t.kernel, mask_mode=_parity(config, "mask_mode") or t.mask_mode,
      error_at=_parity(config, "error_at") or t.error_at, reduction=_parity(config, "reduction") or "sum")


def fit_settings(config) -> continuous.FitSettings:
  f = config.fit
  return continuous.FitSettings(kind=f.model, mode=_parity(config, "fit_mode") or f.mode, epochs=int(f.epochs),
                                batch_size=int(f.batch_size), learning_rate=float(f.learning_rate),
                                adam_eps=float(f.adam_eps), l2=float(f.l2), smoothness=float(f.smoothness),
                                init=_parity(config, "fit_init") or f.init)


def magnitudes(config, transform: str, image_width: int) -> np.ndarray:
  """t_max·n/N, n = 1..N; translations rounded to whole pixels (distinct, at least 1 px)."""
  t = config.trajectories
  values = float(t.t_max[transform]) * np.arange(1, t.num_steps + 1) / t.num_steps
  if transform in ("horizontal_position", "vertical_position"):
    pixels = np.maximum(np.round(values * image_width), 1)
    if len(np.unique(pixels)) != len(pixels):
      raise ValueError(f"config.trajectories.t_max.{transform}={t.t_max[transform]} gives repeated whole-pixel "
                       f"shifts {pixels.tolist()} for num_steps={t.num_steps}")
    values = pixels / image_width
  return values.astype(np.float32)


def ball_radius(config, latent_dim: int, conditional: bool = False, truncation: float | None = None) -> float:
  """The radius of the latent ball the trajectories stay in (config.trajectories): √d for N(0, I) latents; for a
  class-conditional generator's truncated noise ψ·truncnorm(−2, 2), ψ·√(0.7737·d); ∞ without the constraint."""
  if config.trajectories.constraint == "none":
    return math.inf
  if config.trajectories.radius > 0:
    return float(config.trajectories.radius)
  return float(truncation * math.sqrt(0.7737 * latent_dim)) if conditional else math.sqrt(latent_dim)


def generate_trajectories(config, sampler, transform: str, workdir: str, mesh) -> dict[str, np.ndarray]:
  """All chunks of one transformation (existing chunk files are kept: resume), merged, with the global discard."""
  t = config.trajectories
  gen = sampler.gen
  settings = inversion_settings(config, gen.image_shape[1])
  ts = magnitudes(config, transform, gen.image_shape[1])
  radius = ball_radius(config, gen.latent_dim, sampler.conditional, sampler.truncation)
  directory = os.path.join(workdir, "trajectories", transform)
  io.makedirs(directory)
  base = _common.stream(config, STREAMS, "trajectories")
  chunks = []
  paths = [os.path.join(directory, f"chunk_{chunk:05d}.npz") for chunk in range(t.num_trajectories // t.batch_size)]
  # Which chunks exist is decided once, by process 0 (every process must run the same sharded computations)
  saved = parallel.process_0_value(np.array([io.exists(path) for path in paths]))
  for chunk, path in enumerate(paths):
    if not saved[chunk]:
      # Chunk c of transformation T draws from key(seed)·T·c: a pure function of the chunk, so a resumed run
      # regenerates exactly the missing chunks.
      key = jax.random.fold_in(jax.random.fold_in(base, inversion.TRANSFORMS.index(transform)), chunk)
      z_key, class_key = jax.random.split(key)
      z0 = sampler.z(z_key, int(t.batch_size))
      classes = sampler.class_ids(class_key, int(t.batch_size))
      gen_kwargs = {"class_vector": classes} if classes is not None else None
      static = {"truncation": sampler.truncation} if sampler.conditional else None
      records = inversion.trajectories(gen, z0, transform, ts, settings, both_signs=True,
                                       clip_start=bool(t.clip_start), radius=radius,
                                       fill=float(t.fill), discard_fraction=0.0, gen_kwargs=gen_kwargs,
                                       static_gen_kwargs=static, mesh=mesh, scheme=t.scheme)
      arrays = {f.name: getattr(records, f.name) for f in dataclasses.fields(records)
                if getattr(records, f.name) is not None and f.name != "kept"}
      arrays["trajectory"] = arrays["trajectory"] + chunk * int(t.batch_size)
      with io.open_atomic(path, "wb") as f:
        np.savez(f, **arrays)
      chunks.append(arrays)   # from memory: in a multi-process run only process 0 wrote the file
    else:
      with io.open_file(path, "rb") as f, np.load(f) as data:
        chunks.append({k: data[k] for k in data.files})
  merged = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  merged["kept"] = inversion.discard_worst(merged["error"], float(t.discard_fraction))
  merged["label"] = labels(config, transform, merged)
  with io.open_atomic(os.path.join(workdir, "trajectories", f"{transform}.npz"), "wb") as f:
    np.savez(f, **merged)
  return merged


def labels(config, transform: str, records: dict[str, np.ndarray]) -> np.ndarray:
  """δt of each record: realised (log(1 + t) for 'scale', additive) or nominal (upstream)."""
  label = _parity(config, "label") or config.trajectories.label
  value = records["t"] if label == "nominal" else records["t_realized"]
  if transform == "scale" and label == "realized":
    value = np.log1p(value)
  return value.astype(np.float64)


def train(config, workdir: str) -> dict[str, str]:
  """trajectories/, directions.npz, images/traversal.png, results.json and, with config.evaluation.enabled,
  metrics.json. Returns the paths written."""
  check_config(config)
  gen = _common.load_generator(config)
  sampler = _common.make_sampler(config, gen, STREAMS)
  mesh = parallel.make_mesh(config.get("num_devices") or None)
  parallel.check_batch_size(2 * int(config.trajectories.batch_size), mesh, "trajectories.batch_size (×2 signs)")
  io.makedirs(workdir)
  models, summaries = [], {}
  for index, transform in enumerate(config.transforms):
    records = generate_trajectories(config, sampler, transform, workdir, mesh)
    kept = records["kept"]
    model, history = continuous.fit(records["z0"][kept], records["z"][kept], records["label"][kept],
                                     fit_settings(config), seed=int(config.seed) + STREAMS["fit"] + index)
    models.append(model)
    residual = model.delta(records["z0"][kept], records["z"][kept]) - records["label"][kept]
    summaries[transform] = {"records": int(len(kept)), "kept": int(kept.sum()),
                            "error_threshold": float(records["error"][~kept].min()) if (~kept).any() else None,
                            "fit_mse": float(np.mean(residual ** 2)),
                            "fit_r2": float(1 - np.mean(residual ** 2) / max(np.var(records["label"][kept]), 1e-30)),
                            "fit_history": history.tolist()}
  found = continuous.stack_directions(models, method="plumerault", transforms=list(config.transforms),
                                      generator=config.generator, sampling=sampler.record())
  outputs = _common.write_directions(workdir, sampler, found, config, _common.stream(config, STREAMS, "pictures"))
  for transform, model in zip(config.transforms, models):
    outputs.update(write_model_pictures(config, sampler, transform, model, workdir))
  outputs["results"] = os.path.join(workdir, "results.json")
  _common.write_json(outputs["results"], {"method": "plumerault", "transforms": summaries, "outputs": dict(outputs),
                                          "generator": config.generator, "sampling": sampler.record()})
  if config.evaluation.enabled:
    evaluate(config, workdir, sampler=sampler)
    outputs["metrics"] = os.path.join(workdir, "metrics.json")
  return outputs


def write_model_pictures(config, sampler, transform: str, model: continuous.ContinuousDirection,
                         workdir: str) -> dict[str, str]:
  """images/g_<T>.png: the learned g̃(s) and the density of t = g̃(⟨u, z⟩) under the prior (Eq. 9);
  images/set_<T>.png: the factor SET to chosen values (Eqs. 10-11's use): column j shows every sample's z with its
  component along u replaced by g̃⁻¹(t_j), t_j the 5%…95% quantiles of t (rows: config.traversal.num_samples)."""
  s = np.linspace(-3, 3, 121)
  quantiles = model.g(stats.norm.ppf(np.linspace(0.001, 0.999, 200)))
  t = np.linspace(float(quantiles.min()), float(quantiles.max()), 200)
  unit = " (log 1+zoom)" if transform == "scale" else ""
  chart = plots.side_by_side([
      plots.line_chart([("g(s)", s, model.g(s))], title=f"{transform}: learned g", xlabel="s = <u, z>",
                       ylabel="t" + unit),
      plots.line_chart([("density", t, model.density(t))], title=f"{transform}: density of t (Eq. 9)",
                       xlabel="t" + unit, ylabel="p(t)")])
  paths = {f"g_{transform}": os.path.join(workdir, "images", f"g_{transform}.png"),
           f"set_{transform}": os.path.join(workdir, "images", f"set_{transform}.png")}
  viz.save_png(paths[f"g_{transform}"], chart)
  targets = model.g(stats.norm.ppf(np.linspace(0.05, 0.95, int(config.traversal.steps))))
  latents = np.asarray(sampler.z(_common.stream(config, STREAMS, "pictures"), int(config.traversal.num_samples)),
                       np.float64)
  along = np.clip(model.g_inverse(targets), -8, 8)           # finite even at a flat end of g
  edited = latents[:, None, :] + (along[None, :] - (latents @ model.u)[:, None])[..., None] * model.u
  flat = edited.reshape(-1, latents.shape[1]).astype(np.float32)
  classes = jnp.full((len(flat),), sampler.classes[0], jnp.int32) if sampler.conditional else None
  images = np.asarray(_render_z(sampler, jnp.asarray(flat), classes))
  grid = viz.to_display(images, sampler.gen.info.output_range).reshape(edited.shape[:2] + images.shape[1:3] + (3,))
  viz.save_png(paths[f"set_{transform}"], viz.image_grid(grid))
  return paths


def control_section(config) -> dict[str, Any]:
  """config.evaluation as a `_control` section: one factor per transformation with an estimator."""
  ev = config.evaluation
  transforms = [name for name in config.transforms if name in ev.estimators]
  return dict(estimators={name: ev.estimators[name] for name in transforms}, side_effects=tuple(ev.side_effects),
              t_max=ev.t_max, num_t=ev.num_t, core_t_max=ev.core_t_max, num_latents=ev.num_latents,
              num_selection_latents=ev.num_latents, batch_size=ev.batch_size, references=tuple(ev.references),
              probe_samples=ev.probe_samples, num_random=1)


def evaluate(config, workdir: str, sampler=None) -> dict[str, Any]:
  """The paper's control measure of each direction of the run's directions.npz, beside the probe and a random
  direction ("control": directions / probe / random, per transformation: the curve, full and core summaries, side
  effects), and (config.evaluation.generated_domain) its generated-domain scores with the probe and random rows,
  written to metrics.json."""
  sampler = sampler or _common.make_sampler(config, _common.load_generator(config), STREAMS)
  if sampler.conditional:
    raise ValueError("config.evaluation: the control measure needs an estimator of the factor; none exists for a "
                     "class-conditional generator yet (set config.evaluation.enabled=False)")
  found = _common.load_directions(workdir)
  ev = config.evaluation
  gen = sampler.gen
  section = control_section(config)
  _control.check_section(section, "config.evaluation")
  transforms = list(found.meta.get("transforms", config.transforms))
  estimator = _control.estimator_factory(config, workdir, gen)
  results: dict[str, Any] = {"seed": int(config.seed), "evaluation": ev.to_dict()}
  generate = _control.render_fn(gen)   # one jitted generator for the control measure and the model checks
  results["control"] = _control.score_directions(
      section, generate, sampler.z, found, _common.stream(config, STREAMS, "evaluation"), estimator,
      columns={name: transforms.index(name) for name in section["estimators"] if name in transforms})
  if int((ev.get("model_checks") or {}).get("num_samples", 0)) > 0:
    results["model_checks"] = model_checks(config, sampler, generate, found,
                                           results["control"].get("directions", {}), estimator, workdir)
  if _common.generated_domain_settings(config) is not None:   # beside the control measure: MIG/DCI, probe, random
    rows, references, about = _common.generated_domain_evaluation(
        config, workdir, sampler, [("directions", found)], _common.stream(config, STREAMS, "evaluation"))
    results.update(rows, **{name: scores for name, (_, scores) in references.items()}, generated_domain=about)
  _common.write_json(os.path.join(workdir, "metrics.json"), results)
  return results


def measured_change(transform: str, spec: str, label: str, image_shape) -> Any:
  """(values, offset) → the measured factor's change from `offset` in the units of the run's labels (what g̃
  predicts), or None when no conversion is known (e.g. a classifier's expected label for a zoom).

  The barycentre runs from −0.5 to +0.5 between the outer pixel centres (1/(W − 1) per pixel) while a translation's
  label is a fraction of the width (1/W per pixel); the sprite's 'scale' statistic (√area) grows by the zoom factor
  1 + t, whose realised label is log(1 + t) (nominal: t).
  """
  height, width = image_shape[:2]
  if (transform, spec) == ("horizontal_position", "sprite:x"):
    return lambda m, offset: (np.asarray(m) - offset) * (width - 1) / width
  if (transform, spec) == ("vertical_position", "sprite:y"):
    return lambda m, offset: (np.asarray(m) - offset) * (height - 1) / height
  if (transform, spec) == ("scale", "sprite:scale"):
    def ratio(m, offset):
      m = np.asarray(m, np.float64)
      return np.where(m > 0, m / offset, np.nan) if offset > 0 else np.full_like(m, np.nan)
    if label == "realized":
      return lambda m, offset: np.log(ratio(m, offset))
    return lambda m, offset: ratio(m, offset) - 1
  return None


def pixels_per_label(transform: str, image_shape) -> float | None:
  """Pixels per label unit of a translation (its label is a fraction of the width / height); None otherwise."""
  return {"horizontal_position": image_shape[1], "vertical_position": image_shape[0]}.get(transform)


def model_checks(config, sampler, generate, found, rows: dict[str, Any], estimator, workdir: str) -> dict[str, Any]:
  """Per transformation with a unit conversion (`measured_change`): does the learned g̃ predict the factor measured
  on images? g_consistency (g̃ against the control curve's medians along u, reading notes §2.4) and Eqs. 9–11
  (`control.model_check` on config.evaluation.model_checks.num_samples prior draws; offset = the measured median at
  ⟨u, z⟩ = 0 from the control curve, reading notes A9); translations also in pixels. Draws
  images/density_<T>.png: the measured histogram against Eq. 9's density, and after Eq. 10's resampling against
  the uniform target."""
  section = config.evaluation.model_checks
  label = _parity(config, "label") or config.trajectories.label
  shape = sampler.gen.info.image_shape
  transforms = list(found.meta.get("transforms", config.transforms))
  latents = np.asarray(sampler.z(_common.stream(config, STREAMS, "model_checks"), int(section.num_samples)))
  out: dict[str, Any] = {}
  for transform, row in rows.items():
    spec = config.evaluation.estimators[transform]
    change = measured_change(transform, spec, label, shape)
    if change is None:
      out[transform] = {"skipped": f"no unit conversion from the estimator {spec!r} to {transform}'s labels"}
      continue
    model = continuous.from_directions(found, transforms.index(transform))
    t, median = np.asarray(row["t"]), np.asarray(row["median"])
    offset = float(median[np.argmin(np.abs(t))])
    first = estimator([spec])
    result = control.model_check(
        model, generate, lambda images: first(images)[:, 0], lambda m: change(m, offset), latents,
        low_quantile=float(section.low_quantile), high_quantile=float(section.high_quantile),
        batch_size=int(config.evaluation.batch_size), return_samples=True)
    samples = result.pop("samples")
    pixels = pixels_per_label(transform, shape)
    units = "fraction of the image side" if pixels else "log(1 + zoom)" if label == "realized" else "t"
    result.update(offset=offset, units=units,
                  g_consistency=control.g_consistency(t, change(median, offset), model.g(t),
                                                      float(config.evaluation.core_t_max)))
    if pixels:
      result.update(g_consistency_pixels=result["g_consistency"] * pixels,
                    w1_pixels=result["density"]["w1"] * pixels,
                    mean_abs_error_pixels=result["density"]["mean_abs_error"] * pixels)
    _density_picture(os.path.join(workdir, "images", f"density_{transform}.png"), transform, model, samples,
                     result["resampling"])
    out[transform] = result
  return out


def _histogram(values, edges):
  values = np.asarray(values)[np.isfinite(values)]
  counts, _ = np.histogram(values, edges, density=True)
  return (edges[:-1] + edges[1:]) / 2, counts


def _density_picture(path: str, transform: str, model, samples: dict[str, np.ndarray], resampling: dict) -> None:
  finite = np.concatenate([v[np.isfinite(v)] for v in samples.values()])
  edges = np.linspace(*np.quantile(finite, [0.005, 0.995]), 41)
  centres, measured = _histogram(samples["measured"], edges)
  _, resampled = _histogram(samples["resampled"], edges)
  uniform = np.where((centres >= resampling["low"]) & (centres <= resampling["high"]),
                     1 / (resampling["high"] - resampling["low"]), 0.0)
  viz.save_png(path, plots.side_by_side([
      plots.line_chart([("measured", centres, measured), ("Eq. 9 density", centres, model.density(centres))],
                       title=f"{transform}: prior draws", xlabel="factor (label units)", ylabel="density"),
      plots.line_chart([("measured", centres, resampled), ("target", centres, uniform)],
                       title=f"after resampling to uniform (KS {resampling['ks']:.3f})",
                       xlabel="factor (label units)", ylabel="density")]))


@jax.jit
def _render_z(sampler, z, class_ids):
  return sampler.render(z, "z", class_ids)
