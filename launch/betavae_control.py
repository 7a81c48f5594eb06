"""Reproduces Plumerault et al.'s Fig. 5 claim on procedural dSprites: control of a factor improves as the latent space
gets more disentangled (β-VAE decoders, β ∈ {1, 5, 10, 20}: the std of the position at fixed t falls as β grows).

  python launch/betavae_control.py --out=/work/betavae_control                       # β 1,5,10,20 × seeds 0,1,2
  python launch/betavae_control.py --out=/work/betavae_control --steps=5000 --workers=2
  python launch/betavae_control.py --out=/work/betavae_control --transforms=horizontal_position,vertical_position
  python launch/betavae_control.py --out=/tmp/betavae_control_quick --quick          # smoke test: seconds per run
  python launch/betavae_control.py --out=/work/betavae_control --table_only          # aggregate what exists

Per (β, seed) two `python -m ganlatent_jax.main` runs, each in its own workdir (resumable: a run whose metrics.json
exists is skipped; command.txt holds its exact command and wall time):
  OUT/betaB/seedS/betavae     configs/betavae_dsprites.py --config.beta=B (--steps: its training steps; 0 = the
                              config's CPU budget of 2e4, the paper trains 1e5 = configs/betavae_dsprites.py:paper)
  OUT/betaB/seedS/plumerault  configs/plumerault_dsprites.py on that decoder (--config.generator=.../generator, written
                              when the β-VAE finishes training), the chosen transforms, no generated-domain scores
The table, one row per β (mean ± sample std over seeds): for each transform the control measure of the found direction
(metrics.json control rows on the core |t| ≤ 2 grid: rel_std = mean std over t / the factor's std on unedited
samples, mean_std, |Spearman ρ| of t and the per-t median; the R² of the paper's erf shape a·erf(b·t/√2) + c of the
median curve on t ∈ [−5, 5]), the probe direction's rel_std, and the β-VAE's own MIG (encoder mean), active dimensions and reconstruction (nats). table.json
also holds every value and, per transform, Spearman's ρ between β and rel_std over all runs (the claim: ρ < 0), and
between the β-VAE's MIG and rel_std (`mig_trend`: the claim's own variable when β does not move MIG).
Extra `--config.*` overrides after `--` go to the β-VAE runs only. Writes table.md and table.json in --out.

Cost per (β, seed), measured 2026-12-02 on the 2-core CPU beside another training (load ≈ 4.6, runs at nice 5): the
β-VAE at batch 128 runs 1.1 steps/s, so 2e4 steps ≈ 5 h (the paper's 1e5 ≈ 25 h), its evaluation ≈ 1 min;
Plumerault on its decoder (one transform, 192 trajectories) ≈ 5 min. 4 β × 3 seeds at 2e4 steps ≈ 60 h in series;
--steps=5000 ≈ 16 h. --quick: about 3 min for 2 β × 1 seed.
"""
from __future__ import annotations

import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ganlatent_jax.metrics import report  # noqa: E402  (after the path insert: runnable from a checkout)
from ganlatent_jax import runs as table_runs  # noqa: E402
from ganlatent_jax.runs import Run  # noqa: E402

BETAS = (1.0, 5.0, 10.0, 20.0)
TRANSFORMS = ("horizontal_position", "vertical_position", "scale")
SHORT = {"horizontal_position": "x", "vertical_position": "y", "scale": "scale"}
CONTROL = (("rel_std", "rel_std"), ("std", "mean_std"), ("abs ρ", "abs_spearman"))   # (column, summary key)
VAE_SCORES = (("MIG", "encoder_mean/mig"), ("active dims", "active_dims"), ("recon (nats)", "reconstruction"))
GRID = "core"   # the summary on |t| ≤ core_t_max, the spec's headline (A16); runs without it have one summary


def _beta_name(beta: float) -> str:
  return f"beta{beta:g}"


def workdirs(out: str, beta: float, seed: int) -> tuple[str, str]:
  cell = os.path.join(out, _beta_name(beta), f"seed{seed}")
  return os.path.join(cell, "betavae"), os.path.join(cell, "plumerault")


