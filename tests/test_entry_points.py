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


def test_importing_every_entry_point_in_one_process_defines_no_flag():
  """Entry points define their flags when run, not on import: main, explore, evaluate and report all define
  --workdir, sample and convert --out; importing two of them in one process (a test worker) raised absl's
  DuplicateFlagError (the slow set of 2026-12-02: explore then main)."""
  modules = [m + ".__main__" if (PACKAGE.parent / m.replace(".", "/") / "__main__.py").exists() else m
             for m in ENTRY_POINTS]
  code = ("import importlib; from absl import flags; "
          f"[importlib.import_module(m) for m in {modules!r}]; "
          "print(sorted(n for n in flags.FLAGS if (flags.FLAGS.find_module_defining_flag(n) or '')"
          ".startswith('ganlatent_jax')))")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip() == "[]"


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
