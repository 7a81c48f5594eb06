"""`generators.load(path)`: one entry point for every supported checkpoint format.

Format modules (in `ganlatent_jax/port/`) each expose
  NAME: str
  sniff(path: str, checkpoint) -> bool     # checkpoint: the torch file's contents, or None for a directory
  convert(path: str, checkpoint) -> (config: dict, variables)   # config['family'] names the generator family
Family modules (in `ganlatent_jax/generators/`) each expose
  build(config: dict, variables, source: str) -> Generator
  init_variables(config: dict, rng) -> variables              # random init, for training from scratch
A converted directory (written by `python -m ganlatent_jax.port`) holds `generator.json` (family, config, source)
and `variables.msgpack`; `testbed:NAME` points at such a directory shipped in the package's assets.
"""
from __future__ import annotations

import importlib
import json
import os
import pathlib
import tempfile
from typing import Any

import flax.serialization
import numpy as np

from ganlatent_jax.generators.base import Generator
from ganlatent_jax.port import torch_pickle

FORMATS: dict[str, str] = {
    "stylegan2_rosinality": "ganlatent_jax.generators.formats.stylegan2_rosinality",
    "biggan_pretrained": "ganlatent_jax.generators.formats.biggan_pretrained",
    "sngan_gld": "ganlatent_jax.port.sngan",
    "proggan_gld": "ganlatent_jax.generators.formats.proggan_gld",
}
FAMILIES: dict[str, str] = {
    "stylegan2": "ganlatent_jax.generators.stylegan2",
    "biggan": "ganlatent_jax.generators.biggan",
    "sngan": "ganlatent_jax.generators.sngan",
    "proggan": "ganlatent_jax.generators.proggan",
    "dcgan": "ganlatent_jax.generators.dcgan",
    "oracle": "ganlatent_jax.generators.oracle",
}
CONVERTED_META = "generator.json"
CONVERTED_VARIABLES = "variables.msgpack"
TESTBED_DIR = pathlib.Path(__file__).resolve().parent.parent / "assets" / "testbed"


def _module(dotted: str, what: str):
  try:
    return importlib.import_module(dotted)
  except ModuleNotFoundError as e:
    if e.name == dotted:
      raise ValueError(f"{what} is not available in this installation ({dotted} missing)") from e
    raise


def family_module(family: str):
  if family not in FAMILIES:
    raise ValueError(f"unknown generator family {family!r}; known: {sorted(FAMILIES)}")
  return _module(FAMILIES[family], f"generator family {family!r}")


def format_module(name: str):
  if name not in FORMATS:
    raise ValueError(f"unknown checkpoint format {name!r}; known: {sorted(FORMATS)}")
  return _module(FORMATS[name], f"checkpoint format {name!r}")


def convert(path: str | os.PathLike, format: str | None = None) -> tuple[dict[str, Any], Any]:
  """Reads an upstream checkpoint (file or directory) → (config with 'family', variables as numpy)."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"generator checkpoint not found: {path}")
  checkpoint = None if os.path.isdir(path) else torch_pickle.load_torch_file(path)
  if format is not None:
    return format_module(format).convert(path, checkpoint)
  tried = []
  for name in FORMATS:
    try:
      module = format_module(name)
    except ValueError:
      continue
    tried.append(name)
    if module.sniff(path, checkpoint):
      return module.convert(path, checkpoint)
  raise ValueError(f"{path}: not recognised as any supported generator format (tried {tried}); "
                   f"pass format= to force one")


def save_converted(directory: str | os.PathLike, config: dict[str, Any], variables: Any, source: str = "") -> None:
  """Writes a converted generator atomically (a temp dir renamed into place: nothing half-written is left)."""
  directory = pathlib.Path(directory)
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
  tmp.chmod(0o755)  # mkdtemp makes it 0700; the renamed directory (e.g. a shipped asset) must be readable by all
  try:
    (tmp / CONVERTED_VARIABLES).write_bytes(flax.serialization.msgpack_serialize(
        _to_numpy(variables)))
    (tmp / CONVERTED_META).write_text(json.dumps(
        {"format_version": 1, "family": config["family"], "config": config, "source": source}, indent=2))
    if directory.exists():
      for child in directory.iterdir():
        child.unlink()
      directory.rmdir()
    tmp.rename(directory)
  except BaseException:
    for child in tmp.iterdir():
      child.unlink()
    tmp.rmdir()
    raise


def _to_numpy(tree):
  if isinstance(tree, dict):
    return {k: _to_numpy(v) for k, v in tree.items()}
  return np.asarray(tree)


def _load_converted(directory: pathlib.Path, source: str) -> Generator:
  try:
    meta = json.loads((directory / CONVERTED_META).read_text())
    variables = flax.serialization.msgpack_restore((directory / CONVERTED_VARIABLES).read_bytes())
  except (OSError, ValueError) as e:
    raise ValueError(f"{directory}: unreadable converted generator ({e})") from e
  return family_module(meta["family"]).build(meta["config"], variables, source)


def load(path: str | os.PathLike, format: str | None = None) -> Generator:
  """A `Generator` from an upstream checkpoint, a converted directory, or `testbed:NAME`."""
  path = os.fspath(path)
  if path.startswith("testbed:"):
    name = path.split(":", 1)[1]
    directory = TESTBED_DIR / name
    if not (directory / CONVERTED_META).exists():
      available = sorted(p.name for p in TESTBED_DIR.iterdir()) if TESTBED_DIR.exists() else []
      raise ValueError(f"no testbed generator {name!r} in this installation; available: {available}")
    return _load_converted(directory, path)
  if os.path.isdir(path) and os.path.exists(os.path.join(path, CONVERTED_META)):
    return _load_converted(pathlib.Path(path), path)
  config, variables = convert(path, format)
  return family_module(config["family"]).build(config, variables, path)
