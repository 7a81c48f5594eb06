"""torchvision ResNet-18 parity (README section 4), converter checks, PyTorch BatchNorm semantics, random init."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_path
from ganlatent_jax.nets.resnet import BatchNorm, ResNet, build_resnet, init_resnet, resnet18
from ganlatent_jax.port.keys import CheckpointKeyError
from ganlatent_jax.port.torch_pickle import flatten_state_dict, load_torch_file
from ganlatent_jax.port.torchvision import convert_resnet, load_resnet

TOL = dict(atol=1e-4, rtol=1e-4)
OUTPUTS = {"stem": "stem_out", "layer1": "layer1_out", "layer2": "layer2_out", "layer3": "layer3_out",
           "layer4": "layer4_out", "penultimate": "penultimate", "fc": "logits"}


def nhwc(a):
  return np.asarray(a).transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def tiny_state():
  return flatten_state_dict(load_torch_file(fixture_path("torchvision/tv_resnet18_tiny.pth")))


@pytest.fixture(scope="module")
def tiny_io():
  return np.load(fixture_path("torchvision/tv_resnet18_tiny_io.npz"))


@pytest.fixture(scope="module")
def features_fn():
  """One jitted `features` per module configuration (modules are static, hashable arguments)."""
  return jax.jit(lambda module, variables, x: module.apply(variables, x, method=ResNet.features), static_argnums=0)


def test_resnet18_matches_torchvision_eval(tiny_io, features_fn):
  module, variables = load_resnet(fixture_path("torchvision/tv_resnet18_tiny.pth"))
  out = features_fn(module, variables, nhwc(tiny_io["x"]))
  for name, key in OUTPUTS.items():
    got = np.asarray(out[name])
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2) if got.ndim == 4 else got, tiny_io[key], err_msg=name, **TOL)
  assert set(module.apply(variables, nhwc(tiny_io["x"][:1]))) == {"fc"}


def test_converter_reads_sizes_and_ignores_num_batches_tracked(tiny_state):
  config, variables = convert_resnet(tiny_state, "tiny")
  assert config == {"architecture": "torchvision_resnet", "in_channels": 3, "stem_width": 8,
                    "stage_widths": [8, 16, 32, 64], "blocks_per_stage": [2, 2, 2, 2], "heads": [["fc", 1000]]}
  old_style = {k: v for k, v in tiny_state.items() if not k.endswith("num_batches_tracked")}
  assert len(old_style) < len(tiny_state)
  _, old_variables = convert_resnet(old_style, "old")
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables, old_variables)
  assert "downsample_conv" in variables["params"]["layer2_0"]
  assert "downsample_conv" not in variables["params"]["layer1_0"]


@pytest.mark.parametrize("mutation,expected", [
    ("drop:layer3.1.bn2.running_var", r"missing keys: \['layer3.1.bn2.running_var'\]"),
    ("drop:layer2.0.downsample.0.weight", r"missing keys: \['layer2.0.downsample.0.weight'\]"),
    ("add:layer1.0.conv1.bias", r"unexpected keys: \['layer1.0.conv1.bias'\]"),
    ("reshape:layer4.0.bn1.weight", r"mis-shaped keys: \['layer4.0.bn1.weight: checkpoint \(65,\)"),
    ("add:layer1.0.conv3.weight", r"Bottleneck"),
])
def test_converter_names_bad_keys(tiny_state, mutation, expected):
  state = dict(tiny_state)
  action, key = mutation.split(":")
  if action == "drop":
    del state[key]
  elif action == "add":
    state[key] = np.zeros((8, 8, 1, 1), np.float32)
  else:
    state[key] = np.zeros(state[key].shape[0] + 1, np.float32)
  with pytest.raises(CheckpointKeyError, match=expected):
    convert_resnet(state, "tiny")


def test_reconstructor_layout_six_channels_and_custom_heads(tiny_state, tiny_io, features_fn):
  """GANLatentDiscovery's reconstructor: `features_extractor.` prefix, 6-channel conv1, unused fc, two heads."""
  rng = np.random.RandomState(0)
  state = {f"features_extractor.{k}": v for k, v in tiny_state.items()}
  # Extra input channels with zero weights: the output must equal the 3-channel network's.
  conv1 = tiny_state["conv1.weight"]
  state["features_extractor.conv1.weight"] = np.concatenate([conv1, np.zeros_like(conv1)], axis=1)
  heads = {"type_estimator": 5, "shift_estimator": 1}
  for name, size in heads.items():
    state[f"{name}.weight"] = rng.standard_normal((size, 64)).astype(np.float32)
    state[f"{name}.bias"] = rng.standard_normal(size).astype(np.float32)
  config, variables = convert_resnet(state, "ld", prefix="features_extractor.", keep_fc=False,
                                     heads=tuple(heads))
  assert config["in_channels"] == 6 and config["heads"] == [["type_estimator", 5], ["shift_estimator", 1]]
  x = nhwc(tiny_io["x"])
  out = features_fn(build_resnet(config), variables, np.concatenate([x, rng.uniform(-1, 1, x.shape)], axis=-1))
  np.testing.assert_allclose(out["penultimate"], tiny_io["penultimate"], **TOL)
  for name in heads:
    expected = tiny_io["penultimate"] @ state[f"{name}.weight"].T + state[f"{name}.bias"]
    np.testing.assert_allclose(out[name], expected, **TOL)
  assert "fc" not in out
  with pytest.raises(CheckpointKeyError, match=r"unexpected keys: \['shift_estimator.bias', 'shift_estimator.weight'"):
    convert_resnet(state, "ld", prefix="features_extractor.", keep_fc=False, heads=("type_estimator",))


