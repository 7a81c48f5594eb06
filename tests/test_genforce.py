"""genforce PGGAN / StyleGAN (v1) `.pth` against upstream's outputs, and SeFa against genforce's sefa.py outputs.

Tolerances as tests/fixtures/README.md section 11: atol = rtol = 1e-4 (PGGAN), atol 2e-4 (StyleGAN, instance norm
amplifies rounding), 1e-5 for w. One jitted function per fixture computes every output.
"""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax.directions import closed_form
from ganlatent_jax.generators import pggan, stylegan
from ganlatent_jax.generators.formats import pggan_genforce, stylegan_genforce
from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port.keys import CheckpointKeyError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "genforce")


def nchw(x):
  return np.transpose(np.asarray(x), (0, 3, 1, 2))


def load(name, fmt, family_module, entry="generator_smooth"):
  checkpoint = torch_pickle.load_torch_file(os.path.join(FIXTURES, f"genforce_{name}_tiny.pth"))
  assert fmt.sniff(name, checkpoint)
  if entry != "generator_smooth":
    checkpoint = {entry: checkpoint[entry]}
  config, variables = fmt.convert(name, checkpoint)
  return family_module.build(config, variables, name), checkpoint


def edit_latents(codes, boundaries, distances):
  """sefa.py's edit grid: code + boundary·d for each (sample, semantic, distance), flattened to a batch."""
  steps = distances.reshape(1, 1, -1, *([1] * (codes.ndim - 1)))
  grid = codes[:, None, None] + boundaries[None, :, None] * steps
  return grid.reshape(-1, *codes.shape[1:])


def in_upstream_order(directions, values, upstream_values):
  """Our order='upstream' SeFa put in the fixture's order. Both are `np.linalg.eig`'s (LAPACK geev's) order, which
  is not defined and differs between machines: on 2026-12-03's AVX-512 Xeon (numpy 2.4.6) 8 of PGGAN's 32
  eigenvalues came out in another order than on the machine that wrote the fixture. Matched by eigenvalue (a
  permutation, checked)."""
  perm = np.argmin(np.abs(np.asarray(values)[None, :] - np.asarray(upstream_values)[:, None]), axis=1)
  assert sorted(perm) == list(range(len(values))), "eigenvalues do not match one to one"
  return dataclasses.replace(directions, matrix=directions.matrix[:, perm]), np.asarray(values)[perm]


def aligned(ours, theirs):
  """Our eigenvectors (K, dim) with each sign matched to upstream's (an eigenvector's sign is arbitrary)."""
  signs = np.sign(np.sum(ours * theirs, axis=1, keepdims=True))
  return ours * signs


@pytest.fixture(scope="module")
def pg():
  io = dict(np.load(os.path.join(FIXTURES, "genforce_pggan_tiny_io.npz")))
  g, _ = load("pggan", pggan_genforce, pggan)
  directions, values = in_upstream_order(*closed_form.sefa(g, 32, variant="first_layer", order="upstream"),
                                         io["sefa_eigen_values"])
  boundaries = aligned(directions.matrix.T[:2], io["sefa_boundaries"][:2])
  edits = edit_latents(io["sefa_codes"], boundaries, io["sefa_distances"].astype(np.float32))
  out = _pggan_outputs(g, io["z"], edits)
  return g, io, directions, values, jax.device_get(out)


@jax.jit
def _pggan_outputs(g, z, edits):
  taps = ["z"] + [f"layer{i}" for i in range(8)]
  return {"img": g(z), "img_lod0p5": g(z, lod=0.5), "img_lod1": g(z, lod=1.0), "features": g.features(z[:2], taps),
          "edits": g(edits)}


@pytest.mark.parametrize("key", ["img", "img_lod0p5", "img_lod1"])
def test_pggan_images(pg, key):
  _, io, _, _, out = pg
  np.testing.assert_allclose(nchw(out[key]), io[key], atol=1e-4, rtol=1e-4)


