"""The ground-truth quality measure: coverage/confidence of a factor classifier, and the Fréchet distance."""
import numpy as np
import pytest

from ganlatent_jax.data.base import GroundTruthData
from ganlatent_jax.metrics import quality


class Squares(GroundTruthData):
  """A tiny ground-truth dataset: a bright 2×2 square (4×4 positions) of one of 3 grey levels on 8×8 images."""
  factor_names = ("level", "row", "col")
  factors_num_values = (3, 4, 4)
  observation_shape = (8, 8, 1)

  def sample_observations_from_factors(self, factors, random_state=None):
    factors = self.check_factors(factors)
    images = np.zeros((len(factors), 8, 8, 1), np.float32)
    for i, (level, row, col) in enumerate(factors):
      images[i, 2 * row:2 * row + 2, 2 * col:2 * col + 2] = 0.4 + 0.3 * level
    return images


@pytest.fixture(scope="module")
def classifier():
  return quality.train_factor_classifier(Squares(), steps=300, batch_size=32, learning_rate=3e-3, width=8,
                                         feature_dim=32, seed=0)


def test_real_images_are_covered_with_reference_confidence(classifier):
  assert min(classifier.train_accuracy) > 0.95
  dataset = Squares()
  _, held_out = dataset.sample(400, np.random.RandomState(5))
  report = quality.quality_report(classifier, dataset, held_out, seed=6)
  assert report["generated"]["coverage"] == pytest.approx(1.0)
  assert report["real"]["coverage"] == pytest.approx(1.0)
  assert abs(report["confidence_gap"]) < 0.02
  assert report["generated"]["mean_confidence"] > 0.8
  assert "| level |" in quality.format_report(report)


def test_a_generator_that_always_draws_the_same_image_has_low_coverage(classifier):
  dataset = Squares()
  _, one = dataset.sample(1, np.random.RandomState(0))
  degenerate = np.repeat(one, 400, axis=0)
  report = quality.quality_report(classifier, dataset, degenerate, seed=6)
  # One value per factor is covered: 3 of the 11 (factor, value) pairs.
  assert report["generated"]["coverage"] == pytest.approx(3 / 11)
  _, held_out = dataset.sample(400, np.random.RandomState(5))
  real_report = quality.quality_report(classifier, dataset, held_out, seed=6)
  assert report["frechet_distance"] > 10 * max(real_report["frechet_distance"], 1e-3)
  assert report["frechet_distance"] > 10 * report["frechet_distance_real_vs_real"]


def test_coverage_counts_only_confident_predictions():
  probs = [np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])]
  stats = quality.coverage_and_confidence(probs, threshold=0.7)
  assert stats["coverage_per_factor"] == [0.5, 1 / 3]
  assert stats["coverage"] == pytest.approx(2 / 5)
  np.testing.assert_allclose(stats["confidence_per_factor"], [0.75, 0.65])
  np.testing.assert_allclose(stats["mean_confidence"], 0.7)


def test_frechet_distance_of_gaussians_matches_the_closed_form():
  rng = np.random.RandomState(0)
  a = rng.randn(20000, 3) * np.array([1.0, 2.0, 0.5])
  b = rng.randn(20000, 3) * np.array([2.0, 1.0, 0.5]) + np.array([1.0, 0.0, 0.0])
  # Diagonal covariances: ‖Δμ‖² + Σ (σa − σb)².
  want = 1.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
  assert quality.frechet_distance(a, b) == pytest.approx(want, abs=0.1)
  assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


class BarsOrSquares(Squares):
  """Level 0 draws a full-width bar at the row instead of a square: its column is not in the image."""

  def sample_observations_from_factors(self, factors, random_state=None):
    images = super().sample_observations_from_factors(factors, random_state)
    factors = self.check_factors(factors)
    for i, (level, row, _) in enumerate(factors):
      if level == 0:
        images[i, 2 * row:2 * row + 2, :] = 0.4
    return images

  def identifiable_labels(self, factors):
    labels, mask = super().identifiable_labels(factors)
    mask[:, 2] = labels[:, 0] != 0
    return labels, mask


def test_a_factor_the_image_does_not_show_is_neither_trained_nor_counted():
  # Trained on every image, the column head learns to hedge on bars; masked, it is judged on squares only.
  class BarsLabelledAsSquares(BarsOrSquares):
    identifiable_labels = GroundTruthData.identifiable_labels

  kwargs = dict(steps=300, batch_size=32, learning_rate=3e-3, width=8, feature_dim=32, seed=0)
  for dataset, column_confidence in ((BarsOrSquares(), lambda c: c > 0.9),
                                     (BarsLabelledAsSquares(), lambda c: c < 0.85)):
    classifier = quality.train_factor_classifier(dataset, **kwargs)
    _, held_out = dataset.sample(400, np.random.RandomState(5))
    report = quality.quality_report(classifier, dataset, held_out, seed=6)
    assert report["real"]["coverage"] == pytest.approx(1.0)
    assert column_confidence(report["real"]["confidence_per_factor"][2]), report["real"]


