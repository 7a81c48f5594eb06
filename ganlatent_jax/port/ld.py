"""GANLatentDiscovery checkpoints other than generators: latent deformators, shift predictors and run folders.

* `load_deformator(path, type, ...)` → (module, variables): a `models/deformator_<step>.pt` (a plain
  `LatentDeformator.state_dict()`); sizes come from the tensors. 'id' and 'random' save no tensors: pass their
  dimensions (and the random matrix, which upstream never saves).
* `load_shift_predictor(path)` → (module, variables): the LeNet predictor (`convnet.*`, `fc_logits.*`, `fc_shift.*`)
  or the ResNet-18 one (`features_extractor.*`, `type_estimator.*`, `shift_estimator.*`).
* `load_ld_run(run_dir)`: what upstream `loading.load_from_dir` restores from a `run_train.py` results folder.
Every apply is pure: `module.apply(variables, ...)` (see `apply_deformator`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ganlatent_jax.nets.ld import (DEFORMATOR_TYPES, LatentDeformator, LeNetShiftPredictor, ResNetShiftPredictor,
                                   deformator_direction_matrix)
from ganlatent_jax.port import torch_pickle
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, check_tree_shapes
from ganlatent_jax.port.sngan import take_batch_norm, take_conv, take_dense

__all__ = ["LDRun", "apply_deformator", "convert_deformator", "convert_shift_predictor", "deformator_direction_matrix",
           "load_deformator", "load_ld_run", "load_shift_predictor"]

ARGS_FILE = "args.json"
MODELS_DIR = "models"


def _read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  checkpoint = torch_pickle.load_torch_file(path)
  if not isinstance(checkpoint, dict):
    raise CheckpointKeyError(f"{path}: expected a state dict, got {type(checkpoint).__name__}")
  return torch_pickle.flatten_state_dict(checkpoint)


def _checked(module, variables, example_args: tuple, source: str):
  """Compares the converted tree with the module's own (abstract) init, naming any difference."""
  expected = jax.eval_shape(module.init, jax.random.PRNGKey(0), *example_args)
  check_tree_shapes(expected, variables, source)
  return module, jax.tree_util.tree_map(jnp.asarray, variables)


