"""Inception-v3 (torchvision's `Inception3`, and pytorch-fid's FID variant of it), NHWC, inference only.

Two weight files are in use for FID and both load here (see `ganlatent_jax.port.inception`):
  * torchvision `inception_v3_google-*.pth` (1000 classes, `variant='torchvision'`);
  * pytorch-fid `pt_inception-2015-12-05-*.pth` (1008 classes, the TF FID graph, `variant='fid'`). Its network is
    torchvision's with four blocks patched the way pytorch-fid does (`FIDInceptionA/C/E_1/E_2`): the 3×3 average
    pools of Mixed_5b–5d, 6b–6e and 7b exclude the padding from the count (`count_include_pad=False`), and Mixed_7c's
    pool branch is a 3×3 stride-1 *max* pool.

The layer structure is fixed by the architecture (`BLOCKS`, `CONVS`); every conv's output width comes from the
weights (`config['conv_widths']`). A conv is BasicConv2d: conv without bias → BatchNorm (eps 1e-3) → ReLU.

FID features (`pool3`, 2048-d) follow pytorch-fid's `InceptionV3` wrapper: images in [0, 1] are bilinearly resized to
299×299 (align_corners=False), mapped to [-1, 1] and run up to the global average pool. (For torchvision weights this
equals torchvision's own `transform_input=True` preprocessing of ImageNet-normalized input, which lands on the same
2x − 1.)
"""
from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganlatent_jax.nets.layers import Conv2d
from ganlatent_jax.nets.lpips import upsample_bilinear
from ganlatent_jax.nets.resnet import BatchNorm

BN_EPSILON = 1e-3
FID_INPUT_SIZE = 299
POOL_FEATURES = 2048
VARIANTS = ("torchvision", "fid")
# torchvision `transform_input`: ImageNet-normalized input → the [-1, 1] scaling the Google weights expect.
TRANSFORM_SCALE = np.array([0.229, 0.224, 0.225], np.float32) / 0.5
TRANSFORM_SHIFT = (np.array([0.485, 0.456, 0.406], np.float32) - 0.5) / 0.5

# (name, (kh, kw), stride, (ph, pw)); "maxpool" is a 3×3 stride-2 max pool.
STEM = (("Conv2d_1a_3x3", (3, 3), 2, (0, 0)), ("Conv2d_2a_3x3", (3, 3), 1, (0, 0)),
        ("Conv2d_2b_3x3", (3, 3), 1, (1, 1)), "maxpool", ("Conv2d_3b_1x1", (1, 1), 1, (0, 0)),
        ("Conv2d_4a_3x3", (3, 3), 1, (0, 0)), "maxpool")
BLOCKS = (("Mixed_5b", "A"), ("Mixed_5c", "A"), ("Mixed_5d", "A"), ("Mixed_6a", "B"), ("Mixed_6b", "C"),
          ("Mixed_6c", "C"), ("Mixed_6d", "C"), ("Mixed_6e", "C"), ("Mixed_7a", "D"), ("Mixed_7b", "E"),
          ("Mixed_7c", "E"))
_1x1, _3x3, _1x7, _7x1, _1x3, _3x1 = ((1, 1), 1, (0, 0)), ((3, 3), 1, (1, 1)), ((1, 7), 1, (0, 3)), \
    ((7, 1), 1, (3, 0)), ((1, 3), 1, (0, 1)), ((3, 1), 1, (1, 0))
