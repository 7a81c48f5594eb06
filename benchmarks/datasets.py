"""Render throughput of the procedural datasets (numpy only), one harness JSON line each.

  python benchmarks/datasets.py                  # batch 1000, 10 timed steps
  python benchmarks/datasets.py --batch 256 --steps 5

Lines:
  shapes3d_geometry_fill  tracing the 480 (shape, scale, orientation) geometries once (the one-off cost of the
                          first samples of a process)
  shapes3d_sample         Shapes3D.sample: random factors → images with the geometries cached (the steady state of
                          training and metric loops)
  shapes3d_trace          the ray tracer alone, no cache (a new geometry per image: the worst case)
  dsprites_sample         DSprites.sample (rasterised directly, no cache)
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from ganlatent_jax import data  # noqa: E402
from ganlatent_jax.data import shapes3d_procedural  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=1000)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--trace-batch", type=int, default=64, help="batch of the uncached tracer line")
  args = parser.parse_args(argv)
  random_state = np.random.RandomState(0)

  # First (before anything fills the cache): tracing all 480 geometries once, as the first samples do.
  fill_times = harness.time_steps(shapes3d_procedural.warm_geometry_cache, warmup=0, steps=1)
  harness.report("shapes3d_geometry_fill", fill_times, images_per_step=480, backend="numpy")

  shapes3d = data.shapes3d()
  harness.report("shapes3d_sample", harness.time_steps(lambda: shapes3d.sample(args.batch, random_state),
                                                        steps=args.steps),
                 images_per_step=args.batch, backend="numpy")

  factors = shapes3d.sample_factors(args.trace_batch, random_state)
  harness.report("shapes3d_trace", harness.time_steps(lambda: data.render_shapes3d(factors), steps=args.steps),
                 images_per_step=args.trace_batch, backend="numpy", supersample=2)

  dsprites = data.dsprites()
  harness.report("dsprites_sample", harness.time_steps(lambda: dsprites.sample(args.batch, random_state),
                                                        steps=args.steps),
                 images_per_step=args.batch, backend="numpy")


if __name__ == "__main__":
  main()
