"""SeFa (Shen & Zhou 2021), closed-form factorisation of the latent-to-first-features weights.

Variants:
  'genforce'   (the paper's code): W = the latent→style weights of the chosen W+ layers, concatenated into a
               latent_dim × outputs matrix, each column L2-normalised; directions = eigenvectors of W·Wᵀ sorted by
               eigenvalue. StyleGAN2 layer i is the i-th W+ slot: 0 → conv1, 1..n−2 → convs.(i−1), n−1 → the last
               ToRGB (as genforce's `output` layer).
  'rosinality' (closed_form_factorization.py): the raw modulation weights of every layer whose upstream key contains
               'modulation' but not 'to_rgbs' (so conv1, convs.* and — an upstream quirk kept on purpose — to_rgb1),
               stacked as outputs × latent_dim; directions = right singular vectors, eigenvalues = σ².
  'sre'        (SRE's upstream start, VSSILPA/disentagled_latent_dirs `train_closed_form`): 'rosinality' without
               the last of those layers (its `weight_mat[:-1]`, the last `convs.*`). On testbed:shapes3d its first ten
               directions meet genforce's at |cos| 1.00, 1.00, 0.99, 0.90, then 0.16–0.63; rosinality's at 0.96–1.00.
  'first_layer' for generators whose latent enters one linear map (SN-GAN's first Linear, ProgGAN's 4×4 conv on the
               1×1 latent, DCGAN's projection, BigGAN's gen_z restricted to the z rows, an oracle's A): that map as
               latent_dim × outputs, columns L2-normalised as genforce does, eigenvectors of W·Wᵀ.
Directions come back sorted by eigenvalue (descending, `order="sorted"`, our default) with the eigenvalues;
`order="upstream"` keeps genforce sefa.py's order instead: float32 W, `np.linalg.eig(W·Wᵀ)` unsorted, LAPACK's signs.
'genforce' also covers genforce's StyleGAN v1 (`stylegan`, the style weights of layer i) and StyleGAN2-ADA (W+ slot
i's affine); 'first_layer' genforce's PGGAN (`pggan`, layer0's weight in sefa.py's column order).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ganlatent_jax.directions.base import Directions
from ganlatent_jax.generators.base import Generator

VARIANTS = ("genforce", "rosinality", "sre", "first_layer")


def _params(gen: Generator):
  return gen.variables["params"]


def _stylegan2_slot_kernels(gen: Generator) -> list[np.ndarray]:
  """Modulation kernels (style_dim, in_channels) in W+ slot order (conv1, convs.*, last ToRGB)."""
  params = _params(gen)
  num_convs = sum(1 for name in params if name.startswith("convs_"))
  num_rgbs = sum(1 for name in params if name.startswith("to_rgbs_"))
  kernels = [params["conv1"]["conv"]["modulation"]["kernel"]]
  kernels += [params[f"convs_{i}"]["conv"]["modulation"]["kernel"] for i in range(num_convs)]
  kernels.append(params[f"to_rgbs_{num_rgbs - 1}"]["conv"]["modulation"]["kernel"] if num_rgbs
                 else params["to_rgb1"]["conv"]["modulation"]["kernel"])
  return [np.asarray(k, np.float64) for k in kernels]


def _stylegan_v1_style_kernels(gen: Generator) -> list[np.ndarray]:
  """genforce StyleGAN (v1): layer i's style weight (w_dim, 2C), i.e. genforce's `style.weight.T`."""
  params = _params(gen)
  return [np.asarray(params[f"layers_{i}"]["style_kernel"]) for i in range(gen.info.num_ws)]


def _stylegan2_ada_slot_kernels(gen: Generator) -> list[np.ndarray]:
  """StyleGAN2-ADA affine kernels (w_dim, in) in W+ slot order: b4.conv1, then conv0/conv1 per block, last ToRGB."""
  synthesis = _params(gen)["synthesis_net"]
  blocks = sorted(synthesis, key=lambda name: int(name[1:]))
  kernels = [synthesis[name][layer]["affine"]["kernel"] for name in blocks for layer in ("conv0", "conv1")
             if layer in synthesis[name]]
  return [np.asarray(k) for k in kernels + [synthesis[blocks[-1]]["torgb"]["affine"]["kernel"]]]


# family → latent→style kernels of its W+ slots, each (w_dim, outputs), for the 'genforce' variant.
SLOT_KERNELS: dict[str, Callable[[Generator], list[np.ndarray]]] = {
    "stylegan2": _stylegan2_slot_kernels, "stylegan": _stylegan_v1_style_kernels,
    "stylegan2_ada": _stylegan2_ada_slot_kernels}


def _stylegan2_rosinality_kernels(gen: Generator) -> list[np.ndarray]:
  params = _params(gen)
  num_convs = sum(1 for name in params if name.startswith("convs_"))
  names = ["conv1", "to_rgb1"] + [f"convs_{i}" for i in range(num_convs)]
  return [np.asarray(params[name]["conv"]["modulation"]["kernel"], np.float64) for name in names]


def _first_layer_weight(gen: Generator) -> np.ndarray:
  """latent_dim × outputs matrix of the generator's first linear map of z."""
  family = gen.info.family
  if family not in FIRST_LAYER:
    raise ValueError(f"SeFa 'first_layer' has no accessor for a {family} generator; "
                     f"families with one: {sorted(FIRST_LAYER)}")
  return np.asarray(FIRST_LAYER[family](gen), np.float64)


