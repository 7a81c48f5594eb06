"""torchvision's plain VGG (VGG16 and its siblings without BatchNorm), NHWC.

The architecture is given by `block_widths`: one tuple of conv widths per block, blocks separated by a 2×2 max-pool
(VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))). Every conv is 3×3, padding 1,
followed by a ReLU. Parameters are named after torchvision's `features.N` / `classifier.N` indices so that the
converter (`ganlatent_jax.port.torchvision`) and a reader of the upstream state dict see the same numbers.

Outputs are named by the ReLU after the last conv of each block, as in the perceptual-loss literature: `relu1_2`,
`relu2_2`, `relu3_3`, `relu4_3`, `relu5_3` for VGG16 (torchvision `features` indices 3, 8, 15, 22, 29), `pool5`
after the last max-pool (the output of `features`), `logits` from the classifier. Inputs are used as given (no
ImageNet normalization here: callers such as LPIPS apply their own scaling).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.nets.layers import Conv2d

VGG16_BLOCK_WIDTHS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG16_CLASSIFIER_WIDTHS = (4096, 4096, 1000)
CLASSIFIER_POOL_SIZE = (7, 7)  # torchvision's AdaptiveAvgPool2d((7, 7)) before the classifier


def conv_feature_indices(block_widths: Sequence[Sequence[int]]) -> list[list[int]]:
  """torchvision `features` index of every conv, per block (conv, ReLU per conv; one max-pool after each block)."""
  indices, position = [], 0
  for widths in block_widths:
    block = []
    for _ in widths:
      block.append(position)
      position += 2
    indices.append(block)
    position += 1
  return indices


def tap_names(block_widths: Sequence[Sequence[int]]) -> tuple[str, ...]:
  """`relu{block}_{conv}` after the last conv of each block (1-based, the usual perceptual-loss names)."""
  return tuple(f"relu{b + 1}_{len(widths)}" for b, widths in enumerate(block_widths))


def adaptive_avg_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out, in) averaging matrix of PyTorch's adaptive average pooling along one axis.

  Output cell i averages input cells [floor(i·in/out), ceil((i+1)·in/out)). When out > in the windows overlap and
  repeat cells (a 2×2 map pooled to 7×7 replicates and averages neighbours), which this reproduces exactly.
  """
  matrix = np.zeros((out_size, in_size), np.float32)
  for i in range(out_size):
    start = (i * in_size) // out_size
    end = -((-(i + 1) * in_size) // out_size)
    matrix[i, start:end] = 1.0 / (end - start)
  return matrix


def adaptive_avg_pool2d(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
  """PyTorch's `AdaptiveAvgPool2d(output_size)` on an NHWC array (shapes are static, so the windows are too)."""
  rows = jnp.asarray(adaptive_avg_pool_matrix(x.shape[1], output_size[0]))
  cols = jnp.asarray(adaptive_avg_pool_matrix(x.shape[2], output_size[1]))
  return jnp.einsum("ih,bhwc,jw->bijc", rows, x, cols, precision=jax.lax.Precision.HIGHEST)


class VGG(nn.Module):
  """torchvision `VGG` without BatchNorm. `classifier_widths=None` builds only `features` (what LPIPS uses)."""
  block_widths: tuple[tuple[int, ...], ...] = VGG16_BLOCK_WIDTHS
  classifier_widths: Optional[tuple[int, ...]] = VGG16_CLASSIFIER_WIDTHS

  def setup(self):
    # torchvision init: kaiming_normal_(fan_out, relu) convs with zero bias, N(0, 0.01) linears with zero bias.
    conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    self.convs = [[Conv2d(width, (3, 3), padding=1, kernel_init=conv_init, name=f"features_{index}")
                   for width, index in zip(widths, indices)]
                  for widths, indices in zip(self.block_widths, conv_feature_indices(self.block_widths))]
    if self.classifier_widths is not None:
      # Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear → indices 0, 3, 6.
      self.classifier = [nn.Dense(width, kernel_init=nn.initializers.normal(0.01), name=f"classifier_{3 * i}")
                         for i, width in enumerate(self.classifier_widths)]

  def relu_taps(self, x: jax.Array) -> dict[str, jax.Array]:
    """{`reluB_N`: activation after the last conv+ReLU of block B}, without the last max-pool (LPIPS' taps)."""
    taps = {}
    for b, (convs, name) in enumerate(zip(self.convs, tap_names(self.block_widths))):
      if b > 0:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for conv in convs:
        x = nn.relu(conv(x))
      taps[name] = x
    return taps

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """The ReLU taps, `pool5` (torchvision's `features(x)`) and, with a classifier, `logits` (eval: no dropout)."""
    outputs = self.relu_taps(x)
    x = nn.max_pool(outputs[tap_names(self.block_widths)[-1]], (2, 2), strides=(2, 2))
    outputs["pool5"] = x
    if self.classifier_widths is not None:
      x = adaptive_avg_pool2d(x, CLASSIFIER_POOL_SIZE)
      # Flatten channel-major like torch's NCHW `flatten(1)`, so the converted Linear keeps its input order.
      x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
      for i, dense in enumerate(self.classifier):
        x = dense(x)
        if i < len(self.classifier) - 1:
          x = nn.relu(x)
      outputs["logits"] = x
    return outputs


def build_vgg(config: dict[str, Any]) -> VGG:
  """The module for a converter config ({'block_widths': [[...]...], 'classifier_widths': [...] or None})."""
  classifier = config.get("classifier_widths")
  return VGG(block_widths=tuple(tuple(int(w) for w in block) for block in config["block_widths"]),
             classifier_widths=None if classifier is None else tuple(int(w) for w in classifier))


def init_vgg(rng: jax.Array, module: VGG, in_channels: int = 3) -> dict[str, Any]:
  """Random torchvision-style initial variables ({'params': ...}).

  The classifier follows an adaptive pool, so parameter shapes do not depend on the image size: a 32×32 dummy input
  (the smallest that survives the five max-pools) is used, inside `jit` (op-by-op init compiles every op).
  """
  dummy = jnp.zeros((1, 32, 32, in_channels), jnp.float32)
  return jax.jit(lambda rng: module.init(rng, dummy))(rng)
