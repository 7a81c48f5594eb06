"""Writes a grid of samples of any generator the library loads.

  python -m ganlatent_jax.sample --generator=converted/ffhq --out=samples.png [--num=16 --seed=0 --truncation=0.7]

BigGAN needs a class: --class_id=207; its truncation (default 0.4) scales truncated noise and picks its batch-norm
statistics, as in pytorch-pretrained-biggan's README.
"""
import functools

import jax
from absl import app, flags

from ganlatent_jax import cli

def _define_flags():
  """Defined when run as a program only: importing the module leaves absl's flags alone (the entry points share
  names such as --out and --workdir, and tests import several in one process)."""
  import types
  args = types.SimpleNamespace(
      generator=flags.DEFINE_string("generator", None, "Checkpoint, converted directory or testbed:NAME."),
      out=flags.DEFINE_string("out", "samples.png", "PNG to write."),
      num=flags.DEFINE_integer("num", 16, "Number of samples."),
      seed=flags.DEFINE_integer("seed", 0, "Seed of the latents."),
      truncation=flags.DEFINE_float("truncation", None, "Truncation (StyleGAN2: in W around w̄; BigGAN: its own)."),
      class_id=flags.DEFINE_integer("class_id", None, "Class index for class-conditional generators (BigGAN)."))
  flags.mark_flags_as_required(["generator"])
  return args


def main(argv, args):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from ganlatent_jax import generators, viz
  from ganlatent_jax.generators import biggan, sampling

  gen = generators.load(args.generator.value)
  truncation, classes = args.truncation.value, ()
  if gen.info.num_classes:
    class_id = args.class_id.value
    if class_id is None or not 0 <= class_id < gen.info.num_classes:
      raise app.UsageError(f"a {gen.info.family} generator is class-conditional: pass --class_id in "
                           f"0..{gen.info.num_classes - 1} (got {class_id})")
    # BigGAN's truncation picks its batch-norm statistics and must match the noise: z = truncnorm(−2, 2)·t.
    classes, truncation = (class_id,), biggan.DEFAULT_TRUNCATION if truncation is None else truncation
  elif truncation is not None and "w" not in gen.info.latent_spaces:
    truncation = None   # a generator without W has nothing to truncate
  try:   # the one way to sample a generator (generators.sampling): prior, class, truncation, w̄ once
    sampler = sampling.make_sampler(gen, classes=classes, truncation=truncation,
                                    rng=jax.random.key(args.seed.value + 1), classes_key="--class_id",
                                    truncation_key="--truncation")
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  z = sampler.z(jax.random.key(args.seed.value), args.num.value)
  space = "w" if not sampler.conditional and truncation not in (None, 1.0) else "z"
  images = _render(sampler, sampler.class_ids(jax.random.key(0), args.num.value), z, space)
  viz.images_to_grid(viz.to_display(images, gen.info.output_range), ncols=min(8, args.num.value), path=args.out.value)
  print(f"wrote {args.num.value} samples of {args.generator.value} to {args.out.value}")


@functools.partial(jax.jit, static_argnums=3)
def _render(sampler, class_ids, z, space):
  return sampler.render(sampler.to_space(z, space), space, class_ids)


def run():
  args = _define_flags()
  cli.run(lambda argv: main(argv, args))


if __name__ == "__main__":
  run()