def _dense_kernel_rows(name: str, rows: Callable[[Generator], int] | None = None):
  """A dense layer's kernel (in, out); with `rows`, only the first rows(gen) inputs (the z part of a concat)."""
  def get(gen: Generator) -> np.ndarray:
    kernel = np.asarray(_params(gen)[name]["kernel"])
    return kernel[:rows(gen)] if rows else kernel
  return get


def _proggan_first_conv(gen: Generator) -> np.ndarray:
  """Block 0 is a 4×4 conv applied to the 1×1 latent with padding 3: a linear map z → 4×4×C (HWIO kernel)."""
  kernel = np.asarray(_params(gen)["blocks_0"]["conv"]["kernel"])  # (kh, kw, latent, out)
  return kernel.transpose(2, 0, 1, 3).reshape(kernel.shape[2], -1)


def _pggan_genforce_first_conv(gen: Generator) -> np.ndarray:
  """genforce PGGAN layer0 as sefa.py takes it: weight.flip(2, 3).permute(1, 0, 2, 3).flatten(1)."""
  kernel = np.asarray(_params(gen)["layers_0"]["conv"]["kernel"])[::-1, ::-1]  # (kh, kw, latent, out), flipped
  return kernel.transpose(2, 3, 0, 1).reshape(kernel.shape[2], -1)


# family → the first linear map of z as (latent_dim, outputs).
FIRST_LAYER: dict[str, Callable[[Generator], np.ndarray]] = {
    "sngan": _dense_kernel_rows("dense"),
    "dcgan": _dense_kernel_rows("project"),
    "oracle": _dense_kernel_rows("mapping"),  # the entangling map A (kernel Aᵀ): z → w
    "proggan": _proggan_first_conv,
    "pggan": _pggan_genforce_first_conv,
    # gen_z acts on concat(z, class embedding); the z rows are the latent's map.
    "biggan": _dense_kernel_rows("gen_z", rows=lambda gen: gen.latent_dim),
}


