"""`factor_vae_from_arrays`: against a plain-Python reference of the documented procedure, perfect and chance codes,
and agreement with the sampling form `factor_vae_score`."""
import collections

import numpy as np
import pytest

from ganlatent_jax.metrics import disentanglement as dis


def _data(num=3000, seed=0, sizes=(4, 5, 6)):
  rs = np.random.RandomState(seed)
  return np.stack([rs.randint(n, size=num) for n in sizes], axis=1)


def _reference(codes, factors, seed, batch_size, num_train, num_eval, prune_threshold=0.05):
  """The procedure of the docstring, written out with Python containers (independent of the implementation)."""
  rs = np.random.RandomState(seed)
  variances = [float(np.var(codes[:, j], ddof=1)) for j in range(codes.shape[1])]
  active = [j for j in range(codes.shape[1]) if variances[j] ** 0.5 >= prune_threshold]
  order = rs.permutation(len(codes))
  halves = [order[:len(order) // 2], order[len(order) // 2:]]

  def votes(rows, count):
    table = collections.Counter()
    for _ in range(count):
      k = rs.randint(factors.shape[1])
      value = factors[rows[rs.randint(len(rows))], k]
      same = np.asarray([r for r in rows if factors[r, k] == value])
      if len(same) < 2:
        continue
      batch = same if len(same) <= batch_size else rs.choice(same, batch_size, replace=False)
      ratios = [np.var(codes[batch, j], ddof=1) / variances[j] for j in active]
      table[(k, int(np.argmin(ratios)))] += 1
    return table

  train, evaluation = votes(halves[0], num_train), votes(halves[1], num_eval)
  majority = {}
  for dim in range(codes.shape[1]):
    counts = [train[(k, dim)] for k in range(factors.shape[1])]
    majority[dim] = int(np.argmax(counts))
  accuracy = lambda table: sum(n for (k, d), n in table.items() if majority[d] == k) / sum(table.values())
  return accuracy(train), accuracy(evaluation)


@pytest.mark.parametrize("batch_size", [8, 64])
def test_matches_the_reference_procedure(batch_size):
  factors = _data(400)
  rs = np.random.RandomState(3)
  codes = factors @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.4], [0.3, 0.0, 1.0]]) + 0.5 * rs.normal(size=(400, 3))
  result = dis.factor_vae_from_arrays(codes, factors, random_state=7, batch_size=batch_size, num_train=200,
                                      num_eval=100)
  train, evaluation = _reference(codes, factors, 7, batch_size, 200, 100)
  assert result["train_accuracy"] == pytest.approx(train) and result["eval_accuracy"] == pytest.approx(evaluation)
  assert result["num_active_dims"] == 3


def test_perfect_code_scores_one_and_noise_scores_chance():
  factors = _data()
  perfect = dis.factor_vae_from_arrays(factors[:, ::-1] * 1.0, factors, num_train=500, num_eval=300)
  assert perfect["train_accuracy"] == 1.0 and perfect["eval_accuracy"] == 1.0
  noise = np.random.RandomState(1).normal(size=(len(factors), 3))
  chance = dis.factor_vae_from_arrays(noise, factors, num_train=500, num_eval=300)
  assert chance["eval_accuracy"] < 0.5   # chance = 1/3


def test_agrees_with_the_sampling_form():
  """On one synthetic dataset and representation, the array form and `factor_vae_score` estimate one number."""
  sizes = (4, 5, 6)
  mixing = np.array([[1.0, 0.8, 0.0], [0.0, 1.0, 0.9], [0.6, 0.0, 1.0]])

  class Pixels:
    factors_num_values = list(sizes)
    num_factors = 3
    observation_shape = (1, 3, 1)

    def sample_factors(self, num, random_state):
      return np.stack([random_state.randint(n, size=num) for n in sizes], axis=1)

    def sample_observations_from_factors(self, factors, random_state):
      return np.asarray(factors, np.float32)[:, None, :, None]

    def sample(self, num, random_state):
      factors = self.sample_factors(num, random_state)
      return factors, self.sample_observations_from_factors(factors, random_state)

  noise = np.random.RandomState(5)
  represent = lambda images: images.reshape(len(images), -1) @ mixing + 0.8 * noise.normal(size=(len(images), 3))
  sampled = dis.factor_vae_score(Pixels(), represent, 0, num_train=600, num_eval=600, num_variance_estimate=3000)
  factors = _data(6000, seed=2)
  arrays = dis.factor_vae_from_arrays(represent(factors[:, None, :, None].astype(np.float32)), factors,
                                      num_train=600, num_eval=600)
  assert 0.4 < sampled["eval_accuracy"] < 0.95   # a middling code: the comparison means something
  assert arrays["eval_accuracy"] == pytest.approx(sampled["eval_accuracy"], abs=0.1)


def test_bad_input_is_named():
  with pytest.raises(ValueError, match="factors must have shape"):
    dis.factor_vae_from_arrays(np.zeros((10, 2)), np.zeros((9, 2), int))
  assert dis.factor_vae_from_arrays(np.zeros((10, 2)), _data(10)) == {
      "train_accuracy": 0., "eval_accuracy": 0., "num_active_dims": 0}
