"""StyleGAN2 (rosinality format): converter, module and primitives against the upstream golden fixtures.

The synthesis network is compiled once (`_synthesize_all`: every feature tap of a W+ latent with explicit noise) and
reused for all image/feature parity cases; the latent-side options (truncation, W/W+ input, style mixing) are checked
through `styles`, the exact path `__call__` takes before synthesis, and `__call__` itself end-to-end under jit.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from conftest import fixture_path
from ganlatent_jax import generators
from ganlatent_jax.generators import stylegan2
from ganlatent_jax.nets import layers, upfirdn
from ganlatent_jax.port import CheckpointKeyError, load_torch_file
from ganlatent_jax.generators.formats import stylegan2_rosinality as port

CHECKPOINT = "stylegan2/stylegan2_rosinality_s32.pt"
LEGACY_CHECKPOINT = "legacy/stylegan2_rosinality_s32_legacy.pt"
TOL = dict(atol=1e-4, rtol=1e-4)


def nchw(x):
  x = np.asarray(x)
  return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def nhwc(x):
  return np.asarray(x).transpose(0, 2, 3, 1)


@functools.lru_cache(maxsize=None)
def io_arrays():
  return dict(np.load(fixture_path("stylegan2/stylegan2_rosinality_s32_io.npz")))


@functools.lru_cache(maxsize=None)
def feature_arrays():
  return dict(np.load(fixture_path("stylegan2/stylegan2_rosinality_s32_features.npz")))


@functools.lru_cache(maxsize=None)
def generator(relative=CHECKPOINT):
  return generators.load(fixture_path(relative))


def styles(g, z, **kwargs):
  return g.module.apply(g.variables, z, method="styles", **kwargs)


def stored_noise(g):
  return [g.variables["buffers"][f"noise_{i}"] for i in range(stylegan2.num_noise_layers(g.info.image_shape[0]))]


@jax.jit
def _synthesize_all(g, latent, noise):
  return g.features(latent, g.info.feature_layers, input_is_latent=True, noise=noise)


def final_image(g, features):
  return features[f"to_rgbs.{int(np.log2(g.info.image_shape[0])) - 3}"]


# Each image case: how upstream was called, as (styles kwargs, noise), and the fixture arrays it produced.
def _image_cases():
  io = io_arrays()
  ext_noise = [nhwc(io[f"ext_noise_{i}"]) for i in range(7)]
  return {
      "img_fixed_noise": (io["z"], {}, None),
      "img_trunc07": (io["z"], dict(truncation=0.7, truncation_latent=io["mean_latent"]), None),
      "img_from_w": (io["w_in"], dict(input_is_latent=True), None),
      "img_from_wplus": (io["wplus_in"], dict(input_is_latent=True), None),
      "img_mix_inject3": (io["z"], dict(mix_latent=io["z2"], inject_index=3), None),
      "img_ext_noise": (io["z"], {}, ext_noise),
  }


@pytest.fixture(scope="module")
def g():
  return generator()


@pytest.fixture(scope="module")
def fixed_noise_features(g):
  return _synthesize_all(g, styles(g, io_arrays()["z"]), stored_noise(g))


def test_mapping_and_mean_latent(g):
  io = io_arrays()
  np.testing.assert_allclose(g.mapping(io["z"]), io["w"], **TOL)
  np.testing.assert_allclose(jnp.mean(g.mapping(io["z_mean_set"]), 0, keepdims=True), io["mean_latent"], **TOL)
  np.testing.assert_allclose(g.variables["buffers"]["latent_avg"], io["mean_latent"][0], **TOL)
  rng = jax.random.PRNGKey(3)
  expected = jnp.mean(g.mapping(jax.random.normal(rng, (16, 64))), 0, keepdims=True)
  np.testing.assert_allclose(stylegan2.mean_latent(g, 16, rng), expected, atol=1e-6)


@pytest.mark.parametrize("name,kwargs", [
    ("latents_fixed", {}),
    ("latents_mix", dict(mix_latent="z2", inject_index=3)),
])
def test_latents_match_return_latents(g, name, kwargs):
  io = io_arrays()
  kwargs = {k: io[v] if isinstance(v, str) else v for k, v in kwargs.items()}
  np.testing.assert_allclose(styles(g, io["z"], **kwargs), io[name], **TOL)


def test_truncation_defaults_to_stored_latent_avg(g):
  io = io_arrays()
  np.testing.assert_allclose(styles(g, io["z"], truncation=0.7),
                             styles(g, io["z"], truncation=0.7, truncation_latent=io["mean_latent"]), atol=1e-6)


@pytest.mark.parametrize("case", list(_image_cases()))
def test_image_parity(g, case):
  latent_input, kwargs, noise = _image_cases()[case]
  latent = styles(g, latent_input, **kwargs)
  image = final_image(g, _synthesize_all(g, latent, stored_noise(g) if noise is None else noise))
  np.testing.assert_allclose(nchw(image), io_arrays()[case], **TOL)


@pytest.mark.parametrize("layer", stylegan2.feature_layer_names(32))
def test_feature_parity(fixed_noise_features, layer):
  np.testing.assert_allclose(nchw(fixed_noise_features[layer])[:2], feature_arrays()[layer], **TOL)


def test_features_return_only_requested_taps_and_reject_unknown_names(g):
  z = io_arrays()["z"][:2]
  taps = jax.eval_shape(lambda z: g.features(z, ["mod__convs.1", "conv1"]), z)
  assert {k: v.shape for k, v in taps.items()} == {"mod__convs.1": (2, 64), "conv1": (2, 4, 4, 64)}
  with pytest.raises(ValueError, match="convs.99"):
    g.features(z, ["convs.99"])


@functools.lru_cache(maxsize=None)
def _jitted_call():
  return jax.jit(lambda g, z: g(z))


def test_jitted_call_end_to_end(g):
  np.testing.assert_allclose(nchw(_jitted_call()(g, io_arrays()["z"])), io_arrays()["img_fixed_noise"], **TOL)


def test_forward_sharded_over_8_devices_equals_unsharded(g):
  devices = np.array(jax.devices()[:8])
  assert devices.size == 8, "conftest should simulate 8 CPU devices"
  mesh = Mesh(devices, ("data",))
  batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
  replicated = NamedSharding(mesh, PartitionSpec())
  z = io_arrays()["z"]
  z8 = np.concatenate([z, z[::-1]])
  forward = jax.jit(lambda g, z: g(z), in_shardings=(replicated, batch_sharding), out_shardings=batch_sharding)
  sharded = forward(jax.device_put(g, replicated), jax.device_put(z8, batch_sharding))
  assert sharded.sharding.is_equivalent_to(batch_sharding, sharded.ndim)
  unsharded = np.concatenate([_jitted_call()(g, z), _jitted_call()(g, z[::-1])])
  np.testing.assert_allclose(sharded, unsharded, atol=1e-5, rtol=1e-5)


def test_grads_wrt_w_plus_are_finite(g):
  wplus = jnp.asarray(io_arrays()["wplus_in"][:2])
  grad = jax.jit(jax.grad(lambda w: jnp.mean(g.synthesis(w) ** 2)))(wplus)
  assert grad.shape == wplus.shape
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_noise_modes(g):
  apply_noise = functools.partial(g.module.apply, g.variables, method="_noise")
  const = apply_noise(3, "const", None)
  for got, want in zip(const, stored_noise(g)):
    np.testing.assert_array_equal(got, want)
  mixed = apply_noise(3, [np.ones((4, 4))] + [None] * 6, None)
  np.testing.assert_array_equal(mixed[0], np.ones((1, 4, 4, 1)))
  np.testing.assert_array_equal(mixed[2], const[2])
  with pytest.raises(ValueError, match="noise_rng"):
    apply_noise(3, "random", None)
  # Fresh per-sample noise from a key, deterministic per key (noise=None with a key takes the same path).
  fresh = jax.jit(lambda key: apply_noise(3, "random", key))
  a, b, c = fresh(jax.random.PRNGKey(0)), fresh(jax.random.PRNGKey(0)), fresh(jax.random.PRNGKey(1))
  assert [n.shape for n in a] == [(3, r, r, 1) for r in (4, 8, 8, 16, 16, 32, 32)]
  np.testing.assert_array_equal(a[5], b[5])
  assert not np.allclose(a[5], c[5]) and not np.allclose(a[5][0], a[5][1])
  assert abs(float(jnp.std(a[6])) - 1) < 0.1


def test_legacy_file_gives_the_same_generator(g):
  legacy = generator(LEGACY_CHECKPOINT)
  assert legacy.info.config == g.info.config
  # Identical variables and architecture, hence identical outputs (not recomputed: `source` differs, so jit would
  # compile again).
  jax.tree_util.tree_map(np.testing.assert_array_equal, legacy.variables, g.variables)


def test_load_autodetects_format_and_reads_architecture(g):
  config, _ = generators.convert(fixture_path(CHECKPOINT))
  assert config == stylegan2.make_config(size=32, style_dim=64, n_mlp=8, channel_multiplier=2,
                                         channels={r: 64 for r in (4, 8, 16, 32)}, has_latent_avg=True)
  info = g.info
  assert (info.family, info.latent_spaces, info.num_ws, info.w_dim, info.image_shape) == (
      "stylegan2", ("z", "w", "w+"), 8, 64, (32, 32, 3))
  assert info.feature_layers == stylegan2.feature_layer_names(32) and "mod__to_rgbs.1" in info.feature_layers
  hash(info)


def _checkpoint():
  return load_torch_file(fixture_path(CHECKPOINT))


@pytest.mark.parametrize("layout", ["train_py", "bare_state_dict"])
def test_other_checkpoint_layouts(g, layout):
  checkpoint = _checkpoint()
  if layout == "train_py":
    checkpoint = {"g": checkpoint["g_ema"], "d": {"convs.0.0.weight": np.zeros((1,))}, "g_ema": checkpoint["g_ema"],
                  "g_optim": {}, "d_optim": {}, "args": {"channel_multiplier": 1, "size": 32}, "ada_aug_p": 0.0}
  else:
    checkpoint = checkpoint["g_ema"]
  assert port.sniff("ckpt.pt", checkpoint)
  config, variables = port.convert("ckpt.pt", checkpoint)
  assert not config["has_latent_avg"] and "latent_avg" not in variables["buffers"]
  assert config["channel_multiplier"] == (1 if layout == "train_py" else 2)
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables["params"], g.variables["params"])
  built = stylegan2.build(config, variables, "ckpt.pt")
  with pytest.raises(ValueError, match="truncation_latent"):
    styles(built, io_arrays()["z"], truncation=0.5)


def _rename(state, old, new):
  state[new] = state.pop(old)


def _reshape(state, key, shape):
  state[key] = np.zeros(shape, np.float32)


@pytest.mark.parametrize("corrupt,names", [
    (lambda s: _rename(s, "convs.3.noise.weight", "convs.3.noise.wieght"), ["convs.3.noise.weight",
                                                                            "convs.3.noise.wieght"]),
    (lambda s: _reshape(s, "to_rgbs.1.conv.modulation.bias", (63,)), ["to_rgbs.1.conv.modulation.bias"]),
    (lambda s: _reshape(s, "convs.5.conv.weight", (1, 64, 64, 1, 1)), ["convs.5.conv.weight"]),
    (lambda s: s.pop("noises.noise_6"), ["noises.noise_6"]),
    (lambda s: s.__setitem__("convs.2.conv.blur.kernel", np.ones((4, 4), np.float32)), ["convs.2.conv.blur.kernel"]),
    (lambda s: s.__setitem__("extra.weight", np.ones((2,), np.float32)), ["extra.weight"]),
])
def test_corrupted_checkpoints_are_refused_by_name(corrupt, names):
  checkpoint = _checkpoint()
  corrupt(checkpoint["g_ema"])
  with pytest.raises(CheckpointKeyError) as error:
    port.convert("broken.pt", checkpoint)
  for name in names:
    assert repr(name) in str(error.value) or name in str(error.value)
  assert "broken.pt" in str(error.value)


def test_other_formats_are_not_sniffed():
  assert not port.sniff("x.pt", {"state_dict": {"conv.weight": np.zeros((1,))}})
  checkpoint = _checkpoint()
  checkpoint["g_ema"]["to_rgb1.conv.weight"] = np.zeros((1, 12, 64, 1, 1), np.float32)  # SWAGAN's wavelet ToRGB
  assert not port.sniff("x.pt", checkpoint)


# ------------------------------------------------------------------------------------------------------------
# Other architectures (channel tables) and training from scratch.

@pytest.mark.parametrize("size,channels,cm", [
    (256, None, 2),                                      # upstream default table
    (64, stylegan2.upstream_channels(64, 2, divisor=8), 2),  # the fixture's ÷8 table
    (64, stylegan2.constant_channels(64, 512), 1),       # "small": 512 everywhere
])
def test_channel_tables(size, channels, cm):
  config = stylegan2.make_config(size, style_dim=32, n_mlp=2, channel_multiplier=cm, channels=channels)
  table = dict(config["channels"])
  variables = stylegan2.abstract_variables(config)
  params = variables["params"]
  n_rgb = int(np.log2(size)) - 2
  assert params["input"].shape == (1, 4, 4, table[4])
  assert params[f"convs_{2 * n_rgb - 2}"]["conv"]["kernel"].shape == (3, 3, table[size // 2], table[size])
  assert params[f"to_rgbs_{n_rgb - 1}"]["conv"]["kernel"].shape == (1, 1, table[size], 3)
  assert variables["buffers"][f"noise_{2 * n_rgb}"].shape == (1, size, size, 1)
  if channels is None:
    assert table == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}


@pytest.mark.parametrize("image_channels", [3, 1])   # 1: grey images (ours; upstream is RGB only)
def test_init_variables_like_upstream_and_trainable(tmp_path, image_channels):
  # Tiny on purpose: jitted init compiles one threefry RNG per parameter.
  config = stylegan2.make_config(8, style_dim=16, n_mlp=1, channels={4: 8, 8: 4}, lr_mlp=0.01,
                                 image_channels=image_channels)
  assert ("image_channels" in config) == (image_channels != 3)   # RGB configs keep exactly upstream's keys
  variables = stylegan2.init_variables(config, jax.random.PRNGKey(0))
  assert variables["params"]["to_rgbs_0"]["conv"]["kernel"].shape == (1, 1, 4, image_channels)
  params = variables["params"]
  np.testing.assert_array_equal(params["convs_0"]["conv"]["modulation"]["bias"], np.ones(8))
  assert float(params["convs_1"]["noise_strength"]) == 0.0
  assert 50 < float(jnp.std(params["style_0"]["kernel"])) < 200      # N(0, 1/lr_mlp²)
  g = stylegan2.build(config, variables, "scratch")
  z = jax.random.normal(jax.random.PRNGKey(1), (2, 16))
  assert g.image_shape == (8, 8, image_channels) and g(z).shape == (2, 8, 8, image_channels)
  grad = jax.jit(jax.grad(lambda v: jnp.mean(g.with_variables(v)(z, noise_rng=jax.random.PRNGKey(2)) ** 2)))(
      g.variables)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(grad))
  generators.save_converted(tmp_path / "g", config, variables, "scratch")
  reloaded = generators.load(tmp_path / "g")
  assert reloaded.info.config == g.info.config
  jax.tree_util.tree_map(np.testing.assert_array_equal, reloaded.variables, g.variables)


# ------------------------------------------------------------------------------------------------------------
# Primitives.

def _upfirdn_reference(x, kernel, up, down, pad):
  """Direct NHWC transcription of upfirdn2d's definition (numpy, float64)."""
  b, h, w, c = x.shape
  y = np.zeros((b, h * up, w * up, c))
  y[:, ::up, ::up] = x
  p0, p1 = pad
  y = np.pad(y, ((0, 0), (max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0)), (0, 0)))
  y = y[:, max(-p0, 0):y.shape[1] - max(-p1, 0), max(-p0, 0):y.shape[2] - max(-p1, 0)]
  k = np.asarray(kernel, np.float64)[::-1, ::-1]
  kh, kw = k.shape
  out = np.zeros((b, y.shape[1] - kh + 1, y.shape[2] - kw + 1, c))
  for i in range(kh):
    for j in range(kw):
      out += k[i, j] * y[:, i:i + out.shape[1], j:j + out.shape[2]]
  return out[:, ::down, ::down]


