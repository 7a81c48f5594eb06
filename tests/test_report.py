"""Results tables (metrics/report.py), the launchers' scheduler (runs.py) and the table launchers' plans
(launch/sre_table.py, launch/pssc_table.py)."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ganlatent_jax import runs as runs_lib
from ganlatent_jax.metrics import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launcher(name="sre_table"):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "launch", f"{name}.py"))
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


@pytest.mark.parametrize("values,text", [([0.25], "0.250"), ([0.25, 0.25], "0.250 ± 0.000"),
                                         ([0.1, 0.3], "0.200 ± 0.141")])
def test_format_mean_std_prints_a_single_run_without_a_spread(values, text):
  assert report.format_mean_std(values) == text


def test_markdown_table_single_run_row_has_no_spread(tmp_path):
  path = str(tmp_path / "seed0" / "metrics.json")
  _write_metrics(path, 0.1, 0.4)
  table = report.collect({"init": [(path, "init_directions")]}, ("MIG", "FactorVAE"))
  assert "| init | 0.100 | 0.500 | 1 |" in report.markdown_table(table, ("MIG", "FactorVAE"))


def test_collect_missing_ok_leaves_out_what_a_row_lacks(tmp_path):
  path = str(tmp_path / "metrics.json")
  with open(path, "w") as f:
    json.dump({"directions": {"mig": 0.1, "generated_mig": 0.3}, "probe": {"generated_mig": 0.6}}, f)
  rows = {"found": [(path, "directions")], "probe": [(path, "probe")]}
  with pytest.raises(KeyError, match="'mig'"):
    report.collect(rows, ("MIG", "gen. MIG"))
  table = report.collect(rows, ("MIG", "gen. MIG"), missing_ok=True)
  assert table == {"found": {"MIG": [0.1], "gen. MIG": [0.3]}, "probe": {"MIG": [], "gen. MIG": [0.6]}}
  assert "| probe | — | 0.600 | 1 |" in report.markdown_table(table, ("MIG", "gen. MIG"))


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
  assert list(main_rows) == ["SeFa", "SeFa + SRE", "random", "random + SRE", "LD", "LD + SRE", "SeFa + SRE, 7 steps",
                             "probe (supervised)"]
  assert main_rows["probe (supervised)"][0] == (os.path.join(out, "sefa", "seed0", "metrics.json"), "probe")
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
  # --ld_seeds: the LD rows of some seeds only
  fewer = launcher.plan(out, [0, 1, 2], steps=5, ld_steps=5, k=10, ablation=False, extra=[], ld_seeds=[0])
  assert sorted(os.path.relpath(r.workdir, out) for r in fewer if "/ld" in r.workdir) == ["ld/seed0", "ld_sre/seed0"]
  # on an oracle SeFa is the 'first_layer' variant (its first weight is the entangling map); on StyleGAN2 genforce's
  variant = "--config.init.sefa_variant=first_layer"
  assert variant in launcher.sre_command("w", 0, 5, [], generator="testbed:oracle-shapes3d")
  assert variant not in launcher.sre_command("w", 0, 5, [], generator="testbed:shapes3d")


def test_sre_table_trains_every_requested_init_longer(tmp_path):
  launcher = _launcher()
  out = str(tmp_path)
  inits = ("sefa", "random", "ld")
  runs = launcher.plan(out, [0, 1], steps=5, ld_steps=5, k=10, ablation=False, extra=[], long_steps=9,
                       ld_seeds=[0], long_inits=inits)
  long_runs = {os.path.relpath(r.workdir, out): r for r in runs if "--config.steps=9" in r.command}
  assert sorted(long_runs) == ["ld_sre_9/seed0", "random_9/seed0", "random_9/seed1", "sefa_9/seed0", "sefa_9/seed1"]
  assert "--config.init.method=random" in long_runs["random_9/seed1"].command
  ld_directions = os.path.join(out, "ld", "seed0", "directions.npz")
  assert long_runs["ld_sre_9/seed0"].requires == ld_directions
  assert f"--config.init.path={ld_directions}" in long_runs["ld_sre_9/seed0"].command
  assert not any(a.startswith("--config.init") for a in long_runs["sefa_9/seed0"].command)
  main_rows, _ = launcher.rows(out, [0, 1], ablation=False, long_steps=9, long_inits=inits)
  done_markers = {run.done for run in runs}
  for name in ("SeFa + SRE, 9 steps", "random + SRE, 9 steps", "LD + SRE, 9 steps"):
    assert main_rows[name][0][0] in done_markers, name
  with pytest.raises(SystemExit):
    launcher.main([f"--out={out}", "--long_inits=sefa,bogus", "--table_only"])


def test_sre_table_random_z_start_draws_in_z_and_gets_its_own_start_row(tmp_path):
  # on an oracle SeFa lives in Z and 'random' in W: random_z separates the start from the space
  launcher = _launcher()
  out = str(tmp_path)
  runs = launcher.plan(out, [0, 1], steps=5, ld_steps=5, k=10, ablation=False, extra=[], long_steps=9,
                       long_inits=("random_z",), directions_lrs=(0.01,))
  planned = {os.path.relpath(r.workdir, out): r.command for r in runs}
  swept = {name: command for name, command in planned.items() if name.startswith("random_z")}
  assert sorted(swept) == ["random_z_9/seed0", "random_z_9/seed1", "random_z_9_lr0.01/seed0",
                           "random_z_9_lr0.01/seed1"]
  for command in swept.values():
    assert "--config.init.method=random" in command and "--config.space=z" in command
  assert not any("--config.space=z" in command for name, command in planned.items() if name not in swept)
  main_rows, _ = launcher.rows(out, [0, 1], ablation=False, long_steps=9, long_inits=("random_z",),
                               directions_lrs=(0.01,))
  # the start's row reads the first variant's init_directions (every variant of a seed draws the same start) ...
  assert main_rows["random (Z)"] == [(os.path.join(out, "random_z_9", f"seed{s}", "metrics.json"), "init_directions")
                                     for s in (0, 1)]
  # ... or, where --only skipped it, the first variant that has run
  swept_metrics = os.path.join(out, "random_z_9_lr0.01", "seed1", "metrics.json")
  os.makedirs(os.path.dirname(swept_metrics))
  open(swept_metrics, "w").close()
  main_rows, _ = launcher.rows(out, [0, 1], ablation=False, long_steps=9, long_inits=("random_z",),
                               directions_lrs=(0.01,))
  assert [path for path, _ in main_rows["random (Z)"]] == [
      os.path.join(out, "random_z_9", "seed0", "metrics.json"), swept_metrics]
  assert main_rows["random (Z) + SRE, 9 steps, lr 0.01"][1][0] == os.path.join(out, "random_z_9_lr0.01", "seed1",
                                                                                "metrics.json")


def test_sre_table_trains_the_long_inits_at_each_directions_learning_rate(tmp_path):
  launcher = _launcher()
  out = str(tmp_path)
  runs = launcher.plan(out, [0], steps=5, ld_steps=5, k=10, ablation=False, extra=[], long_steps=9,
                       long_inits=("sefa", "random"), directions_lrs=(1e-3, 0.01))
  swept = {os.path.relpath(r.workdir, out): r.command for r in runs if "lr" in r.workdir}
  assert sorted(swept) == ["random_9_lr0.001/seed0", "random_9_lr0.01/seed0", "sefa_9_lr0.001/seed0",
                           "sefa_9_lr0.01/seed0"]
  for name, command in swept.items():
    rate = name.split("_lr")[1].split("/")[0]
    assert f"--config.directions.learning_rate={rate}" in command and "--config.steps=9" in command
    assert ("--config.init.method=random" in command) == name.startswith("random")
  # the long runs at the config's rate stay as they were: no learning-rate override
  assert not any("learning_rate" in a for r in runs if "/sefa_9/" in r.workdir for a in r.command)
  main_rows, _ = launcher.rows(out, [0], ablation=False, long_steps=9, long_inits=("sefa", "random"),
                               directions_lrs=(1e-3, 0.01))
  done_markers = {run.done for run in runs}
  for name in ("SeFa + SRE, 9 steps, lr 0.001", "random + SRE, 9 steps, lr 0.01"):
    assert main_rows[name][0][0] in done_markers, name
  # without --long_steps the sweep runs --steps steps
  short = launcher.plan(out, [0], steps=5, ld_steps=5, k=10, ablation=False, extra=[], directions_lrs=(1e-3,))
  assert sorted(os.path.relpath(r.workdir, out) for r in short if "lr" in r.workdir) == ["sefa_5_lr0.001/seed0"]
  assert "SeFa + SRE, 5 steps, lr 0.001" in launcher.rows(out, [0], ablation=False, directions_lrs=(1e-3,),
                                                          steps=5)[0]
  with pytest.raises(SystemExit):
    launcher.main([f"--out={out}", "--directions_lrs=1e-3,fast", "--table_only"])


@pytest.mark.parametrize("generator", ["testbed:shapes3d", "testbed:oracle-shapes3d"])
def test_latentclr_table_reads_every_row_of_what_its_runs_write(tmp_path, generator):
  launcher = _launcher("latentclr_table")
  out = str(tmp_path)
  runs = launcher.plan(out, [0, 1], generator, ["--config.steps=3"])
  assert [r.done for r in runs] == [os.path.join(out, f"seed{s}", "metrics.json") for s in (0, 1)]
  for seed, run in enumerate(runs):
    assert f"--config.seed={seed}" in run.command and "--config.steps=3" in run.command
    assert ("--config.feature_layer=output" in run.command) == generator.startswith("testbed:oracle-")
    # the files the runs would write: the method's rows with both kinds of scores, the reference rows likewise
    os.makedirs(run.workdir)
    scores = {"mig": 0.1 * seed, "factor_vae_eval_accuracy": 0.5, "dci_disentanglement": 0.7,
              "generated_mig": 0.2, "generated_dci_disentanglement": 0.3, "generated_factor_vae_eval_accuracy": 0.6,
              "recovery_mean_abs_cos": 0.4, "recovery_fraction": 0.0}
    with open(run.done, "w") as f:
      json.dump({entry: scores for entry in launcher.ROWS.values()}, f)
  assert launcher.main([f"--out={out}", "--seeds=0,1", f"--generator={generator}", "--table_only"]) == 0
  text = (tmp_path / "table.md").read_text()
  for row in launcher.ROWS:
    assert f"| {row} | 0.050 ± 0.071 | 0.500 ± 0.000 | 0.700 ± 0.000 | 0.200 ± 0.000 |" in text
  assert ("recovery mean abs cos" in text) == generator.startswith("testbed:oracle-")


def test_runs_execute_with_requirements_in_order(tmp_path):
  """Fake runs (shell commands) through the scheduler: a run waits for the file it requires."""
  a, b = tmp_path / "a", tmp_path / "b"
  runs = [runs_lib.Run(str(tmp_path / "wb"), ["sh", "-c", f"test -f {a} && touch {b}"], str(b), requires=str(a)),
          runs_lib.Run(str(tmp_path / "wa"), ["sh", "-c", f"sleep 1; touch {a}"], str(a))]
  assert runs_lib.execute(runs, workers=2) == 0
  assert b.exists() and (tmp_path / "wb" / "command.txt").exists()
  failing = [runs_lib.Run(str(tmp_path / "wc"), ["sh", "-c", "exit 3"], str(tmp_path / "never"))]
  assert runs_lib.execute(failing, workers=2) == 3
  assert runs_lib.execute(runs, workers=1) == 0   # everything done: nothing runs


def test_runs_execute_skips_cells_another_launcher_holds_or_finished(tmp_path):
  """Two launchers on one --out: a cell whose lock is held by a live process is left to it, a cell finished after the
  plan was made is not re-run, a stale lock (its process gone) is taken over, and every lock is released."""
  import socket
  import subprocess
  marker = tmp_path / "ran"
  def cell(name, command):
    return runs_lib.Run(str(tmp_path / name), ["sh", "-c", command], str(tmp_path / name / "done"))
  held = cell("held", f"touch {marker}_held {tmp_path / 'held' / 'done'}")
  os.makedirs(held.workdir)
  (tmp_path / "held" / runs_lib.LOCK_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")   # alive: us
  later = cell("later", f"touch {marker}_later {tmp_path / 'later' / 'done'}")
  first = cell("first", f"mkdir -p {tmp_path / 'later'}; touch {tmp_path / 'later' / 'done'} "
                        f"{tmp_path / 'first' / 'done'}")   # another launcher finishing `later` meanwhile
  gone = subprocess.Popen(["true"])
  gone.wait()
  stale = cell("stale", f"touch {marker}_stale {tmp_path / 'stale' / 'done'}")
  os.makedirs(stale.workdir)
  (tmp_path / "stale" / runs_lib.LOCK_FILE).write_text(f"{socket.gethostname()} {gone.pid}\n")
  assert runs_lib.execute([held, first, later, stale], workers=1) == 0
  assert not (tmp_path / "ran_held").exists() and not (tmp_path / "ran_later").exists()
  assert (tmp_path / "ran_stale").exists() and not (tmp_path / "stale" / runs_lib.LOCK_FILE).exists()
  assert (tmp_path / "held" / runs_lib.LOCK_FILE).exists()   # not ours to release
  # A cell that needs the held cell's output waits for it instead of giving up.
  waiting = cell("w", f"touch {tmp_path / 'w' / 'done'}")._replace(requires=held.done)
  finisher = subprocess.Popen(["sh", "-c", f"sleep 3; touch {held.done}"])
  assert runs_lib.execute([held, waiting], workers=1) == 0 and (tmp_path / "w" / "done").exists()
  finisher.wait()


def test_runs_execute_stops_the_others_on_failure_and_frees_their_cells(tmp_path):
  slow = runs_lib.Run(str(tmp_path / "slow"), ["sh", "-c", "sleep 30"], str(tmp_path / "slow" / "done"))
  fail = runs_lib.Run(str(tmp_path / "fail"), ["sh", "-c", "sleep 1; exit 5"], str(tmp_path / "fail" / "done"))
  assert runs_lib.execute([slow, fail], workers=2) == 5
  assert not any((tmp_path / name / runs_lib.LOCK_FILE).exists() for name in ("slow", "fail"))


def test_a_terminated_launcher_stops_its_runs_and_frees_their_cells(tmp_path):
  """`kill LAUNCHER` (SIGTERM, e.g. at the end of a session) must not leave a lock that makes every later launcher
  skip the cell, nor an orphaned run."""
  import signal
  import subprocess
  import sys
  import time
  pid_file, cell = tmp_path / "child.pid", tmp_path / "cell"
  script = ("import sys; from ganlatent_jax import runs; "
            f"runs.execute([runs.Run({str(cell)!r}, ['sh', '-c', 'echo $$ > {pid_file}; exec sleep 60'], "
            f"{str(cell / 'done')!r})], workers=1)")
  launcher = subprocess.Popen([sys.executable, "-c", script])
  deadline = time.time() + 120
  while not (pid_file.exists() and pid_file.read_text().strip()) and time.time() < deadline:
    time.sleep(0.2)
  assert (cell / runs_lib.LOCK_FILE).exists()
  launcher.send_signal(signal.SIGTERM)
  assert launcher.wait(timeout=60) == 128 + signal.SIGTERM
  assert not (cell / runs_lib.LOCK_FILE).exists()
  with pytest.raises(ProcessLookupError):
    os.kill(int(pid_file.read_text()), 0)


def test_table_arguments_are_shared_and_table_only_starts_nothing(tmp_path, monkeypatch):
  parser = runs_lib.table_parser("doc", workers=2)
  args, extra = runs_lib.parse_with_overrides(parser, [f"--out={tmp_path}/t", "--seeds=3,1", "--", "--config.x=1"])
  assert (args.seeds, args.workers, args.table_only, extra) == ([3, 1], 2, False, ["--config.x=1"])
  with pytest.raises(SystemExit):
    parser.parse_args([f"--out={tmp_path}", "--seeds=0,one"])
  monkeypatch.setattr(runs_lib, "execute", lambda runs, workers, cwd: pytest.fail("--table_only started runs"))
  args = parser.parse_args([f"--out={tmp_path}/t", "--table_only"])
  assert runs_lib.run_table(args, lambda: pytest.fail("--table_only planned runs")) == 0
  assert (tmp_path / "t").is_dir()


def test_only_starts_the_matching_runs_and_names_the_plan_when_none_match(tmp_path, monkeypatch):
  out = str(tmp_path)
  plan = [runs_lib.Run(os.path.join(out, name, "seed0"), ["true"], os.path.join(out, name, "seed0", "m.json"))
          for name in ("sefa", "random", "sefa_300_lr0.001", "random_300_lr0.01")]
  started = []
  monkeypatch.setattr(runs_lib, "execute", lambda runs, workers, cwd: started.append(runs) or 0)
  parser = runs_lib.table_parser("doc")
  assert runs_lib.run_table(parser.parse_args([f"--out={out}", "--only=*_lr*"]), lambda: plan) == 0
  assert [os.path.relpath(r.workdir, out) for r in started[-1]] == ["sefa_300_lr0.001/seed0",
                                                                   "random_300_lr0.01/seed0"]
  assert runs_lib.run_table(parser.parse_args([f"--out={out}", "--only=random/*,sefa/seed0"]), lambda: plan) == 0
  assert [os.path.relpath(r.workdir, out) for r in started[-1]] == ["sefa/seed0", "random/seed0"]
  assert runs_lib.run_table(parser.parse_args([f"--out={out}"]), lambda: plan) == 0
  assert len(started[-1]) == 4
  with pytest.raises(ValueError, match="matches none of the plan's runs: sefa/seed0, random/seed0"):
    runs_lib.run_table(parser.parse_args([f"--out={out}", "--only=ld*"]), lambda: plan)


@pytest.mark.parametrize("name", ["sre_table", "latentclr_table", "plumerault_table", "pssc_table", "udgan_table",
                                  "betavae_control"])
def test_every_table_launcher_aggregates_an_empty_out_dir_without_a_run(tmp_path, monkeypatch, name):
  """--table_only before any run: every launcher parses the shared arguments and writes its (empty) table."""
  monkeypatch.setattr(runs_lib, "execute", lambda *a: pytest.fail(f"{name} --table_only started runs"))
  assert _launcher(name).main([f"--out={tmp_path}", "--seeds=0,1", "--table_only"]) == 0
  assert (tmp_path / "table.md").exists() and (tmp_path / "table.json").exists()


# ---------------------------------------------------------------------------------------------------------------
# launch/pssc_table.py

def _pssc_metrics(path, factor_vae, mig, tpl=None, active=0, entry="q", tpl_key="tpl_pixel", generated=None,
                  dci=None, factor_vae_upstream=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  # The layout `_gan_data.representation_scores` writes (a flat 'factor_vae_eval_accuracy' here hid that the table could
  # not read a real run).
  metrics = {entry: {"factor_vae": {"eval_accuracy": factor_vae, "train_accuracy": factor_vae}, "mig": mig}}
  if dci is not None:   # runs from 2026-12-04 14:40 on
    metrics[entry]["dci"] = {"disentanglement": dci, "completeness": dci, "informativeness_test": 0.9}
  if factor_vae_upstream is not None:   # PS-SC runs evaluated from 2026-12-05 16:00 on
    metrics[entry]["factor_vae_upstream"] = {"eval_accuracy": factor_vae_upstream, "train_accuracy": 0.5,
                                             "num_active_dims": 3, "batch_size": 60, "prune_threshold": 0.1}
  if generated is not None:   # (codes' MIG, FactorVAE, probe's MIG, codes' DCI, random's MIG, probe's DCI, random's DCI)
    metrics["codes"] = {"generated_mig": generated[0], "generated_factor_vae_eval_accuracy": generated[1],
                        "generated_dci_disentanglement": generated[3]}
    metrics["probe"] = {"generated_mig": generated[2], "generated_dci_disentanglement": generated[5]}
    metrics["random"] = {"generated_mig": generated[4], "generated_dci_disentanglement": generated[6]}
  if tpl is not None:
    metrics[tpl_key] = {"tpl": tpl, "num_active": active}
  with open(path, "w") as f:
    json.dump(metrics, f)


def test_pssc_table_plan_covers_every_row_and_the_selection_seeds(tmp_path):
  launcher = _launcher("pssc_table")
  runs = launcher.plan(str(tmp_path), ["3dshapes", "dsprites"], [0, 1, 2], steps=50, select_from=5,
                       extra=["--config.batch_size=8"])
  assert len(runs) == 5 * 3 + 2 + 5 * 3 + 2   # rows × seeds + the PS-SC seeds 3, 4 of each dataset
  assert len({r.workdir for r in runs}) == len(runs)
  for run in runs:
    seed = run.workdir[-1]
    assert f"--config.seed={seed}" in run.command and "--config.steps=50" in run.command
    assert "--config.batch_size=8" in run.command and run.done == os.path.join(run.workdir, "metrics.json")
    dataset = os.path.relpath(run.workdir, tmp_path).split(os.sep)[0]   # one classifier cache per dataset, all rows
    assert f"--config.evaluation.generated_domain.classifier_dir={tmp_path / dataset}" in run.command
  by_dir = {os.path.relpath(r.workdir, tmp_path): r.command for r in runs}
  assert "--config=configs/infogan_3dshapes.py" in by_dir["3dshapes/infogan/seed1"]
  ps_only = [a for a in by_dir["3dshapes/ps_only/seed0"] if a.startswith("--config.architecture.modules=")]
  assert len(ps_only) == 1 and "C_global-3" in ps_only[0] and "C_spgroup" not in ps_only[0]
  assert "--config.pssc.loss=infogan_l2" in by_dir["dsprites/infogan_l2/seed2"]
  sc_only = [a for a in by_dir["dsprites/sc_only/seed2"] if a.startswith("--config.architecture.modules=")]
  assert len(sc_only) == 1 and "C_spgroup-4-2" in sc_only[0] and "C_global" not in sc_only[0]
  assert "--config.pssc.loss=infogan_l2" in by_dir["dsprites/sc_only/seed2"]
  assert "dsprites/ps/seed4" in by_dir and "dsprites/ps_sc/seed4" not in by_dir


def test_pssc_table_selects_the_lowest_tpl_among_runs_with_enough_active_codes(tmp_path):
  launcher = _launcher("pssc_table")
  out = str(tmp_path)
  # seed: (FactorVAE, TPL, active codes) — seed 1 has the lowest TPL but too few active codes (a "cheating" model)
  values = {0: (0.70, 9.0, 6), 1: (0.99, 1.0, 3), 2: (0.80, 5.0, 7), 3: (0.90, 2.0, 6), 4: (0.60, 7.0, 8)}
  for seed, (fv, tpl, active) in values.items():
    _pssc_metrics(str(tmp_path / "3dshapes" / "ps_sc" / f"seed{seed}" / "metrics.json"), fv, 0.1, tpl, active,
                  dci=fv / 10)
  _pssc_metrics(str(tmp_path / "3dshapes" / "infogan" / "seed0" / "metrics.json"), 0.5, 0.2, entry="q_head",
                generated=(0.05, 0.6, 0.3, 0.02, 0.01, 0.4, 0.03))
  tables, selections = launcher.aggregate(out, ["3dshapes"], [0, 1], select_from=5, min_active=0)
  assert selections["3dshapes"]["selected"] == ["seed3", "seed2"]   # best 2 (= number of seeds) of 5 by TPL
  assert "seed1" in selections["3dshapes"]["excluded"]
  table = tables["3dshapes"]
  np.testing.assert_allclose(table["PS-SC + TPL"]["FactorVAE"], [0.90, 0.80])
  np.testing.assert_allclose(table["PS-SC"]["FactorVAE"], [0.70, 0.99])
  assert table["InfoGAN (ours)"]["FactorVAE"] == [0.5] and table["InfoGAN (ours)"]["TPL"] == []
  text = launcher.markdown(tables, ["3dshapes"])
  assert "| PS-SC + TPL | 0.850 ± 0.071 | — | 0.100 ± 0.000 | 0.085 ± 0.007 |" in text
  assert text.count("93.41 ± 3.34") == 1
  line = launcher.selections_markdown(selections)
  assert line.startswith("* 3dshapes PS-SC + TPL: kept seed3, seed2; ranked by TPL: seed3 (TPL 2.000, 6 active), "
                         "seed2 (TPL 5.000, 7 active)")
  assert "excluded: seed1 (3 active dims < min_active=6) (min_active = 6)" in line   # 0 = the dataset's 6 factors
  # every model below the floor: the line says nothing was kept (the table has no "+ TPL" row then)
  _, none_kept = launcher.aggregate(out, ["3dshapes"], [0, 1], select_from=5, min_active=9)
  line = launcher.selections_markdown(none_kept)
  assert "kept none; ranked by TPL: none" in line and "seed1 (3 active dims < min_active=9)" in line
  assert ("| InfoGAN (ours) | 0.500 | — | 0.200 | — | — | — | 0.050 | 0.020 | 0.600 | 0.300 | 0.400 | 0.010 | 0.030 "
          "| 1 | — |") in text   # the probe's and random directions' DCI beside their MIG


def test_pssc_table_mask_records_read_the_run_or_compute_them_from_its_saved_generator(tmp_path):
  """A run's `mask_area` is reported beside its codes' TPL; a run evaluated before mask areas were written gets them
  from its saved generator with the evaluation's stream (the numbers its evaluation would have written)."""
  import jax
  from ganlatent_jax import generators
  from ganlatent_jax.generators import pssc as pssc_generators
  from ganlatent_jax.methods import pssc
  launcher = _launcher("pssc_table")
  tpl_values = {"tpl": 0.3, "num_active": 1, "active_dims": [2], "per_dim": [0.0, 0.0, 0.3, 0.01]}
  first = tmp_path / "dsprites" / "ps_sc" / "seed0" / "metrics.json"
  _pssc_metrics(str(first), 0.5, 0.1)
  metrics = json.loads(first.read_text())
  metrics.update(tpl_pixel=tpl_values, mask_area={"codes": [0, 1, 2, 3], "area": [0.01, 0.02, 0.4, 0.05],
                                                  "largest": 2, "num_samples": 256})
  first.write_text(json.dumps(metrics))
  from ganlatent_jax.training.writer import MetricWriter
  writer = MetricWriter(str(first.parent), enabled=True)   # what PS-SC's log_fn writes while G trains
  for step in range(100, 1001, 100):
    writer.scalars(step, {f"masks/area_code_{c}": c + step / 1000 for c in range(4)})
  writer.close()
  second = tmp_path / "dsprites" / "ps_sc" / "seed1"
  _pssc_metrics(str(second / "metrics.json"), 0.5, 0.1, tpl=0.3, active=1)
  config = pssc_generators.make_config(["Const-16", "ResConv-up-1", "C_spgroup-2-2", "ResConv-up-1", "C_global-2"],
                                       image_channels=1, fmap_base=16, fmap_max=8)
  generators.save_converted(str(second / "generator"), config, pssc_generators.init_variables(config,
                                                                                             jax.random.key(0)))
  _pssc_metrics(str(tmp_path / "dsprites" / "ps" / "seed0" / "metrics.json"), 0.5, 0.1)   # no masks, no generator
  records = launcher.mask_records(str(tmp_path), ["dsprites"], [0, 1])
  assert [r["run"] for r in records] == ["dsprites/ps_sc/seed0", "dsprites/ps_sc/seed1"]
  assert records[0]["tpl"] == [0.0, 0.0, 0.3, 0.01] and records[0]["active"] == [2] and records[0]["largest"] == 2
  assert launcher.MASKS_STREAM == pssc.STREAMS["masks"]   # the evaluation's stream, without importing the method
  want = pssc_generators.mask_area_summary(generators.load(str(second / "generator")),
                                           jax.random.key(1 + pssc.STREAMS["masks"]))
  assert records[1]["codes"] == [0, 1] and records[1]["area"] == want["area"] and records[1]["tpl"] is None
  text = launcher.masks_markdown(records)
  assert "| dsprites/ps_sc/seed0 | 0: 0.010 (0.000), 1: 0.020 (0.000), 2: 0.400 (0.300), 3: 0.050 (0.010) | 2 | 2 |" in text
  assert launcher.masks_markdown([]) == ""
  assert records[0]["curve"]["steps"] == list(range(100, 1001, 100)) and records[1]["curve"] is None
  np.testing.assert_allclose(records[0]["curve"]["area"][2], [2 + s / 1000 for s in range(100, 1001, 100)], rtol=1e-6)
  curves = launcher.mask_curves_markdown(records, points=3)
  assert "| dsprites/ps_sc/seed0 | 2 | 100, 500, 1000 | 2.100 → 2.500 → 3.000 |" in curves
  assert "seed1" not in curves and launcher.mask_curves_markdown(records[1:]) == ""


