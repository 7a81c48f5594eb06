"""VGG16 (torchvision) and LPIPS (lpips 0.1.4) parity with the golden fixtures (README sections 4 and 5)."""
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_path
from ganlatent_jax.nets import lpips as lpips_net
from ganlatent_jax.nets.lpips import LPIPS, bilinear_resize_matrix, lpips_distance
from ganlatent_jax.nets.vgg import VGG, adaptive_avg_pool_matrix, build_vgg
from ganlatent_jax.port.keys import CheckpointKeyError
from ganlatent_jax.port import lpips as lpips_lib  # LPIPS from files (nets.lpips reads none)
from ganlatent_jax.port.lpips import convert_lpips_heads, load_lpips_heads, lpips_from_vgg_state_dict, shipped_heads_path
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file
from ganlatent_jax.port.torchvision import convert_vgg, load_vgg

TOL = dict(atol=1e-4, rtol=1e-4)
DIST_TOL = dict(atol=0, rtol=1e-5)
TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
VGG16_WIDTHS = (64, 128, 256, 512, 512)
# Standard VGG16 convs: (torchvision features index, C_in, C_out).
VGG16_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
               (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]


def recipe_vgg16_state_dict() -> dict:
  """The full-width random VGG16 backbone of the LPIPS fixtures (test data, defined in fixtures README §5)."""
  state = {}
  for index, c_in, c_out in VGG16_CONVS:
    rs = np.random.RandomState(5000 + index)
    state[f"features.{index}.weight"] = (rs.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2 / (c_in * 9))
                                         ).astype(np.float32)
    state[f"features.{index}.bias"] = (rs.standard_normal(c_out) * 0.05).astype(np.float32)
  return state


def nhwc(a):
  return np.asarray(a).transpose(0, 2, 3, 1)


def nchw(a):
  a = np.asarray(a)
  return a.transpose(*range(a.ndim - 3), a.ndim - 1, a.ndim - 3, a.ndim - 2)


@pytest.fixture(scope="module")
def recipe_state():
  return recipe_vgg16_state_dict()


@pytest.fixture(scope="module")
def recipe_lpips(recipe_state):
  return lpips_from_vgg_state_dict(recipe_state, "recipe-vgg16")


@pytest.fixture(scope="module")
def tiny_vgg_state():
  return flatten_state_dict(load_torch_file(fixture_path("torchvision/tv_vgg16_tiny.pth")))


def _all_lpips_outputs(model, x, y):
  dist, per_layer = model(x, y, return_per_layer=True)
  spatial, spatial_per_layer = model(x, y, spatial=True, return_per_layer=True)
  dist_normalize_flag = model((x + 1) / 2, (y + 1) / 2, normalize=True)
  return dict(dist=dist, per_layer=per_layer, spatial_total=spatial, spatial_per_layer=spatial_per_layer,
              dist_normalize_flag=dist_normalize_flag)


# ------------------------------------------------------------------------------------------------------------ VGG


def test_vgg16_taps_and_logits_match_torchvision():
  module, variables = load_vgg(fixture_path("torchvision/tv_vgg16_tiny.pth"))
  io = np.load(fixture_path("torchvision/tv_vgg16_tiny_io.npz"))
  out = jax.jit(module.apply)(variables, nhwc(io["x"]))
  for name in TAPS:
    np.testing.assert_allclose(nchw(out[name]), io[name], err_msg=name, **TOL)
  np.testing.assert_allclose(nchw(out["pool5"]), io["features_out"], **TOL)
  # A 2×2 map through AdaptiveAvgPool2d((7, 7)): the upsampling case.
  assert out["pool5"].shape[1:3] == (2, 2)
  np.testing.assert_allclose(out["logits"], io["logits"], **TOL)


