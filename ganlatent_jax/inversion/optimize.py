"""GAN inversion by projected Adam (Plumerault et al., Eqs. 1–2 and 4) and the recursive trajectories of Eq. 5.

  invert:        ẑ = argmin_{‖z − c‖ ≤ r} L(G(z), target; mask) per sample, L the blurred loss (losses.py), by Adam
                 with a projection onto the ball after every step (upstream's clip_by_norm; the paper's Eq. 2 with
                 r = √d for z ~ N(0, I_d), c = 0; in W the ball is around w̄). Adam starts fresh on every call: the
                 reset before every target of the released code.
  trajectories:  Eq. 5 — for each start z0 (projected onto the ball first, as upstream's --renorm) and both signs,
                 targets T_{±t_n}(G(z0)) for the magnitudes t_1 < … < t_N, each a transform of the ORIGINAL image,
                 each solved from the previous solution z_{n−1} (z_0 = z0). Records (z0, z_n, t, error), then the
                 global discard of the worst tenth (§2.1.2; upstream's rule, `discard_worst`).

Both are one jitted function each, compiled once per (generator architecture, settings, shapes): the generator is an
argument (its variables are leaves), the settings are static, the targets/magnitudes/radius are traced. Every
per-sample array may be sharded over a mesh's 'data' axis (`mesh=`): the loss is a per-sample SUM by default, so each
latent sees only its own gradient and the result does not depend on how the batch is split.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganlatent_jax import parallel
from ganlatent_jax.generators.base import Generator
from ganlatent_jax.inversion import losses, transforms

SPACES = ("z", "w", "w+")
ERROR_AT = ("final", "last_step")
REDUCTIONS = ("sum", "mean")


@dataclasses.dataclass(frozen=True)
class InversionSettings:
  """What one inversion does (hashable: a static jit argument).

  steps, learning_rate, adam_eps: the Adam solve per target (upstream: 50 steps, lr 1e-2, Keras ε 1e-7).
  sigma, kernel, mask_mode: the loss (losses.blurred_loss); σ = 0 is the MSE.
  space: 'z' renders gen(z); 'w'/'w+' render gen.synthesis(w) (the ball is then around `center`, e.g. w̄).
  error_at: 'final' = the loss at the returned latent (one extra forward); 'last_step' = upstream's recorded error,
            the loss of the last Adam step, computed before its update and before the projection.
  reduction: the objective over the batch, 'sum' (each latent independent of the batch) or 'mean' (upstream's
             batch mean: it changes Adam only through ε).
  """
  steps: int = 50
  learning_rate: float = 1e-2
  adam_eps: float = 1e-8
  sigma: float = 1.5
  kernel: str = "gaussian"
  mask_mode: str = "both"
  space: str = "z"
  error_at: str = "final"
  reduction: str = "sum"

  def __post_init__(self):
    checks = [(self.kernel in losses.KERNELS, f"kernel={self.kernel!r}; expected one of {losses.KERNELS}"),
              (self.mask_mode in losses.MASK_MODES,
               f"mask_mode={self.mask_mode!r}; expected one of {losses.MASK_MODES}"),
              (self.space in SPACES, f"space={self.space!r}; expected one of {SPACES}"),
              (self.error_at in ERROR_AT, f"error_at={self.error_at!r}; expected one of {ERROR_AT}"),
              (self.reduction in REDUCTIONS, f"reduction={self.reduction!r}; expected one of {REDUCTIONS}"),
              (isinstance(self.steps, int) and self.steps >= 0, f"steps={self.steps!r} must be an integer >= 0"),
              (self.learning_rate > 0, f"learning_rate={self.learning_rate} must be > 0"),
              (self.adam_eps > 0, f"adam_eps={self.adam_eps} must be > 0"),
              (math.isfinite(self.sigma) and self.sigma >= 0, f"sigma={self.sigma} must be finite and >= 0")]
    for ok, message in checks:
      if not ok:
        raise ValueError(f"InversionSettings: {message}")


def project_ball(z, radius, center=None):
  """Each sample's latent moved onto the ball ‖z − center‖ ≤ radius (norm over all non-batch axes); inside: unchanged.

  radius = inf leaves everything unchanged.
  """
  offset = z if center is None else z - center
  norm = jnp.sqrt(jnp.sum(offset ** 2, axis=tuple(range(1, z.ndim)), keepdims=True))
  scale = jnp.minimum(1.0, radius / jnp.maximum(norm, 1e-30))
  projected = offset * scale
  return projected if center is None else center + projected


def default_radius(latent_shape: tuple[int, ...], space: str = "z") -> float:
  """√d for z ~ N(0, I_d) (Eq. 2: E‖z‖ → √d). W has no prior radius: the caller must give one."""
  if space != "z":
    raise ValueError(f"inversion in space {space!r} needs an explicit radius around its center (e.g. w̄); "
                     f"only z has the prior radius √d")
  return float(math.sqrt(int(np.prod(latent_shape))))


def _render(gen: Generator, latents, space: str, gen_kwargs: dict, static_kwargs: tuple):
  kwargs = {**gen_kwargs, **dict(static_kwargs)}
  return gen(latents, **kwargs) if space == "z" else gen.synthesis(latents, **kwargs)


def _solve(gen, targets, masks, z_init, center, radius, gen_kwargs, static_kwargs, settings: InversionSettings):
  """Projected Adam from z_init (fresh optimiser state): (z, per-sample errors (B,), per-step losses (steps, B))."""
  optimizer = optax.adam(settings.learning_rate, eps=settings.adam_eps)

  def per_sample(z):
    images = _render(gen, z, settings.space, gen_kwargs, static_kwargs)
    return losses.blurred_loss(images, targets, settings.sigma, masks, settings.kernel, settings.mask_mode)

  def objective(z):
    values = per_sample(z)
    return (jnp.sum(values) if settings.reduction == "sum" else jnp.mean(values)), values

  def step(carry, _):
    z, state = carry
    (_, values), grad = jax.value_and_grad(objective, has_aux=True)(z)
    updates, state = optimizer.update(grad, state, z)
    return (project_ball(optax.apply_updates(z, updates), radius, center), state), values

  (z, _), curve = jax.lax.scan(step, (z_init, optimizer.init(z_init)), None, length=settings.steps)
  if settings.error_at == "last_step" and settings.steps > 0:
    errors = curve[-1]
  else:
    errors = per_sample(z)
  return z, errors, curve


@functools.partial(jax.jit, static_argnames=("settings", "static_kwargs"))
def _invert_jit(gen, targets, masks, z_init, center, radius, gen_kwargs, static_kwargs, settings):
  return _solve(gen, targets, masks, z_init, center, radius, gen_kwargs, static_kwargs, settings)


def _check_inputs(gen: Generator, z, space: str, center, radius):
  if space == "z" and z.shape[1:] != (gen.latent_dim,):
    raise ValueError(f"z has shape {z.shape}; this {gen.info.family} generator takes (B, {gen.latent_dim})")
  if space != "z" and center is None:
    raise ValueError(f"inversion in space {space!r} needs center= (the ball's centre, e.g. w̄)")
  radius = default_radius(z.shape[1:], space) if radius is None else float(radius)
  if not radius > 0:
    raise ValueError(f"radius must be > 0 (inf for no constraint), got {radius}")
  return radius


def _place(mesh, batch_size: int, per_sample: tuple, replicated: tuple):
  """Per-sample arrays split over the mesh's 'data' axis, the rest replicated (no-op without a mesh)."""
  if mesh is None:
    return per_sample, replicated
  parallel.check_batch_size(batch_size, mesh, "batch (number of latents to invert)")
  return parallel.shard_batch(per_sample, mesh), parallel.replicate(replicated, mesh)


