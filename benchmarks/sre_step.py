"""Speed of one SRE step (ranker update + directions update) on the upstream 3DShapes architecture, reduced width.

  python benchmarks/sre_step.py [--batch=32] [--steps=10]

Generator: StyleGAN2 size 64, style_dim 512, n_mlp 3, 64 channels everywhere (random weights: speed does not depend
on them); K = 10 directions in W with truncation 0.8; ranker: full-width ResNet-18 with a K-way head. Each step
renders 2 × batch images (one batch per update). Useful FLOPs per step, 2·MACs of:
  (a) generator forward + ranker forward, backward w.r.t. activations and weights (3× forward);
  (b) generator forward + backward w.r.t. activations only (2×) + ranker forward + backward w.r.t. activations (2×).
Prints the harness JSON line with generated images/s, GFLOP/s and the peak resident memory.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from convnets import resnet18_forward_macs, stylegan2_forward_macs  # noqa: E402

SIZE, K = 64, 10


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  args = parser.parse_args(argv)

  from ganlatent_jax import platform
  platform.apply_cpu_settings()   # as the commands do (importing the package does not)
  import jax
  from harness import report, time_steps

  from ganlatent_jax import cli, parallel
  from ganlatent_jax import directions as dirs
  from ganlatent_jax.generators import sampling, stylegan2
  from ganlatent_jax.methods import sre
  from ganlatent_jax.training import loop

  config = stylegan2.make_config(SIZE, style_dim=512, n_mlp=3, channels=stylegan2.constant_channels(SIZE, 64))
  gen = stylegan2.build(config, stylegan2.init_variables(config, jax.random.key(0)), "benchmark")
  c = cli.load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "sre_3dshapes.py"))
  c.batch_size, c.num_directions, c.truncation, c.init.method, c.space = args.batch, K, 0.8, "random", "w"
  mesh = parallel.make_mesh(1)
  initial = dirs.random(512, K, jax.random.key(1), space="w")
  sampler = sampling.make_sampler(gen, truncation=0.8, rng=jax.random.key(2))  # w̄ once, not per step
  init_fn, step = sre.make(c, sampler, initial, mesh)
  state = loop.init_or_restore(init_fn, 0, mesh, None)
  holder = [state]
  keys = iter(jax.random.split(jax.random.key(3), args.warmup + args.steps))

  def run():
    holder[0], metrics = step(holder[0], next(keys))
    return metrics["ranker_loss"]

  times = time_steps(run, warmup=args.warmup, steps=args.steps)
  g_macs, r_macs = stylegan2_forward_macs(SIZE), resnet18_forward_macs(SIZE, classes=K)
  flops = 2 * args.batch * ((g_macs + 3 * r_macs) + (2 * g_macs + 2 * r_macs))
  report("sre_step_stylegan2_64_w64_resnet18", times, images_per_step=2 * args.batch, flops_per_step=flops,
         framework="jax", jax_version=jax.__version__, batch=args.batch, num_directions=K,
         peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))


if __name__ == "__main__":
  main()
