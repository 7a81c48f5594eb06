"""PS-SC on the GAN engine (methods/pssc.py): the terms' losses against numpy, Q as an encoder of real images, the
sharded step against the 1-device step, a quick train → evaluate → resume run."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest

from ganlatent_jax import cli, parallel
from ganlatent_jax.generators import pssc as pssc_generators
from ganlatent_jax.methods import _gan_run, pssc

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
IMAGE_SHAPE = (16, 16, 1)
RECOGNIZER = dict(kind="stylegan2", width=4, max_width=8, stddev_group=4, aux_hidden=0)


def _quick(name="pssc_dsprites", **overrides):
  c = cli.load_config(str(CONFIGS / f"{name}.py") + ":quick")
  c.update(overrides)
  return c


def _numpy_ps(c, c2, r, r2, k):
  """½ mean_b [Σ_i (c_i − r̂_i)² + Σ_i (c′_i − r̂′_i)²], r̂ = r on k and (r + r′)/2 elsewhere (loop form)."""
  total = 0.0
  for b in range(c.shape[0]):
    for i in range(c.shape[1]):
      if i == k[b]:
        total += 0.5 * ((c[b, i] - r[b, i]) ** 2 + (c2[b, i] - r2[b, i]) ** 2)
      else:
        total += ((r[b, i] + r2[b, i]) / 2 - c[b, i]) ** 2
  return total / c.shape[0]


def _terms(loss="ps", **kwargs):
  return pssc.PSSCTerms(5, IMAGE_SHAPE, RECOGNIZER, loss=loss, **kwargs)


def _images(seed, batch):
  return jax.random.uniform(jax.random.key(seed), (batch, *IMAGE_SHAPE), jnp.float32, -1.0, 1.0)


def test_pairs_move_one_code_by_the_drawn_step():
  terms = _terms(epsilon=3.0, eps_std=2.0)
  latents = jax.device_get(terms.sample_latents(jax.random.key(0), 4000))
  diff = latents["c_prime"] - latents["z"]
  assert np.all(np.count_nonzero(diff, axis=1) <= 1)
  moved = diff[np.arange(len(diff)), latents["k"]]
  np.testing.assert_array_equal(diff.sum(axis=1), moved)
  assert abs(np.std(moved) / 6.0 - 1.0) < 0.05            # Δ ~ ε·N(0, eps_std²) = N(0, 6²)
  assert np.bincount(latents["k"], minlength=5).min() > 700  # k uniform over the 5 codes


@pytest.mark.parametrize("reduction, scale", [("upstream", 1.0), ("paper", 2.0 / 5)])
def test_ps_g_loss_is_the_weighted_ps_loss_of_q_on_the_pair(reduction, scale):
  terms = _terms(weight=0.3, reduction=reduction)
  nets = terms.init_nets(jax.random.key(1))
  latents = terms.sample_latents(jax.random.key(2), 8)
  fake, rendered = _images(3, 8), _images(4, 8)
  seen = []

  def render(g_input, rng=None):
    seen.append((np.asarray(g_input), rng))
    return rendered

  loss, metrics = terms.g_loss(nets, latents, fake, None, render)
  np.testing.assert_array_equal(seen[0][0], latents["c_prime"])   # x′ = G(c′), noise left to the engine
  assert seen[0][1] is None
  both = np.asarray(terms.recognize(nets["q"], jnp.concatenate([fake, rendered])), np.float64)
  c, c2, k = (np.asarray(latents[key], np.float64) for key in ("z", "c_prime", "k"))
  want = scale * _numpy_ps(c, c2, both[:8], both[8:], k.astype(int))
  np.testing.assert_allclose(float(metrics["ps_loss"]), want, rtol=1e-5)
  np.testing.assert_allclose(float(loss), 0.3 * want, rtol=1e-5)


def test_infogan_l2_g_loss_is_the_weighted_euclidean_distance_of_q_to_the_codes():
  terms = _terms(loss="infogan_l2", weight=0.5)
  nets = terms.init_nets(jax.random.key(1))
  latents = terms.sample_latents(jax.random.key(2), 8)
  fake = _images(3, 8)
  loss, metrics = terms.g_loss(nets, latents, fake, None, render=None)   # no pair: render is never called
  r = np.asarray(terms.recognize(nets["q"], fake), np.float64)
  want = np.mean(np.linalg.norm(r - np.asarray(latents["z"], np.float64), axis=1))
  np.testing.assert_allclose(float(metrics["infogan_l2"]), want, rtol=1e-5)
  np.testing.assert_allclose(float(loss), 0.5 * want, rtol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(loss="l1"), r"config.pssc.loss='l1': choose one of \('ps', 'infogan_l2'\)"),
    (dict(reduction="sum"), r"config.pssc.reduction='sum'"),
    (dict(epsilon=0.0), r"epsilon=0.0"),
])
def test_bad_settings_are_named(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _terms(**kwargs)


@pytest.mark.slow   # 52 s in the default suite of 2026-12-02 (loaded machine): moved for its ~10 min budget
def test_represent_fn_feeds_each_call_whole_and_pads_to_the_stddev_group():
  terms = _terms()
  nets = terms.init_nets(jax.random.key(1))
  engine = type("E", (), {"terms": terms})()
  state = type("S", (), {"params": nets})()
  images = (np.asarray(_images(5, 10)) + 1.0) / 2.0
  codes = pssc.make_represent_fn(engine, state)(images)
  assert codes.shape == (10, 5)
  padded = np.concatenate([images, images[-1:], images[-1:]]) * 2.0 - 1.0
  np.testing.assert_allclose(codes, np.asarray(terms.recognize(nets["q"], jnp.asarray(padded)))[:10], rtol=1e-5,
                             atol=1e-6)


@pytest.mark.parametrize("name, codes", [("pssc_3dshapes", [0, 1, 2, 3]), ("pssc_dsprites", [])])
def test_mask_pictures_cover_the_codes_of_sc_modules(name, codes):
  config = _quick(name)
  _, engine = _gan_run.setup(config, pssc.terms_factory(config))
  assert pssc_generators.spatial_codes(engine.gen.module) == codes


@pytest.mark.parametrize("name", ["pssc_3dshapes", "pssc_dsprites"])
def test_mask_area_summary_averages_each_sc_codes_mask_over_codes_and_pixels(name):
  config = _quick(name)
  _, engine = _gan_run.setup(config, pssc.terms_factory(config))
  generator = pssc_generators.build(engine.gen.config, pssc_generators.init_variables(engine.gen.config,
                                                                                      jax.random.key(0)))
  summary = pssc_generators.mask_area_summary(generator, jax.random.key(3), num=6)
  codes = pssc_generators.spatial_codes(generator.module)
  if not codes:   # C_global codes only: no mask to report
    assert summary == {}
    return
  code_key, noise_key = jax.random.split(jax.random.key(3))
  z = jax.random.normal(code_key, (6, generator.info.latent_dim))
  masks = np.asarray(generator.module.apply(generator.variables, z, method="masks", noise_rng=noise_key))
  assert summary["codes"] == codes and summary["num_samples"] == 6
  want = masks.astype(np.float64).mean(axis=(0, 2, 3))
  np.testing.assert_allclose(summary["area"], want[codes], rtol=1e-5)
  assert summary["largest"] == codes[int(np.argmax(want[codes]))]
  # Untrained masks are small rectangles (uniform gate logits would give ≈ 1/36), not the whole image.
  assert all(0.0 < a < 0.5 for a in summary["area"]), summary


@pytest.mark.parametrize("name", ["pssc_3dshapes", "pssc_dsprites"])
def test_mask_area_log_fn_logs_the_ema_generators_mask_areas(name):
  config = _quick(name)
  _, engine = _gan_run.setup(config, pssc.terms_factory(config))
  log_fn = pssc.mask_area_log_fn(engine, config)
  codes = pssc_generators.spatial_codes(engine.gen.module)
  if not codes:
    assert log_fn is None
    return
  state = engine.init_fn(jax.random.key(0))
  # An EMA G that differs from G: the log must follow the EMA weights (what the run exports), not G's.
  state = state.replace(batch_stats={**state.batch_stats,
                                     "generator_ema": jax.tree.map(lambda p: p * 1.5, state.generator_ema)})
  logged = log_fn(state)
  code_key, noise_key = jax.random.split(jax.random.key(int(config.seed) + pssc.STREAMS["masks"]))
  z = jax.random.normal(code_key, (pssc.MASK_LOG_SAMPLES, engine.terms.latent_dim))
  want = np.asarray(pssc_generators.mask_areas(_gan_run.ema_generator(engine, state), z, noise_rng=noise_key))
  assert sorted(logged) == sorted(f"masks/area_code_{c}" for c in codes)
  np.testing.assert_allclose([logged[f"masks/area_code_{c}"] for c in codes], want[codes], rtol=1e-5)
  assert log_fn(state) == logged   # the same codes and noise at every log step: a curve, not resampling noise


@pytest.mark.slow   # compiles the quick 3DShapes step
def test_training_logs_mask_areas_at_every_log_step(tmp_path):
  from ganlatent_jax.training.events import read_scalars
  config = _quick("pssc_3dshapes")
  config.evaluation.enabled = False
  pssc.train(config, str(tmp_path))
  scalars = read_scalars(str(tmp_path))
  for code in pssc_generators.spatial_codes(_gan_run.setup(config, pssc.terms_factory(config))[1].gen.module):
    assert [step for step, _ in scalars[f"masks/area_code_{code}"]] == [1, 2]


@pytest.mark.parametrize("per_dim, order", [([0.1, 0.5, 0.0, 0.3], [1, 3, 0, 2]), ([0.2, 0.2, 0.9], [2, 0, 1]),
                                            ([0.0, 0.0], [0, 1])])
def test_tpl_order_is_highest_tpl_first_ties_in_code_order(per_dim, order):
  assert pssc.tpl_order(per_dim) == order


def test_tpl_ordered_rows_stack_rows_in_order_and_make_grey_rows_rgb():
  grey = {k: np.full((3, 2, 2, 1), k / 10, np.float32) for k in range(3)}
  red = np.zeros((3, 2, 2, 3), np.float32)
  red[..., 0] = 1.0
  stacked = pssc.tpl_ordered_rows({**grey, 3: red}, [3, 0, 2, 1])
  assert stacked.shape == (4, 3, 2, 2, 3)
  np.testing.assert_array_equal(stacked[0], red)
  for position, code in ((1, 0), (2, 2), (3, 1)):
    np.testing.assert_allclose(stacked[position], np.full((3, 2, 2, 3), code / 10, np.float32))


def test_mask_overlay_tints_the_masked_pixels_red():
  images = np.full((2, 3, 4, 4, 1), 0.5, np.float32)
  masks = np.zeros((2, 3, 4, 4), np.float32)
  masks[..., 0, 0] = 1.0
  overlay = pssc.mask_overlay(images, masks, strength=0.6)
  assert overlay.shape == (2, 3, 4, 4, 3)
  np.testing.assert_allclose(overlay[:, :, 0, 0], np.broadcast_to([0.8, 0.2, 0.2], (2, 3, 3)), rtol=1e-6)
  np.testing.assert_allclose(overlay[:, :, 1:], 0.5)


def _steps(num_devices, steps=2, g_lazy_every=0):
  config = _quick("pssc_3dshapes", num_devices=num_devices, g_lazy_every=g_lazy_every)
  mesh, engine = _gan_run.setup(config, pssc.terms_factory(config))
  state = jax.jit(engine.init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  initial = jax.device_get(state.params["q"])
  history = []
  for step in range(steps):
    state, metrics = engine.jitted_step(state, engine.real_batch(step), parallel.step_rng(config.seed, step))
    history.append(jax.device_get(metrics))
    if step == 0:
      first_q_update = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - b), jax.device_get(state.params["q"]),
                                    initial)
  return first_q_update, jax.device_get(state), history


@pytest.mark.slow   # two engines compiled (8 devices, 1 device): minutes on a loaded machine
def test_sharded_step_equals_the_one_device_step():
  first_q_update, sharded, sharded_metrics = _steps(8)
  _, single, single_metrics = _steps(1)
  # Q trains with G's Adam: with β1 = 0 its first step is G's rate·sign(g). Each Adam is corrected for its own
  # lazy ratio (lr·k/(k+1)); the config's G ratio (g_lazy_every = 4, rate 0.0016) is close to D's (quick r1_every
  # = 2, rate 0.00133), so _steps turns G's off: Q's first step is then 0.002 exactly, D's would be 0.002·2/3.
  lr = 0.002
  largest = max(float(np.max(u)) for u in jax.tree.leaves(first_q_update))
  np.testing.assert_allclose(largest, lr, rtol=1e-3)
  for got, want in zip(sharded_metrics, single_metrics):
    assert set(got) >= {"g/ps_loss", "g/q_mse", "d/loss", "d/r1"}
    assert all(np.isfinite(v) for v in got.values()), got
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-6, err_msg=key)
  # Params to a fraction of one Adam step (lr 0.002): with β1 = 0 an update is g/√v, which turns the last-bit
  # differences of a near-zero gradient (another reduction order over 8 devices) into ~1e-4 moves (seen: 8e-5).
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=0.25 * lr), sharded.params,
               single.params)


@pytest.mark.slow   # a quick run, its evaluation from the workdir and a resumed run: minutes on a loaded machine
def test_quick_run_trains_evaluates_and_resumes(tmp_path):
  config = _quick()
  outputs = pssc.train(config, str(tmp_path))
  assert all(pathlib.Path(p).exists() for p in outputs.values()), outputs
  assert {"generator", "samples", "recognizer", "metrics", "traversal_code_0", "traversal_code_3"} <= set(outputs)
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["step"] == 2
  assert 0.0 <= metrics["q"]["mig"] <= 1.0
  assert 0.0 <= metrics["q"]["factor_vae"]["eval_accuracy"] <= 1.0
  upstream = metrics["q"]["factor_vae_upstream"]   # upstream's prune threshold; the quick variant's token vote batch
  assert 0.0 <= upstream["eval_accuracy"] <= 1.0 and (upstream["batch_size"], upstream["prune_threshold"]) == (8, 0.1)
  assert 0.0 <= metrics["q"]["dci"]["disentanglement"] <= 1.0   # the deliverable's DCI of Q on real images
  assert len(metrics["tpl_pixel"]["per_dim"]) == 4
  per_dim, order = metrics["tpl_pixel"]["per_dim"], metrics["tpl_pixel"]["order"]
  assert sorted(order) == [0, 1, 2, 3] and order == pssc.tpl_order(per_dim)
  assert all(per_dim[a] >= per_dim[b] for a, b in zip(order, order[1:]))
  by_tpl = np.asarray(PIL.Image.open(tmp_path / "traversals" / "by_tpl.png"))
  assert by_tpl.shape[0] == 4 * (64 + 2) + 2   # one row of 64-pixel images per code, 2-pixel padding
  assert "mask_area" not in metrics   # the dSprites config has C_global codes only
  assert metrics["generated_domain"]["labels"] == "classifier" and {"codes", "probe", "random"} <= set(metrics)
  assert pssc.evaluate(config, str(tmp_path)).keys() == metrics.keys()
  # The README table's reader reads what a run writes (its test fixture once had another layout than this).
  spec = importlib.util.spec_from_file_location("pssc_table", CONFIGS.parent / "launch" / "pssc_table.py")
  table = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(table)
  row = table._scores(str(tmp_path / "metrics.json"), "q")
  assert row["FactorVAE"] == metrics["q"]["factor_vae"]["eval_accuracy"] and row["MIG"] == metrics["q"]["mig"]
  assert row["FactorVAE 60/0.1"] == upstream["eval_accuracy"]
  assert row["DCI"] == metrics["q"]["dci"]["disentanglement"]
  assert row["TPL"] == metrics["tpl_pixel"]["tpl"] and "probe gen. MIG" in row
  for column, entry, key in table.GENERATED:   # each generated column is the run's value, absent when the run has none
    assert row.get(column) == metrics[entry].get(key), column   # (the quick config scores no generated DCI)
  config.steps = 3
  pssc.train(config, str(tmp_path))
  assert json.loads((tmp_path / "metrics.json").read_text())["step"] == 3
  assert json.loads((tmp_path / "training_time.json").read_text())["sessions"] == 2


# CelebA cannot be downloaded here: its quick run goes through main inside TFDS's mock data, entered in the process.
_MAIN_IN_MOCK_TFDS = ("import runpy, sys; import tensorflow_datasets as tfds; sys.argv = ['main', *sys.argv[1:]]\n"
                      "with tfds.testing.mock_data(num_examples=16): runpy.run_module('ganlatent_jax.main', "
                      "run_name='__main__')")


@pytest.mark.slow   # three subprocess quick runs through main and their resumes: a minute or more each
@pytest.mark.parametrize("name", ["pssc_3dshapes", "pssc_dsprites", "pssc_celeba"])
def test_quick_config_runs_through_main_and_resumes(tmp_path, name):
  """What the README's command and the table launcher run: `python -m ganlatent_jax.main` on the quick variant,
  then the same command with more steps resumes from its checkpoint."""
  workdir = tmp_path / "run"
  main = [sys.executable, "-c", _MAIN_IN_MOCK_TFDS] if name == "pssc_celeba" else [sys.executable, "-m",
                                                                                      "ganlatent_jax.main"]
  command = main + [f"--config=configs/{name}.py:quick", f"--workdir={workdir}"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  run = lambda args: subprocess.run(args, env=env, cwd=CONFIGS.parent, capture_output=True, text=True, timeout=1200)
  result = run(command)
  assert result.returncode == 0, result.stderr[-3000:]
  first = json.loads((workdir / "metrics.json").read_text())
  assert first["step"] == 2 and (workdir / "traversals" / "by_tpl.png").exists() and (workdir / "report.html").exists()
  result = run(command + ["--config.steps=3"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads((workdir / "metrics.json").read_text())["step"] == 3
  assert json.loads((workdir / "training_time.json").read_text())["sessions"] == 2


@pytest.mark.slow   # 85 s in the default suite of 2026-12-02 (loaded machine): moved for its ~10 min budget
def test_tpl_distance_is_lpips_when_a_vgg16_file_is_given_and_pixels_otherwise():
  """The paper's TPL uses LPIPS-VGG (metrics key 'tpl'); without weights the pixel stand-in ('tpl_pixel')."""
  import ml_collections
  from conftest import fixture_path
  from ganlatent_jax.metrics import tpl
  from ganlatent_jax.nets.lpips import LPIPS
  protocol = _quick().evaluation.protocol
  assert pssc.tpl_distance(protocol) is None
  vgg = str(fixture_path("torchvision/tv_vgg16_tiny.pth"))   # a tiny VGG16: only the baseline (no shipped heads fit)
  lpips = pssc.tpl_distance(ml_collections.ConfigDict(dict(tpl_vgg16_path=vgg, tpl_lpips_heads="none")))
  assert isinstance(lpips, LPIPS)
  gen = pssc_generator_for_tpl()
  key, summary = tpl.tpl_per_dimension(gen, jax.random.key(0), distance_fn=lpips, num_traversals=1,
                                       points_per_dim=3)
  assert key == "tpl" and summary["distance"] == "LPIPS" and len(summary["per_dim"]) == gen.latent_dim
  with pytest.raises(FileNotFoundError, match="/no/such/vgg16.pth"):
    pssc.tpl_distance(ml_collections.ConfigDict(dict(tpl_vgg16_path="/no/such/vgg16.pth")))
  with pytest.raises(ValueError, match="tpl_lpips_heads='bad'"):
    pssc.tpl_distance(ml_collections.ConfigDict(dict(tpl_vgg16_path=vgg, tpl_lpips_heads="bad")))


