"""GANLatentDiscovery deformators, shift predictors and run folders against upstream outputs (fixtures README §3)."""
import functools
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fixture_path

from ganlatent_jax import generators
from ganlatent_jax.nets.ld import DEFORMATOR_TYPES, LINEAR_DEFORMATOR_TYPES
from ganlatent_jax.nets.resnet import build_resnet
from ganlatent_jax.port import ld, torch_pickle
from ganlatent_jax.port.keys import CheckpointKeyError
from ganlatent_jax.port.torchvision import convert_resnet

TOL = dict(atol=1e-4, rtol=1e-4)
GLD = "ganlatentdiscovery"


@functools.lru_cache(maxsize=None)
def deformator_io():
  return dict(np.load(fixture_path(f"{GLD}/gld_deformators_io.npz")))


def load_fixture_deformator(kind, **kwargs):
  extra = {"random": {"random_matrix": deformator_io()["random_directions_matrix"]}, "id": {"input_dim": 128}}
  return ld.load_deformator(fixture_path(f"{GLD}/gld_deformator_{kind}.pt"), kind, **{**extra.get(kind, {}), **kwargs})


@pytest.mark.parametrize("inputs", ["basis", "generic"])
@pytest.mark.parametrize("kind", DEFORMATOR_TYPES)
def test_deformator_matches_upstream(kind, inputs):
  module, variables = load_fixture_deformator(kind)
  io = deformator_io()
  out = jax.jit(ld.apply_deformator, static_argnums=0)(module, variables, io[f"{kind}_{inputs}_in"])
  np.testing.assert_allclose(out, io[f"{kind}_{inputs}_out"], **TOL)


def test_deformator_dims_come_from_the_checkpoint():
  assert load_fixture_deformator("fc")[0].inner_dim == 64  # upstream default would be 1024
  linear = load_fixture_deformator("linear")[0]
  assert (linear.input_dim, linear.out_dim) == (16, 128)
  with pytest.raises(CheckpointKeyError, match="input_dim=32"):
    load_fixture_deformator("linear", input_dim=32)


@pytest.mark.parametrize("reference", ["ortho_matrix_upstream_expm", "ortho_matrix_float64_matrix_exp"])
def test_ortho_matrix(reference):
  module, variables = load_fixture_deformator("ortho")
  matrix = ld.deformator_direction_matrix(module, variables)
  np.testing.assert_allclose(matrix, deformator_io()[reference], **TOL)
  np.testing.assert_allclose(matrix @ matrix.T, np.eye(128), atol=1e-4)


@pytest.mark.parametrize("kind", LINEAR_DEFORMATOR_TYPES)
def test_direction_matrix_columns_are_the_shifts(kind):
  module, variables = load_fixture_deformator(kind)
  io = deformator_io()
  matrix = np.asarray(ld.deformator_direction_matrix(module, variables))
  assert matrix.shape == (128, module.input_dim)
  basis_in, basis_out = io[f"{kind}_basis_in"], io[f"{kind}_basis_out"]
  expected = basis_in @ matrix.T
  if kind in ("linear", "proj"):
    expected = expected + np.asarray(variables["params"]["linear"]["bias"])
  if kind == "proj":  # rescaled to the input's norm: compare directions
    expected *= np.linalg.norm(basis_in, axis=1, keepdims=True) / np.linalg.norm(expected, axis=1, keepdims=True)
  np.testing.assert_allclose(expected, basis_out, **TOL)


def test_fc_has_no_direction_matrix():
  with pytest.raises(ValueError, match="non-linear"):
    ld.deformator_direction_matrix(*load_fixture_deformator("fc"))


def test_unsaved_dimensions_must_be_given():
  with pytest.raises(ValueError, match="random_matrix"):
    ld.load_deformator(fixture_path(f"{GLD}/gld_deformator_random.pt"), "random")
  with pytest.raises(ValueError, match="input_dim"):
    ld.load_deformator(fixture_path(f"{GLD}/gld_deformator_id.pt"), "id")


