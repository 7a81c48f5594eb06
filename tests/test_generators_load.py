"""Converted directories are validated before anything is built (issue 16 item 7), non-finite weights are refused by
name (item 9, conversion side), and `save_converted` never deletes a user's files (item 3)."""
import importlib
import json
import os
import shutil

import jax
import numpy as np
import pytest

from ganlatent_jax import io as gio
load = importlib.import_module("ganlatent_jax.generators.load")  # the package re-exports the function `load`

TESTBED = load.TESTBED_DIR / "dsprites"  # a small dcgan converted directory


@pytest.fixture
def converted(tmp_path):
  directory = tmp_path / "gen"
  directory.mkdir()
  for name in (load.CONVERTED_META, load.CONVERTED_VARIABLES):
    shutil.copy(TESTBED / name, directory / name)
  return directory


def _edit_meta(directory, edit):
  meta = json.loads((directory / load.CONVERTED_META).read_text())
  edit(meta)
  (directory / load.CONVERTED_META).write_text(json.dumps(meta))


@pytest.fixture
def nothing_built(monkeypatch):
  def refuse(family):
    raise AssertionError(f"family {family} was built before the config was validated")
  monkeypatch.setattr(load, "family_module", refuse)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m["config"].update(n_mlp=10**9), r"config\.n_mlp = 1000000000 must be an integer in \[0, 64\]"),
    (lambda m: m["config"].update(n_mlp=1e9), r"config\.n_mlp = 1000000000\.0 must be an integer"),
    (lambda m: m["config"].update(latent_dim="16"), r"config\.latent_dim = '16' must be an integer"),
    (lambda m: m["config"].update(channels=[8] * 1000), r"config\.channels has 1000 entries"),
    (lambda m: m["config"].update(channels=[2**40]), r"config\.channels\[0\] = 1099511627776 is out of range"),
    (lambda m: m["config"].update(kernel_size=float("nan")), r"config\.kernel_size = nan must be an integer"),
    (lambda m: m.pop("family"), r"key 'family' must be a str"),
    (lambda m: m.update(config=[1]), r"key 'config' must be a dict"),
    (lambda m: m.update(family="nonsense"), r"unknown generator family 'nonsense'"),
    (lambda m: m.update(format_version=7), r"format_version 7 is not supported"),
])
def test_bad_generator_json_is_refused_before_building(converted, nothing_built, edit, message):
  _edit_meta(converted, edit)
  with pytest.raises(ValueError, match=rf"{converted}/generator\.json: {message}"):
    load.load(converted)


def test_missing_config_key_names_the_directory(tmp_path):
  converted = tmp_path / "gen"
  shutil.copytree(load.TESTBED_DIR / "shapes3d", converted)  # stylegan2: `size` has no default
  _edit_meta(converted, lambda m: m["config"].pop("size"))
  with pytest.raises(ValueError, match=rf"{converted}: the converted generator does not build \(missing config key "
                                       r"'size'\)"):
    load.load(converted)


def test_variables_disagreeing_with_the_config_name_directory_and_path(converted):
  _edit_meta(converted, lambda m: m["config"].update(latent_dim=17))
  with pytest.raises(ValueError, match=rf"{converted}.*mis-shaped params"):
    load.load(converted)


def test_unreadable_variables_name_the_file(converted):
  (converted / load.CONVERTED_VARIABLES).write_bytes(b"\x93garbage")
  with pytest.raises(ValueError, match=rf"{converted}/variables\.msgpack: unreadable"):
    load.load(converted)


def test_nonfinite_weights_are_refused_by_path_unless_allowed(converted):
  variables = gio.load_variables(converted / load.CONVERTED_VARIABLES)
  kernel = variables["params"]["project"]["kernel"] = np.array(variables["params"]["project"]["kernel"])
  kernel.flat[3] = np.nan
  gio.save_variables(converted / load.CONVERTED_VARIABLES, variables)
  with pytest.raises(ValueError, match=r"non-finite weights \(NaN/inf\) in \['params'\]\['project'\]\['kernel'\] "
                                       r"\(1 of \d+ values\)"):
    load.load(converted)
  assert load.load(converted, allow_nonfinite=True).latent_dim == 16


def test_the_testbed_still_loads():
  assert load.load("testbed:dsprites").latent_dim == 16


# ------------------------------------------------------------------------------------------------ save_converted


def _conversion():
  meta = json.loads((TESTBED / load.CONVERTED_META).read_text())
  return meta["config"], gio.load_variables(TESTBED / load.CONVERTED_VARIABLES)


