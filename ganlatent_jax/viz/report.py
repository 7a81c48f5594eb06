"""One HTML report per run (`report.html` in the workdir), the same renderer for every method (pages over several
runs: `viz.compare`, built from these pieces).

The report reads only what a run leaves in its workdir — config.json, metrics.json / results.json, the TensorBoard
event files, the PNGs — so it can be rebuilt at any time (`python -m ganlatent_jax.report --workdir=W`), and is
refreshed during training. It needs no network: training curves are inline SVG, the generator's sample sheet and the
images logged during training are embedded, and the run's own files are linked relatively (the workdir can be moved
or copied as a whole).

Sections: the run (method, generator, steps), the generator and its model card summary, the metrics table (one
column per set of scores, e.g. initial vs refined directions, with the paper's numbers where the config is a paper
setting), traversal pictures, training curves, the config, and every output file.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import math
import os
import pathlib
import urllib.parse
from typing import Any, Iterable, Mapping, Sequence

from ganlatent_jax.training.events import read_latest_images, read_scalars

REPORT_FILE = "report.html"

# Scores shown first, with their usual names; every other number of a set follows under its own key.
HEADLINE = (("mig", "MIG"), ("factor_vae_eval_accuracy", "FactorVAE"), ("dci_disentanglement", "DCI"),
            ("beta_vae_eval_accuracy", "β-VAE"), ("encoder_val_r2_mean", "encoder R²"))
# Sections of metrics.json that hold settings or timings, not scores.
SETTINGS_SECTIONS = ("evaluation", "config", "outputs", "seconds", "generated_domain")   # generated_domain: how labelled
# How a set of scores is labelled when it is the usual "before / after" pair of a refining method.
SET_LABELS = {"init_directions": "init", "directions": "refined"}

# Published numbers for configs that reproduce a paper setting: (method, evaluation dataset, init) → table.
# SRE (Self-supervised Enhancement of Latent Discovery in GANs), Table 2: 3DShapes StyleGAN2, mean ± std over
# 5 seeds. The testbed generator is not the paper's generator: these are a reference scale, not a target.
PAPER_REFERENCES: dict[tuple[str, str, str], dict[str, Any]] = {
    ("sre", "shapes3d", "sefa"): {
        "source": "SRE paper, Table 2 (3DShapes, StyleGAN2; 5 seeds)",
        "sets": {"init_directions": {"mig": "0.22 ± 0.01", "factor_vae_eval_accuracy": "0.86 ± 0.01"},
                 "directions": {"mig": "0.45 ± 0.06", "factor_vae_eval_accuracy": "0.94 ± 0.02"}}},
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.name,th.name{text-align:left}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.85em}
figure{display:inline-block;margin:.4em 1em .4em 0;vertical-align:top}figcaption{font-size:.85em;color:#555}
img{image-rendering:pixelated;max-width:100%}.curves{display:flex;flex-wrap:wrap;gap:.6em}
.muted{color:#777;font-size:.85em}.up{color:#1a7f37}.down{color:#b42318}
"""


# ---------------------------------------------------------------------------------------------------------------
# Reading a workdir