_3x3_S2 = ((3, 3), 2, (0, 0))
CONVS = {
    "A": (("branch1x1", *_1x1), ("branch5x5_1", *_1x1), ("branch5x5_2", (5, 5), 1, (2, 2)),
          ("branch3x3dbl_1", *_1x1), ("branch3x3dbl_2", *_3x3), ("branch3x3dbl_3", *_3x3), ("branch_pool", *_1x1)),
    "B": (("branch3x3", *_3x3_S2), ("branch3x3dbl_1", *_1x1), ("branch3x3dbl_2", *_3x3),
          ("branch3x3dbl_3", *_3x3_S2)),
    "C": (("branch1x1", *_1x1), ("branch7x7_1", *_1x1), ("branch7x7_2", *_1x7), ("branch7x7_3", *_7x1),
          ("branch7x7dbl_1", *_1x1), ("branch7x7dbl_2", *_7x1), ("branch7x7dbl_3", *_1x7),
          ("branch7x7dbl_4", *_7x1), ("branch7x7dbl_5", *_1x7), ("branch_pool", *_1x1)),
    "D": (("branch3x3_1", *_1x1), ("branch3x3_2", *_3x3_S2), ("branch7x7x3_1", *_1x1), ("branch7x7x3_2", *_1x7),
          ("branch7x7x3_3", *_7x1), ("branch7x7x3_4", *_3x3_S2)),
    "E": (("branch1x1", *_1x1), ("branch3x3_1", *_1x1), ("branch3x3_2a", *_1x3), ("branch3x3_2b", *_3x1),
          ("branch3x3dbl_1", *_1x1), ("branch3x3dbl_2", *_3x3), ("branch3x3dbl_3a", *_1x3),
          ("branch3x3dbl_3b", *_3x1), ("branch_pool", *_1x1)),
}
# Which convs read the block input (the others read the named conv's output).
CONV_INPUTS = {
    "A": {"branch5x5_2": "branch5x5_1", "branch3x3dbl_2": "branch3x3dbl_1", "branch3x3dbl_3": "branch3x3dbl_2"},
    "B": {"branch3x3dbl_2": "branch3x3dbl_1", "branch3x3dbl_3": "branch3x3dbl_2"},
    "C": {"branch7x7_2": "branch7x7_1", "branch7x7_3": "branch7x7_2", "branch7x7dbl_2": "branch7x7dbl_1",
          "branch7x7dbl_3": "branch7x7dbl_2", "branch7x7dbl_4": "branch7x7dbl_3", "branch7x7dbl_5": "branch7x7dbl_4"},
    "D": {"branch3x3_2": "branch3x3_1", "branch7x7x3_2": "branch7x7x3_1", "branch7x7x3_3": "branch7x7x3_2",
          "branch7x7x3_4": "branch7x7x3_3"},
    "E": {"branch3x3_2a": "branch3x3_1", "branch3x3_2b": "branch3x3_1", "branch3x3dbl_2": "branch3x3dbl_1",
          "branch3x3dbl_3a": "branch3x3dbl_2", "branch3x3dbl_3b": "branch3x3dbl_2"},
}
# The convs whose outputs are concatenated (in this order), plus the pass-through pool branch of B and D.
BLOCK_OUTPUTS = {
    "A": ("branch1x1", "branch5x5_2", "branch3x3dbl_3", "branch_pool"),
    "B": ("branch3x3", "branch3x3dbl_3", "pool"),
    "C": ("branch1x1", "branch7x7_3", "branch7x7dbl_5", "branch_pool"),
    "D": ("branch3x3_2", "branch7x7x3_4", "pool"),
    "E": ("branch1x1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"),
}


def conv_names() -> list[str]:
  """Every BasicConv2d of the network, as dotted torchvision module paths, in forward order."""
  names = [layer[0] for layer in STEM if layer != "maxpool"]
  for block, kind in BLOCKS:
    names += [f"{block}.{conv[0]}" for conv in CONVS[kind]]
  return names


def conv_input_widths(widths: dict[str, int], in_channels: int = 3) -> dict[str, int]:
  """Input channels of every conv, given every conv's output width (block inputs are concatenations)."""
  inputs, previous = {}, in_channels
  for layer in STEM:
    if layer != "maxpool":
      inputs[layer[0]] = previous
      previous = widths[layer[0]]
  for block, kind in BLOCKS:
    for conv in CONVS[kind]:
      source = CONV_INPUTS[kind].get(conv[0])
      inputs[f"{block}.{conv[0]}"] = previous if source is None else widths[f"{block}.{source}"]
    previous = sum(previous if name == "pool" else widths[f"{block}.{name}"] for name in BLOCK_OUTPUTS[kind])
  inputs["fc"] = previous
  return inputs


