"""Reproduces the README's PS-SC tables (the paper's Table 5 claim and its ablation rows) on procedural data.

  python launch/pssc_table.py --out=/work/pssc_table                          # both datasets, seeds 0,1,2
  python launch/pssc_table.py --out=/work/pssc_table --select_from=6          # + "PS-SC + TPL": best 3 of 6 seeds
  python launch/pssc_table.py --out=/work/pssc_table --datasets=dsprites --steps=3000 -- --config.batch_size=32
  python launch/pssc_table.py --out=/work/pssc_table --table_only             # aggregate what exists

Every cell is one `python -m ganlatent_jax.main` run in its own workdir OUT/DATASET/ROW/seedS (resumable: a run
whose metrics.json exists is skipped; command.txt holds its exact command and wall time). Rows, as specs/pssc.md
§5.3 (the paper's ablations are configurations of one modular generator):
  3dshapes  PS-SC                  configs/pssc_3dshapes.py (4 SC modules × 3 codes, PS loss)
            PS only                the same with C_global modules (no SC)
            SC only (InfoGAN-L2)   SC modules, upstream's InfoGAN loss λ‖Q(G(c)) − c‖₂ instead of PS
            InfoGAN-L2 (upstream)  C_global modules and the InfoGAN loss: upstream's baseline
            InfoGAN (ours)         configs/infogan_3dshapes.py (StyleGAN2 G, Q head on D), the PS-SC rows'
                                   protocol budget
  dsprites  PS (no SC)             configs/pssc_dsprites.py (the paper's Table 5 model)
            PS-SC (SC)             C_spgroup-4-2 modules in place of C_global-2
            SC only (InfoGAN-L2)   the SC modules with the InfoGAN loss (#17's ablation row; not in the paper's
                                   dSprites table)
            InfoGAN-L2 (upstream)  C_global-2 and the InfoGAN loss
            InfoGAN (ours)         configs/infogan_dsprites.py, the PS-SC rows' protocol budget
With --select_from=N (N ≥ number of seeds), PS-SC is also trained on seeds 0..N−1 and the row "PS-SC + TPL" reports
the len(seeds) runs with the lowest TPL among those with at least --min_active active codes
(`metrics.tpl.select_by_tpl`; the paper: 10 best of 30). Scores: FactorVAE and MIG of Q on real images (the PS-SC
runs' `q`, InfoGAN's `q_head`; DCI disentanglement where the run scored it), TPL (LPIPS key `tpl`, else
`tpl_pixel`) and its active codes, and the generated-domain MIG, DCI disentanglement and FactorVAE of the codes
(G's own images labelled by the factor classifier) with the probe's and random directions' MIG and DCI beside them; for
runs whose G has SC modules, each SC code's mask area beside its TPL (`mask_records`: which codes kept a region) and, for runs that logged them, the areas over training
(`mask_curve`). Extra `--config.*` overrides after `--` go to every run. Writes table.md and table.json (every
value, the selection) in --out.
"""
from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ganlatent_jax import cli  # noqa: E402  (after the path insert: runnable from a checkout)
from ganlatent_jax.metrics import report, tpl  # noqa: E402
from ganlatent_jax import runs as table_runs  # noqa: E402
from ganlatent_jax.runs import Run  # noqa: E402

SCORES = ("FactorVAE", "FactorVAE 60/0.1", "MIG", "DCI", "TPL", "active codes", "gen. MIG", "gen. DCI",
          "gen. FactorVAE", "probe gen. MIG", "probe gen. DCI", "random gen. MIG", "random gen. DCI")
