"""Attribute-based image retrieval with a trained SRE ranker.

The ranker's k-th output scores "how far along direction k" an image is. Given a query image and a direction, the
pool images closest in that score, |SRE_k(query) − SRE_k(pool)|, share the query's value of the attribute direction
k controls, whatever their other attributes. On a ground-truth dataset this is measured as precision@K: direction k
is matched to the factor with the highest mutual information with its score over the pool, and a retrieved image
counts when it has the query's value of that factor.

  python -m ganlatent_jax.retrieval --workdir=RUN_DIR --direction=0 --query_index=0 --top_k=8

writes RUN_DIR/images/retrieval_d{k}_q{i}.png (query first, then the top-K) and prints precision@K of every
direction as JSON.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from ganlatent_jax.metrics import disentanglement


@functools.partial(jax.jit, static_argnums=0)
def _scores(module, variables, images01):
  return module.apply(variables, images01 * 2.0 - 1.0, train=False)["scales"]


def ranker_scores(module, variables, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
  """(N, K) ranker outputs (eval mode) for images in [0, 1] (mapped to the generator's [-1, 1] the ranker saw)."""
  out = [np.asarray(_scores(module, variables, np.asarray(images[i:i + batch_size], np.float32)))
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out)


def retrieve(query_scores: np.ndarray, pool_scores: np.ndarray, direction: int, top_k: int,
             exclude: int | None = None) -> np.ndarray:
  """Indices of the top_k pool images by |score_k(query) − score_k(pool)| (ascending); `exclude` drops one index."""
  distance = np.abs(pool_scores[:, direction] - query_scores[direction])
  if exclude is not None:
    distance = distance.copy()
    distance[exclude] = np.inf
  return np.argsort(distance, kind="stable")[:top_k]


def direction_factors(pool_scores: np.ndarray, pool_factors: np.ndarray, num_bins: int = 20) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
  """For each direction, the factor its score is most informative about: (argmax factor (K,), MI matrix (K, F))."""
  discretized = disentanglement.histogram_discretize(pool_scores, num_bins)
  mutual_info = disentanglement.discrete_mutual_info(discretized, pool_factors)
  return np.argmax(mutual_info, axis=1), mutual_info


def precision_at_k(pool_scores: np.ndarray, pool_factors: np.ndarray, direction: int, factor: int, top_k: int,
                   num_queries: int, random_state: np.random.RandomState) -> float:
  """Mean over random queries from the pool of the fraction of the top_k (query excluded) sharing its factor value."""
  queries = random_state.choice(len(pool_scores), size=num_queries, replace=False)
  hits = []
  for q in queries:
    retrieved = retrieve(pool_scores[q], pool_scores, direction, top_k, exclude=int(q))
    hits.append(np.mean(pool_factors[retrieved, factor] == pool_factors[q, factor]))
  return float(np.mean(hits))


def evaluate_retrieval(module, variables, dataset, num_pool: int, num_queries: int, top_k: int,
                       random_state: np.random.RandomState) -> dict[str, Any]:
  factors, images = dataset.sample(num_pool, random_state)
  scores = ranker_scores(module, variables, images)
  matched, mutual_info = direction_factors(scores, factors)
  names = list(getattr(dataset, "factor_names", [f"factor_{i}" for i in range(factors.shape[1])]))
  per_direction = []
  for k, factor in enumerate(matched):
    values, counts = np.unique(factors[:, factor], return_counts=True)
    chance = float(np.sum((counts / counts.sum()) ** 2))  # P(a random pool image shares the query's value)
    per_direction.append({
        "direction": k, "factor": names[factor], "mutual_info": float(mutual_info[k, factor]),
        f"precision_at_{top_k}": precision_at_k(scores, factors, k, int(factor), top_k, num_queries, random_state),
        "chance": chance})
  return {"top_k": top_k, "num_pool": num_pool, "num_queries": num_queries, "directions": per_direction}


def _load_run(workdir: str):
  from ganlatent_jax.methods import sre

  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} does not exist: --workdir must be a finished SRE run")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  module, variables = sre.load_ranker(workdir, config)
  return config, module, variables


def main(argv):
  from absl import flags

  from ganlatent_jax import viz
  from ganlatent_jax.methods import _common

  del argv
  flags_ = flags.FLAGS
  config, module, variables = _load_run(flags_.workdir)
  dataset = _common.evaluation_dataset(config)
  random_state = np.random.RandomState(flags_.seed)
  factors, images = dataset.sample(flags_.pool_size, random_state)
  scores = ranker_scores(module, variables, images)
  picked = retrieve(scores[flags_.query_index], scores, flags_.direction, flags_.top_k, exclude=flags_.query_index)
  row = np.concatenate([images[flags_.query_index:flags_.query_index + 1], images[picked]])
  if row.shape[-1] == 1:
    row = np.repeat(row, 3, axis=-1)
  out = os.path.join(flags_.workdir, "images", f"retrieval_d{flags_.direction}_q{flags_.query_index}.png")
  viz.images_to_grid(row, ncols=len(row), path=out)
  report = evaluate_retrieval(module, variables, dataset, flags_.pool_size, flags_.num_queries, flags_.top_k,
                              np.random.RandomState(flags_.seed + 1))
  report["picture"] = out
  print(json.dumps(report, indent=2))


def run():
  from absl import flags

  from ganlatent_jax import cli

  flags.DEFINE_string("workdir", None, "An SRE run directory (config.json + ranker.msgpack).")
  flags.DEFINE_integer("direction", 0, "Direction index k whose attribute is matched.")
  flags.DEFINE_integer("query_index", 0, "Index of the query image in the pool.")
  flags.DEFINE_integer("top_k", 8, "Images retrieved.")
  flags.DEFINE_integer("pool_size", 2000, "Ground-truth images in the pool.")
  flags.DEFINE_integer("num_queries", 200, "Queries averaged in precision@K.")
  flags.DEFINE_integer("seed", 0, "Seed of the pool and the queries.")
  flags.mark_flags_as_required(["workdir"])
  cli.run(main)


if __name__ == "__main__":
  run()