def read_json(path: str | os.PathLike) -> Any:
  """A JSON file's contents, or None when it is missing or (being rewritten) unreadable. A gs:// path too."""
  from ganlatent_jax import io
  try:
    return json.loads(io.read_text(path))
  except (OSError, ValueError):
    return None


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _leaves(node: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
  """(path, value) of every non-mapping value below `node` ('generated/mig'), settings sections left out: the one walk
  behind the metrics table (`score_sets`) and the per-direction table (`number_lists`)."""
  for key, value in node.items():
    if isinstance(value, Mapping):
      if key not in SETTINGS_SECTIONS:
        yield from _leaves(value, f"{prefix}{key}/")
    else:
      yield prefix + str(key), value


def score_sets(payload: Any) -> dict[str, dict[str, float]]:
  """The sets of scores in a metrics.json payload: {set: {score: value}}, one set per column of the metrics table.

  Every top-level dict holding a float somewhere below it is a set (e.g. 'init_directions' and 'directions', a
  method's named directions, one transform of Plumerault's control measure); its numbers at any depth are its scores,
  a nested one under its path ('generated/mig' for {'generated': {'mig': …}}), so whatever blocks an evaluation adds
  show up as rows without the report knowing them. Top-level numbers form the set '' when one of them is a float.
  Settings sections (SETTINGS_SECTIONS), strings, booleans and lists (per-direction arrays) are left out.
  """
  def numbers(node: Mapping[str, Any]) -> dict[str, float]:
    return {path: value for path, value in _leaves(node) if _is_number(value)}

  sets: dict[str, dict[str, float]] = {}
  if not isinstance(payload, Mapping):
    return sets
  top = {k: v for k, v in payload.items() if not isinstance(v, Mapping)}
  candidates = [("", numbers(top))] + [(str(k), numbers(v)) for k, v in payload.items()
                                       if isinstance(v, Mapping) and k not in SETTINGS_SECTIONS]
  for name, values in candidates:
    if any(isinstance(v, float) for v in values.values()):  # ints alone are counts and seeds, not scores
      sets[name] = {k: float(v) for k, v in values.items()}
  return sets


def number_lists(payload: Any, prefix: str = "") -> dict[str, list[float]]:
  """The lists of numbers in a metrics.json payload at any depth ({'knob_effect': [...], 'sefa/eigenvalues': [...]}),
  settings sections left out: the per-direction / per-knob values `score_sets` leaves to this table."""
  if not isinstance(payload, Mapping):
    return {}
  return {path: [float(v) for v in value] for path, value in _leaves(payload, prefix)
          if isinstance(value, list) and value and all(_is_number(v) for v in value)}


def lists_table(lists: Mapping[str, Sequence[float]], max_rows: int = 32) -> str:
  """One table per list length (index × lists of that length), the first `max_rows` entries of each."""
  by_length: dict[int, list[str]] = {}
  for name, values in lists.items():
    by_length.setdefault(len(values), []).append(name)
  tables = []
  for length, names in sorted(by_length.items()):
    rows = [[str(i), *(format_number(lists[name][i]) for name in names)] for i in range(min(length, max_rows))]
    tables.append(_table(["#", *names], rows, cls="metrics"))
    if length > max_rows:
      tables.append(f'<p class="muted">First {max_rows} of {length}; all of them in metrics.json.</p>')
  return "".join(tables)


def _score_order(score: str) -> tuple[str, int, str]:
  """Top-level scores before nested blocks; within each, the headline scores first, then by name."""
  prefix, _, leaf = score.rpartition("/")
  keys = [key for key, _ in HEADLINE]
  return (prefix, keys.index(leaf) if leaf in keys else len(keys), leaf)


def _ordered_scores(sets: Mapping[str, Mapping[str, float]]) -> list[str]:
  return sorted({score for values in sets.values() for score in values}, key=_score_order)


def score_label(score: str) -> str:
  """The row name of a score: its usual name for a headline score ('generated/MIG' for 'generated/mig')."""
  prefix, _, leaf = score.rpartition("/")
  return (prefix + "/" if prefix else "") + dict(HEADLINE).get(leaf, leaf)


def _groups(sets: Mapping[str, Mapping[str, float]]) -> list[list[str]]:
  """Sets that share a score go in one table (init and refined; the transforms of a control measure); sets with
  nothing in common (a reconstructor's accuracy beside the protocol's scores) get tables of their own."""
  groups: list[tuple[list[str], set[str]]] = []
  for path in sorted(sets, key=_set_order):
    keys = set(sets[path])
    joined = [g for g in groups if g[1] & keys]
    merged = ([p for g in joined for p in g[0]] + [path], keys.union(*(g[1] for g in joined)))
    groups = [g for g in groups if g not in joined] + [merged]
  return sorted((sorted(paths, key=_set_order) for paths, _ in groups), key=lambda paths: _set_order(paths[0]))


def _set_label(path: str) -> str:
  return SET_LABELS.get(path, path or "scores")


def _set_order(path: str) -> tuple[int, str]:
  """init before refined before anything else."""
  return (list(SET_LABELS).index(path) if path in SET_LABELS else len(SET_LABELS), path)


def headline_lines(workdir: str | os.PathLike) -> list[str]:
  """One line per headline score of the run's metrics.json: 'MIG: 0.153 → 0.201' for init → refined."""
  sets = score_sets(read_json(os.path.join(workdir, "metrics.json")))
  lines = []
  for score, label in HEADLINE:
    holders = [path for path in sets if score in sets[path]]
    if not holders:
      continue
    if "init_directions" in holders and "directions" in holders:
      lines.append(f"{label}: {sets['init_directions'][score]:.3f} → {sets['directions'][score]:.3f} "
                   f"(init → refined)")
    else:
      lines.append(f"{label}: " + ", ".join(f"{sets[p][score]:.3f}" + (f" ({_set_label(p)})" if p else "")
                                           for p in holders))
  return lines


def paper_reference(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
  """The published numbers for a config that reproduces a paper setting (PAPER_REFERENCES), else None."""
  if not isinstance(config, Mapping):
    return None

  def name_of(section: Any, key: str) -> str:
    value = section.get(key) if isinstance(section, Mapping) else None
    if isinstance(value, Mapping):  # e.g. evaluation.dataset = {name, source}
      value = value.get("name")
    return str(value)

  return PAPER_REFERENCES.get((str(config.get("method")), name_of(config.get("evaluation"), "dataset"),
                               name_of(config.get("init"), "method")))


# ---------------------------------------------------------------------------------------------------------------
# HTML pieces

def _e(value: Any) -> str:
  return html.escape(str(value))


def _href(path: str) -> str:
  return urllib.parse.quote(pathlib.PurePath(path).as_posix())


def _data_uri(png: bytes) -> str:
  return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def format_number(value: float) -> str:
  return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def svg_curve(points: Sequence[tuple[int, float]], title: str, width: int = 300, height: int = 150) -> str:
  """An inline SVG line chart of (step, value) points with the value range and the step range written on it."""
  stride = max(1, len(points) // 600)  # at most ~600 vertices: a long run's curve stays a small file
  points = [(s, v) for s, v in points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])]
  finite = [(s, v) for s, v in points if math.isfinite(v)]
  left, right, top, bottom = 8, 8, 18, 18
  lo, hi = (min(v for _, v in finite), max(v for _, v in finite)) if finite else (0.0, 1.0)
  if hi == lo:
    lo, hi = lo - 0.5, hi + 0.5
  s_lo, s_hi = min(s for s, _ in points), max(s for s, _ in points)
  s_span = max(s_hi - s_lo, 1)

  def xy(step, value):
    return (left + (step - s_lo) / s_span * (width - left - right),
            top + (hi - value) / (hi - lo) * (height - top - bottom))

  coords = " ".join("%.1f,%.1f" % xy(s, v) for s, v in finite)
  marker = "" if len(finite) > 1 else "".join('<circle cx="%.1f" cy="%.1f" r="3" fill="#1f6feb"/>' % xy(s, v)
                                                for s, v in finite)
  last = points[-1][1]
  return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
          f'aria-label="{_e(title)}" style="border:1px solid #ddd;background:#fff">'
          f'<text x="{left}" y="13" font-size="11">{_e(title)} (last {_e(format_number(last))})</text>'
          f'<text x="{width - right}" y="13" font-size="10" text-anchor="end" fill="#777">max {_e(format_number(hi))}'
          f'</text><text x="{width - right}" y="{height - 5}" font-size="10" text-anchor="end" fill="#777">'
          f'step {s_lo}–{s_hi}, min {_e(format_number(lo))}</text>'
          f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="{coords}"/>{marker}</svg>')


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], html_cells: bool = False, cls: str = "") -> str:
  head = "".join(f'<th class="name">{_e(h)}</th>' if i == 0 else f"<th>{_e(h)}</th>" for i, h in enumerate(header))
  body = "".join("<tr>" + "".join(
      (f'<td class="name">{c if html_cells else _e(c)}</td>' if i == 0 else f"<td>{c if html_cells else _e(c)}</td>")
      for i, c in enumerate(row)) + "</tr>" for row in rows)
  return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def metrics_table(sets: Mapping[str, Mapping[str, float]], reference: Mapping[str, Any] | None = None) -> str:
  """Scores × sets, one table per group of sets sharing scores (`_groups`); with an init/refined pair a Δ column,
  with a paper reference its numbers beside each set."""
  if not sets:
    return '<p class="muted">No scores yet (metrics.json is written when the evaluation finishes).</p>'
  tables = "".join(_score_table({path: sets[path] for path in group}, reference) for group in _groups(sets))
  if reference and any(path in reference.get("sets", {}) for path in sets):
    tables += (f'<p class="muted">Paper: {_e(reference["source"])}. Its generator is not this run\'s: the '
               f'numbers give the scale of the published result, not a target for a short run.</p>')
  return tables


