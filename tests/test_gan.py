"""The GAN engine: sharded steps, lazy R1 and EMA against direct computations, discriminators, train/resume/export."""
import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from ganlatent_jax import generators, parallel
from ganlatent_jax.generators.load import TESTBED_DIR
from ganlatent_jax import testbeds
from ganlatent_jax.methods import gan
from ganlatent_jax.nets import discriminators

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def load_config(name, variant=None):
  spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def tiny_shapes3d_config(**overrides):
  """The shipped shapes3d config shrunk to 16×16 images and widths of a few channels."""
  c = load_config("gan_3dshapes")
  c.steps, c.batch_size, c.log_every, c.checkpoint_every, c.image_every, c.progress_bar = 2, 8, 1, 1, 2, False
  c.data.resolution = 16
  c.architecture.update(size=16, style_dim=8, n_mlp=1, channels=(8, 8, 4))
  c.discriminator.update(width=4, max_width=8)
  c.r1_every = 2
  c.update(overrides)
  return c


@pytest.fixture(scope="module")
def engine():
  mesh, eng = gan.setup(tiny_shapes3d_config())
  return eng


def _copy(tree):
  return jax.tree.map(lambda a: np.array(a), tree)


@pytest.mark.slow   # 83 s of the idle default suite (2026-12-01)
def test_sharded_steps_are_finite_and_follow_lazy_r1_and_ema(engine):
  assert engine.mesh.devices.size == 8
  state = jax.jit(engine.init_fn, out_shardings=parallel.replicated_sharding(engine.mesh))(jax.random.key(0))
  c = engine.config
  history = []
  for step in range(3):
    before = _copy(state)
    real = engine.real_batch(step)
    assert real.sharding.spec == jax.sharding.PartitionSpec("data")
    rng = parallel.step_rng(c.seed, step)
    state, metrics = engine.jitted_step(state, real, rng)
    metrics = jax.device_get(metrics)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    history.append(metrics)

    # EMA: decay min(ema_decay, (1 + step) / (10 + step)) applied to the freshly updated G.
    decay = min(c.ema_decay, (1 + step) / (10 + step))
    want = jax.tree.map(lambda e, p: decay * e + (1 - decay) * np.asarray(p), before.generator_ema,
                        _copy(state.params["generator"]))
    jax.tree.map(lambda w, g: np.testing.assert_allclose(g, w, atol=1e-6, rtol=1e-5), want,
                 _copy(state.generator_ema))

    # Lazy R1 on steps 0, 2 (r1_every=2) as its own update (replayed exactly in
    # test_lazy_passes_are_separate_updates_as_upstream); 0 on the other steps.
    assert (metrics["d/r1"] > 0) if step % c.r1_every == 0 else (metrics["d/r1"] == 0.0)
  assert int(state.step) == 3


def test_r1_penalty_of_a_linear_critic_is_the_squared_weight_norm():
  w = jax.random.normal(jax.random.key(1), (5, 4, 4, 2))
  x = jax.random.normal(jax.random.key(2), (5, 4, 4, 2))
  penalty = gan.r1_penalty(lambda images: jnp.sum(images * w, axis=(1, 2, 3)), x)
  np.testing.assert_allclose(penalty, jnp.mean(jnp.sum(w ** 2, axis=(1, 2, 3))), rtol=1e-5)


def test_nonsaturating_losses_match_their_formulas():
  real, fake = jnp.array([0.3, -1.2]), jnp.array([2.0, -0.5])
  sigmoid = jax.nn.sigmoid
  np.testing.assert_allclose(gan.nonsaturating_d_loss(real, fake),
                             -np.mean(np.log(1 - sigmoid(fake))) - np.mean(np.log(sigmoid(real))), rtol=1e-5)
  np.testing.assert_allclose(gan.nonsaturating_g_loss(fake), -np.mean(np.log(sigmoid(fake))), rtol=1e-5)


@pytest.mark.parametrize("kind", ["stylegan2", "dcgan"])
@pytest.mark.parametrize("aux_outputs", [0, 3])
def test_discriminators_give_logits_and_optional_aux_head(kind, aux_outputs):
  disc = discriminators.from_config({"kind": kind, "width": 4, "max_width": 8, "aux_hidden": 8}, 16, aux_outputs)
  x = jax.random.uniform(jax.random.key(0), (4, 16, 16, 3), minval=-1, maxval=1)
  params = jax.jit(disc.init)(jax.random.key(1), x)   # jitted: op-by-op dispatch took 94 s on a loaded machine
  logits, aux = jax.jit(disc.apply)(params, x)
  assert logits.shape == (4,)
  assert (aux is None) if aux_outputs == 0 else aux.shape == (4, aux_outputs)