def plan(out: str, betas, seeds, steps: int, transforms, quick: bool = False, extra=()) -> list[Run]:
  """Per (β, seed): the β-VAE run, then Plumerault's on its decoder (it waits for generator/generator.json)."""
  variant = ":quick" if quick else ""
  tuple_text = "(" + "".join(f'"{t}",' for t in transforms) + ")"
  runs = []
  for beta in betas:
    for seed in seeds:
      vae_dir, control_dir = workdirs(out, beta, seed)
      command = [sys.executable, "-m", "ganlatent_jax.main", f"--config=configs/betavae_dsprites.py{variant}",
                 f"--workdir={vae_dir}", f"--config.seed={seed}", f"--config.beta={beta:g}",
                 "--config.progress_bar=False", *extra]
      if steps:
        command.append(f"--config.steps={steps}")
      runs.append(Run(vae_dir, command, os.path.join(vae_dir, "metrics.json")))
      decoder = os.path.join(vae_dir, "generator")
      runs.append(Run(control_dir, [
          sys.executable, "-m", "ganlatent_jax.main", f"--config=configs/plumerault_dsprites.py{variant}",
          f"--workdir={control_dir}", f"--config.seed={seed}", f"--config.generator={decoder}",
          f"--config.transforms={tuple_text}", "--config.evaluation.generated_domain.enabled=False"],
          os.path.join(control_dir, "metrics.json"), requires=os.path.join(decoder, "generator.json")))
  return runs


def control_result(metrics: dict, transform: str) -> tuple[dict, dict | None]:
  """(row of the found direction, row of the probe or None) of `transform` in a Plumerault metrics.json
  ('control/directions/T', 'control/probe/T'; a row holds the GRID summary and the erf fit of its median curve)."""
  control = report.lookup(metrics, "control")
  return report.lookup(control, f"directions/{transform}"), control.get("probe", {}).get(transform)


def columns(transforms) -> list[str]:
  names = []
  for transform in transforms:
    short = SHORT.get(transform, transform)
    names += [f"{short} {name}" for name, _ in CONTROL] + [f"{short} erf R²", f"{short} probe rel_std"]
  return names + [name for name, _ in VAE_SCORES]


def run_scores(out: str, beta: float, seed: int, transforms) -> dict[str, float]:
  """{column: value} of one (β, seed) from its files: the control columns once its Plumerault run finished, the
  β-VAE's scores once it finished (a score it could not compute, e.g. MIG on too few points, is left out)."""
  scores = {}
  vae_dir, control_dir = workdirs(out, beta, seed)
  path = os.path.join(control_dir, "metrics.json")
  if os.path.exists(path):
    metrics = report.read_json(path)
    for transform in transforms:
      short = SHORT.get(transform, transform)
      found, probe = control_result(metrics, transform)
      for name, key in CONTROL:
        scores[f"{short} {name}"] = float(found["summary"][GRID][key])
      if "erf_fit" in found:   # Fig. 5's shape: the median factor along the direction ≈ a·erf(b·t/√2) + c
        scores[f"{short} erf R²"] = float(found["erf_fit"]["r2"])
      if probe is not None:
        scores[f"{short} probe rel_std"] = float(probe["summary"][GRID]["rel_std"])
  path = os.path.join(vae_dir, "metrics.json")
  if os.path.exists(path):
    metrics = report.read_json(path)
    for name, key in VAE_SCORES:
      try:
        scores[name] = float(report.lookup(metrics, key))
      except KeyError:   # e.g. MIG on too few points ('mig_error'), or not asked for
        pass
  return scores


def aggregate(out: str, betas, seeds, transforms) -> dict[str, dict[str, list[float]]]:
  """{'β = B': {column: [value per finished run]}} from the files."""
  table = {}
  for beta in betas:
    runs = [run_scores(out, beta, seed, transforms) for seed in seeds]
    values = {name: [run[name] for run in runs if name in run] for name in columns(transforms)}
    if any(values.values()):
      table[f"β = {beta:g}"] = values
  return table


