"""Results tables (metrics/report.py) and the SRE table launcher's plan (launch/sre_table.py)."""
import importlib.util
import json
import os

import numpy as np
import pytest

from ganlatent_jax.metrics import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launcher():
  spec = importlib.util.spec_from_file_location("sre_table", os.path.join(REPO, "launch", "sre_table.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("values", [[0.2], [0.1, 0.3], [0.25, 0.5, 0.1, 0.7]])
def test_mean_std_is_sample_std(values):
  mean, std = report.mean_std(values)
  np.testing.assert_allclose(mean, np.mean(values))
  np.testing.assert_allclose(std, np.std(values, ddof=1) if len(values) > 1 else 0.0)


def test_lookup_names_the_missing_key():
  with pytest.raises(KeyError, match=r"'directions/mig'.*no 'mig'.*factor_vae"):
    report.lookup({"directions": {"factor_vae_eval_accuracy": 0.5}}, "directions/mig")


def _write_metrics(path, init_mig, refined_mig):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump({"init_directions": {"mig": init_mig, "factor_vae_eval_accuracy": 0.5},
               "directions": {"mig": refined_mig, "factor_vae_eval_accuracy": 0.75}}, f)


def test_collect_and_markdown_table(tmp_path):
  paths = [str(tmp_path / f"seed{s}" / "metrics.json") for s in range(3)]
  for path, (a, b) in zip(paths, [(0.1, 0.4), (0.2, 0.5), (0.3, 0.6)]):
    _write_metrics(path, a, b)
  table = report.collect({"init": [(p, "init_directions") for p in paths],
                          "refined": [(p, "directions") for p in paths]}, ("MIG", "FactorVAE"))
  assert table["refined"]["MIG"] == [0.4, 0.5, 0.6]
  text = report.markdown_table(table, ("MIG", "FactorVAE"))
  assert "| init | 0.200 ± 0.100 | 0.500 ± 0.000 | 3 |" in text
  assert "| refined | 0.500 ± 0.100 | 0.750 ± 0.000 | 3 |" in text


def test_missing_scores_print_a_dash():
  text = report.markdown_table({"init": {"MIG": [0.1, 0.3]}}, ("MIG", "moved"))
  assert "| init | 0.200 ± 0.141 | — | 2 |" in text


def test_sre_table_rows_read_what_the_plan_writes(tmp_path):
  launcher = _launcher()
  out = str(tmp_path)
  runs = launcher.plan(out, [0, 1, 2], steps=5, ld_steps=5, k=10, ablation=True, extra=["--config.batch_size=8"],
                       long_steps=7)
  done_markers = {run.done for run in runs}
  main_rows, ablation_rows = launcher.rows(out, [0, 1, 2], ablation=True, long_steps=7)
  for table_rows in (main_rows, ablation_rows):
    for name, files in table_rows.items():
      assert len(files) == 3, name
      for path, _ in files:
        assert path in done_markers, (name, path)
  assert list(main_rows) == ["SeFa", "SeFa + SRE", "random", "random + SRE", "LD", "LD + SRE", "SeFa + SRE, 7 steps"]
  long_runs = [r for r in runs if "/sefa_7/" in r.workdir]
  assert len(long_runs) == 3 and all("--config.steps=7" in r.command for r in long_runs)
  assert all("--config.steps=5" in r.command for r in runs if "/sefa/" in r.workdir)
  assert len(ablation_rows) == 3
  # every SRE run gets the extra overrides and its seed; SRE-from-LD waits for and reads the LD run's directions
  for run in runs:
    if "sre_3dshapes" in run.command[3]:
      assert "--config.batch_size=8" in run.command and f"--config.seed={run.workdir[-1]}" in run.command
  ld_sre = [r for r in runs if "/ld_sre/seed1" in r.workdir][0]
  ld_directions = os.path.join(out, "ld", "seed1", "directions.npz")
  assert f"--config.init.path={ld_directions}" in ld_sre.command and ld_sre.requires == ld_directions
  assert [r for r in runs if r.done == ld_directions][0].requires == ""


def test_sre_table_executes_with_requirements_in_order(tmp_path):
  """Fake runs (shell commands) through the scheduler: a run waits for the file it requires."""
  launcher = _launcher()
  a, b = tmp_path / "a", tmp_path / "b"
  runs = [launcher.Run(str(tmp_path / "wb"), ["sh", "-c", f"test -f {a} && touch {b}"], str(b), requires=str(a)),
          launcher.Run(str(tmp_path / "wa"), ["sh", "-c", f"sleep 1; touch {a}"], str(a))]
  assert launcher.execute(runs, workers=2) == 0
  assert b.exists() and (tmp_path / "wb" / "command.txt").exists()
  failing = [launcher.Run(str(tmp_path / "wc"), ["sh", "-c", "exit 3"], str(tmp_path / "never"))]
  assert launcher.execute(failing, workers=2) == 3