@pytest.mark.parametrize("aux_hidden", [0, 8])
def test_an_equalized_aux_head_scales_its_stored_weights_by_one_over_sqrt_fan_in(aux_hidden):
  """PS-SC's Q head (upstream's equalized dense_layer): same parameter names and shapes as the plain head, weights
  stored N(0, 1) and applied times 1/√fan_in."""
  config = {"kind": "stylegan2", "width": 4, "max_width": 8, "aux_hidden": aux_hidden}
  plain = discriminators.from_config(config, 16, aux_outputs=3)
  equalized = discriminators.from_config({**config, "aux_equalized": True}, 16, aux_outputs=3)
  images = jax.random.normal(jax.random.key(1), (4, 16, 16, 1))
  params = equalized.init(jax.random.key(0), images)["params"]
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, plain.init(jax.random.key(0), images)["params"])
  out = params["aux_out"]
  assert 0.5 < float(np.std(out["kernel"])) < 1.5   # stored at unit scale, not 1/√fan_in
  (_, aux), state = jax.jit(lambda p, x: equalized.apply({"params": p}, x, capture_intermediates=True,
                                                         mutable=["intermediates"]))(params, images)
  pre = np.asarray(state["intermediates"]["final_dense"]["__call__"][0])
  h = np.where(pre >= 0, pre, 0.2 * pre) * np.sqrt(2.0)   # the body's hidden layer: lrelu × √2
  if aux_hidden:
    layer = params["aux_hidden"]
    h = h @ (np.asarray(layer["kernel"]) / np.sqrt(h.shape[-1])) + np.asarray(layer["bias"])
    h = np.where(h >= 0, h, 0.2 * h)
  expected = h @ (np.asarray(out["kernel"]) / np.sqrt(h.shape[-1])) + np.asarray(out["bias"])
  np.testing.assert_allclose(np.asarray(aux), expected, rtol=1e-4, atol=1e-5)


def test_minibatch_stddev_matches_a_direct_loop():
  x = np.random.RandomState(0).randn(8, 2, 2, 3).astype(np.float32)
  y = np.asarray(discriminators.minibatch_stddev(jnp.asarray(x), group_size=4))
  for i in range(8):
    members = x[[j for j in range(8) if j % 2 == i % 2]]  # upstream's view(group, -1, ...): column i mod (B/group)
    np.testing.assert_allclose(y[i, ..., -1], np.mean(np.sqrt(members.var(0) + 1e-8)), rtol=1e-5)


def test_bad_configs_give_clear_errors():
  with pytest.raises(ValueError, match="one width per resolution"):
    gan.setup(tiny_shapes3d_config(architecture=dict(channels=(8, 8))))
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    gan.setup(tiny_shapes3d_config(batch_size=12))
  with pytest.raises(ValueError, match="dataset shapes3d has images"):
    gan.setup(tiny_shapes3d_config(architecture=dict(size=8, channels=(8, 4))))


