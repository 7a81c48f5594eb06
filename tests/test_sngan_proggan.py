"""SN-GAN and ProgGAN (GANLatentDiscovery's generators) against the upstream PyTorch outputs (fixtures README §3)."""
import functools
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fixture_path

from ganlatent_jax import generators
from ganlatent_jax.generators import proggan as proggan_family
from ganlatent_jax.generators import sngan as sngan_family
from ganlatent_jax.port import sngan as sngan_format
from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port.keys import CheckpointKeyError, check_tree_shapes

SNGAN_FIXTURES = {"mnist": ("gld_sn_mnist", (32, 32, 1), [32, 32, 32, 32]),
                  "anime": ("gld_sn_anime", (64, 64, 3), [128, 64, 32, 16, 8])}
PROGGAN = "ganlatentdiscovery/gld_proggan_tiny.pth"
TOL = dict(atol=1e-4, rtol=1e-4)


def nchw(x):
  return np.asarray(x).transpose(0, 3, 1, 2)


@functools.lru_cache(maxsize=None)
def load_generator(relative):
  return generators.load(fixture_path(relative))


@functools.partial(jax.jit, static_argnames="layers")
def generate(g, z, layers=None):
  return g(z) if layers is None else g.features(z, layers)


@pytest.mark.parametrize("name", sorted(SNGAN_FIXTURES))
def test_sngan_image_and_taps(name):
  folder, image_shape, channels = SNGAN_FIXTURES[name]
  g = load_generator(f"ganlatentdiscovery/{folder}")
  io = np.load(fixture_path(f"ganlatentdiscovery/{folder}_io.npz"))
  assert g.info.family == "sngan" and g.info.image_shape == image_shape and g.latent_dim == 128
  assert g.info.config_dict()["channels"] == tuple(channels)
  image_tap = g.info.feature_layers[-1]  # the tanh output
  taps = generate(g, io["z"], layers=tuple(f"model.{i}" for i in range(1, 5)) + (image_tap,))  # one compile
  np.testing.assert_allclose(nchw(taps[image_tap]), io["img"], **TOL)
  for i in range(1, 5):
    np.testing.assert_allclose(nchw(taps[f"model.{i}"][:2]), io[f"after_model_{i}"], err_msg=f"model.{i}", **TOL)


def test_sngan_call_is_the_last_tap():
  g = load_generator("ganlatentdiscovery/gld_sn_mnist")
  z = jnp.ones((1, 128))
  jaxpr_call = jax.make_jaxpr(lambda z: g(z))(z)
  jaxpr_tap = jax.make_jaxpr(lambda z: g.features(z, [g.info.feature_layers[-1]])[g.info.feature_layers[-1]])(z)
  assert str(jaxpr_call) == str(jaxpr_tap)


def test_sngan_folder_and_weights_file_convert_alike():
  folder = fixture_path("ganlatentdiscovery/gld_sn_mnist")
  config_dir, variables_dir = generators.convert(folder)
  config_file, variables_file = generators.convert(folder / "generator.pt")
  assert config_dir == config_file and config_dir["model"] == "sn_resnet32"
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables_dir, variables_file)
  json.dumps(config_dir)  # saved to generator.json


def _mnist_state_dict():
  folder = fixture_path("ganlatentdiscovery/gld_sn_mnist")
  return torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(folder / "generator.pt"))


def test_sngan_wrong_key_is_refused_by_name():
  state_dict = _mnist_state_dict()
  state_dict["model.3.bypass.1.weight"] = state_dict.pop("model.3.model.4.running_var")
  with pytest.raises(CheckpointKeyError, match=r"model\.3\.model\.4\.running_var.*model\.3\.bypass\.1\.weight"):
    sngan_format.convert_state_dict(state_dict, "gen.pt")


def test_sngan_duplicated_convs_must_agree():
  state_dict = _mnist_state_dict()
  state_dict["model.4.model.6.weight"] = state_dict["model.4.model.6.weight"] + 1.0
  with pytest.raises(CheckpointKeyError, match=r"model\.4\.conv2.*model\.4\.model\.6"):
    sngan_format.convert_state_dict(state_dict, "gen.pt")


def test_sngan_args_json_is_checked_against_weights(tmp_path):
  folder = fixture_path("ganlatentdiscovery/gld_sn_mnist")
  shutil.copy(folder / "generator.pt", tmp_path / "generator.pt")
  args = json.loads((folder / "args.json").read_text())
  (tmp_path / "args.json").write_text(json.dumps({**args, "latent_dim": 64}))
  with pytest.raises(CheckpointKeyError, match="latent_dim=64"):
    generators.convert(tmp_path)


def test_autodetect_formats():
  assert generators.convert(fixture_path("ganlatentdiscovery/gld_sn_anime"))[0]["family"] == "sngan"
  config, _ = generators.convert(fixture_path(PROGGAN))
  assert config["family"] == "proggan" and config["latent_dim"] == 64 and len(config["channels"]) == 18


