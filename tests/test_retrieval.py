"""SRE retrieval: nearest pool images along one ranker output, direction→factor matching, precision@K."""
import numpy as np

from ganlatent_jax import retrieval


def _pool(random_state, num=400):
  """Two factors (8 and 5 values); score 0 tracks factor 1, score 1 tracks factor 0, score 2 is noise."""
  factors = np.stack([random_state.randint(0, 8, num), random_state.randint(0, 5, num)], axis=1)
  scores = np.stack([factors[:, 1] + 0.01 * random_state.randn(num), factors[:, 0] * 2.0 + 0.01 * random_state.randn(num),
                     random_state.randn(num)], axis=1)
  return factors, scores


def test_retrieve_orders_by_distance_along_one_direction_and_excludes_the_query():
  pool = np.array([[0.0, 5.0], [1.0, -3.0], [0.2, 100.0], [0.9, 0.0]])
  assert list(retrieval.retrieve(pool[0], pool, 0, 3)) == [0, 2, 3]
  assert list(retrieval.retrieve(pool[0], pool, 0, 3, exclude=0)) == [2, 3, 1]
  assert list(retrieval.retrieve(pool[0], pool, 1, 2, exclude=0)) == [3, 1]


def test_directions_are_matched_to_the_factor_they_track():
  factors, scores = _pool(np.random.RandomState(0))
  matched, mutual_info = retrieval.direction_factors(scores, factors)
  assert list(matched[:2]) == [1, 0]
  assert mutual_info.shape == (3, 2)


def test_precision_at_k_is_high_for_a_tracking_score_and_chance_for_noise():
  random_state = np.random.RandomState(1)
  factors, scores = _pool(random_state)
  good = retrieval.precision_at_k(scores, factors, 0, 1, 8, 50, np.random.RandomState(2))
  noise = retrieval.precision_at_k(scores, factors, 2, 1, 8, 50, np.random.RandomState(2))
  assert good > 0.95
  assert noise < 0.4  # chance for a 5-valued factor is 0.2
