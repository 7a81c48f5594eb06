"""How to sample a generator — one object per run, used by every method, picture, metric and CLI.

A `Sampler` says what "a sample of this generator" means for a run:
  * the prior: the generator's `sample_z` (N(0, I) unless its `latent_prior` says what it was trained on, e.g. UD-GAN's
    U(−1, 1) knobs), or a class-conditional generator's truncated noise z = ψ·truncnorm(−2, 2) (BigGAN-deep,
    the pytorch-pretrained-biggan convention, whose batch-norm statistics are picked by the same ψ);
  * class conditioning: the classes a run draws from (per example) and shows in its pictures (the first);
  * truncation, `None` for none: for a generator with a W space (StyleGAN2) w ← w̄ + ψ (w − w̄) around w̄, the mean
    of the mapping over prior samples, computed ONCE when the sampler is made (a jitted reduction, from a key the
    run names); for a class-conditional generator the noise/BN truncation above (required, in (0, 1]).

It is a `flax.struct.dataclass`: the generator's parameters and w̄ are its only array leaves, the classes and the
truncation are static, so a sampler passes through `jax.jit` as an argument (one compilation per run) and never
reaches an optimizer.

  sampler = sampling.from_config(config, gen, rng=jax.random.key(seed + 11))
  z = sampler.z(rng, n); classes = sampler.class_ids(rng2, n)
  images = sampler.render(sampler.to_space(z, "w"), "w", classes)
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import flax
import jax
import jax.numpy as jnp

from ganlatent_jax.generators.base import Generator
from ganlatent_jax.generators.biggan import truncated_noise

W_AVG_SAMPLES = 4096


def truncate_w(w: jax.Array, w_avg: jax.Array, truncation: float | None) -> jax.Array:
  """StyleGAN's truncation trick w̄ + ψ (w − w̄); identity for ψ None or 1."""
  if truncation is None or truncation == 1.0:
    return w
  if w_avg is None:
    raise ValueError("truncation in W needs w̄ (generators.sampling.mean_w)")
  return w_avg + truncation * (w - w_avg)


@functools.partial(jax.jit, static_argnums=2)
def mean_w(gen: Generator, rng: jax.Array, num_samples: int = W_AVG_SAMPLES) -> jax.Array:
  """w̄ = mean of mapping(z) over `num_samples` prior samples (once per run, never per step or per picture)."""
  return jnp.mean(gen.mapping(gen.sample_z(rng, num_samples)), axis=0)


@flax.struct.dataclass
class Sampler:
  gen: Generator
  w_avg: jax.Array | None = None                                           # generators with a W space
  classes: tuple[int, ...] = flax.struct.field(pytree_node=False, default=())
  truncation: float | None = flax.struct.field(pytree_node=False, default=None)

  @property
  def conditional(self) -> bool:
    return bool(self.gen.info.num_classes)

  def z(self, rng: jax.Array, num: int) -> jax.Array:
    """(num, latent_dim) prior samples: `gen.sample_z`, or a class-conditional generator's truncated noise."""
    if self.conditional:
      return truncated_noise(rng, num, self.truncation, self.gen.latent_dim)
    return self.gen.sample_z(rng, num)

  def class_ids(self, rng: jax.Array, num: int) -> jax.Array | None:
    """(num,) classes drawn uniformly from `classes` (None for an unconditional generator)."""
    if not self.conditional:
      return None
    choice = jax.random.randint(rng, (num,), 0, len(self.classes))
    return jnp.asarray(self.classes, jnp.int32)[choice]

  def to_space(self, z: jax.Array, space: str) -> jax.Array:
    """Prior samples → latents in `space` ('z', 'w' or 'w+'), W truncated around w̄ when the run truncates."""
    if space == "z":
      return z
    w = truncate_w(self.gen.mapping(z), self.w_avg, self.truncation)
    if space == "w":
      return w
    if space == "w+":
      return jnp.broadcast_to(w[:, None, :], (w.shape[0], self.gen.info.num_ws, w.shape[-1]))
    raise ValueError(f"unknown latent space {space!r}; expected 'z', 'w' or 'w+'")

  def gen_kwargs(self, class_ids: jax.Array | None = None) -> dict[str, Any]:
    """The generator's call arguments: a class-conditional generator's classes and truncation ({} otherwise)."""
    if not self.conditional:
      return {}
    if class_ids is None:
      raise ValueError(f"a class-conditional {self.gen.info.family} generator needs class ids")
    return dict(class_vector=class_ids, truncation=self.truncation)

  def picture_kwargs(self) -> dict[str, Any]:
    """Call arguments of a picture: one fixed class (the first) keeps a picture's rows comparable."""
    return self.gen_kwargs(jnp.full((1,), self.classes[0], jnp.int32)) if self.conditional else {}

  def render(self, latents: jax.Array, space: str, class_ids: jax.Array | None = None) -> jax.Array:
    """Images (NHWC, the generator's raw range) of latents in `space`."""
    kwargs = self.gen_kwargs(class_ids) if self.conditional else {}
    if space == "z":
      return self.gen(latents, **kwargs)
    return self.gen.synthesis(latents, **kwargs)

  def images(self, rng: jax.Array, num: int) -> jax.Array:
    """`num` samples of the run's distribution (raw range), jitted once per sampler structure and size."""
    return _images(self, rng, num)

  def record(self) -> dict[str, Any]:
    """What results.json and directions' meta record of the sampling."""
    out: dict[str, Any] = {"truncation": self.truncation}
    if self.conditional:
      out["classes"] = list(self.classes)
    return out


