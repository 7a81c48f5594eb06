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



def config_module(config_file: str, name: str):
  """The config module `name`.py beside `config_file` — how a config variant imports its base.

  Configs are loaded by path (`--config=configs/x.py`), so `configs/` is not on sys.path for a plain import.
  """
  import importlib.util
  import pathlib

  spec = importlib.util.spec_from_file_location(f"ganlatent_jax_config_{name}",
                                                pathlib.Path(config_file).with_name(f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