def max_pool(x: jax.Array, stride: int, padding: int = 0) -> jax.Array:
  """3×3 max pool, PyTorch floor mode (padding with −inf)."""
  pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, stride, stride, 1), pads)


def avg_pool_3x3(x: jax.Array, count_include_pad: bool) -> jax.Array:
  """3×3 stride-1 average pool with padding 1; the divisor is 9, or the number of real pixels in the window."""
  pads = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pads)
  if count_include_pad:
    return total / 9.0
  ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
  return total / lax.reduce_window(ones, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pads)


class BasicConv2d(nn.Module):
  features: int
  kernel_size: tuple[int, int]
  stride: int
  padding: tuple[int, int]

  @nn.compact
  def __call__(self, x):
    x = Conv2d(self.features, self.kernel_size, stride=self.stride, padding=self.padding, use_bias=False,
               name="conv")(x)
    return jax.nn.relu(BatchNorm(epsilon=BN_EPSILON, name="bn")(x, train=False))


class InceptionBlock(nn.Module):
  kind: str                              # 'A'..'E'
  widths: tuple[tuple[str, int], ...]    # conv name → output width
  pool: str                              # 'avg' | 'avg_exclude_pad' | 'max' (branch_pool's pooling), '' for B/D

  @nn.compact
  def __call__(self, x):
    widths = dict(self.widths)
    out: dict[str, jax.Array] = {}
    for name, kernel, stride, padding in CONVS[self.kind]:
      source = CONV_INPUTS[self.kind].get(name)
      inputs = x if source is None else out[source]
      if name == "branch_pool":
        inputs = (max_pool(x, 1, 1) if self.pool == "max" else avg_pool_3x3(x, self.pool == "avg"))
      out[name] = BasicConv2d(widths[name], kernel, stride, padding, name=name)(inputs)
    if self.kind in ("B", "D"):
      out["pool"] = max_pool(x, 2)
    return jnp.concatenate([out[name] for name in BLOCK_OUTPUTS[self.kind]], axis=-1)


def block_pool(kind: str, block: str, variant: str) -> str:
  if kind in ("B", "D"):
    return ""
  if variant == "fid":
    return "max" if block == "Mixed_7c" else "avg_exclude_pad"
  return "avg"


class InceptionV3(nn.Module):
  """Inception-v3 up to the 2048-d global average pool ('pool3') and, with `num_classes`, the fc logits."""
  conv_widths: tuple[tuple[str, int], ...]
  variant: str = "torchvision"
  num_classes: int = 0
  transform_input: bool = False   # torchvision's input re-scaling (used with ImageNet-normalized input)

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """x: NHWC network input (the [-1, 1]-scaled image unless `transform_input`) → {'pool3', 'logits'?}."""
    if self.variant not in VARIANTS:
      raise ValueError(f"Inception variant must be one of {VARIANTS}, got {self.variant!r}")
    if self.transform_input:
      x = x * TRANSFORM_SCALE + TRANSFORM_SHIFT
    widths = dict(self.conv_widths)
    for layer in STEM:
      if layer == "maxpool":
        x = max_pool(x, 2)
      else:
        name, kernel, stride, padding = layer
        x = BasicConv2d(widths[name], kernel, stride, padding, name=name)(x)
    for block, kind in BLOCKS:
      block_widths = tuple((conv[0], widths[f"{block}.{conv[0]}"]) for conv in CONVS[kind])
      x = InceptionBlock(kind, block_widths, block_pool(kind, block, self.variant), name=block)(x)
    out = {"pool3": jnp.mean(x, axis=(1, 2))}
    if self.num_classes:
      out["logits"] = nn.Dense(self.num_classes, name="fc", precision=lax.Precision.HIGHEST)(out["pool3"])
    return out


def build_inception(config: dict[str, Any]) -> InceptionV3:
  return InceptionV3(conv_widths=tuple((name, int(w)) for name, w in config["conv_widths"]),
                     variant=config["variant"], num_classes=int(config.get("num_classes") or 0),
                     transform_input=bool(config.get("transform_input", False)))