def test_wrong_deformator_key_is_refused_by_name():
  path = fixture_path(f"{GLD}/gld_deformator_fc.pt")
  state_dict = torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(path))
  state_dict["bn2.running_variance"] = state_dict.pop("bn2.running_var")
  with pytest.raises(CheckpointKeyError, match=r"bn2\.running_var\b.*bn2\.running_variance"):
    ld.convert_deformator(state_dict, "fc", "deformator_fc.pt")
  with pytest.raises(CheckpointKeyError, match="log_mat_half"):
    ld.convert_deformator(state_dict, "ortho", "deformator_fc.pt")


@pytest.mark.parametrize("shift_dim", [130, 100])
def test_output_fitted_to_the_latent_size(shift_dim):
  module, variables = load_fixture_deformator("linear", shift_dim=shift_dim)
  io = deformator_io()
  out = np.asarray(ld.apply_deformator(module, variables, io["linear_basis_in"]))
  matrix = np.asarray(ld.deformator_direction_matrix(module, variables))
  assert out.shape == (4, shift_dim) and matrix.shape == (shift_dim, 16)
  kept = min(shift_dim, 128)
  np.testing.assert_allclose(out[:, :kept], io["linear_basis_out"][:, :kept], **TOL)
  assert not out[:, kept:].any() and not matrix[kept:].any()


# --- run folder --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run():
  return ld.load_ld_run(fixture_path(f"{GLD}/gld_run_sn_anime_ortho"))


def test_run_folder(run):
  io = np.load(fixture_path(f"{GLD}/gld_run_sn_anime_ortho_io.npz"))
  assert run.step == 0 and run.args["deformator"] == "ortho" and run.deformator.type == "ortho"
  predictor = run.shift_predictor
  assert (predictor.num_directions, predictor.channels, predictor.width) == (128, 3, 2)
  assert run.generator_path.endswith("gld_sn_anime")  # args gan_weights, resolved next to the run folder

  shift = jax.jit(lambda b: run.deform(b))(io["basis_shift"])
  np.testing.assert_allclose(shift, io["shift"], **TOL)
  g = generators.load(run.generator_path)
  z = np.concatenate([io["z"], io["z"] + np.asarray(shift)])
  images = jax.jit(lambda g, z: g(z))(g, z)  # G(z) and G(z + shift) in one batch
  np.testing.assert_allclose(images[:4].transpose(0, 3, 1, 2), io["imgs"], **TOL)
  np.testing.assert_allclose(images[4:].transpose(0, 3, 1, 2), io["imgs_shifted"], **TOL)
  logits, shift_prediction = jax.jit(run.predict_shift)(images[:4], images[4:])
  np.testing.assert_allclose(logits, io["logits"], **TOL)
  np.testing.assert_allclose(shift_prediction, io["shift_prediction"], **TOL)


def test_run_step_selection(tmp_path):
  source = fixture_path(f"{GLD}/gld_run_sn_anime_ortho")
  shutil.copytree(source, tmp_path / "run")
  models = tmp_path / "run" / "models"
  shutil.copy(models / "deformator_0.pt", models / "deformator_1200.pt")  # no shift predictor for this step
  (models / "deformator_1200.pt.bak").write_bytes(b"")  # not a checkpoint name: ignored
  latest = ld.load_ld_run(tmp_path / "run")
  assert latest.step == 1200 and latest.shift_predictor is None
  assert ld.load_ld_run(tmp_path / "run", step=0).shift_predictor is not None
  with pytest.raises(FileNotFoundError, match="available steps: \\[0, 1200\\]"):
    ld.load_ld_run(tmp_path / "run", step=7)
  (tmp_path / "run" / "args.json").write_text(json.dumps({"deformator": "ortho", "directions_count": 64}))
  with pytest.raises(CheckpointKeyError, match="input_dim=64"):
    ld.load_ld_run(tmp_path / "run")


