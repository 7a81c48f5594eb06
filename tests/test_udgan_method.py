"""UD-GAN on the GAN engine: the terms against a numpy loop over quadruplets (literal Eq. 2) on fixed inputs, the
siamese bank (per-sample, guided columns = an MLP on the standardised guidance), the configuration errors, one
sharded engine step whose contrastive metric matches the reference and whose siamese networks train with D's
optimizer, and quick runs writing traversals + metrics that `evaluate` reproduces from the checkpoint."""
import json
import os
import pathlib
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from PIL import Image

from ganlatent_jax import cli, generators, parallel
from ganlatent_jax.generators import trainable
from ganlatent_jax.generators.load import family_module
from ganlatent_jax.methods import _gan, _gan_data, _gan_run, udgan
from ganlatent_jax.nets import discriminators, guidance

REPO = pathlib.Path(__file__).resolve().parents[1]
IMAGE_SHAPE = (16, 16, 1)


def reference_loss(emb, knob, q1, q2, embed_dim, margin=None):
  """Literal Eq. 2 (float64, loops): emb (B, K·E) in quadruplet order x_11, x_12, x_21, x_22; per-image knob, q1, q2."""
  emb = np.asarray(emb, np.float64)
  losses = []
  for start in range(0, len(emb), 4):
    i = int(knob[start])
    x = emb[start:start + 4, i * embed_dim:(i + 1) * embed_dim].reshape(2, 2, embed_dim)   # x[n, m]
    gamma = abs(float(q1[start]) - float(q2[start])) if margin is None else margin
    rho = lambda a, b: np.linalg.norm(a - b)
    losses.append(0.5 * sum(rho(x[n, 0], x[n, 1]) ** 2 for n in range(2))
                  + 0.25 * sum(max(0.0, gamma - rho(x[0, n], x[1, m])) ** 2 for n in range(2) for m in range(2)))
  return np.mean(losses)


def tiny_bank(num_unguided=3, guided=(), embed_dim=1, standardization=None):
  trunk = discriminators.from_config({"kind": "dcgan", "width": 4, "max_width": 8, "aux_hidden": 8},
                                     IMAGE_SHAPE[0], aux_outputs=max(num_unguided, 1) * embed_dim)
  if standardization is None:
    standardization = tuple(((0.1,), (0.5,)) for _ in guided)
  return udgan.SiameseBank(num_unguided=num_unguided, guided=tuple(guided), embed_dim=embed_dim, trunk=trunk,
                           scalar_hidden=(8,), standardization=standardization)


def fixed_images(batch, seed=0):
  return jnp.asarray(np.random.RandomState(seed).uniform(-1, 1, (batch, *IMAGE_SHAPE)), jnp.float32)


@pytest.mark.parametrize("embed_dim", [1, 3])
@pytest.mark.parametrize("guided", [(), ("com_x", "size")])
@pytest.mark.parametrize("knob_sampling", ["per_example", "per_batch"])
@pytest.mark.parametrize("margin", ["adaptive", "fixed"])
def test_terms_losses_are_eq2_of_the_chosen_knobs_embeddings(embed_dim, guided, knob_sampling, margin):
  bank = tiny_bank(3, guided, embed_dim)
  terms = udgan.UDGANTerms(3 + len(guided) + 1, bank, IMAGE_SHAPE, noise_dim=1, weight=5.0,
                           knob_sampling=knob_sampling, margin=margin, margin_value=0.7)
  nets = terms.init_nets(jax.random.key(1))
  latents = terms.sample_latents(jax.random.key(2), 16)
  images = fixed_images(16)
  emb = np.asarray(bank.apply({"params": nets["siamese"]}, images))
  assert emb.shape == (16, (3 + len(guided)) * embed_dim)
  expected = reference_loss(emb, np.asarray(latents["knob"]), np.asarray(latents["q1"]), np.asarray(latents["q2"]),
                            embed_dim, None if margin == "adaptive" else 0.7)
  d_loss, d_metrics = terms.d_loss(nets, latents, images, None, images, None)
  g_loss, g_metrics = terms.g_loss(nets, latents, images, None, None)
  np.testing.assert_allclose(d_metrics["udgan_contrastive"], expected, rtol=1e-5)
  np.testing.assert_allclose(d_loss, 5.0 * expected, rtol=1e-5)
  np.testing.assert_allclose(g_loss, d_loss, rtol=0)
  assert set(g_metrics) == set(d_metrics) == {"udgan_contrastive"}