def test_pssc_table_refuses_a_selection_without_tpl(tmp_path):
  launcher = _launcher("pssc_table")
  _pssc_metrics(str(tmp_path / "dsprites" / "ps" / "seed0" / "metrics.json"), 0.7, 0.1)
  with pytest.raises(ValueError, match="no TPL"):
    launcher.aggregate(str(tmp_path), ["dsprites"], [0], select_from=1, min_active=0)


# ---------------------------------------------------------------------------------------------------------------
# launch/udgan_table.py

def test_udgan_table_reads_the_guidance_control_from_the_guided_runs(tmp_path):
  launcher = _launcher("udgan_table")
  runs = launcher.plan(str(tmp_path), [0, 1], steps=0, extra=[])
  assert sorted(os.path.relpath(r.workdir, tmp_path) for r in runs) == [
      f"{d}/seed{s}" for d in ("infogan", "udgan", "udgan_g") for s in (0, 1)]
  infogan = [r for r in runs if "/infogan/" in r.workdir][0]
  assert launcher.ALL_METRICS in infogan.command and not any(a.startswith("--config.steps") for a in infogan.command)

  def write(directory, seed, entries):
    path = tmp_path / directory / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))

  scores = lambda b, f, m: {"beta_vae": {"eval_accuracy": b}, "factor_vae": {"eval_accuracy": f}, "mig": m}
  write("udgan_g", 0, {"siamese": scores(0.9, 0.8, 0.3), "guidance_only": {"guided": ["com_x"], **scores(0.7, 0.6, 0.4)}})
  write("udgan_g", 1, {"siamese": scores(1.0, 0.9, 0.5), "guidance_only": {"guided": ["com_x"], **scores(0.7, 0.6, 0.4)}})
  no_mig = scores(0.5, 0.5, 0.0)
  del no_mig["mig"]
  write("infogan", 0, {"q_head": {**no_mig, "mig_error": "too few points"}})
  table = launcher.aggregate(str(tmp_path), [0, 1])
  assert list(table) == ["InfoGAN", "UD-GAN-G", "guidance measures only"]   # UD-GAN: no finished run
  np.testing.assert_allclose(table["UD-GAN-G"]["β-VAE"], [0.9, 1.0])
  assert table["guidance measures only"]["MIG"] == [0.4, 0.4] and table["InfoGAN"]["MIG"] == []
  text = launcher.markdown(table)
  assert "| UD-GAN-G | 0.950 ± 0.071 | 0.850 ± 0.071 | 0.400 ± 0.141 | 2 | 100.0 |" in text
  assert "| InfoGAN | 0.500 | 0.500 | — | 1 | 88.4 |" in text
  # The generated-domain table: each generator's code, probe and random rows; runs without these scores left out.
  generated = lambda mig, dci, fvae: {"generated_mig": mig, "generated_dci_disentanglement": dci,
                                      "generated_factor_vae_eval_accuracy": fvae}
  write("udgan", 0, {"siamese": scores(0.6, 0.4, 0.01), "knobs": generated(0.1, 0.2, 0.5),
                     "probe": generated(0.6, 0.7, 0.9), "random": generated(0.02, 0.03, 0.3)})
  rows = launcher.aggregate_generated(str(tmp_path), [0, 1])
  assert list(rows) == ["UD-GAN: knobs", "UD-GAN: probe", "UD-GAN: random"]
  assert rows["UD-GAN: probe"]["gen. DCI"] == [0.7] and rows["UD-GAN: knobs"]["gen. MIG"] == [0.1]
  assert "| UD-GAN: random | 0.020 | 0.030 | 0.300 | 1 |" in launcher.markdown(table, rows)


