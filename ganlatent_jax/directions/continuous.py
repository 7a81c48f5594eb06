"""Continuous factors of variation (Plumerault et al., ICLR 2020, Eqs. 6–11): a unit direction u with a monotone
g giving the factor t = g(⟨u, z⟩), fitted from trajectory records (z0, z1, δt), and controlled sampling.

Model (Eq. 8): δt = g(⟨u, z1⟩) − g(⟨u, z0⟩), ‖u‖ = 1, g non-decreasing. g is known only up to a constant; the
reported g is g̃(s) = g(s) − g(0) (Eq. 8's g(0) = 0). Kinds of g:
  * 'lattice' (Eq. 7, upstream's lattice layer): G(s) = Σ_k θ_k·clip(s − p_k, −h/2, h/2) over `size` points p_k
    evenly spaced on [low, high] (spacing h), θ_k ≥ 0 (projected after every update), so G is piecewise linear with
    slope θ_k between the midpoints p_k ± h/2 and flat outside [low − h/2, high + h/2];
  * 'linear': g(s) = a·s, a > 0 — then δt = ⟨a·u, z1 − z0⟩ is a linear regression, solved in closed form;
  * 'erf' (Eq. 6): g(s) = a·erf(s/√2), a > 0 — a uniformly distributed factor under s ~ N(0, 1).
g acts on input_scale·⟨u, z⟩: mode 'paper' fits u directly (u = v/‖v‖, input_scale 1); mode 'upstream' fits a free v
with an L2 penalty l2·Σv² as the released code, and keeps input_scale = ‖v‖ (which upstream throws away) so g stays
usable with the unit u.

Distribution and control (Eqs. 9–11), for z ~ N(0, I) so that s = ⟨u, z⟩ ~ N(0, 1):
  * density(t) = N(g⁻¹(t); 0, 1)·|dg⁻¹/dt| (Eq. 9); flat pieces of a lattice g carry point masses that this
    continuous density leaves out; cdf(t) = P(g(s) ≤ t) includes them;
  * resample(z, target_ppf): z − ⟨z, u⟩u + h(Φ(⟨z, u⟩))·u with h(p) = g⁻¹(F⁻¹(p)) (Eqs. 10–11): inverse-transform
    sampling, so that g(⟨u, z'⟩) follows the target with quantile function F⁻¹. Targets outside g's range are
    clipped to it. g⁻¹ takes the left end of a flat piece.
Saved as a `Directions` column with meta["factor_models"][k] = the model of column k (`to_directions`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import special, stats

from ganlatent_jax.directions.base import Directions

KINDS = ("lattice", "linear", "erf")
MODES = ("paper", "upstream")
META_KEY = "factor_models"


def lattice_points(low: float, high: float, size: int) -> np.ndarray:
  if size < 2 or not high > low:
    raise ValueError(f"a lattice needs size >= 2 points on [low, high] with high > low, got {size} on [{low}, {high}]")
  return np.linspace(low, high, size)


def lattice_g(theta, s, low: float = -5.0, high: float = 5.0):
  """G(s) = Σ_k θ_k·clip(s − p_k, −h/2, h/2) on the lattice of len(θ) points over [low, high] (numpy or jax)."""
  xp = jnp if isinstance(theta, jax.Array) or isinstance(s, jax.Array) else np
  points = lattice_points(low, high, theta.shape[-1])
  half = (points[1] - points[0]) / 2
  return xp.sum(theta * xp.clip(s[..., None] - points, -half, half), axis=-1)


@dataclasses.dataclass(frozen=True)
class ContinuousDirection:
  """A unit direction u (d,) and a monotone g: the factor is t = g̃(⟨u, z⟩) (see the module doc)."""
  u: np.ndarray
  kind: str
  params: dict[str, Any]
  input_scale: float = 1.0

  def __post_init__(self):
    u = np.asarray(self.u, np.float64).reshape(-1)
    if self.kind not in KINDS:
      raise ValueError(f"kind={self.kind!r}; expected one of {KINDS}")
    if not np.isfinite(u).all() or abs(np.linalg.norm(u) - 1) > 1e-4:
      raise ValueError(f"u must be a finite unit vector, got norm {np.linalg.norm(u)}")
    required = {"lattice": ("theta", "low", "high"), "linear": ("slope",), "erf": ("amplitude",)}[self.kind]
    missing = [k for k in required if k not in self.params]
    if missing:
      raise ValueError(f"a {self.kind} g needs params {list(required)}; missing {missing}")
    params = {k: (np.asarray(v, np.float64) if k == "theta" else float(v)) for k, v in self.params.items()}
    if self.kind == "lattice" and (params["theta"].ndim != 1 or (params["theta"] < 0).any()):
      raise ValueError("a lattice g needs 1-D non-negative increments theta (a monotone g)")
    if any(params.get(k, 0.0) < 0 for k in ("slope", "amplitude")) or not self.input_scale > 0:
      raise ValueError("g must be non-decreasing: slope/amplitude >= 0 and input_scale > 0")
    object.__setattr__(self, "u", u)
    object.__setattr__(self, "params", params)
    object.__setattr__(self, "input_scale", float(self.input_scale))

  # --- g and its inverse -----------------------------------------------------------------------------------------

  def _raw(self, x):
    """g as a function of x = input_scale·s, before removing g(0)."""
    p = self.params
    if self.kind == "lattice":
      return lattice_g(p["theta"], np.asarray(x, np.float64), p["low"], p["high"])
    if self.kind == "linear":
      return p["slope"] * x
    return p["amplitude"] * special.erf(x / math.sqrt(2))

  def g(self, s):
    """g̃(s) = g(s) − g(0), s = ⟨u, z⟩."""
    s = np.asarray(s, np.float64)
    return self._raw(self.input_scale * s) - self._raw(np.zeros(()))

  def slope(self, s):
    """dg̃/ds."""
    x = self.input_scale * np.asarray(s, np.float64)
    p = self.params
    if self.kind == "linear":
      return np.full_like(x, p["slope"] * self.input_scale)
    if self.kind == "erf":
      return p["amplitude"] * math.sqrt(2 / math.pi) * np.exp(-x ** 2 / 2) * self.input_scale
    knots = self._knots()[0]
    piece = np.searchsorted(knots, x, side="right") - 1
    inside = (piece >= 0) & (piece < len(p["theta"]))
    return np.where(inside, p["theta"][np.clip(piece, 0, len(p["theta"]) - 1)], 0.0) * self.input_scale

  def _knots(self):
    """Lattice breakpoints x_j = p_j − h/2 (j = 0..K) in x = input_scale·s, and g̃ there."""
    p = self.params
    points = lattice_points(p["low"], p["high"], len(p["theta"]))
    h = points[1] - points[0]
    knots = np.append(points - h / 2, points[-1] + h / 2)
    return knots, self._raw(knots) - self._raw(np.zeros(()))

  def range(self) -> tuple[float, float]:
    """(inf g̃, sup g̃)."""
    if self.kind == "linear":
      return (-math.inf, math.inf) if self.params["slope"] > 0 else (0.0, 0.0)
    if self.kind == "erf":
      a = self.params["amplitude"]
      return -a, a
    values = self._knots()[1]
    return float(values[0]), float(values[-1])

  def g_inverse(self, t, side: str = "left"):
    """s with g̃(s) = t: 'left' the smallest s with g̃(s) ≥ t, 'right' the largest s with g̃(s) ≤ t (they differ on
    flat pieces). t outside g̃'s range gives ±inf."""
    t = np.asarray(t, np.float64)
    low, high = self.range()
    p = self.params
    if self.kind == "linear":
      s = t / (p["slope"] * self.input_scale)
    elif self.kind == "erf":
      with np.errstate(divide="ignore", invalid="ignore"):
        s = math.sqrt(2) * special.erfinv(t / p["amplitude"]) / self.input_scale
    else:
      knots, values = self._knots()
      if side == "left":
        j = np.clip(np.searchsorted(values, t, side="left"), 1, len(knots) - 1)  # values[j−1] < t ≤ values[j]
      else:
        j = np.clip(np.searchsorted(values, t, side="right"), 1, len(knots) - 1)  # values[j−1] ≤ t < values[j]
      rise = values[j] - values[j - 1]
      fraction = np.where(rise > 0, (t - values[j - 1]) / np.where(rise > 0, rise, 1.0), 0.0 if side == "left" else 1.0)
      s = (knots[j - 1] + fraction * (knots[j] - knots[j - 1])) / self.input_scale
      if side == "right":  # past the top knot g̃ stays at its maximum for ever
        s = np.where(t >= high, np.inf, s)
      else:
        s = np.where(t <= low, -np.inf, s)
    s = np.where(t < low, -np.inf, np.where(t > high, np.inf, s))
    return s

  # --- Eqs. 9–11 ------------------------------------------------------------------------------------------------

  def cdf(self, t):
    """P(g̃(s) ≤ t) for s ~ N(0, 1), point masses of flat pieces included."""
    return stats.norm.cdf(self.g_inverse(t, side="right"))

  def density(self, t):
    """Eq. 9: the density of t = g̃(s), s ~ N(0, 1): φ(g̃⁻¹(t)) / g̃'(g̃⁻¹(t)); 0 outside the range and on flat
    pieces."""
    t = np.asarray(t, np.float64)
    s = self.g_inverse(t)
    finite = np.isfinite(s)
    s_safe = np.where(finite, s, 0.0)
    if self.kind == "lattice":  # the slope of the piece t lies in (the left inverse sits at a piece's left end)
      knots, values = self._knots()
      j = np.clip(np.searchsorted(values, t, side="left"), 1, len(knots) - 1)
      slope = self.params["theta"][j - 1] * self.input_scale
    else:
      slope = self.slope(s_safe)
    with np.errstate(divide="ignore", invalid="ignore"):
      value = stats.norm.pdf(s_safe) / slope
    return np.where(finite & (slope > 0), value, 0.0)

  def resample(self, z, target_ppf: Callable[[np.ndarray], np.ndarray], return_clipped: bool = False):
    """Eqs. 10–11: z − ⟨z, u⟩u + g̃⁻¹(F⁻¹(Φ(⟨z, u⟩)))·u, so that t = g̃(⟨u, z'⟩) ~ F for z ~ N(0, I).

    target_ppf: the target's quantile function F⁻¹ (e.g. scipy.stats.uniform(a, b − a).ppf). Targets outside g̃'s
    range are clipped into it; with return_clipped also the (N,) bool mask of those samples.
    """
    z = np.asarray(z, np.float64)
    s = z @ self.u
    wanted = np.asarray(target_ppf(stats.norm.cdf(s)), np.float64)
    low, high = self.range()
    clipped = (wanted < low) | (wanted > high)
    s_new = self.g_inverse(np.clip(wanted, low, high))
    if not np.all(np.isfinite(s_new)):  # t at a bound of a bounded g (e.g. erf): stay just inside
      s_new = np.clip(s_new, -8.0, 8.0)
    result = z + (s_new - s)[:, None] * self.u[None, :]
    return (result, clipped) if return_clipped else result

  # --- use and storage ------------------------------------------------------------------------------------------

  def predict(self, z):
    return self.g(np.asarray(z, np.float64) @ self.u)

  def delta(self, z0, z1):
    """δt̂ = g̃(⟨u, z1⟩) − g̃(⟨u, z0⟩) (Eq. 8)."""
    return self.predict(z1) - self.predict(z0)

  def to_meta(self) -> dict[str, Any]:
    return {"kind": self.kind, "input_scale": self.input_scale,
            "params": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.params.items()}}

  def to_directions(self, space: str = "z", **meta) -> Directions:
    return stack_directions([self], space=space, **meta)