def test_guided_columns_are_an_mlp_on_the_standardised_guidance_and_embeddings_are_per_sample():
  standardization = (((0.05,), (0.4,)), ((0.02,), (0.01,)))
  bank = tiny_bank(2, ("com_y", "size"), 1, standardization)
  params = bank.init(jax.random.key(0), fixed_images(1))["params"]
  images = fixed_images(8, seed=3)
  emb = np.asarray(bank.apply({"params": params}, images))
  _, my, s = (np.asarray(a) for a in guidance._moments(images))
  for column, (measure, (mean, std)) in enumerate(zip((my, s), standardization)):
    mlp = udgan.ScalarMLP((8,), 1)
    name = f"guided_{column}_{('com_y', 'size')[column]}"
    expected = mlp.apply({"params": params[name]}, jnp.asarray((measure[:, None] - mean[0]) / std[0], jnp.float32))
    np.testing.assert_allclose(emb[:, 2 + column], np.asarray(expected)[:, 0], rtol=1e-5, atol=1e-6)
  permutation = np.random.RandomState(0).permutation(8)
  np.testing.assert_allclose(np.asarray(bank.apply({"params": params}, images[permutation])), emb[permutation],
                             atol=1e-6)


def test_guidance_only_representation_is_the_standardised_measures_of_real_images():
  dataset = _gan_data.make_dataset("dsprites")
  standardization = udgan.fit_standardization(dataset, ("com_x", "size"), 64, seed=0)
  _, images = dataset.sample(64, np.random.RandomState(0))   # the images the constants were measured on
  codes = udgan.guidance_represent_fn(("com_x", "size"), standardization)(images)
  np.testing.assert_allclose(codes.mean(axis=0), 0.0, atol=1e-4)
  np.testing.assert_allclose(codes.std(axis=0), 1.0, atol=1e-3)
  mx, _, s = (np.asarray(a, np.float64) for a in guidance._moments(jnp.asarray(images * 2.0 - 1.0)))
  np.testing.assert_allclose(codes[:, 0], (mx - mx.mean()) / mx.std(), atol=1e-3)
  np.testing.assert_allclose(codes[:, 1], (s - s.mean()) / s.std(), atol=1e-3)
  with pytest.raises(ValueError, match="one \\(mean, std\\) per guidance"):
    udgan.guidance_represent_fn(("com_x",), ())


def test_guidance_only_scores_see_the_factors_the_measures_are_made_of():
  """The control row on a case with a known answer: centre of mass and mass of a real sprite ARE its position and
  scale, so the measures alone must score a high MIG (3 of dSprites' 5 factors captured, one code each); a run
  without vector guidances gets no such row."""
  dataset = _gan_data.make_dataset("dsprites")
  guided = ("com_x", "com_y", "size")
  bank = types.SimpleNamespace(guided=guided, standardization=udgan.fit_standardization(dataset, guided, 256, 0))
  engine = types.SimpleNamespace(terms=types.SimpleNamespace(siamese=bank), dataset=dataset)
  config = ml_collections.ConfigDict(dict(seed=0, evaluation=dict(metrics=("mig",),
                                                                  protocol=dict(mig_num_points=2000))))
  scores = udgan._guidance_only_scores(config, engine)
  assert scores["guided"] == list(guided) and scores["mig"] > 0.3, scores
  engine.terms.siamese = types.SimpleNamespace(guided=(), standardization=())
  assert udgan._guidance_only_scores(config, engine) == {}


def _config(**udgan_overrides):
  config = cli.load_config(str(REPO / "configs" / "udgan_dsprites.py:quick"))
  config.udgan.update(udgan_overrides)
  return config


def test_configuration_errors_name_the_culprit():
  with pytest.raises(ValueError, match=r"batch_size=8 must be a positive multiple of 4 × 4 device"):
    udgan.terms_factory(_config(), num_devices=4)
  with pytest.raises(ValueError, match=r"unknown guidance 'nope'; known: \["):
    udgan.terms_factory(_config(guided=("nope",)), num_devices=1)
  stylegan2 = _config()
  stylegan2.udgan.siamese = {"kind": "stylegan2", "width": 4}
  with pytest.raises(ValueError, match="stddev_group=4 mixes statistics of the batch"):
    udgan.terms_factory(stylegan2, num_devices=1)
  spec = trainable.make_generator_spec(_config().architecture)   # latent 10
  with pytest.raises(ValueError, match=r"num_unguided \(9\) \+ len\(config.udgan.guided\) \(0\) \+ "
                                       r"config.udgan.noise_dim \(0\) must equal .*latent_dim \(10\)"):
    udgan.terms_factory(_config(num_unguided=9), num_devices=1)(spec)
  with pytest.raises(ValueError, match="knob_sampling='sometimes'"):
    udgan.terms_factory(_config(knob_sampling="sometimes"), num_devices=1)(spec)
  with pytest.raises(ValueError, match="margin='soft'"):
    udgan.terms_factory(_config(margin="soft"), num_devices=1)(spec)