def _parsed_config(command: list[str]):
  """The config a run's command gives `ganlatent_jax.main`, parsed by absl and ml_collections as main parses it."""
  from absl import flags
  from ml_collections import config_flags
  argv = [sys.executable, *[a.replace("configs/", os.path.join(REPO, "configs") + "/", 1)
                            for a in command if a.startswith("--config")]]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=values, sys_argv=argv)   # overrides are found in argv
  values(argv)
  return values.config


@pytest.mark.parametrize("name, baseline, reference", [
    ("udgan_table", "infogan/seed0", "udgan/seed0"),
    ("pssc_table", "dsprites/infogan/seed0", "dsprites/ps/seed0"),
    ("pssc_table", "3dshapes/infogan/seed0", "3dshapes/ps_sc/seed0")])
def test_table_baseline_rows_run_at_the_method_rows_batch_and_evaluation_budget(tmp_path, name, baseline, reference):
  """The InfoGAN rows' commands give them the batch size and every protocol budget they share with the method they
  are compared with (UD-GAN's 2000 FactorVAE votes and batch 32; PS-SC's 1000 votes), so the rows differ by the
  method only — InfoGAN's own config counts 10000 votes."""
  launcher = _launcher(name)
  plan = (launcher.plan(str(tmp_path), [0], 0, []) if name == "udgan_table" else
          launcher.plan(str(tmp_path), ["3dshapes", "dsprites"], [0], steps=0, select_from=0, extra=[]))
  runs = {os.path.relpath(r.workdir, tmp_path): r for r in plan}
  infogan, method = _parsed_config(runs[baseline].command), _parsed_config(runs[reference].command)
  assert infogan.method == "infogan" and method.method != "infogan"
  assert infogan.batch_size == method.batch_size
  shared = set(infogan.evaluation.protocol) & set(method.evaluation.protocol)
  assert {"factor_vae_num_train", "factor_vae_num_eval", "mig_num_points"} <= shared
  assert {k: infogan.evaluation.protocol[k] for k in shared} == {k: method.evaluation.protocol[k] for k in shared}


