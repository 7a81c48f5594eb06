"""What the command-line entry points share."""
import sys

from absl import app

HELP_FLAGS = {"--help", "-h", "-?", "--helpshort", "--helpfull"}


def run(main) -> None:
  """`absl.app.run(main)`, except that asking for --help exits 0 (absl exits 1 after printing it)."""
  try:
    app.run(main)
  except SystemExit as e:
    if e.code == 1 and HELP_FLAGS & set(sys.argv[1:]):
      raise SystemExit(0) from None
    raise
