"""One direction between readers and models (issue 22 item 4), checked on the source (every import statement,
including those inside functions):

  * `port/` reads files and maps keys; it never imports a generator family or anything above (methods, metrics,
    directions, training, the CLIs). Its one upward reference is `port/__main__.py`, the README's
    `python -m ganlatent_jax.port`, which only starts the converter CLI (`ganlatent_jax/convert.py`).
  * `nets/` are networks: they never import `port/` (the caller reads files and passes arrays).
  * The torch reader itself (`torch_pickle`, `_unpickler`) and the key maps (`keys`) import nothing of the package
    but each other.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "ganlatent_jax"
ABOVE_PORT = ("generators", "methods", "metrics", "directions", "training", "evaluate", "main", "sample", "viz",
              "convert", "data")
# Network converters: they read a file and build the network (module + variables) — allowed to import nets/.
NETWORK_CONVERTERS = {"inception.py", "ld.py", "torchvision.py", "lpips.py"}


def _imports(path: pathlib.Path) -> set[str]:
  """Every module a file imports (absolute names; `from ganlatent_jax import x` counts as ganlatent_jax.x)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return {n for n in names if n.startswith("ganlatent_jax")}


def _layer(module: str) -> str:
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("path", sorted((PACKAGE / "port").glob("*.py")), ids=lambda p: p.name)
def test_port_never_imports_upward(path):
  upward = sorted(m for m in _imports(path) if _layer(m) in ABOVE_PORT)
  if path.name == "__main__.py":
    assert upward == ["ganlatent_jax.convert"], upward
  else:
    assert not upward, f"port/{path.name} imports {upward}: move that code above port/ (generators/formats/, ...)"


@pytest.mark.parametrize("path", sorted((PACKAGE / "port").glob("*.py")), ids=lambda p: p.name)
def test_only_network_converters_import_nets(path):
  nets = sorted(m for m in _imports(path) if _layer(m) == "nets")
  if path.name not in NETWORK_CONVERTERS:
    assert not nets, f"port/{path.name} imports {nets}"


@pytest.mark.parametrize("name", ["torch_pickle.py", "_unpickler.py", "keys.py"])
def test_the_reader_and_key_maps_import_only_each_other(name):
  assert {_layer(m) for m in _imports(PACKAGE / "port" / name)} <= {"port"}, _imports(PACKAGE / "port" / name)


@pytest.mark.parametrize("path", sorted((PACKAGE / "nets").glob("*.py")), ids=lambda p: p.name)
def test_nets_never_read_files_through_port(path):
  assert not [m for m in _imports(path) if _layer(m) == "port"]


def test_the_checker_sees_imports_inside_functions(tmp_path):
  source = tmp_path / "x.py"
  source.write_text("def f():\n  from ganlatent_jax.generators import stylegan2\n  import ganlatent_jax.methods.sre\n")
  assert _imports(source) == {"ganlatent_jax.generators", "ganlatent_jax.generators.stylegan2",
                              "ganlatent_jax.methods.sre"}