def _score_table(sets: Mapping[str, Mapping[str, float]], reference: Mapping[str, Any] | None) -> str:
  columns = sorted(sets, key=_set_order)
  pair = "init_directions" in sets and "directions" in sets
  ref_sets = (reference or {}).get("sets", {})
  header = ["score"]
  for path in columns:
    header.append(_set_label(path))
    if path in ref_sets:
      header.append(f"{_set_label(path)} (paper)")
  if pair:
    header.append("Δ refined − init")
  rows = []
  for score in _ordered_scores(sets):
    row = [_e(score_label(score))]
    for path in columns:
      row.append(_e(format_number(sets[path][score])) if score in sets[path] else "—")
      if path in ref_sets:
        row.append(_e(ref_sets[path].get(score, "—")))
    if pair:
      if score in sets["init_directions"] and score in sets["directions"]:
        delta = sets["directions"][score] - sets["init_directions"][score]
        row.append(f'<span class="{"up" if delta > 0 else "down" if delta < 0 else ""}">{delta:+.4g}</span>')
      else:
        row.append("—")
    rows.append(row)
  return _table(header, rows, html_cells=True, cls="metrics")


def _generator_section(config: Mapping[str, Any] | None) -> str:
  from ganlatent_jax.generators.load import CONVERTED_META, TESTBED_DIR
  name = (config or {}).get("generator", "") if isinstance(config, Mapping) else ""
  if isinstance(name, Mapping):  # a GAN run: `generator` is the architecture it trains, not a file to load
    return f'<p>Trained here: <code>{_e(json.dumps(name, sort_keys=True))}</code></p>'
  if not name:
    return '<p class="muted">This run has no generator in its config.</p>'
  parts = [f"<p><code>{_e(name)}</code></p>"]
  directory = TESTBED_DIR / name.split(":", 1)[1] if name.startswith("testbed:") else pathlib.Path(name)
  meta = read_json(directory / CONVERTED_META) if directory.is_dir() else None
  if isinstance(meta, Mapping):
    gen_config = meta.get("config", {})
    facts = {k: gen_config[k] for k in ("family", "size", "style_dim", "n_mlp", "image_channels", "latent_dim",
                                        "num_classes") if k in gen_config}
    parts.append(_table(["architecture", "value"], [[k, str(v)] for k, v in facts.items()]))
  quality = read_json(directory / "quality.json") if directory.is_dir() else None
  if isinstance(quality, Mapping) and isinstance(quality.get("generated"), Mapping):
    rows = [[who, format_number(quality[who].get("coverage", float("nan"))),
             format_number(quality[who].get("mean_confidence", float("nan")))]
            for who in ("generated", "real") if isinstance(quality.get(who), Mapping)]
    parts.append("<p>Model card quality (factor classifier):</p>" +
                 _table(["images", "coverage", "mean confidence"], rows))
    if "frechet_distance" in quality:
      parts.append(f"<p>Fréchet distance (classifier features), real vs generated: "
                   f"{_e(format_number(quality['frechet_distance']))}; real vs real: "
                   f"{_e(format_number(quality.get('frechet_distance_real_vs_real', float('nan'))))}</p>")
  card = directory / "MODEL_CARD.md"
  if card.is_file():
    text = card.read_text()
    parts.append(f"<details><summary>Model card</summary><pre>{_e(text)}</pre></details>")
  samples = directory / "samples.png"
  if samples.is_file():
    parts.append(f'<figure><img alt="generator samples" src="{_data_uri(samples.read_bytes())}" '
                 f'style="max-width:420px"><figcaption>samples of the generator</figcaption></figure>')
  return "".join(parts)