def stack_directions(directions: Sequence[ContinuousDirection], space: str = "z", **meta) -> Directions:
  """One `Directions` column per model, meta["factor_models"][k] holding column k's g."""
  matrix = np.stack([d.u for d in directions], axis=1)
  return Directions(matrix=matrix, space=space, meta={**meta, META_KEY: [d.to_meta() for d in directions]})


def from_directions(directions: Directions, column: int = 0) -> ContinuousDirection:
  models = directions.meta.get(META_KEY)
  if not models or column >= len(models) or models[column] is None:
    raise ValueError(f"directions column {column} has no meta[{META_KEY!r}] entry (not written by a continuous fit)")
  entry = models[column]
  u = directions.matrix[:, column].astype(np.float64)
  return ContinuousDirection(u=u / np.linalg.norm(u), kind=entry["kind"], params=entry["params"],
                             input_scale=entry.get("input_scale", 1.0))


# ---------------------------------------------------------------------------------------------------------------
# Fitting from trajectory records (z0, z1, δt).


@dataclasses.dataclass(frozen=True)
class FitSettings:
  """The fit of Eq. 8 (hashable: static under jit). Upstream: lattice of 101 points on [−5, 5], Keras Adam lr 1e-3
  (ε 1e-7), batch 32 (last partial batch dropped), 100 epochs, L2 0.1 on v, smoothness 1.0·mean(Δθ²).

  init: 'linear' starts from the closed-form linear fit (u and a slope-matched g), 'random' from upstream's
  Glorot-uniform v with θ = 1 / a = ½.
  """
  kind: str = "lattice"
  mode: str = "paper"
  epochs: int = 100
  batch_size: int = 32
  learning_rate: float = 1e-3
  adam_eps: float = 1e-7
  l2: float = 0.1
  smoothness: float = 1.0
  low: float = -5.0
  high: float = 5.0
  size: int = 101
  init: str = "linear"
  ridge: float = 1e-6

  def __post_init__(self):
    for name, value, allowed in (("kind", self.kind, KINDS), ("mode", self.mode, MODES),
                                 ("init", self.init, ("linear", "random"))):
      if value not in allowed:
        raise ValueError(f"FitSettings.{name}={value!r}; expected one of {allowed}")
    if self.epochs < 0 or self.batch_size < 1:
      raise ValueError(f"FitSettings: epochs >= 0 and batch_size >= 1 required, got {self.epochs}, {self.batch_size}")
    lattice_points(self.low, self.high, self.size)