@pytest.mark.slow   # 65–170 s on an idle 2-core machine (measured 2026-12-01): the default suite took 22.6 min
def test_train_resumes_and_exports_a_loadable_generator(tmp_path):
  # Smallest sizes and 2 devices: this test compiles the step twice (one per train() call).
  c = tiny_shapes3d_config(steps=1, num_devices=2, image_every=0, batch_size=4)
  c.data.resolution = 8
  c.architecture.update(size=8, channels=(8, 4))
  c.evaluation.enabled = False
  assert set(gan.train(c, str(tmp_path))) == {"generator", "samples"}
  c.steps = 2
  c.evaluation.enabled = True
  c.evaluation.protocol.update(num_samples=16, classifier_steps=2)
  outputs = gan.train(c, str(tmp_path))  # resumes from the step-1 checkpoint, then evaluates
  assert outputs == {"generator": str(tmp_path / gan.EXPORT_DIR), "samples": str(tmp_path / "samples.png"),
                     "metrics": str(tmp_path / "metrics.json")}
  _, state = gan.restore(c, str(tmp_path))
  assert int(state.step) == 2
  assert json.loads((tmp_path / "training_time.json").read_text())["sessions"] == 2
  assert (tmp_path / "checkpoints" / "2").is_dir() and (tmp_path / "samples.png").exists()
  generator = generators.load(str(tmp_path / gan.EXPORT_DIR))
  assert generator.info.family == "stylegan2" and generator.image_shape == (8, 8, 3)
  z = jax.random.normal(jax.random.key(0), (2, generator.latent_dim))
  # The export is the EMA generator with constant noise: a pure function of z (and of w).
  np.testing.assert_array_equal(np.asarray(generator(z)), np.asarray(generator(z)))
  np.testing.assert_allclose(generator.synthesis(generator.mapping(z)), generator(z), atol=1e-6)
  expected = jax.tree.leaves(state.generator_ema)
  got = jax.tree.leaves(generator.variables["params"])
  for a, b in zip(expected, got):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert testbeds.training_seconds(str(tmp_path)) >= 0.0

  # Exporting the run as a testbed: generator dir + samples + model card with measured quality numbers.
  testbed = tmp_path / "testbed"
  report = testbeds.export_testbed(str(tmp_path), str(testbed), "tiny", num_samples=16, classifier_steps=2)
  assert 0.0 <= report["generated"]["coverage"] <= 1.0
  # The run's own evaluation measured the same generator with the same seeds (its classifier cached beside the
  # workdir, where the runs next to it find it: a finished run does not train its own).
  assert json.loads((tmp_path / "metrics.json").read_text())["quality"] == json.loads(json.dumps(report))
  assert (tmp_path.parent / "classifier_shapes3d_8x8_2_identifiable.msgpack").exists()
  card = (testbed / "MODEL_CARD.md").read_text()
  assert "steps: 2 of the configured 2" in card and "| generated (16) |" in card
  assert "--name=tiny --classifier_steps=2`" in card   # the card's command reproduces the classifier too
  assert ("The real-image reference itself covers" in card) == (report["real"]["coverage"] < 0.9)
  assert "--config=configs/gan_3dshapes.py:gpu" in card   # 2 steps miss the targets: the card names the GPU recipe
  assert generators.load(str(testbed)).image_shape == (8, 8, 3)
  assert (testbed / "samples.png").exists() and (testbed / "quality.json").exists()

  # Re-measuring the shipped generator: the same samples and classifier, so the same numbers; only the Quality
  # section of the card is rewritten.
  card_before = card.replace("| generated (16) |", "| generated (stale) |")
  (testbed / "MODEL_CARD.md").write_text(card_before)
  again = testbeds.remeasure_testbed(str(testbed), "shapes3d", num_samples=16, classifier_steps=2,
                                       dataset_kwargs={"resolution": 8})
  assert again["generated"] == report["generated"] and again["frechet_distance"] == report["frechet_distance"]
  card_after = (testbed / "MODEL_CARD.md").read_text()
  assert card_after == card.replace("--name=tiny --classifier_steps=2`.", "--name=shapes3d --classifier_steps=2`.")
  assert json.loads((testbed / "quality.json").read_text())["generated"] == report["generated"]
  (testbed / "MODEL_CARD.md").write_text("# no quality section\n")
  with pytest.raises(ValueError, match="no '## Quality' section"):
    testbeds.remeasure_testbed(str(testbed), "shapes3d", num_samples=16, classifier_steps=2,
                                 dataset_kwargs={"resolution": 8})


@pytest.mark.parametrize("name,shape", [("shapes3d", (64, 64, 3)), ("dsprites", (64, 64, 1)),
                                        ("shapes3d-v1", (64, 64, 3)), ("dsprites-v1", (64, 64, 1))])
def test_shipped_testbed_generators_load_offline_and_are_pure_functions(name, shape):
  assert (TESTBED_DIR / name / "generator.json").exists(), f"testbed:{name} is not shipped in the package"
  generator = generators.load(f"testbed:{name}")
  assert generator.image_shape == shape and generator.info.source == f"testbed:{name}"
  z = jax.random.normal(jax.random.key(0), (2, generator.latent_dim))
  images = np.asarray(_RENDER(generator, z))   # jitted: eager StyleGAN2 compiles every primitive on its own
  assert images.shape == (2, *shape) and np.all(np.isfinite(images))
  if generator.info.family == "dcgan":  # tanh output; StyleGAN2's raw RGB is unbounded around [-1, 1]
    assert np.all(np.abs(images) <= 1.0)
  np.testing.assert_array_equal(np.asarray(_RENDER(generator, z)), images)
  if "w" in generator.info.latent_spaces:
    np.testing.assert_allclose(np.asarray(_RENDER_FROM_W(generator, z)), images, atol=1e-5)


# One compilation per architecture: a testbed and its -v1 twin share it (GeneratorInfo's source is not in the key).
_RENDER = jax.jit(lambda g, z: g(z))
_RENDER_FROM_W = jax.jit(lambda g, z: g.synthesis(g.mapping(z)))