def test_aligned_budget_overrides_only_what_differs_and_what_the_config_has(tmp_path):
  body = """import ml_collections
def get_config():
  return ml_collections.ConfigDict(dict(batch_size={batch}, evaluation=dict(protocol=dict({protocol}))))
"""
  (tmp_path / "run.py").write_text(body.format(batch=16, protocol="votes=10000, points=100, own=1"))
  (tmp_path / "ref.py").write_text(body.format(batch=32, protocol="votes=1000, points=100, extra=3"))
  assert runs_lib.aligned_budget("run.py", "ref.py", cwd=str(tmp_path)) == (
      "--config.batch_size=32", "--config.evaluation.protocol.votes=1000")
  assert runs_lib.aligned_budget("ref.py", "ref.py", cwd=str(tmp_path)) == ()


# ---------------------------------------------------------------------------------------------------------------
# launch/plumerault_table.py


def _apply_overrides(command):
  """The config a command's flags make, as `--config.a.b=v` does (ValueError/KeyError on an unknown key)."""
  import ast
  from ganlatent_jax import cli
  config_arg = [a for a in command if a.startswith("--config=")][0].split("=", 1)[1]
  config = cli.load_config(os.path.join(REPO, config_arg))
  config.lock()
  for arg in command:
    if arg.startswith("--config.") and "=" in arg:
      key, value = arg[len("--config."):].split("=", 1)
      try:
        value = ast.literal_eval(value)
      except (ValueError, SyntaxError):
        pass
      target = config
      *parents, leaf = key.split(".")
      for part in parents:
        target = target[part]
      if leaf not in target:
        raise KeyError(f"{config_arg}: no key {key} ({' '.join(command[1:4])})")
      with target.ignore_type():
        target[leaf] = value
  return config