def _check_records(z0, z1, dt):
  z0, z1, dt = (np.asarray(a, np.float64) for a in (z0, z1, dt))
  if z0.ndim != 2 or z0.shape != z1.shape or dt.shape != (len(z0),):
    raise ValueError(f"records must be z0, z1 (R, d) and δt (R,), got {z0.shape}, {z1.shape}, {dt.shape}")
  if not (np.isfinite(z0).all() and np.isfinite(z1).all() and np.isfinite(dt).all()):
    raise ValueError("records contain non-finite values: drop them (e.g. with inversion.discard_worst) first")
  return z0, z1, dt


def fit_linear(z0, z1, dt, ridge: float = 1e-6) -> ContinuousDirection:
  """Closed form of δt = ⟨a·u, z1 − z0⟩: w = (ΔZᵀΔZ + ridge·I)⁻¹ΔZᵀδt, a = ‖w‖, u = w/a."""
  z0, z1, dt = _check_records(z0, z1, dt)
  dz = z1 - z0
  w = np.linalg.solve(dz.T @ dz + ridge * np.eye(dz.shape[1]), dz.T @ dt)
  slope = float(np.linalg.norm(w))
  if slope == 0:
    raise ValueError("the linear fit is zero: δt does not depend on z1 − z0 in these records")
  return ContinuousDirection(u=w / slope, kind="linear", params={"slope": slope})


