"""BigGAN-deep port: parity with the upstream PyTorch outputs (fixture README §2), converter checks, loading, jit."""
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_path
from ganlatent_jax import generators
from ganlatent_jax.generators import biggan
from ganlatent_jax.generators.formats import biggan_pretrained as port_biggan
from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port.keys import CheckpointKeyError

TINY_DIR = "biggan/biggan_tiny"
LEGACY_FILE = "legacy/biggan_tiny_pytorch_model_legacy.bin"
TOL = dict(atol=1e-4, rtol=1e-4)


def nchw(x):
  return np.asarray(x).transpose(0, 3, 1, 2)


def assert_trees_equal(a, b):
  flat_a, flat_b = (dict(jax.tree_util.tree_flatten_with_path(t)[0]) for t in (a, b))
  assert flat_a.keys() == flat_b.keys()
  for path in flat_a:
    np.testing.assert_array_equal(np.asarray(flat_a[path]), np.asarray(flat_b[path]), err_msg=str(path))


@pytest.fixture(scope="module")
def io_arrays():
  return dict(np.load(fixture_path("biggan/biggan_tiny_io.npz")))


@pytest.fixture(scope="module")
def intermediates():
  return dict(np.load(fixture_path("biggan/biggan_tiny_intermediates.npz")))


@pytest.fixture(scope="module")
def converted():
  return port_biggan.convert(str(fixture_path(TINY_DIR)))


@pytest.fixture(scope="module")
def generator(converted):
  config, variables = converted
  return biggan.build(config, variables, source="biggan_tiny")


# One compiled program per truncation (it is static); the t=0.4 one also returns every feature tap, so the image and
# intermediate checks share a compilation (the machine running the suite is small).
@jax.jit
def _images_and_features_t0p4(gen, z, class_vector):
  return (gen(z, class_vector=class_vector, truncation=0.4),
          gen.features(z, gen.info.feature_layers, class_vector=class_vector, truncation=0.4))


@pytest.fixture(scope="module")
def t0p4_outputs(generator, io_arrays):
  return _images_and_features_t0p4(generator, io_arrays["z_t0p4"], io_arrays["class_onehot"])


@pytest.mark.parametrize("truncation,suffix", [(0.4, "t0p4"), (1.0, "t1p0"), (0.637, "t0p637")])
def test_images_match_upstream(generator, io_arrays, t0p4_outputs, truncation, suffix):
  z = io_arrays[f"z_{suffix}"]
  if truncation == 0.4:
    image = t0p4_outputs[0]
  else:
    render = jax.jit(lambda gen, z, c: gen(z, class_vector=c, truncation=truncation))
    image = render(generator, z, io_arrays["class_onehot"][:len(z)])
  assert image.shape == (len(z), 128, 128, 3)
  np.testing.assert_allclose(nchw(image), io_arrays[f"img_{suffix}"], **TOL)


INTERMEDIATE_TAPS = [("embed", "embed"), ("cond_vector", "cond_vector"), ("gen_z", "gen_z_out")] + [
    (f"layers.{i}", f"layer{i}_out") for i in range(11)]


@pytest.mark.parametrize("tap,fixture_key", INTERMEDIATE_TAPS)
def test_intermediates_match_upstream(t0p4_outputs, intermediates, io_arrays, tap, fixture_key):
  # The intermediates are sample 0 of the t=0.4 batch.
  np.testing.assert_array_equal(intermediates["z"], io_arrays["z_t0p4"][:1])
  assert float(intermediates["truncation"]) == pytest.approx(0.4)
  ours = np.asarray(t0p4_outputs[1][tap][:1])
  expected = intermediates[fixture_key]
  if ours.ndim == 4:
    expected = expected.reshape(1, -1) if tap == "gen_z" else expected.transpose(0, 2, 3, 1)
    ours = ours.reshape(1, -1) if tap == "gen_z" else ours  # gen_z is stored flat, in NHWC order
  np.testing.assert_allclose(ours, expected, **TOL)


def test_spectral_norm_sigmas_match_upstream(io_arrays, tiny_state_and_config):
  _, sigmas = port_biggan.convert_state_dict(*tiny_state_and_config)
  names = [str(n) for n in io_arrays["sn_sigma_names"]]
  assert len(names) == 126 and sorted(sigmas) == sorted(names)
  np.testing.assert_allclose([sigmas[n] for n in names], io_arrays["sn_sigma_values"], rtol=1e-5)


