"""The API reference builds from the docstrings (pdoc) and lists the public pieces with their signatures."""
import re
import warnings

import pytest

from ganlatent_jax import api_reference


def test_command_modules_are_the_ones_defining_flags():
  commands = api_reference.command_modules()
  assert {"ganlatent_jax.main", "ganlatent_jax.report", "ganlatent_jax.explore"} <= set(commands)
  assert "ganlatent_jax.console" not in commands and "ganlatent_jax.api_reference" not in commands


@pytest.mark.slow   # 81 s in the default suite of 2026-12-02 (loaded machine): moved for its ~10 min budget
def test_reference_builds_and_lists_the_public_pieces_with_signatures(tmp_path):
  pytest.importorskip("pdoc", reason="pdoc (test extra) builds the API reference")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    index = api_reference.build(tmp_path)
  failed_imports = [str(w.message).splitlines()[0] for w in caught if "Couldn't import" in str(w.message)]
  assert failed_imports == []  # every library module imports and is documented
  assert index.exists()
  root = tmp_path / "ganlatent_jax"

  def page(module: str) -> str:
    return (root / (module.replace(".", "/") + ".html")).read_text()

  def has_function(module: str, name: str) -> bool:
    text = re.sub(r"<[^>]+>", "", page(module))  # pdoc marks up signatures; the plain text keeps "def name("
    return re.search(rf"\bdef\s+{name}\s*\(", text) is not None

  for module, names in {"generators": ["load"], "directions": ["sefa", "ganspace", "orthonormalize"],
                        "methods.sre": ["make", "train", "evaluate"],
                        "metrics.disentanglement": ["mig"], "metrics.encoder_protocol": ["evaluate_directions"],
                        "console": ["progress", "setup_logging"], "viz.report": ["write_report"]}.items():
    for name in names:
      assert has_function(module, name), f"{module}.{name}"
  for command in api_reference.command_modules():
    assert not (root / (command.split(".", 1)[1].replace(".", "/") + ".html")).exists(), command