# FactorVAE: disentanglement_lib's vote batch / prune threshold (64 / 0.05, as every other table); FactorVAE 60/0.1:
# upstream PS-SC's (the paper's Table 5 protocol; metrics.json's q.factor_vae_upstream, PS-SC runs only).
# The generated-domain columns (metrics.json 'codes' and 'probe': `_common.code_axes_generated_domain`): the codes of
# G's own images against the factor classifier's labels of them, no Q, and the linear probe's ceiling and random
# directions' floor on that G.
# gen. DCI beside gen. MIG: MIG asks only that each factor have one code far ahead of the next, so a code that switches
# a collapsed G between two modes (an object / an empty frame) scores high MIG for every factor it moves; DCI's
# disentanglement asks that each code explain one factor. Both have the probe's and random directions' value beside them:
# each row has its own G, so only those say what that G's images allow.
GENERATED = (("gen. MIG", "codes", "generated_mig"), ("gen. DCI", "codes", "generated_dci_disentanglement"),
             ("gen. FactorVAE", "codes", "generated_factor_vae_eval_accuracy"),
             ("probe gen. MIG", "probe", "generated_mig"), ("probe gen. DCI", "probe", "generated_dci_disentanglement"),
             ("random gen. MIG", "random", "generated_mig"), ("random gen. DCI", "random", "generated_dci_disentanglement"))
PAPER = {  # Table 5, FactorVAE × 100 on the real datasets, 10 seeds, full-length training
    "3dshapes": {"PS-SC": "92.04 ± 6.49", "PS-SC + TPL": "93.41 ± 3.34", "InfoGAN-L2 (upstream)": "83.65 ± 9.49"},
    "dsprites": {"PS (no SC)": "83.54 ± 6.91", "PS-SC (SC)": "81.47 ± 5.39", "PS-SC + TPL": "84.22",
                 "InfoGAN-L2 (upstream)": "65.41 ± 7.03"},
}
SELECTED = "PS-SC + TPL"
FACTORS = {"3dshapes": 6, "dsprites": 5}   # the selection's default minimum of active codes (paper: act > 4 on dSprites)


class Row:
  """One table row: the config file, its overrides and the metrics.json entry holding Q's scores."""

  def __init__(self, name: str, config: str, overrides: tuple[str, ...] = (), entry: str = "q"):
    self.name, self.config, self.overrides, self.entry = name, config, overrides, entry

  @property
  def directory(self) -> str:
    return self.name.split(" (")[0].lower().replace(" ", "_").replace("-", "_")


def _modules(latent: str) -> str:
  base = cli.config_module(os.path.join(REPO, "configs", "pssc_3dshapes.py"), "pssc_3dshapes")
  return base.modules(latent)


def _infogan_row(dataset: str) -> Row:
  """Our InfoGAN, scored with the PS-SC rows' protocol budget (its own config counts 10000 FactorVAE votes, theirs
  1000: the rows would differ in their estimator's noise as well as in the method)."""
  config = f"configs/infogan_{dataset}.py"
  return Row("InfoGAN (ours)", config, table_runs.aligned_budget(config, f"configs/pssc_{dataset}.py"), entry="q_head")


def table_rows(dataset: str) -> list[Row]:
  modules = "--config.architecture.modules="
  l2 = "--config.pssc.loss=infogan_l2"
  if dataset == "3dshapes":
    config = "configs/pssc_3dshapes.py"
    return [Row("PS-SC", config), Row("PS only", config, (modules + _modules("C_global-3"),)),
            Row("SC only (InfoGAN-L2)", config, (l2,)),
            Row("InfoGAN-L2 (upstream)", config, (modules + _modules("C_global-3"), l2)),
            _infogan_row("3dshapes")]
  if dataset == "dsprites":
    config = "configs/pssc_dsprites.py"
    sc = modules + _modules("C_spgroup-4-2")
    return [Row("PS (no SC)", config), Row("PS-SC (SC)", config, (sc,)), Row("SC only (InfoGAN-L2)", config, (sc, l2)),
            Row("InfoGAN-L2 (upstream)", config, (l2,)),
            _infogan_row("dsprites")]
  raise ValueError(f"--datasets: unknown dataset {dataset!r} (3dshapes, dsprites)")


def _workdir(out: str, dataset: str, row: Row, seed: int) -> str:
  return os.path.join(out, dataset, row.directory, f"seed{seed}")