def init_params(z0, z1, dt, settings: FitSettings, rng: jax.Array) -> dict[str, jax.Array]:
  """Parameters {'v', 'g'} of a gradient fit: the start from the linear fit or upstream's random init."""
  z0, z1, dt = _check_records(z0, z1, dt)
  d = z0.shape[1]
  if settings.init == "linear":
    linear = fit_linear(z0, z1, dt, settings.ridge)
    slope = linear.params["slope"]
    v = linear.u * (slope if settings.mode == "upstream" else 1.0)
    unit_slope = 1.0 if settings.mode == "upstream" else slope  # g'(0) such that the start equals the linear fit
  else:
    limit = math.sqrt(6 / (d + 1))
    v = np.asarray(jax.random.uniform(rng, (d,), minval=-limit, maxval=limit), np.float64)
    unit_slope = 1.0
  if settings.kind == "lattice":
    g = np.full(settings.size, unit_slope if settings.init == "linear" else 1.0)
  elif settings.kind == "erf":
    g = np.array([unit_slope * math.sqrt(math.pi / 2) if settings.init == "linear" else 0.5])
  else:
    g = np.array([unit_slope])
  return {"v": jnp.asarray(v, jnp.float32), "g": jnp.asarray(g, jnp.float32)}


def _predict(params, z, settings: FitSettings):
  v = params["v"]
  if settings.mode == "paper":
    v = v / jnp.linalg.norm(v)
  s = z @ v
  if settings.kind == "lattice":
    return lattice_g(params["g"], s, settings.low, settings.high)
  if settings.kind == "erf":
    return params["g"][0] * jax.scipy.special.erf(s / math.sqrt(2))
  return params["g"][0] * s


