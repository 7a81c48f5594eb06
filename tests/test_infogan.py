"""InfoGAN: the mutual-information loss against a direct computation, and quick runs writing traversals + metrics that
`evaluate` reproduces from the checkpoint."""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from PIL import Image

from ganlatent_jax import cli, generators
from ganlatent_jax.methods import infogan

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("learn_std", [False, True])
@pytest.mark.parametrize("prior", ["uniform", "normal"])
def test_mi_loss_is_the_gaussian_negative_log_likelihood(learn_std, prior):
  terms = infogan.InfoGANTerms(latent_dim=7, num_codes=3, code_prior=prior, mi_weight=0.5, learn_std=learn_std)
  latents = terms.sample_latents(jax.random.key(0), 5)
  assert latents["c"].shape == (5, 3) and latents["z"].shape == (5, 4)
  assert terms.generator_input(latents).shape == (5, 7)
  if prior == "uniform":
    assert np.all(np.abs(np.asarray(latents["c"])) <= 1.0)
  q_out = jax.random.normal(jax.random.key(1), (5, terms.aux_outputs))
  c, q = np.asarray(latents["c"], np.float64), np.asarray(q_out, np.float64)
  std = np.exp(q[:, 3:6]) if learn_std else np.ones_like(c)
  direct = -np.mean(np.sum(scipy.stats.norm.logpdf(c, loc=q[:, :3], scale=std), axis=1))
  np.testing.assert_allclose(terms.mi_loss(latents, q_out), direct, rtol=1e-5)
  d_loss, d_metrics = terms.d_loss({}, latents, None, q_out, None, None)
  g_loss, _ = terms.g_loss({}, latents, None, q_out, None)
  np.testing.assert_allclose(d_loss, 0.5 * direct, rtol=1e-5)
  np.testing.assert_allclose(g_loss, d_loss)
  np.testing.assert_allclose(d_metrics["mi_nll"], direct, rtol=1e-5)


def test_mi_loss_is_minimal_at_the_true_codes():
  codes = jnp.asarray(np.random.RandomState(0).uniform(-1, 1, (16, 2)), jnp.float32)
  exact = infogan.gaussian_nll(codes, codes, learn_std=False)
  assert exact < infogan.gaussian_nll(codes, codes + 0.1, learn_std=False)
  np.testing.assert_allclose(exact, np.log(2 * np.pi), rtol=1e-6)  # 2 codes × ½·log 2π


def test_bad_code_settings_give_clear_errors():
  with pytest.raises(ValueError, match="num_codes=9"):
    infogan.InfoGANTerms(latent_dim=8, num_codes=9)
  with pytest.raises(ValueError, match="code_prior='beta'"):
    infogan.InfoGANTerms(latent_dim=8, num_codes=2, code_prior="beta")


@pytest.mark.parametrize("prior, noise, expected", [
    ("uniform", 6, (("uniform", 2), ("normal", 6))), ("uniform", 0, (("uniform", 2),)), ("normal", 6, ())])
def test_the_exported_prior_is_what_sample_latents_draws(prior, noise, expected):
  """G's input [c; z]: the exported generator's `latent_prior` segments, and draws that follow them."""
  terms = infogan.InfoGANTerms(latent_dim=2 + noise, num_codes=2, code_prior=prior)
  assert terms.latent_prior() == expected
  latents = terms.sample_latents(jax.random.key(0), 4000)
  g_input = np.asarray(terms.generator_input(latents))
  start = 0
  for kind, size in expected:
    part = g_input[:, start:start + size]
    assert (np.abs(part).max() <= 1.0) == (kind == "uniform")
    start += size


@pytest.mark.slow   # ~70 s each on an idle 2-core machine (measured 2026-12-01): the default suite took 22.6 min
@pytest.mark.parametrize("name", ["infogan_dsprites", "infogan_3dshapes"])
def test_quick_run_writes_traversals_and_metrics_that_evaluate_reproduces(name, tmp_path):
  config = cli.load_config(str(REPO / "configs" / f"{name}.py:quick"))
  outputs = infogan.train(config, str(tmp_path))
  assert set(outputs) == {"generator", "samples", "metrics", "traversal_code_0", "traversal_code_1",
                          "traversal_code_2"}
  assert all(pathlib.Path(p).exists() for p in outputs.values())
  # Rows: 6 base latents, columns: 9 code values, 2-pixel gaps; grey dSprites shown as RGB.
  exported = generators.load(outputs["generator"])
  h, w, _ = exported.image_shape
  assert exported.info.latent_prior == (("uniform", config.infogan.num_codes),
                                        ("normal", exported.latent_dim - config.infogan.num_codes))
  with Image.open(outputs["traversal_code_0"]) as picture:
    assert picture.mode == "RGB" and picture.size == (9 * (w + 2) + 2, 6 * (h + 2) + 2)
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  scores = metrics["q_head"]
  assert scores["step"] == 2 and 0.0 <= scores["factor_vae"]["eval_accuracy"] <= 1.0
  assert 0.0 <= scores["mig"] <= 1.0 or "mig_error" in scores
  assert 0.0 <= scores["dci"]["disentanglement"] <= 1.0
  assert metrics["generated_domain"]["labels"] == "classifier"
  for row in ("codes", "probe", "random"):   # 2 steps: the images may all get one label, then it is said so
    assert (0.0 <= metrics[row].get("generated_mig", 0.0) <= 1.0
            and "generated_mig" in metrics[row] or "generated_scores_undefined" in metrics[row]), metrics[row]
  # `python -m ganlatent_jax.evaluate`'s path: the checkpoint's Q head, the same seeds → the same numbers (the factor
  # classifier read from its cache with its training record: the same labeller and the same reported accuracy).
  (tmp_path / "metrics.json").unlink()
  again = json.loads(json.dumps(infogan.evaluate(config, str(tmp_path))))
  assert json.loads((tmp_path / "metrics.json").read_text()) == again
  assert again == metrics


@pytest.mark.parametrize("dataset", ["dsprites", "3dshapes"])
@pytest.mark.parametrize("variant", ["", ":quick"])
def test_configs_score_dci_with_a_budget_the_validator_accepts(dataset, variant):
  # The PS-SC table's "InfoGAN (ours)" row had no DCI beside the PS-SC rows' (2026-12-04): the configs did not ask
  # for it and EVALUATION_METRICS refused it although the shared scorer computes it.
  config = cli.load_config(str(REPO / "configs" / f"infogan_{dataset}.py{variant}"))
  metrics = tuple(config.evaluation.metrics)
  assert "dci" in metrics and set(metrics) <= set(infogan.EVALUATION_METRICS)
  assert config.evaluation.protocol.dci_num_train > 0 and config.evaluation.protocol.dci_num_test > 0


@pytest.mark.parametrize("dataset", ["dsprites", "3dshapes"])
def test_the_pssc_tables_infogan_row_scores_dci_on_the_pssc_rows_budget(dataset):
  from ganlatent_jax import runs
  pssc = cli.load_config(str(REPO / "configs" / f"pssc_{dataset}.py")).evaluation.protocol
  overrides = runs.aligned_budget(f"configs/infogan_{dataset}.py", f"configs/pssc_{dataset}.py", cwd=str(REPO))
  assert f"--config.evaluation.protocol.dci_num_train={pssc.dci_num_train}" in overrides
  assert f"--config.evaluation.protocol.dci_num_test={pssc.dci_num_test}" in overrides