def plan(out: str, datasets, seeds, steps: int, select_from: int, extra: list[str]) -> list[Run]:
  """Every run, seed by seed; the extra seeds of the TPL selection (first row of each dataset) last."""
  runs = []
  for dataset in datasets:
    rows = table_rows(dataset)
    run_seeds = [(row, s) for s in seeds for row in rows]
    run_seeds += [(rows[0], s) for s in range(select_from) if s not in seeds]
    for row, seed in run_seeds:
      workdir = _workdir(out, dataset, row, seed)
      # Every row of a dataset labels its generated images with the same factor classifier (trained on the real
      # images with seed 0, whatever the run's seed): one cache per dataset instead of one per row saves ~4 min a cell.
      classifier_dir = os.path.join(out, dataset)
      command = [sys.executable, "-m", "ganlatent_jax.main", f"--config={row.config}", f"--workdir={workdir}",
                 f"--config.seed={seed}", "--config.progress_bar=False", *row.overrides,
                 f"--config.evaluation.generated_domain.classifier_dir={classifier_dir}", *extra]
      if steps:
        command.append(f"--config.steps={steps}")
      runs.append(Run(workdir, command, os.path.join(workdir, "metrics.json")))
  return runs


def _tpl_summary(metrics: dict) -> dict | None:
  """The TPL summary of a PS-SC run (LPIPS 'tpl' preferred over 'tpl_pixel'); None for a run without TPL."""
  for key in ("tpl", "tpl_pixel"):
    if key in metrics:
      return metrics[key]
  return None


def _scores(path: str, entry: str) -> dict[str, float]:
  metrics = report.read_json(path)
  q = report.lookup(metrics, entry)
  # `_gan_data.representation_scores`' layout: {'factor_vae': {'eval_accuracy', …}, 'mig'}
  scores = {"FactorVAE": float(report.lookup(q, "factor_vae/eval_accuracy")), "MIG": float(q["mig"])}
  if "factor_vae_upstream" in q:   # PS-SC runs evaluated from 2026-12-05 16:00 on
    scores["FactorVAE 60/0.1"] = float(q["factor_vae_upstream"]["eval_accuracy"])
  if "dci" in q:   # Q's DCI disentanglement: PS-SC runs from 2026-12-04 14:40 on
    scores["DCI"] = float(q["dci"]["disentanglement"])
  summary = _tpl_summary(metrics)
  if summary is not None:
    scores.update({"TPL": float(summary["tpl"]), "active codes": float(summary["num_active"])})
  for column, entry, key in GENERATED:   # absent in runs without the section, undefined for a G that draws one image
    value = metrics.get(entry, {}).get(key)
    if value is not None:
      scores[column] = float(value)
  return scores


def select(out: str, dataset: str, select_from: int, keep: int, min_active: int) -> dict:
  """`metrics.tpl.select_by_tpl` over the finished PS-SC runs of seeds 0..select_from−1 of `dataset`."""
  row = table_rows(dataset)[0]
  results = {}
  for seed in range(select_from):
    path = os.path.join(_workdir(out, dataset, row, seed), "metrics.json")
    if os.path.exists(path):
      summary = _tpl_summary(report.read_json(path))
      if summary is None:
        raise ValueError(f"{path}: no TPL ('tpl' or 'tpl_pixel'): the selection needs 'tpl' in "
                         f"config.evaluation.metrics")
      results[f"seed{seed}"] = summary
  return tpl.select_by_tpl(results, min_active, top_k=keep)


def aggregate(out: str, datasets, seeds, select_from: int, min_active: int) -> tuple[dict, dict]:
  """{dataset: {row: {score: [value per finished run]}}} and the TPL selections, from the files (min_active 0 =
  the dataset's number of factors)."""
  tables, selections = {}, {}
  for dataset in datasets:
    table = {}
    rows = table_rows(dataset)
    for row in rows:
      paths = [p for p in (os.path.join(_workdir(out, dataset, row, s), "metrics.json") for s in seeds)
               if os.path.exists(p)]
      if paths:
        table[row.name] = _collect([_scores(p, row.entry) for p in paths])
    if select_from:
      selection = selections[dataset] = select(out, dataset, select_from, len(seeds),
                                               min_active or FACTORS[dataset])
      paths = [os.path.join(out, dataset, rows[0].directory, name, "metrics.json") for name in selection["selected"]]
      if paths:
        table[SELECTED] = _collect([_scores(p, rows[0].entry) for p in paths])
    tables[dataset] = table
  return tables, selections


