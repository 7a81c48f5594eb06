"""Config files by name: `--config=sre_3dshapes` (or `sre_3dshapes:quick`) as well as `--config=configs/x.py`.

The repository's `configs/` is the source. An installed wheel carries a copy as `ganlatent_jax/configs/` (setup.py
maps the directory into the package), so a pip user can run `python -m ganlatent_jax.main --config=sre_3dshapes`
from any directory; in a checkout (or an editable install) the names resolve to the repository's `configs/`.
A value that names an existing file is always taken as that file.
"""
from __future__ import annotations

import os
import pathlib
import sys
from typing import Sequence

_PACKAGE = pathlib.Path(__file__).resolve().parent
# The wheel's copy first, then the checkout's directory beside the package.
CONFIG_DIRECTORIES = (_PACKAGE / "configs", _PACKAGE.parent / "configs")
CONFIG_FLAGS = ("--config",)


def config_directory() -> pathlib.Path | None:
  """Where the packaged configs are (None if neither the wheel's copy nor a checkout's configs/ exists)."""
  for directory in CONFIG_DIRECTORIES:
    if directory.is_dir() and any(directory.glob("*.py")):
      return directory
  return None


def available() -> list[str]:
  """The names `--config=NAME` accepts (every config module except shared helpers starting with '_' or 'common')."""
  directory = config_directory()
  if directory is None:
    return []
  return sorted(p.stem for p in directory.glob("*.py") if not p.stem.startswith("_") and p.stem != "common")


def resolve(value: str) -> str:
  """`NAME[:arg]` → `/path/to/configs/NAME.py[:arg]` when no file `NAME` (or `NAME.py`) exists here; else `value`.

  Raises ValueError naming the packaged configs when the value is a bare name that is neither a file nor packaged.
  """
  file, sep, arg = value.partition(":")
  if os.path.exists(file) or not file:
    return value
  name = file[:-3] if file.endswith(".py") else file
  looks_like_name = os.sep not in name and "/" not in name
  directory = config_directory()
  if looks_like_name and directory is not None and (directory / f"{name}.py").is_file():
    return f"{directory / (name + '.py')}{sep}{arg}"
  if looks_like_name:
    raise ValueError(f"--config={value}: no file {file!r} here and no packaged config named {name!r}; "
                     f"packaged configs: {available()}")
  return value


def rewrite_argv(argv: Sequence[str]) -> list[str]:
  """argv with every `--config=NAME[:arg]` / `--config NAME[:arg]` resolved (other arguments untouched)."""
  out = list(argv)
  for i, argument in enumerate(out):
    for flag in CONFIG_FLAGS:
      if argument.startswith(flag + "="):
        out[i] = f"{flag}={resolve(argument[len(flag) + 1:])}"
      elif argument == flag and i + 1 < len(out):
        out[i + 1] = resolve(out[i + 1])
  return out


def rewrite_sys_argv() -> None:
  """`rewrite_argv` applied to sys.argv in place; a bad name exits with the message (before absl parses flags)."""
  try:
    sys.argv[:] = rewrite_argv(sys.argv)
  except ValueError as e:
    raise SystemExit(f"FATAL Flags parsing error: {e}") from None
