"""report.html: what a run leaves in its workdir, rendered offline (relative links and embedded pictures only)."""
import html.parser
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from ganlatent_jax import viz
from ganlatent_jax.training import events
from ganlatent_jax.training.writer import MetricWriter
from ganlatent_jax.viz import report


class _Page(html.parser.HTMLParser):
  """Collects what a reader of the page needs: image sources, links, table cells, inline SVG lines."""

  def __init__(self):
    super().__init__()
    self.images, self.links, self.cells, self.polylines, self._cell = [], [], [], [], None

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == "img":
      self.images.append(attrs["src"])
    elif tag == "a":
      self.links.append(attrs["href"])
    elif tag == "polyline":
      self.polylines.append(attrs["points"])
    elif tag in ("td", "th"):
      self._cell = ""

  def handle_endtag(self, tag):
    if tag in ("td", "th") and self._cell is not None:
      self.cells.append(self._cell.strip())
      self._cell = None

  def handle_data(self, data):
    if self._cell is not None:
      self._cell += data


def _parse(text):
  page = _Page()
  page.feed(text)
  return page


METRICS = {"init_directions": {"mig": 0.125, "factor_vae_eval_accuracy": 0.5, "encoder_val_r2": [0.1, 0.2]},
           "directions": {"mig": 0.375, "factor_vae_eval_accuracy": 0.75},
           "evaluation": {"num_train": 64, "dataset": "shapes3d"}, "seed": 0}


def _workdir(root: pathlib.Path, metrics=METRICS, config=None) -> pathlib.Path:
  root.mkdir(parents=True, exist_ok=True)
  config = config or {"method": "sre", "steps": 20, "generator": "testbed:shapes3d", "init": {"method": "sefa"},
                      "evaluation": {"dataset": "shapes3d"}}
  (root / "config.json").write_text(json.dumps(config))
  if metrics is not None:
    (root / "metrics.json").write_text(json.dumps(metrics))
  writer = MetricWriter(root, enabled=True)
  for step in (10, 20):
    writer.scalars(step, {"ranker_loss": 1.0 / step, "perf/steps_per_s": 2.0})
  writer.images(20, {"traversal": np.linspace(0, 1, 8 * 8 * 3).reshape(8, 8, 3)})
  writer.close()
  viz.save_png(root / "images" / "traversal_comparison.png", np.zeros((4, 6, 3), np.uint8))
  (root / "directions.npz").write_bytes(b"x")
  (root / "checkpoints" / "20").mkdir(parents=True)
  return root


def test_report_links_every_output_relatively_and_embeds_the_rest(tmp_path):
  root = _workdir(tmp_path / "run")
  path = report.write_report(root)
  assert path == os.path.join(root, "report.html")
  page = _parse(pathlib.Path(path).read_text())
  relative = [src for src in page.images if not src.startswith("data:image/png;base64,")]
  assert relative == ["images/traversal_comparison.png"]
  assert len(page.images) == 3  # + the traversal logged at step 20 + the testbed's sample sheet (embedded)
  for link in page.links:
    assert "://" not in link and not link.startswith("/"), link  # nothing outside the workdir, no network
    assert (root / link).exists(), link
  assert {"config.json", "metrics.json", "directions.npz", "images/traversal_comparison.png",
          "checkpoints/"} <= set(page.links)
  assert "report.html" not in page.links
  assert len(page.polylines) == 2  # ranker_loss and the throughput curve


def test_metrics_table_has_init_refined_delta_and_the_paper_numbers(tmp_path):
  page = _parse(report.render_report(_workdir(tmp_path / "run")))
  cells = page.cells
  header = cells[:cells.index("MIG")]
  assert header == ["score", "init", "init (paper)", "refined", "refined (paper)", "Δ refined − init"]
  width = len(header)
  rows = {cells[i]: cells[i + 1:i + width] for i in range(width, len(cells), width) if cells[i] in ("MIG",
                                                                                                     "FactorVAE")}
  assert rows["MIG"] == ["0.125", "0.22 ± 0.01", "0.375", "0.45 ± 0.06", "+0.25"]
  assert rows["FactorVAE"] == ["0.5", "0.86 ± 0.01", "0.75", "0.94 ± 0.02", "+0.25"]


def test_score_sets_skip_settings_and_find_nested_and_top_level_scores():
  sets = report.score_sets({"mig": 0.5, "step": 3, "factor_vae": {"eval_accuracy": 0.75, "num_active_dims": 2},
                            "evaluation": {"budget": 0.5}, "seconds": {"mig": 2.5},
                            "directions": {"generated": {"mig": 0.25, "per_factor": [0.5]}, "evaluation": {"x": 0.5}},
                            "counts": {"seed": 1}, "flag": True, "error": "text"})
  assert sets == {"": {"mig": 0.5, "step": 3.0}, "factor_vae": {"eval_accuracy": 0.75, "num_active_dims": 2.0},
                  "directions": {"generated/mig": 0.25}}


