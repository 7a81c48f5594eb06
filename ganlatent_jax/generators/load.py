"""`generators.load(path)`: one entry point for every supported checkpoint format.

Format modules (`generators/formats/*`, and `port/sngan.py`) each expose
  NAME: str
  sniff(path: str, checkpoint) -> bool     # checkpoint: the torch file's contents, or None for a directory
  convert(path: str, checkpoint) -> (config: dict, variables)   # config['family'] names the generator family
Family modules (in `ganlatent_jax/generators/`) each expose
  build(config: dict, variables, source: str) -> Generator
  init_variables(config: dict, rng) -> variables              # random init, for training from scratch
Formats read files only through `ganlatent_jax.port` (the safe torch reader + key maps), which never imports a
family: this module and the converter CLI (`ganlatent_jax/convert.py`) are the orchestration above both.
A converted directory (written by `python -m ganlatent_jax.port`) holds `generator.json` (family, config, source)
and `variables.msgpack`; `testbed:NAME` points at such a directory shipped in the package's assets.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import pathlib
from typing import Any

import jax
import numpy as np

from ganlatent_jax import io as gio
from ganlatent_jax.generators.base import Generator, check_latent_prior
from ganlatent_jax.port import nvlabs_pickle

FORMATS: dict[str, str] = {
    "stylegan2_rosinality": "ganlatent_jax.generators.formats.stylegan2_rosinality",
    "biggan_pretrained": "ganlatent_jax.generators.formats.biggan_pretrained",
    "sngan_gld": "ganlatent_jax.port.sngan",
    "proggan_gld": "ganlatent_jax.generators.formats.proggan_gld",
    "stylegan2_ada_nvlabs": "ganlatent_jax.generators.formats.stylegan2_ada_nvlabs",
    "stylegan3_nvlabs": "ganlatent_jax.generators.formats.stylegan3_nvlabs",
    "pggan_genforce": "ganlatent_jax.generators.formats.pggan_genforce",
    "stylegan_genforce": "ganlatent_jax.generators.formats.stylegan_genforce",
}
FAMILIES: dict[str, str] = {
    "stylegan2": "ganlatent_jax.generators.stylegan2",
    "stylegan2_ada": "ganlatent_jax.generators.stylegan2_ada",
    "stylegan3": "ganlatent_jax.generators.stylegan3",
    "pggan": "ganlatent_jax.generators.pggan",
    "stylegan": "ganlatent_jax.generators.stylegan",
    "biggan": "ganlatent_jax.generators.biggan",
    "sngan": "ganlatent_jax.generators.sngan",
    "proggan": "ganlatent_jax.generators.proggan",
    "dcgan": "ganlatent_jax.generators.dcgan",
    "oracle": "ganlatent_jax.generators.oracle",
    "pssc": "ganlatent_jax.generators.pssc",
    "vae": "ganlatent_jax.generators.vae",
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


def convert(path: str | os.PathLike, format: str | None = None, *,
            allow_nonfinite: bool = False) -> tuple[dict[str, Any], Any]:
  """Reads an upstream checkpoint (file or directory) → (config with 'family', variables as numpy).

  A weight that is NaN or infinite is an error naming its variable path, unless `allow_nonfinite`.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"generator checkpoint not found: {path}")
  checkpoint = None if os.path.isdir(path) else nvlabs_pickle.load_checkpoint(path)  # torch files or NVlabs pickles
  if format is not None:
    config, variables = format_module(format).convert(path, checkpoint)
  else:
    tried = []
    for name in FORMATS:
      try:
        module = format_module(name)
      except ValueError:
        continue
      tried.append(name)
      if module.sniff(path, checkpoint):
        config, variables = module.convert(path, checkpoint)
        break
    else:
      raise ValueError(f"{path}: not recognised as any supported generator format (tried {tried}); "
                       f"pass format= to force one")
  if not allow_nonfinite:
    check_finite(variables, path)
  return config, variables


