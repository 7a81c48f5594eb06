"""StyleGAN3-T (NVlabs pickle) against upstream's outputs: every array of sg3t_small_io.npz, under jit.

Tolerances as tests/fixtures/README.md section 9 (atol = rtol = 1e-4 images/features, 1e-5 ws). The parity tests
compile the whole alias-free synthesis (long FIR filters): marked slow; conversion checks run by default.
"""
from __future__ import annotations

import os

import jax
import numpy as np
import pytest

from ganlatent_jax.generators import stylegan3
from ganlatent_jax.generators.formats import stylegan2_ada_nvlabs, stylegan3_nvlabs
from ganlatent_jax.port import nvlabs_pickle

PKL = os.path.join(os.path.dirname(__file__), "fixtures", "nvlabs", "sg3t_small.pkl")
IO = os.path.join(os.path.dirname(__file__), "fixtures", "nvlabs", "sg3t_small_io.npz")
TAPS = ("input", "L0_36_16", "L5_52_16", "L10_52_16", "L13_32_16", "L14_32_3")


def nchw(x):
  return np.transpose(np.asarray(x), (0, 3, 1, 2))


@pytest.fixture(scope="module")
def snapshot():
  return nvlabs_pickle.load_network_pickle(PKL)


def test_conversion_reads_the_geometry_from_the_pickle(snapshot):
  assert stylegan3_nvlabs.sniff(PKL, snapshot) and not stylegan2_ada_nvlabs.sniff(PKL, snapshot)
  config, variables = stylegan3_nvlabs.convert(PKL, snapshot)
  layers = {spec["name"]: spec for spec in config["layers"]}
  assert list(layers)[0] == "L0_36_16" and list(layers)[-1] == "L14_32_3" and len(layers) == 15
  assert layers["L5_52_16"]["up"] == 4 and layers["L5_52_16"]["down"] == 2
  assert layers["L5_52_16"]["padding"] == [-6, -9, -6, -9] and len(layers["L5_52_16"]["up_filter"]) == 24
  assert layers["L14_32_3"]["is_torgb"] and layers["L14_32_3"]["up_filter"] == []
  assert config["input"] == {"channels": 16, "size": 36, "sampling_rate": 16.0, "bandwidth": 2.0}
  np.testing.assert_array_equal(variables["buffers"]["w_avg"], np.load(IO)["w_avg"])


def test_make_transform_is_gen_images():
  io = np.load(IO)
  translate_rotate = io["transform_translate_rotate"]
  matrix = np.linalg.inv(stylegan3.make_transform(translate_rotate[:2], translate_rotate[2]))
  np.testing.assert_allclose(matrix, io["transform_matrix"], atol=1e-7)


@jax.jit
def _outputs(g, z, ws_in):
  return {"ws_psi1": g._apply("ws", z), "ws_psi07": g._apply("ws", z, truncation=0.7),
          "ws_psi07_cutoff4": g._apply("ws", z, truncation=0.7, truncation_cutoff=4),
          "img_synth_const": g.synthesis(ws_in), "img_G_const": g(z), "img_G_const_psi07": g(z, truncation=0.7),
          "features": g.features(ws_in[:1], TAPS, input_is_latent=True)}


@pytest.fixture(scope="module")
def outputs(snapshot):
  io = dict(np.load(IO))
  g = stylegan3.build(*stylegan3_nvlabs.convert(PKL, snapshot), PKL)
  g_train = stylegan3.build(*stylegan3_nvlabs.convert_network(snapshot["G"], PKL), PKL)
  transformed = stylegan3.with_input_transform(g, io["transform_matrix"])
  run = lambda gen: jax.device_get(_outputs(gen, io["z"], io["ws_psi1"]))  # one compile: same structure
  return io, run(g), run(g_train), run(transformed)


@pytest.mark.slow
def test_mapping_images_features_transform_and_G(outputs):
  io, out, out_train, out_transformed = outputs
  for key in ("ws_psi1", "ws_psi07", "ws_psi07_cutoff4"):
    np.testing.assert_allclose(out[key], io[key], atol=1e-5, rtol=1e-5, err_msg=key)
  for key in ("img_synth_const", "img_G_const", "img_G_const_psi07"):
    np.testing.assert_allclose(nchw(out[key]), io[key], atol=1e-4, rtol=1e-4, err_msg=key)
  for tap in TAPS:
    np.testing.assert_allclose(nchw(out["features"][tap]), io[f"feat_{tap}"], atol=1e-4, rtol=1e-4, err_msg=tap)
  np.testing.assert_allclose(nchw(out_train["img_G_const"]), io["img_Gtrain_const"], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(nchw(out_transformed["img_synth_const"]), io["img_G_transformed"], atol=1e-4, rtol=1e-4)
  assert np.abs(io["img_G_transformed"] - io["img_G_const"]).max() > 1e-2  # the transform matters