def _numpy_batch_norm_train(x, scale, bias, running_mean, running_var, momentum=0.1, eps=1e-5):
  x = x.astype(np.float64).reshape(-1, x.shape[-1])
  n = x.shape[0]
  mean = x.mean(0)
  biased = ((x - mean) ** 2).sum(0) / n
  unbiased = ((x - mean) ** 2).sum(0) / (n - 1)
  y = (x - mean) / np.sqrt(biased + eps) * scale + bias
  return y, (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * unbiased


def test_batch_norm_train_and_eval_like_torch():
  rng = np.random.RandomState(1)
  x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 3).astype(np.float32)
  bn = BatchNorm()
  variables = {"params": {"scale": rng.uniform(0.5, 1.5, 6).astype(np.float32),
                          "bias": rng.standard_normal(6).astype(np.float32)},
               "batch_stats": {"mean": rng.standard_normal(6).astype(np.float32),
                               "var": rng.uniform(0.5, 1.5, 6).astype(np.float32)}}
  stats = variables["batch_stats"]
  for step in range(2):  # two steps: the second starts from the first's running averages
    y, updates = bn.apply({**variables, "batch_stats": stats}, x + step, train=True, mutable=["batch_stats"])
    y_ref, mean_ref, var_ref = _numpy_batch_norm_train(x + step, *variables["params"].values(), stats["mean"],
                                                       stats["var"])
    np.testing.assert_allclose(np.asarray(y).reshape(-1, 6), y_ref, **TOL)
    np.testing.assert_allclose(updates["batch_stats"]["mean"], mean_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(updates["batch_stats"]["var"], var_ref, rtol=1e-5, atol=1e-6)
    stats = updates["batch_stats"]
  y_eval = bn.apply({**variables, "batch_stats": stats}, x, train=False)
  expected = (x - stats["mean"]) / np.sqrt(stats["var"] + 1e-5) * variables["params"]["scale"] + \
      variables["params"]["bias"]
  np.testing.assert_allclose(y_eval, expected, **TOL)
  with pytest.raises(ValueError, match="more than 1 value per channel"):
    bn.apply(variables, x[:1, :1, :1], train=True, mutable=["batch_stats"])


def test_resnet_train_mode_updates_running_stats_like_torch(tiny_state, tiny_io):
  config, variables = convert_resnet(tiny_state, "tiny")
  module = build_resnet(config)
  x = nhwc(tiny_io["x"])

  # `capture_intermediates` records each submodule's output: the inputs of bn1 and of the last block's bn2.
  def run(variables, x):
    out, state = module.apply(variables, x, train=True, capture_intermediates=True,
                              mutable=["batch_stats", "intermediates"], method=ResNet.features)
    return out, state["batch_stats"], state["intermediates"]

  out, new_stats, captured = jax.jit(run)(variables, x)
  checks = [("bn1", captured["conv1"]["__call__"][0], variables["params"]["bn1"], variables["batch_stats"]["bn1"],
             new_stats["bn1"]),
            ("layer4_1.bn2", captured["layer4_1"]["conv2"]["__call__"][0], variables["params"]["layer4_1"]["bn2"],
             variables["batch_stats"]["layer4_1"]["bn2"], new_stats["layer4_1"]["bn2"])]
  for name, bn_input, params, old, new in checks:
    _, mean_ref, var_ref = _numpy_batch_norm_train(np.asarray(bn_input), params["scale"], params["bias"],
                                                   old["mean"], old["var"])
    np.testing.assert_allclose(new["mean"], mean_ref, rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(new["var"], var_ref, rtol=1e-4, atol=1e-5, err_msg=name)
  # Every BatchNorm moved; train-mode outputs differ from eval-mode ones.
  moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                 variables["batch_stats"], new_stats)
  assert all(jax.tree_util.tree_leaves(moved))
  assert np.abs(np.asarray(out["fc"]) - tiny_io["logits"]).max() > 1e-2


def test_batch_norm_axis_name_averages_over_devices():
  rng = np.random.RandomState(2)
  x = rng.standard_normal((2, 4, 3, 3, 5)).astype(np.float32)
  variables = BatchNorm().init(jax.random.PRNGKey(0), x[0], train=False)

  def step(bn, x):
    return bn.apply(variables, x, train=True, mutable=["batch_stats"])

  sharded = jax.pmap(lambda x: step(BatchNorm(axis_name="batch"), x), axis_name="batch",
                     devices=jax.devices()[:2])(x)
  whole = step(BatchNorm(), x.reshape(8, 3, 3, 5))
  np.testing.assert_allclose(np.asarray(sharded[0]).reshape(8, 3, 3, 5), whole[0], **TOL)
  for key in ("mean", "var"):
    np.testing.assert_allclose(sharded[1]["batch_stats"][key][0], whole[1]["batch_stats"][key], rtol=1e-5, atol=1e-6)


def test_random_init_for_training_from_scratch():
  # One block per stage keeps the compile short; widths, heads and 6 input channels as a small SRE/LD network.
  module = ResNet(stem_width=8, stage_widths=(8, 16, 32, 64), blocks_per_stage=(1, 1, 1, 1), heads=(("fc", 7),))
  variables = init_resnet(jax.random.PRNGKey(0), module, in_channels=6)
  params = variables["params"]
  assert params["conv1"]["kernel"].shape == (7, 7, 6, 8)
  assert params["fc"]["kernel"].shape == (64, 7)
  # torchvision: kaiming_normal_(fan_out) convs, BN scale 1 / bias 0, running mean 0 / var 1, Linear U(±1/sqrt(in)).
  std = float(np.std(params["layer4_0"]["conv2"]["kernel"]))
  assert abs(std - np.sqrt(2 / (64 * 9))) < 0.1 * np.sqrt(2 / (64 * 9))
  np.testing.assert_array_equal(params["layer2_0"]["bn1"]["scale"], 1.0)
  np.testing.assert_array_equal(variables["batch_stats"]["layer2_0"]["downsample_bn"]["var"], 1.0)
  assert np.abs(params["fc"]["bias"]).max() <= 1 / 8
  # One SGD step on a K-way loss: finite gradients, lower loss, updated running stats.
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 32, 32, 6))
  labels = jnp.arange(4) % 7

  def loss_fn(params, batch_stats):
    out, updates = module.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                                mutable=["batch_stats"])
    logp = jax.nn.log_softmax(out["fc"])
    return -jnp.mean(logp[jnp.arange(4), labels]), updates["batch_stats"]

  step = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
  (loss, stats), grads = step(params, variables["batch_stats"])
  assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
  new_params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
  (new_loss, _), _ = step(new_params, variables["batch_stats"])
  assert float(new_loss) < float(loss)
  assert float(np.abs(np.asarray(stats["bn1"]["mean"])).max()) > 0


