"""StyleGAN2-ADA (NVlabs pickles) against upstream's outputs: every array of the fixtures' `_io.npz`, under jit.

Tolerances as tests/fixtures/README.md section 8: atol = rtol = 1e-4 for images and features, 1e-5 for ws.
One jitted function per fixture computes every output (a compile costs seconds on CPU).
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax.generators import stylegan2_ada
from ganlatent_jax.generators.formats import stylegan2_ada_nvlabs as fmt
from ganlatent_jax.port import nvlabs_pickle
from ganlatent_jax.port.keys import CheckpointKeyError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "nvlabs")
FEATURE_TAPS = ("b4", "b4.img", "b8", "b8.img", "b16", "b16.img", "b32", "b32.img")


def nchw(x):
  return np.transpose(np.asarray(x), (0, 3, 1, 2))


@functools.partial(jax.jit, static_argnames=("conditional",))
def _outputs(g, z, c, ws_in, noise_rng, conditional):
  c = c if conditional else None
  return {
      "ws_psi1": g._apply("ws", z, c),
      "ws_psi07": g._apply("ws", z, c, truncation=0.7),
      "ws_psi07_cutoff4": g._apply("ws", z, c, truncation=0.7, truncation_cutoff=4),
      "img_synth_const": g.synthesis(ws_in),  # a W+ input
      "img_synth_none": g.synthesis(ws_in, noise_mode="none"),
      "img_G_const": g(z, class_vector=c),
      "img_G_const_psi07": g(z, class_vector=c, truncation=0.7),
      "random": g(z, class_vector=c, noise_mode="random", noise_rng=noise_rng),
      "features": g.features(ws_in[:2], FEATURE_TAPS, input_is_latent=True),
  }


@pytest.fixture(scope="module", params=["ada_small", pytest.param("ada_cond_small", marks=pytest.mark.slow)])
def case(request):
  name = request.param
  snapshot = nvlabs_pickle.load_network_pickle(os.path.join(FIXTURES, f"{name}.pkl"))
  assert fmt.sniff(name, snapshot)
  config, variables = fmt.convert(name, snapshot)
  io = dict(np.load(os.path.join(FIXTURES, f"{name}_io.npz")))
  g = stylegan2_ada.build(config, variables, name)
  c = io.get("c", np.zeros((4, 5), np.float32))
  out = jax.device_get(_outputs(g, io["z"], c, io["ws_psi1"], jax.random.key(0), conditional="c" in io))
  return name, snapshot, config, g, io, out


def test_config_read_from_the_pickle(case):
  name, _, config, g, io, _ = case
  assert config["channels"] == [[4, 32], [8, 32], [16, 32], [32, 16]] and config["architecture"] == "skip"
  assert config["conv_clamp"] == (256.0 if name == "ada_small" else None)
  assert config["c_dim"] == (5 if "cond" in name else 0) and config["mapping_layers"] == 2
  assert g.info.num_ws == 8 and g.info.num_classes == config["c_dim"]
  np.testing.assert_array_equal(g.variables["buffers"]["w_avg"], io["w_avg"])


@pytest.mark.parametrize("key", ["ws_psi1", "ws_psi07", "ws_psi07_cutoff4"])
def test_mapping_and_truncation(case, key):
  _, _, _, _, io, out = case
  np.testing.assert_allclose(out[key], io[key], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("key", ["img_synth_const", "img_synth_none", "img_G_const", "img_G_const_psi07"])
def test_images(case, key):
  _, _, _, _, io, out = case
  np.testing.assert_allclose(nchw(out[key]), io[key], atol=1e-4, rtol=1e-4)
  # upstream's non-fused modulated conv is the same function (and is what our batched form computes)
  np.testing.assert_allclose(nchw(out["img_synth_const"]), io["img_synth_const_nonfused"], atol=1e-4, rtol=1e-4)


def test_block_features(case):
  _, _, _, _, io, out = case
  for res in (4, 8, 16, 32):
    np.testing.assert_allclose(nchw(out["features"][f"b{res}"]), io[f"feat_b{res}_x"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(nchw(out["features"][f"b{res}.img"]), io[f"feat_b{res}_img"], atol=1e-4, rtol=1e-4)


def test_random_noise_is_noise(case):
  _, _, _, _, io, out = case
  image = nchw(out["random"])
  assert np.isfinite(image).all()
  assert np.abs(image - io["img_G_const"]).max() > 1e-3 and np.abs(image - io["img_synth_none"]).max() > 1e-3


def test_non_ema_generator_G(case):
  name, snapshot, _, g_ema, io, _ = case
  config, variables = fmt.convert_network(snapshot["G"], name)
  g = stylegan2_ada.build(config, variables, name)
  c = io.get("c", np.zeros((4, 5), np.float32))
  out = jax.device_get(_outputs(g, io["z"], c, io["ws_psi1"], jax.random.key(0), conditional="c" in io))
  np.testing.assert_allclose(nchw(out["img_G_const"]), io["img_Gtrain_const"], atol=1e-4, rtol=1e-4)


# Only the conditional fixture has classes (and its case is slow: it compiles a second generator).
@pytest.mark.slow
@pytest.mark.parametrize("case", ["ada_cond_small"], indirect=True)
def test_conditional_needs_classes_and_accepts_ids(case):
  _, _, _, g, io, out = case
  with pytest.raises(ValueError, match="class_vector"):
    g.mapping(io["z"])
  ids = jnp.array([0, 2, 4, 1])
  w_ids = g.mapping(io["z"][:3], class_vector=ids[:3])
  np.testing.assert_allclose(w_ids, out["ws_psi1"][:3, 0], atol=1e-5, rtol=1e-5)


def test_missing_unexpected_and_misshaped_keys_are_named():
  snapshot = nvlabs_pickle.load_network_pickle(os.path.join(FIXTURES, "ada_small.pkl"))
  g = snapshot["G_ema"]
  nvlabs_pickle.submodule(g, "synthesis.b8.conv0").state["_parameters"].pop("noise_strength")
  mapping = nvlabs_pickle.submodule(g, "mapping").state
  mapping["_buffers"]["extra_buffer"] = np.zeros(3, np.float32)
  layer = nvlabs_pickle.submodule(g, "synthesis.b16.conv1").state
  layer["_parameters"]["bias"] = np.zeros(7, np.float32)
  with pytest.raises(CheckpointKeyError) as error:
    fmt.convert("ada_small.pkl", snapshot)
  message = str(error.value)
  assert "synthesis.b8.conv0.noise_strength" in message and "mapping.extra_buffer" in message
  assert "synthesis.b16.conv1.bias: checkpoint (7,), expected (32,)" in message


def test_init_variables_build_and_other_architectures():
  for architecture in ("orig", "resnet"):
    config = stylegan2_ada.make_config(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=1,
                                       channels={4: 8, 8: 4}, architecture=architecture, conv_clamp=0.5)
    g = stylegan2_ada.build(config, stylegan2_ada.init_variables(config, jax.random.key(1)))
    assert ("skip" in g.variables["params"]["synthesis_net"]["b8"]) == (architecture == "resnet")
    assert "torgb" not in g.variables["params"]["synthesis_net"]["b4"]
    image = jax.jit(lambda g, z: g(z))(g, jnp.ones((2, 8)))
    assert image.shape == (2, 8, 8, 3) and np.abs(np.asarray(image)).max() <= 0.5 + 1e-6  # conv_clamp holds


def test_sefa_genforce_variant_uses_the_ws_slot_affines(case):
  from ganlatent_jax.directions import closed_form
  name, snapshot, _, g, _, _ = case
  state = nvlabs_pickle.state_dict(snapshot["G_ema"])
  slots = ["b4.conv1"] + [f"b{r}.conv{i}" for r in (8, 16, 32) for i in (0, 1)] + ["b32.torgb"]
  weight = np.concatenate([state[f"synthesis.{s}.affine.weight"].T for s in slots], axis=1).astype(np.float64)
  weight /= np.linalg.norm(weight, axis=0, keepdims=True)
  expected = np.sort(np.linalg.eigvalsh(weight @ weight.T))[::-1]
  directions, values = closed_form.sefa(g, 3)
  np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-9)
  assert directions.space == "w" and directions.matrix.shape == (32, 3)