def invert(gen: Generator, targets, masks, z_init, steps: int | None = None, lr: float | None = None,
           sigma: float | None = None, radius: float | None = None, *, settings: InversionSettings | None = None,
           center=None, gen_kwargs: dict | None = None, static_gen_kwargs: dict | None = None, mesh=None,
           return_curve: bool = False):
  """(z (B, …), errors (B,)) minimising the blurred loss to `targets` (NHWC) under ‖z − center‖ ≤ radius.

  masks: None or (B, H, W[, 1|C]) validity weights. steps/lr/sigma override `settings` (defaults:
  `InversionSettings()`). radius None = √d (z space). gen_kwargs: per-sample arrays (e.g. class_vector), sharded
  like z; static_gen_kwargs: Python values (e.g. truncation). With return_curve, also the per-step losses (steps, B)
  (each computed before its step's update).
  """
  settings = settings or InversionSettings()
  overrides = {k: v for k, v in (("steps", steps), ("learning_rate", lr), ("sigma", sigma)) if v is not None}
  settings = dataclasses.replace(settings, **overrides)
  z_init = jnp.asarray(z_init, jnp.float32)
  targets = jnp.asarray(targets, jnp.float32)
  if targets.ndim != 4 or targets.shape[0] != z_init.shape[0]:
    raise ValueError(f"targets must be NHWC with one image per latent: {targets.shape} vs z {z_init.shape}")
  if masks is None:
    masks = jnp.ones(targets.shape[:3] + (1,), jnp.float32)
  radius = _check_inputs(gen, z_init, settings.space, center, radius)
  center = jnp.zeros(z_init.shape[1:], jnp.float32) if center is None else jnp.asarray(center, jnp.float32)
  (targets, masks, z_init, gen_kwargs), (gen, center) = _place(
      mesh, z_init.shape[0], (targets, jnp.asarray(masks, jnp.float32), z_init, dict(gen_kwargs or {})), (gen, center))
  z, errors, curve = _invert_jit(gen, targets, masks, z_init, center, jnp.float32(radius), gen_kwargs,
                                 tuple(sorted((static_gen_kwargs or {}).items())), settings)
  return (z, errors, curve) if return_curve else (z, errors)


