"""The method contract (docs/architecture.md), checked on every entry of `methods.REGISTRY`; no import cycle among
methods/."""
import ast
import dataclasses
import inspect
import pathlib

import pytest

from ganlatent_jax import methods

METHODS_DIR = pathlib.Path(methods.__file__).parent
# methods with a training loop: make() and State
TRAINING = {"sre", "ld", "latentclr", "gan", "infogan", "pssc", "udgan", "betavae"}


def _positional(function):
  return [p.name for p in inspect.signature(function).parameters.values()
          if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def test_registry_names_every_method_module():
  modules = {p.stem for p in METHODS_DIR.glob("*.py") if not p.stem.startswith("_")}
  assert {m.__name__.rsplit(".", 1)[1] for m in methods.REGISTRY.values()} == modules
  for name, module in methods.REGISTRY.items():
    assert module.__name__ == f"ganlatent_jax.methods.{name}"
  with pytest.raises(ValueError, match=r"config.method='nope' is not a method of ganlatent_jax; available: \["):
    methods.get("nope")


@pytest.mark.parametrize("name", sorted(methods.REGISTRY))
def test_every_method_follows_the_contract(name):
  module = methods.REGISTRY[name]
  assert _positional(module.train) == ["config", "workdir"]
  assert _positional(module.evaluate) == ["config", "workdir"]   # extra arguments only with defaults
  assert isinstance(module.STREAMS, dict) and all(isinstance(v, int) for v in module.STREAMS.values())
  if name in TRAINING:
    assert _positional(module.make)[0] == "config"
    fields = [f.name for f in dataclasses.fields(module.State)]
    assert fields == ["step", "params", "batch_stats", "opt_state"], fields
    states = [n for n, v in vars(module).items() if inspect.isclass(v) and n.endswith("State")]
    assert states == ["State"], states   # one state class name per module
  else:
    assert not hasattr(module, "make") and not hasattr(module, "State")


def _imported_methods(path: pathlib.Path) -> set[str]:
  """The sibling method modules a module of methods/ imports (at any depth of its code)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module == "ganlatent_jax.methods":
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ganlatent_jax.methods."):
      names.add(node.module.split(".")[2])
    elif isinstance(node, ast.Import):
      names.update(a.name.split(".")[2] for a in node.names if a.name.startswith("ganlatent_jax.methods."))
  return {name for name in names if not name.startswith("_")}   # _common, _gan: shared code, not methods


def test_method_modules_do_not_import_each_other():
  """A method shares code through methods/_common.py, the GAN engine methods/_gan.py or the packages below, never
  through another method (`_gan_run.py` holds the GAN methods' one `train` sequence)."""
  edges = {p.stem: _imported_methods(p) for p in METHODS_DIR.glob("*.py") if p.stem != "__init__"}
  bad = {name: sorted(imports) for name, imports in edges.items() if imports}
  assert not bad, f"method modules importing other methods: {bad}"