def test_generator_info(generator):
  info = generator.info
  assert (info.family, info.latent_dim, info.image_shape, info.num_classes) == ("biggan", 128, (128, 128, 3), 1000)
  assert info.latent_spaces == ("z",) and info.output_range == (-1.0, 1.0)
  assert info.feature_layers[:3] == ("embed", "cond_vector", "gen_z") and info.feature_layers[-1] == "layers.10"
  hash(info)  # static part of the pytree
  assert json.loads(json.dumps(info.config_dict()))["channel_width"] == 4


def test_legacy_file_with_config_path(converted):
  config, variables = port_biggan.convert(str(fixture_path(LEGACY_FILE)),
                                          config_path=str(fixture_path(f"{TINY_DIR}/config.json")))
  assert config == converted[0]
  assert_trees_equal(variables, converted[1])


@pytest.mark.parametrize("weights_name,config_name", [
    ("biggan_tiny_legacy.bin", "config.json"),                               # sibling config.json
    ("biggan-deep-128-pytorch_model.bin", "biggan-deep-128-config.json"),    # the package's S3 cache names
    ("weights.pth", "weights.json"),
])
def test_generators_load_finds_sibling_config(tmp_path, converted, weights_name, config_name):
  shutil.copy(fixture_path(LEGACY_FILE), tmp_path / weights_name)
  shutil.copy(fixture_path(f"{TINY_DIR}/config.json"), tmp_path / config_name)
  gen = generators.load(tmp_path / weights_name)
  assert gen.info.family == "biggan"
  assert_trees_equal(gen.variables, biggan.build(*converted).variables)


def test_missing_config_is_a_clear_error(tmp_path):
  shutil.copy(fixture_path(LEGACY_FILE), tmp_path / "lonely.bin")
  with pytest.raises(FileNotFoundError, match="config_path="):
    port_biggan.convert(str(tmp_path / "lonely.bin"))


def test_generators_load_directory_and_converted_roundtrip(tmp_path, converted, generator):
  gen = generators.load(fixture_path(TINY_DIR))
  assert gen.module == generator.module and gen.info.family == "biggan"
  assert_trees_equal(gen.variables, generator.variables)
  generators.save_converted(tmp_path / "converted", *converted, source="biggan_tiny")
  reloaded = generators.load(tmp_path / "converted")
  assert reloaded.module == generator.module
  assert_trees_equal(reloaded.variables, generator.variables)


def test_sniff():
  assert port_biggan.sniff(str(fixture_path(TINY_DIR)), None)
  state = torch_pickle.load_torch_file(fixture_path(LEGACY_FILE))
  assert port_biggan.sniff(str(fixture_path(LEGACY_FILE)), state)
  other = torch_pickle.load_torch_file(fixture_path("stylegan2/stylegan2_rosinality_s32.pt"))
  assert not port_biggan.sniff("stylegan2.pt", other)


@pytest.fixture(scope="module")
def tiny_state_and_config():
  state = torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(fixture_path(f"{TINY_DIR}/pytorch_model.bin")))
  config = port_biggan.read_upstream_config(str(fixture_path(f"{TINY_DIR}/config.json")))
  return state, config


def _rename(old, new):
  def corrupt(state):
    state[new] = state.pop(old)
    return [old, new]
  return corrupt


def _drop_last_row(key):
  def corrupt(state):
    state[key] = state[key][:-1]
    return ["mis-shaped", key]
  return corrupt


def _add_key(key, like):
  def corrupt(state):
    state[key] = state[like]
    return ["unexpected", key]
  return corrupt


@pytest.mark.parametrize("corrupt", [
    _rename("generator.layers.3.conv_1.weight_orig", "generator.layers.3.conv_1.weight"),
    _rename("embeddings.weight", "embedding.weight"),
    _drop_last_row("generator.layers.9.bn_0.running_means"),
    _add_key("generator.layers.8.bn_0.running_means", "generator.layers.9.bn_0.running_means"),  # 8 is SelfAttn
], ids=["renamed_sn_weight", "renamed_embeddings", "misshaped_stats", "unexpected_key"])
def test_bad_checkpoint_is_refused_by_key(corrupt, tiny_state_and_config):
  state, config = dict(tiny_state_and_config[0]), tiny_state_and_config[1]
  expected_names = corrupt(state)
  with pytest.raises(CheckpointKeyError) as error:
    port_biggan.convert_state_dict(state, config, source="tiny.bin")
  for name in ["tiny.bin"] + expected_names:
    assert name in str(error.value)