def trend(table: dict, transforms) -> dict[str, float | None]:
  """Per transform, Spearman's ρ between β and rel_std over every finished run (the claim: negative)."""
  from scipy import stats
  result = {}
  for transform in transforms:
    column = f"{SHORT.get(transform, transform)} rel_std"
    pairs = [(float(row.split("= ")[1]), v) for row, values in table.items() for v in values.get(column, [])
             if math.isfinite(v)]
    betas = {b for b, _ in pairs}
    result[transform] = (float(stats.spearmanr(*zip(*pairs)).statistic) if len(betas) > 1 and len(pairs) > 2
                         else None)
  return result


def mig_trend(out: str, betas, seeds, transforms) -> dict[str, float | None]:
  """Per transform, Spearman's ρ between the β-VAE's own MIG and rel_std, over every run that has both. β is the
  paper's proxy for disentanglement; when a budget leaves MIG flat across β, this is the claim's own variable."""
  from scipy import stats
  runs = [run_scores(out, beta, seed, transforms) for beta in betas for seed in seeds]
  result = {}
  for transform in transforms:
    column = f"{SHORT.get(transform, transform)} rel_std"
    pairs = [(run["MIG"], run[column]) for run in runs
             if "MIG" in run and column in run and math.isfinite(run["MIG"]) and math.isfinite(run[column])]
    result[transform] = float(stats.spearmanr(*zip(*pairs)).statistic) if len(pairs) > 2 else None
  return result


def markdown(table: dict, transforms, trends: dict, mig_trends: dict | None = None) -> str:
  # 4 digits: a position std is a few thousandths of the frame
  text = report.markdown_table(table, columns(transforms), first_column="β-VAE decoder", digits=4)
  show = lambda value: "—" if value is None else f"{value:.3f}"  # noqa: E731
  lines = [f"Spearman ρ(β, {SHORT.get(t, t)} rel_std) over runs: {show(trends[t])}" for t in transforms]
  lines += [f"Spearman ρ(MIG, {SHORT.get(t, t)} rel_std) over runs: {show(mig_trends[t])}" for t in transforms
            if mig_trends is not None]
  return text + "\n\n" + "\n".join(lines) + "\n(the paper's Fig. 5: the std falls as β — disentanglement — grows, ρ < 0)"


def main(argv=None) -> int:
  parser = table_runs.table_parser(__doc__)
  parser.add_argument("--betas", default=",".join(f"{b:g}" for b in BETAS))
  parser.add_argument("--steps", type=int, default=0, help="β-VAE training steps (0 = the config's CPU budget)")
  parser.add_argument("--transforms", default="horizontal_position", help=f"comma-separated, of {TRANSFORMS}")
  parser.add_argument("--quick", action="store_true", help="smoke test: both configs' :quick variants")
  args, extra = table_runs.parse_with_overrides(parser, argv)
  unknown = [a for a in extra if not a.startswith("--config.")]
  if unknown:
    parser.error(f"unknown argument(s) {unknown}; overrides for the β-VAE runs are --config.KEY=VALUE after --")
  betas = [float(b) for b in args.betas.split(",") if b]
  seeds = args.seeds
  transforms = [t for t in args.transforms.split(",") if t]
  bad = [t for t in transforms if t not in TRANSFORMS]
  if bad or not transforms:
    parser.error(f"--transforms={args.transforms!r}: expected names of {TRANSFORMS}")
  if not betas or min(betas) < 0:
    parser.error(f"--betas={args.betas!r}: expected non-negative numbers")
  code = table_runs.run_table(args, lambda: plan(args.out, betas, seeds, args.steps, transforms, args.quick, extra))
  if code:
    return code
  table = aggregate(args.out, betas, seeds, transforms)
  trends = trend(table, transforms)
  mig_trends = mig_trend(args.out, betas, seeds, transforms)
  text = markdown(table, transforms, trends, mig_trends)
  report.write_table(args.out, {"betas": betas, "seeds": seeds, "steps": args.steps, "quick": args.quick,
                                 "transforms": transforms, "extra": extra, "table": table, "trend": trends,
                                 "mig_trend": mig_trends}, text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