def mask_records(out: str, datasets, seeds) -> list[dict]:
  """Per finished run of a G with SC modules: each SC code's mask area beside its TPL, the active codes and the
  largest mask. From metrics.json's `mask_area` (runs evaluated from 2026-12-04 on), else computed on the run's saved
  EMA generator with the evaluation's own stream (`generators.pssc.mask_area_summary`: the same numbers)."""
  records = []
  for dataset in datasets:
    for row in table_rows(dataset):
      for seed in seeds:
        workdir = _workdir(out, dataset, row, seed)
        path, generator_dir = os.path.join(workdir, "metrics.json"), os.path.join(workdir, "generator")
        if row.entry != "q" or not os.path.exists(path):
          continue
        metrics = report.read_json(path)
        masks = metrics.get("mask_area")
        if masks is None and os.path.isdir(generator_dir):
          masks = _mask_area_of_saved_generator(generator_dir, seed)
        if not masks:
          continue
        summary = _tpl_summary(metrics) or {}
        per_dim = summary.get("per_dim")
        records.append({"run": os.path.relpath(workdir, out), "codes": masks["codes"], "area": masks["area"],
                        "largest": masks["largest"], "active": summary.get("active_dims"),
                        "tpl": [per_dim[c] for c in masks["codes"]] if per_dim is not None else None,
                        "curve": mask_curve(workdir, masks["codes"])})
  return records


MASK_TAG = "masks/area_code_{}"   # methods.pssc.mask_area_log_fn's TensorBoard tags


def mask_curve(workdir: str, codes) -> dict[str, list] | None:
  """{'steps': logged steps, 'area': per SC code its mask area at each of them} from the run's TensorBoard log
  (`methods.pssc.mask_area_log_fn`, runs started from 2026-12-04 13:00 on); None for runs that did not log them."""
  from ganlatent_jax.training.events import read_scalars
  scalars = read_scalars(workdir)
  if any(MASK_TAG.format(c) not in scalars for c in codes):
    return None
  steps = [step for step, _ in scalars[MASK_TAG.format(codes[0])]]
  return {"steps": steps, "area": [[value for _, value in scalars[MASK_TAG.format(c)]] for c in codes]}