def test_vgg_converter_reads_sizes_and_can_drop_classifier(tiny_vgg_state):
  config, variables = convert_vgg(tiny_vgg_state, "tiny", keep_classifier=True)
  assert config["block_widths"] == [[8, 8], [16, 16], [32, 32, 32], [64, 64, 64], [64, 64, 64]]
  assert config["classifier_widths"] == [64, 64, 1000]
  config, variables = convert_vgg(tiny_vgg_state, "tiny", keep_classifier=False)
  assert config["classifier_widths"] is None
  assert not any(name.startswith("classifier") for name in variables["params"])


@pytest.mark.parametrize("block_widths,classifier_widths", [
    (((4,), (8,), (8, 8), (16, 16), (16, 16)), (12, 12, 5)),  # VGG11 layout
    (((4, 4), (8, 8, 8, 8), (8,)), None),
])
def test_vgg_converter_reads_any_plain_vgg(block_widths, classifier_widths):
  module = VGG(block_widths=block_widths, classifier_widths=classifier_widths)
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 1)))
  rng = np.random.RandomState(4)
  variables = jax.tree_util.tree_map(lambda s: rng.standard_normal(s.shape).astype(np.float32), shapes)
  state = {}  # written back in torchvision's names and layouts
  for name, p in variables["params"].items():
    key = name.replace("_", ".")
    state[f"{key}.weight"] = p["kernel"].transpose(3, 2, 0, 1) if p["kernel"].ndim == 4 else p["kernel"].T
    state[f"{key}.bias"] = p["bias"]
  config, converted = convert_vgg(state, "roundtrip", keep_classifier=classifier_widths is not None)
  assert build_vgg(config) == module
  jax.tree_util.tree_map(np.testing.assert_array_equal, converted, variables)


@pytest.mark.parametrize("mutation,expected", [
    ("drop:features.12.bias", "missing keys: ['features.12.bias']"),
    ("add:features.12.running_mean", "unexpected keys: ['features.12.running_mean']"),
    ("reshape:classifier.3.bias", "classifier.3.bias"),
    ("reshape:features.14.bias", "features.14.bias"),
])
def test_vgg_converter_names_bad_keys(tiny_vgg_state, mutation, expected):
  state = dict(tiny_vgg_state)
  action, key = mutation.split(":")
  if action == "drop":
    del state[key]
  elif action == "add":
    state[key] = np.zeros(3, np.float32)
  else:
    state[key] = np.zeros(state[key].shape[0] + 1, np.float32)
  with pytest.raises(CheckpointKeyError, match=expected.replace("[", r"\[").replace("]", r"\]")):
    convert_vgg(state, "tiny")


@pytest.mark.parametrize("in_size,out_size", [(2, 7), (14, 7), (7, 7), (10, 7), (1, 7)])
def test_adaptive_avg_pool_matrix(in_size, out_size):
  matrix = adaptive_avg_pool_matrix(in_size, out_size)
  np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)
  if in_size % out_size == 0:  # plain average pooling
    k = in_size // out_size
    np.testing.assert_allclose(matrix, np.kron(np.eye(out_size), np.full((1, k), 1 / k)), rtol=1e-6)
  if in_size == 2:  # PyTorch: cells 0-2 read row 0, cell 3 averages both, cells 4-6 read row 1
    np.testing.assert_allclose(matrix[:, 0], [1, 1, 1, .5, 0, 0, 0])


# ------------------------------------------------------------------------------------------------ LPIPS weights


def test_shipped_heads_are_the_lpips_package_files():
  shipped = shipped_heads_path("vgg", "0.1")
  assert hashlib.sha256(shipped.read_bytes()).hexdigest() == (
      "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868")
  for version in ("0.0", "0.1"):
    for net, widths in [("vgg", VGG16_WIDTHS), ("alex", (64, 192, 384, 256, 256)),
                        ("squeeze", (64, 128, 256, 384, 384, 512, 512))]:
      path = shipped_heads_path(net, version)
      assert path.read_bytes() == fixture_path(f"lpips/lpips_weights/v{version}/{net}.pth").read_bytes()
      heads = load_lpips_heads(path)
      assert tuple(h.shape[0] for h in heads) == widths
      assert all(h.dtype == np.float32 for h in heads)