def _pictures(files: Sequence[tuple[str, int]]) -> tuple[str, list[str]]:
  """Figures of every PNG of the workdir's `files` (comparisons and traversals first); also returns their paths."""
  pngs = sorted(path for path, _ in files if path.endswith(".png") and "checkpoints" not in path.split("/"))

  def rank(path: str) -> tuple[int, str]:
    name = os.path.basename(path)
    return (0 if "comparison" in name else 1 if "traversal" in path else 2, path)

  pngs.sort(key=rank)
  figures = "".join(f'<figure><a href="{_href(p)}"><img alt="{_e(p)}" src="{_href(p)}"></a>'
                    f"<figcaption>{_e(p)}</figcaption></figure>" for p in pngs)
  return figures, pngs


def _logged_images(workdir: str) -> str:
  images = read_latest_images(workdir)
  return "".join(f'<figure><img alt="{_e(tag)}" src="{_data_uri(png)}"><figcaption>{_e(tag)} at step {step}'
                 f"</figcaption></figure>" for tag, (step, png) in sorted(images.items()))


def _curves(workdir: str) -> str:
  scalars = read_scalars(workdir)
  if not scalars:
    return '<p class="muted">No scalars logged yet.</p>'
  main = [t for t in sorted(scalars) if not t.startswith("perf/")]
  perf = [t for t in sorted(scalars) if t.startswith("perf/")]
  html_main = '<div class="curves">' + "".join(svg_curve(scalars[t], t) for t in main) + "</div>"
  if perf:
    html_main += ("<details><summary>throughput</summary><div class=\"curves\">" +
                  "".join(svg_curve(scalars[t], t) for t in perf) + "</div></details>")
  return html_main