def test_plumerault_table_plan_names_existing_config_keys(tmp_path):
  launcher = _launcher("plumerault_table")
  runs = launcher.plan(str(tmp_path), [0, 1], ablation=True, ld_steps=30, num_trajectories=32)
  dirs = sorted(os.path.relpath(r.workdir, tmp_path) for r in runs)
  plumerault = [f"plumerault{s}/seed{k}" for s in ("", "_parity", "_mse", "_free", "_mse_free", "_direct", "_fit_upstream") for k in (0, 1)]
  trained = ["ganspace/seed0", "ganspace/seed1", "ld/seed0", "ld/seed1", "sefa/seed0"]   # SeFa: one run
  controls = [f"{m}/seed{k}/control" for m in ("sefa", "ganspace", "ld") for k in (0, 1)]
  assert dirs == sorted(plumerault + trained + controls)
  for run in runs:
    _apply_overrides(run.command)          # every --config.* key exists in its config
  sefa = [r for r in runs if r.workdir.endswith("sefa/seed0")][0]
  assert _apply_overrides(sefa.command).truncation == 1.0   # a dcgan has no W: the config's 0.7 is refused
  sefa_control = [r for r in runs if r.workdir.endswith("sefa/seed1/control")][0]
  assert sefa_control.requires == str(tmp_path / "sefa" / "seed0" / "directions.npz")
  assert "--config.seed=1" in sefa_control.command


