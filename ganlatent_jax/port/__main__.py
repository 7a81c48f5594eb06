"""Converts an upstream checkpoint into a directory `generators.load` reads without the upstream format.

  python -m ganlatent_jax.port --in=stylegan2-ffhq-config-f.pt --out=converted/ffhq [--format=stylegan2_rosinality]

Writes DIR/variables.msgpack (the Flax variables) and DIR/generator.json (family, architecture config, source).
Nothing from the checkpoint is executed (restricted unpickler); mismatched keys are refused by name.
"""
from absl import app, flags

_IN = flags.DEFINE_string("in", None, "Upstream checkpoint: a .pt/.pth/.bin file or a directory (BigGAN, SN-GAN).")
_OUT = flags.DEFINE_string("out", None, "Directory to write (replaced atomically if it exists).")
_FORMAT = flags.DEFINE_string("format", None, "Force a format (default: auto-detect); see generators.load.FORMATS.")
flags.mark_flags_as_required(["in", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from ganlatent_jax import generators

  config, variables = generators.convert(_IN.value, format=_FORMAT.value)
  generators.save_converted(_OUT.value, config, variables, source=_IN.value)
  print(f"converted {_IN.value} ({config['family']}) -> {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