def test_resnet18_full_width_shapes():
  module = resnet18(heads=(("fc", 10),))
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3))))
  assert shapes["params"]["layer4_1"]["conv2"]["kernel"].shape == (3, 3, 512, 512)
  assert sum(np.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes["params"])) == 11_181_642


def _torch_state_dict(variables):
  """Our ResNet variables written back in torchvision's key names and layouts (the converter's inverse)."""
  names = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var",
           "downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
  state = {}
  for collection in variables.values():
    for path, leaf in jax.tree_util.tree_flatten_with_path(collection)[0]:
      parts = [p.key for p in path]
      leaf = np.asarray(leaf)
      if parts[-1] == "kernel":
        parts[-1], leaf = "weight", (leaf.transpose(3, 2, 0, 1) if leaf.ndim == 4 else leaf.T)
      parts = [".".join(p.split("_")) if p.startswith("layer") else names.get(p, p) for p in parts]
      state[".".join(parts)] = leaf
  return state


@pytest.mark.parametrize("blocks_per_stage,stage_widths,heads", [
    ((3, 4, 6, 3), (4, 8, 8, 16), (("fc", 3),)),   # ResNet-34 depths
    ((1, 2, 1), (6, 6, 12), (("logits", 5), ("shift", 1))),
])
def test_converter_reads_any_basic_block_resnet(blocks_per_stage, stage_widths, heads):
  module = ResNet(stem_width=6, stage_widths=stage_widths, blocks_per_stage=blocks_per_stage, heads=heads)
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 2)))
  rng = np.random.RandomState(3)
  variables = jax.tree_util.tree_map(lambda s: rng.standard_normal(s.shape).astype(np.float32), shapes)
  state = _torch_state_dict(variables)
  extra_heads = tuple(name for name, _ in heads if name != "fc")
  config, converted = convert_resnet(state, "roundtrip", keep_fc="fc" in dict(heads), heads=extra_heads)
  assert build_resnet(config) == module
  assert config["in_channels"] == 2
  jax.tree_util.tree_map(np.testing.assert_array_equal, converted, variables)