# --- deformators ---------------------------------------------------------------------------------------------------
def convert_deformator(state_dict: dict[str, np.ndarray], type: str, source: str = "deformator", *,
                       input_dim: Optional[int] = None, out_dim: Optional[int] = None,
                       shift_dim: Optional[int] = None, random_matrix: Optional[np.ndarray] = None):
  """A flat `LatentDeformator` state dict → (module, variables).

  input_dim/out_dim are read from the tensors where saved; given ones are checked against them. `shift_dim` is the
  generator's latent size (upstream pads/truncates the output to it; default out_dim). 'random' needs
  `random_matrix` (out_dim, input_dim) — the upstream forward uses `x @ matrix.T`.
  """
  if type not in DEFORMATOR_TYPES:
    raise ValueError(f"{source}: unknown deformator type {type!r}; known: {DEFORMATOR_TYPES}")
  reader = StateDictReader(state_dict, source)
  variables: dict[str, Any] = {}
  inner_dim = 1024

  def agree(name: str, given: Optional[int], found: int) -> int:
    if given is not None and int(given) != int(found):
      raise CheckpointKeyError(f"{source}: {name}={given} was given but the {type!r} deformator weights have {found}")
    return int(found)

  if type == "fc":
    fc1 = take_dense(reader, "fc1")
    d_in, inner_dim = fc1["kernel"].shape
    params = {"fc1": fc1, "fc2": take_dense(reader, "fc2", inner_dim, inner_dim),
              "fc3": take_dense(reader, "fc3", inner_dim, inner_dim), "fc4": take_dense(reader, "fc4", inner_dim)}
    stats = {}
    for i in (1, 2, 3):
      params[f"bn{i}"], stats[f"bn{i}"] = take_batch_norm(reader, f"bn{i}", inner_dim)
    input_dim = agree("input_dim", input_dim, d_in)
    out_dim = agree("out_dim", out_dim, params["fc4"]["kernel"].shape[1])
    variables = {"params": params, "batch_stats": stats}
  elif type in ("linear", "proj"):
    linear = take_dense(reader, "linear", bias=reader.has("linear.bias"))
    input_dim = agree("input_dim", input_dim, linear["kernel"].shape[0])
    out_dim = agree("out_dim", out_dim, linear["kernel"].shape[1])
    if "bias" not in linear:  # some forks save bias=False linears; the module always has a bias
      linear["bias"] = np.zeros((out_dim,), np.float32)
    variables = {"params": {"linear": linear}}
  elif type == "ortho":
    log_mat_half = reader.take("log_mat_half")
    if log_mat_half.ndim != 2 or log_mat_half.shape[0] != log_mat_half.shape[1]:
      raise CheckpointKeyError(f"{source}: log_mat_half has shape {log_mat_half.shape}, expected a square matrix")
    input_dim = agree("input_dim", input_dim, log_mat_half.shape[0])
    out_dim = agree("out_dim", out_dim, log_mat_half.shape[0])
    variables = {"params": {"log_mat_half": log_mat_half}}
  elif type == "random":
    if random_matrix is None:
      raise ValueError(f"{source}: a 'random' deformator's matrix is not saved by upstream; pass random_matrix "
                       f"(out_dim, input_dim)")
    random_matrix = np.asarray(random_matrix, np.float32)
    if random_matrix.ndim != 2:
      raise ValueError(f"{source}: random_matrix must be 2-D (out_dim, input_dim), got {random_matrix.shape}")
    out_dim = agree("out_dim", out_dim, random_matrix.shape[0])
    input_dim = agree("input_dim", input_dim, random_matrix.shape[1])
    variables = {"constants": {"matrix": random_matrix}}
  else:  # id
    dim = input_dim or out_dim or shift_dim
    if dim is None:
      raise ValueError(f"{source}: an 'id' deformator saves no tensors; pass input_dim or shift_dim "
                       f"(load_ld_run: latent_dim)")
    input_dim = out_dim = int(dim)
  reader.finish()
  module = LatentDeformator(type=type, input_dim=int(input_dim), out_dim=int(out_dim),
                            shift_dim=None if shift_dim is None else int(shift_dim), inner_dim=int(inner_dim))
  return _checked(module, variables, (jnp.zeros((1, module.input_dim), jnp.float32),), source)


def load_deformator(path: str | os.PathLike, type: str, *, input_dim: Optional[int] = None,
                    out_dim: Optional[int] = None, shift_dim: Optional[int] = None,
                    random_matrix: Optional[np.ndarray] = None):
  """`deformator_<step>.pt` → (LatentDeformator module, variables). See `convert_deformator`."""
  return convert_deformator(_read_state_dict(path), type, os.fspath(path), input_dim=input_dim, out_dim=out_dim,
                            shift_dim=shift_dim, random_matrix=random_matrix)


def apply_deformator(module: LatentDeformator, variables, basis_shift: jax.Array) -> jax.Array:
  """Pure, eval-mode deformator forward: (B, input_dim) → (B, shift_dim)."""
  return module.apply(variables, basis_shift)


