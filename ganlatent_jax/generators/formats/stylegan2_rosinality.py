"""rosinality/stylegan2-pytorch checkpoints → `generators.stylegan2` variables.

Accepted files: `convert_weight.py` output `{"g_ema": state_dict, "latent_avg": (D,)}`, `train.py` checkpoints
`{"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}` (g_ema is used, as upstream's generate.py does),
and a bare generator state dict. size, style_dim, n_mlp and the channel table are read from the tensor shapes;
channel_multiplier from `args` when present (else inferred from the table; it only documents the table). lr_mlp
cannot be read from the weights (they are stored divided by it): upstream's 0.01 unless given to `convert_state_dict`.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np

from ganlatent_jax.generators import stylegan2 as family
from ganlatent_jax.nets import upfirdn
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, check_tree_shapes, conv_oihw_to_hwio
from ganlatent_jax.port.keys import linear_to_dense
from ganlatent_jax.port.torch_pickle import flatten_state_dict

NAME = "stylegan2_rosinality"
_SIGNATURE_KEYS = ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "style.1.weight")


def _generator_state(checkpoint: Any) -> dict[str, np.ndarray] | None:
  """The g_ema state dict inside a checkpoint (flat), or None if there is none."""
  if not isinstance(checkpoint, dict):
    return None
  state = checkpoint.get("g_ema", checkpoint)
  if not isinstance(state, dict):
    return None
  return flatten_state_dict(state)


def sniff(path: str, checkpoint: Any) -> bool:
  state = _generator_state(checkpoint)
  if state is None or not all(k in state for k in _SIGNATURE_KEYS):
    return False
  # RGB output: tells the plain generator apart from SWAGAN (wavelet ToRGB with 12 channels).
  return np.ndim(state["to_rgb1.conv.weight"]) == 5 and state["to_rgb1.conv.weight"].shape[1] == 3


def _infer_blur_kernel(state: dict[str, np.ndarray]) -> list[float]:
  """The 1-D blur kernel behind the stored (normalized, ×4) 2-D buffers; upstream's [1,3,3,1] when they match it."""
  buffers = [k for k in state if k.endswith(".blur.kernel") or k.endswith(".upsample.kernel")]
  if not buffers:
    return list(family.DEFAULT_BLUR_KERNEL)
  k2d = np.asarray(state[buffers[0]], np.float64)
  default = upfirdn.make_kernel(family.DEFAULT_BLUR_KERNEL) * 4
  if k2d.shape == default.shape and np.allclose(k2d, default, atol=1e-6):
    return list(family.DEFAULT_BLUR_KERNEL)
  k1d = k2d.sum(axis=1)
  return list(k1d / k1d.sum())


