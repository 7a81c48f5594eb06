"""Inception-v3 port (torchvision and pytorch-fid variants) and FID's Fréchet distance against the upstream code.

The weights are random and defined by a numpy recipe (tests/fixtures/inception/README.md); the fixture holds only
inputs and the outputs torchvision 0.29.1 / pytorch-fid 0.3.0 computed with them.
"""
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_path
from ganlatent_jax.metrics import generator_metrics as gm
from ganlatent_jax.nets import inception as inc
from ganlatent_jax.port import inception as port
from ganlatent_jax.port.keys import CheckpointKeyError

TOL = dict(atol=1e-4, rtol=1e-4)


def recipe_value(key, shape):
  """The fixture's weight recipe (same as tests/fixtures/inception/make_fixture.py, documented in its README)."""
  rs = np.random.RandomState(zlib.crc32(key.encode()))
  if key.endswith(".conv.weight"):
    value = rs.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
  elif key.endswith(".bn.weight"):
    value = 1.0 + 0.1 * rs.standard_normal(shape)
  elif key.endswith(".bn.running_var"):
    value = 0.5 + rs.uniform(size=shape)
  elif key == "fc.weight":
    value = rs.standard_normal(shape) / np.sqrt(shape[1])
  elif key == "fc.bias":
    value = 0.05 * rs.standard_normal(shape)
  else:
    value = 0.1 * rs.standard_normal(shape)
  return value.astype(np.float32)


def state_dict_shapes(num_classes, widths=None):
  widths = widths or inc.standard_conv_widths()
  inputs = inc.conv_input_widths(widths)
  shapes = {}
  for name in inc.conv_names():
    shapes[f"{name}.conv.weight"] = (widths[name], inputs[name], *port._kernel_shape(name))
    for suffix in ("weight", "bias", "running_mean", "running_var"):
      shapes[f"{name}.bn.{suffix}"] = (widths[name],)
  shapes["fc.weight"], shapes["fc.bias"] = (num_classes, inputs["fc"]), (num_classes,)
  return shapes


def recipe_state_dict(num_classes):
  return {key: recipe_value(key, shape) for key, shape in state_dict_shapes(num_classes).items()}


@pytest.fixture(scope="module")
def io():
  return np.load(fixture_path("inception/inception_io.npz"))