def test_metrics_table_shows_nested_generated_domain_rows_and_groups_unrelated_sets():
  metrics = {"seed": 0, "evaluation": {"num_train": 8},
             "init_directions": {"mig": 0.125, "generated_mig": 0.5,
                                 "generated": {"mig": 0.25, "recovery": {"fraction": 0.75}}},
             "directions": {"mig": 0.25, "generated": {"mig": 0.5, "recovery": {"fraction": 1.0}}},
             "reconstructor": {"accuracy": 0.875, "shift_error": 0.0625}}
  text = report.metrics_table(report.score_sets(metrics))
  cells = _parse(text).cells
  assert text.count('<table class="metrics">') == 2  # init/refined, then the reconstructor (no score in common)
  first = cells[:cells.index("reconstructor") - 1]   # up to the second table's header "score"
  width = 4   # score, init, refined, Δ
  rows = {first[i]: first[i + 1:i + width] for i in range(width, len(first), width)}
  assert list(rows) == ["MIG", "generated_mig", "generated/MIG", "generated/recovery/fraction"]
  assert rows["generated/MIG"] == ["0.25", "0.5", "+0.25"]
  assert rows["generated/recovery/fraction"] == ["0.75", "1", "+0.25"]
  assert rows["generated_mig"] == ["0.5", "—", "—"]
  second = cells[cells.index("reconstructor") - 1:]
  assert second == ["score", "reconstructor", "accuracy", "0.875", "shift_error", "0.0625"]


def test_metrics_table_of_a_control_measure_has_one_column_per_transform():
  metrics = {"seed": 0, "evaluation": {"num_t": 3},
             "scale": {"t": [0.0, 1.0], "num_valid": 4, "summary": {"abs_spearman": 0.5, "rel_std": float("nan")}},
             "posX": {"t": [0.0, 1.0], "num_valid": 3, "summary": {"abs_spearman": 0.75, "rel_std": 0.25}}}
  cells = _parse(report.metrics_table(report.score_sets(metrics))).cells
  assert cells == ["score", "posX", "scale", "num_valid", "3", "4", "summary/abs_spearman", "0.75", "0.5",
                   "summary/rel_std", "0.25", "nan"]


def test_per_knob_lists_get_their_own_table_grouped_by_length_and_cut():
  # UD-GAN-G on CelebA has no factor labels: its per-knob effect list is the whole result (it had no table)
  metrics = {"seed": 0, "evaluation": {"knob_ids": [1, 2]}, "knob_effect": [0.5, 0.25, 0.125],
             "sefa": {"eigenvalues": [float(v) for v in range(40)], "names": ["a"], "flags": [True, False]},
             "other": {"per_knob": [1, 2, 3]}}
  lists = report.number_lists(metrics)
  assert lists == {"knob_effect": [0.5, 0.25, 0.125], "sefa/eigenvalues": [float(v) for v in range(40)],
                   "other/per_knob": [1.0, 2.0, 3.0]}   # settings, strings and booleans left out
  text = report.lists_table(lists, max_rows=4)
  assert text.count('<table class="metrics">') == 2   # the two lists of 3 side by side; the 40 cut to 4 rows
  cells = _parse(text).cells
  assert cells[:8] == ["#", "knob_effect", "other/per_knob", "0", "0.5", "1", "1", "0.25"]
  assert cells[-2:] == ["3", "3"] and "First 4 of 40" in text


def test_report_shows_the_per_knob_table_only_when_metrics_hold_lists(tmp_path):
  with_lists = _workdir(tmp_path / "a", metrics={"knob_effect": [0.5, 0.25]}, config={"method": "udgan"})
  assert "Per direction / per knob" in report.render_report(with_lists)
  without = _workdir(tmp_path / "b", metrics={"mig": 0.5}, config={"method": "udgan"})
  assert "Per direction / per knob" not in report.render_report(without)


def test_scalars_of_a_resumed_run_have_one_value_per_step_the_newest(tmp_path):
  """A run resumed from its step-2 checkpoint logs step 2 (and whatever it had logged after the checkpoint) again in a
  new event file: the curve keeps one point per step, the resumed run's."""
  first = MetricWriter(tmp_path, enabled=True)
  first.scalars(1, {"loss": 1.0})
  first.scalars(2, {"loss": 2.0})
  first.scalars(3, {"loss": 3.0})   # logged, then the run was killed before its step-3 checkpoint
  first.close()
  resumed = MetricWriter(tmp_path, enabled=True)
  resumed.scalars(3, {"loss": 30.0})
  resumed.scalars(4, {"loss": 40.0})
  resumed.close()
  assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
  assert events.read_scalars(tmp_path) == {"loss": [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]}


