"""What the command-line entry points share: one runner, and config variants.

Every `python -m ganlatent_jax.<entry>` ends in `cli.run(main)`, the single place where a command
  * applies the library's CPU settings (`platform.apply_cpu_settings`: XLA flags, malloc) before jax starts its
    backend — importing the library changes nothing in the process;
  * parses flags with absl, and exits 0 on --help (absl exits 1 after printing it);
  * then calls `_prepared(argv)`: the one hook for anything every command should do after flag parsing (logging).
"""
from __future__ import annotations

import sys
from typing import Callable

HELP_FLAGS = {"--help", "-h", "-?", "--helpshort", "--helpfull"}
VARIANTS = ("quick",)


def run(main: Callable) -> None:
  """`absl.app.run(main)` with the library's CPU settings applied first and --help exiting 0."""
  from ganlatent_jax import platform
  platform.apply_cpu_settings()
  from ganlatent_jax import config_files
  config_files.rewrite_sys_argv()  # --config=NAME[:variant] → the packaged config file (issue 24)
  from absl import app

  try:
    app.run(lambda argv: main(_prepared(argv)))
  except SystemExit as e:
    if e.code == 1 and HELP_FLAGS & set(sys.argv[1:]):
      raise SystemExit(0) from None
    raise


def _prepared(argv):
  """Runs after flag parsing, before `main`: the one place every command sets itself up."""
  from absl import flags

  from ganlatent_jax import console
  console.setup_logging(flags.FLAGS.verbosity)  # third-party INFO off unless --verbosity ≥ 1 (issue 24)
  return argv


def config_variant(config, arg: str | None, **variants: Callable):
  """A config file's `get_config(arg)`: `--config=configs/x.py` → `config`; `--config=configs/x.py:quick` →
  `variants['quick'](config)` (big_vision's convention). An unknown variant is named."""
  if arg in (None, ""):
    return config
  if arg not in variants:
    raise ValueError(f"config variant {arg!r} is not defined by this config; known: {sorted(variants)}")
  return variants[arg](config)


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


def load_config(path: str):
  """`get_config(arg)` of a config file given as `path[:arg]` (as --config takes it), for tests and scripts."""
  file, _, arg = path.partition(":")
  import pathlib
  module = config_module(str(pathlib.Path(file).resolve()), pathlib.Path(file).stem)
  return module.get_config(arg) if arg else module.get_config()   # as ml_collections' config_flags calls it