@pytest.mark.slow  # ~40 s idle: compiles a 64 px StyleGAN2 step
def test_grey_stylegan2_trains_on_dsprites():
  # StyleGAN2 with one image channel (ours; upstream is RGB only): the testbed recipe on grey dSprites, W space kept.
  c = tiny_shapes3d_config(num_devices=2)
  c.data = ml_collections.ConfigDict(dict(name="dsprites"))
  c.architecture.update(size=64, channels=(8, 8, 4, 4, 2))
  c.architecture.image_channels = 1
  mesh, eng = gan.setup(c)
  assert eng.gen.info.image_shape == (64, 64, 1) and "w" in eng.gen.info.latent_spaces
  state = jax.jit(eng.init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  state, metrics = eng.jitted_step(state, eng.real_batch(0), parallel.step_rng(c.seed, 0))
  assert all(np.isfinite(v) for v in jax.device_get(metrics).values())


# ---------------------------------------------------------------------------------------------------------------
# StyleGAN2's regularisers and the optimizers' lazy-regularisation correction.

def _first_adam_step(optimizer):
  """|update| of an optimizer's first step on a unit gradient: Adam's bias-corrected first step is its lr."""
  params = {"w": jnp.zeros((3,))}
  updates, _ = optimizer.update({"w": jnp.ones((3,))}, optimizer.init(params), params)
  return float(jnp.abs(updates["w"][0]))


@pytest.mark.parametrize("pl_weight,g_ratio", [(0.0, 1.0), (2.0, 4.0 / 5.0)])
def test_each_optimizer_is_corrected_only_for_its_own_lazy_regulariser(pl_weight, g_ratio):
  # Before: G's Adam ran at its lr/2 with square-rooted betas (every=1 applied to a G without a lazy regulariser).
  c = tiny_shapes3d_config(pl_weight=pl_weight, pl_every=4, r1_every=16)
  c.architecture.learning_rate, c.discriminator.learning_rate = 0.002, 0.003
  _, eng = gan.setup(c)
  np.testing.assert_allclose(_first_adam_step(eng.g_optimizer), 0.002 * g_ratio, rtol=1e-4)
  np.testing.assert_allclose(_first_adam_step(eng.d_optimizer), 0.003 * 16 / 17, rtol=1e-4)
  np.testing.assert_allclose(_first_adam_step(gan.lazy_adam(0.01, 0.0, 0.99)), 0.01, rtol=1e-4)


@pytest.mark.parametrize("g_lazy_every,g_ratio", [(4, 4.0 / 5.0), (0, 1.0)])
def test_g_lazy_every_corrects_g_without_a_regulariser_as_stylegan2_tf(g_lazy_every, g_ratio):
  # PS-SC's upstream (StyleGAN2's TF loop) rescales G's Adam by G_reg_interval/(G_reg_interval+1) = 4/5 though its G
  # has no regulariser; before config.g_lazy_every the engine could only give such a G plain Adam.
  c = tiny_shapes3d_config(pl_weight=0.0, r1_every=16, g_lazy_every=g_lazy_every)
  c.architecture.learning_rate = 0.002
  _, eng = gan.setup(c)
  np.testing.assert_allclose(_first_adam_step(eng.g_optimizer), 0.002 * g_ratio, rtol=1e-4)
  assert eng.regularisers.g_lazy_every == g_lazy_every


@pytest.mark.parametrize("overrides,culprit", [
    (dict(pl_weight=2.0, pl_every=4, g_lazy_every=8), "g_lazy_every=8 differs from config.pl_every=4"),
    (dict(pl_weight=0.0, g_lazy_every=-1), "g_lazy_every=-1 must be >= 0"),
])
def test_g_lazy_every_refuses_a_contradiction(overrides, culprit):
  with pytest.raises(ValueError, match=culprit):
    gan.setup(tiny_shapes3d_config(**overrides))


def test_the_card_points_to_the_accelerator_recipe_only_when_a_target_is_missed(monkeypatch):
  monkeypatch.setattr(testbeds.quality, "quality_targets", lambda report: report)   # a report = its judged targets
  missed, met = [("Fréchet ≤ 5× floor", False, "60×")], [("Fréchet ≤ 5× floor", True, "2×")]
  assert "`python -m ganlatent_jax.main --config=configs/gan_3dshapes.py:gpu" in "\n".join(
      testbeds.accelerator_lines("shapes3d", missed))
  assert testbeds.accelerator_lines("shapes3d", met) == []
  dsprites = "\n".join(testbeds.accelerator_lines("dsprites", missed))
  assert "--config=configs/gan_dsprites.py:gpu" in dsprites and "--classifier_steps=4000" in dsprites
  assert testbeds.accelerator_lines("mnist", missed) == []   # no accelerator recipe for it: nothing promised
  from ganlatent_jax import cli
  for config, _ in testbeds.ACCELERATOR_CONFIGS.values():   # every promised recipe loads
    cli.load_config(str(CONFIGS.parent / config.split(":")[0]) + ":" + config.split(":")[1])


def test_the_card_command_carries_the_runs_overrides():
  """The dsprites run of 2026-12-02 was trained with optimizer overrides; its card's command said the bare config."""
  from ganlatent_jax import cli
  config = cli.load_config(str(CONFIGS / "gan_dsprites.py"))
  config.architecture.beta1 = 0.6
  config.architecture.channels = (64, 32)
  config.progress_bar = not config.progress_bar            # presentation only: not part of the command
  command = testbeds._training_command(config, "configs/gan_dsprites.py", "dsprites")
  assert command == ("python -m ganlatent_jax.main --config=configs/gan_dsprites.py --workdir=/work/testbed_runs/"
                     "dsprites --config.architecture.beta1=0.6 --config.architecture.channels=(64,32)")
  assert testbeds.command_overrides({"a": {"b": [1]}, "c": "x"}, {"a": {"b": (1,)}, "c": "y"}) == ["--config.c=x"]
  # The shipped run's config.json: the config's defaults now are its G optimizer, so its command is the bare one.
  run = json.loads(config.to_json_best_effort())
  run["architecture"].update(beta1=0.7071, channels=[128, 64, 32, 16])
  run["progress_bar"] = False
  assert testbeds.command_overrides(run, json.loads(cli.load_config(str(CONFIGS / "gan_dsprites.py"))
                                                    .to_json_best_effort())) == []


@pytest.mark.slow   # traces the 4.5M-parameter networks: ~100 s on the loaded machine of 2026-12-02
def test_the_gpu_variant_builds_the_wider_testbed_recipe():
  # The shipped card points to this config for the targets the CPU cannot reach: it must at least build and init.
  c = load_config("gan_3dshapes", "gpu")
  _, eng = gan.setup(c)
  shapes = jax.eval_shape(eng.init_fn, jax.random.key(0))
  count = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))
  g, d = count(shapes.params["generator"]), count(shapes.params["discriminator"])
  assert 4e6 < g < 2e7 and 4e6 < d < 2e7, (g, d)   # 4.50M / 4.73M, vs 0.19M / 0.22M for the CPU config
  assert (c.batch_size, c.steps, c.architecture.style_dim) == (32, 150000, 256)


