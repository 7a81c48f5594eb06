"""Reproduces the README's control table (Plumerault et al., issue 19): on testbed:dsprites, for each factor (x, y,
scale), how precisely one direction sets the factor (the paper's control measure, `methods._control`), for
Plumerault's directions, the best SeFa / GANSpace / LD direction for that factor, a supervised probe and random
directions, over seeds.

  python launch/plumerault_table.py --out=/work/plumerault_table                 # seeds 0,1,2
  python launch/plumerault_table.py --out=/work/plumerault_table --ablation      # + Figs. 6-8 rows
  python launch/plumerault_table.py --out=/work/plumerault_table --ld_steps=3000 --num_trajectories=96
  python launch/plumerault_table.py --out=/work/plumerault_table --table_only    # aggregate what exists

Every cell is a command in its own workdir OUT/ROW/seedS (resumable; command.txt holds its exact command and wall
time). Rows:
  Plumerault                   configs/plumerault_dsprites.py (lattice g, paper mode), seed s
  Plumerault (upstream parity) the same with --config.upstream_parity=True
  SeFa                         first_layer on the DCGAN's projection, K = 16 (seed-independent: one run; the
                               control evaluation's latents change with the seed)
  GANSpace                     PCA of the 'project' activations mapped back to z, K = 16, seed s
  LD                           configs/ld_dsprites.py (K = 16, ortho), seed s, --ld_steps steps
  probe (supervised)           least squares of the measured factor on z (the SeFa evaluation's probe row)
  random, best of 16           16 random orthonormal directions with the same selection (same evaluation)
  random, one direction        one random direction, no selection (the Plumerault run's random row)
With --ablation (reading notes §2.6 b, c): Plumerault with the plain MSE, without the norm constraint, with both (the
2×2 of Figs. 6/7 with the paper's blurred loss and ball), with direct inversion (every target from z0, the same
steps per target) instead of the recursive scheme, and with upstream's direction fit alone (an L2 penalty 0.1 on
an unnormalised v; the same trajectories as the main row, so a copy of its trajectories/ makes the cell a refit).
With --ablation also what each Plumerault row's inversions reached (the Figs. 6/7 analogue: unblurred masked MSE to
the targets, ‖ẑ‖/√d, the fraction outside the ball, the fit's R²; `inversion_scores`).
For K-direction methods the column is chosen per factor by rel_std on |t| ≤ 2 over 100 selection latents, then
scored on 200 other latents (`configs/evaluate_control_dsprites.py`). Columns (core grid |t| ≤ 2 unless named):
rel_std (≈ 1 no control, 0 perfect), rel_std on the paper's grid t ∈ [−5, 5], r2_t, |ρ|, gain (the factor's move
from t = −2 to 2 in units of its spread), and the largest |gain| of a side effect (the other two factors). Writes table.md and table.json in --out.
"""
from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ganlatent_jax.metrics import report  # noqa: E402  (after the path insert: runnable from a checkout)
from ganlatent_jax import runs as table_runs  # noqa: E402
from ganlatent_jax.runs import Run  # noqa: E402

FACTORS = {"horizontal_position": "x", "vertical_position": "y", "scale": "scale"}
SCORES = {"rel_std": "summary/core/rel_std", "rel_std (t ≤ 5)": "summary/full/rel_std", "r2_t": "summary/core/r2_t",
          "|ρ|": "summary/core/abs_spearman", "gain": "summary/core/gain",
          "side |gain|": "side_effect_abs_gain"}
PLUMERAULT = "configs/plumerault_dsprites.py"
CONTROL = "configs/evaluate_control_dsprites.py"
NO_EXTRAS = "--config.evaluation.generated_domain.enabled=False"   # MIG & co. are not this table's business


class Row:
  """A table row: where its control rows are (`entry` inside a metrics.json) and how its runs are made."""

  def __init__(self, name: str, directory: str, entry: str, source: str = ""):
    self.name, self.directory, self.entry = name, directory, entry
    self.source = source or directory     # the row whose runs hold this row's metrics.json