def check_finite(variables: Any, source: str) -> None:
  """Raises ValueError naming every variable path holding NaN or ±inf (a corrupt or diverged checkpoint)."""
  bad = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
    array = np.asarray(leaf)
    if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
      count = int(array.size - np.isfinite(array).sum())
      bad.append(f"{jax.tree_util.keystr(path)} ({count} of {array.size} values)")
  if bad:
    raise ValueError(f"{source}: non-finite weights (NaN/inf) in {', '.join(bad[:10])}"
                     f"{' ...' if len(bad) > 10 else ''}; refusing them (allow_nonfinite / --allow_nonfinite "
                     f"to keep them)")


def previous_conversion_problem(directory: str | os.PathLike, *, exact: bool = True) -> str | None:
  """Why `directory` may not be replaced by a conversion (None if it may: absent, empty, or a previous one).

  A previous conversion holds our generator.json (a JSON object naming a family) and variables.msgpack; with
  `exact` nothing else, otherwise other regular files (e.g. a testbed's model card) may sit beside them.
  """
  if gio.is_remote(directory):
    return _previous_remote_conversion_problem(os.fspath(directory), exact)
  directory = pathlib.Path(directory)
  if not directory.exists() and not directory.is_symlink():
    return None
  if directory.is_symlink() or not directory.is_dir():
    return f"{directory} exists and is not a directory"
  entries = sorted(directory.iterdir())
  if not entries:
    return None
  ours = (CONVERTED_META, CONVERTED_VARIABLES)
  ours_present = all((directory / name).is_file() and not (directory / name).is_symlink() for name in ours)
  others = [entry for entry in entries if entry.name not in ours]
  refused = [entry for entry in others if exact or entry.is_symlink() or not entry.is_file()]
  if not ours_present or refused:
    listed = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in (refused if ours_present else others))
    return (f"{directory} is not empty and is not a previous conversion (it holds {', '.join(listed[:8])}"
            f"{' ...' if len(listed) > 8 else ''}); refusing to replace it — choose a new or empty directory")
  try:
    meta = json.loads((directory / CONVERTED_META).read_text())
    if not isinstance(meta, dict) or not isinstance(meta.get("family"), str):
      raise ValueError("no family")
  except (OSError, ValueError) as e:
    return (f"{directory} holds a {CONVERTED_META} that is not ours ({e}); refusing to replace it — choose a new "
            f"or empty directory")
  return None


def _previous_remote_conversion_problem(directory: str, exact: bool) -> str | None:
  """previous_conversion_problem of a gs:// directory (a run's export in a workdir on GCS): the names under it."""
  names = sorted({relative.split("/", 1)[0] + ("/" if "/" in relative else "")
                  for relative, _ in gio.files_under(directory)})
  ours = (CONVERTED_META, CONVERTED_VARIABLES)
  refused = [name for name in names if name not in ours and (exact or name.endswith("/"))]
  if not names or (set(ours) <= set(names) and not refused):
    return None
  listed = refused if set(ours) <= set(names) else [name for name in names if name not in ours]
  return (f"{directory} is not empty and is not a previous conversion (it holds {', '.join(listed[:8])}"
          f"{' ...' if len(listed) > 8 else ''}); refusing to replace it — choose a new or empty directory")


def save_converted(directory: str | os.PathLike, config: dict[str, Any], variables: Any, source: str = "", *,
                   exact: bool = False, latent_prior: tuple[tuple[str, int], ...] = ()) -> None:
  """Writes a converted generator: built in a directory beside `directory`, then swapped in (rename the old one
  aside, rename the new one in, delete the old) — a crash leaves the old or the new one, never a mix.

  An existing `directory` is replaced only if it is empty or a previous conversion (`previous_conversion_problem`;
  `exact`: holding nothing else): a user's other files are never deleted.
  """
  problem = previous_conversion_problem(directory, exact=exact)
  if problem:
    raise FileExistsError(problem)
  meta = {"format_version": 1, "family": config["family"], "config": config, "source": source}
  if latent_prior:   # z's training prior when it is not N(0, I) (`GeneratorInfo.latent_prior`)
    meta["latent_prior"] = [list(segment) for segment in latent_prior]
  with gio.staging_directory(directory) as tmp:
    gio.save_variables(tmp / CONVERTED_VARIABLES, variables)
    gio.write_json(tmp / CONVERTED_META, meta)


