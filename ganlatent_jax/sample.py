"""Writes a grid of samples of any generator the library loads.

  python -m ganlatent_jax.sample --generator=converted/ffhq --out=samples.png [--num=16 --seed=0 --truncation=0.7]

BigGAN needs a class: --class_id=207; its truncation (default 0.4) scales truncated noise and picks its batch-norm
statistics, as in pytorch-pretrained-biggan's README.
"""
import functools

import jax
from absl import app, flags

from ganlatent_jax import cli

_GENERATOR = flags.DEFINE_string("generator", None, "Checkpoint, converted directory or testbed:NAME.")
_OUT = flags.DEFINE_string("out", "samples.png", "PNG to write.")
_NUM = flags.DEFINE_integer("num", 16, "Number of samples.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latents.")
_TRUNCATION = flags.DEFINE_float("truncation", None, "Truncation (StyleGAN2: in W around w̄; BigGAN: its own).")
_CLASS_ID = flags.DEFINE_integer("class_id", None, "Class index for class-conditional generators (BigGAN).")
flags.mark_flags_as_required(["generator"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from ganlatent_jax import generators, viz
  from ganlatent_jax.generators import biggan, sampling

  gen = generators.load(_GENERATOR.value)
  truncation, classes = _TRUNCATION.value, ()
  if gen.info.num_classes:
    class_id = _CLASS_ID.value
    if class_id is None or not 0 <= class_id < gen.info.num_classes:
      raise app.UsageError(f"a {gen.info.family} generator is class-conditional: pass --class_id in "
                           f"0..{gen.info.num_classes - 1} (got {class_id})")
    # BigGAN's truncation picks its batch-norm statistics and must match the noise: z = truncnorm(−2, 2)·t.
    classes, truncation = (class_id,), biggan.DEFAULT_TRUNCATION if truncation is None else truncation
  elif truncation is not None and "w" not in gen.info.latent_spaces:
    truncation = None   # a generator without W has nothing to truncate
  try:   # the one way to sample a generator (generators.sampling): prior, class, truncation, w̄ once
    sampler = sampling.make_sampler(gen, classes=classes, truncation=truncation, rng=jax.random.key(_SEED.value + 1),
                                    classes_key="--class_id", truncation_key="--truncation")
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  z = sampler.z(jax.random.key(_SEED.value), _NUM.value)
  space = "w" if not sampler.conditional and truncation not in (None, 1.0) else "z"
  images = _render(sampler, sampler.class_ids(jax.random.key(0), _NUM.value), z, space)
  viz.images_to_grid(viz.to_display(images, gen.info.output_range), ncols=min(8, _NUM.value), path=_OUT.value)
  print(f"wrote {_NUM.value} samples of {_GENERATOR.value} to {_OUT.value}")


@functools.partial(jax.jit, static_argnums=3)
def _render(sampler, class_ids, z, space):
  return sampler.render(sampler.to_space(z, space), space, class_ids)


if __name__ == "__main__":
  cli.run(main)