def test_coverage_reads_predictions_through_the_datasets_identifiable_labels():
  class Merged(Squares):
    identifiable_num_values = (3, 3, 4)

    def identifiable_labels(self, factors):   # rows 2 and 3 look the same; the column shows only at level 2
      labels, mask = super().identifiable_labels(factors)
      labels[:, 1] = np.minimum(labels[:, 1], 2)
      mask[:, 2] = labels[:, 0] == 2
      return labels, mask

  one_hot = lambda values, n: np.eye(n)[values]
  probs = [one_hot([2, 2, 0], 3), one_hot([2, 3, 1], 4), one_hot([0, 1, 3], 4)]
  stats = quality.coverage_and_confidence(probs, dataset=Merged())
  # Rows 2 and 3 are one value (2 of 3 seen); column 3 is predicted at level 0, where the column is masked.
  assert stats["coverage_per_factor"] == [2 / 3, 2 / 3, 2 / 4]
  assert stats["coverage"] == pytest.approx(6 / 10)


def _one_hot(labels, n):
  return np.eye(n)[labels]


def test_latent_probe_finds_a_linearly_encoded_factor_and_not_a_random_one():
  rs = np.random.RandomState(0)
  w = rs.randn(1200, 4)
  linear = (w[:, 0] + 0.5 * w[:, 1] > 0).astype(int) + (w[:, 0] > 1.0).astype(int)   # 3 values, linear in w
  unrelated = rs.randint(0, 4, size=1200)                                           # no relation to w
  probs = [_one_hot(linear, 3), _one_hot(unrelated, 4)]
  probe = quality.latent_probe({"w": w, "noise": rs.randn(1200, 4)}, probs)
  assert probe["w"][0] > 0.95
  assert probe["noise"][0] < probe["majority"][0] + 0.05
  assert abs(probe["w"][1] - probe["majority"][1]) < 0.1 and probe["majority"][1] < 0.35
  with pytest.raises(ValueError, match="one row per image"):
    quality.latent_probe({"w": w[:10]}, probs)


def test_latent_probe_scores_a_masked_factor_only_where_the_image_shows_it():
  rs = np.random.RandomState(1)
  z = rs.randn(1600, 3)
  level = np.where(z[:, 0] > 0, 2, 0)       # BarsOrSquares: level 0 is a bar, whose column the image does not show
  row = rs.randint(0, 4, 1600)
  column = (z[:, 1] > 0).astype(int) * 3   # linear in z where the image shows it
  column[level == 0] = rs.randint(0, 4, (level == 0).sum())   # noise where the factor is not shown
  probs = [_one_hot(level, 3), _one_hot(row, 4), _one_hot(column, 4)]
  unmasked = quality.latent_probe({"z": z}, probs)
  masked = quality.latent_probe({"z": z}, probs, BarsOrSquares())
  assert masked["z"][2] > 0.95 > unmasked["z"][2]
  assert masked["z"][0] > 0.95


def _report(frechet, floor, gap, confidences, coverage=1.0):
  return {"generated": {"coverage": coverage, "confidence_per_factor": confidences}, "factor_names": ["a", "b"],
          "frechet_distance": frechet, "frechet_distance_real_vs_real": floor, "confidence_gap": gap}


@pytest.mark.parametrize("report,met", [
    (_report(400.0, 100.0, 0.02, [0.95, 0.92]), [True, True, True, True]),
    (_report(600.0, 100.0, 0.05, [0.95, 0.85], coverage=0.8), [False, False, False, False]),
])
def test_quality_targets_say_which_target_is_met(report, met):
  targets = quality.quality_targets(report)
  assert [t[1] for t in targets] == met
  assert targets[1][2].startswith(f"{report['frechet_distance']:.4g} = {report['frechet_distance'] / 100:.1f}×")
  assert ("lowest: b" in targets[3][2])


def test_a_cached_classifier_keeps_its_training_accuracy(tmp_path, classifier):
  # Before 2026-12-05 the cache held the params only: every run or `evaluate` that read it reported no training
  # accuracy (the labels' quality) — the re-evaluated PS-SC cells lost their record of it.
  path = str(tmp_path / "classifier.msgpack")
  quality.save_classifier(classifier, path)
  loaded = quality.load_or_train_classifier(Squares(), path, width=8, feature_dim=32)
  assert loaded.train_accuracy == classifier.train_accuracy and len(loaded.train_accuracy) == 3
  images = Squares().sample(16, np.random.RandomState(0))[1]
  np.testing.assert_array_equal(loaded.predict(images)[0][0], classifier.predict(images)[0][0])
  (tmp_path / "classifier.json").unlink()   # a cache of before: the params alone
  assert quality.load_or_train_classifier(Squares(), path, width=8, feature_dim=32).train_accuracy == ()


def test_a_cached_classifier_of_other_factors_is_refused_naming_the_record(tmp_path, classifier):
  path = str(tmp_path / "classifier.msgpack")
  quality.save_classifier(classifier, path)
  class Renamed(Squares):
    factor_names = ("grey", "row", "col")
  with pytest.raises(ValueError, match=r"classifier\.json.*\['level', 'row', 'col'\]"):
    quality.load_or_train_classifier(Renamed(), path, width=8, feature_dim=32)
