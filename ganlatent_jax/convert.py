"""Converts an upstream checkpoint into a directory `generators.load` reads without the upstream format.

  python -m ganlatent_jax.port --in=stylegan2-ffhq-config-f.pt --out=converted/ffhq [--format=stylegan2_rosinality]

(`python -m ganlatent_jax.convert` is the same command.) Writes DIR/variables.msgpack (the Flax variables) and
DIR/generator.json (family, architecture config, source). Nothing from the checkpoint is executed (restricted
unpickler); mismatched keys are refused by name; NaN/inf weights are refused by name unless --allow_nonfinite.
--out must be new, empty, or exactly a previous conversion (generator.json + variables.msgpack): it is replaced by
building the new one beside it and swapping (rename aside, rename in, delete old), never by deleting first.
"""
from absl import app, flags

from ganlatent_jax import cli

def define_flags():
  """Defined when run as a program only (here or through `python -m ganlatent_jax.port`): importing the module
  leaves absl's flags alone (other entry points also define --out)."""
  import types
  args = types.SimpleNamespace(
      input=flags.DEFINE_string("in", None, "Upstream checkpoint: a .pt/.pth/.bin file or a directory (BigGAN, "
                                "SN-GAN)."),
      out=flags.DEFINE_string("out", None, "Directory to write: new, empty, or a previous conversion (replaced)."),
      format=flags.DEFINE_string("format", None, "Force a format (default: auto-detect); see "
                                 "generators.load.FORMATS."),
      allow_nonfinite=flags.DEFINE_bool("allow_nonfinite", False, "Convert even if some weights are NaN or "
                                        "infinite."))
  flags.mark_flags_as_required(["in", "out"])
  return args


def main(argv, args):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from ganlatent_jax.generators.load import convert, previous_conversion_problem, save_converted

  problem = previous_conversion_problem(args.out.value, exact=True)  # checked before the (possibly long) conversion
  if problem:
    raise app.UsageError(f"--out={args.out.value}: {problem}")
  try:
    config, variables = convert(args.input.value, format=args.format.value, allow_nonfinite=args.allow_nonfinite.value)
    save_converted(args.out.value, config, variables, source=args.input.value, exact=True)
  except (ValueError, OSError) as e:  # bad input: its message names the file and what is wrong
    raise SystemExit(f"error: {e}") from e
  print(f"converted {args.input.value} ({config['family']}) -> {args.out.value}")


def run(args=None):
  """The command; `args` when the flags were defined already (port/__main__ adopts them for its --help)."""
  args = args or define_flags()
  cli.run(lambda argv: main(argv, args))


if __name__ == "__main__":
  run()
