"""The sampling metrics are never silent for minutes: each loop (codes, boosted trees, votes, β-VAE points) shows a
progress line with its count and ETA on stderr, and the bars change no score (they never touch random_state)."""
import numpy as np
import pytest
from test_metrics_disentanglement import SMALL, FactorPixels, entangled_and_noisy

from ganlatent_jax import console
from ganlatent_jax.metrics import disentanglement as dis

# metric → the progress lines it must print, as "label: final count/total" (tqdm's last state of each bar).
EXPECTED = {
    "mig": ["MIG: codes: 100%|", "500/500"],
    "dci": ["DCI: train codes", "60/60", "DCI: test codes", "30/30", "DCI: boosted trees", "3/3"],
    "factor_vae_score": ["FactorVAE: global variances", "8/8", "FactorVAE: train votes", "150/150",
                         "FactorVAE: eval votes", "100/100"],
    "beta_vae_score": ["β-VAE: train points", "150/150", "β-VAE: eval points", "100/100"],
}
BUDGETS = {**SMALL, "dci": dict(num_train=60, num_test=30)}  # boosted trees on 200 points took 19 s under load


def _score(metric, progress_enabled):
  console.set_progress_enabled(progress_enabled)
  try:
    return getattr(dis, metric)(FactorPixels(), entangled_and_noisy(), np.random.RandomState(0), **BUDGETS[metric])
  finally:
    console.set_progress_enabled(True)


@pytest.mark.parametrize("metric", sorted(EXPECTED))
def test_each_sampling_loop_reports_progress_and_no_score_changes(metric, capsys):
  shown = _score(metric, True)
  err = capsys.readouterr().err
  for text in EXPECTED[metric]:
    assert text in err, (text, err)
  assert "<" in err  # tqdm's elapsed<remaining: the ETA
  assert len(err.splitlines()) <= 4 * len(EXPECTED[metric])  # no terminal: start and end lines, not one per step
  silent = _score(metric, False)
  assert capsys.readouterr().err == ""
  assert shown == silent