# Bounds on a converted directory's generator.json, checked before a family builds (and traces) anything: a config
# may come from anyone, and e.g. n_mlp = 1e9 would trace a billion layers. Keys are checked wherever they occur.
CONFIG_BOUNDS: dict[str, tuple[type, float, float]] = {
    "size": (int, 4, 4096), "style_dim": (int, 1, 8192), "n_mlp": (int, 0, 64), "channel_multiplier": (int, 1, 64),
    "image_channels": (int, 1, 16), "out_channels": (int, 1, 16), "latent_dim": (int, 1, 16384),
    "z_dim": (int, 1, 16384), "kernel_size": (int, 1, 15), "num_classes": (int, 0, 100_000),
    "lr_mlp": (float, 1e-8, 1e4), "seed": (int, 0, 2**64 - 1),
}
MAX_CONFIG_INT = 1 << 16  # any other integer in a config (widths, counts) stays below this
MAX_CONFIG_LIST = 64  # lists (layer tables, channel tables) are at most this long
MAX_CONFIG_DEPTH = 4


def _check_config_value(value: Any, key: str, where: str, depth: int = 0) -> None:
  if depth > MAX_CONFIG_DEPTH:
    raise ValueError(f"{where}: config.{key} is nested too deeply")
  name = key.rsplit(".", 1)[-1].split("[", 1)[0]
  if name in CONFIG_BOUNDS and not isinstance(value, (list, dict)):
    kind, low, high = CONFIG_BOUNDS[name]
    ok_type = (type(value) is int) if kind is int else (type(value) in (int, float))
    if not ok_type or not low <= value <= high:
      raise ValueError(f"{where}: config.{key} = {value!r:.60} must be {'an integer' if kind is int else 'a number'} "
                       f"in [{low}, {high}]")
    return
  if isinstance(value, dict):
    for k, v in value.items():
      _check_config_value(v, f"{key}.{k}", where, depth + 1)
  elif isinstance(value, list):
    if len(value) > MAX_CONFIG_LIST:
      raise ValueError(f"{where}: config.{key} has {len(value)} entries (at most {MAX_CONFIG_LIST})")
    for i, v in enumerate(value):
      _check_config_value(v, f"{key}[{i}]", where, depth + 1)
  elif type(value) is int and not -MAX_CONFIG_INT <= value <= MAX_CONFIG_INT:
    raise ValueError(f"{where}: config.{key} = {value} is out of range (|value| <= {MAX_CONFIG_INT})")
  elif type(value) is float and not math.isfinite(value):
    raise ValueError(f"{where}: config.{key} = {value} is not finite")
  elif not isinstance(value, (bool, int, float, str, list, dict, type(None))):
    raise ValueError(f"{where}: config.{key} has type {type(value).__name__}")