# ---------------------------------------------------------------------------------------------------------------
# Recursive trajectories (Eq. 5).


@dataclasses.dataclass(frozen=True)
class TrajectoryRecords:
  """R = M·N records, trajectory-major (record r = m·N + n): M = B starts × signs, N targets each.

  z0 (R, …) the trajectory's (projected) start; z_start (R, …) where the solve started (z_{n−1}, or z0 for n = 0);
  z (R, …) the solution; t (R,) the nominal signed parameter; t_realized (R,); error (R,); trajectory (R,) index of
  the start in the input batch; sign (R,) ±1; step (R,) n = 0..N−1; kept (R,) bool, the discard rule's verdict over
  these records; curve (R, steps) per-step losses or None.
  """
  z0: np.ndarray
  z_start: np.ndarray
  z: np.ndarray
  t: np.ndarray
  t_realized: np.ndarray
  error: np.ndarray
  trajectory: np.ndarray
  sign: np.ndarray
  step: np.ndarray
  kept: np.ndarray
  curve: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.t)

  def select(self, mask) -> "TrajectoryRecords":
    mask = np.asarray(mask)
    return TrajectoryRecords(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[mask])
                                for f in dataclasses.fields(self)})

  def kept_records(self) -> "TrajectoryRecords":
    return self.select(self.kept)