def _file_list(workdir: str, files: Sequence[tuple[str, int]]) -> str:
  from ganlatent_jax import io
  rows = []
  checkpoints = os.path.join(workdir, "checkpoints")
  for relative, size in files:
    name = relative.rsplit("/", 1)[-1]
    if name.startswith(".") or relative == REPORT_FILE or name.endswith(".tmp"):
      continue
    rows.append([f'<a href="{_href(relative)}">{_e(relative)}</a>', _e(f"{size:,} B")])
  if io.isdir(checkpoints):
    steps = sorted((name for name in io.listdir(checkpoints) if name.isdigit()), key=int)
    rows.append(['<a href="checkpoints/">checkpoints/</a>', _e("steps " + ", ".join(steps) if steps else "empty")])
  return _table(["file", "size"], rows, html_cells=True)


def _page(title: str, body: str) -> str:
  return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
          f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>'
          f"<body>{body}</body></html>\n")


# ---------------------------------------------------------------------------------------------------------------
# Pages


def render_report(workdir: str | os.PathLike) -> str:
  """The HTML of a run's report (see the module docstring); `workdir` may be a gs:// URI."""
  from ganlatent_jax import io
  root = os.fspath(workdir)
  location = root if io.is_remote(root) else os.path.realpath(root)
  run_name = os.path.basename(location.rstrip("/"))
  files = io.files_under(root, skip=("checkpoints",))
  config = read_json(os.path.join(root, "config.json"))
  has_config = isinstance(config, Mapping)
  config = config if has_config else {}
  metrics = read_json(os.path.join(root, "metrics.json"))
  results = read_json(os.path.join(root, "results.json"))
  method = next((str(source["method"]) for source in (config, results, metrics)
                 if isinstance(source, Mapping) and source.get("method")), "?")
  scalars_steps = [s for points in read_scalars(root).values() for s, _ in points]
  progress = (f"step {max(scalars_steps)} of {config.get('steps', '?')}" if scalars_steps
              else f"{config.get('steps', '?')} steps configured")
  finished = any(path in ("metrics.json", "results.json") for path, _ in files)
  stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
  pictures, _ = _pictures(files)
  logged = _logged_images(root)
  body = [f"<h1>{_e(method)} run — {_e(run_name)}</h1>",
          f'<p>{_e(progress)}; {"finished" if finished else "in progress"}. Written {_e(stamp)}. '
          f'<span class="muted">{_e(location)}</span></p>',
          "<h2>Metrics</h2>", metrics_table(score_sets(metrics), paper_reference(config)),
          *(["<h3>Per direction / per knob</h3>", lists_table(lists)] if (lists := number_lists(metrics)) else []),
          "<h2>Traversals and pictures</h2>", pictures or '<p class="muted">No pictures written yet.</p>']
  if logged:
    body += ["<h3>Logged during training</h3>", logged]
  body += ["<h2>Training curves</h2>", _curves(root),
           "<h2>Generator</h2>", _generator_section(config)]
  if isinstance(results, Mapping):
    body += ["<h2>results.json</h2>", f"<details><summary>contents</summary><pre>{_e(_brief_json(results))}"
             f"</pre></details>"]
  if metrics is not None:
    body += [f"<details><summary>metrics.json</summary><pre>{_e(_brief_json(metrics))}</pre></details>"]
  body += ["<h2>Config</h2>", f"<details open><summary>config.json</summary><pre>"
           f"{_e(json.dumps(config, indent=2, sort_keys=True))}</pre></details>" if has_config else
           '<p class="muted">No config.json in the workdir (the command writes it with the report).</p>',
           "<h2>Output files</h2>", _file_list(root, files)]
  return _page(f"{method} — {run_name}", "".join(body))


