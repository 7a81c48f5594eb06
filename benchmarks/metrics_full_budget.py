"""The four sampling disentanglement metrics at disentanglement_lib's full default budgets on procedural 3DShapes.

The representation is deliberately simple and fixed: each image is average-pooled to 8×8×3 and projected to 10 dims
by a seeded Gaussian matrix (an entangled but informative code), so the numbers are a reproducible reference for
the metric implementations and their cost, not a statement about any model.

  python benchmarks/metrics_full_budget.py                       # all four, full budgets (minutes)
  python benchmarks/metrics_full_budget.py --budget-fraction 0.01 --metrics mig dci   # a quick smoke run

Prints one harness JSON line per metric (one timed run each: a full-budget run is far too long to repeat ten times,
so min = median = max) with the metric values as extra fields, then a final harness line for the whole run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from ganlatent_jax import data  # noqa: E402
from ganlatent_jax.metrics import disentanglement  # noqa: E402

# disentanglement_lib's study defaults (also the functions' defaults); scaled by --budget-fraction.
BUDGETS = {
    "mig": dict(num_train=10000, batch_size=16),
    "dci": dict(num_train=10000, num_test=5000, batch_size=16),
    "factor_vae_score": dict(batch_size=64, num_train=10000, num_eval=5000, num_variance_estimate=10000),
    "beta_vae_score": dict(batch_size=64, num_train=10000, num_eval=5000),
}
COUNTS = ("num_train", "num_test", "num_eval", "num_variance_estimate")


class PooledProjection:
  """images (B, H, W, C) → 10 codes: 8×8 average pooling, then a fixed Gaussian projection. Counts images seen."""

  def __init__(self, observation_shape, num_codes=10, pooled=8, seed=0):
    height, width, channels = observation_shape
    if height % pooled or width % pooled:
      raise ValueError(f"observation shape {observation_shape} is not divisible into {pooled}×{pooled} blocks")
    self.pooled = pooled
    self.projection = np.random.RandomState(seed).normal(
        size=(pooled * pooled * channels, num_codes)) / np.sqrt(pooled * pooled * channels)
    self.images_seen = 0

  def __call__(self, images):
    images = np.asarray(images, dtype=np.float32)
    batch, height, width, channels = images.shape
    blocks = images.reshape(batch, self.pooled, height // self.pooled, self.pooled, width // self.pooled, channels)
    self.images_seen += batch
    return blocks.mean(axis=(2, 4)).reshape(batch, -1) @ self.projection


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--metrics", nargs="+", choices=list(BUDGETS), default=list(BUDGETS))
  parser.add_argument("--budget-fraction", type=float, default=1.0, help="scale every sample count (1 = full)")
  parser.add_argument("--seed", type=int, default=0, help="disentanglement_lib's evaluation.random_seed is 0")
  args = parser.parse_args(argv)

  dataset = data.shapes3d()  # procedural: no download
  results, total_seconds, total_images = {}, 0.0, 0
  for metric in args.metrics:
    budget = {key: max(2, int(round(value * args.budget_fraction))) if key in COUNTS else value
              for key, value in BUDGETS[metric].items()}
    represent = PooledProjection(dataset.observation_shape)
    start = time.perf_counter()
    values = getattr(disentanglement, metric)(dataset, represent, np.random.RandomState(args.seed), **budget)
    seconds = time.perf_counter() - start
    results[metric] = {key: int(value) if isinstance(value, (int, np.integer)) else float(value)
                       for key, value in values.items()}
    total_seconds += seconds
    total_images += represent.images_seen
    harness.report(f"metrics_full_budget/{metric}", [seconds], images_per_step=represent.images_seen,
                   budget=budget, **results[metric])
  harness.report("metrics_full_budget", [total_seconds], images_per_step=total_images,
                 budget_fraction=args.budget_fraction, seed=args.seed, metrics=results)


if __name__ == "__main__":
  main()
