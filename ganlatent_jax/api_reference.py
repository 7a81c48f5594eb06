"""The API reference: HTML pages generated from the package's docstrings and signatures with pdoc.

  python -m ganlatent_jax.api_reference --output=docs/api      # then open docs/api/index.html

Every library module is documented (generators, directions, methods with their `make_*`/loss functions, metrics,
viz, training, ...). Command modules — those that define command-line flags (`main`, `evaluate`, `report`,
`explore`, ...; in their `run()`, never on import) — are left out: their interface is their `--help`. A test builds
the reference, so a docstring or signature that pdoc cannot read fails the suite instead of rotting.
"""
from __future__ import annotations

import pathlib
import re
import sys

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_DEFINES_FLAGS = re.compile(r"\bflags\.DEFINE_")  # a command defines its flags (in its run())


def _modules() -> dict[str, pathlib.Path]:
  """Every module of the package (found on disk, nothing imported) → its source file."""
  modules = {"ganlatent_jax": _PACKAGE_DIR / "__init__.py"}
  for source in sorted(_PACKAGE_DIR.rglob("*.py")):
    relative = source.relative_to(_PACKAGE_DIR).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    if any(part.startswith("_") for part in parts) or not (source.parent / "__init__.py").is_file():
      continue  # private modules (_common, __main__) and plain directories (configs, assets)
    modules[".".join(("ganlatent_jax", *parts))] = source
  return modules


def command_modules() -> list[str]:
  """Modules of the package that define absl flags (the commands)."""
  return sorted(name for name, source in _modules().items()
                if _DEFINES_FLAGS.search(source.read_text(encoding="utf-8")))


def library_modules() -> list[str]:
  """The modules the reference documents: every public module that is not a command."""
  commands = set(command_modules())
  return sorted(name for name in _modules() if name not in commands)


def build(output_directory: str | pathlib.Path) -> pathlib.Path:
  """Writes the HTML reference to `output_directory`; returns the path of its index page."""
  try:
    import pdoc
  except ImportError as e:
    raise RuntimeError("the API reference needs pdoc: pip install pdoc (it is in the test extra)") from e
  output = pathlib.Path(output_directory)
  commands = command_modules()
  pdoc.render.configure(docformat="markdown", show_source=False, search=True)
  # Every module named: a package's __all__ would otherwise hide its submodules (e.g. metrics.disentanglement).
  pdoc.pdoc(*library_modules(), *(f"!{name}" for name in commands), output_directory=output)
  return output / "index.html"


def main(argv: list[str]) -> None:
  import argparse
  parser = argparse.ArgumentParser(prog="python -m ganlatent_jax.api_reference", description=__doc__.split("\n")[0])
  parser.add_argument("--output", default="docs/api", help="directory for the HTML pages (default: docs/api)")
  args = parser.parse_args(argv)
  print(build(args.output))


if __name__ == "__main__":
  main(sys.argv[1:])