def rows(ablation: bool) -> list[Row]:
  plumerault = [Row("Plumerault", "plumerault", "control/directions"),
                Row("Plumerault (upstream parity)", "plumerault_parity", "control/directions")]
  if ablation:
    plumerault += [Row("Plumerault, MSE loss (Figs. 6/7)", "plumerault_mse", "control/directions"),
                   Row("Plumerault, no norm constraint (Fig. 7)", "plumerault_free", "control/directions"),
                   Row("Plumerault, MSE loss, no norm constraint (Fig. 7)", "plumerault_mse_free",
                       "control/directions"),
                   Row("Plumerault, direct inversion (Fig. 8)", "plumerault_direct", "control/directions"),
                   Row("Plumerault, upstream's fit (L2 0.1 on v)", "plumerault_fit_upstream", "control/directions")]
  return plumerault + [
      Row("SeFa (best of 16)", "sefa", "control/directions"), Row("GANSpace (best of 16)", "ganspace",
                                                                  "control/directions"),
      Row("LD (best of 16)", "ld", "control/directions"),
      Row("probe (supervised)", "probe", "control/probe", source="sefa"),
      Row("random (best of 16)", "random16", "control/random", source="sefa"),
      Row("random (one direction)", "random1", "control/random", source="plumerault")]


PLUMERAULT_OVERRIDES = {"plumerault": (), "plumerault_parity": ("--config.upstream_parity=True",),
                        "plumerault_mse": ("--config.trajectories.loss=mse",),
                        "plumerault_free": ("--config.trajectories.constraint=none",),
                        "plumerault_mse_free": ("--config.trajectories.loss=mse", "--config.trajectories.constraint=none"),
                        "plumerault_direct": ("--config.trajectories.scheme=direct",),
                        # upstream's direction fit alone: Dense(1, kernel_regularizer=l2(0.1)), v not normalised
                        "plumerault_fit_upstream": ("--config.fit.mode=upstream",)}


def metrics_path(out: str, row: Row, seed: int) -> str:
  """The metrics.json holding a row's control rows: the Plumerault run itself, or the control evaluation of the
  directions of a SeFa / GANSpace / LD run."""
  workdir = os.path.join(out, row.source, f"seed{seed}")
  return os.path.join(workdir, "metrics.json" if row.source.startswith("plumerault") else "control/metrics.json")


def plan(out: str, seeds, ablation: bool, ld_steps: int, num_trajectories: int) -> list[Run]:
  python = sys.executable
  runs = []
  for seed in seeds:
    for directory, overrides in PLUMERAULT_OVERRIDES.items():
      if directory != "plumerault" and directory != "plumerault_parity" and not ablation:
        continue
      workdir = os.path.join(out, directory, f"seed{seed}")
      command = [python, "-m", "ganlatent_jax.main", f"--config={PLUMERAULT}", f"--workdir={workdir}",
                 f"--config.seed={seed}", NO_EXTRAS, *overrides]
      if num_trajectories:
        command.append(f"--config.trajectories.num_trajectories={num_trajectories}")
      runs.append(Run(workdir, command, os.path.join(workdir, "metrics.json")))
    trainings = {
        "sefa": ["configs/sefa_3dshapes.py", "--config.variant=first_layer", "--config.truncation=1.0"],
        "ganspace": ["configs/ganspace_3dshapes.py", "--config.layer=project", "--config.truncation=1.0",
                     "--config.num_samples=20000", f"--config.seed={seed}"],
        "ld": ["configs/ld_dsprites.py", f"--config.seed={seed}", f"--config.steps={ld_steps}",
               "--config.progress_bar=False"]}
    for directory, (config, *overrides) in trainings.items():
      # SeFa is deterministic: one run (seed 0's workdir) serves every seed's evaluation.
      train_dir = os.path.join(out, directory, f"seed{seeds[0] if directory == 'sefa' else seed}")
      found = os.path.join(train_dir, "directions.npz")
      if directory != "sefa" or seed == seeds[0]:
        runs.append(Run(train_dir, [python, "-m", "ganlatent_jax.main", f"--config={config}",
                                    f"--workdir={train_dir}", "--config.generator=testbed:dsprites",
                                    "--config.num_directions=16", "--config.evaluation.enabled=False", *overrides],
                        found))
      control_dir = os.path.join(out, directory, f"seed{seed}", "control")
      runs.append(Run(control_dir, [python, "-m", "ganlatent_jax.evaluate", f"--config={CONTROL}",
                                    f"--workdir={control_dir}", f"--config.directions={found}",
                                    f"--config.seed={seed}"],
                      os.path.join(control_dir, "metrics.json"), requires=found))
  return runs


def aggregate(out: str, seeds, ablation: bool) -> dict:
  """{factor: {row: {score: [value per finished seed]}}} from the metrics.json files."""
  tables = {}
  for factor in FACTORS:
    table = {}
    for row in rows(ablation):
      values = {score: [] for score in SCORES}
      for seed in seeds:
        path = metrics_path(out, row, seed)
        if not os.path.exists(path):
          continue
        result = report.lookup(report.read_json(path), f"{row.entry}/{factor}")
        for score, key in SCORES.items():
          values[score].append(float(report.lookup(result, key)))
      if any(values.values()):
        table[row.name] = values
    tables[factor] = table
  return tables