def discard_worst(errors, fraction: float = 0.1) -> np.ndarray:
  """Keep mask of upstream's global rule: over the finite errors e_(0) ≤ … ≤ e_(R−1), θ = e_(⌊(1−f)R⌋); keep e < θ.

  Strict: ties at θ are dropped too. Non-finite errors are dropped first. fraction 0 keeps every finite record.
  """
  errors = np.asarray(errors, np.float64)
  if not 0 <= fraction < 1:
    raise ValueError(f"discard fraction must be in [0, 1), got {fraction}")
  finite = np.isfinite(errors)
  if fraction == 0 or not finite.any():
    return finite
  values = np.sort(errors[finite])
  count = len(values)
  threshold = values[count - math.ceil(fraction * count - 1e-9)]  # ⌊(1 − f)·R⌋ without float round-off
  return finite & (errors < threshold)


SCHEMES = ("recursive", "direct")


@functools.partial(jax.jit, static_argnames=("transform", "output_range", "fill", "clip_start", "settings",
                                             "static_kwargs", "scheme"))
def _trajectory_chunk(gen, z0, signs, magnitudes, center, radius, gen_kwargs, static_kwargs, transform: str,
                      output_range: tuple, fill: float, clip_start: bool, settings: InversionSettings,
                      scheme: str = "recursive"):
  start = project_ball(z0, radius, center) if clip_start else z0
  original = _render(gen, start, settings.space, gen_kwargs, static_kwargs)

  def target_step(z_previous, magnitude):
    t = signs * magnitude
    targets, masks, realized = transforms.apply(transform, original, t, output_range=output_range, fill=fill)
    z_init = z_previous if scheme == "recursive" else start
    z, errors, curve = _solve(gen, targets, masks, z_init, center, radius, gen_kwargs, static_kwargs, settings)
    return z, dict(z_start=z_init, z=z, t=t, t_realized=realized, error=errors, curve=curve.T)

  _, outputs = jax.lax.scan(target_step, start, magnitudes)  # leading axis N
  return start, outputs


def trajectories(gen: Generator, z0, transform: str, ts, settings: InversionSettings | None = None, *,
                 both_signs: bool = True, clip_start: bool = True, radius: float | None = None, center=None,
                 fill: float = 0.0, discard_fraction: float = 0.1, gen_kwargs: dict | None = None,
                 static_gen_kwargs: dict | None = None, mesh=None, record_curves: bool = False,
                 scheme: str = "recursive") -> TrajectoryRecords:
  """Eq. 5's recursive inversions from each start in z0 (B, …) towards T_{±t_n}(G(z0)), n = 1..N (`ts` (N,)).

  ts: magnitudes t_1 < … < t_N > 0 with both_signs (each start is then walked in both directions from z0; the
  batch holds 2B latents, the + block first), or signed values without. A target is always a transform of the
  original image G(z0); its solve starts at the previous solution with a fresh Adam (scheme 'recursive', Eq. 5) or
  at z0 itself (scheme 'direct': the naive inversion of Fig. 8, the same total number of steps). `transform` names one of
  `transforms.TRANSFORMS`; the fill of undefined pixels is `fill`. The records' `kept` applies `discard_worst`
  with `discard_fraction` over all of them (merge chunks and re-apply it for a global discard across chunks).
  """
  settings = settings or InversionSettings()
  if scheme not in SCHEMES:
    raise ValueError(f"scheme={scheme!r}; expected one of {SCHEMES}")
  if transform not in transforms.TRANSFORMS:
    raise ValueError(f"unknown transformation {transform!r}; available: {transforms.TRANSFORMS}")
  ts = np.asarray(ts, np.float32).reshape(-1)
  if not len(ts):
    raise ValueError("ts: need at least one transformation parameter")
  if both_signs and not np.all(ts > 0):
    raise ValueError(f"with both_signs, ts are magnitudes and must be > 0, got {ts.tolist()}")
  z0 = jnp.asarray(z0, jnp.float32)
  radius = _check_inputs(gen, z0, settings.space, center, radius)
  center = jnp.zeros(z0.shape[1:], jnp.float32) if center is None else jnp.asarray(center, jnp.float32)
  num_starts = z0.shape[0]
  gen_kwargs = dict(gen_kwargs or {})
  signs = np.ones(num_starts, np.float32)
  trajectory = np.arange(num_starts)
  if both_signs:
    z0 = jnp.concatenate([z0, z0])
    gen_kwargs = jax.tree.map(lambda a: jnp.concatenate([a, a]), gen_kwargs)
    signs = np.concatenate([signs, -signs])
    trajectory = np.concatenate([trajectory, trajectory])
  (z0, signs_placed, gen_kwargs), (gen, center) = _place(mesh, z0.shape[0], (z0, jnp.asarray(signs), gen_kwargs),
                                                           (gen, center))
  start, outputs = _trajectory_chunk(gen, z0, signs_placed, jnp.asarray(ts), center, jnp.float32(radius), gen_kwargs,
                                     tuple(sorted((static_gen_kwargs or {}).items())), transform,
                                     tuple(float(v) for v in gen.info.output_range), float(fill), bool(clip_start),
                                     settings, scheme)
  outputs = jax.tree.map(np.asarray, outputs)
  start = np.asarray(start)
  num_latents, num_targets = start.shape[0], len(ts)

  def flat(value):  # (N, M, …) → (M·N, …), trajectory-major
    return np.swapaxes(value, 0, 1).reshape((num_latents * num_targets,) + value.shape[2:])

  error = flat(outputs["error"])
  return TrajectoryRecords(
      z0=np.repeat(start, num_targets, axis=0), z_start=flat(outputs["z_start"]), z=flat(outputs["z"]),
      t=flat(outputs["t"]), t_realized=flat(outputs["t_realized"]), error=error,
      trajectory=np.repeat(trajectory, num_targets), sign=np.repeat(signs, num_targets),
      step=np.tile(np.arange(num_targets), num_latents), kept=discard_worst(error, discard_fraction),
      curve=flat(outputs["curve"]) if record_curves else None)


