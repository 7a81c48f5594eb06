"""A comparison page over several runs (e.g. the seeds of a table): `python -m ganlatent_jax.report --workdir=W
--compare=W2,W3`. Built from the run report's pieces (`viz.report`): the same headline scores, labels and page style.
"""
from __future__ import annotations

import os
import pathlib
from typing import Sequence

from ganlatent_jax.viz.report import (HEADLINE, REPORT_FILE, _e, _href, _page, _set_label, _set_order, _table,
                                      format_number, read_json, score_label, score_sets)

COMPARISON_FILE = "comparison.html"


def render_comparison(workdirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> str:
  """A page over several runs (e.g. the seeds of a table): headline scores per run and set, mean ± std per set,
  each run's report and before/after picture linked relative to `output_dir` (where the page is written)."""
  from ganlatent_jax.metrics.report import format_mean_std
  runs = []
  for workdir in dict.fromkeys(os.path.realpath(w) for w in workdirs):  # each run once, in the given order
    root = pathlib.Path(workdir)
    if not root.is_dir():
      raise FileNotFoundError(f"--compare: {workdir} is not a directory")
    config = read_json(root / "config.json") or {}
    runs.append((root, config, score_sets(read_json(root / "metrics.json"))))
  paths = sorted(dict.fromkeys(p for _, _, sets in runs for p in sets), key=_set_order)
  columns = [(path, score) for path in paths for score, _ in HEADLINE[:4]
             if any(score in sets.get(path, {}) for _, _, sets in runs)]
  header = ["run", "method", "seed", "steps"] + [f"{score_label(s)} ({_set_label(p)})" for p, s in columns]
  rows, figures = [], []
  for root, config, sets in runs:
    link = os.path.relpath(root / REPORT_FILE, output_dir)
    name = _e(root.name)
    rows.append([f'<a href="{_href(link)}">{name}</a>', _e(config.get("method", "?")),
                 _e(config.get("seed", "?")), _e(config.get("steps", "?"))] +
                [_e(format_number(sets[p][s])) if s in sets.get(p, {}) else "—" for p, s in columns])
    for picture in ("images/traversal_comparison.png", "images/traversal.png", "samples.png"):
      if (root / picture).exists():
        figures.append(f'<figure><img alt="{name}" src="{_href(os.path.relpath(root / picture, output_dir))}" '
                       f'style="max-width:320px"><figcaption>{name}</figcaption></figure>')
        break
  summary_row = ["mean ± std", "", "", ""] + [
      _e(format_mean_std([sets[p][s] for _, _, sets in runs if s in sets.get(p, {})]))
      for p, s in columns]
  body = [f"<h1>Comparison of {len(runs)} runs</h1>", "<h2>Scores</h2>",
          _table(header, rows + [summary_row], html_cells=True, cls="metrics"),
          '<p class="muted">mean ± sample standard deviation over the runs that have the score.</p>',
          "<h2>Pictures</h2>", "".join(figures)]
  return _page(f"comparison of {len(runs)} runs", "".join(body))


def write_comparison(workdirs: Sequence[str | os.PathLike], output: str | os.PathLike) -> str:
  from ganlatent_jax import io
  output = os.fspath(output)
  io.write_text(output, render_comparison(workdirs, os.path.dirname(os.path.abspath(output))))
  return output