def test_heads_converter_names_bad_keys():
  state = flatten_state_dict(load_torch_file(shipped_heads_path("vgg", "0.1")))
  with pytest.raises(CheckpointKeyError, match=r"lin2\.model\.1\.weight"):
    convert_lpips_heads(state, "heads", channels=(64, 128, 32, 512, 512))
  with pytest.raises(CheckpointKeyError, match="5 LPIPS heads for a backbone with 4 taps"):
    convert_lpips_heads(state, "heads", channels=(64, 128, 256, 512))
  with pytest.raises(CheckpointKeyError, match=r"unexpected keys: \['lin0\.model\.1\.bias'\]"):
    convert_lpips_heads({**state, "lin0.model.1.bias": np.zeros(1, np.float32)}, "heads")


def test_recipe_backbone_matches_check_file(recipe_state):
  check = np.load(fixture_path("lpips/lpips_vgg16_backbone_recipe_check.npz"))
  assert {k.rsplit("__", 1)[0] for k in check.files} == set(recipe_state)
  for key, value in recipe_state.items():
    np.testing.assert_allclose(value.astype(np.float64).sum(), check[f"{key}__sum_f64"], rtol=1e-12, err_msg=key)
    np.testing.assert_array_equal(value.reshape(-1)[:16], check[f"{key}__first16"], err_msg=key)


# ------------------------------------------------------------------------------------------------------- LPIPS


def test_lpips_vgg_matches_lpips_package(recipe_lpips):
  io = np.load(fixture_path("lpips/lpips_vgg_io.npz"))
  out = jax.jit(_all_lpips_outputs)(recipe_lpips, nhwc(io["in0"]), nhwc(io["in1"]))
  np.testing.assert_allclose(out["dist"], io["dist"], **DIST_TOL)
  np.testing.assert_allclose(out["per_layer"], io["per_layer"], **TOL)
  np.testing.assert_allclose(out["dist_normalize_flag"], io["dist_normalize_flag"], **DIST_TOL)
  np.testing.assert_allclose(nchw(out["spatial_total"]), io["spatial_total"], **TOL)
  np.testing.assert_allclose(nchw(out["spatial_per_layer"]), io["spatial_per_layer"], **TOL)


def test_lpips_vgg_intermediates_match_lpips_package(recipe_lpips):
  io = np.load(fixture_path("lpips/lpips_vgg_detail32.npz"))
  x, y = nhwc(io["in0"]), nhwc(io["in1"])
  np.testing.assert_allclose(nchw(lpips_net.scale_inputs(x)), io["in0_scaled"], **TOL)
  np.testing.assert_allclose(nchw(lpips_net.scale_inputs(y)), io["in1_scaled"], **TOL)

  @jax.jit
  def run(model, x, y):
    return model.layer_differences(x, y), model.layer_maps(x, y), lpips_distance(x, y, model)

  diffs, maps, dist = run(recipe_lpips, x, y)
  for name in TAPS:
    np.testing.assert_allclose(nchw(diffs[name]), io[f"normdiff_{name}"], err_msg=name, **TOL)
    np.testing.assert_allclose(nchw(maps[name]), io[f"lin_{name}"], err_msg=name, **TOL)
  np.testing.assert_allclose(dist, io["dist"], **DIST_TOL)


def test_lpips_baseline_with_tiny_vgg_matches_lpips_package(tiny_vgg_state):
  io = np.load(fixture_path("lpips/lpips_vgg_io.npz"))
  expected = np.load(fixture_path("lpips/lpips_baseline_tinyvgg_io.npz"))
  model = lpips_from_vgg_state_dict(tiny_vgg_state, "tiny", heads=None)
  out = jax.jit(_all_lpips_outputs)(model, nhwc(io["in0"]), nhwc(io["in1"]))
  for name in ("dist", "dist_normalize_flag"):
    np.testing.assert_allclose(out[name], expected[name], err_msg=name, **DIST_TOL)
  np.testing.assert_allclose(out["per_layer"], expected["per_layer"], **TOL)
  np.testing.assert_allclose(nchw(out["spatial_total"]), expected["spatial_total"], **TOL)
  np.testing.assert_allclose(nchw(out["spatial_per_layer"]), expected["spatial_per_layer"], **TOL)


