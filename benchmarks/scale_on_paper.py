"""Scale on paper (issue 20 item 4): FLOPs and gradient all-reduce sizes of the SRE and GAN steps, measured from the
compiled programs, turned into step-time estimates on TPU v4 slices and 8×H100 from the chips' published peaks.

  python benchmarks/scale_on_paper.py [--per_chip_batch=16] [--mfu=0.3]

Measured here (CPU, nothing runs but the compiler): XLA's cost analysis of the jitted step at the shipped configs
(`configs/sre_3dshapes.py` on its testbed generator; `configs/gan_3dshapes.py`, whose lazy R1 / path-length branches
are compiled separately: XLA counts a `lax.cond` as its costlier branch), divided by the config's batch = FLOPs per
image; trainable parameter counts = the bytes each update all-reduces (float32). Estimated: on C chips with a global
batch of C × per_chip_batch, step time ≈ max(compute, all-reduce) with
  compute    = FLOPs/image × per_chip_batch / (peak × mfu),
  all-reduce = 2 × gradient bytes / per-chip all-reduce bandwidth   (a ring/torus all-reduce moves ~2× the data),
so communication matters once the all-reduce time approaches the compute time. Peaks (bf16, dense): TPU v4 275
TFLOP/s per chip, all-reduce bandwidth 1.1 PB/s per 4096-chip pod (~270 GB/s per chip; Google's v4 page); H100 SXM
989 TFLOP/s, NVLink 900 GB/s within a node, 50 GB/s per GPU (400 Gb/s InfiniBand) across nodes (NVIDIA datasheets).
Prints one JSON line per step kind and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CHIPS = {   # name: (chips, peak FLOP/s per chip, all-reduce bytes/s per chip)
    "TPU v4-8 (4 chips)": (4, 275e12, 270e9),
    "TPU v4-32 (16 chips)": (16, 275e12, 270e9),
    "8×H100 (1 node, NVLink)": (8, 989e12, 900e9),
    "4 nodes × 8×H100 (InfiniBand)": (32, 989e12, 50e9),
}


def _flops(lowered) -> float:
  analysis = lowered.compile().cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return float(analysis["flops"])


def _size(tree) -> int:
  import jax
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))


def gan_costs(overrides: dict) -> dict:
  """FLOPs of one engine step of configs/gan_3dshapes.py with the given regularisers, and the trainable sizes."""
  import jax
  from ganlatent_jax import cli
  from ganlatent_jax.methods import _gan_run
  c = cli.load_config(os.path.join(ROOT, "configs", "gan_3dshapes.py"))
  c.num_devices = 1
  c.update(overrides)
  mesh, engine = _gan_run.setup(c)
  state = jax.eval_shape(engine.init_fn, jax.random.key(0))
  size = int(c.architecture.size)
  real = jax.ShapeDtypeStruct((int(c.batch_size), size, size, 3), jax.numpy.float32)
  flops = _flops(engine.jitted_step.lower(state, real, jax.random.key(1)))
  return dict(flops=flops, batch=int(c.batch_size), generator_params=_size(state.params["generator"]),
              discriminator_params=_size(state.params["discriminator"]))


def sre_costs() -> dict:
  import jax
  from ganlatent_jax import cli, parallel
  from ganlatent_jax.methods import _common, sre
  c = cli.load_config(os.path.join(ROOT, "configs", "sre_3dshapes.py"))
  gen = _common.load_generator(c)
  mesh = parallel.make_mesh(1)
  sampler = _common.make_sampler(c, gen, sre.STREAMS, int(c.truncation_samples))
  initial = sre.initial_directions(c, gen, _common.stream(c, sre.STREAMS, "init"))
  init_fn, step = sre.make(c, sampler, initial, mesh)
  state = jax.eval_shape(init_fn, jax.random.key(0))
  flops = _flops(step.func.lower(sampler, state, jax.random.key(1)))
  return dict(flops=flops, batch=2 * int(c.batch_size), ranker_params=_size(state.params["ranker"]),
              direction_params=_size(state.params["directions"]))


def estimate(flops_per_image: float, gradient_bytes: float, per_chip_batch: int, mfu: float) -> dict:
  rows = {}
  for name, (chips, peak, bandwidth) in CHIPS.items():
    compute = flops_per_image * per_chip_batch / (peak * mfu)
    allreduce = 2 * gradient_bytes / bandwidth
    step = max(compute, allreduce)
    rows[name] = dict(chips=chips, global_batch=chips * per_chip_batch, compute_ms=1e3 * compute,
                      allreduce_ms=1e3 * allreduce, images_per_s=chips * per_chip_batch / step)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--per_chip_batch", type=int, default=16)
  parser.add_argument("--mfu", type=float, default=0.3, help="assumed fraction of peak FLOP/s the step reaches")
  args = parser.parse_args(argv)
  from ganlatent_jax import platform
  platform.apply_cpu_settings()

  plain = gan_costs(dict(r1_gamma=0.0, pl_weight=0.0))
  with_r1 = gan_costs(dict(pl_weight=0.0))
  with_pl = gan_costs(dict(r1_gamma=0.0))
  c_r1_every, c_pl_every = 16, 4
  gan_step = plain["flops"] + (with_r1["flops"] - plain["flops"]) / c_r1_every + \
      (with_pl["flops"] - plain["flops"]) / c_pl_every
  # per step: D's and G's adversarial updates all-reduce their gradients; every 16th step R1 adds D's again and
  # every 4th path length adds G's again
  gan_bytes = 4 * (plain["discriminator_params"] * (1 + 1 / c_r1_every) + plain["generator_params"] * (1 + 1 / c_pl_every))
  sre = sre_costs()
  sre_bytes = 4 * (sre["ranker_params"] + sre["direction_params"])
  results = {
      "gan_3dshapes": dict(flops_per_image=gan_step / plain["batch"], gradient_bytes=gan_bytes,
                           kinds=dict(plain=plain["flops"], r1=with_r1["flops"], pl=with_pl["flops"]),
                           params=dict(G=plain["generator_params"], D=plain["discriminator_params"])),
      "sre_3dshapes": dict(flops_per_image=sre["flops"] / sre["batch"], gradient_bytes=sre_bytes,
                           params=dict(ranker=sre["ranker_params"], directions=sre["direction_params"])),
  }
  for name, r in results.items():
    r["estimates"] = estimate(r["flops_per_image"], r["gradient_bytes"], args.per_chip_batch, args.mfu)
    print(json.dumps({"step": name, **r}), flush=True)
  print(f"\n| step | hardware | global batch | compute ms | all-reduce ms | images/s |\n|---|---|---|---|---|---|")
  for name, r in results.items():
    for hw, e in r["estimates"].items():
      print(f"| {name} | {hw} | {e['global_batch']} | {e['compute_ms']:.3f} | {e['allreduce_ms']:.3f} | "
            f"{e['images_per_s']:.3g} |")


if __name__ == "__main__":
  sys.exit(main())