@pytest.mark.parametrize("up,down,pad,kernel", [
    (1, 1, (1, 1), "blur"),
    (2, 1, (2, 1), "blur"),
    (1, 2, (1, 1), "blur"),
    (2, 2, (-1, 2), "blur"),
    (1, 1, (0, 2), "random3x3"),
    (2, 1, (1, 1), "random3x3"),
])
def test_upfirdn2d_matches_definition(up, down, pad, kernel):
  rng = np.random.RandomState(0)
  x = rng.standard_normal((2, 7, 7, 3)).astype(np.float32)
  kernel = upfirdn.make_kernel([1, 3, 3, 1]) if kernel == "blur" else rng.standard_normal((3, 3)).astype(np.float32)
  got = jax.jit(lambda x: upfirdn.upfirdn2d(x, kernel, up=up, down=down, pad=pad))(x)
  np.testing.assert_allclose(got, _upfirdn_reference(x, kernel, up, down, pad), atol=1e-5)


@pytest.mark.parametrize("upsample,demodulate,k", [(False, True, 3), (True, True, 3), (False, False, 1)])
def test_modulated_conv_equals_per_sample_weights(upsample, demodulate, k):
  rng = np.random.RandomState(1)
  x = rng.standard_normal((2, 5, 5, 4)).astype(np.float32)
  kernel = rng.standard_normal((k, k, 4, 6)).astype(np.float32)
  style = (1 + 0.5 * rng.standard_normal((2, 4))).astype(np.float32)
  blur = upfirdn.make_kernel([1, 3, 3, 1])
  got = jax.jit(lambda x, s: upfirdn.modulated_conv2d(x, kernel, s, demodulate=demodulate, upsample=upsample,
                                                      blur_kernel=blur))(x, style)
  expected = []
  for b in range(2):  # upstream's fused path: each sample convolved with its own modulated weight
    weight = kernel / np.sqrt(4 * k * k) * style[b][None, None, :, None]
    if demodulate:
      weight = weight / np.sqrt(np.sum(weight ** 2, axis=(0, 1, 2)) + 1e-8)
    if upsample:
      y = layers.conv_transpose2d(x[b:b + 1], weight, stride=2, padding=0, lowering="xla")
      y = upfirdn.upfirdn2d(y, blur * 4, pad=(1, 1))
    else:
      y = layers.conv2d(x[b:b + 1], weight, padding=k // 2, lowering="xla")
    expected.append(y)
  np.testing.assert_allclose(got, np.concatenate(expected), atol=1e-5, rtol=1e-5)