def pssc_generator_for_tpl():
  """The EMA generator of the 3DShapes quick config at initialisation (RGB, 16 px): what TPL measures."""
  config = _quick("pssc_3dshapes")
  mesh, engine = _gan_run.setup(config, pssc.terms_factory(config))
  state = jax.jit(engine.init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  return _gan_run.ema_generator(engine, state)


def test_celeba_config_is_the_readme_architecture():
  """configs/pssc_celeba.py builds upstream's README CelebA-128 generator: the same module list, d = 25, 128 px, the
  nf rule's widths (512 ×12, 256 ×6, 128 ×4), 64→512-channel D and Q; abstract (no compile, no CelebA needed)."""
  from ganlatent_jax.generators import pssc as gpssc
  from ganlatent_jax.generators import trainable
  from test_pssc_nets import CELEBA
  c = cli.load_config(str(CONFIGS / "pssc_celeba.py"))
  config = trainable.generator_config(c.architecture)
  assert config == gpssc.make_config(CELEBA, image_channels=3, fmap_base=1024, fmap_min=64, fmap_max=512,
                                     nf_scale=6, size=128)
  assert config["latent_dim"] == 25
  variables = jax.eval_shape(lambda: gpssc.init_variables(config, jax.random.key(0)))
  assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(variables)) > 10_000_000   # the full-width network
  assert (c.batch_size, c.r1_gamma, c.r1_every, c.data.name, c.data.source, c.data.size, c.data.mirror) == \
      (8, 10.0, 16, "celeb_a", "tfds", 128, True)
  assert (c.discriminator.width, c.discriminator.max_width, c.recognizer.width) == (64, 512, 64)
  assert tuple(c.evaluation.metrics) == ("tpl",) and c.evaluation.protocol.tpl_active_threshold == 0.3


