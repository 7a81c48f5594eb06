"""Directions type, random directions, SeFa and GANSpace against independent numpy computations."""
import jax
import numpy as np
import pytest

from ganlatent_jax import directions as dirs
from ganlatent_jax import generators
from ganlatent_jax.directions import pca as ganspace_lib
from ganlatent_jax.port import torch_pickle
from conftest import fixture_path

STYLEGAN2 = "stylegan2/stylegan2_rosinality_s32.pt"


@pytest.fixture(scope="module")
def gen():
  return generators.load(fixture_path(STYLEGAN2))


@pytest.fixture(scope="module")
def upstream_state():
  return torch_pickle.load_torch_file(fixture_path(STYLEGAN2))["g_ema"]


def _assert_same_up_to_sign(a, b, atol=1e-5):
  assert a.shape == b.shape
  signs = np.sign(np.sum(a * b, axis=0))
  np.testing.assert_allclose(a, b * signs[None, :], atol=atol)


# --- Directions ---------------------------------------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path):
  d = dirs.Directions(np.eye(6, 3), space="w+", layers=(2, 5), meta={"method": "x", "eigenvalues": np.ones(3)})
  d.save(tmp_path / "d.npz")
  back = dirs.load(tmp_path / "d.npz")
  np.testing.assert_array_equal(back.matrix, d.matrix)
  assert (back.space, back.layers, back.meta["method"], back.meta["eigenvalues"]) == ("w+", (2, 5), "x", [1, 1, 1])
  assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("space,layers,shape", [("z", None, (3, 6)), ("w", None, (3, 6)),
                                                ("w+", (1, 3), (3, 4, 6)), ("w+", None, (3, 4, 6))])
def test_shift(space, layers, shape):
  d = dirs.Directions(np.eye(6, 2), space=space, layers=layers)
  latents = np.zeros(shape, np.float32)
  coefficients = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], np.float32)
  shifted = np.asarray(d.shift(latents, coefficients))
  expected_delta = coefficients @ np.eye(6, 2).T
  if len(shape) == 2:
    np.testing.assert_allclose(shifted, expected_delta)
  else:
    start, stop = layers or (0, shape[1])
    for layer in range(shape[1]):
      want = expected_delta if start <= layer < stop else 0 * expected_delta
      np.testing.assert_allclose(shifted[:, layer], want)


@pytest.mark.parametrize("kwargs,message", [
    (dict(matrix=np.ones(3)), "2-D"), (dict(matrix=np.ones((3, 2)), space="q"), "space"),
    (dict(matrix=np.ones((3, 2)), space="z", layers=(0, 2)), "layers")])
def test_invalid_directions(kwargs, message):
  with pytest.raises(ValueError, match=message):
    dirs.Directions(**kwargs)


def test_load_rejects_other_files(tmp_path):
  np.savez(tmp_path / "other.npz", x=np.ones(3))
  with pytest.raises(ValueError, match="other.npz: not a directions file"):
    dirs.load(tmp_path / "other.npz")


def test_random_directions_are_orthonormal_and_deterministic():
  a = dirs.random(16, 5, jax.random.key(0))
  np.testing.assert_allclose(a.matrix.T @ a.matrix, np.eye(5), atol=1e-5)
  np.testing.assert_array_equal(a.matrix, dirs.random(16, 5, jax.random.key(0)).matrix)
  with pytest.raises(ValueError, match="k=17"):
    dirs.random(16, 17, jax.random.key(0))


def test_orthonormalize_sign_fix_makes_r_diagonal_positive():
  m = jax.random.normal(jax.random.key(1), (8, 4))
  q = dirs.orthonormalize(m)
  np.testing.assert_allclose(np.asarray(q.T @ q), np.eye(4), atol=1e-5)
  r = np.asarray(q.T @ m)
  assert np.all(np.diag(r) > 0)
  np.testing.assert_allclose(np.asarray(dirs.orthonormalize(q)), np.asarray(q), atol=1e-5)


# --- SeFa ---------------------------------------------------------------------------------------------------------


def _upstream_slot_weights(state, size=32):
  """genforce's layer order from upstream keys: conv1, convs.0.., last to_rgbs; (style_dim, outputs) each."""
  num_convs = 2 * (int(np.log2(size)) - 2)
  keys = ["conv1"] + [f"convs.{i}" for i in range(num_convs)] + [f"to_rgbs.{num_convs // 2 - 1}"]
  return [state[f"{key}.conv.modulation.weight"].T.astype(np.float64) for key in keys]


@pytest.mark.parametrize("layers", [None, [0, 1, 2], [3]])
def test_sefa_genforce_equals_numpy(gen, upstream_state, layers):
  weights = _upstream_slot_weights(upstream_state)
  chosen = range(len(weights)) if layers is None else layers
  w = np.concatenate([weights[i] for i in chosen], axis=1)
  w = w / np.linalg.norm(w, axis=0, keepdims=True)
  values, vectors = np.linalg.eig(w @ w.T)
  order = np.argsort(values.real)[::-1]
  directions, eigenvalues = dirs.sefa(gen, 5, variant="genforce", layers=layers)
  np.testing.assert_allclose(eigenvalues, values.real[order], rtol=1e-5)
  _assert_same_up_to_sign(directions.matrix, vectors.real[:, order[:5]].astype(np.float32))
  assert directions.space == ("w" if layers is None else "w+")