def test_plumerault_table_reads_the_control_rows(tmp_path):
  launcher = _launcher("plumerault_table")
  summary = lambda r: {"core": {"rel_std": r, "r2_t": 1 - r, "abs_spearman": 1.0, "gain": 2.0},  # noqa: E731
                       "full": {"rel_std": r + 0.1}}
  row = lambda r: {f: {"summary": summary(r), "side_effect_abs_gain": 0.2}  # noqa: E731
                   for f in launcher.FACTORS}
  for seed, value in ((0, 0.1), (1, 0.3)):
    for path, entries in ((tmp_path / "plumerault" / f"seed{seed}" / "metrics.json",
                           {"control": {"directions": row(value), "random": row(0.9)}}),
                          (tmp_path / "sefa" / f"seed{seed}" / "control" / "metrics.json",
                           {"control": {"directions": row(0.5), "probe": row(0.05), "random": row(0.7)}})):
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(json.dumps(entries))
  tables = launcher.aggregate(str(tmp_path), [0, 1], ablation=False)
  x = tables["horizontal_position"]
  assert list(x) == ["Plumerault", "SeFa (best of 16)", "probe (supervised)", "random (best of 16)",
                     "random (one direction)"]
  np.testing.assert_allclose(x["Plumerault"]["rel_std"], [0.1, 0.3])
  np.testing.assert_allclose(x["Plumerault"]["rel_std (t ≤ 5)"], [0.2, 0.4])
  assert "| Plumerault | 0.200 ± 0.141 | 0.300 ± 0.141 |" in launcher.markdown(tables)


