"""Writes a grid of samples of any generator the library loads.

  python -m ganlatent_jax.sample --generator=converted/ffhq --out=samples.png [--num=16 --seed=0 --truncation=0.7]

BigGAN needs a class: --class_id=207; its truncation (default 0.4) scales truncated noise and picks its batch-norm
statistics, as in pytorch-pretrained-biggan's README.
"""
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
  import jax
  import numpy as np

  from ganlatent_jax import generators, viz
  from ganlatent_jax.directions import spaces

  gen = generators.load(_GENERATOR.value)
  z = gen.sample_z(jax.random.key(_SEED.value), _NUM.value)
  if gen.info.num_classes:
    class_id = _CLASS_ID.value
    if class_id is None or not 0 <= class_id < gen.info.num_classes:
      raise app.UsageError(f"a {gen.info.family} generator is class-conditional: pass --class_id in "
                           f"0..{gen.info.num_classes - 1} (got {class_id})")
    kwargs = {"class_vector": np.full((_NUM.value,), class_id, np.int32)}
    if gen.info.family == "biggan":
      # BigGAN's truncation picks its batch-norm statistics and must match the noise: z = truncnorm(−2, 2)·t.
      from ganlatent_jax.generators import biggan
      kwargs["truncation"] = biggan.DEFAULT_TRUNCATION if _TRUNCATION.value is None else _TRUNCATION.value
      z = biggan.truncated_noise(jax.random.key(_SEED.value), _NUM.value, kwargs["truncation"], gen.latent_dim)
    images = jax.jit(lambda g, z: g(z, **kwargs))(gen, z)
  elif _TRUNCATION.value is not None and "w" in gen.info.latent_spaces:
    w_avg = spaces.mean_w(gen, jax.random.key(_SEED.value + 1))
    images = jax.jit(lambda g, z: spaces.render(g, spaces.to_space(g, z, "w", _TRUNCATION.value, w_avg), "w"))(gen, z)
  else:
    images = jax.jit(lambda g, z: g(z))(gen, z)
  viz.images_to_grid(viz.to_display(images, gen.info.output_range), ncols=min(8, _NUM.value), path=_OUT.value)
  print(f"wrote {_NUM.value} samples of {_GENERATOR.value} to {_OUT.value}")


if __name__ == "__main__":
  cli.run(main)
