"""Reproduces the README's SRE results table on the embedded 3DShapes testbed (the paper's Tables 1 and 4 claim).

  python launch/sre_table.py --out=/work/sre_table                       # main table, seeds 0,1,2
  python launch/sre_table.py --out=/work/sre_table --ablation            # + the ε-range ablation (e = 1, 3, 10)
  python launch/sre_table.py --out=/work/sre_table --ablation --long_steps=2000   # + SeFa + SRE at 2000 steps
  python launch/sre_table.py --out=/work/sre_oracle --generator=testbed:oracle-shapes3d --seeds=0 \
      --long_steps=6000 --long_inits=sefa,random,ld    # the paper's 6000 steps from every init (~2 h a run)
  python launch/sre_table.py --out=/work/sre_oracle --generator=testbed:oracle-shapes3d --seeds=0 \
      --long_steps=1000 --long_inits=sefa,random --directions_lrs=1e-3,1e-2   # is Adam's step size the bound?

Every cell is one `python -m ganlatent_jax.main --config=configs/sre_3dshapes.py` run (or LD's config) in its own
workdir under --out; a run whose metrics.json exists is skipped, so the script resumes after an interruption and
the table is always recomputed from the files. Rows:
  SeFa / SeFa + SRE      sefa/seedS:    SRE from SeFa (the config's default); 'SeFa' is its init_directions entry
  random / random + SRE  random/seedS:  SRE from random orthonormal directions drawn with seed S
  random (Z) + SRE       random_z_N/seedS (--long_inits=random_z only): random orthonormal directions in Z — on an
                         oracle SeFa's space, while 'random' lives in W: is SRE's gain the start's or the space's?
  LD / LD + SRE          ld/seedS:      LD (configs/ld_3dshapes.py, K linear directions in W, --ld_steps steps, seed S),
                         ld_sre/seedS:  then SRE from its directions.npz
  ablation e = 3, 10     e3/seedS, e10/seedS: SeFa init, config.shift_range = e (e = 1 is the sefa row)
  SeFa + SRE, N steps    sefa_N/seedS (--long_steps=N): the sefa row trained longer; with --long_inits also
                         random_N/seedS and ld_sre_N/seedS (the random and LD rows trained longer: Table 3's
                         question, does a longer run close the gap from a random start?)
  ..., N steps, lr L     sefa_N_lrL/seedS (--directions_lrs=L,...): the --long_inits rows with
                         config.directions.learning_rate = L, N = --long_steps (or --steps without it). The config's
                         1e-4 (the paper's) moves each entry of D by at most ~1e-4 per Adam step; the paper's Table 3
                         trains a random start "with a higher learning rate" without saying which.
SeFa's directions are the same for every seed: its spread is that of the evaluation protocol alone (the encoder and
the metric samples are drawn with the seed). Extra `--config.*` overrides after `--` go to every SRE run; upstream's
shift order (its train_ours shifts w before truncating, an effective shift ψ·D·ε) is the launcher's default for the
paper rows, `--shift_order=after_truncation` is the config's:
  python launch/sre_table.py --out=/work/sre_table_after --shift_order=after_truncation
(the README's v1-testbed table was measured with the config's; every table says which).
Every run also writes the generated-domain scores (config.evaluation.generated_domain: MIG, DCI and FactorVAE of the
directions' coordinates against the labels of the generator's own images — a factor classifier's on a GAN testbed,
the exact factors on an oracle) and a `probe` reference row (one least-squares direction per factor: the best a
linear direction does); the table shows them beside the protocol's scores, with the probe as its last row. On an
oracle generator (`--generator=testbed:oracle-shapes3d`) the table adds direction recovery (mean |cos| to the true
factor directions after Hungarian matching, and the fraction recovered at |cos| ≥ 0.9), and SeFa is its
'first_layer' variant (the oracle's first weight is its entangling map A; its directions live in Z):
  python launch/sre_table.py --out=/work/sre_oracle --generator=testbed:oracle-shapes3d
Writes table.md (Markdown, mean ± sample std) and table.json (every value) in --out.
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

PROBE_ROW = "probe (supervised)"
ALIGNMENT = "mean abs cos(d, d_init)"
ABLATION_RANGES = (1.0, 3.0, 10.0)
# each initialisation's workdir prefix and row name (its --long_steps runs are PREFIX_N)
LONG_INITS = {"sefa": ("sefa", "SeFa + SRE"), "random": ("random", "random + SRE"), "ld": ("ld_sre", "LD + SRE"),
              "random_z": ("random_z", "random (Z) + SRE")}
# the initialisations with no row of the main table: their start gets its own row, from their first trained variant
EXTRA_INIT_ROWS = {"random_z": "random (Z)"}
# each initialisation's config overrides (LD's also names its directions file: see plan)
INIT_OVERRIDES = {"sefa": (), "random": ("--config.init.method=random",),
                  # random orthonormal directions in Z, SeFa's space on an oracle: separates the start from the space
                  "random_z": ("--config.init.method=random", "--config.space=z")}


# The table's scores: the protocol's MIG, FactorVAE and DCI, with 1000 FactorVAE votes (500 to evaluate: ±0.022
# binomial noise at accuracy 0.5), a 1000-step encoder and DCI's boosted trees on 2000 codes (1000 to test) — the
# generated-domain DCI's budget; at disentanglement_lib's 10000 the trees alone take ~5 min per set of directions on
# this 2-core CPU. No β-VAE (its 64-pair points would double each run's evaluation time).
TABLE_EVALUATION = ('--config.evaluation.metrics=("mig","factor_vae","dci")',
                    "--config.evaluation.protocol.factor_vae_num_train=1000",
                    "--config.evaluation.protocol.factor_vae_num_eval=500", "--config.evaluation.protocol.steps=1000",
                    "--config.evaluation.protocol.dci_num_train=2000", "--config.evaluation.protocol.dci_num_test=1000")


# The README's table was measured on the first shapes3d testbed, shipped as testbed:shapes3d-v1 since the retrained
# one took the name testbed:shapes3d.
README_GENERATOR = "testbed:shapes3d-v1"


def sre_command(workdir: str, seed: int, steps: int, overrides: list[str],
                generator: str = README_GENERATOR) -> list[str]:
  # SeFa's default 'genforce' variant reads StyleGAN's style layers; an oracle's first weight is its map A
  sefa_variant = ["--config.init.sefa_variant=first_layer"] if oracle.is_oracle_name(generator) else []
  return [sys.executable, "-m", "ganlatent_jax.main", "--config=configs/sre_3dshapes.py", f"--workdir={workdir}",
          f"--config.generator={generator}",
          f"--config.seed={seed}", f"--config.steps={steps}", "--config.progress_bar=False", *TABLE_EVALUATION,
          *sefa_variant, *overrides]


def ld_command(workdir: str, seed: int, steps: int, k: int, generator: str = README_GENERATOR) -> list[str]:
  return [sys.executable, "-m", "ganlatent_jax.main", "--config=configs/ld_3dshapes.py", f"--workdir={workdir}",
          f"--config.generator={generator}",
          f"--config.seed={seed}", f"--config.steps={steps}", f"--config.num_directions={k}",
          "--config.deformator.type=linear",   # ortho needs K = dim(W); SRE orthonormalizes its init anyway
          "--config.progress_bar=False", f"--config.checkpoint_every={max(steps // 4, 1)}",
          "--config.evaluation.accuracy_batches=20",   # LD's own reconstructor-accuracy report only: the
          "--config.evaluation.enabled=False"]          # table scores LD's directions with SRE's protocol


def variant(init: str, run_steps: int, lr: float | None = None) -> tuple[str, str]:
  """(workdir prefix, row name) of an initialisation's run trained `run_steps` steps at directions learning rate `lr`
  (None: the config's) — the one spelling the plan and the rows share."""
  prefix, name = LONG_INITS[init]
  if lr is None:
    return f"{prefix}_{run_steps}", f"{name}, {run_steps} steps"
  return f"{prefix}_{run_steps}_lr{lr:g}", f"{name}, {run_steps} steps, lr {lr:g}"


def trained_variants(steps: int, long_steps: int, directions_lrs) -> list[tuple[int, float | None]]:
  """(steps, directions lr or None for the config's) of the --long_inits runs beyond the main rows: the long runs
  (--long_steps), then one per rate of --directions_lrs (at --long_steps, or --steps without it)."""
  return [*([(long_steps, None)] if long_steps else []), *((long_steps or steps, lr) for lr in directions_lrs)]


def plan(out: str, seeds, steps: int, ld_steps: int, k: int, ablation: bool, extra: list[str],
         long_steps: int = 0, generator: str = README_GENERATOR, ld_seeds=None,
         long_inits=("sefa",), directions_lrs=()) -> list[Run]:
  """Every run, in start order: the main table seed by seed, then the ablation, then the long runs, then the
  learning-rate runs (the long inits at `long_steps`, or `steps`, per rate in `directions_lrs`). The LD rows only
  for `ld_seeds` (default: every seed) — LD's training and its SRE run double a seed's cost."""
  runs = []

  def sre(seed, name, *overrides, requires="", run_steps=steps):
    workdir = os.path.join(out, name, f"seed{seed}")
    runs.append(Run(workdir, sre_command(workdir, seed, run_steps, [*overrides, *extra], generator),
                    os.path.join(workdir, "metrics.json"), requires))

  def ld_directions(seed):
    return os.path.join(out, "ld", f"seed{seed}", "directions.npz")

  def sre_from(init, seed, name, run_steps=steps, lr=None):
    """SRE from one initialisation: SeFa (the config's), random, or the LD run of the same seed (waits for it)."""
    overrides = (("--config.init.method=file", f"--config.init.path={ld_directions(seed)}") if init == "ld"
                 else INIT_OVERRIDES[init])
    if lr is not None:
      overrides = (*overrides, f"--config.directions.learning_rate={lr:g}")
    sre(seed, name, *overrides, requires=ld_directions(seed) if init == "ld" else "", run_steps=run_steps)

  ld_seeds = seeds if ld_seeds is None else ld_seeds
  for seed in seeds:
    if seed in ld_seeds:
      ld_dir = os.path.dirname(ld_directions(seed))
      runs.append(Run(ld_dir, ld_command(ld_dir, seed, ld_steps, k, generator), ld_directions(seed)))
    for init in ("sefa", "random", "ld"):
      if init != "ld" or seed in ld_seeds:
        sre_from(init, seed, LONG_INITS[init][0])
  if ablation:
    for seed in seeds:
      for e in ABLATION_RANGES[1:]:
        sre(seed, f"e{e:g}", f"--config.shift_range={e}", "--config.evaluation.include_init=False")
  for run_steps, lr in trained_variants(steps, long_steps, directions_lrs):
    for init in long_inits:
      for seed in seeds:
        if init != "ld" or seed in ld_seeds:
          sre_from(init, seed, variant(init, run_steps, lr)[0], run_steps=run_steps, lr=lr)
  return runs


def alignment(workdir: str) -> float:
  """Mean |cos| between each refined direction and its initial one: 1 = SRE left D where it started."""
  from ganlatent_jax import directions
  from ganlatent_jax.metrics import generated_domain
  return generated_domain.mean_abs_cos_to_start(directions.load(os.path.join(workdir, "directions.npz")),
                                                directions.load(os.path.join(workdir, "init_directions.npz")))


RANKING = "ranking acc. (last 10%)"


def ranking_accuracy(workdir: str) -> float:
  """The ranker's accuracy (which of two shifts is larger; chance 0.5) over the last tenth of the logged steps: has
  the ranker learned, so that its gradient can move D?"""
  from ganlatent_jax.training.events import read_scalars
  values = [value for _, value in read_scalars(workdir)["ranker_accuracy"]]
  last = values[-max(len(values) // 10, 1):]
  return float(sum(last) / len(last))


def start_run(out: str, prefixes, seed: int) -> str:
  """The metrics.json of the first of `prefixes` whose run of `seed` exists (else the first's, reported missing)."""
  paths = [os.path.join(out, prefix, f"seed{seed}", "metrics.json") for prefix in prefixes]
  return next((path for path in paths if os.path.exists(path)), paths[0])


def rows(out: str, seeds, ablation: bool, long_steps: int = 0, long_inits=("sefa",), directions_lrs=(),
         steps: int = 300) -> tuple[dict, dict]:
  def runs(name, entry):
    return [(os.path.join(out, name, f"seed{s}", "metrics.json"), entry) for s in seeds]
  main = {"SeFa": runs("sefa", "init_directions"), "SeFa + SRE": runs("sefa", "directions"),
          "random": runs("random", "init_directions"), "random + SRE": runs("random", "directions"),
          "LD": runs("ld_sre", "init_directions"), "LD + SRE": runs("ld_sre", "directions")}
  variants = trained_variants(steps, long_steps, directions_lrs)
  for init in long_inits:
    if init in EXTRA_INIT_ROWS and variants:
      # every variant of a seed draws the same start: per seed, the first variant that has run (--only may skip some)
      prefixes = [variant(init, run_steps, lr)[0] for run_steps, lr in variants]
      main[EXTRA_INIT_ROWS[init]] = [(start_run(out, prefixes, s), "init_directions") for s in seeds]
  for run_steps, lr in variants:
    for init in long_inits:
      prefix, name = variant(init, run_steps, lr)
      main[name] = runs(prefix, "directions")
  main[PROBE_ROW] = runs("sefa", "probe")   # fitted by every SeFa run's generated-domain evaluation
  ablation_rows = {}
  if ablation:
    ablation_rows = {f"SeFa + SRE, e = {e:g}": runs("sefa" if e == 1.0 else f"e{e:g}", "directions")
                     for e in ABLATION_RANGES}
  return main, ablation_rows


def main(argv=None) -> int:
  parser = table_runs.table_parser(
      __doc__, workers=2,
      workers_help="concurrent runs (2 on 2 cores: the evaluation's numpy/sklearn parts are single-threaded)")
  parser.add_argument("--steps", type=int, default=300, help="SRE steps per run (the config's default)")
  parser.add_argument("--ld_steps", type=int, default=300)
  parser.add_argument("--num_directions", type=int, default=10, help="K of the LD runs (SRE's config default)")
  parser.add_argument("--ld_seeds", default=None, type=table_runs.int_list,
                      help="the seeds of the LD rows (default: --seeds)")
  parser.add_argument("--ablation", action="store_true")
  parser.add_argument("--long_steps", type=int, default=0, help="also SeFa + SRE trained this many steps")
  parser.add_argument("--long_inits", default="sefa",
                      help=f"the initialisations trained --long_steps steps, comma-separated of {','.join(LONG_INITS)}")
  parser.add_argument("--directions_lrs", default=(), type=table_runs.float_list,
                      help="also train the --long_inits rows (--long_steps, or --steps, steps) at each of these "
                           "directions learning rates, comma-separated (the config's is the paper's 1e-4)")
  parser.add_argument("--generator", default=README_GENERATOR,
                      help="the generator of every run (default: the one the README's table was measured on)")
  parser.add_argument("--shift_order", default="before_truncation", choices=("before_truncation", "after_truncation"),
                      help="config.shift_order of every SRE run: upstream's train_ours (the default, for the paper's "
                           "rows) or ours (the README's first table)")
  args, extra = table_runs.parse_with_overrides(parser, argv)
  extra = [f"--config.shift_order={args.shift_order}", *extra]
  seeds = args.seeds
  ld_seeds = seeds if args.ld_seeds is None else args.ld_seeds
  long_inits = args.long_inits.split(",")
  unknown = sorted(set(long_inits) - set(LONG_INITS))
  if unknown:
    parser.error(f"--long_inits: unknown {unknown}; choose from {list(LONG_INITS)}")
  code = table_runs.run_table(args, lambda: plan(args.out, seeds, args.steps, args.ld_steps, args.num_directions,
                                                 args.ablation, extra, args.long_steps, args.generator, ld_seeds,
                                                 long_inits, args.directions_lrs))
  if code:
    return code
  main_rows, ablation_rows = rows(args.out, seeds, args.ablation, args.long_steps, long_inits, args.directions_lrs,
                                  args.steps)
  scores = report.direction_scores(args.generator)
  tables = {}
  text = []
  for title, table_rows in (("main", main_rows), ("ablation", ablation_rows)):
    table = report.collect_present(table_rows, scores)
    if table:
      tables[title] = table
      for name in table:
        if "SRE" in name:
          workdirs = [os.path.dirname(path) for path, _ in table_rows[name] if os.path.exists(path)]
          table[name][ALIGNMENT] = [alignment(workdir) for workdir in workdirs]
          table[name][RANKING] = [ranking_accuracy(workdir) for workdir in workdirs]
      text.append(report.markdown_table(tables[title], (*scores, ALIGNMENT, RANKING)))
  report.write_table(args.out, {"seeds": seeds, "steps": args.steps, "ld_steps": args.ld_steps,
                                 "long_steps": args.long_steps, "long_inits": long_inits,
                                 "directions_lrs": list(args.directions_lrs), "generator": args.generator,
                                 "tables": tables},
                     "\n\n".join(text))
  print("\n\n".join(text))
  return 0


if __name__ == "__main__":
  sys.exit(main())