def mask_curves_markdown(records: list[dict], points: int = 5) -> str:
  """One line per run and SC code whose areas were logged while it trained: the area at `points` logged steps
  spread from the first to the last (the header's steps are the first run's)."""
  logged = [r for r in records if r.get("curve")]
  if not logged:
    return ""
  lines = []
  for r in logged:
    steps = r["curve"]["steps"]
    picks = sorted({i * (len(steps) - 1) // max(points - 1, 1) for i in range(points)})
    for code, areas in zip(r["codes"], r["curve"]["area"]):
      cells = " → ".join(f"{areas[i]:.3f}" for i in picks)
      lines.append(f"| {r['run']} | {code} | {', '.join(str(steps[i]) for i in picks)} | {cells} |")
  return "\n".join(["| run | SC code | steps | mask area at those steps |", "| --- | --- | --- | --- |", *lines])


MASKS_STREAM = 13   # methods.pssc.STREAMS['masks'] (a table never imports a method; tests/test_report.py pins the two)


def _mask_area_of_saved_generator(directory: str, seed: int) -> dict:
  import jax
  from ganlatent_jax import generators
  from ganlatent_jax.generators import pssc as pssc_generators
  return pssc_generators.mask_area_summary(generators.load(directory), jax.random.key(seed + MASKS_STREAM))


def masks_markdown(records: list[dict]) -> str:
  """One line per run: `code: area (TPL)` for each SC code, the active codes, the code with the largest mask."""
  if not records:
    return ""
  lines = ["| run | SC code: mask area (TPL) | active codes | largest mask |", "| --- | --- | --- | --- |"]
  for r in records:
    tpl_values = r["tpl"] or [None] * len(r["codes"])
    cells = ", ".join(f"{c}: {a:.3f}" + (f" ({t:.3f})" if t is not None else "")
                      for c, a, t in zip(r["codes"], r["area"], tpl_values))
    active = "—" if r["active"] is None else ", ".join(map(str, r["active"])) or "none"
    lines.append(f"| {r['run']} | {cells} | {active} | {r['largest']} |")
  return "\n".join(lines)


def _collect(runs: list[dict[str, float]]) -> dict[str, list[float]]:
  return {score: [r[score] for r in runs if score in r] for score in SCORES}


def markdown(tables: dict, datasets) -> str:
  return "\n\n".join(report.markdown_table(tables[dataset], SCORES, first_column=f"{dataset} model",
                                           last_column=("paper FactorVAE ×100", PAPER[dataset]))
                     for dataset in datasets)


def selections_markdown(selections: dict) -> str:
  """One line per dataset: which PS-SC seeds the TPL selection kept, in rank order, and why the others were left out
  (a selection that keeps nothing — every model below the active-code floor — says so instead of a missing row)."""
  lines = []
  for dataset, selection in selections.items():
    ranked = ", ".join(f"{r['name']} (TPL {r[selection['key']]:.3f}, {r['num_active']} active)"
                       for r in selection["ranked"])
    excluded = ", ".join(f"{name} ({reason})" for name, reason in sorted(selection["excluded"].items()))
    kept = ", ".join(selection["selected"]) or "none"
    lines.append(f"* {dataset} {SELECTED}: kept {kept}; ranked by TPL: {ranked or 'none'}; "
                 f"excluded: {excluded or 'none'} (min_active = {selection['min_active']})")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = table_runs.table_parser(__doc__)
  parser.add_argument("--datasets", default="3dshapes,dsprites")
  parser.add_argument("--steps", type=int, default=0, help="training steps of every run (0 = each config's)")
  parser.add_argument("--select_from", type=int, default=0,
                      help="also train PS-SC on seeds 0..N-1 and report the best len(seeds) by TPL (0 = off)")
  parser.add_argument("--min_active", type=int, default=0,
                      help="the selection's minimum of active codes (0 = the dataset's number of factors)")
  args, extra = table_runs.parse_with_overrides(parser, argv)
  datasets = [d for d in args.datasets.split(",") if d]
  seeds = args.seeds
  if args.select_from and args.select_from < len(seeds):
    parser.error(f"--select_from={args.select_from} must be at least the number of seeds ({len(seeds)})")
  for dataset in datasets:
    table_rows(dataset)   # an unknown dataset fails before any run
  code = table_runs.run_table(args, lambda: plan(args.out, datasets, seeds, args.steps, args.select_from, extra))
  if code:
    return code
  tables, selections = aggregate(args.out, datasets, seeds, args.select_from, args.min_active)
  masks = mask_records(args.out, datasets, seeds)
  text = markdown(tables, datasets)
  if selections:
    text += "\n\nThe TPL selection (PS-SC seeds 0…select_from − 1 finished so far):\n\n" + selections_markdown(selections)
  if masks:
    text += "\n\nSC mask areas (untrained ≈ 0.03) beside each code's TPL:\n\n" + masks_markdown(masks)
    curves = mask_curves_markdown(masks)
    if curves:
      text += "\n\nSC mask areas while G trained (TensorBoard masks/*):\n\n" + curves
  report.write_table(args.out, {"seeds": seeds, "steps": args.steps, "select_from": args.select_from,
                                 "extra": extra, "tables": tables, "selections": selections, "masks": masks}, text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