def test_a_networks_own_betas_override_the_runs():
  c = tiny_shapes3d_config(pl_weight=0.0, r1_every=16)
  c.architecture.update(beta1=0.5, beta2=0.9)
  _, eng = gan.setup(c)
  grads = [{"w": jnp.full((2,), g)} for g in (1.0, -2.0, 0.5)]
  def run(optimizer):
    params = {"w": jnp.zeros((2,))}
    state = optimizer.init(params)
    for g in grads:
      updates, state = optimizer.update(g, state, params)
      params = optax.apply_updates(params, updates)
    return np.asarray(params["w"])
  np.testing.assert_allclose(run(eng.g_optimizer), run(optax.adam(c.architecture.learning_rate, 0.5, 0.9, eps=1e-8)),
                             rtol=1e-6)
  ratio = 16 / 17   # D keeps the run's betas, corrected for its lazy R1
  np.testing.assert_allclose(run(eng.d_optimizer), run(optax.adam(c.discriminator.learning_rate * ratio,
                                                                   c.beta1 ** ratio, c.beta2 ** ratio, eps=1e-8)),
                             rtol=1e-6)


def test_path_lengths_of_a_linear_synthesis_match_numpy():
  # image = Σ_l,d latent[b, l, d] M[l, d, :], so ∂(Σ image·y)/∂latent[b, l, d] = Σ_k y[b, k] M[l, d, k].
  rs = np.random.RandomState(0)
  batch, layers, dim, (h, w, ch) = 3, 4, 5, (2, 3, 2)
  m = rs.randn(layers, dim, h * w * ch).astype(np.float32)
  latent = rs.randn(batch, layers, dim).astype(np.float32)
  synth = lambda l: jnp.einsum("bld,ldk->bk", l, m).reshape(-1, h, w, ch)
  key = jax.random.key(3)
  lengths = np.asarray(gan.path_lengths(synth, jnp.asarray(latent), key))
  y = np.asarray(jax.random.normal(key, (batch, h, w, ch))).reshape(batch, -1) / np.sqrt(h * w)
  grad = np.einsum("bk,ldk->bld", y, m)
  np.testing.assert_allclose(lengths, np.sqrt((grad ** 2).sum(axis=2).mean(axis=1)), rtol=1e-5)