def test_wrong_shift_predictor_key_is_refused_by_name():
  path = fixture_path(f"{GLD}/gld_run_sn_anime_ortho/models/shift_predictor_0.pt")
  state_dict = torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(path))
  state_dict["fc_shift.2.weight"] = state_dict.pop("fc_shift.3.weight")
  with pytest.raises(CheckpointKeyError, match=r"fc_shift\.3\.weight.*fc_shift\.2\.weight"):
    ld.convert_shift_predictor(state_dict, "shift_predictor_0.pt")


def test_resnet_shift_predictor_layout():
  """The ResNet reconstructor's key layout (no upstream file was saved): a 6-channel torchvision resnet18 under
  `features_extractor.` plus two heads, checked against `nets.resnet` run on the concatenated images."""
  tv = torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(fixture_path("torchvision/tv_resnet18_tiny.pth")))
  rng = np.random.RandomState(0)
  state_dict = {f"features_extractor.{k}": v for k, v in tv.items()}
  conv1 = tv["conv1.weight"]
  six_channels = rng.standard_normal((conv1.shape[0], 6, 7, 7)).astype(np.float32) * 0.1  # two images' channels
  state_dict["features_extractor.conv1.weight"] = six_channels
  width = tv["fc.weight"].shape[1]
  heads = {"type_estimator": 10, "shift_estimator": 1}
  for name, size in heads.items():
    state_dict[f"{name}.weight"] = rng.standard_normal((size, width)).astype(np.float32) * 0.1
    state_dict[f"{name}.bias"] = rng.standard_normal((size,)).astype(np.float32) * 0.1
  module, variables = ld.convert_shift_predictor(state_dict, "reconstructor.pt")
  assert module.num_directions == 10

  x1, x2 = (jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32) for _ in range(2))
  config, resnet_vars = convert_resnet(state_dict, "plain", prefix="features_extractor.", keep_fc=False,
                                       heads=tuple(heads))

  @jax.jit  # one compile for both
  def both(variables, resnet_vars):
    return (module.apply(variables, x1, x2),
            build_resnet(config).apply(resnet_vars, jnp.concatenate([x1, x2], axis=-1)))

  (logits, shift), reference = both(variables, resnet_vars)
  np.testing.assert_allclose(logits, reference["type_estimator"], **TOL)
  np.testing.assert_allclose(shift, reference["shift_estimator"][:, 0], **TOL)
  del state_dict["shift_estimator.bias"]
  with pytest.raises(CheckpointKeyError, match=r"shift_estimator\.bias"):
    ld.convert_shift_predictor(state_dict, "reconstructor.pt")


def test_train_mode_batch_norm_is_pytorch_like(run):
  """Training mode (used when training deformators/predictors): batch statistics, PyTorch running-average update."""
  module, variables = load_fixture_deformator("fc")
  x = deformator_io()["fc_generic_in"]
  out, updates = jax.jit(lambda v: module.apply(v, x, train=True, mutable=["batch_stats"]))(variables)
  fc1 = variables["params"]["fc1"]
  h1 = x @ np.asarray(fc1["kernel"]) + np.asarray(fc1["bias"])
  old = variables["batch_stats"]["bn1"]
  np.testing.assert_allclose(updates["batch_stats"]["bn1"]["mean"], 0.9 * old["mean"] + 0.1 * h1.mean(0), **TOL)
  np.testing.assert_allclose(updates["batch_stats"]["bn1"]["var"], 0.9 * old["var"] + 0.1 * h1.var(0, ddof=1), **TOL)
  assert out.shape == x.shape and np.all(np.isfinite(out))

  images = jnp.asarray(np.load(fixture_path(f"{GLD}/gld_run_sn_anime_ortho_io.npz"))["imgs"].transpose(0, 2, 3, 1))
  (logits, shift), updates = jax.jit(lambda v: run.shift_predictor.apply(
      v, images, images[::-1], train=True, mutable=["batch_stats"]))(run.shift_predictor_variables)
  assert logits.shape == (4, 128) and shift.shape == (4,)
  assert set(updates["batch_stats"]) == set(run.shift_predictor_variables["batch_stats"])