@pytest.mark.parametrize("variant", ["rosinality", "sre"])
def test_sefa_rosinality_equals_numpy_svd(gen, upstream_state, variant):
  # closed_form_factorization.py: keys with 'modulation' and 'weight', without 'to_rgbs' (to_rgb1 stays in), in the
  # checkpoint's state_dict order; SRE's train_closed_form stacks all of them but the last (`weight_mat[:-1]`).
  keys = [k for k in upstream_state if "modulation" in k and "to_rgbs" not in k and "weight" in k]
  if variant == "sre":
    assert keys[-1].startswith("convs.") and "to_rgb1.conv.modulation.weight" in keys
    keys = keys[:-1]
  stacked = np.concatenate([upstream_state[k] for k in keys], axis=0).astype(np.float64)
  _, singular, vt = np.linalg.svd(stacked)
  directions, eigenvalues = dirs.sefa(gen, 4, variant=variant)
  np.testing.assert_allclose(eigenvalues, singular ** 2, rtol=1e-5)
  _assert_same_up_to_sign(directions.matrix, vt.T[:, :4].astype(np.float32))


def test_sefa_errors(gen):
  with pytest.raises(ValueError, match="variant"):
    dirs.sefa(gen, 3, variant="pca")
  with pytest.raises(ValueError, match="contiguous"):
    dirs.sefa(gen, 3, layers=[0, 2])
  with pytest.raises(ValueError, match="out of range"):
    dirs.sefa(gen, 3, layers=[8])
  with pytest.raises(ValueError, match="'sre' stacks a fixed set"):
    dirs.sefa(gen, 3, variant="sre", layers=[0])


# --- GANSpace -----------------------------------------------------------------------------------------------------


def test_ganspace_w_matches_numpy_pca(gen):
  rng = jax.random.key(3)
  directions, stds = dirs.ganspace(gen, 6, num_samples=3000, rng=rng, batch_size=1024)
  pca_rng, _ = jax.random.split(rng)
  w = np.concatenate([np.asarray(gen.mapping(z)) for z in ganspace_lib.latent_batches(gen, pca_rng, 3000, 1024)])
  assert w.shape == (3000, 64)
  values, vectors = np.linalg.eigh(np.cov(w.astype(np.float64), rowvar=False))
  order = np.argsort(values)[::-1][:6]
  _assert_same_up_to_sign(directions.matrix, vectors[:, order].astype(np.float32), atol=1e-4)
  np.testing.assert_allclose(stds, np.sqrt(values[order]), rtol=1e-4)
  assert directions.space == "w"


def test_ganspace_layer_dense_and_incremental_agree(gen):
  rng = jax.random.key(4)
  dense, dense_stds = dirs.ganspace(gen, 3, num_samples=768, rng=rng, layer="conv1", batch_size=256)
  incremental, inc_stds = dirs.ganspace(gen, 3, num_samples=768, rng=rng, layer="conv1", batch_size=256,
                                        max_dense_features=16)
  assert dense.space == "z" and dense.matrix.shape == (64, 3)
  np.testing.assert_allclose(np.linalg.norm(dense.matrix, axis=0), 1.0, rtol=1e-5)
  # IncrementalPCA keeps only k components between batches, so it approximates the exact PCA.
  np.testing.assert_allclose(inc_stds, dense_stds, rtol=1e-2)
  cosines = np.abs(np.sum(incremental.matrix * dense.matrix, axis=0))
  assert np.all(cosines > 0.95), cosines


@pytest.mark.parametrize("path,state_key,to_latent_rows", [
    ("ganlatentdiscovery/gld_sn_mnist", "model.0.weight", lambda w, dim: w.T),
    ("ganlatentdiscovery/gld_proggan_tiny.pth", "features.0.conv.weight",
     lambda w, dim: w.transpose(1, 0, 2, 3).reshape(w.shape[1], -1)),
    ("biggan/biggan_tiny", "generator.gen_z.weight_orig", None),
])
def test_sefa_first_layer_equals_numpy(path, state_key, to_latent_rows):
  gen = generators.load(fixture_path(path))
  directions, eigenvalues = dirs.sefa(gen, 4, variant="first_layer")
  assert directions.space == "z" and directions.matrix.shape == (gen.latent_dim, 4)
  if to_latent_rows is None:  # BigGAN: spectral-normalised weights; compare with our converted kernel's z rows
    weight = np.asarray(gen.variables["params"]["gen_z"]["kernel"])[:gen.latent_dim].astype(np.float64)
  else:
    file = fixture_path(path)
    file = file / "generator.pt" if file.is_dir() else file
    weight = to_latent_rows(torch_pickle.load_torch_file(file)[state_key].astype(np.float64), gen.latent_dim)
  weight = weight / np.linalg.norm(weight, axis=0, keepdims=True)
  values, vectors = np.linalg.eigh(weight @ weight.T)
  order = np.argsort(values)[::-1]
  np.testing.assert_allclose(eigenvalues, values[order], rtol=1e-4, atol=1e-6)
  _assert_same_up_to_sign(directions.matrix, vectors[:, order[:4]].astype(np.float32), atol=1e-4)


def test_ganspace_sharded_over_8_devices_equals_single_device(gen):
  from ganlatent_jax import parallel
  rng = jax.random.key(6)
  single, single_stds = dirs.ganspace(gen, 4, num_samples=512, rng=rng, batch_size=256)
  sharded, sharded_stds = dirs.ganspace(gen, 4, num_samples=512, rng=rng, batch_size=256,
                                        mesh=parallel.make_mesh(8))
  np.testing.assert_allclose(sharded_stds, single_stds, rtol=1e-4)
  _assert_same_up_to_sign(sharded.matrix, single.matrix, atol=1e-4)