def _infer_channel_multiplier(channels: dict[int, int], args: Any) -> int:
  if isinstance(args, dict) and "channel_multiplier" in args:
    return int(args["channel_multiplier"])
  if 64 in channels and (2 * channels[64]) % channels[4] == 0:
    return max(1, 2 * channels[64] // channels[4])  # upstream: channels[64] = 256·cm, channels[4] = 512
  return 2  # below 64 px the multiplier does not change the architecture; upstream's default


def config_from_state(state: dict[str, np.ndarray], source: str, args: Any = None, *,
                      has_latent_avg: bool = False, lr_mlp: float = 0.01,
                      blur_kernel: Sequence[float] | None = None) -> dict[str, Any]:
  """Architecture read from tensor shapes (fails naming the key that is missing or odd)."""
  def need(key):
    if key not in state:
      raise CheckpointKeyError(f"{source}: not a StyleGAN2 generator state dict, missing key {key!r}")
    return np.asarray(state[key])

  style_ids = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
  n_mlp = len(style_ids)
  if n_mlp == 0:
    need("style.1.weight")
  style_dim = int(need("style.1.weight").shape[1])
  num_rgbs = len({m.group(1) for k in state if (m := re.fullmatch(r"to_rgbs\.(\d+)\.conv\.weight", k))})
  size = 2 ** (2 + num_rgbs)
  channels = {4: int(need("input.input").shape[1])}
  for j in range(num_rgbs):
    weight = need(f"convs.{2 * j}.conv.weight")
    if weight.ndim != 5:
      raise CheckpointKeyError(f"{source}: convs.{2 * j}.conv.weight has shape {weight.shape}, expected 5-D "
                               f"(1, out, in, k, k)")
    channels[2 ** (3 + j)] = int(weight.shape[1])
  return family.make_config(size=size, style_dim=style_dim, n_mlp=n_mlp,
                            channel_multiplier=_infer_channel_multiplier(channels, args), channels=channels,
                            blur_kernel=_infer_blur_kernel(state) if blur_kernel is None else blur_kernel,
                            lr_mlp=lr_mlp, has_latent_avg=has_latent_avg)


def _take(reader: StateDictReader, key: str, shape: tuple[int, ...]) -> np.ndarray:
  """`reader.take`, but a mis-shaped tensor becomes a placeholder (reported by `finish`) so conversion continues."""
  value = reader.take(key, shape)
  return value if value.shape == tuple(shape) else np.zeros(shape, np.float32)


def _linear(reader: StateDictReader, prefix: str, in_dim: int, out_dim: int) -> dict[str, np.ndarray]:
  return {"kernel": linear_to_dense(_take(reader, f"{prefix}.weight", (out_dim, in_dim))),
          "bias": _take(reader, f"{prefix}.bias", (out_dim,))}


def _modulated_conv(reader: StateDictReader, prefix: str, in_ch: int, out_ch: int, k: int, style_dim: int):
  weight = _take(reader, f"{prefix}.weight", (1, out_ch, in_ch, k, k))
  return {"kernel": conv_oihw_to_hwio(weight[0]),
          "modulation": _linear(reader, f"{prefix}.modulation", style_dim, in_ch)}


def _check_fir_buffer(reader: StateDictReader, key: str, expected: np.ndarray, problems: list[str]):
  stored = reader.take(key, expected.shape)
  if stored.shape == expected.shape and not np.allclose(stored, expected, atol=1e-6):
    problems.append(f"{key}: stored FIR kernel differs from the configured blur kernel")


def convert_state_dict(state: dict[str, np.ndarray], source: str, *, latent_avg: np.ndarray | None = None,
                       args: Any = None, lr_mlp: float = 0.01, blur_kernel: Sequence[float] | None = None):
  """A flat g_ema state dict → (config, variables) as numpy; refuses missing/unexpected/mis-shaped keys by name."""
  config = config_from_state(state, source, args, has_latent_avg=latent_avg is not None, lr_mlp=lr_mlp,
                             blur_kernel=blur_kernel)
  reader = StateDictReader(state, source)
  style_dim, size = config["style_dim"], config["size"]
  width = {r: c for r, c in config["channels"]}
  fir = upfirdn.make_kernel(config["blur_kernel"]) * 4  # both Blur (upsample_factor 2) and Upsample store ×4
  fir_problems: list[str] = []

  params: dict[str, Any] = {}
  for i in range(config["n_mlp"]):
    params[f"style_{i}"] = _linear(reader, f"style.{i + 1}", style_dim, style_dim)
  params["input"] = np.transpose(_take(reader, "input.input", (1, width[4], 4, 4)), (0, 2, 3, 1))

  def styled_conv(prefix, in_ch, out_ch, upsample):
    if upsample:
      _check_fir_buffer(reader, f"{prefix}.conv.blur.kernel", fir, fir_problems)
    return {"conv": _modulated_conv(reader, f"{prefix}.conv", in_ch, out_ch, 3, style_dim),
            "noise_strength": _take(reader, f"{prefix}.noise.weight", (1,)).reshape(()),
            "bias": _take(reader, f"{prefix}.activate.bias", (out_ch,))}

  def to_rgb(prefix, in_ch, upsample):
    if upsample:
      _check_fir_buffer(reader, f"{prefix}.upsample.kernel", fir, fir_problems)
    return {"conv": _modulated_conv(reader, f"{prefix}.conv", in_ch, 3, 1, style_dim),
            "bias": _take(reader, f"{prefix}.bias", (1, 3, 1, 1)).reshape(3)}

  params["conv1"] = styled_conv("conv1", width[4], width[4], False)
  params["to_rgb1"] = to_rgb("to_rgb1", width[4], False)
  in_ch = width[4]
  for j in range(int(math.log2(size)) - 2):
    out_ch = width[2 ** (3 + j)]
    params[f"convs_{2 * j}"] = styled_conv(f"convs.{2 * j}", in_ch, out_ch, True)
    params[f"convs_{2 * j + 1}"] = styled_conv(f"convs.{2 * j + 1}", out_ch, out_ch, False)
    params[f"to_rgbs_{j}"] = to_rgb(f"to_rgbs.{j}", out_ch, True)
    in_ch = out_ch

  buffers: dict[str, np.ndarray] = {}
  for i in range(family.num_noise_layers(size)):
    res = family.noise_resolution(i)
    buffers[f"noise_{i}"] = np.transpose(_take(reader, f"noises.noise_{i}", (1, 1, res, res)), (0, 2, 3, 1))
  if latent_avg is not None:
    latent_avg = np.asarray(latent_avg, np.float32).reshape(-1)
    if latent_avg.shape != (style_dim,):
      raise CheckpointKeyError(f"{source}: latent_avg has shape {latent_avg.shape}, expected ({style_dim},)")
    buffers["latent_avg"] = latent_avg

  reader.finish()
  if fir_problems:
    raise CheckpointKeyError(f"{source}: " + "; ".join(fir_problems) + f" (configured {config['blur_kernel']})")
  variables = {"params": params, "buffers": buffers}
  check_tree_shapes(family.abstract_variables(config), variables, source)
  return config, variables


def convert(path: str, checkpoint: Any):
  state = _generator_state(checkpoint)
  if state is None:
    raise CheckpointKeyError(f"{path}: not a StyleGAN2 checkpoint (expected a dict with 'g_ema' or a state dict)")
  latent_avg = checkpoint.get("latent_avg") if "g_ema" in checkpoint else None
  return convert_state_dict(state, str(path), latent_avg=latent_avg, args=checkpoint.get("args"))