def fit_loss(params, z0, z1, dt, settings: FitSettings):
  """MSE of δt̂ = g(s1) − g(s0), + smoothness·mean(Δθ²) (lattice) + l2·Σv² (mode 'upstream')."""
  error = _predict(params, z1, settings) - _predict(params, z0, settings) - dt
  loss = jnp.mean(error ** 2)
  if settings.kind == "lattice" and settings.smoothness:
    loss = loss + settings.smoothness * jnp.mean(jnp.diff(params["g"]) ** 2)
  if settings.mode == "upstream" and settings.l2:
    loss = loss + settings.l2 * jnp.sum(params["v"] ** 2)
  return loss


def _optimizer(settings: FitSettings):
  return optax.adam(settings.learning_rate, eps=settings.adam_eps)


@functools.partial(jax.jit, static_argnames=("settings", "num_batches"), donate_argnums=(0, 1))
def train_epoch(params, opt_state, z0, z1, dt, rng, settings: FitSettings, num_batches: int):
  """One epoch: a permutation from `rng`, `num_batches` full minibatches (the remainder dropped, as upstream), Adam
  then the projection g ≥ 0 (upstream's NonNeg constraint) after every update. Returns (params, state, mean loss)."""
  order = jax.random.permutation(rng, z0.shape[0])[:num_batches * settings.batch_size]
  order = order.reshape(num_batches, settings.batch_size)
  optimizer = _optimizer(settings)

  def step(carry, index):
    params, state = carry
    loss, grad = jax.value_and_grad(fit_loss)(params, z0[index], z1[index], dt[index], settings)
    updates, state = optimizer.update(grad, state, params)
    params = optax.apply_updates(params, updates)
    return ({**params, "g": jnp.maximum(params["g"], 0.0)}, state), loss

  (params, opt_state), batch_losses = jax.lax.scan(step, (params, opt_state), order)
  return params, opt_state, jnp.mean(batch_losses)


def direction_from_params(params, settings: FitSettings) -> ContinuousDirection:
  v = np.asarray(params["v"], np.float64)
  norm = float(np.linalg.norm(v))
  if not norm > 0:
    raise ValueError("the fitted direction is zero")
  g = np.asarray(params["g"], np.float64)
  scale = norm if settings.mode == "upstream" else 1.0
  if settings.kind == "lattice":
    model = {"theta": g, "low": settings.low, "high": settings.high}
  else:
    model = {"amplitude" if settings.kind == "erf" else "slope": float(g[0])}
  return ContinuousDirection(u=v / norm, kind=settings.kind, params=model, input_scale=scale)


def fit(z0, z1, dt, settings: FitSettings | None = None, seed: int = 0) -> tuple[ContinuousDirection, np.ndarray]:
  """(direction, per-epoch mean training loss) of Eq. 8 on records z0, z1 (R, d), δt (R,).

  kind 'linear' is the closed form (no epochs); 'lattice' and 'erf' run `train_epoch` for settings.epochs epochs
  (epoch e shuffles with a key folded from the seed and e, so a fit is a pure function of its inputs and seed).
  """
  settings = settings or FitSettings()
  if settings.kind == "linear" and settings.init == "linear" and settings.mode == "paper":
    return fit_linear(z0, z1, dt, settings.ridge), np.zeros(0)
  z0, z1, dt = _check_records(z0, z1, dt)
  num_batches = len(z0) // settings.batch_size
  if num_batches == 0 and settings.epochs:
    raise ValueError(f"{len(z0)} records are fewer than one batch of FitSettings.batch_size={settings.batch_size}")
  init_key, epoch_key = jax.random.split(jax.random.key(seed))
  params = init_params(z0, z1, dt, settings, init_key)
  opt_state = _optimizer(settings).init(params)
  data = [jnp.asarray(a, jnp.float32) for a in (z0, z1, dt)]
  history = []
  for epoch in range(settings.epochs):
    params, opt_state, loss = train_epoch(params, opt_state, *data, jax.random.fold_in(epoch_key, epoch), settings,
                                          num_batches)
    history.append(float(loss))
  return direction_from_params(params, settings), np.asarray(history)