class _RampGenerator:
  """A stand-in generator: image = tanh(z₀ · ramp) on 8×8 (enough to make reconstructions differ)."""
  info = type("Info", (), {"output_range": (-1.0, 1.0)})()

  def __call__(self, z):
    ramp = np.linspace(-1.0, 1.0, 64, dtype=np.float32).reshape(1, 8, 8, 1)
    return np.tanh(np.asarray(z)[:, :1, None, None] * ramp)


def test_plumerault_inversion_scores_measure_what_the_inversions_reached(tmp_path):
  """The Figs. 6/7 analogue: unblurred MSE of G(ẑ) to the target on kept records (t = 0: the target is G(z0)), the
  median ‖ẑ‖/√d and the fraction outside the ball, and the fit's R² — against numpy."""
  launcher = _launcher("plumerault_table")
  rng = np.random.default_rng(0)
  z0 = rng.normal(size=(5, 4)).astype(np.float32)
  z = z0 + rng.normal(scale=0.5, size=z0.shape).astype(np.float32)
  z[4] *= 10.0   # far off and not kept: must not count
  kept = np.array([1, 1, 1, 1, 0], bool)
  workdir = tmp_path / "plumerault_mse" / "seed0"
  (workdir / "trajectories").mkdir(parents=True)
  np.savez(workdir / "trajectories" / "horizontal_position.npz", z0=z0, z=z, t=np.zeros(5, np.float32), kept=kept)
  (workdir / "config.json").write_text(json.dumps({"trajectories": {"fill": 0.0}}))
  (workdir / "results.json").write_text(json.dumps({"transforms": {"horizontal_position": {"fit_r2": 0.8}}}))
  scores = launcher.inversion_scores(str(workdir), "horizontal_position", _RampGenerator())
  g = _RampGenerator()
  want_mse = np.median(np.mean((g(z[kept]) - g(z0[kept])) ** 2, axis=(1, 2, 3)))
  norms = np.linalg.norm(z[kept], axis=1) / 2.0
  np.testing.assert_allclose(scores["masked MSE"], want_mse, rtol=1e-5)
  np.testing.assert_allclose(scores["‖z‖/√d"], np.median(norms), rtol=1e-6)
  assert scores["outside ball"] == np.mean(norms > 1.0 + 1e-4) and scores["fit R²"] == 0.8
  # The table reads finished runs only (a running one already has some trajectory files).
  assert launcher.aggregate_inversions(str(tmp_path), [0], ablation=True) == {}


