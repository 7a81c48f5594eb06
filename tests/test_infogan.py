"""InfoGAN: the mutual-information loss against a direct computation, and short CLI runs writing traversals + metrics."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from PIL import Image

from ganlatent_jax import generators
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
  d_loss, d_metrics = terms.d_loss(latents, q_out, None)
  g_loss, _ = terms.g_loss(latents, q_out)
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


QUICK = {
    "infogan_dsprites": [],
    "infogan_3dshapes": ["--config.data.resolution=16", "--config.generator.size=16",
                         "--config.generator.channels=(8,8,4)", "--config.generator.style_dim=8",
                         "--config.generator.n_mlp=1", "--config.discriminator.width=4",
                         "--config.discriminator.max_width=8"],
}
COMMON = ["--config.steps=2", "--config.batch_size=8", "--config.log_every=1", "--config.checkpoint_every=2",
          "--config.image_every=0", "--config.progress_bar=False", "--config.infogan.num_codes=3",
          "--config.discriminator.aux_hidden=8", "--config.eval.mig_num_points=300",
          "--config.eval.factor_vae_batch_size=8", "--config.eval.factor_vae_num_train=20",
          "--config.eval.factor_vae_num_eval=10", "--config.eval.factor_vae_num_variance=64"]


@pytest.mark.parametrize("name", ["infogan_dsprites",
                                  pytest.param("infogan_3dshapes", marks=pytest.mark.slow)])
def test_cli_run_writes_traversals_and_metrics(name, tmp_path):
  overrides = list(QUICK[name])
  if name == "infogan_dsprites":
    pytest.importorskip("ganlatent_jax.generators.dcgan", reason="the dcgan generator family is not available")
    overrides += DSPRITES_TINY
  command = [sys.executable, "-m", "ganlatent_jax.main", f"--config={REPO / 'configs' / (name + '.py')}",
             f"--workdir={tmp_path}", *COMMON, *overrides]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, env=dict(os.environ))
  assert result.returncode == 0, result.stderr[-3000:]
  pngs = sorted(p.name for p in (tmp_path / "traversals").glob("*.png"))
  assert pngs == ["code_0.png", "code_1.png", "code_2.png"]
  # Rows: 6 base latents, columns: 9 code values, 2-pixel gaps; grey dSprites shown as RGB.
  h, w, _ = generators.load(str(tmp_path / "generator")).image_shape
  with Image.open(tmp_path / "traversals" / "code_0.png") as picture:
    assert picture.mode == "RGB" and picture.size == (9 * (w + 2) + 2, 6 * (h + 2) + 2)
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["step"] == 2
  assert 0.0 <= metrics["mig"] <= 1.0
  assert 0.0 <= metrics["factor_vae"]["eval_accuracy"] <= 1.0
  assert (tmp_path / "generator" / "generator.json").exists()


# Tiny widths for the dSprites DCGAN generator/discriminator (kept next to the test that uses them).
DSPRITES_TINY = ["--config.generator.channels=(16,8,8,8)", "--config.discriminator.width=4",
                 "--config.discriminator.max_width=16"]