def _eig_sorted(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Eigen-decomposition of W·Wᵀ (symmetric), descending."""
  values, vectors = np.linalg.eigh(weight @ weight.T)
  order = np.argsort(values)[::-1]
  return vectors[:, order], values[order]


def _eig_upstream(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """genforce sefa.py's factorisation as written: float32 (weights are stored float32, so the cast is exact),
  `np.linalg.eig` order and signs (not sorted)."""
  weight = weight.astype(np.float32)
  weight = weight / np.linalg.norm(weight, axis=0, keepdims=True)
  values, vectors = np.linalg.eig(weight.dot(weight.T))
  return np.real(vectors), np.real(values)


def _normalize_columns(weight: np.ndarray) -> np.ndarray:
  return weight / np.maximum(np.linalg.norm(weight, axis=0, keepdims=True), 1e-12)


def _space_for_layers(layers: Sequence[int] | None, num_ws: int) -> tuple[str, tuple[int, int] | None]:
  if layers is None or sorted(layers) == list(range(num_ws)):
    return "w", None
  layers = sorted(layers)
  if layers != list(range(layers[0], layers[-1] + 1)):
    raise ValueError(f"SeFa layers={layers} must be a contiguous range of W+ slots to be applied as one edit")
  return "w+", (layers[0], layers[-1] + 1)


def sefa(gen: Generator, k: int, variant: str = "genforce", layers: Sequence[int] | None = None,
         order: str = "sorted") -> tuple[Directions, np.ndarray]:
  """The top-k SeFa directions and all eigenvalues (descending; `order="upstream"`: genforce's eig order)."""
  if variant not in VARIANTS:
    raise ValueError(f"SeFa variant={variant!r}; expected one of {VARIANTS}")
  if order not in ("sorted", "upstream"):
    raise ValueError(f"SeFa order={order!r}; expected 'sorted' or 'upstream'")
  stacked_svd = variant in ("rosinality", "sre")   # rosinality's layout: raw stacked kernels, right singular vectors
  if order == "upstream" and stacked_svd:
    raise ValueError("SeFa order='upstream' reproduces genforce's sefa.py: variant 'genforce' or 'first_layer'")
  family = gen.info.family
  if (stacked_svd and family != "stylegan2") or (variant == "genforce" and family not in SLOT_KERNELS):
    raise ValueError(f"SeFa variant {variant!r} needs a StyleGAN generator "
                     f"({'stylegan2' if stacked_svd else sorted(SLOT_KERNELS)}; got {family}); "
                     f"use variant='first_layer'")
  eig = _eig_upstream if order == "upstream" else (lambda w: _eig_sorted(_normalize_columns(w)))
  if variant == "genforce":
    kernels = SLOT_KERNELS[family](gen)
    chosen = list(range(len(kernels))) if layers is None else list(layers)
    bad = [i for i in chosen if not 0 <= i < len(kernels)]
    if bad:
      raise ValueError(f"SeFa layers {bad} out of range: the generator has W+ slots 0..{len(kernels) - 1}")
    vectors, values = eig(np.concatenate([np.asarray(kernels[i], np.float64) for i in chosen], axis=1))
    space, layer_range = _space_for_layers(chosen, len(kernels))
  elif stacked_svd:
    if layers is not None:
      raise ValueError(f"SeFa variant {variant!r} stacks a fixed set of modulation layers; layers= is for 'genforce'")
    kernels = _stylegan2_rosinality_kernels(gen)
    stacked = np.concatenate(kernels[:-1] if variant == "sre" else kernels, axis=1).T  # outputs × latent_dim
    _, singular, vt = np.linalg.svd(stacked, full_matrices=False)
    vectors, values = vt.T, singular ** 2
    space, layer_range = "w", None
  else:
    if layers is not None:
      raise ValueError("SeFa variant 'first_layer' has no layer choice")
    vectors, values = eig(_first_layer_weight(gen))
    space, layer_range = "z", None
  if k > vectors.shape[1]:
    raise ValueError(f"SeFa k={k} exceeds the latent dimension {vectors.shape[1]}")
  directions = Directions(vectors[:, :k], space=space, layers=layer_range, meta=dict(
      method="sefa", variant=variant, layers=None if layers is None else list(layers), source=gen.info.source,
      order=order,
      eigenvalues=values[:k].tolist()))
  return directions, values