# --- shift predictors ----------------------------------------------------------------------------------------------
def _convert_lenet(reader: StateDictReader):
  conv1 = take_conv(reader, "convnet.0")
  width3, channels2 = conv1["kernel"].shape[3], conv1["kernel"].shape[2]
  if width3 % 3 or channels2 % 2:
    raise CheckpointKeyError(f"{reader.source}: convnet.0.weight has (out, in) = ({width3}, {channels2}); LeNet "
                             f"expects (3·width, 2·channels)")
  width, channels = width3 // 3, channels2 // 2
  params, stats = {"conv1": conv1}, {}
  params["bn1"], stats["bn1"] = take_batch_norm(reader, "convnet.1", 3 * width)
  params["conv2"] = take_conv(reader, "convnet.4", 3 * width, 8 * width)
  params["bn2"], stats["bn2"] = take_batch_norm(reader, "convnet.5", 8 * width)
  params["conv3"] = take_conv(reader, "convnet.8", 8 * width, 60 * width)
  params["bn3"], stats["bn3"] = take_batch_norm(reader, "convnet.9", 60 * width)
  for name, upstream in (("logits", "fc_logits"), ("shift", "fc_shift")):
    params[f"{name}_hidden"] = take_dense(reader, f"{upstream}.0", 60 * width, 42 * width)
    params[f"{name}_bn"], stats[f"{name}_bn"] = take_batch_norm(reader, f"{upstream}.1", 42 * width)
    params[f"{name}_out"] = take_dense(reader, f"{upstream}.3", 42 * width)
  num_directions = params["logits_out"]["kernel"].shape[1]
  if params["shift_out"]["kernel"].shape[1] != 1:
    reader.misshaped.append(f"fc_shift.3.weight: checkpoint {params['shift_out']['kernel'].shape[::-1]}, "
                            f"expected (1, {42 * width})")
  reader.finish()
  module = LeNetShiftPredictor(num_directions=int(num_directions), channels=int(channels), width=int(width))
  # LeNet needs ≥ 32×32 inputs (three VALID 5×5 convs and two pools); the example only fixes parameter shapes.
  example = jnp.zeros((1, 32, 32, channels), jnp.float32)
  return _checked(module, {"params": params, "batch_stats": stats}, (example, example), reader.source)


