"""Every lowering of the convolution primitives against the reference `lax.conv_general_dilated` lowering:
values and gradients w.r.t. input and kernel, over shapes/strides/paddings/kernel sizes/dilations/groups.
Compilation dominates (~3 s per case); the variants marked slow run with `pytest -m slow`."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax.nets import layers

RTOL = 1e-5


def _assert_close(actual, expected):
  scale = float(np.max(np.abs(np.asarray(expected)))) or 1.0
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=RTOL, atol=RTOL * scale)


def _values_and_grads(fns, x, kernel, seed=0):
  """For each fn: fn(x, kernel) and the gradients of <fn(x, kernel), random cotangent> w.r.t. x and kernel. All
  lowerings of a case are compiled as ONE jit (compilation, not execution, is what these tests spend time on)."""
  @jax.jit
  def run(a, b):
    results = []
    for fn in fns:
      y, vjp = jax.vjp(fn, a, b)
      results.append((y, vjp(jax.random.normal(jax.random.PRNGKey(seed), y.shape))))
    return results
  return run(x, kernel)


def _assert_lowerings_match(results, lowerings):
  (expected, *actuals) = results
  for lowering, actual in zip(lowerings[1:], actuals):
    assert actual[0].shape == expected[0].shape, lowering
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
      _assert_close(a, e)


def _random(shape, seed):
  return jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float32)


# (input HW, in channels, out channels, kernel HW, stride, padding, dilation, groups)
CONV_CASES = [
    ((7, 7), 4, 6, (3, 3), 1, "SAME", 1, 1),
    ((8, 8), 4, 6, (3, 3), 2, "SAME", 1, 1),
    pytest.param(((9, 6), 3, 5, (3, 2), (2, 1), "VALID", 1, 1), marks=pytest.mark.slow),
    ((8, 8), 3, 4, (7, 7), 2, 3, 1, 1),                    # ResNet stem
    ((2, 2), 8, 8, (3, 3), 1, 1, 1, 1),                    # the tiny maps where XLA:CPU is slow
    ((9, 9), 4, 6, (3, 3), 2, ((0, 2), (1, 0)), 2, 1),     # asymmetric padding, dilation
    pytest.param(((6, 5), 4, 6, (1, 1), 1, 0, 1, 1), marks=pytest.mark.slow),  # 1×1 = matmul
    ((6, 6), 4, 6, (1, 1), 2, 0, 1, 1),                    # strided 1×1 (ResNet downsample)
    ((6, 6), 4, 6, (3, 3), 1, 1, 1, 2),                    # grouped
    pytest.param(((5, 5), 4, 4, (3, 3), 1, "SAME", 1, 4), marks=pytest.mark.slow),  # depthwise
    ((5, 5), 2, 3, (4, 4), 3, (2, 1), 1, 1),               # even kernel, stride 3, int padding
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv2d_lowerings_match_xla(case):
  hw, c_in, c_out, kernel_hw, stride, padding, dilation, groups = case
  x = _random((2, *hw, c_in), 1)
  kernel = _random((*kernel_hw, c_in // groups, c_out), 2)
  kw = dict(stride=stride, padding=padding, dilation=dilation, feature_group_count=groups)
  lowerings = ("xla", "patches")   # "auto" picks one of these (test_auto_picks_the_measured_fastest)
  fns = [lambda a, b, lowering=lowering: layers.conv2d(a, b, lowering=lowering, **kw) for lowering in lowerings]
  _assert_lowerings_match(_values_and_grads(fns, x, kernel), lowerings)


# (input HW, in channels, out channels, kernel HW, stride, padding, output_padding)
CONV_TRANSPOSE_CASES = [
    ((4, 4), 6, 5, (5, 5), 2, 2, 1),        # DCGAN 5×5 stride 2 "same" doubling
    pytest.param(((4, 5), 3, 4, (4, 4), 2, 1, 0), marks=pytest.mark.slow),  # kernel a multiple of the stride
    ((3, 3), 2, 3, (3, 3), 3, 0, 2),        # stride 3, output padding 2
    ((6, 4), 2, 2, (5, 3), (2, 1), (0, 1), 0),  # non-square everything
    ((4, 4), 2, 3, (1, 1), 2, 0, 1),        # 1×1 kernel: output padding reaches past every tap
    pytest.param(((3, 4), 2, 2, (4, 4), 2, 3, 0), marks=pytest.mark.slow),  # padding larger than a phase
    pytest.param(((4, 3), 2, 3, (3, 3), 1, 1, 0), marks=pytest.mark.slow),  # stride 1 is a plain conv
    ((1, 1), 4, 3, (4, 4), 1, 0, 0),        # DCGAN's latent projection (1×1 → 4×4)
]


@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES, ids=[str(i) for i in range(len(CONV_TRANSPOSE_CASES))])
def test_conv_transpose2d_lowerings_match_xla(case):
  hw, c_in, c_out, kernel_hw, stride, padding, output_padding = case
  x = _random((2, *hw, c_in), 3)
  kernel = _random((*kernel_hw, c_in, c_out), 4)
  kw = dict(stride=stride, padding=padding, output_padding=output_padding)
  lowerings = ("xla", "patches", "subpixel", "subpixel_patches")   # "auto" is "subpixel"
  fns = [lambda a, b, lowering=lowering: layers.conv_transpose2d(a, b, lowering=lowering, **kw)
         for lowering in lowerings]
  _assert_lowerings_match(_values_and_grads(fns, x, kernel), lowerings)


def test_conv_transpose2d_is_the_gradient_of_conv2d():
  """The defining identity (PyTorch semantics): conv_transpose2d(g, w) = ∂<conv2d(x, w), g>/∂x."""
  x = _random((2, 8, 8, 3), 5)
  kernel = _random((5, 5, 3, 4), 6)          # conv2d: 3 → 4 channels; transposed: 4 → 3, kernel (kh, kw, 4, 3)
  y, vjp = jax.vjp(lambda a: layers.conv2d(a, kernel, stride=2, padding=2, lowering="xla"), x)
  g = _random(y.shape, 7)
  transposed = layers.conv_transpose2d(g, kernel.transpose(0, 1, 3, 2), stride=2, padding=2, output_padding=1)
  _assert_close(transposed, vjp(g)[0])


def test_output_size_follows_pytorch():
  x = jnp.zeros((1, 4, 4, 2))
  assert layers.conv_transpose2d(x, jnp.zeros((5, 5, 2, 3)), stride=2, padding=2, output_padding=1).shape == (
      1, 8, 8, 3)
  assert layers.conv_transpose2d(x, jnp.zeros((4, 4, 2, 3)), stride=2, padding=1).shape == (1, 8, 8, 3)


def test_conv2d_module_keeps_the_nn_conv_parameter_tree():
  x = _random((2, 5, 5, 3), 8)
  ours = layers.Conv2d(4, (3, 3), stride=2, padding=1)
  variables = ours.init(jax.random.PRNGKey(0), x)
  reference = nn.Conv(4, (3, 3), strides=2, padding=1, precision="highest")
  assert jax.tree_util.tree_map(jnp.shape, variables) == jax.tree_util.tree_map(
      jnp.shape, reference.init(jax.random.PRNGKey(0), x))
  _assert_close(ours.apply(variables, x), reference.apply(variables, x))


def test_depth_to_space_channel_order():
  x = jnp.arange(2 * 8, dtype=jnp.float32).reshape(1, 1, 2, 8)
  y = layers.depth_to_space(x, 2)
  assert y.shape == (1, 2, 4, 2)
  np.testing.assert_array_equal(y[0, 1, 0], x[0, 0, 0, 4:6])   # (r_h=1, r_w=0) block


@pytest.mark.parametrize("call", [
    lambda: layers.conv2d(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 2, 4))),
    lambda: layers.conv2d(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 4)), lowering="fast"),
    lambda: layers.conv_transpose2d(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 2, 4))),
    lambda: layers.conv_transpose2d(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 4)), lowering="fast"),
])
def test_bad_arguments_raise_clear_errors(call):
  with pytest.raises(ValueError, match="conv"):
    call()


@pytest.mark.parametrize("shape,kernel,expected", [
    ((64, 2, 2, 512), (3, 3, 512, 512), "patches"),
    ((64, 16, 16, 64), (1, 1, 64, 128), "patches"),
    ((64, 64, 64, 3), (7, 7, 3, 64), "xla"),
])
def test_auto_picks_the_measured_fastest(shape, kernel, expected):
  assert layers._auto_conv_lowering(shape, kernel, (1, 1), 1) == expected