@pytest.fixture(scope="module")
def torchvision_state():
  state = recipe_state_dict(1000)
  # What the official file also holds: BN counters and the training-only aux head (both ignored).
  state["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.array(0, np.int64)
  state["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
  return state


def nhwc(a):
  return np.asarray(a).transpose(0, 2, 3, 1)


def test_torchvision_inception_matches_torchvision(io, torchvision_state):
  config, variables = port.convert_inception(torchvision_state, "recipe-tv", keep_fc=True)
  assert config["variant"] == "torchvision" and config["num_classes"] == 1000
  module = inc.build_inception(config)
  out = jax.jit(module.apply)(variables, nhwc(io["tv_x"]))
  np.testing.assert_allclose(out["pool3"], io["tv_pool3"], **TOL)
  np.testing.assert_allclose(out["logits"], io["tv_logits"], **TOL)
  transformed = inc.build_inception({**config, "transform_input": True})
  np.testing.assert_allclose(jax.jit(transformed.apply)(variables, nhwc(io["tv_x"]))["logits"],
                             io["tv_logits_transform_input"], **TOL)


def test_fid_inception_matches_pytorch_fid(io):
  model = port.inception_from_state_dict(recipe_state_dict(1008), "recipe-fid")
  assert model.module.variant == "fid" and model.module.num_classes == 0
  features = inc.compute_features(model, nhwc(io["fid_x"]), batch_size=2)
  np.testing.assert_allclose(features, io["fid_pool3"], **TOL)


def test_fid_blocks_differ_from_torchvision_blocks():
  x = jnp.asarray(np.random.RandomState(0).standard_normal((1, 5, 5, 2)).astype(np.float32))
  included, excluded = inc.avg_pool_3x3(x, True), inc.avg_pool_3x3(x, False)
  np.testing.assert_allclose(included[0, 2, 2], excluded[0, 2, 2], rtol=1e-6)  # interior: same
  np.testing.assert_allclose(excluded[0, 0, 0], x[0, :2, :2].mean(axis=(0, 1)), rtol=1e-6)  # corner: 4 pixels
  np.testing.assert_allclose(included[0, 0, 0], x[0, :2, :2].sum(axis=(0, 1)) / 9, rtol=1e-6)
  assert [inc.block_pool(k, b, "fid") for b, k in inc.BLOCKS if k in "ACE"] == ["avg_exclude_pad"] * 8 + ["max"]
  assert {inc.block_pool(k, b, "torchvision") for b, k in inc.BLOCKS if k in "ACE"} == {"avg"}


def test_converter_reads_widths_from_the_checkpoint():
  widths = {name: max(1, w // 16) for name, w in inc.standard_conv_widths().items()}
  state = {key: np.zeros(shape, np.float32) for key, shape in state_dict_shapes(10, widths).items()}
  config, variables = port.convert_inception(state, "narrow", variant="fid", keep_fc=True)
  assert dict(config["conv_widths"]) == widths and config["num_classes"] == 10 and config["variant"] == "fid"
  assert variables["params"]["Mixed_7c"]["branch_pool"]["conv"]["kernel"].shape == (1, 1, 128, 12)


@pytest.mark.parametrize("mutation,message", [
    ("drop:Mixed_6b.branch7x7_2.bn.running_var", r"missing keys: \['Mixed_6b\.branch7x7_2\.bn\.running_var'\]"),
    ("add:Mixed_6b.extra.weight", r"unexpected keys: \['Mixed_6b\.extra\.weight'\]"),
    ("kernel:Mixed_6b.branch7x7_2.conv.weight", r"Mixed_6b\.branch7x7_2\.conv\.weight: checkpoint \(128, 128, 7, 1\)"),
    ("width:Mixed_5b.branch1x1.conv.weight", r"Mixed_5c\.branch1x1\.conv\.weight: checkpoint \(64, 256, 1, 1\), "
                                             r"expected \(64, 257, 1, 1\)"),
])
def test_converter_names_bad_keys(mutation, message):
  state = {key: np.zeros(shape, np.float32) for key, shape in state_dict_shapes(1008).items()}
  action, key = mutation.split(":")
  if action == "drop":
    del state[key]
  elif action == "add":
    state[key] = np.zeros(3, np.float32)
  elif action == "kernel":
    state[key] = np.zeros((128, 128, 7, 1), np.float32)
  else:  # one more output channel in Mixed_5b → Mixed_5c's inputs no longer match
    state[key] = np.zeros((65, 192, 1, 1), np.float32)
    for suffix in ("weight", "bias", "running_mean", "running_var"):
      state[f"Mixed_5b.branch1x1.bn.{suffix}"] = np.zeros(65, np.float32)
  with pytest.raises(CheckpointKeyError, match=message):
    port.convert_inception(state, "broken")


def test_converter_refuses_other_networks():
  with pytest.raises(CheckpointKeyError, match="not an Inception-v3 state dict"):
    port.convert_inception({"features.0.weight": np.zeros((8, 3, 3, 3), np.float32)}, "vgg.pth")


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # the singular case warns, as in pytorch-fid
@pytest.mark.parametrize("case", ["frechet", "frechet_singular"])
def test_frechet_distance_matches_pytorch_fid(io, case):
  value = gm.frechet_distance_from_features(io[f"{case}_a"], io[f"{case}_b"])
  np.testing.assert_allclose(value, float(io[f"{case}_value"]), rtol=1e-6)


def test_fid_preprocess_resizes_and_rescales():
  images = jnp.full((1, 10, 10, 1), 0.25)
  out = inc.fid_preprocess(images)
  assert out.shape == (1, 299, 299, 3)
  np.testing.assert_allclose(out, -0.5, atol=1e-6)
  with pytest.raises(ValueError, match="NHWC"):
    inc.fid_preprocess(jnp.zeros((1, 3, 10, 10)))