# ---------------------------------------------------------------------------------------------------------------
# launch/plumerault_convergence.py (Fig. 8)


@pytest.mark.slow   # ≈ 40 s: two inversions of testbed:dsprites (compile-bound)
def test_plumerault_convergence_quick_writes_curves_and_the_summary(tmp_path):
  launcher = _launcher("plumerault_convergence")
  assert launcher.main([f"--out={tmp_path}", "--quick", "--shifts=20"]) == 0
  written = json.loads((tmp_path / "convergence.json").read_text())
  summary = written["results"]["testbed:dsprites"]["20px"]
  assert 0 < summary["recursive_final"] < summary["initial"] and summary["naive_final"] > 0
  curves = np.load(tmp_path / "curves_testbed_dsprites_20px.npz")
  assert curves["recursive"].shape == curves["naive"].shape == (4, 10)
  assert (tmp_path / "convergence_testbed_dsprites_20px.png").exists()


def test_a_finished_cell_keeps_its_scalars_without_its_event_files(tmp_path):
  from ganlatent_jax.training import events
  cell = tmp_path / "cell"
  script = ("import sys; from ganlatent_jax.training.writer import MetricWriter; w = MetricWriter(sys.argv[1]); "
            "[w.scalars(s, {'loss': 1.0 / s, 'acc': s / 10}) for s in (1, 2, 3)]; w.close(); "
            "open(sys.argv[1] + '/done', 'w').close()")
  run = runs_lib.Run(str(cell), [sys.executable, "-c", script, str(cell)], str(cell / "done"))
  assert runs_lib.execute([run], workers=1) == 0
  logged = events.read_scalars(str(cell))
  assert [step for step, _ in logged["acc"]] == [1, 2, 3] and len(logged["loss"]) == 3
  np.testing.assert_allclose([value for _, value in logged["acc"]], [0.1, 0.2, 0.3], rtol=1e-6)
  for path in cell.glob("events.out.tfevents.*"):   # what a committed results/ cell lacks
    path.unlink()
  assert events.read_scalars(str(cell)) == logged


@pytest.mark.parametrize("path, kept", [
    ("results/t/row/seed0/metrics.json", True), ("results/t/row/seed0/scalars.json", True),
    ("results/t/row/seed0/command.txt", True), ("results/t/row/seed0/directions.npz", True),
    ("results/t/table.md", True), ("results/t/row/seed0/checkpoints/100/x", False),
    ("results/t/row/seed0/events.out.tfevents.1.vm.2", False), ("results/t/row/seed0/report.html", False),
    ("results/t/row/seed0/generator/params.msgpack", False), ("results/t/row/seed0/run.log", False),
])
def test_results_keep_a_cells_records_and_not_its_bulk(path, kept):
  if not os.path.exists(os.path.join(REPO, ".git")):
    pytest.skip("not a git checkout")
  ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0
  assert ignored != kept, path


def test_pssc_table_reads_the_upstream_protocols_factor_vae_where_a_run_has_it(tmp_path):
  """'FactorVAE 60/0.1' = q.factor_vae_upstream (PS-SC runs evaluated from 2026-12-05 on); older cells and InfoGAN's
  q_head have none: an empty cell, not a zero."""
  launcher = _launcher("pssc_table")
  for seed, upstream in ((0, 0.47), (1, None)):
    _pssc_metrics(str(tmp_path / "dsprites" / "ps" / f"seed{seed}" / "metrics.json"), 0.5 + seed / 10, 0.03, tpl=1.0,
                  active=4, dci=0.05, factor_vae_upstream=upstream)
  _pssc_metrics(str(tmp_path / "dsprites" / "infogan" / "seed0" / "metrics.json"), 0.3, 0.02, entry="q_head")
  tables, _ = launcher.aggregate(str(tmp_path), ["dsprites"], [0, 1], select_from=0, min_active=0)
  assert tables["dsprites"]["PS (no SC)"]["FactorVAE 60/0.1"] == [0.47]
  assert tables["dsprites"]["InfoGAN (ours)"]["FactorVAE 60/0.1"] == []
  assert "| PS (no SC) | 0.550 ± 0.071 | 0.470 | 0.030 ± 0.000 |" in launcher.markdown(tables, ["dsprites"])