@pytest.fixture(scope="module")
def proggan_outputs():
  g = load_generator(PROGGAN)
  io = np.load(fixture_path("ganlatentdiscovery/gld_proggan_tiny_io.npz"))
  layers = tuple(f"features.{i}" for i in range(6)) + ("output",)
  return g, io, generate(g, io["z"].reshape(2, -1), layers=layers)  # one compile for the image and the taps


def test_proggan_image(proggan_outputs):
  g, io, taps = proggan_outputs
  img = nchw(taps["output"])
  assert g.info.image_shape == (1024, 1024, 3) and g.latent_dim == 64 and img.shape == (2, 3, 1024, 1024)
  np.testing.assert_allclose(img[:, :, ::16, ::16], io["img_sub16"], **TOL)
  np.testing.assert_allclose(img[:, :, 496:528, 496:528], io["img_crop_center"], **TOL)
  np.testing.assert_allclose(img[:, :, :32, :32], io["img_crop_topleft"], **TOL)
  np.testing.assert_allclose(img[:, :, -32:, -32:], io["img_crop_bottomright"], **TOL)
  img64 = img.astype(np.float64)  # float32 sums over 1M pixels drift by ~1e-3
  np.testing.assert_allclose(img64.mean(axis=(2, 3)), io["img_mean"], **TOL)
  np.testing.assert_allclose(img64.std(axis=(2, 3)), io["img_std"], atol=1e-6, rtol=1e-3)


def test_proggan_features(proggan_outputs):
  g, io, taps = proggan_outputs
  for i in range(6):
    np.testing.assert_allclose(nchw(taps[f"features.{i}"]), io[f"features_{i}"], err_msg=f"features.{i}", **TOL)


def test_proggan_accepts_upstream_latent_layout():
  g = load_generator(PROGGAN)
  io = np.load(fixture_path("ganlatentdiscovery/gld_proggan_tiny_io.npz"))
  taps = generate(g, io["z"], layers=("features.0",))  # (B, D, 1, 1), only the first block is computed
  np.testing.assert_allclose(nchw(taps["features.0"]), io["features_0"], **TOL)


def test_proggan_wrong_key_is_refused_by_name():
  state_dict = torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(fixture_path(PROGGAN)))
  state_dict["features.3.wscale.bias"] = state_dict.pop("features.3.wscale.b")
  from ganlatent_jax.generators.formats import proggan_gld as proggan_format
  with pytest.raises(CheckpointKeyError, match=r"features\.3\.wscale\.b\b.*features\.3\.wscale\.bias"):
    proggan_format.convert_state_dict(state_dict, "tiny.pth")


def test_unknown_feature_layer_is_refused():
  g = load_generator("ganlatentdiscovery/gld_sn_mnist")
  with pytest.raises(ValueError, match="model.99"):
    g.features(jnp.zeros((1, 128)), ["model.99"])


@pytest.mark.parametrize("family, fixture", [(sngan_family, "ganlatentdiscovery/gld_sn_anime"),
                                             (proggan_family, PROGGAN)])
def test_init_variables_match_converted_tree(family, fixture):
  config, variables = generators.convert(fixture_path(fixture))
  abstract = jax.eval_shape(lambda rng: family.init_variables(config, rng), jax.random.PRNGKey(0))  # no compile
  check_tree_shapes(abstract, variables, fixture)
  with pytest.raises(CheckpointKeyError, match="mis-shaped"):
    family.build({**config, "latent_dim": 9}, variables, fixture)


def test_converted_roundtrip(tmp_path):
  g = load_generator("ganlatentdiscovery/gld_sn_anime")
  config, variables = generators.convert(fixture_path("ganlatentdiscovery/gld_sn_anime"))
  generators.save_converted(tmp_path / "converted", config, variables)
  reloaded = generators.load(tmp_path / "converted")
  assert reloaded.info.config == g.info.config and reloaded.module == g.module
  jax.tree_util.tree_map(np.testing.assert_array_equal, reloaded.variables, g.variables)


@pytest.mark.slow  # random init compiles one RNG kernel per parameter: slow on CPU
@pytest.mark.parametrize("family, config, image_shape", [
    (sngan_family, {"family": "sngan", "latent_dim": 8, "channels": [8, 4, 4], "image_channels": 3}, (16, 16, 3)),
    (proggan_family, {"family": "proggan", "latent_dim": 8, "channels": [8, 8, 4, 4], "image_channels": 3},
     (8, 8, 3)),
])
def test_random_init_generates(family, config, image_shape):
  g = family.build(config, family.init_variables(config, jax.random.PRNGKey(0)), "random")
  out = jax.jit(lambda g, z: g(z))(g, g.sample_z(jax.random.PRNGKey(1), 2))
  assert out.shape == (2, *image_shape) and g.image_shape == image_shape and np.all(np.isfinite(out))