def test_pggan_features_and_normalised_latent(pg):
  _, io, _, _, out = pg
  np.testing.assert_allclose(out["features"]["z"], io["z_pixelnorm"][:2], atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(out["features"]["z"], io["sefa_codes"], atol=1e-5, rtol=1e-5)
  for i in range(8):
    np.testing.assert_allclose(nchw(out["features"][f"layer{i}"]), io[f"feat_layer{i}"], atol=1e-4, rtol=1e-4)


def test_pggan_sefa_reproduces_genforce(pg):
  _, io, directions, values, out = pg
  assert list(io["sefa_layers"]) == [0]
  np.testing.assert_allclose(values, io["sefa_eigen_values"], rtol=1e-5, atol=1e-5)  # eig's values, its order
  dots = np.abs(np.sum(directions.matrix.T * io["sefa_boundaries"], axis=1))
  assert dots.min() > 1 - 1e-5
  assert not np.all(np.diff(io["sefa_eigen_values"]) <= 0)  # the upstream order is not the sorted one
  np.testing.assert_allclose(nchw(out["edits"]).reshape(io["sefa_edit_images"].shape), io["sefa_edit_images"],
                             atol=1e-4, rtol=1e-4)


def test_pggan_generator_entry_differs(pg):
  _, io, _, _, _ = pg
  g, _ = load("pggan", pggan_genforce, pggan, entry="generator")
  np.testing.assert_allclose(nchw(_pggan_outputs(g, io["z"], np.zeros((12, 32), np.float32))["img"]), io["img_generator_raw"],
                             atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def sg():
  io = dict(np.load(os.path.join(FIXTURES, "genforce_stylegan_tiny_io.npz")))
  g, _ = load("stylegan", stylegan_genforce, stylegan)
  directions, values = in_upstream_order(*closed_form.sefa(g, 32, variant="genforce", order="upstream"),
                                         io["sefa_eigen_values"])
  boundaries = aligned(directions.matrix.T[:2], io["sefa_boundaries"][:2])
  edits = edit_latents(io["sefa_codes"], boundaries[:, None, :], io["sefa_distances"].astype(np.float32))
  out = _stylegan_outputs(g, io["z"], io["wp_in"], edits)
  return g, io, directions, values, jax.device_get(out)


@jax.jit
def _stylegan_outputs(g, z, wp_in, edits):
  w = g.mapping(z)
  taps = [f"layer{i}" for i in range(8)] + [f"style{i:02d}" for i in range(8)]
  return {"w": w, "wp": g._apply("truncate", w), "wp_trunc07": g._apply("truncate", w, 0.7, 8),
          "img": g(z), "img_trunc07": g(z, truncation=0.7, truncation_layers=8),
          "img_from_wp_in": g.synthesis(wp_in), "img_lod0p5": g(z, lod=0.5), "features": g.features(z, taps),
          "sefa_codes": g._apply("truncate", w[:2], 0.7, 8), "edits": g.synthesis(edits)}


@pytest.mark.parametrize("key", ["w", "wp", "wp_trunc07"])
def test_stylegan_mapping_and_truncation(sg, key):
  _, io, _, _, out = sg
  np.testing.assert_allclose(out[key], io[key], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("key", ["img", "img_trunc07", "img_from_wp_in", "img_lod0p5"])
def test_stylegan_images(sg, key):
  _, io, _, _, out = sg
  np.testing.assert_allclose(nchw(out[key]), io[key], atol=2e-4, rtol=1e-4)


def test_stylegan_features_and_styles(sg):
  g, io, _, _, out = sg
  np.testing.assert_array_equal(g.variables["buffers"]["w_avg"], io["w_avg"])
  for i in range(8):
    np.testing.assert_allclose(nchw(out["features"][f"layer{i}"][:1]), io[f"feat_layer{i}"], atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(out["features"][f"style{i:02d}"], io[f"style_{i:02d}"], atol=1e-4, rtol=1e-4)


def test_stylegan_sefa_reproduces_genforce(sg):
  _, io, directions, values, out = sg
  assert list(io["sefa_layers"]) == list(range(8))
  np.testing.assert_allclose(out["sefa_codes"], io["sefa_codes"], atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(values, io["sefa_eigen_values"], rtol=1e-5, atol=1e-5)
  assert np.abs(np.sum(directions.matrix.T * io["sefa_boundaries"], axis=1)).min() > 1 - 1e-5
  np.testing.assert_allclose(nchw(out["edits"]).reshape(io["sefa_edit_images"].shape), io["sefa_edit_images"],
                             atol=2e-4, rtol=1e-4)
  sorted_directions, sorted_values = closed_form.sefa(_sg_gen(sg), 3)  # our default: sorted, descending
  np.testing.assert_allclose(sorted_values, np.sort(io["sefa_eigen_values"])[::-1], rtol=1e-5)
  top = np.argmax(io["sefa_eigen_values"])
  assert abs(float(sorted_directions.matrix[:, 0] @ io["sefa_boundaries"][top])) > 1 - 1e-6


def _sg_gen(sg):
  return sg[0]


def test_fused_upsampling_follows_genforce():
  """genforce's fused layer (auto at ≥ 128 px; no 128 px fixture): torch conv_transpose2d(stride 2, padding 1) of the
  4 summed shifts of the zero-padded kernel, written out in numpy, equals nearest ×2 then the 3×3 conv with the
  spatially flipped kernel; our fused config is checked against our unfused one with the flipped kernel."""
  rng = np.random.default_rng(0)
  x, w = rng.normal(size=(1, 5, 5, 3)), rng.normal(size=(3, 3, 3, 2))
  padded = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
  summed = padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]
  fused = np.zeros((1, 12, 12, 2))  # transposed conv: out[2i + a] += x[i]·K[a], then crop the padding 1
  for i in range(5):
    for j in range(5):
      fused[0, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("c,abco->abo", x[0, i, j], summed)
  upsampled = np.repeat(np.repeat(np.pad(x, ((0, 0), (0, 0), (0, 0), (0, 0))), 2, 1), 2, 2)
  upsampled = np.pad(upsampled, ((0, 0), (1, 1), (1, 1), (0, 0)))
  flipped = w[::-1, ::-1]
  reference = sum(upsampled[:, a:a + 10, b:b + 10, :, None] * flipped[a, b] for a in range(3) for b in range(3))
  np.testing.assert_allclose(fused[:, 1:11, 1:11], reference.sum(axis=3), atol=1e-10)
  config = stylegan.make_config(resolution=8, z_dim=4, w_dim=4, mapping_layers=1, mapping_fmaps=4,
                                channels={4: 4, 8: 3})
  variables = stylegan.init_variables(config, jax.random.key(0))
  flipped_variables = jax.tree_util.tree_map(lambda a: a, variables)
  flipped_variables["params"]["layers_2"]["kernel"] = variables["params"]["layers_2"]["kernel"][::-1, ::-1]
  fused_gen = stylegan.build(dict(config, fused=[False, True]), variables)
  plain = stylegan.build(config, flipped_variables)
  z = jnp.ones((2, 4))
  render = jax.jit(lambda g: g(z))
  np.testing.assert_allclose(render(fused_gen), render(plain), atol=1e-5)


def test_unexpected_missing_and_misshaped_keys_are_named():
  checkpoint = torch_pickle.load_torch_file(os.path.join(FIXTURES, "genforce_stylegan_tiny.pth"))
  state = dict(checkpoint["generator_smooth"])
  del state["synthesis.layer3.apply_noise.weight"]
  state["synthesis.layer5.bias"] = np.zeros(5, np.float32)
  state["synthesis.extra"] = np.zeros(1, np.float32)
  with pytest.raises(CheckpointKeyError) as error:
    stylegan_genforce.convert("sg.pth", {"generator_smooth": state})
  message = str(error.value)
  assert "synthesis.layer3.apply_noise.weight" in message and "synthesis.extra" in message
  assert "synthesis.layer5.bias: checkpoint (5,), expected (32,)" in message
  pg_state = dict(torch_pickle.load_torch_file(os.path.join(FIXTURES, "genforce_pggan_tiny.pth"))["generator"])
  pg_state["lod"] = np.array(1.0, np.float32)
  with pytest.raises(CheckpointKeyError, match="lod = 1.0"):
    pggan_genforce.convert("pg.pth", pg_state)