def test_save_converted_refuses_a_directory_of_user_files(tmp_path):
  out = tmp_path / "out"
  (out / "chapter").mkdir(parents=True)
  (out / "thesis.tex").write_text("years of work")
  (out / "chapter" / "one.tex").write_text("more work")
  with pytest.raises(FileExistsError, match=r"out is not empty and is not a previous conversion \(it holds "
                                            r"chapter/, thesis.tex\)"):
    load.save_converted(out, *_conversion())
  assert (out / "thesis.tex").read_text() == "years of work" and (out / "chapter" / "one.tex").exists()


def test_save_converted_replaces_a_previous_conversion_and_leaves_nothing_beside(tmp_path):
  out = tmp_path / "out"
  config, variables = _conversion()
  load.save_converted(out, config, variables, source="first")
  load.save_converted(out, config, variables, source="second", exact=True)
  assert json.loads((out / load.CONVERTED_META).read_text())["source"] == "second"
  assert sorted(os.listdir(tmp_path)) == ["out"]
  (out / "MODEL_CARD.md").write_text("card")  # a testbed's extra files: allowed by the library default ...
  load.save_converted(out, config, variables, source="third")
  (out / "MODEL_CARD.md").write_text("card")
  with pytest.raises(FileExistsError, match="MODEL_CARD.md"):  # ... but not by the CLI's exact mode
    load.save_converted(out, config, variables, exact=True)


def test_save_converted_keeps_the_old_conversion_when_writing_fails(tmp_path, monkeypatch):
  out = tmp_path / "out"
  config, variables = _conversion()
  load.save_converted(out, config, variables, source="old")

  def broken(path, tree):
    raise OSError("disk full")

  monkeypatch.setattr(gio, "save_variables", broken)
  with pytest.raises(OSError, match="disk full"):
    load.save_converted(out, config, variables, source="new")
  assert json.loads((out / load.CONVERTED_META).read_text())["source"] == "old"
  assert sorted(os.listdir(tmp_path)) == ["out"]


def test_stylegan2_with_a_billion_mapping_layers_is_refused_before_tracing(tmp_path, nothing_built):
  converted = tmp_path / "gen"
  shutil.copytree(load.TESTBED_DIR / "shapes3d", converted)
  _edit_meta(converted, lambda m: m["config"].update(n_mlp=10**9))
  with pytest.raises(ValueError, match=rf"{converted}/generator\.json: config\.n_mlp = 1000000000 must be"):
    load.load(converted)


def test_large_seeds_are_not_mistaken_for_sizes(converted):
  _edit_meta(converted, lambda m: m["config"].update(seed=2**40))  # dcgan ignores it; a bound must not refuse it
  load._read_converted(converted)


def test_a_latent_prior_round_trips_and_sample_z_draws_it(tmp_path):
  """A generator trained on U(−1, 1) knobs (UD-GAN, InfoGAN's codes) is exported with its prior; `sample_z` draws
  it. Without one, `sample_z` stays exactly N(0, I)."""
  config, variables = _conversion()
  plain = load.load(TESTBED)
  dim = plain.latent_dim
  key = jax.random.key(3)
  assert plain.info.latent_prior == ()
  np.testing.assert_array_equal(plain.sample_z(key, 5), jax.random.normal(key, (5, dim)))
  prior = (("uniform", 3), ("normal", dim - 3))
  load.save_converted(tmp_path / "gen", config, variables, latent_prior=prior)
  gen = load.load(tmp_path / "gen")
  assert gen.info.latent_prior == prior
  z = np.asarray(gen.sample_z(key, 20000))
  assert z.shape == (20000, dim) and np.abs(z[:, :3]).max() <= 1.0
  np.testing.assert_allclose(z[:, :3].var(axis=0), 1 / 3, rtol=0.05)    # U(−1, 1)
  np.testing.assert_allclose(z[:, 3:].var(axis=0), 1.0, rtol=0.06)      # N(0, 1)
  assert np.abs(z[:, 3:]).max() > 3.0
  assert gen.info == plain.info.__class__(**{**plain.info.__dict__, "latent_prior": prior})


@pytest.mark.parametrize("prior, message", [
    ("uniform", r"expected a list of \[kind, size\] pairs, got 'uniform'"),
    (5, r"expected a list of \[kind, size\] pairs, got 5"),
    ([["cauchy", 4]], r"segment \['cauchy', 4\] needs a kind in \('normal', 'uniform'\)"),
    ([["uniform", 2.5]], r"segment \['uniform', 2.5\] needs a kind .* integer size >= 1"),
    ([["uniform", 3]], r"segment sizes \[3\] add up to 3, not the generator's latent_dim"),
])
def test_a_bad_latent_prior_is_refused_naming_the_file(converted, prior, message):
  _edit_meta(converted, lambda m: m.update(latent_prior=prior))
  with pytest.raises(ValueError, match=rf"{converted}/generator\.json: latent_prior: {message}"):
    load.load(converted)
