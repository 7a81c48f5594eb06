"""Writes a run's report.html, and optionally a page comparing several runs.

  python -m ganlatent_jax.report --workdir=W                       # W/report.html
  python -m ganlatent_jax.report --workdir=W --compare W2 W3 ...   # also W/comparison.html over W, W2, W3, ...

Every run gets its report at the end (and at each checkpoint) anyway; this rebuilds it, e.g. after a re-evaluation,
and builds the comparison of the seeds of a table. Both pages open from disk without a server or network.
"""
from absl import app, flags

def _define_flags():
  """Defined when run as a program only: importing the module leaves absl's flags alone (other entry points also
  define --workdir, and tests import several in one process)."""
  import types
  args = types.SimpleNamespace(
      workdir=flags.DEFINE_string("workdir", None, "A run's directory (config.json, metrics.json, event files, "
                                  "images)."),
      compare=flags.DEFINE_multi_string(
          "compare", [], "Other runs to compare with --workdir; `--compare W2 W3` (the words after the first are "
          "taken as more runs) or `--compare=W2 --compare=W3`."),
      output=flags.DEFINE_string("output", "", "Where the comparison page goes (default: WORKDIR/comparison.html)."))
  flags.mark_flag_as_required("workdir")
  return args


def main(argv, args):
  import os

  from ganlatent_jax import io
  from ganlatent_jax.viz import compare, report

  others = list(args.compare.value) + list(argv[1:])
  if argv[1:] and not args.compare.value:
    raise app.UsageError(f"unexpected arguments: {argv[1:]} (runs to compare follow --compare)")
  try:
    # a run's report may be rebuilt in its gs:// workdir (--compare: local runs)
    io.check_filesystem(args.workdir.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  for workdir in [args.workdir.value, *others]:
    if not io.isdir(workdir):
      raise app.UsageError(f"{workdir} is not a directory")
  print(report.write_report(args.workdir.value))
  if others:
    output = args.output.value or os.path.join(args.workdir.value, compare.COMPARISON_FILE)
    print(compare.write_comparison([args.workdir.value, *others], output))


def run():
  from ganlatent_jax import cli
  args = _define_flags()
  cli.run(lambda argv: main(argv, args))


if __name__ == "__main__":
  run()
