"""β-VAE (methods/betavae.py) and the `vae` generator family (generators/vae.py): the ELBO terms against numpy, the
App. B architecture, the transposed conv's lowering, config errors, a tiny problem's loss going down, the decoder
loading as a generator; (slow) the quick config through the CLI, resumed, loaded and re-evaluated."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax import cli, generators, parallel
from ganlatent_jax.generators import vae
from ganlatent_jax.methods import betavae
from ganlatent_jax.nets import layers

REPO = pathlib.Path(__file__).resolve().parents[1]


def _quick_config(**overrides):
  config = cli.load_config(str(REPO / "configs" / "betavae_dsprites.py:quick"))
  config.update(overrides)
  return config


# ---------------------------------------------------------------------------------------------------------------
# The ELBO terms against an independent numpy reference.

@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_kl_is_the_kl_of_diagonal_gaussians(scale):
  rng = np.random.RandomState(int(scale * 10))
  mean, log_std = rng.randn(5, 4) * scale, rng.randn(5, 4) * scale
  # KL(N(μ1, σ1²) ‖ N(μ2, σ2²)) = log(σ2/σ1) + (σ1² + (μ1 − μ2)²)/(2σ2²) − ½, here μ2 = 0, σ2 = 1
  sigma = np.exp(log_std)
  reference = np.log(1.0 / sigma) + (sigma ** 2 + mean ** 2) / 2.0 - 0.5
  np.testing.assert_allclose(betavae.gaussian_kl(jnp.asarray(mean), jnp.asarray(log_std)), reference, rtol=1e-5,
                             atol=1e-6)
  assert float(jnp.max(jnp.abs(betavae.gaussian_kl(jnp.zeros((2, 3)), jnp.zeros((2, 3)))))) == 0.0


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("scale", [0.5, 8.0])
def test_bernoulli_nll_is_the_summed_binary_cross_entropy(binary, scale):
  rng = np.random.RandomState(int(scale) + binary)
  logits = rng.randn(3, 6, 6, 1) * scale
  images = (rng.rand(3, 6, 6, 1) > 0.5).astype(np.float64) if binary else rng.rand(3, 6, 6, 1)
  p = 1.0 / (1.0 + np.exp(-logits))
  reference = -np.sum(images * np.log(p) + (1 - images) * np.log1p(-p), axis=(1, 2, 3))
  got = betavae.bernoulli_nll(jnp.asarray(logits, jnp.float32), jnp.asarray(images, jnp.float32))
  np.testing.assert_allclose(got, reference, rtol=1e-4)


TINY = dict(latent_dim=3, channels=[4, 4], hidden=8, image_size=16, out_channels=1)


@pytest.fixture(scope="module")
def tiny_nets():
  nets = betavae.Nets(vae.encoder_from_config(TINY), vae.module_from_config(TINY))
  params = {"encoder": vae.init_encoder_variables(TINY, jax.random.key(0))["params"],
            "decoder": vae.init_variables(TINY, jax.random.key(1))["params"]}
  return nets, params


_encode = jax.jit(lambda encoder, params, images: encoder.apply({"params": params}, images), static_argnums=0)
_logits = jax.jit(lambda decoder, params, z: decoder.apply({"params": params}, z, method="logits"), static_argnums=0)
_loss = jax.jit(betavae.negative_elbo, static_argnums=0)
_render = jax.jit(lambda gen, z: gen(z))


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_negative_elbo_is_reconstruction_plus_beta_kl(tiny_nets, beta):
  nets, params = tiny_nets
  images = jnp.asarray(np.random.RandomState(0).rand(4, 16, 16, 1) > 0.7, jnp.float32)
  key = jax.random.key(3)
  loss, metrics = _loss(nets, params, images, key, beta)
  # the same z by hand: μ + σ·ε with ε from the same key, then the numpy formulas
  mean, log_std = (np.asarray(a, np.float64) for a in _encode(nets.encoder, params["encoder"], images))
  z = mean + np.exp(log_std) * np.asarray(jax.random.normal(key, mean.shape))
  logits = np.asarray(_logits(nets.decoder, params["decoder"], jnp.asarray(z, jnp.float32)), np.float64)
  x = np.asarray(images, np.float64)
  bce = np.sum(np.logaddexp(0, logits) - x * logits, axis=(1, 2, 3))
  kl = np.sum(0.5 * (mean ** 2 + np.exp(2 * log_std) - 1) - log_std, axis=1)
  np.testing.assert_allclose(loss, np.mean(bce + beta * kl), rtol=1e-4)
  np.testing.assert_allclose(metrics["elbo"], -np.mean(bce + kl), rtol=1e-4)
  np.testing.assert_allclose(metrics["kl"], np.mean(kl), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# The App. B architecture.

def test_the_app_b_architecture_has_the_table_1_shapes():
  config = vae.make_config()
  encoder = jax.eval_shape(lambda: vae.init_encoder_variables(config, jax.random.key(0)))["params"]
  decoder_variables = jax.eval_shape(lambda: vae.init_variables(config, jax.random.key(0)))
  decoder = decoder_variables["params"]
  shapes = lambda tree: {name: tuple(layer["kernel"].shape) for name, layer in tree.items()}  # noqa: E731
  assert shapes(encoder) == {"conv0": (4, 4, 1, 32), "conv1": (4, 4, 32, 32), "conv2": (4, 4, 32, 32),
                             "conv3": (4, 4, 32, 32), "dense0": (4 * 4 * 32, 256), "dense1": (256, 256),
                             "mean": (256, 10), "log_std": (256, 10)}
  # the second dense layer feeds the 4×4×32 reshape (Table 1's "256" cannot: see generators/vae.py)
  assert shapes(decoder) == {"dense0": (10, 256), "dense1": (256, 512), "up0": (4, 4, 32, 32),
                             "up1": (4, 4, 32, 32), "up2": (4, 4, 32, 32), "up3": (4, 4, 32, 1)}
  gen = vae.build(config, jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), decoder_variables))
  assert gen.info.family == "vae" and gen.image_shape == (64, 64, 1) and gen.info.output_range == (0.0, 1.0)
  assert jax.eval_shape(gen, jnp.zeros((2, 10))).shape == (2, 64, 64, 1)
  features = jax.eval_shape(lambda z: gen.features(z, ["dense1", "up0", "up2", "output"]), jnp.zeros((1, 10)))
  assert features["up0"].shape == (1, 8, 8, 32) and features["up2"].shape == (1, 32, 32, 32)
  mean, log_std = jax.eval_shape(vae.encoder_from_config(config).apply,
                                 vae.init_encoder_variables(config, jax.random.key(0)), jnp.zeros((3, 64, 64, 1)))
  assert mean.shape == log_std.shape == (3, 10)


@pytest.mark.parametrize("size", [2, 5])
def test_the_upsampling_is_a_same_padded_k4_s2_transposed_conv(size):
  """UpConv's lowering computes PyTorch's ConvTranspose2d(4, stride 2, padding 1) (TF's 'SAME'): XLA's reference."""
  x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
  module = vae.UpConv(5)
  variables = module.init(jax.random.key(1), x)
  expected = layers.conv_transpose2d(x, variables["params"]["kernel"], stride=2, padding=1, lowering="xla")
  got = module.apply(variables, x)
  assert got.shape == (2, 2 * size, 2 * size, 5)
  np.testing.assert_allclose(got, expected + variables["params"]["bias"], rtol=1e-5, atol=1e-5)


def test_the_decoder_loads_as_a_generator(tmp_path):
  config = vae.make_config(**{k: v for k, v in TINY.items()})
  variables = jax.device_get(vae.init_variables(config, jax.random.key(4)))
  generators.save_converted(tmp_path / "generator", config, variables, source="test")
  gen = generators.load(str(tmp_path / "generator"))
  z = jax.random.normal(jax.random.key(5), (2, 3))
  np.testing.assert_allclose(_render(gen, z), _render(vae.build(config, variables), z), rtol=1e-6)
  assert float(_render(gen, 3 * z).min()) >= 0.0 and float(_render(gen, 3 * z).max()) <= 1.0
  assert gen.info.output_range == (0.0, 1.0) and gen.image_shape == (16, 16, 1)


# ---------------------------------------------------------------------------------------------------------------
# Config errors name the key.

@pytest.mark.parametrize("overrides,message", [
    (dict(image_size=60), "image_size=60 is not divisible by 2\\*\\*4"),
    (dict(widths=3), "unknown config key\\(s\\) \\['widths'\\]"),
    (dict(channels=[]), "channels=\\[\\] must name at least one"),
])
def test_bad_architectures_fail_clearly(overrides, message):
  with pytest.raises(ValueError, match=message):
    vae.make_config(**overrides)


@pytest.mark.parametrize("key,value,message", [
    ("beta", -1.0, "config.beta=-1.0 must be >= 0"),
    ("optimizer.learning_rate", 0.0, "config.optimizer.learning_rate=0.0 must be > 0"),
    ("evaluation.metrics", ("dci",), "config.evaluation.metrics=\\('dci',\\)"),
    ("batch_size", 0, "config.batch_size=0 must be a positive integer"),
])
def test_bad_config_values_name_the_key(key, value, message):
  config = _quick_config()
  section, _, leaf = key.rpartition(".")
  (config[section] if section else config)[leaf] = value
  with pytest.raises(ValueError, match=message):
    betavae.check_config(config)


def test_an_architecture_that_does_not_match_the_data_names_the_keys():
  config = _quick_config()
  config.architecture.image_size = 32
  with pytest.raises(ValueError, match="config.data: dsprites has images \\(64, 64, 1\\).*config.architecture"):
    betavae.make(config, parallel.make_mesh(1))
  config.data.name = "mnist"
  with pytest.raises(ValueError, match="config.data=.*'mnist'.*unknown dataset"):
    betavae.make(config, parallel.make_mesh(1))


# ---------------------------------------------------------------------------------------------------------------
# Training.

class _Squares:
  """A tiny ground-truth dataset: one 4×4 square on a 16×16 frame, its position the two factors."""
  observation_shape = (16, 16, 1)

  def sample_factors(self, num, rng):
    return rng.randint(0, 13, size=(num, 2))

  def sample_observations_from_factors(self, factors, rng=None):
    images = np.zeros((len(factors), 16, 16, 1), np.float32)
    for image, (x, y) in zip(images, factors):
      image[y:y + 4, x:x + 4] = 1.0
    return images

  def sample(self, num, rng):
    factors = self.sample_factors(num, rng)
    return factors, self.sample_observations_from_factors(factors)


def test_a_few_hundred_steps_reduce_the_loss_on_a_tiny_problem():
  config = _quick_config(batch_size=16, beta=1.0)
  config.architecture.update(**{k: v for k, v in TINY.items()})
  config.optimizer.learning_rate = 3e-3
  mesh = parallel.make_mesh(1)
  init_fn, train_step, parts = betavae.make(config, mesh, dataset=_Squares())
  state = jax.jit(init_fn)(jax.random.key(0))
  losses = []
  for step in range(300):
    state, metrics = parts.loop_step(state, parallel.step_rng(0, step))
    losses.append(float(metrics["loss"]))
  assert int(state.step) == 300
  first, last = np.mean(losses[:10]), np.mean(losses[-20:])
  assert np.isfinite(losses).all() and last < 0.5 * first, (first, last)


@pytest.mark.slow   # ~90 s on the loaded 2-core machine: two CLI runs (compilation) and an evaluation
def test_quick_run_resumes_and_its_decoder_loads_as_a_generator(tmp_path):
  workdir = tmp_path / "run"
  base = [sys.executable, "-m", "ganlatent_jax.main", f"--config={REPO}/configs/betavae_dsprites.py:quick",
          f"--workdir={workdir}", "--config.evaluation.enabled=False"]
  subprocess.run(base + ["--config.steps=2"], check=True, cwd=REPO, capture_output=True)
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2"]
  second = subprocess.run(base + ["--config.steps=4"], check=True, cwd=REPO, capture_output=True, text=True)
  assert "resuming from" in second.stderr and "step 2" in second.stderr
  assert "4" in os.listdir(workdir / "checkpoints")
  gen = generators.load(str(workdir / "generator"))
  assert gen.info.family == "vae" and gen.image_shape == (64, 64, 1) and gen.info.output_range == (0.0, 1.0)
  assert (workdir / "encoder.msgpack").exists() and (workdir / "images" / "traversal.png").exists()
  config = _quick_config()
  metrics = betavae.evaluate(config, str(workdir))
  assert metrics["step"] == 4 and len(metrics["kl_per_dim"]) == config.architecture.latent_dim
  assert set(metrics["encoder_mean"]) >= {"mig", "factor_vae"}
  assert json.loads((workdir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
  again = betavae.evaluate(config, str(workdir))   # the same draws: the same numbers
  assert again["reconstruction"] == metrics["reconstruction"] and again["kl_per_dim"] == metrics["kl_per_dim"]
