"""`python -m ganlatent_jax.evaluate`: writes metrics.json; FID plumbing; method dispatch; config errors."""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import fixture_path
from ganlatent_jax import cli, methods
from ganlatent_jax import evaluate as evaluate_lib
from ganlatent_jax.directions.base import Directions
from ganlatent_jax.metrics import generator_metrics as gm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "evaluate_3dshapes.py")
STYLEGAN2 = str(fixture_path("stylegan2/stylegan2_rosinality_s32.pt"))
TINY_VGG = str(fixture_path("torchvision/tv_vgg16_tiny.pth"))
# A tiny run: the s32 StyleGAN2 fixture, LPIPS baseline on the width-reduced VGG16 fixture (real heads need VGG16).
TINY = [f"--config.generator={STYLEGAN2}", f"--config.evaluation.protocol.lpips.vgg16_path={TINY_VGG}"]


def _evaluate(*args, timeout=300):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", "ganlatent_jax.evaluate", *args], capture_output=True, text=True,
                        timeout=timeout, env=env, cwd=REPO)


def tiny_config(metrics=("tpl",), **overrides):
  config = cli.load_config(CONFIG + ":quick")
  config.generator, config.evaluation.protocol.lpips.vgg16_path = STYLEGAN2, TINY_VGG
  config.evaluation.metrics = metrics
  for key, value in overrides.items():
    config[key] = value
  return config


@pytest.mark.slow   # 53 s in the default suite of 2026-12-02 (machine loaded by a run): moved for the default suite's ~10 min budget (CI's suite took 16.5 min); the
# default suite keeps the command's --help subprocess and its in-process runs below
def test_cli_writes_metrics_json(tmp_path):
  result = _evaluate(f"--config={CONFIG}:quick", f"--workdir={tmp_path}", "--config.evaluation.metrics=('tpl','ppl_w')", *TINY)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["evaluation"] == ["tpl", "ppl_w"] and metrics["generator"] == STYLEGAN2
  tpl = metrics["tpl"]
  assert len(tpl["per_dim"]) == 2 and tpl["num_traversals"] == 2 and tpl["points_per_dim"] == 3
  assert tpl["tpl"] == pytest.approx(sum(tpl["per_dim"][d] for d in tpl["active_dims"]))
  assert metrics["ppl_w"]["num_samples"] == 4 and np.isfinite(metrics["ppl_w"]["ppl"])
  assert np.load(tmp_path / "ppl_w_distances.npy").shape == (4,)
  assert set(metrics["seconds"]) == {"tpl", "ppl_w"}
  # The command refreshes the report with the new scores, and prints the summary naming it.
  page = (tmp_path / "report.html").read_text()
  assert '<table class="metrics">' in page and "ppl_w" in page and ">tpl</td>" in page
  assert f"report:  {tmp_path / 'report.html'}" in result.stdout


@pytest.mark.slow   # 81 s in the default suite of 2026-12-02 (loaded machine): moved for its ~10 min budget
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 4 samples of 128-d features: singular Σ
def test_fid_and_directions_from_a_file(tmp_path, monkeypatch):
  from ganlatent_jax.nets import inception as inc
  from ganlatent_jax.port import inception as port_inception

  def narrow_inception(path, variant=None):  # stands in for a 100 MB Inception file: same code, 1/16 widths
    from test_inception import recipe_value, state_dict_shapes
    widths = {name: max(1, w // 16) for name, w in inc.standard_conv_widths().items()}
    state = {k: recipe_value(k, s) for k, s in state_dict_shapes(1008, widths).items()}
    return port_inception.inception_from_state_dict(state, path, variant=variant)

  monkeypatch.setattr(port_inception, "load_inception", narrow_inception)
  np.savez(tmp_path / "reference.npz", mu=np.zeros(128), sigma=np.eye(128))
  rotation = np.linalg.qr(np.random.RandomState(0).standard_normal((64, 3)))[0]
  Directions(rotation, "w").save(tmp_path / "directions.npz")
  config = tiny_config(("fid", "tpl"), directions=str(tmp_path / "directions.npz"))
  config.evaluation.protocol.tpl.dims = "all"
  config.evaluation.protocol.fid.update(dict(inception="narrow.pth", reference=str(tmp_path / "reference.npz"),
                                             num_samples=4, batch_size=2))
  metrics = evaluate_lib.evaluate(config, str(tmp_path))
  stats = np.load(tmp_path / "fid_generated_stats.npz")
  expected = gm.frechet_distance(stats["mu"], stats["sigma"], np.zeros(128), np.eye(128))
  assert metrics["fid"]["fid"] == pytest.approx(expected) and metrics["fid"]["variant"] == "fid"
  assert metrics["tpl"]["space"] == "w" and len(metrics["tpl"]["per_dim"]) == 3
  assert json.loads((tmp_path / "metrics.json").read_text())["fid"]["num_samples"] == 4


def test_a_method_config_runs_the_method_evaluate(tmp_path, monkeypatch):
  calls = []
  monkeypatch.setitem(methods.REGISTRY, "sefa", SimpleNamespace(evaluate=lambda c, w: calls.append((c, w)) or {"x": 1}))
  config = cli.load_config(os.path.join(REPO, "configs", "sefa_3dshapes.py:quick"))
  assert evaluate_lib.evaluate(config, str(tmp_path)) == {"x": 1} and calls == [(config, str(tmp_path))]


def test_a_method_config_on_a_missing_run_names_the_file(tmp_path):
  config = cli.load_config(os.path.join(REPO, "configs", "sefa_3dshapes.py:quick"))
  config.generator = STYLEGAN2
  with pytest.raises(FileNotFoundError, match="directions.npz does not exist"):
    evaluate_lib.evaluate(config, str(tmp_path))


@pytest.mark.parametrize("metrics,overrides,message", [
    (("tpl", "is"), {}, r"config\.evaluation\.metrics=\('tpl', 'is'\)"),
    ((), {}, r"config\.evaluation\.metrics=\(\)"),
    (("fid",), {}, r"config\.evaluation\.protocol\.fid\.inception is empty"),
    (("tpl",), {"truncation": 0.0}, r"config\.truncation=0\.0: truncation ψ must be > 0"),
])
def test_config_errors_name_the_key(tmp_path, metrics, overrides, message):
  with pytest.raises(ValueError, match=message):
    evaluate_lib.evaluate(tiny_config(metrics, **overrides), str(tmp_path))


def test_cli_rejects_unknown_override(tmp_path):
  result = _evaluate(f"--config={CONFIG}", f"--workdir={tmp_path}", "--config.evaluation.protocol.tpl.num_points=3",
                     timeout=120)
  assert result.returncode != 0 and "num_points" in result.stderr
  assert _evaluate("--help", timeout=120).returncode == 0