@pytest.mark.slow   # compiles the quick PS-SC step: a minute or more on a loaded machine
def test_celeba_quick_variant_trains_on_mock_tfds_with_mirror_augment(tmp_path):
  import tensorflow_datasets as tfds
  config = _quick("pssc_celeba")
  with tfds.testing.mock_data(num_examples=16):
    outputs = pssc.train(config, str(tmp_path))
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert "tpl_pixel" in metrics and "q" not in metrics   # no factor labels: TPL only
  assert pathlib.Path(outputs["metrics"]).exists()


def test_mirror_augment_flips_about_half_the_real_images():
  from ganlatent_jax.methods import _gan as gan_engine
  images = np.arange(8 * 4 * 4 * 3, dtype=np.float32).reshape(8, 4, 4, 3) / 400.0

  class Images:   # an image-only source (CelebA-like: no factors)
    def sample_images(self, num, rng):
      return images[:num]

  config = _quick("pssc_celeba")
  engine = gan_engine.Engine(config=config, mesh=parallel.make_mesh(1), gen=None, disc=None, terms=None,
                             g_optimizer=None, d_optimizer=None, jitted_step=None, init_fn=None, dataset=Images())
  real = (np.asarray(engine.real_batch(3)) + 1.0) / 2.0
  flipped = [np.allclose(r, i[:, ::-1]) for r, i in zip(real, images)]
  kept = [np.allclose(r, i) for r, i in zip(real, images)]
  assert all(f != k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 8
  config.data.mirror = False
  np.testing.assert_allclose((np.asarray(engine.real_batch(3)) + 1.0) / 2.0, images, atol=1e-6)


def test_qs_head_is_equalized_as_upstream_in_every_pssc_config():
  for name in ("pssc_3dshapes", "pssc_dsprites", "pssc_celeba"):
    assert cli.load_config(str(CONFIGS / f"{name}.py")).recognizer.aux_equalized is True, name


def _pixel_code(calls):
  """The mean brightness of five bands of a dSprites image's top rows as the code, scaled so dims 1 and 2 have a
  std ≈ 0.075 (between disentanglement_lib's prune threshold 0.05 and upstream's 0.1) and the others 0.18–0.29."""
  def represent(images):
    calls.append(len(images))
    bands = np.asarray(images).reshape(len(images), -1)[:, :4000].reshape(len(images), 5, -1).mean(-1)
    return bands * np.array([10.0, 1.1, 1.1, 4.0, 10.0])
  return represent


def test_upstream_factor_vae_votes_in_batches_of_60_and_prunes_below_0_1():
  """'factor_vae_upstream' (#17 Deliver 6, the paper's Table 5 protocol): the FactorVAE metric with upstream PS-SC's
  vote batch and prune threshold from the protocol, its other budgets and seed as 'factor_vae'."""
  from ganlatent_jax.methods import _gan_data
  from ganlatent_jax.metrics import disentanglement
  dataset = _gan_data.make_dataset("dsprites")
  protocol = cli.load_config(str(CONFIGS / "pssc_dsprites.py")).evaluation.protocol
  assert (protocol.factor_vae_upstream_batch_size, protocol.factor_vae_upstream_prune_threshold) == (60, 0.1)
  protocol.update(factor_vae_num_train=20, factor_vae_num_eval=10, factor_vae_num_variance=600)
  calls = []
  got = pssc.upstream_factor_vae(dataset, _pixel_code(calls), protocol, seed=5)
  assert calls.count(60) == 30   # every vote is one call of a whole batch of 60
  want = disentanglement.factor_vae_score(dataset, _pixel_code([]), np.random.RandomState(5), batch_size=60,
                                          num_train=20, num_eval=10, num_variance_estimate=600, prune_threshold=0.1)
  assert got == {**want, "batch_size": 60, "prune_threshold": 0.1}
  assert got["num_active_dims"] == 3   # the two scaled pixels pruned
  dlib = _gan_data.representation_scores(dataset, _pixel_code([]), ("factor_vae",), protocol, seed=5)["factor_vae"]
  assert dlib["num_active_dims"] == 5   # the configs' 'factor_vae' (64 / 0.05) keeps them


def test_upstream_factor_vae_without_its_protocol_keys_is_refused():
  from ganlatent_jax.methods import _gan_data
  protocol = cli.load_config(str(CONFIGS / "pssc_dsprites.py")).evaluation.protocol
  del protocol["factor_vae_upstream_prune_threshold"]
  with pytest.raises(ValueError, match="factor_vae_upstream_prune_threshold"):
    pssc.upstream_factor_vae(_gan_data.make_dataset("dsprites"), _pixel_code([]), protocol, seed=0)


def test_two_runs_of_one_config_are_bit_identical_on_one_machine():
  """What the README's PS-SC second draw rests on: the same config and seed give the same parameters and losses, to
  the bit, on one machine (two engines built and compiled afresh). Across machines they do not (measured 2026-12-05:
  the committed cells' re-runs differ from step 50's losses on), so a re-run elsewhere is a new draw."""
  _, first, first_metrics = _steps(1, steps=3)
  _, second, second_metrics = _steps(1, steps=3)
  assert first_metrics == second_metrics
  jax.tree.map(np.testing.assert_array_equal, first.params, second.params)
  jax.tree.map(np.testing.assert_array_equal, first.opt_state, second.opt_state)