def test_path_length_penalty_tracks_a_running_mean():
  lengths = jnp.array([1.0, 3.0])
  penalty, mean = gan.path_length_penalty(lengths, jnp.float32(0.5), 0.01)
  np.testing.assert_allclose(mean, 0.5 + 0.01 * (2.0 - 0.5), rtol=1e-6)
  np.testing.assert_allclose(penalty, np.mean((np.array([1.0, 3.0]) - 0.515) ** 2), rtol=1e-6)
  # The target is a constant: the penalty's gradient is 2(l − a)/B, with no term through the mean.
  grad = jax.grad(lambda l: gan.path_length_penalty(l, jnp.float32(0.5), 0.01)[0])(lengths)
  np.testing.assert_allclose(grad, 2 * (np.array([1.0, 3.0]) - 0.515) / 2, rtol=1e-6)


def test_style_mixing_index_is_a_crossover_with_the_given_probability():
  keys = jax.random.split(jax.random.key(0), 4000)
  for probability in (0.0, 1.0, 0.9):
    index = np.asarray(jax.vmap(lambda k: gan.style_mixing_index(k, probability, 10))(keys))
    mixed = index < 10
    assert np.all((index >= 1) & (index <= 10))
    np.testing.assert_allclose(mixed.mean(), probability, atol=0.02)
    if probability:
      assert set(np.unique(index[mixed])) == set(range(1, 10))   # every crossover 1…n_latent − 1 occurs


def test_style_mixing_gives_two_ws_split_at_the_crossover():
  _, eng = gan.setup(tiny_shapes3d_config(style_mixing=1.0, num_devices=2))
  state = jax.jit(eng.init_fn)(jax.random.key(0))   # jitted: op-by-op StyleGAN2 init is most of the test's time
  latents, z, kwargs, _ = eng.draw(jax.random.key(1), 4)
  index = int(kwargs["inject_index"])
  assert kwargs["mix_latent"].shape == z.shape and 1 <= index < eng.gen.info.num_ws
  styles_of = jax.jit(eng.gen.styles)
  args = (state.params["generator"], state.generator_buffers)
  styles = np.asarray(styles_of(*args, z, **kwargs))
  first = np.asarray(styles_of(*args, z))
  second = np.asarray(styles_of(*args, kwargs["mix_latent"]))
  np.testing.assert_allclose(styles[:, :index], first[:, :index], rtol=1e-6)
  np.testing.assert_allclose(styles[:, index:], second[:, index:], rtol=1e-6)
  # Without mixing the engine draws exactly what it drew before mixing existed (the README's runs reproduce).
  _, plain = gan.setup(tiny_shapes3d_config(num_devices=2, style_mixing=0.0))
  latents_plain, z_plain, kwargs_plain, _ = plain.draw(jax.random.key(1), 4)
  assert kwargs_plain == {}
  want = jax.random.normal(jax.random.split(jax.random.key(1))[0], (4, plain.gen.info.latent_dim))
  np.testing.assert_array_equal(np.asarray(z_plain), np.asarray(want))


@pytest.mark.parametrize("invalid,match", [
    (dict(pl_weight=-1.0), "pl_weight=-1.0"),
    (dict(style_mixing=1.5), "style_mixing=1.5 must be a probability"),
    (dict(pl_weight=1.0, pl_every=0), "pl_every=0"),
])
def test_bad_regulariser_settings_are_named(invalid, match):
  with pytest.raises(ValueError, match=match):
    gan.setup(tiny_shapes3d_config(**invalid))


def test_w_regularisers_are_refused_for_a_generator_without_w():
  c = load_config("gan_dsprites")
  c.update(steps=1, batch_size=8, pl_weight=2.0)
  with pytest.raises(ValueError, match="pl_weight=2.0: path-length regularisation needs a generator with a W"):
    gan.setup(c)
  c.update(pl_weight=0.0, style_mixing=0.5)
  with pytest.raises(ValueError, match="style_mixing=0.5: style mixing needs"):
    gan.setup(c)