@functools.partial(jax.jit, static_argnums=2)
def _images(sampler: Sampler, rng: jax.Array, num: int) -> jax.Array:
  z_rng, class_rng = jax.random.split(rng)
  z, classes = sampler.z(z_rng, num), sampler.class_ids(class_rng, num)
  if "w" in sampler.gen.info.latent_spaces and sampler.truncation not in (None, 1.0):
    return sampler.render(sampler.to_space(z, "w"), "w", classes)
  return sampler.render(z, "z", classes)


def make_sampler(gen: Generator, *, classes: Sequence[int] = (), truncation: float | None = None,
                 rng: jax.Array | None = None, w_avg_samples: int = W_AVG_SAMPLES,
                 classes_key: str = "config.conditional.classes",
                 truncation_key: str = "config.truncation") -> Sampler:
  """A validated sampler for `gen`; errors name the config keys. w̄ is computed here (from `rng`) for a generator
  with a W space; `rng` defaults to key 0."""
  info = gen.info
  classes = tuple(int(c) for c in (classes or ()))
  if truncation is not None:
    truncation = float(truncation)
  if info.num_classes:
    if not classes:
      raise ValueError(f"a class-conditional {info.family} generator needs {classes_key} (class ids)")
    outside = [c for c in classes if not 0 <= c < info.num_classes]
    if outside:
      raise ValueError(f"{classes_key} has {outside} outside 0..{info.num_classes - 1}")
    if truncation is None or not 0.0 < truncation <= 1.0:
      raise ValueError(f"{truncation_key}={truncation}: a {info.family} generator's truncation is in (0, 1]")
    return Sampler(gen=gen, classes=classes, truncation=truncation)
  if classes:
    raise ValueError(f"{classes_key}={classes} but the {info.family} generator is not class-conditional")
  if truncation is not None:
    if truncation <= 0.0:
      raise ValueError(f"{truncation_key}={truncation}: truncation ψ must be > 0 (None = no truncation)")
    if "w" not in info.latent_spaces and truncation != 1.0:
      raise ValueError(f"{truncation_key}={truncation} but a {info.family} generator has no W space to truncate in "
                       f"(None = no truncation)")
  w_avg = None
  if "w" in info.latent_spaces:
    if w_avg_samples <= 0:
      raise ValueError(f"w̄ needs a positive number of samples, got {w_avg_samples}")
    w_avg = mean_w(gen, jax.random.key(0) if rng is None else rng, int(w_avg_samples))
  return Sampler(gen=gen, w_avg=w_avg, truncation=truncation)


def from_config(config, gen: Generator, rng: jax.Array | None = None,
                w_avg_samples: int = W_AVG_SAMPLES) -> Sampler:
  """The sampler of a run config (the vocabulary of docs/architecture.md): `config.truncation` (ψ in W, None = none)
  for unconditional generators; `config.conditional.classes` and `config.conditional.truncation` for
  class-conditional ones."""
  section = config.get("conditional", None) or {}
  classes = tuple(section.get("classes", ()) or ())
  if gen.info.num_classes:
    return make_sampler(gen, classes=classes, truncation=section.get("truncation", None), rng=rng,
                        truncation_key="config.conditional.truncation")
  return make_sampler(gen, classes=classes, truncation=config.get("truncation", None), rng=rng,
                      w_avg_samples=w_avg_samples)
