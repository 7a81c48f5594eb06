"""Reproduces the README's LatentCLR table: LatentCLR's global directions beside SeFa's and GANSpace's (same K), with
the probe (supervised ceiling) and random (floor) rows, on a 3DShapes testbed or its oracle.

  python launch/latentclr_table.py --out=/work/latentclr_table                               # testbed:shapes3d
  python launch/latentclr_table.py --out=/work/latentclr_oracle --generator=testbed:oracle-shapes3d
  python launch/latentclr_table.py --out=/work/latentclr_table --table_only                  # aggregate what exists

Every seed is one `python -m ganlatent_jax.main --config=configs/latentclr_3dshapes.py` run in OUT/seedS (resumable:
a run whose metrics.json exists is skipped; command.txt holds its exact command and wall time). Its evaluation
scores every row on the same samples: the encoder protocol (MIG, FactorVAE on the real procedural images) and the
generated-domain scores (MIG, DCI, FactorVAE against the labels of the generator's own images: the factor
classifier's on a GAN, the exact factors on an oracle, where direction recovery is added), the probe and random
rows through the protocol too (`references_protocol`). SeFa is genforce's variant on StyleGAN2 and 'first_layer'
(the entangling map A, directions in Z) on an oracle; GANSpace is the top K principal components of W. On an oracle
LatentCLR reads the rendered image (`feature_layer=output`: the oracle has no intermediate layers). SeFa's and
GANSpace's directions do not depend on the seed: their spread is that of the evaluation alone.
Extra `--config.*` overrides after `--` go to every run. Writes table.md and table.json in --out.
"""
from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ganlatent_jax.generators import oracle  # noqa: E402  (after the path insert: runnable from a checkout)
from ganlatent_jax.metrics import report  # noqa: E402
from ganlatent_jax import runs as table_runs  # noqa: E402
from ganlatent_jax.runs import Run  # noqa: E402

GENERATOR = "testbed:shapes3d"
# table row → metrics.json entry
ROWS = {"LatentCLR": "latentclr", "SeFa": "sefa", "GANSpace": "ganspace", "random": "random",
        "probe (supervised)": "probe"}


def command(workdir: str, seed: int, generator: str, extra: list[str]) -> list[str]:
  on_oracle = ["--config.feature_layer=output"] if oracle.is_oracle_name(generator) else []
  return [sys.executable, "-m", "ganlatent_jax.main", "--config=configs/latentclr_3dshapes.py",
          f"--workdir={workdir}", f"--config.generator={generator}", f"--config.seed={seed}",
          "--config.progress_bar=False", "--config.evaluation.generated_domain.references_protocol=True",
          *on_oracle, *extra]


def plan(out: str, seeds, generator: str, extra: list[str]) -> list[Run]:
  runs = []
  for seed in seeds:
    workdir = os.path.join(out, f"seed{seed}")
    runs.append(Run(workdir, command(workdir, seed, generator, extra), os.path.join(workdir, "metrics.json")))
  return runs


def rows(out: str, seeds) -> dict[str, list[tuple[str, str]]]:
  return {row: [(os.path.join(out, f"seed{s}", "metrics.json"), entry) for s in seeds] for row, entry in ROWS.items()}


def main(argv=None) -> int:
  parser = table_runs.table_parser(__doc__, workers=2, workers_help="concurrent runs")
  parser.add_argument("--generator", default=GENERATOR)
  args, extra = table_runs.parse_with_overrides(parser, argv)
  seeds = args.seeds
  code = table_runs.run_table(args, lambda: plan(args.out, seeds, args.generator, extra))
  if code:
    return code
  scores = report.direction_scores(args.generator)
  table = report.collect_present(rows(args.out, seeds), scores)
  text = report.markdown_table(table, scores) if table else "(no finished run)"
  report.write_table(args.out, {"seeds": seeds, "generator": args.generator, "table": table}, text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