def convergence(gen: Generator, z0, transform: str, t: float, settings: InversionSettings | None = None, *,
                stages: int = 5, **trajectory_kwargs) -> dict[str, np.ndarray]:
  """Fig. 8: Eq. 5's recursive inversion towards T_t(G(z0)) through `stages` evenly spaced targets t·n/stages of
  settings.steps Adam steps each, against Eq. 4's naive inversion of T_t alone with stages·steps steps (the same
  budget). Both are `trajectories` (the naive one is a single target), so they share every other setting.

  Returns numpy arrays: 'recursive' and 'naive' per-step losses (B, stages·steps) — the recursive curve's stage n is
  on its own target (only the last stage's is on T_t); 'recursive_final' / 'naive_final' (B,) the loss on T_t at the
  returned latents; 'initial' (B,) the loss on T_t at the (projected) start.
  """
  settings = settings or InversionSettings()
  if stages < 1 or settings.steps < 1 or not t:
    raise ValueError(f"convergence needs stages >= 1, settings.steps >= 1 and t != 0, got stages={stages}, "
                     f"steps={settings.steps}, t={t}")
  if settings.error_at != "final":
    raise ValueError("convergence compares the losses at the returned latents: settings.error_at must be 'final'")
  kwargs = dict(trajectory_kwargs, both_signs=False, discard_fraction=0.0, record_curves=True)
  schedule = float(t) * np.arange(1, stages + 1) / stages
  recursive = trajectories(gen, z0, transform, schedule, settings, **kwargs)
  naive = trajectories(gen, z0, transform, [float(t)], dataclasses.replace(settings, steps=stages * settings.steps),
                       **kwargs)
  starts = len(naive)
  return dict(recursive=recursive.curve.reshape(starts, stages * settings.steps), naive=naive.curve,
              recursive_final=recursive.error.reshape(starts, stages)[:, -1], naive_final=naive.error,
              initial=naive.curve[:, 0])