def _first_step(c):
  """(engine, state before, real batch, step key, state after, metrics) of step 0 of the engine built from `c`."""
  mesh, eng = gan.setup(c)
  state = jax.jit(eng.init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  before = _copy(state)
  real = eng.real_batch(0)
  rng = parallel.step_rng(c.seed, 0)
  state, metrics = eng.jitted_step(state, real, rng)
  return eng, before, real, rng, state, jax.device_get(metrics)


@pytest.mark.slow  # ~60 s idle: the jitted step plus an eager hand replay of its D half
def test_lazy_passes_are_separate_updates_as_upstream():
  """Step 0 (a regularisation step for both): D's adversarial update, then an R1 update of the updated D; G's
  adversarial update, then a path-length update whose running mean starts from 0. Replayed here by hand."""
  c = tiny_shapes3d_config(num_devices=2, r1_every=2, pl_weight=2.0, pl_every=2, pl_batch_shrink=2, style_mixing=0.0)
  eng, before, real, rng, state, metrics = _first_step(c)

  d_key, g_key = jax.random.split(rng)
  _, z, kwargs, noise_key = eng.draw(d_key, c.batch_size)
  fake = eng.gen.apply(before.params["generator"], before.generator_buffers, z, noise_key, **kwargs)
  discriminate = lambda p, x: eng.disc.apply({"params": p["discriminator"]}, x)[0]
  d_before = {"discriminator": before.params["discriminator"]}   # D's optimizer trains the group {'discriminator'}
  d_grads = jax.grad(lambda p: gan.nonsaturating_d_loss(discriminate(p, real), discriminate(p, fake)))(d_before)
  updates, opt_state = eng.d_optimizer.update(d_grads, before.opt_state["discriminator"], d_before)
  adversarial = jax.tree.map(lambda p, u: p + u, d_before, updates)
  r1 = gan.r1_penalty(lambda x: discriminate(adversarial, x), real)
  np.testing.assert_allclose(metrics["d/r1"], r1, rtol=1e-3)
  r1_grads = jax.grad(lambda p: 0.5 * c.r1_gamma * 2 * gan.r1_penalty(lambda x: discriminate(p, x), real))(
      adversarial)
  updates, _ = eng.d_optimizer.update(r1_grads, opt_state, adversarial)
  want = jax.tree.map(lambda p, u: p + u, adversarial, updates)
  jax.tree.map(lambda w, g: np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-3), _copy(want["discriminator"]),
               _copy(state.params["discriminator"]))

  assert metrics["g/path_length"] > 0 and metrics["g/path_length_penalty"] > 0
  np.testing.assert_allclose(metrics["g/path_length_mean"], 0.01 * metrics["g/path_length"], rtol=1e-5)
  np.testing.assert_allclose(state.batch_stats["path_length_mean"], metrics["g/path_length_mean"], rtol=1e-6)
  pl_mean = float(state.batch_stats["path_length_mean"])
  state, metrics = eng.jitted_step(state, eng.real_batch(1), parallel.step_rng(c.seed, 1))
  metrics = jax.device_get(metrics)
  assert metrics["d/r1"] == 0.0 and metrics["g/path_length_penalty"] == 0.0   # step 1: no lazy pass
  assert float(state.batch_stats["path_length_mean"]) == pl_mean


@pytest.mark.slow   # 155 s on the loaded 2-core machine of 2026-12-04 (two engines compiled)
def test_g_then_d_updates_g_against_the_old_d_and_d_on_the_updated_gs_fakes():
  """`step_order='g_then_d'` (upstream StyleGAN2-TF's and PS-SC's loop), replayed by hand: G's adversarial update
  against D as it was, then D's on fresh fakes of the updated G. The same keys as D-then-G (d_key for D's batch,
  g_key for G's), so only the order differs."""
  c = tiny_shapes3d_config(num_devices=2, r1_gamma=0.0, pl_weight=0.0, style_mixing=0.0)
  with c.unlocked():
    c.step_order = "g_then_d"
  eng, before, real, rng, state, _ = _first_step(c)

  d_key, g_key = jax.random.split(rng)
  buffers = before.generator_buffers
  discriminate = lambda p, x: eng.disc.apply({"params": p}, x)[0]
  _, z, kwargs, noise_key = eng.draw(g_key, c.batch_size)
  g_before = {"generator": before.params["generator"]}
  g_grads = jax.grad(lambda p: gan.nonsaturating_g_loss(discriminate(
      before.params["discriminator"], eng.gen.apply(p["generator"], buffers, z, noise_key, **kwargs))))(g_before)
  updates, _ = eng.g_optimizer.update(g_grads, before.opt_state["generator"], g_before)
  g_want = jax.tree.map(lambda p, u: p + u, g_before, updates)
  jax.tree.map(lambda w, g: np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-3), _copy(g_want["generator"]),
               _copy(state.params["generator"]))

  _, z, kwargs, noise_key = eng.draw(d_key, c.batch_size)
  fake = eng.gen.apply(g_want["generator"], buffers, z, noise_key, **kwargs)
  d_before = {"discriminator": before.params["discriminator"]}
  d_grads = jax.grad(lambda p: gan.nonsaturating_d_loss(discriminate(p["discriminator"], real),
                                                        discriminate(p["discriminator"], fake)))(d_before)
  updates, _ = eng.d_optimizer.update(d_grads, before.opt_state["discriminator"], d_before)
  d_want = jax.tree.map(lambda p, u: p + u, d_before, updates)
  jax.tree.map(lambda w, g: np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-3), _copy(d_want["discriminator"]),
               _copy(state.params["discriminator"]))


