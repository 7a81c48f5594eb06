"""Every command: `--help` exits 0 (one subprocess per entry point); importing the package changes nothing in the
process; `cli.run` applies the CPU settings and runs the one setup hook."""
import ast
import os
import pathlib
import subprocess
import sys

import pytest

from ganlatent_jax import cli, platform

PACKAGE = pathlib.Path(cli.__file__).resolve().parent


def _entry_points() -> list[str]:
  """Modules of the package that run as `python -m ganlatent_jax.<name>` (a `__main__` block or `__main__.py`)."""
  names = []
  for path in sorted(PACKAGE.rglob("*.py")):
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__main__.py":
      names.append(module.rsplit(".", 1)[0])
    elif any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
             for node in ast.parse(path.read_text()).body):
      names.append(module)
  return names


ENTRY_POINTS = _entry_points()


def test_the_known_commands_are_found():
  assert {"ganlatent_jax.main", "ganlatent_jax.evaluate", "ganlatent_jax.retrieval", "ganlatent_jax.sample",
          "ganlatent_jax.port"} <= set(ENTRY_POINTS)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_exits_zero(module):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=300,
                          env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (result.stdout + result.stderr).strip(), "--help printed nothing"


def test_importing_the_package_leaves_the_process_alone():
  code = ("import os; before = os.environ.get('XLA_FLAGS'); import ganlatent_jax, ganlatent_jax.methods, "
          "ganlatent_jax.evaluate; print(repr(before), repr(os.environ.get('XLA_FLAGS')))")
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ["None", "None"]


def test_cli_run_applies_the_cpu_settings_before_main(monkeypatch):
  monkeypatch.setattr(platform, "_applied", False)
  monkeypatch.setattr(platform, "_backend_started", lambda: False)
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  monkeypatch.setattr(sys, "argv", ["prog"])
  seen = []
  with pytest.raises(SystemExit) as exit_info:
    cli.run(lambda argv: seen.append(os.environ["XLA_FLAGS"]))
  assert exit_info.value.code in (None, 0)
  flags = seen[0].split()
  assert flags[0] == "--xla_force_host_platform_device_count=8"   # the caller's flags stay first, untouched
  assert {f"--{name}={value}" for name, value in platform.XLA_CPU_FLAGS.items()} <= set(flags)
