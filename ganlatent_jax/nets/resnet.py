"""torchvision's ResNet with BasicBlocks (ResNet-18/34), NHWC, with PyTorch BatchNorm semantics.

Widths, depths, input channels and the linear heads on the pooled features are attributes, so the same module is
the ImageNet classifier (`heads=(("fc", 1000),)`), SRE's K-way direction classifier trained from scratch, or
GANLatentDiscovery's reconstructor (6 input channels, heads `type_estimator` and `shift_estimator`).

BatchNorm follows `torch.nn.BatchNorm2d`: in training it normalizes with the biased batch variance and updates the
running averages with momentum 0.1 (`running = 0.9·running + 0.1·batch`) using the *unbiased* batch variance; in
evaluation it uses the running statistics. Running statistics live in the 'batch_stats' collection (names 'mean',
'var', like flax's BatchNorm) and parameters 'scale'/'bias'; apply with `mutable=["batch_stats"]` when `train=True`.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from ganlatent_jax.nets.layers import Conv2d

RESNET18_STAGE_WIDTHS = (64, 128, 256, 512)
RESNET18_BLOCKS_PER_STAGE = (2, 2, 2, 2)
RESNET34_BLOCKS_PER_STAGE = (3, 4, 6, 3)
FEATURE_NAMES = ("stem", "layer1", "layer2", "layer3", "layer4", "penultimate")

# torchvision init: kaiming_normal_(mode="fan_out", nonlinearity="relu") for every conv.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _torch_linear_init(fan_in: int):
  """`nn.Linear`'s default init: weight and bias ~ U(±1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class BatchNorm(nn.Module):
  """`torch.nn.BatchNorm2d` over the last axis (see the module docstring). `momentum` is PyTorch's (new-batch weight).

  `axis_name`: inside `pmap`/`shard_map`, the mapped batch axis to average statistics over. (Under plain `jit` with a
  sharded batch the statistics are global already.)
  """
  momentum: float = 0.1
  epsilon: float = 1e-5
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    channels = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (channels,))
    bias = self.param("bias", nn.initializers.zeros, (channels,))
    running_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((channels,), jnp.float32))
    running_var = self.variable("batch_stats", "var", lambda: jnp.ones((channels,), jnp.float32))
    if train:
      axes = tuple(range(x.ndim - 1))
      count = math.prod(x.shape[:-1])
      x32 = x.astype(jnp.float32)
      mean = jnp.mean(x32, axes)
      if self.axis_name is not None:
        mean = lax.pmean(mean, self.axis_name)
      var = jnp.mean(jnp.square(x32 - mean), axes)  # two-pass: no cancellation for large means
      if self.axis_name is not None:
        var = lax.pmean(var, self.axis_name)
        count = count * lax.axis_size(self.axis_name)
      if count < 2:
        raise ValueError(f"BatchNorm in training mode needs more than 1 value per channel, got input shape {x.shape}"
                         " (PyTorch raises the same error)")
      if not self.is_initializing():
        unbiased_var = var * (count / (count - 1))
        running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
        running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased_var
    else:
      mean, var = running_mean.value, running_var.value
    inv = lax.rsqrt(var + self.epsilon) * scale
    return ((x - mean) * inv + bias).astype(x.dtype)


class BasicBlock(nn.Module):
  """conv3×3(stride)-BN-ReLU-conv3×3-BN plus the identity or a conv1×1(stride)-BN projection, then ReLU."""
  width: int
  stride: int = 1
  project: bool = False
  bn_momentum: float = 0.1
  axis_name: Optional[str] = None

  def setup(self):
    bn = dict(momentum=self.bn_momentum, axis_name=self.axis_name)
    # Explicit padding 1 (not "SAME"): with stride 2 PyTorch pads both sides.
    self.conv1 = Conv2d(self.width, (3, 3), stride=self.stride, padding=1, use_bias=False, kernel_init=_conv_init)
    self.bn1 = BatchNorm(**bn)
    self.conv2 = Conv2d(self.width, (3, 3), padding=1, use_bias=False, kernel_init=_conv_init)
    self.bn2 = BatchNorm(**bn)
    if self.project:  # torchvision `downsample.0` / `downsample.1`
      self.downsample_conv = Conv2d(self.width, (1, 1), stride=self.stride, padding=0, use_bias=False,
                                    kernel_init=_conv_init)
      self.downsample_bn = BatchNorm(**bn)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = nn.relu(self.bn1(self.conv1(x), train))
    y = self.bn2(self.conv2(y), train)
    shortcut = self.downsample_bn(self.downsample_conv(x), train) if self.project else x
    return nn.relu(y + shortcut)


