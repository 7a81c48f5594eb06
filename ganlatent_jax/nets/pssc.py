"""PS-SC's latent modules (Zhu et al., "Where and What? Examining Interpretable Disentangled Representations",
CVPR 2021, Sec. 3.1; upstream zhuxinqimac/PS-SC `training/modular_networks2.py`), NHWC.

Pure functions:
  * `cumax(u) = cumsum(softmax(u))` (Shen et al.'s ON-LSTM gate): a soft step (0, …, 0, 1, …, 1) whose position the
    logits choose;
  * `band_gate(start, end) = cumax(start) ⊙ (1 − cumax(end))` (paper Eq. 3): a soft band, 1 between the two steps;
  * `rectangle_masks(h_start, h_end, w_start, w_end) = g^h ⊗ g^w` (Eq. 4), a soft rectangle (…, H, W);
  * `sc_masks(gate_logits)`: the mean over J rectangles (Eq. 5) of the gates one dense layer produced, per code.
  Limits: one-hot logits (±large) starting at a and ending at b give g[i] = 1 for a ≤ i < b, else 0 (a binary
  rectangle [a, b) × [c, e), empty when b ≤ a); uniform logits give g[i] = (i + 1)(W − 1 − i)/W² (peak ≈ 0.25), so
  masks start small (peak ≈ 1/16). Because cumax ends at exactly 1, g[W − 1] = 0 for ANY logits: as upstream, no
  mask ever covers the last row or column of a feature map (b, e ≤ W − 1).

Modules:
  * `SCModule(num_codes, num_rects)` — the Spatial Constriction module (`C_spgroup-J-n` upstream). ONE bias-free
    equalized dense layer on the average-pooled input Γ gives all gates of all n codes and J rectangles, laid out
    (n, J, 4, W) with the 4 ordered (h_start, h_end, w_start, w_end) (the paper's Eqs. 1–2 write four functions
    f^{h1}, f^{h2}, f^{w1}, f^{w2} per code). Γ̄ = InstanceNorm(Γ) is computed once from the module input; then for
    each code i in order, AdaIN Γ̂_i = Γ̄ ⊙ (1 + a_i) + b_i with (a_i, b_i) = Dense_{1→2C}(c_i) (StyleGAN's
    `style_mod`: scale 1 + a) is blended in, Γ ← Γ ⊙ (1 − Π_i) + Γ̂_i ⊙ Π_i (Eqs. 6–7 applied per code; later codes
    blend over earlier ones where masks overlap). The masks depend on Γ only, never on the module's own codes.
    `mask_kind='softmax'` is the paper's Table-4 ablation (`C_spgroup_sm`): per code a softmax over all H·W positions
    of a bias-free 3×3 conv of Γ.
  * `CGlobal(features, num_codes)` — the "no SC" latent module (`C_global-n`): StyleGAN2's modulated, demodulated
    3×3 conv with style = affine(codes) + 1, then bias and leaky ReLU·√2.
All dense/conv weights are stored N(0, 1) and scaled by 1/√fan_in at run time (StyleGAN's equalized learning rate),
biases start at 0 — upstream's init.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from ganlatent_jax.nets import upfirdn
from ganlatent_jax.nets.discriminators import ScaledConv, ScaledDense

INSTANCE_NORM_EPS = 1e-8
LRELU_SLOPE = 0.2
GATE_ORDER = ("h_start", "h_end", "w_start", "w_end")
MASK_KINDS = ("cumax", "softmax")


def lrelu(x):
  """StyleGAN's activation: leaky ReLU 0.2 times √2 (upstream `apply_bias_act(act='lrelu')` after the bias)."""
  return jax.nn.leaky_relu(x, LRELU_SLOPE) * math.sqrt(2.0)


# ---------------------------------------------------------------------------------------------------------------
# Pure functions.

def cumax(logits: jax.Array, axis: int = -1) -> jax.Array:
  """cumsum(softmax(logits)) along `axis`: a monotone soft step from ≈0 to exactly 1 (the last entry)."""
  return jnp.cumsum(jax.nn.softmax(logits, axis=axis), axis=axis)


def band_gate(start_logits: jax.Array, end_logits: jax.Array) -> jax.Array:
  """g = cumax(start) ⊙ (1 − cumax(end)) along the last axis (paper Eq. 3): a soft band [start, end)."""
  return cumax(start_logits) * (1.0 - cumax(end_logits))


def rectangle_masks(h_start: jax.Array, h_end: jax.Array, w_start: jax.Array, w_end: jax.Array) -> jax.Array:
  """Soft rectangles (…, H, W) = g^h ⊗ g^w (paper Eq. 4) from gate logits (…, H) and (…, W)."""
  if h_start.shape != h_end.shape or w_start.shape != w_end.shape or h_start.shape[:-1] != w_start.shape[:-1]:
    raise ValueError(f"rectangle_masks: logits must be (…, H), (…, H), (…, W), (…, W) with equal leading axes; got "
                     f"{h_start.shape}, {h_end.shape}, {w_start.shape}, {w_end.shape}")
  return band_gate(h_start, h_end)[..., :, None] * band_gate(w_start, w_end)[..., None, :]


