"""LD deformator files and upstream run folders as `Directions` (fixtures README §3)."""
import functools

import numpy as np
import pytest
from conftest import fixture_path

from ganlatent_jax import directions as dirs
from ganlatent_jax.directions import ld_import
from ganlatent_jax.nets.ld import LINEAR_DEFORMATOR_TYPES
from ganlatent_jax.port import ld as ld_port

TOL = dict(atol=1e-4, rtol=1e-4)
GLD = "ganlatentdiscovery"


@functools.lru_cache(maxsize=None)
def deformator_io():
  return dict(np.load(fixture_path(f"{GLD}/gld_deformators_io.npz")))


def load(kind, **kwargs):
  extra = {"random": {"random_matrix": deformator_io()["random_directions_matrix"]}, "id": {"latent_dim": 128}}
  return ld_import.load_deformator_directions(fixture_path(f"{GLD}/gld_deformator_{kind}.pt"), kind,
                                              **{**extra.get(kind, {}), **kwargs})


@pytest.mark.parametrize("kind", ["ortho", "random", "id", "linear"])
def test_directions_reproduce_the_deformator_shifts(kind):
  """Shifting z = 0 by ε along direction k gives the deformator's output for ε·e_k (minus the constant bias)."""
  d = load(kind)
  io = deformator_io()
  basis_in = io[f"{kind}_basis_in"]
  assert d.space == "z" and d.matrix.shape == (128, basis_in.shape[1])
  assert d.meta["method"] == "ld" and d.meta["deformator"] == kind
  shifted = np.asarray(d.shift(np.zeros((4, 128), np.float32), basis_in))
  expected = io[f"{kind}_basis_out"]
  if kind == "linear":
    bias = expected - basis_in @ d.matrix.T
    np.testing.assert_allclose(bias, np.broadcast_to(bias[0], bias.shape), **TOL)  # one constant offset
    assert d.meta["bias_norm"] == pytest.approx(float(np.linalg.norm(bias[0])), rel=1e-4)
    expected = expected - bias
  np.testing.assert_allclose(shifted, expected, **TOL)


def test_ortho_directions_are_orthonormal():
  matrix = load("ortho").matrix
  np.testing.assert_allclose(matrix, deformator_io()["ortho_matrix_upstream_expm"], **TOL)
  np.testing.assert_allclose(matrix.T @ matrix, np.eye(128), atol=1e-4)


def test_proj_directions_are_the_unit_weight_columns():
  """'proj' rescales every shift to |ε|: its directions are the weight columns, normalised."""
  d = load("proj")
  _, variables = ld_port.load_deformator(fixture_path(f"{GLD}/gld_deformator_proj.pt"), "proj")
  weight = np.asarray(variables["params"]["linear"]["kernel"]).T  # (128, 16)
  norms = np.linalg.norm(weight, axis=0)
  np.testing.assert_allclose(d.matrix, weight / norms, **TOL)
  np.testing.assert_allclose(d.meta["column_norms"], norms, **TOL)
  assert not np.allclose(norms, 1.0)


def test_fc_is_refused_as_non_linear():
  with pytest.raises(ValueError, match="non-linear"):
    load("fc")


@pytest.mark.parametrize("latent_dim", [100, 130])
def test_rows_fitted_to_the_latent_size(latent_dim):
  d = load("linear", latent_dim=latent_dim)
  reference = load("linear").matrix
  kept = min(latent_dim, 128)
  assert d.matrix.shape == (latent_dim, 16)
  np.testing.assert_allclose(d.matrix[:kept], reference[:kept])
  assert not d.matrix[kept:].any()


@pytest.mark.parametrize("kind", LINEAR_DEFORMATOR_TYPES)
def test_save_load_round_trip(kind, tmp_path):
  d = load(kind)
  d.save(tmp_path / "d.npz")
  back = dirs.load(tmp_path / "d.npz")
  np.testing.assert_array_equal(back.matrix, d.matrix)
  assert back.meta == d.meta and back.space == d.space


def test_run_folder():
  run_dir = fixture_path(f"{GLD}/gld_run_sn_anime_ortho")
  io = np.load(fixture_path(f"{GLD}/gld_run_sn_anime_ortho_io.npz"))
  d = ld_import.load_run_directions(run_dir)
  assert d.space == "z" and d.matrix.shape == (128, 128)
  assert d.meta["step"] == 0 and d.meta["gan_type"] == "SN_Anime" and d.meta["generator"].endswith("gld_sn_anime")
  np.testing.assert_allclose(d.shift(np.zeros((4, 128), np.float32), io["basis_shift"]), io["shift"], **TOL)
  assert ld_import.load_run_directions(run_dir, space="w").space == "w"


def test_run_folder_missing_step_is_named():
  with pytest.raises(FileNotFoundError, match="deformator_7.pt"):
    ld_import.load_run_directions(fixture_path(f"{GLD}/gld_run_sn_anime_ortho"), step=7)


@pytest.mark.parametrize("args,space", [
    ({"gan_type": "SN_Anime"}, "z"),
    ({"gan_type": "BigGAN", "w_shift": True}, "z"),
    ({"gan_type": "StyleGAN2"}, "w"),
    ({"gan_type": "StyleGAN2", "w_shift": True}, "w"),
    ({"gan_type": "StyleGAN2", "w_shift": False}, "z"),
])
def test_run_latent_space(args, space):
  assert ld_import.run_latent_space(args) == space
