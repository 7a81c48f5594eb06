"""Reproduces Plumerault et al.'s Fig. 8 / App. E claim as curves and numbers: Eq. 5's recursive inversion reaches a
far-translated target that Eq. 4's naive inversion of the same target, with the same number of Adam steps, does not.

  python launch/plumerault_convergence.py --out=/work/plumerault_convergence            # testbed:dsprites, 10/20 px
  python launch/plumerault_convergence.py --out=/work/plumerault_convergence --generators=testbed:dsprites,testbed:oracle-dsprites
  python launch/plumerault_convergence.py --out=/work/plumerault_convergence --learning_rate=0.01   # upstream's lr
  python launch/plumerault_convergence.py --out=/tmp/convergence_quick --quick                    # seconds

For each generator and shift (pixels, horizontal_position): --num_latents prior draws z0 (key --seed), the target
T_shift(G(z0)); recursive: --stages targets shift·n/stages, --steps Adam steps each from the previous solution
(`inversion.convergence`); naive: the final target alone, stages·steps steps. Every other inversion setting (blurred
loss σ, kernel, mask mode, ball radius, fill) is configs/plumerault_dsprites.py's; --learning_rate defaults to the
paper's 0.1 for this figure (App. D; upstream's trajectories use 0.01). Writes OUT/convergence.json (per generator
and shift: the median loss on the final target at the start, after each scheme and their ratio, and the fraction of
starts where the recursive scheme ends lower), OUT/curves_<generator>_<shift>px.npz and
OUT/convergence_<generator>_<shift>px.png (median loss per step, log10; the recursive curve's stage n is on its own
intermediate target, so its jumps mark the stages).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402  (after the path insert: runnable from a checkout)
import numpy as np  # noqa: E402

from ganlatent_jax import cli, generators, inversion, io, viz  # noqa: E402
from ganlatent_jax.methods import plumerault  # noqa: E402
from ganlatent_jax.viz import plots  # noqa: E402

CONFIG = os.path.join(REPO, "configs", "plumerault_dsprites.py")


def settings_for(config, gen, steps: int, learning_rate: float) -> inversion.InversionSettings:
  """Plumerault's inversion settings for this generator, with this figure's steps per target and learning rate."""
  return dataclasses.replace(plumerault.inversion_settings(config, gen.image_shape[1]), steps=steps,
                             learning_rate=learning_rate)


def run_one(gen, config, shift: int, args) -> dict[str, np.ndarray]:
  width = gen.image_shape[1]
  z0 = np.asarray(jax.random.normal(jax.random.key(args.seed), (args.num_latents, gen.latent_dim)), np.float32)
  radius = plumerault.ball_radius(config, gen.latent_dim)
  return inversion.convergence(gen, z0, "horizontal_position", shift / width,
                               settings_for(config, gen, args.steps, args.learning_rate), stages=args.stages,
                               radius=radius, fill=float(config.trajectories.fill),
                               clip_start=bool(config.trajectories.clip_start))


def summarize(result: dict[str, np.ndarray]) -> dict[str, float]:
  initial, recursive, naive = (float(np.median(result[k])) for k in ("initial", "recursive_final", "naive_final"))
  return dict(initial=initial, recursive_final=recursive, naive_final=naive,
              recursive_over_naive=recursive / naive if naive > 0 else float("nan"),
              recursive_lower_fraction=float(np.mean(result["recursive_final"] < result["naive_final"])),
              recursive_over_initial=recursive / initial if initial > 0 else float("nan"),
              naive_over_initial=naive / initial if initial > 0 else float("nan"))


def picture(path: str, name: str, shift: int, result: dict[str, np.ndarray], args) -> None:
  steps = np.arange(result["naive"].shape[1])
  log = lambda curve: np.log10(np.maximum(np.median(curve, axis=0), 1e-12))  # noqa: E731
  viz.save_png(path, plots.line_chart(
      [(f"recursive ({args.stages} targets)", steps, log(result["recursive"])), ("naive (Eq. 4)", steps,
                                                                                 log(result["naive"]))],
      title=f"{name}: {shift} px, lr {args.learning_rate:g}", xlabel="Adam step", ylabel="log10 median loss"))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True)
  parser.add_argument("--generators", default="testbed:dsprites")
  parser.add_argument("--shifts", default="10,20", help="pixels")
  parser.add_argument("--num_latents", type=int, default=32)
  parser.add_argument("--stages", type=int, default=5)
  parser.add_argument("--steps", type=int, default=50, help="Adam steps per recursive target")
  parser.add_argument("--learning_rate", type=float, default=0.1, help="the paper's App. D value for this figure")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="4 latents, 2 stages of 5 steps (a smoke test)")
  args = parser.parse_args(argv)
  if args.quick:
    args.num_latents, args.stages, args.steps = 4, 2, 5
  config = cli.load_config(CONFIG)
  io.makedirs(args.out)
  results: dict[str, dict[str, dict]] = {}
  for name in args.generators.split(","):
    gen = generators.load(name)
    tag = name.replace(":", "_").replace("/", "_")
    results[name] = {}
    for shift in (int(s) for s in args.shifts.split(",")):
      start = time.time()
      result = run_one(gen, config, shift, args)
      summary = dict(summarize(result), seconds=round(time.time() - start, 1))
      results[name][f"{shift}px"] = summary
      with io.open_atomic(os.path.join(args.out, f"curves_{tag}_{shift}px.npz"), "wb") as f:
        np.savez(f, **result)
      picture(os.path.join(args.out, f"convergence_{tag}_{shift}px.png"), name, shift, result, args)
      print(name, f"{shift}px", json.dumps(summary), flush=True)
  io.write_json(os.path.join(args.out, "convergence.json"),
                {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": results})
  return 0


if __name__ == "__main__":
  sys.exit(main())