def _convert_resnet(reader: StateDictReader):
  from ganlatent_jax.port.torchvision import read_resnet  # imports nets.resnet; only needed here
  config, resnet_variables = read_resnet(reader, prefix="features_extractor.", keep_fc=False,
                                         heads=("type_estimator", "shift_estimator"))
  reader.finish()
  heads = dict(config["heads"])
  if heads["shift_estimator"] != 1:
    raise CheckpointKeyError(f"{reader.source}: shift_estimator.weight has {heads['shift_estimator']} outputs, "
                             f"expected 1")
  in_channels = int(config["in_channels"])
  if in_channels % 2:
    raise CheckpointKeyError(f"{reader.source}: features_extractor.conv1.weight has {in_channels} input channels; "
                             f"the predictor concatenates two images, so it must be even")
  module = ResNetShiftPredictor(num_directions=int(heads["type_estimator"]), stem_width=int(config["stem_width"]),
                                stage_widths=tuple(int(w) for w in config["stage_widths"]),
                                blocks_per_stage=tuple(int(d) for d in config["blocks_per_stage"]))
  variables = {collection: {"features_extractor": tree} for collection, tree in resnet_variables.items()}
  example = jnp.zeros((1, 32, 32, in_channels // 2), jnp.float32)
  return _checked(module, variables, (example, example), reader.source)


def convert_shift_predictor(state_dict: dict[str, np.ndarray], source: str = "shift_predictor"):
  """A flat shift-predictor state dict (LeNet or ResNet layout, detected by its keys) → (module, variables)."""
  reader = StateDictReader(state_dict, source)
  if "convnet.0.weight" in state_dict:
    return _convert_lenet(reader)
  if any(k.startswith("features_extractor.") for k in state_dict):
    return _convert_resnet(reader)
  raise CheckpointKeyError(f"{source}: not a GANLatentDiscovery shift predictor (neither 'convnet.0.weight' nor "
                           f"'features_extractor.*'); keys start with {sorted(state_dict)[:5]}")


def load_shift_predictor(path: str | os.PathLike):
  """`shift_predictor_<step>.pt` → (module, variables); apply as `module.apply(variables, img1, img2)` (NHWC) →
  (logits (B, K), shift (B,))."""
  return convert_shift_predictor(_read_state_dict(path), os.fspath(path))


# --- run folders ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LDRun:
  """A `run_train.py` results folder, restored (eval mode, like upstream `loading.load_from_dir`)."""
  run_dir: str
  step: int
  args: dict[str, Any]
  deformator: LatentDeformator
  deformator_variables: Any
  shift_predictor: Any               # None when the folder has no shift_predictor_<step>.pt
  shift_predictor_variables: Any
  generator_path: Optional[str]      # args['gan_weights'] resolved to an existing path, if it can be

  def deform(self, basis_shift: jax.Array) -> jax.Array:
    return self.deformator.apply(self.deformator_variables, basis_shift)

  def predict_shift(self, images: jax.Array, shifted_images: jax.Array) -> tuple[jax.Array, jax.Array]:
    if self.shift_predictor is None:
      raise ValueError(f"{self.run_dir}: no shift predictor was saved for step {self.step}")
    return self.shift_predictor.apply(self.shift_predictor_variables, images, shifted_images)

  def direction_matrix(self) -> jax.Array:
    return deformator_direction_matrix(self.deformator, self.deformator_variables)


_STEP_FILE = re.compile(r"^deformator_(\d+)\.pt$")


def available_steps(run_dir: str | os.PathLike) -> list[int]:
  models_dir = os.path.join(run_dir, MODELS_DIR)
  if not os.path.isdir(models_dir):
    raise FileNotFoundError(f"{run_dir}: no '{MODELS_DIR}/' folder (not a GANLatentDiscovery run directory)")
  return sorted(int(m.group(1)) for m in map(_STEP_FILE.match, os.listdir(models_dir)) if m)


def _resolve_generator_path(run_dir: str, weights: Any) -> Optional[str]:
  if not weights:
    return None
  candidates = [weights] if os.path.isabs(weights) else [
      os.path.join(run_dir, weights), os.path.join(os.path.dirname(os.path.abspath(run_dir)), weights), weights]
  return next((os.path.abspath(c) for c in candidates if os.path.exists(c)), None)


def load_ld_run(run_dir: str | os.PathLike, step: Optional[int] = None, *, latent_dim: Optional[int] = None,
                random_matrix: Optional[np.ndarray] = None) -> LDRun:
  """Reads `args.json` and `models/deformator_<step>.pt` (+ `shift_predictor_<step>.pt`), latest step by default.

  `latent_dim` is the generator's latent size (upstream's `G.dim_shift`), needed only for 'id' deformators and to
  pad/truncate the deformator output when `args['max_latent_dim']` is smaller than the latent.
  """
  run_dir = os.fspath(run_dir)
  args_path = os.path.join(run_dir, ARGS_FILE)
  try:
    with open(args_path) as f:
      args = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{args_path}: cannot read the run's args.json ({e})") from e
  steps = available_steps(run_dir)
  if step is None:
    if not steps:
      raise FileNotFoundError(f"{run_dir}/{MODELS_DIR}: no deformator_<step>.pt file")
    step = steps[-1]
  elif step not in steps:
    raise FileNotFoundError(f"{run_dir}/{MODELS_DIR}: no deformator_{step}.pt (available steps: {steps})")
  deformator_type = args.get("deformator", "fc")
  # Upstream: input_dim = directions_count, out_dim = max_latent_dim, each defaulting to the latent size; the saved
  # tensors fix them here, the args are only checked against them.
  deformator, deformator_variables = load_deformator(
      os.path.join(run_dir, MODELS_DIR, f"deformator_{step}.pt"), deformator_type,
      input_dim=args.get("directions_count"), out_dim=args.get("max_latent_dim"), shift_dim=latent_dim,
      random_matrix=random_matrix)
  predictor_path = os.path.join(run_dir, MODELS_DIR, f"shift_predictor_{step}.pt")
  predictor, predictor_variables = (load_shift_predictor(predictor_path) if os.path.isfile(predictor_path)
                                    else (None, None))
  return LDRun(run_dir=run_dir, step=int(step), args=args, deformator=deformator,
               deformator_variables=deformator_variables, shift_predictor=predictor,
               shift_predictor_variables=predictor_variables,
               generator_path=_resolve_generator_path(run_dir, args.get("gan_weights")))