class ResNet(nn.Module):
  """torchvision `ResNet(BasicBlock, blocks_per_stage)`; the input channel count is taken from the input.

  Submodule names: `conv1`, `bn1`, `layer{s}_{b}` (blocks), and one `nn.Dense` per head, named as the head.
  """
  stem_width: int = 64
  stage_widths: tuple[int, ...] = RESNET18_STAGE_WIDTHS
  blocks_per_stage: tuple[int, ...] = RESNET18_BLOCKS_PER_STAGE
  heads: tuple[tuple[str, int], ...] = (("fc", 1000),)
  bn_momentum: float = 0.1
  axis_name: Optional[str] = None

  def setup(self):
    if len(self.stage_widths) != len(self.blocks_per_stage):
      raise ValueError(f"stage_widths {self.stage_widths} and blocks_per_stage {self.blocks_per_stage} "
                       "differ in length")
    clash = [name for name, _ in self.heads if name in FEATURE_NAMES or name.startswith(("conv1", "bn1", "layer"))]
    if clash:
      raise ValueError(f"head names {clash} clash with the ResNet's own layer/feature names")
    self.conv1 = Conv2d(self.stem_width, (7, 7), stride=2, padding=3, use_bias=False, kernel_init=_conv_init)
    self.bn1 = BatchNorm(momentum=self.bn_momentum, axis_name=self.axis_name)
    stages, in_width = [], self.stem_width
    for s, (width, depth) in enumerate(zip(self.stage_widths, self.blocks_per_stage)):
      blocks = []
      for b in range(depth):
        stride = 2 if (s > 0 and b == 0) else 1
        blocks.append(BasicBlock(width, stride=stride, project=(stride != 1 or in_width != width),
                                 bn_momentum=self.bn_momentum, axis_name=self.axis_name, name=f"layer{s + 1}_{b}"))
        in_width = width
      stages.append(blocks)
    self.stages = stages
    self.head_layers = [nn.Dense(size, kernel_init=_torch_linear_init(in_width), bias_init=_torch_linear_init(in_width),
                                 name=name) for name, size in self.heads]

  def features(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    """`stem` (after conv1/bn1/relu/maxpool), `layer1`…`layerN` (NHWC), `penultimate` (B, C) = global average pool,
    and every head's output."""
    x = nn.relu(self.bn1(self.conv1(x), train))
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # pads with -inf, as PyTorch
    outputs = {"stem": x}
    for s, blocks in enumerate(self.stages):
      for block in blocks:
        x = block(x, train)
      outputs[f"layer{s + 1}"] = x
    pooled = jnp.mean(x, axis=(1, 2))
    outputs["penultimate"] = pooled
    for (name, _), dense in zip(self.heads, self.head_layers):
      outputs[name] = dense(pooled)
    return outputs

  def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    """{head name: (B, size)}. With `train=True`, apply with `mutable=["batch_stats"]`."""
    outputs = self.features(x, train)
    return {name: outputs[name] for name, _ in self.heads}


def resnet18(heads: Sequence[tuple[str, int]] = (("fc", 1000),), **kwargs) -> ResNet:
  """Full-width ResNet-18 with the given heads (e.g. `(("fc", K),)` for a K-way classifier)."""
  return ResNet(heads=tuple((str(n), int(k)) for n, k in heads), **kwargs)


def build_resnet(config: dict[str, Any]) -> ResNet:
  """The module for a converter config (see `ganlatent_jax.port.torchvision.convert_resnet`)."""
  return ResNet(stem_width=int(config["stem_width"]),
                stage_widths=tuple(int(w) for w in config["stage_widths"]),
                blocks_per_stage=tuple(int(d) for d in config["blocks_per_stage"]),
                heads=tuple((str(n), int(k)) for n, k in config["heads"]))


def _quick_compiling_key(rng: jax.Array) -> jax.Array:
  """An 'rbg' key (XLA's RngBitGenerator) derived deterministically from any JAX key.

  Inlined threefry code for each of a ResNet's ~100 parameters dominates the compile time of `init` on CPU
  (~15 s for ResNet-18 vs ~4 s with 'rbg'). The values differ from a threefry init but are a deterministic function
  of `rng` on a given backend, which is all a random initialization needs.
  """
  data = jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
  data = jnp.ravel(jnp.asarray(data)).astype(jnp.uint32)
  return jax.random.wrap_key_data(jnp.resize(data, (4,)), impl="rbg")


def init_resnet(rng: jax.Array, module: ResNet, in_channels: int = 3) -> dict[str, Any]:
  """Random torchvision-style variables {'params', 'batch_stats'} (running mean 0, var 1) for training from scratch.

  Parameter shapes do not depend on the image size, so a small dummy input is used. Jitted (op-by-op init compiles
  every op separately) and drawn with an 'rbg' key derived from `rng` (see `_quick_compiling_key`).
  """
  dummy = jnp.zeros((1, 32, 32, in_channels), jnp.float32)
  return jax.jit(lambda rng: module.init(_quick_compiling_key(rng), dummy, train=False))(rng)