def _read_converted(directory: pathlib.Path) -> tuple[str, dict[str, Any], Any, Any]:
  """(family, config, variables, latent prior as written) of a converted directory, validated before anything is
  built (the prior once the generator's latent_dim is known)."""
  where = str(directory / CONVERTED_META)
  try:
    meta = json.loads((directory / CONVERTED_META).read_text())
  except (OSError, ValueError) as e:
    raise ValueError(f"{where}: unreadable ({e})") from e
  if not isinstance(meta, dict):
    raise ValueError(f"{where}: expected a JSON object, got {type(meta).__name__}")
  for key, kind in (("family", str), ("config", dict)):
    if not isinstance(meta.get(key), kind):
      raise ValueError(f"{where}: key {key!r} must be a {kind.__name__}, got {meta.get(key)!r:.60}")
  if meta.get("format_version", 1) != 1:
    raise ValueError(f"{where}: format_version {meta['format_version']!r:.20} is not supported (1)")
  family, config = meta["family"], meta["config"]
  if family not in FAMILIES:
    raise ValueError(f"{where}: unknown generator family {family!r:.60}; known: {sorted(FAMILIES)}")
  if config.get("family", family) != family:
    raise ValueError(f"{where}: config.family {config['family']!r:.60} disagrees with family {family!r}")
  for key, value in config.items():
    _check_config_value(value, key, where)
  check_latent_prior(meta.get("latent_prior", ()), None, f"{where}: latent_prior")   # its sum once built
  variables_path = directory / CONVERTED_VARIABLES
  try:
    variables = gio.load_variables(variables_path)
  except Exception as e:  # noqa: BLE001 — msgpack/flax raise many types on a corrupt file
    raise ValueError(f"{variables_path}: unreadable ({type(e).__name__}: {e})") from e
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
    if not isinstance(leaf, np.ndarray) or not (np.issubdtype(leaf.dtype, np.number) or leaf.dtype == bool):
      raise ValueError(f"{variables_path}: {jax.tree_util.keystr(path)} is not a numeric array "
                       f"({type(leaf).__name__})")
  return family, config, variables, meta.get("latent_prior", ())


def _load_converted(directory: pathlib.Path, source: str, allow_nonfinite: bool = False) -> Generator:
  family, config, variables, prior = _read_converted(directory)
  if not allow_nonfinite:
    check_finite(variables, str(directory / CONVERTED_VARIABLES))
  try:
    gen = family_module(family).build(config, variables, source)
  except (KeyError, TypeError, ValueError) as e:
    if isinstance(e, ValueError) and str(directory) in str(e):
      raise
    detail = f"missing config key {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
    raise ValueError(f"{directory}: the converted generator does not build ({detail})") from e
  return with_latent_prior(gen, prior, f"{directory / CONVERTED_META}: latent_prior")


def with_latent_prior(gen: Generator, prior: Any, where: str = "latent_prior") -> Generator:
  """`gen` whose `sample_z` draws `prior` (checked against its latent_dim; () = N(0, I))."""
  segments = check_latent_prior(prior, gen.latent_dim, where)
  return gen.replace(info=dataclasses.replace(gen.info, latent_prior=segments)) if segments else gen


def load(path: str | os.PathLike, format: str | None = None, *, allow_nonfinite: bool = False) -> Generator:
  """A `Generator` from an upstream checkpoint, a converted directory, or `testbed:NAME`.

  Converted directories are validated (generator.json's types and bounds, numeric variables) before anything is
  built; non-finite weights are refused naming their path unless `allow_nonfinite`.
  """
  path = os.fspath(path)
  if gio.is_remote(path):   # a converted directory in a gs:// workdir (a GAN or beta-VAE run's export): read whole
    import tempfile
    with tempfile.TemporaryDirectory(prefix="ganlatent_generator-") as local:
      for name in (CONVERTED_META, CONVERTED_VARIABLES):
        if not gio.exists(f"{path.rstrip('/')}/{name}"):
          raise FileNotFoundError(f"{path}: no {name}; only converted generator directories are read from a URI")
        (pathlib.Path(local) / name).write_bytes(gio.read_bytes(f"{path.rstrip('/')}/{name}"))   # every process
      return _load_converted(pathlib.Path(local), path, allow_nonfinite)
  if path.startswith("testbed:"):
    name = path.split(":", 1)[1]
    directory = TESTBED_DIR / name
    if not (directory / CONVERTED_META).exists():
      available = sorted(p.name for p in TESTBED_DIR.iterdir()) if TESTBED_DIR.exists() else []
      raise ValueError(f"no testbed generator {name!r} in this installation; available: {available}")
    return _load_converted(directory, path, allow_nonfinite)
  if os.path.isdir(path) and os.path.exists(os.path.join(path, CONVERTED_META)):
    return _load_converted(pathlib.Path(path), path, allow_nonfinite)
  config, variables = convert(path, format, allow_nonfinite=allow_nonfinite)
  return family_module(config["family"]).build(config, variables, path)