def _brief_json(payload: Any, max_list: int = 12) -> str:
  """JSON with long lists cut (eigenvalue spectra), for reading on the page; the file itself is linked."""
  def cut(node):
    if isinstance(node, list):
      shown = [cut(v) for v in node[:max_list]]
      return shown + ([f"… {len(node) - max_list} more"] if len(node) > max_list else [])
    if isinstance(node, Mapping):
      return {k: cut(v) for k, v in node.items()}
    return node
  return json.dumps(cut(payload), indent=2, sort_keys=True)


def write_report(workdir: str | os.PathLike, config: Any = None) -> str:
  """Renders the run's report and writes it atomically to workdir/report.html; returns its path.

  `config` (a ConfigDict or a dict), when given and the workdir has no config.json yet, is written there first (as
  the training loop writes it): methods without a training loop (SeFa, GANSpace, generator metrics) leave none, and
  the report — now and when rebuilt later — shows and links the config the run used.
  """
  from ganlatent_jax import io
  config_path = os.path.join(os.fspath(workdir), "config.json")
  if config is not None and not io.exists(config_path):
    if hasattr(config, "to_json_best_effort"):
      io.write_text(config_path, config.to_json_best_effort(indent=2, sort_keys=True))
    else:
      io.write_json(config_path, dict(config), sort_keys=True)
  path = os.path.join(os.fspath(workdir), REPORT_FILE)
  io.write_text(path, render_report(workdir))
  return path
