"""launch/betavae_control.py (Plumerault et al.'s Fig. 5): the plan chains each β-VAE to a Plumerault run on its
decoder, the table reads what the runs write (Plumerault's control rows, the erf fit); (slow) the quick smoke
test end to end."""
import importlib.util
import json
import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launcher():
  spec = importlib.util.spec_from_file_location("betavae_control", os.path.join(REPO, "launch", "betavae_control.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


launcher = _launcher()


@pytest.mark.parametrize("quick", [False, True])
def test_plan_chains_every_beta_vae_to_a_control_run_on_its_decoder(tmp_path, quick):
  runs = launcher.plan(str(tmp_path), [1.0, 20.0], [0, 1], steps=500, quick=quick,
                       transforms=["horizontal_position", "vertical_position"], extra=["--config.log_every=7"])
  assert len(runs) == 2 * 2 * 2 and len({r.workdir for r in runs}) == len(runs)
  by_dir = {os.path.relpath(r.workdir, tmp_path): r for r in runs}
  vae, control = by_dir["beta20/seed1/betavae"], by_dir["beta20/seed1/plumerault"]
  variant = ":quick" if quick else ""
  assert f"--config=configs/betavae_dsprites.py{variant}" in vae.command
  assert {"--config.beta=20", "--config.seed=1", "--config.steps=500", "--config.log_every=7"} <= set(vae.command)
  assert vae.done == os.path.join(vae.workdir, "metrics.json") and not vae.requires
  decoder = os.path.join(vae.workdir, "generator")
  assert f"--config=configs/plumerault_dsprites.py{variant}" in control.command
  assert f"--config.generator={decoder}" in control.command and control.requires == os.path.join(decoder,
                                                                                                  "generator.json")
  assert '--config.transforms=("horizontal_position","vertical_position",)' in control.command
  assert "--config.seed=1" in control.command and "--config.log_every=7" not in control.command


def _write(path, payload):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(payload, f)


def _control_metrics(rel_std):
  summary = {"rel_std": rel_std, "mean_std": rel_std / 10, "abs_spearman": 0.9}
  grids = {"core": summary, "full": {"rel_std": 1.0, "mean_std": 1.0, "abs_spearman": 0.0}}
  return {"control": {"directions": {"horizontal_position": {"summary": grids, "erf_fit": {"r2": 0.99}}},
                      "probe": {"horizontal_position": {"summary": {**grids, "core": {**summary, "rel_std": 0.05}}}}}}


def test_table_reads_the_control_summary_and_the_vae_scores(tmp_path):
  out = str(tmp_path)
  values = {(1.0, 0): 0.9, (1.0, 1): 0.7, (20.0, 0): 0.3, (20.0, 1): 0.1}
  for (beta, seed), rel_std in values.items():
    vae_dir, control_dir = launcher.workdirs(out, beta, seed)
    _write(os.path.join(control_dir, "metrics.json"), _control_metrics(rel_std))
    _write(os.path.join(vae_dir, "metrics.json"), {"encoder_mean": {"mig": beta / 100}, "active_dims": 3,
                                                  "reconstruction": 40.0})
  _write(os.path.join(launcher.workdirs(out, 5.0, 0)[0], "metrics.json"),   # β 5: only the β-VAE finished
         {"encoder_mean": {"mig_error": "too few points"}, "active_dims": 4, "reconstruction": 30.0})
  table = launcher.aggregate(out, [1.0, 5.0, 20.0], [0, 1], ["horizontal_position"])
  np.testing.assert_allclose(table["β = 1"]["x rel_std"], [0.9, 0.7])
  np.testing.assert_allclose(table["β = 20"]["x std"], [0.03, 0.01])
  assert table["β = 20"]["MIG"] == [0.2, 0.2] and table["β = 5"]["MIG"] == [] and table["β = 5"]["x rel_std"] == []
  assert table["β = 1"]["x probe rel_std"] == [0.05, 0.05] and table["β = 20"]["x erf R²"] == [0.99, 0.99]
  trends = launcher.trend(table, ["horizontal_position"])
  assert trends["horizontal_position"] < -0.8   # rel_std falls as β grows
  # MIG paired per run (β 5's run has no control, its MIG is an error: neither counts): MIG 0.01, 0.01, 0.2, 0.2 vs
  # rel_std 0.9, 0.7, 0.3, 0.1 — scipy's ρ with the ties, checked by hand: −0.894.
  mig_trends = launcher.mig_trend(out, [1.0, 5.0, 20.0], [0, 1], ["horizontal_position"])
  np.testing.assert_allclose(mig_trends["horizontal_position"], -2 / np.sqrt(5), rtol=1e-6)
  text = launcher.markdown(table, ["horizontal_position"], trends, mig_trends)
  assert "| β = 1 | 0.8000 ± 0.1414 |" in text and "| β = 5 | — |" in text and "Spearman ρ(β, x rel_std)" in text
  assert "Spearman ρ(MIG, x rel_std) over runs: -0.894" in text


def test_bad_arguments_fail_before_any_run(tmp_path, capsys):
  with pytest.raises(SystemExit):
    launcher.main([f"--out={tmp_path}", "--transforms=rotation"])
  assert "--transforms='rotation'" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    launcher.main([f"--out={tmp_path}", "--", "--steps=3"])
  assert not os.listdir(tmp_path)


@pytest.mark.slow   # ~3 min on the loaded 2-core machine: two β-VAE and two Plumerault quick runs
def test_quick_launcher_writes_the_table(tmp_path):
  out = str(tmp_path / "fig5")
  assert launcher.main([f"--out={out}", "--quick", "--betas=1,20", "--seeds=0"]) == 0
  table = json.loads((tmp_path / "fig5" / "table.json").read_text())
  for row in ("β = 1", "β = 20"):
    assert len(table["table"][row]["x rel_std"]) == 1 and len(table["table"][row]["active dims"]) == 1
  assert (tmp_path / "fig5" / "beta20" / "seed0" / "plumerault" / "command.txt").exists()
  assert "| β = 20 |" in (tmp_path / "fig5" / "table.md").read_text()
