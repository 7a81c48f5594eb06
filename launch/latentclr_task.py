"""How hard LatentCLR's contrastive task was in finished runs: `methods.latentclr.contrastive_task` (loss, accuracy,
mean same-edit and other-edit cosines of the feature divergences, for the trained directions, their initial values
and random ones; how far training turned the directions) for runs trained before their results.json recorded it.
Restores each run's latest checkpoint and its step-0 state (key(config.seed)), adds "contrastive_task" to its
results.json and prints a Markdown table. Seconds per run.

  python launch/latentclr_task.py runs/latentclr_v2/seed0 runs/latentclr_oracle/seed*

Before training, the same check at step 0 over feature taps tells which tap gives the loss something to learn (the
initial and random rows only; the generator and settings are the config's):

  python launch/latentclr_task.py --config=configs/latentclr_3dshapes.py --taps=conv1,convs.1,convs.3,convs.5,convs.7
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganlatent_jax import testbeds  # noqa: E402  (after the path insert: runnable from a checkout)
from ganlatent_jax.methods import latentclr  # noqa: E402

SETS = ("initial", "random", "trained")


def table(tasks: dict[str, dict]) -> str:
  lines = ["| run or tap | directions | accuracy | loss | same-edit cos | other-edit abs cos | abs cos to step 0 |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for run, task in tasks.items():
    for name in (n for n in SETS if n in task):
      row = task[name]
      turned = f"{task['mean_abs_cos_to_initial']:.3f}" if name == "trained" and "mean_abs_cos_to_initial" in task \
          else "—"
      lines.append(f"| {run} | {name} | {row['accuracy']:.3f} | {row['loss']:.3f} | {row['positive_cos']:.3f} | "
                   f"{row['negative_abs_cos']:.3f} | {turned} |")
  return "\n".join(lines)


def at_step_zero(config_path: str, taps: list[str]) -> dict[str, dict]:
  """{tap: contrastive_task of the config's untrained model with features at that tap} (trained = initial)."""
  import jax

  from ganlatent_jax import cli, parallel
  from ganlatent_jax.methods import _common
  tasks = {}
  gen = _common.load_generator(cli.load_config(config_path))
  for tap in taps:
    config = cli.load_config(config_path)
    config.feature_layer = tap
    init_fn, _, problem = latentclr.make(config, _common.make_sampler(config, gen, latentclr.STREAMS),
                                         parallel.make_mesh(1))
    start = jax.device_get(init_fn(jax.random.key(int(config.seed))))
    tasks[tap] = latentclr.contrastive_task(problem, start, start, _common.stream(config, latentclr.STREAMS, "task"))
  return tasks


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("runs", nargs="*", help="LatentCLR workdirs (config.json, checkpoints/, results.json)")
  parser.add_argument("--recompute", action="store_true", help="also runs whose results.json has the check")
  parser.add_argument("--config", help="with --taps: a LatentCLR config, checked untrained at each tap")
  parser.add_argument("--taps", help="comma-separated feature layers of the config's generator")
  args = parser.parse_args(argv)
  if bool(args.config) != bool(args.taps) or bool(args.runs) == bool(args.config):
    parser.error("give run directories, or --config with --taps")
  if args.config:
    tasks = at_step_zero(args.config, args.taps.split(","))
    print(table({tap: {k: v for k, v in task.items() if k != "trained"} for tap, task in tasks.items()}))
    return 0
  tasks = {}
  for run in args.runs:
    with open(os.path.join(run, "results.json")) as f:
      recorded = json.load(f).get("contrastive_task")
    tasks[run] = recorded if recorded and not args.recompute else \
        latentclr.contrastive_task_of_run(testbeds.run_config(run), run)
  print(table(tasks))
  return 0


if __name__ == "__main__":
  sys.exit(main())
