"""Reproduces the README's UD-GAN table (the paper's Table 1 claim: β-VAE score InfoGAN 88.4, UD-GAN 99.1,
UD-GAN-G 100.0) on procedural dSprites.

  python launch/udgan_table.py --out=/work/udgan_table                     # seeds 0,1,2, each config's steps
  python launch/udgan_table.py --out=/work/udgan_table --steps=3000     # the README's budget (configs: 10000)
  python launch/udgan_table.py --out=/work/udgan_table --table_only        # aggregate what exists

Every cell is one `python -m ganlatent_jax.main` run in its own workdir OUT/ROW/seedS (resumable: a run whose
metrics.json exists is skipped; command.txt holds its exact command and wall time). Rows:
  InfoGAN                   configs/infogan_dsprites.py (its G recipe: the testbed's) at UD-GAN's batch size and
                            evaluation budget (INFOGAN_AS_UDGAN), scores of its Q head (β-VAE asked for, as UD-GAN's)
  UD-GAN                    configs/udgan_dsprites.py, scores of the concatenated siamese outputs
  UD-GAN-G                  configs/udgan_g_dsprites.py (knobs 7, 8, 9 guided by centre of mass x, y and size)
  guidance measures only    the UD-GAN-G runs' `guidance_only` entry: the same protocol on the three guidance
                            measures themselves — how much of UD-GAN-G's score the guidance alone gives
Scores on real procedural images (the paper's representation): β-VAE (Higgins) accuracy, FactorVAE accuracy, MIG.
A second table, in the generated domain (the instrument's scores, no encoder): each generator's own images labelled
by the factor classifier trained on procedural dSprites, the code each image was drawn with as its representation —
InfoGAN's c, UD-GAN's knobs — and, per generator, its probe (one least-squares direction of z per factor: the best a
linear code does on that generator) and random rows (random orthonormal directions of z: the floor): gen. MIG,
DCI, FactorVAE. Extra `--config.*` overrides after `--` go to every run. Writes table.md and table.json in --out.
"""
from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ganlatent_jax.metrics import report  # noqa: E402  (after the path insert: runnable from a checkout)
from ganlatent_jax import runs as table_runs  # noqa: E402
from ganlatent_jax.runs import Run  # noqa: E402

SCORES = ("β-VAE", "FactorVAE", "MIG")
KEYS = {"β-VAE": "beta_vae/eval_accuracy", "FactorVAE": "factor_vae/eval_accuracy", "MIG": "mig"}
PAPER = {"InfoGAN": "88.4", "UD-GAN": "99.1", "UD-GAN-G": "100.0"}   # Table 1, β-VAE score × 100, real dSprites
ALL_METRICS = '--config.evaluation.metrics=("beta_vae","factor_vae","mig")'


# InfoGAN's own config (batch 16, disentanglement_lib's 10000 FactorVAE votes) would make its row differ from
# UD-GAN's (batch 32, 2000 votes) in two more ways than the method: INFOGAN_AS_UDGAN aligns both. The G recipes differ
# on the same G/D networks, each the one that method learns under (InfoGAN collapses at DCGAN's 2e-4, UD-GAN stays
# black at the testbed's G recipe): the measurements are in configs/infogan_dsprites.py and configs/udgan_dsprites.py.
INFOGAN_AS_UDGAN = table_runs.aligned_budget("configs/infogan_dsprites.py", "configs/udgan_dsprites.py")
# row: (run directory, config, overrides, metrics.json entry)
ROWS = {
    "InfoGAN": ("infogan", "configs/infogan_dsprites.py", (ALL_METRICS, *INFOGAN_AS_UDGAN), "q_head"),
    "UD-GAN": ("udgan", "configs/udgan_dsprites.py", (), "siamese"),
    "UD-GAN-G": ("udgan_g", "configs/udgan_g_dsprites.py", (), "siamese"),
    "guidance measures only": ("udgan_g", None, (), "guidance_only"),   # read from the UD-GAN-G runs
}

GENERATED_SCORES = ("gen. MIG", "gen. DCI", "gen. FactorVAE")
# generated-domain rows: (run directory, metrics.json entry) — each generator's code, its probe and random rows
GENERATED_ROWS = {f"{row}: {entry}": (directory, entry)
                  for row, directory, code in (("InfoGAN", "infogan", "codes"), ("UD-GAN", "udgan", "knobs"),
                                               ("UD-GAN-G", "udgan_g", "knobs"))
                  for entry in (code, "probe", "random")}


def plan(out: str, seeds, steps: int, extra: list[str]) -> list[Run]:
  runs = []
  for seed in seeds:
    for directory, config, overrides, _ in ROWS.values():
      if config is None:
        continue
      workdir = os.path.join(out, directory, f"seed{seed}")
      command = [sys.executable, "-m", "ganlatent_jax.main", f"--config={config}", f"--workdir={workdir}",
                 f"--config.seed={seed}", "--config.progress_bar=False", *overrides, *extra]
      if steps:
        command.append(f"--config.steps={steps}")
      runs.append(Run(workdir, command, os.path.join(workdir, "metrics.json")))
  return runs


def aggregate(out: str, seeds) -> dict[str, dict[str, list[float]]]:
  """{row: {score: [value per finished run]}} from the files; a score a run does not have (e.g. MIG on too few
  points, 'mig_error') is left out of that row."""
  return report.collect_present({row: [(os.path.join(out, directory, f"seed{seed}", "metrics.json"), entry)
                                       for seed in seeds]
                                 for row, (directory, _, _, entry) in ROWS.items()}, SCORES, keys=KEYS)


def aggregate_generated(out: str, seeds) -> dict[str, dict[str, list[float]]]:
  """The generated-domain table from the same files (rows whose runs predate these scores are left out)."""
  return report.collect_present({row: [(os.path.join(out, directory, f"seed{seed}", "metrics.json"), entry)
                                       for seed in seeds]
                                 for row, (directory, entry) in GENERATED_ROWS.items()}, GENERATED_SCORES)


def markdown(table: dict, generated: dict | None = None) -> str:
  text = report.markdown_table(table, SCORES, first_column="dSprites model", last_column=("paper β-VAE ×100", PAPER))
  if generated:
    text += "\n\n" + report.markdown_table(generated, GENERATED_SCORES, first_column="generated domain: code")
  return text


def main(argv=None) -> int:
  parser = table_runs.table_parser(__doc__)
  parser.add_argument("--steps", type=int, default=0, help="training steps of every run (0 = each config's)")
  args, extra = table_runs.parse_with_overrides(parser, argv)
  seeds = args.seeds
  code = table_runs.run_table(args, lambda: plan(args.out, seeds, args.steps, extra))
  if code:
    return code
  table, generated = aggregate(args.out, seeds), aggregate_generated(args.out, seeds)
  text = markdown(table, generated)
  report.write_table(args.out, {"seeds": seeds, "steps": args.steps, "extra": extra, "table": table,
                                "generated_domain": generated}, text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