INVERSION = ("masked MSE", "‖z‖/√d", "outside ball", "fit R²")   # the Figs. 6/7 analogue (reading notes §2.6 b)


def inversion_scores(workdir: str, transform: str, generator) -> dict[str, float]:
  """What a Plumerault run's inversions reached, comparable across its loss and constraint settings: the median
  unblurred MSE of G(ẑ) to its target on the target's defined pixels (σ = 0 of Eq. 3, whatever loss the run used;
  kept records), the median ‖ẑ‖/√d, the fraction of ẑ outside the ball ‖z‖ ≤ √d, and the R² of the fit of g."""
  import jax.numpy as jnp
  import numpy as np
  from ganlatent_jax import inversion
  with np.load(os.path.join(workdir, "trajectories", f"{transform}.npz")) as data:
    records = {k: data[k] for k in ("z0", "z", "t", "kept")}
  fill = float(report.lookup(report.read_json(os.path.join(workdir, "config.json")), "trajectories/fill"))
  kept = records["kept"].astype(bool)
  z0, z, t = (jnp.asarray(records[k][kept]) for k in ("z0", "z", "t"))
  errors = []
  for start in range(0, len(z), 256):   # bounded memory: 1728 kept records × 2 images of 64²
    part = slice(start, start + 256)
    targets, masks, _ = inversion.transform(transform, generator(z0[part]), t[part],
                                            output_range=tuple(generator.info.output_range), fill=fill)
    errors.append(np.asarray(inversion.blurred_loss(generator(z[part]), targets, 0.0, masks)))
  norms = np.linalg.norm(np.asarray(z), axis=1) / np.sqrt(z.shape[1])
  fit = report.lookup(report.read_json(os.path.join(workdir, "results.json")), f"transforms/{transform}/fit_r2")
  return {"masked MSE": float(np.median(np.concatenate(errors))), "‖z‖/√d": float(np.median(norms)),
          "outside ball": float(np.mean(norms > 1.0 + 1e-4)), "fit R²": float(fit)}


def aggregate_inversions(out: str, seeds, ablation: bool, generator_name: str = "testbed:dsprites") -> dict:
  """{factor: {Plumerault row: {score: [value per finished seed]}}} of `inversion_scores` (rows whose runs kept
  their trajectories)."""
  from ganlatent_jax import generators
  generator, tables = None, {}
  for factor in FACTORS:
    table = {}
    for row in rows(ablation):
      if row.directory not in PLUMERAULT_OVERRIDES:   # only Plumerault runs invert
        continue
      values = {score: [] for score in INVERSION}
      for seed in seeds:
        workdir = os.path.join(out, row.directory, f"seed{seed}")
        if not (os.path.exists(os.path.join(workdir, "metrics.json"))   # finished (a running one has some npz)
                and os.path.exists(os.path.join(workdir, "trajectories", f"{factor}.npz"))):
          continue
        generator = generator or generators.load(generator_name)
        for score, value in inversion_scores(workdir, factor, generator).items():
          values[score].append(value)
      if any(values.values()):
        table[row.name] = values
    if table:
      tables[factor] = table
  return tables


def markdown(tables: dict) -> str:
  return "\n\n".join(report.markdown_table(table, list(SCORES), first_column=f"{FACTORS[factor]} ({factor})")
                     for factor, table in tables.items())


def main(argv=None) -> int:
  parser = table_runs.table_parser(__doc__)
  parser.add_argument("--ablation", action="store_true", help="also the Figs. 6-8 rows")
  parser.add_argument("--ld_steps", type=int, default=3000, help="LD's training steps (upstream: 100k)")
  parser.add_argument("--num_trajectories", type=int, default=0,
                      help="trajectories per transformation of the Plumerault runs (0 = the config's)")
  args = parser.parse_args(argv)
  seeds = args.seeds
  code = table_runs.run_table(args, lambda: plan(args.out, seeds, args.ablation, args.ld_steps, args.num_trajectories))
  if code:
    return code
  tables = aggregate(args.out, seeds, args.ablation)
  text = markdown(tables)
  inversions = aggregate_inversions(args.out, seeds, args.ablation) if args.ablation else {}
  if inversions:
    text += "\n\nWhat the inversions reached (`inversion_scores`):\n\n" + "\n\n".join(
        report.markdown_table(table, list(INVERSION), first_column=f"{FACTORS[factor]} ({factor})")
        for factor, table in inversions.items())
  report.write_table(args.out, {"seeds": seeds, "ablation": args.ablation, "ld_steps": args.ld_steps,
                                 "num_trajectories": args.num_trajectories, "tables": tables,
                                 "inversions": inversions}, text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