def test_writers_opened_in_the_same_second_keep_both_files_and_the_newer_wins(tmp_path):
  """tensorboardX names event files by the second: without a finer suffix the second writer truncated the first's."""
  first = MetricWriter(tmp_path, enabled=True)
  first.scalars(1, {"loss": 1.0})
  first.scalars(2, {"loss": 2.0})
  first.close()
  second = MetricWriter(tmp_path, enabled=True)   # the same second, almost always; the assertion holds either way
  second.scalars(2, {"loss": 20.0})
  second.close()
  assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
  assert events.read_scalars(tmp_path) == {"loss": [(1, 1.0), (2, 20.0)]}


def test_report_of_a_run_in_progress(tmp_path):
  root = _workdir(tmp_path / "run", metrics=None, config={"method": "ld", "steps": 100})
  with open(next(root.glob("events.out.tfevents.*")), "ab") as f:
    f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00partial")  # a record still being written
  text = report.render_report(root)
  assert "step 20 of 100; in progress" in text and "No scores yet" in text
  assert events.read_scalars(root)["ranker_loss"] == [(10, pytest.approx(0.1)), (20, pytest.approx(0.05))]


def test_svg_curve_scales_into_the_box():
  svg = report.svg_curve([(0, 1.0), (5, float("nan")), (10, 3.0)], "loss", width=100, height=50)
  points = _parse(svg).polylines[0].split()
  xs, ys = zip(*(map(float, p.split(",")) for p in points))
  assert len(points) == 2 and min(xs) == 8 and max(xs) == 92 and max(ys) == 32 and min(ys) == 18


def test_command_writes_report_and_comparison(tmp_path):
  runs = [_workdir(tmp_path / f"seed{i}", metrics={"directions": {"mig": 0.25 * (i + 1)}}) for i in range(3)]
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, "-m", "ganlatent_jax.report", f"--workdir={runs[0]}", "--compare",
                           str(runs[1]), str(runs[2])], capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (runs[0] / "report.html").exists() and (runs[0] / "comparison.html").exists()
  page = _parse((runs[0] / "comparison.html").read_text())
  assert page.links == ["report.html", "../seed1/report.html", "../seed2/report.html"]
  assert "0.500 ± 0.250" in page.cells  # MIG 0.25, 0.5, 0.75: mean ± sample std
  bad = subprocess.run([sys.executable, "-m", "ganlatent_jax.report", f"--workdir={tmp_path / 'nope'}"],
                       capture_output=True, text=True, env=env, timeout=300)
  assert bad.returncode != 0 and "nope is not a directory" in bad.stderr


@pytest.mark.parametrize("config,found", [
    ({"method": "sre", "evaluation": {"dataset": "shapes3d"}, "init": {"method": "sefa"}}, True),
    ({"method": "sre", "evaluation": {"dataset": {"name": "shapes3d", "source": "procedural"}},
      "init": {"method": "sefa"}}, True),
    ({"method": "sre", "evaluation": {"dataset": {"name": "shapes3d"}}, "init": {"method": "random"}}, False),
    ({"method": "sefa", "evaluation": {"enabled": False}}, False),
    ({}, False),
    (None, False),
])
def test_paper_reference_only_for_the_paper_setting(config, found):
  reference = report.paper_reference(config)
  assert (reference is not None) is found
  if found:
    assert reference["sets"]["directions"]["mig"] == "0.45 ± 0.06"


def test_report_of_a_gan_run_names_the_architecture_it_trains(tmp_path):
  # A GAN run's `generator` is the architecture it trains (a dict), not a checkpoint path: it crashed the report.
  architecture = {"family": "dcgan", "latent_dim": 16}
  root = _workdir(tmp_path / "run", metrics=None, config={"method": "gan", "steps": 100, "generator": architecture})
  text = report.render_report(root)
  assert "Trained here" in text and "dcgan" in text


def test_write_report_records_a_config_the_run_did_not_write(tmp_path):
  import ml_collections
  root = tmp_path / "run"
  root.mkdir()
  (root / "results.json").write_text(json.dumps({"method": "sefa", "eigenvalues": [3.0, 2.0]}))
  assert "No config.json in the workdir" in report.render_report(root)
  config = ml_collections.ConfigDict({"method": "sefa", "generator": "", "layers": (0, 1)})
  page = _parse(pathlib.Path(report.write_report(root, config)).read_text())
  assert json.loads((root / "config.json").read_text()) == {"method": "sefa", "generator": "", "layers": [0, 1]}
  assert "config.json" in page.links
  (root / "config.json").write_text(json.dumps({"method": "sefa", "seed": 7}))
  report.write_report(root, config)   # an existing config.json (the training loop's) is never replaced
  assert json.loads((root / "config.json").read_text()) == {"method": "sefa", "seed": 7}
  assert "<h1>sefa run" in (root / "report.html").read_text()