def test_the_exported_generator_draws_the_knobs_uniform_prior(tmp_path):
  """Every dimension of z is a U(−1, 1) knob: the export says so, and `generators.load(...).sample_z` draws it (not
  the N(0, I) of the other families, whose tails G never saw)."""
  spec = trainable.make_generator_spec(_config().architecture)
  terms = udgan.terms_factory(_config(), num_devices=1)(spec)
  assert terms.latent_prior() == (("uniform", 10),)
  variables = dict(family_module(spec.config["family"]).init_variables(spec.config, jax.random.key(0)))
  engine = types.SimpleNamespace(gen=spec, terms=terms)
  state = types.SimpleNamespace(generator_ema=variables.pop("params"), generator_buffers=variables)
  _gan_run.export_generator(engine, state, str(tmp_path / "gen"))
  for gen in (generators.load(tmp_path / "gen"), _gan_run.ema_generator(engine, state)):
    assert gen.info.latent_prior == (("uniform", 10),)
    z = np.asarray(gen.sample_z(jax.random.key(1), 2000))
    assert np.abs(z).max() <= 1.0 and abs(z.var() - 1 / 3) < 0.02


@pytest.mark.slow   # 158 s on the loaded 2-core box: compiles a DCGAN step on 2 devices
def test_sharded_step_reports_eq2_and_trains_the_siamese_networks_with_d():
  """2 devices × 1 quadruplet: the step's d/udgan_contrastive is Eq. 2 of the pre-step G and φ on the latents the
  engine draws, and φ (in D's group) moves."""
  config = _config()
  config.num_devices = 2
  mesh = parallel.make_mesh(2)
  init_fn, _, engine = udgan.make(config, mesh, _gan_data.make_dataset("dsprites"))
  state = jax.jit(init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  before = jax.device_get(state.params)
  buffers = jax.device_get(state.generator_buffers)
  rng = parallel.step_rng(config.seed, 0)
  new_state, metrics = engine.jitted_step(state, engine.real_batch(0), rng)
  after, metrics = jax.device_get(new_state.params), jax.device_get(metrics)
  # The D step's latents, as the engine draws them (d_key, g_key = split(rng); latent_key, noise_key = split(d_key)).
  d_key, _ = jax.random.split(rng)
  latent_key, noise_key = jax.random.split(d_key)
  latents = engine.terms.sample_latents(latent_key, 8)
  fake = engine.gen.apply(before["generator"], buffers, latents["z"], noise_key)
  emb = engine.terms.embed(before["siamese"], fake)
  expected = reference_loss(emb, np.asarray(latents["knob"]), np.asarray(latents["q1"]), np.asarray(latents["q2"]), 1)
  np.testing.assert_allclose(metrics["d/udgan_contrastive"], expected, rtol=1e-4)
  assert np.isfinite(metrics["g/udgan_contrastive"])
  assert any(jax.tree.leaves(jax.tree.map(lambda a, b: np.any(a != b), before["siamese"], after["siamese"])))


def _two_steps(num_devices, steps=2):
  """Two quick UD-GAN steps at batch 32 (8 quadruplets: one per device of 8) on `num_devices` devices."""
  config = _config()
  config.update(num_devices=num_devices, batch_size=32)
  mesh, engine = _gan_run.setup(config, udgan.terms_factory(config, num_devices=num_devices))
  state = jax.jit(engine.init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  history = []
  for step in range(steps):
    state, metrics = engine.jitted_step(state, engine.real_batch(step), parallel.step_rng(config.seed, step))
    history.append(jax.device_get(metrics))
  return jax.device_get(state.params), history


@pytest.mark.slow   # two engines compiled (8 devices, 1 device): minutes on a loaded machine
def test_sharded_step_equals_the_one_device_step(monkeypatch):
  """The same latents, quadruplets and real batch whatever the device count: 8 devices × 1 quadruplet give the
  1-device step's losses and gradients (to reduction order).

  The comparison runs both engines with plain SGD in place of the GAN engine's Adam, so a parameter moves by
  lr·gradient and the parameters compare the gradients. Under Adam they cannot be compared (this test did until
  2026-12-05 and failed on every run): step 1's G gradients agree between 1 and 8 devices to 5e-7 relative, but after
  Adam's first step (every entry moved by ±lr whatever its gradient's size) 12–50 % of each G layer's step-2 gradient
  entries differ in sign, and Adam makes each a 2·lr move (measured 2026-12-05). The step-2 inputs are the same —
  under SGD the parameters after two steps agree to ≤ 3e-5 relative, the siamese output bias (gradient 0 up to
  rounding: Eq. 2 sees only differences of embeddings) to 1.2e-11 absolute. The amplification is not pinned: Eq. 2's
  kinks are not at rounding level here (E = 1 embeddings at 1e-5…1e-3, dissimilar distances ρ ≥ 1e-8, every hinge
  γ − ρ ≥ 0.07 from its kink in both steps)."""
  monkeypatch.setattr(_gan, "lazy_adam", lambda lr, beta1, beta2, lazy_every=0: optax.sgd(lr))
  sharded, sharded_metrics = _two_steps(8)
  single, single_metrics = _two_steps(1)
  for got, want in zip(sharded_metrics, single_metrics):
    assert set(got) == set(want) and {"d/udgan_contrastive", "g/udgan_contrastive", "d/loss"} <= set(got)
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-6, err_msg=key)
  initial = _two_steps(1, steps=0)[0]
  flat_single, flat_initial = (dict(jax.tree_util.tree_flatten_with_path(p)[0]) for p in (single, initial))
  moved = []
  for path, got in jax.tree_util.tree_flatten_with_path(sharded)[0]:
    name = jax.tree_util.keystr(path)
    np.testing.assert_allclose(got, flat_single[path], rtol=1e-4, atol=1e-9, err_msg=name)
    moved.append(float(np.max(np.abs(flat_single[path] - flat_initial[path]))))
  assert sum(m > 0 for m in moved) > len(moved) // 2   # the steps did move the parameters compared


@pytest.mark.slow   # a subprocess quick run through main, then its resume: a minute or more each
@pytest.mark.parametrize("name, last_knob", [("udgan_dsprites", "knob_9"), ("udgan_g_dsprites", "knob_9_size")])
def test_quick_config_runs_through_main_and_resumes(tmp_path, name, last_knob):
  workdir = tmp_path / "run"
  command = [sys.executable, "-m", "ganlatent_jax.main", f"--config=configs/{name}.py:quick", f"--workdir={workdir}"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  subprocess.run(command, check=True, env=env, cwd=REPO, capture_output=True, timeout=1200)
  first = json.loads((workdir / "metrics.json").read_text())
  assert first["siamese"]["step"] == 2 and (workdir / "traversals" / f"{last_knob}.png").exists()
  subprocess.run(command + ["--config.steps=3"], check=True, env=env, cwd=REPO, capture_output=True, timeout=1200)
  resumed = json.loads((workdir / "metrics.json").read_text())
  assert resumed["siamese"]["step"] == 3
  assert json.loads((workdir / "training_time.json").read_text())["sessions"] == 2


@pytest.mark.slow   # ~75 s each on an idle 2-core machine (measured 2026-12-01): the default suite took 22.6 min
@pytest.mark.parametrize("name", ["udgan_dsprites", "udgan_g_dsprites"])
def test_quick_run_writes_traversals_and_metrics_that_evaluate_reproduces(name, tmp_path):
  config = cli.load_config(str(REPO / "configs" / f"{name}.py:quick"))
  outputs = udgan.train(config, str(tmp_path))
  knobs = [f"traversal_knob_{k}" for k in range(7)] + (
      ["traversal_knob_7_com_x", "traversal_knob_8_com_y", "traversal_knob_9_size"] if "_g_" in name else
      [f"traversal_knob_{k}" for k in range(7, 10)])
  assert set(outputs) == {"generator", "samples", "metrics", *knobs}
  assert all(pathlib.Path(p).exists() for p in outputs.values())
  gen = generators.load(outputs["generator"])
  h, w, _ = gen.image_shape
  assert gen.latent_dim == 10 and gen.info.latent_prior == (("uniform", 10),)
  with Image.open(outputs["traversal_knob_0"]) as picture:
    assert picture.size == (9 * (w + 2) + 2, 6 * (h + 2) + 2)
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  scores = metrics["siamese"]
  assert scores["step"] == 2 and 0.0 <= scores["beta_vae"]["eval_accuracy"] <= 1.0
  assert 0.0 <= scores["factor_vae"]["eval_accuracy"] <= 1.0
  assert 0.0 <= scores["mig"] <= 1.0 or "mig_error" in scores
  assert len(scores["knob_effect"]) == 10 and all(e >= 0 for e in scores["knob_effect"])
  # The instrument's generated-domain scores of the knobs, beside its probe and random rows.
  assert metrics["generated_domain"]["labels"] == "classifier" and metrics["generated_domain"]["space"] == "z"
  for row in ("knobs", "probe", "random"):   # 2 steps: the images may all get one label, then it is said so
    assert (0.0 <= metrics[row].get("generated_mig", 0.0) <= 1.0
            and "generated_mig" in metrics[row] or "generated_scores_undefined" in metrics[row]), metrics[row]
  if "_g_" in name:
    table7 = scores["guidance_factor_correlation"]
    assert table7["com_x"]["pos_x"] > 0.95 and table7["com_y"]["pos_y"] > 0.95
    assert metrics["guidance_only"]["guided"] == ["com_x", "com_y", "size"]
    assert 0.0 <= metrics["guidance_only"]["factor_vae"]["eval_accuracy"] <= 1.0
  else:
    assert "guidance_only" not in metrics
  # `python -m ganlatent_jax.evaluate`'s path: φ from the checkpoint, the same seeds → the same numbers (the factor
  # classifier read from its cache with its training record: the same labeller and the same reported accuracy).
  (tmp_path / "metrics.json").unlink()
  again = json.loads(json.dumps(udgan.evaluate(config, str(tmp_path))))
  assert again == metrics


def test_image_guidances_get_their_own_conv_trunk_on_the_standardised_band():
  """UD-GAN-G on CelebA (specs/udgan.md A12): each band knob's φ is a conv trunk on that band alone, so its
  embedding ignores every pixel outside the band; standardisation is per channel."""
  images = np.asarray(fixed_images(64))
  mean, std = guidance.fit_standardization(guidance.get("band0").fn, images)
  assert mean.shape == std.shape == (IMAGE_SHAPE[-1],)
  np.testing.assert_allclose(mean, images[:, :IMAGE_SHAPE[0] // 4].mean(axis=(0, 1, 2)), atol=1e-5)
  bank = tiny_bank(2, ("band0", "band3"), standardization=(((0.0,), (1.0,)), ((0.0,), (1.0,))))
  params = bank.init(jax.random.key(0), fixed_images(1))["params"]
  assert {"guided_0_band0", "guided_1_band3"} <= set(params)
  assert "conv_0" in params["guided_0_band0"]
  x = np.asarray(fixed_images(4, seed=1))
  out = np.asarray(bank.apply({"params": params}, jnp.asarray(x)))
  assert out.shape == (4, 4)
  edited = x.copy()
  edited[:, IMAGE_SHAPE[0] // 4:] = 0.0   # everything but the top band changes
  out_edited = np.asarray(bank.apply({"params": params}, jnp.asarray(edited)))
  np.testing.assert_allclose(out_edited[:, 2], out[:, 2], atol=1e-6)      # band0's knob: unchanged
  assert not np.allclose(out_edited[:, 3], out[:, 3])                      # band3's knob: changed


def test_celeba_config_has_28_unguided_knobs_and_four_band_trunks():
  c = cli.load_config(str(REPO / "configs" / "udgan_g_celeba.py"))
  assert c.architecture.latent_dim == 32 and c.udgan.num_unguided == 28 and c.udgan.weight == 1.0
  assert tuple(c.udgan.guided) == ("band0", "band1", "band2", "band3")
  assert (c.data.name, c.data.source, c.architecture.out_channels) == ("celeb_a", "tfds", 3)
  spec = trainable.make_generator_spec(c.architecture)
  assert spec.info.image_shape == (64, 64, 3)


@pytest.mark.slow   # compiles the quick UD-GAN step: a minute or more on a loaded machine
def test_celeba_quick_variant_trains_on_mock_tfds(tmp_path):
  import tensorflow_datasets as tfds
  config = cli.load_config(str(REPO / "configs" / "udgan_g_celeba.py:quick"))
  with tfds.testing.mock_data(num_examples=16):
    udgan.train(config, str(tmp_path))
  metrics = json.loads((tmp_path / "metrics.json").read_text())["siamese"]
  assert len(metrics["knob_effect"]) == 32 and metrics["knob_names"][-1] == "knob_31_band3"
  assert "mig" not in metrics and "guidance_factor_correlation" not in metrics