def fid_preprocess(images: jax.Array, size: int = FID_INPUT_SIZE) -> jax.Array:
  """pytorch-fid's input path: NHWC images in [0, 1] → bilinear resize to size×size → [-1, 1]."""
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"expected NHWC images with 1 or 3 channels, got shape {images.shape}")
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  if images.shape[1:3] != (size, size):
    images = upsample_bilinear(images.astype(jnp.float32), (size, size))
  return 2.0 * images - 1.0


@flax.struct.dataclass
class InceptionFeatures:
  """A loaded Inception-v3 as a pytree (variables are leaves, the module static): FID's feature extractor."""
  variables: Any
  module: InceptionV3 = flax.struct.field(pytree_node=False)

  def __call__(self, images: jax.Array, *, resize: bool = True) -> jax.Array:
    """(B, 2048) pool3 features of NHWC images in [0, 1] (pytorch-fid's preprocessing; `resize=False` feeds the
    images at their own size)."""
    x = fid_preprocess(images) if resize else fid_preprocess(images, size=images.shape[1])
    return self.module.apply(self.variables, x)["pool3"]

  def apply(self, x: jax.Array) -> dict[str, jax.Array]:
    """The raw network on its own input scale (see `InceptionV3.__call__`)."""
    return self.module.apply(self.variables, x)


def compute_features(model: InceptionFeatures, images, batch_size: int = 50,
                     resize: bool = True) -> np.ndarray:
  """pool3 features (N, 2048) float64 of many images (NHWC in [0, 1], numpy or jax), batched under one jit."""
  run = _jitted_features(resize)
  chunks = [np.asarray(run(model, jnp.asarray(images[i:i + batch_size], jnp.float32)), np.float64)
            for i in range(0, len(images), batch_size)]
  return np.concatenate(chunks) if chunks else np.zeros((0, POOL_FEATURES))


_JITTED: dict[bool, Any] = {}


def _jitted_features(resize: bool):
  if resize not in _JITTED:
    _JITTED[resize] = jax.jit(lambda model, x: model(x, resize=resize))
  return _JITTED[resize]


def standard_conv_widths() -> dict[str, int]:
  """The published Inception-v3's widths (both weight files), for building test weights and docs."""
  widths = {"Conv2d_1a_3x3": 32, "Conv2d_2a_3x3": 32, "Conv2d_2b_3x3": 64, "Conv2d_3b_1x1": 80,
            "Conv2d_4a_3x3": 192}
  per_kind = {
      "A": dict(branch1x1=64, branch5x5_1=48, branch5x5_2=64, branch3x3dbl_1=64, branch3x3dbl_2=96,
                branch3x3dbl_3=96),
      "B": dict(branch3x3=384, branch3x3dbl_1=64, branch3x3dbl_2=96, branch3x3dbl_3=96),
      "C": dict(branch1x1=192, branch7x7_3=192, branch7x7dbl_5=192, branch_pool=192),
      "D": dict(branch3x3_1=192, branch3x3_2=320, branch7x7x3_1=192, branch7x7x3_2=192, branch7x7x3_3=192,
                branch7x7x3_4=192),
      "E": dict(branch1x1=320, branch3x3_1=384, branch3x3_2a=384, branch3x3_2b=384, branch3x3dbl_1=448,
                branch3x3dbl_2=384, branch3x3dbl_3a=384, branch3x3dbl_3b=384, branch_pool=192),
  }
  pool_features = {"Mixed_5b": 32, "Mixed_5c": 64, "Mixed_5d": 64}
  c7 = {"Mixed_6b": 128, "Mixed_6c": 160, "Mixed_6d": 160, "Mixed_6e": 192}
  for block, kind in BLOCKS:
    for conv in CONVS[kind]:
      name = conv[0]
      if kind == "A" and name == "branch_pool":
        width = pool_features[block]
      elif kind == "C" and name not in per_kind["C"]:
        width = c7[block]
      else:
        width = per_kind[kind][name]
      widths[f"{block}.{name}"] = width
  return widths

