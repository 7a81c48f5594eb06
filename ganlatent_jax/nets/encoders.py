"""Small image encoders (evaluation protocols, auxiliary heads): disentanglement_lib's conv encoder shape."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from ganlatent_jax.nets.layers import Conv2d


class ConvEncoder(nn.Module):
  """(B, H, W, C) images in [0, 1] → (B, outputs): 4×4 stride-2 convs (32, 32, 64, 64), dense 256, dense outputs.

  The convolutional encoder of Locatello et al. (disentanglement_lib `conv_encoder`), with a regression head.
  """
  outputs: int
  widths: Sequence[int] = (32, 32, 64, 64)
  hidden: int = 256

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for width in self.widths:
      x = nn.relu(Conv2d(width, (4, 4), stride=2, padding=((1, 1), (1, 1)))(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(self.outputs)(x)
