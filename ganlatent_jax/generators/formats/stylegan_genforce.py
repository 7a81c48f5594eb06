"""genforce StyleGAN (v1) `.pth` (the SeFa / SRE model zoo) → `generators.stylegan` variables.

Containers as `pggan_genforce` (generator_smooth, else generator, else a bare state dict). Resolution, widths,
z/w dims, mapping depth and width and label size are read from the shapes. genforce's fused_scale is not recorded
in the weights (the fused layer keeps the (out, in, 3, 3) shape): its default 'auto' (fused at ≥ 128 px) is assumed,
as in every zoo model. Every key is mapped (the blur kernels must be [1,2,1]²/16; `lod` must be 0); anything
missing, extra or mis-shaped is refused by name.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ganlatent_jax.generators import stylegan as family
from ganlatent_jax.generators.formats.pggan_genforce import generator_state
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, check_tree_shapes, conv_oihw_to_hwio
from ganlatent_jax.port.keys import linear_to_dense

NAME = "stylegan_genforce"


def sniff(path: str, checkpoint: Any) -> bool:
  state = generator_state(checkpoint)
  return state is not None and "synthesis.layer0.const" in state and "truncation.w_avg" in state \
      and "mapping.dense0.weight" in state


def convert_state_dict(state: dict[str, np.ndarray], source: str, fused_scale: bool | str = "auto"):
  def need(key):
    if key not in state:
      raise CheckpointKeyError(f"{source}: not a genforce StyleGAN generator, missing key {key!r}")
    return np.asarray(state[key])

  num_dense = len([k for k in state if re.fullmatch(r"mapping\.dense\d+\.weight", k)])
  num_outputs = len([k for k in state if re.fullmatch(r"synthesis\.output\d+\.weight", k)])
  w_dim = int(need("truncation.w_avg").shape[0])
  label_size = int(need("mapping.label_weight").shape[0]) if "mapping.label_weight" in state else 0
  dense0 = need("mapping.dense0.weight")
  z_dim = dense0.shape[1] // (2 if label_size else 1)
  widths = {4 * 2 ** k: int(need(f"synthesis.layer{2 * k + 1}.weight").shape[0]) for k in range(num_outputs)}
  config = family.make_config(
      resolution=4 * 2 ** (num_outputs - 1), z_dim=int(z_dim), w_dim=w_dim, label_size=label_size,
      mapping_layers=num_dense, mapping_fmaps=int(dense0.shape[0]) if num_dense > 1 else w_dim,
      image_channels=int(need(f"synthesis.output{num_outputs - 1}.weight").shape[0]), fused_scale=fused_scale,
      channels=widths)
  reader = StateDictReader(state, source)
  problems: list[str] = []

  def take(key, shape):
    value = reader.take(key, shape)
    return value if value.shape == tuple(shape) else np.zeros(shape, np.float32)

  lod = reader.take("synthesis.lod", ())
  if lod.shape == () and float(lod) != 0:
    problems.append(f"synthesis.lod = {float(lod)} (mid-progressive-training; only lod 0 models are converted)")
  params: dict[str, Any] = {}
  in_dim = z_dim * (2 if label_size else 1)
  for i in range(num_dense):
    out_dim = w_dim if i == num_dense - 1 else config["mapping_fmaps"]
    params[f"dense_{i}"] = {"kernel": linear_to_dense(take(f"mapping.dense{i}.weight", (out_dim, in_dim))),
                            "bias": take(f"mapping.dense{i}.bias", (out_dim,))}
    in_dim = out_dim
  if label_size:
    params["label_weight"] = take("mapping.label_weight", (label_size, z_dim))
  buffers: dict[str, Any] = {"w_avg": take("truncation.w_avg", (w_dim,))}
  in_ch = 0
  for k, (res, width) in enumerate(config["channels"]):
    for i in (2 * k, 2 * k + 1):
      prefix = f"synthesis.layer{i}"
      layer: dict[str, Any] = {}
      if i == 0:
        layer["const"] = np.transpose(take(f"{prefix}.const", (1, width, 4, 4)), (0, 2, 3, 1))
      else:
        layer["kernel"] = conv_oihw_to_hwio(take(f"{prefix}.weight", (width, in_ch if i % 2 == 0 else width, 3, 3)))
      if i % 2 == 0 and i > 0:
        blur = take(f"{prefix}.blur.kernel", (width, 1, 3, 3))
        if not np.allclose(blur, family.BLUR[None, None], atol=1e-7):
          problems.append(f"{prefix}.blur.kernel is not [1,2,1]⊗[1,2,1]/16")
      layer["bias"] = take(f"{prefix}.bias", (width,))
      layer["noise_weight"] = take(f"{prefix}.apply_noise.weight", (width,))
      layer["style_kernel"] = linear_to_dense(take(f"{prefix}.style.weight", (2 * width, w_dim)))
      layer["style_bias"] = take(f"{prefix}.style.bias", (2 * width,))
      params[f"layers_{i}"] = layer
      buffers[f"layers_{i}"] = {"noise": np.transpose(take(f"{prefix}.apply_noise.noise", (1, 1, res, res)),
                                                      (0, 2, 3, 1))}
    params[f"outputs_{k}"] = {
        "kernel": conv_oihw_to_hwio(take(f"synthesis.output{k}.weight", (config["image_channels"], width, 1, 1))),
        "bias": take(f"synthesis.output{k}.bias", (config["image_channels"],))}
    in_ch = width
  reader.finish()
  if problems:
    raise CheckpointKeyError(f"{source}: " + "; ".join(problems))
  variables = {"params": params, "buffers": buffers}
  check_tree_shapes(family.abstract_variables(config), variables, source)
  return config, variables


def convert(path: str, checkpoint: Any):
  state = generator_state(checkpoint)
  if state is None:
    raise CheckpointKeyError(f"{path}: not a genforce checkpoint (expected a dict)")
  return convert_state_dict(state, str(path))