def test_config_disagreeing_with_weights_is_refused(tiny_state_and_config):
  state, config = tiny_state_and_config
  config = biggan.normalize_config({**config, "channel_width": 8})
  with pytest.raises(CheckpointKeyError, match="generator.gen_z.weight_orig"):
    port_biggan.convert_state_dict(state, config)


@pytest.mark.parametrize("truncation,expected", [
    (0.4, (20, 1.0, 0.0)), (1.0, (50, 1.0, 0.0)), (0.637, (31, 0.85, 0.15))])
def test_statistics_selection_reproduces_upstream_swapped_weights(truncation, expected):
  index, w0, w1 = biggan.statistics_weights(truncation, 51)
  assert index == expected[0]
  np.testing.assert_allclose([w0, w1], expected[1:], atol=1e-9)


def test_truncation_must_be_static_and_in_range(generator, io_arrays):
  z, classes = io_arrays["z_t1p0"], io_arrays["class_onehot"][:2]
  with pytest.raises(ValueError, match=r"\(0, 1\]"):
    generator(z, class_vector=classes, truncation=1.5)
  with pytest.raises(TypeError, match="static"):
    jax.jit(lambda t: generator(z, class_vector=classes, truncation=t))(0.5)
  with pytest.raises(ValueError, match="class vector"):
    generator(z, truncation=0.5)


def test_truncated_noise_and_one_hot():
  z = biggan.truncated_noise(jax.random.PRNGKey(0), 64, 0.5, z_dim=128)
  assert z.shape == (64, 128) and z.dtype == jnp.float32
  assert float(jnp.abs(z).max()) <= 1.0 and float(z.std()) > 0.3
  onehot = biggan.one_hot([0, 207, 999])
  assert onehot.shape == (3, 1000) and float(onehot.sum()) == 3.0 and float(onehot[1, 207]) == 1.0


# The published layouts (package configs for 256 and 512), at a tiny width: shapes only (eval_shape, no compute).
LAYOUT_256 = [[False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8], [True, 8, 8],
              [False, 8, 4], [True, 4, 4], [False, 4, 2], [True, 2, 2], [False, 2, 1], [True, 1, 1]]
LAYOUT_512 = LAYOUT_256[:6] + [[False, 8, 8], [True, 8, 4], [False, 4, 4], [True, 4, 2], [False, 2, 2],
                               [True, 2, 1], [False, 1, 1], [True, 1, 1]]


@pytest.mark.parametrize("resolution,layout", [(128, biggan.UPSTREAM_DEFAULTS["layers"]), (256, LAYOUT_256),
                                               (512, LAYOUT_512)])
def test_published_layouts_build_and_give_the_right_shape(resolution, layout):
  config = {"output_dim": resolution, "channel_width": 4, "layers": layout, "num_classes": 10, "z_dim": 16}
  variables = jax.eval_shape(lambda: biggan.init_variables(config, jax.random.PRNGKey(0)))
  gen = biggan.build(config, jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), variables), "init")
  out = jax.eval_shape(lambda g: g(jnp.zeros((2, 16)), class_vector=jnp.array([1, 2]), truncation=0.5), gen)
  assert out.shape == (2, resolution, resolution, 3)
  assert gen.info.feature_layers[-1] == f"layers.{len(layout)}"


def test_inconsistent_config_is_refused():
  with pytest.raises(ValueError, match="output_dim"):
    biggan.normalize_config({"output_dim": 256})
  with pytest.raises(ValueError, match="halve"):
    biggan.normalize_config({"layers": [[False, 16, 16], [True, 16, 4]] + [[True, 4, 4]] * 3, "output_dim": 128})


def test_embed_cond_vector_and_gen_z_methods(generator, intermediates):
  apply = lambda method, *args: generator.module.apply(generator.variables, *args, method=method)
  class_id = int(np.argmax(intermediates["class_onehot"][0]))
  for class_vector in (intermediates["class_onehot"], np.array([class_id])):  # one-hot or integer ids
    np.testing.assert_allclose(apply("embed", class_vector), intermediates["embed"], **TOL)
  cond = apply("cond_vector", intermediates["z"], intermediates["class_onehot"])
  np.testing.assert_allclose(cond, intermediates["cond_vector"], **TOL)
  np.testing.assert_allclose(apply("gen_z", cond).reshape(1, -1), intermediates["gen_z_out"], **TOL)
