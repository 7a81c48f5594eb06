"""Where SRE's directions went, checkpoint by checkpoint: on an oracle generator, each saved D's recovery of the true
directions (mean |cos| after Hungarian matching, fraction at |cos| ≥ 0.9) and its mean |cos| to the initial D, beside
the ranker's accuracy logged at that step.

  python launch/sre_trace.py --run=/work/sre_oracle/sefa_6000/seed0 \\
      --checkpoints=/work/sre_oracle/sefa_6000_trace

Runs since the `recovery/*` TensorBoard scalars exist log the same numbers while they train; this reads them back
from the checkpoints of a run (which keeps its last `keep_checkpoints`; --checkpoints names a folder where more were
kept, e.g. hard links taken while it ran). The generator is the run's config.json's. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ganlatent_jax import directions as directions_lib  # noqa: E402  (after the path insert: runnable from a checkout)
from ganlatent_jax.generators import load  # noqa: E402
from ganlatent_jax.metrics import generated_domain  # noqa: E402


def saved_directions(checkpoint: str, initial: directions_lib.Directions) -> directions_lib.Directions:
  """The D of one SRE checkpoint (a restored raw dict: no State to rebuild)."""
  import orbax.checkpoint as ocp
  from ganlatent_jax.methods import sre
  state = ocp.PyTreeCheckpointer().restore(os.path.join(checkpoint, "default"))
  return directions_lib.Directions(sre.direction_matrix(state["params"]["directions"]), space=initial.space)


def trace(run: str, checkpoints: str) -> list[dict[str, float]]:
  with open(os.path.join(run, "config.json")) as f:
    generator = json.load(f)["generator"]
  initial = directions_lib.load(os.path.join(run, "init_directions.npz"))
  recovery = generated_domain.recovery_trace(load(generator), initial)
  if recovery is None:
    raise ValueError(f"{run}: its generator {generator!r} is not an oracle: no true directions to compare with")
  from ganlatent_jax.training.events import read_scalars
  accuracy = dict(read_scalars(run).get("ranker_accuracy", []))
  steps = sorted(int(name) for name in os.listdir(checkpoints) if name.isdigit())
  if not steps:
    raise FileNotFoundError(f"{checkpoints}: no checkpoint folders (named by their step)")
  rows = [{"step": 0, **recovery(initial)}]
  for step in steps:
    rows.append({"step": step, **recovery(saved_directions(os.path.join(checkpoints, str(step)), initial))})
  for row in rows:
    row["ranker_accuracy"] = accuracy.get(row["step"], float("nan"))
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run", required=True, help="an SRE run's workdir")
  parser.add_argument("--checkpoints", default="", help="folder of step-named checkpoints (default: RUN/checkpoints)")
  args = parser.parse_args(argv)
  rows = trace(args.run, args.checkpoints or os.path.join(args.run, "checkpoints"))
  names = ("recovery/mean_abs_cos", "recovery/fraction", "recovery/abs_cos_to_init", "ranker_accuracy")
  print("| step | " + " | ".join(names) + " |")
  print("| --- |" + " --- |" * len(names))
  for row in rows:
    print(f"| {row['step']} | " + " | ".join(f"{row[name]:.4f}" for name in names) + " |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