def test_an_unknown_step_order_is_named():
  c = tiny_shapes3d_config()
  with c.unlocked():
    c.step_order = "g_first"
  with pytest.raises(ValueError, match=r"config.step_order='g_first': one of \('d_then_g', 'g_then_d'\)"):
    gan.setup(c)


@pytest.mark.parametrize("name,dataset", [("shapes3d", "shapes3d"), ("shapes3d-v1", "shapes3d"),
                                          ("dsprites-v12", "dsprites")])
def test_a_testbeds_dataset_is_its_name_without_the_version(name, dataset):
  assert testbeds.dataset_of(name) == dataset


# ---------------------------------------------------------------------------------------------------------------
# The terms' own networks (PS-SC's and UD-GAN's hook): trained by the optimizer of their group, never exported.

class _TermsWithNets(gan.GANTerms):
  net_groups = {"q": gan.GENERATOR, "critic": gan.DISCRIMINATOR}

  def init_nets(self, rng):
    return {"q": {"w": jnp.zeros((3,))}, "critic": {"w": jnp.zeros((3,))}}

  def d_loss(self, nets, latents, fake, fake_aux, real, real_aux):
    assert set(nets) == {"q", "critic"} and fake.shape == real.shape
    return jnp.sum(nets["critic"]["w"]), {}

  def g_loss(self, nets, latents, fake, fake_aux, render):
    # An image of other inputs under G's differentiated parameters: same shape as the batch's.
    other = render(latents["z"][:2] + 1.0, jax.random.key(0))
    assert other.shape == (2, *fake.shape[1:])
    return -jnp.sum(nets["q"]["w"]) + 0.0 * jnp.mean(other), {}


@pytest.mark.slow   # 65–170 s on an idle 2-core machine (measured 2026-12-01): the default suite took 22.6 min
def test_terms_networks_train_with_their_groups_optimizer():
  c = tiny_shapes3d_config(num_devices=1, pl_weight=0.0, style_mixing=0.0)
  mesh, eng = gan.setup(c, lambda spec: _TermsWithNets(spec.info.latent_dim))
  state = jax.jit(eng.init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  assert set(state.params) == {"generator", "discriminator", "q", "critic"}
  assert set(state.opt_state) == {"generator", "discriminator"}
  state, _ = eng.jitted_step(state, eng.real_batch(0), parallel.step_rng(c.seed, 0))
  # Adam's first step is its (lazily corrected) learning rate against the gradient's sign; β1 = 0, so the R1 update
  # of step 0 (zero gradient for the critic) moves it no further.
  np.testing.assert_allclose(state.params["critic"]["w"], -c.discriminator.learning_rate * 2 / 3, rtol=1e-4)
  np.testing.assert_allclose(state.params["q"]["w"], c.architecture.learning_rate, rtol=1e-4)
  assert jax.tree.structure(state.generator_ema) == jax.tree.structure(state.params["generator"])


def test_terms_networks_must_name_a_group():
  class Bad(_TermsWithNets):
    net_groups = {"q": "encoder"}
  with pytest.raises(ValueError, match=r"Bad.net_groups=\{'q': 'encoder'\}"):
    gan.setup(tiny_shapes3d_config(num_devices=1), lambda spec: Bad(spec.info.latent_dim))


def test_representation_scores_dci_is_the_metric_at_the_protocols_budget():
  """'dci' in a GAN method's metrics (PS-SC's Q, issue 17): disentanglement_lib's DCI of the representation on the
  training data, drawn from the metric's own RandomState(seed), whole batches of DCI_BATCH images per call."""
  from ganlatent_jax.methods import _gan_data
  from ganlatent_jax.metrics import disentanglement
  dataset = _gan_data.make_dataset("dsprites")
  calls = []

  def represent(images):   # a few fixed pixels as the code
    calls.append(len(images))
    return np.asarray(images).reshape(len(images), -1)[:, 1000:3000:400]

  protocol = ml_collections.ConfigDict(dict(dci_num_train=150, dci_num_test=70))
  got = _gan_data.representation_scores(dataset, represent, ("dci",), protocol, seed=3)
  assert max(calls) == _gan_data.DCI_BATCH and sum(calls) == 220
  want = disentanglement.dci(dataset, represent, np.random.RandomState(3), num_train=150, num_test=70,
                             batch_size=_gan_data.DCI_BATCH)
  assert got == {"dci": want} and 0.0 <= want["disentanglement"] <= 1.0