def sc_masks(gate_logits: jax.Array) -> jax.Array:
  """Π (…, n, H, W) from gate logits (…, n, J, 4, L) (square maps, H = W = L): the mean over the J rectangles (Eq. 5)."""
  if gate_logits.ndim < 4 or gate_logits.shape[-2] != 4:
    raise ValueError(f"sc_masks: gate logits must be (…, n, J, 4, L), got {gate_logits.shape}")
  rects = rectangle_masks(*(gate_logits[..., g, :] for g in range(4)))   # (…, n, J, L, L)
  return jnp.mean(rects, axis=-3)


def instance_norm(x: jax.Array, eps: float = INSTANCE_NORM_EPS) -> jax.Array:
  """Per sample and channel over H, W (NHWC): (x − mean)/√(mean((x − mean)²) + eps), StyleGAN's `instance_norm`."""
  x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
  return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + eps)


def blend_codes(x: jax.Array, masks: jax.Array, scales: jax.Array, shifts: jax.Array) -> jax.Array:
  """Eqs. 6–7 for n codes in order: x ← x ⊙ (1 − Π_i) + (IN(x₀) ⊙ (1 + a_i) + b_i) ⊙ Π_i.

  x (B, H, W, C) the module input x₀; masks (B, n, H, W); scales, shifts (B, n, C): the AdaIN styles a_i, b_i
  already computed from the codes."""
  normalised = instance_norm(x)
  for i in range(masks.shape[1]):
    styled = normalised * (1.0 + scales[:, i, None, None, :]) + shifts[:, i, None, None, :]
    mask = masks[:, i, :, :, None]
    x = x * (1.0 - mask) + styled * mask
  return x


# ---------------------------------------------------------------------------------------------------------------
# Modules.

class SCModule(nn.Module):
  """Spatial Constriction: (Γ (B, H, W, C), codes (B, n)) → (Γ′ (B, H, W, C), masks Π (B, n, H, W))."""
  num_codes: int
  num_rects: int = 4
  mask_kind: str = "cumax"

  @nn.compact
  def __call__(self, x: jax.Array, codes: jax.Array):
    batch, height, width, channels = x.shape
    if height != width:
      raise ValueError(f"SCModule: feature maps must be square (upstream), got {height}×{width}")
    if codes.shape != (batch, self.num_codes):
      raise ValueError(f"SCModule: codes must be (batch, {self.num_codes}) = {(batch, self.num_codes)}, got "
                       f"{codes.shape}")
    if self.mask_kind == "cumax":
      size = self.num_codes * self.num_rects * 4 * width
      kernel = self.param("gates", nn.initializers.normal(1.0), (channels, size))
      pooled = jnp.mean(x, axis=(1, 2))
      logits = jnp.dot(pooled, kernel, precision=lax.Precision.HIGHEST) / math.sqrt(channels)
      masks = sc_masks(logits.reshape(batch, self.num_codes, self.num_rects, 4, width))
    elif self.mask_kind == "softmax":
      logits = ScaledConv(self.num_codes, 3, use_bias=False, name="attention")(x)       # (B, H, W, n)
      flat = jnp.transpose(logits, (0, 3, 1, 2)).reshape(batch, self.num_codes, height * width)
      masks = jax.nn.softmax(flat, axis=-1).reshape(batch, self.num_codes, height, width)
    else:
      raise ValueError(f"SCModule: unknown mask_kind {self.mask_kind!r}; choose one of {MASK_KINDS}")
    styles = jnp.stack([ScaledDense(2 * channels, name=f"style_{i}")(codes[:, i:i + 1])
                        for i in range(self.num_codes)], axis=1)                        # (B, n, 2C)
    return blend_codes(x, masks, styles[..., :channels], styles[..., channels:]), masks


class CGlobal(nn.Module):
  """A modulated (demodulated) 3×3 conv whose style is an affine map of the codes (+1), then bias and lrelu."""
  features: int
  num_codes: int

  @nn.compact
  def __call__(self, x: jax.Array, codes: jax.Array) -> jax.Array:
    if codes.shape != (x.shape[0], self.num_codes):
      raise ValueError(f"CGlobal: codes must be (batch, {self.num_codes}), got {codes.shape}")
    style = ScaledDense(x.shape[-1], name="modulation")(codes) + 1.0   # upstream: dense + bias (init 0), then + 1
    kernel = self.param("kernel", nn.initializers.normal(1.0), (3, 3, x.shape[-1], self.features))
    y = upfirdn.modulated_conv2d(x, kernel, style, demodulate=True)
    return lrelu(y + self.param("bias", nn.initializers.zeros, (self.features,)))