def test_lpips_gradient_is_finite(tiny_vgg_state):
  widths = (8, 16, 32, 64, 64)
  rng = np.random.RandomState(0)
  heads = [np.abs(rng.standard_normal(w)).astype(np.float32) for w in widths]
  model = lpips_from_vgg_state_dict(tiny_vgg_state, "tiny", heads=heads)
  x = jnp.asarray(rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32))
  # Identical images (zero difference) and constant images (features that may vanish at every channel).
  y = jnp.stack([x[0], jnp.full((32, 32, 3), -1.0), jnp.full((32, 32, 3), 1.0)])
  x = x.at[2].set(-1.0)

  grad_x = jax.jit(jax.grad(lambda a, b: jnp.sum(lpips_distance(a, b, model)), argnums=(0, 1)))(x, y)
  for g in grad_x:
    assert np.all(np.isfinite(np.asarray(g)))
  assert np.abs(np.asarray(grad_x[0][1])).max() > 0


def test_bilinear_upsample_matrix_matches_pytorch_sampling():
  # 2 → 5 (scale 0.4): sources clamp at 0, then (dst + 0.5)·0.4 − 0.5 = 0.1, 0.5, 0.9 (last clamps to index 1).
  np.testing.assert_allclose(bilinear_resize_matrix(2, 5),
                             [[1, 0], [0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0, 1]], atol=1e-6)
  np.testing.assert_allclose(bilinear_resize_matrix(4, 4), np.eye(4), atol=1e-7)


def test_lpips_is_a_pytree_with_static_backbone(tiny_vgg_state):
  model = lpips_from_vgg_state_dict(tiny_vgg_state, "tiny", heads=None)
  leaves, treedef = jax.tree_util.tree_flatten(model)
  assert all(isinstance(leaf, jax.Array) for leaf in leaves)
  assert jax.tree_util.tree_unflatten(treedef, leaves).backbone == model.backbone


def test_load_lpips_explains_where_vgg16_comes_from(monkeypatch, tmp_path):
  lpips_lib._default_lpips.cache_clear()
  monkeypatch.delenv(lpips_lib.VGG16_PATH_ENV, raising=False)
  with pytest.raises(FileNotFoundError, match=r"vgg16-397923af\.pth.*GANLATENT_VGG16_PATH"):
    lpips_lib.default_lpips()
  monkeypatch.setenv(lpips_lib.VGG16_PATH_ENV, str(tmp_path / "nowhere.pth"))
  with pytest.raises(FileNotFoundError, match=r"\$GANLATENT_VGG16_PATH points to .*nowhere\.pth"):
    lpips_lib.load_lpips()


def test_load_lpips_from_env_path_and_head_width_check(monkeypatch):
  lpips_lib._default_lpips.cache_clear()
  tiny = fixture_path("torchvision/tv_vgg16_tiny.pth")
  # The real heads need a full-width VGG16: a shrunk one is refused with the widths named.
  with pytest.raises(CheckpointKeyError, match=r"lin0\.model\.1\.weight: checkpoint \(1, 64, 1, 1\), expected "
                     r"\(1, 8, 1, 1\)"):
    lpips_lib.load_lpips(tiny)
  monkeypatch.setenv(lpips_lib.VGG16_PATH_ENV, str(tiny))
  model = lpips_lib.load_lpips(heads=None, version="0.0")
  assert isinstance(model, LPIPS) and model.heads is None and model.version == "0.0"
  with pytest.raises(ValueError, match=r"\(2, 16, 16, 3\) and \(1, 16, 16, 3\)"):
    model(jnp.zeros((2, 16, 16, 3)), jnp.zeros((1, 16, 16, 3)))
