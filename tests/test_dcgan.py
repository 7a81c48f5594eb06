"""The DCGAN generator family: contract (build/init_variables/Generator), shapes, features, and the maths against
an independent NumPy implementation of PyTorch's Linear/BatchNorm(eval)/ConvTranspose2d/tanh."""
import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax.generators import dcgan
from ganlatent_jax.port.keys import CheckpointKeyError

load = importlib.import_module("ganlatent_jax.generators.load")  # the package re-exports a `load` function
TINY = dcgan.make_config(latent_dim=5, channels=[8, 4], out_channels=3, kernel_size=5)


def _numpy_conv_transpose(x, kernel, stride, padding, output_padding):
  """Scatter definition: out[s·i + t - p] += x[i] · w[t] (PyTorch's ConvTranspose2d), NHWC, kernel (kh, kw, I, O)."""
  b, h, w, _ = x.shape
  kh, kw, _, c_out = kernel.shape
  full = np.zeros((b, (h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding, c_out))
  for i in range(h):
    for j in range(w):
      full[:, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum("bc,hwco->bhwo", x[:, i, j], kernel)
  out_h = (h - 1) * stride - 2 * padding + kh + output_padding
  out_w = (w - 1) * stride - 2 * padding + kw + output_padding
  return full[:, padding:padding + out_h, padding:padding + out_w]


def _numpy_forward(variables, z, config):
  params, stats = variables["params"], variables["batch_stats"]

  def bn_relu(x, name):
    s, p = stats[f"{name}_bn"], params[f"{name}_bn"]
    return np.maximum((x - s["mean"]) / np.sqrt(s["var"] + dcgan.BN_EPS) * p["scale"] + p["bias"], 0)

  c0 = config["channels"][0]
  x = (z @ params["project"]["kernel"] + params["project"]["bias"]).reshape(len(z), 4, 4, c0)
  x = bn_relu(x, "project")
  k = config["kernel_size"]
  n = len(config["channels"])
  for i in range(n):
    x = _numpy_conv_transpose(x, params[f"up{i}"]["kernel"], 2, (k - 1) // 2, 1) + params[f"up{i}"]["bias"]
    if i < n - 1:
      x = bn_relu(x, f"up{i}")
  return np.tanh(x)


def _random_variables(config, seed=0):
  """init_variables with every leaf randomised (BN statistics too), so the test sees every parameter."""
  variables = dcgan.init_variables(config, jax.random.PRNGKey(seed))
  leaves, treedef = jax.tree_util.tree_flatten(variables)
  rng = np.random.default_rng(seed)
  leaves = [(rng.uniform(0.5, 1.5, l.shape) if l.ndim == 1 else rng.normal(0, 0.3, l.shape)).astype(np.float32)
            for l in leaves]
  return jax.tree_util.tree_unflatten(treedef, leaves)


def test_matches_numpy_reference():
  variables = _random_variables(TINY)
  generator = dcgan.build(TINY, variables, "test")
  z = np.random.default_rng(1).normal(size=(2, 5)).astype(np.float32)
  expected = _numpy_forward(jax.tree_util.tree_map(np.asarray, variables), z, TINY)
  np.testing.assert_allclose(np.asarray(generator(jnp.asarray(z))), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("channels,size", [([8, 4], 16), ([8, 4, 4], 32)])
def test_generator_contract(channels, size):
  config = dcgan.make_config(latent_dim=5, channels=channels, out_channels=3, kernel_size=3)
  generator = dcgan.build(config, dcgan.init_variables(config, jax.random.PRNGKey(0)), "test")
  assert generator.info.family == "dcgan" and generator.image_shape == (size, size, 3)
  z = generator.sample_z(jax.random.PRNGKey(1), 2)
  images = jax.jit(lambda g, z: g(z))(generator, z)
  assert images.shape == (2, size, size, 3) and float(jnp.max(jnp.abs(images))) <= 1.0
  features = generator.features(z, generator.info.feature_layers)
  assert features["project"].shape == (2, 4, 4, 8)
  np.testing.assert_allclose(features["output"], images, atol=1e-6)
  grad = jax.grad(lambda z: jnp.sum(generator(z) ** 2))(z)
  assert grad.shape == z.shape and bool(jnp.all(jnp.isfinite(grad)))
  json.dumps(config)
  hash(generator.info)


def test_family_is_registered_and_round_trips(tmp_path):
  variables = dcgan.init_variables(TINY, jax.random.PRNGKey(0))
  load.save_converted(tmp_path / "g", TINY, variables, "test")
  generator = load.load(tmp_path / "g")
  z = jnp.ones((1, 5))
  np.testing.assert_allclose(generator(z), dcgan.build(TINY, variables)(z), atol=1e-6)


def test_bad_inputs_raise_clear_errors():
  variables = dcgan.init_variables(TINY, jax.random.PRNGKey(0))
  wrong = dcgan.make_config(latent_dim=5, channels=[8, 6], out_channels=3, kernel_size=5)
  with pytest.raises(CheckpointKeyError, match="up0"):
    dcgan.build(wrong, variables, "test")
  with pytest.raises(ValueError, match="kernel_size"):
    dcgan.make_config(kernel_size=4)
  with pytest.raises(ValueError, match="z of shape"):
    dcgan.build(TINY, variables)(jnp.ones((1, 7)))
