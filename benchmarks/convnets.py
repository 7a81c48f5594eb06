"""Convnet step benchmarks on the library's own networks, printing the harness JSON line.

  python benchmarks/convnets.py --model=resnet18 --mode=train --batch=64 --size=64     # fwd+bwd+Adam
  python benchmarks/convnets.py --model=dcgan_g --mode=latent_grad --batch=64          # fwd+bwd w.r.t. z
  python benchmarks/convnets.py --model=stylegan2 --mode=w_grad --batch=32 --size=64   # fwd+bwd w.r.t. W

`benchmarks/torch_twins.py` times the same networks in PyTorch and imports the FLOP formulas below (pure Python, no
jax import at module level), so both frameworks report GFLOP/s from the same count: 2·MACs of the convolutions and
dense layers of the forward pass, ×3 for a step with a backward pass (backward ≈ 2× forward).
`--lowering=xla` forces the reference convolution lowering everywhere (to measure what the fast lowerings buy).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The networks' shapes, shared with torch_twins.py.
RESNET18_WIDTHS = (64, 128, 256, 512)
DCGAN_CHANNELS = (256, 128, 64, 32)
DCGAN_LATENT = 64
DCGAN_KERNEL = 5
STYLEGAN2_STYLE_DIM = 512
STYLEGAN2_N_MLP = 3
STYLEGAN2_WIDTH = 64
DEFAULTS = {"resnet18": ("train", 64, 64), "dcgan_g": ("latent_grad", 64, 64), "stylegan2": ("w_grad", 32, 64)}


def _conv_out(n, k, s, p):
  return (n + 2 * p - k) // s + 1


def resnet18_forward_macs(size: int, classes: int = 1000) -> int:
  macs, n, c = 0, _conv_out(size, 7, 2, 3), 3
  macs += n * n * 49 * c * 64
  n, c = _conv_out(n, 3, 2, 1), 64  # max pool
  for stage, width in enumerate(RESNET18_WIDTHS):
    for block in range(2):
      stride = 2 if stage > 0 and block == 0 else 1
      out = _conv_out(n, 3, stride, 1)
      macs += out * out * 9 * c * width + out * out * 9 * width * width
      if stride != 1 or c != width:
        macs += out * out * c * width
      n, c = out, width
  return macs + c * classes


def dcgan_forward_macs() -> int:
  macs, n, c = DCGAN_LATENT * 16 * DCGAN_CHANNELS[0], 4, DCGAN_CHANNELS[0]
  for width in (*DCGAN_CHANNELS[1:], 3):
    macs += n * n * DCGAN_KERNEL ** 2 * c * width  # every (input pixel, tap) product of the transposed conv
    n, c = 2 * n, width
  return macs


def stylegan2_forward_macs(size: int) -> int:
  d, c = STYLEGAN2_STYLE_DIM, STYLEGAN2_WIDTH
  macs = STYLEGAN2_N_MLP * d * d
  num_convs = 1 + 2 * (int(math.log2(size)) - 2)
  num_rgb = int(math.log2(size)) - 1
  macs += (num_convs + num_rgb) * d * c  # modulation
  macs += 16 * 9 * c * c + 16 * c * 3
  res = 8
  while res <= size:
    macs += (res // 2) ** 2 * 9 * c * c  # stride-2 transposed 3×3
    macs += res * res * 9 * c * c + res * res * c * 3
    res *= 2
  return macs


def flops_per_step(model: str, batch: int, size: int) -> float:
  forward = {"resnet18": lambda: resnet18_forward_macs(size), "dcgan_g": dcgan_forward_macs,
             "stylegan2": lambda: stylegan2_forward_macs(size)}[model]()
  return 3 * 2 * forward * batch


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", choices=sorted(DEFAULTS), default="resnet18")
  parser.add_argument("--mode", default=None, help="train (resnet18), latent_grad (dcgan_g), w_grad (stylegan2)")
  parser.add_argument("--batch", type=int, default=None)
  parser.add_argument("--size", type=int, default=None)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--lowering", choices=["auto", "xla"], default="auto")
  parser.add_argument("--no-cpu-settings", dest="cpu_settings", action="store_false",
                      help="skip ganlatent_jax.platform's XLA flags and malloc settings")
  args = parser.parse_args(argv)
  mode, batch, size = DEFAULTS[args.model]
  if args.mode not in (None, mode):
    parser.error(f"--model={args.model} supports --mode={mode}")
  args.mode, args.batch, args.size = mode, args.batch or batch, args.size or size
  if args.model == "dcgan_g" and args.size != 4 * 2 ** len(DCGAN_CHANNELS):
    parser.error(f"dcgan_g produces {4 * 2 ** len(DCGAN_CHANNELS)}² images")
  return args


def _force_lowering(lowering: str):
  """Routes every conv of the library through one lowering (benchmark-only monkeypatch of the defaults)."""
  if lowering == "auto":
    return
  from ganlatent_jax.nets import layers
  conv2d, conv_transpose2d = layers.conv2d, layers.conv_transpose2d
  layers.conv2d = lambda *a, **kw: conv2d(*a, **{**kw, "lowering": lowering})
  layers.conv_transpose2d = lambda *a, **kw: conv_transpose2d(*a, **{**kw, "lowering": lowering})


def resnet18_train_step(batch: int, size: int):
  import jax
  import optax
  from ganlatent_jax.nets import resnet

  module = resnet.resnet18()
  variables = resnet.init_resnet(jax.random.PRNGKey(0), module)
  params, batch_stats = variables["params"], variables["batch_stats"]
  optimizer = optax.adam(1e-3)
  opt_state = optimizer.init(params)
  images = jax.random.normal(jax.random.PRNGKey(1), (batch, size, size, 3))
  labels = jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 1000)

  @jax.jit
  def step(params, batch_stats, opt_state):
    def loss_fn(params):
      outputs, updates = module.apply({"params": params, "batch_stats": batch_stats}, images, train=True,
                                      mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(outputs["fc"], labels).mean()
      return loss, updates["batch_stats"]
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  state = [params, batch_stats, opt_state]

  def run():
    *state[:3], loss = step(*state)
    return loss
  return run


def dcgan_latent_grad_step(batch: int):
  import jax
  import jax.numpy as jnp
  from ganlatent_jax.generators import dcgan

  config = dcgan.make_config(latent_dim=DCGAN_LATENT, channels=list(DCGAN_CHANNELS), kernel_size=DCGAN_KERNEL)
  generator = dcgan.build(config, dcgan.init_variables(config, jax.random.PRNGKey(0)), "benchmark")
  z = generator.sample_z(jax.random.PRNGKey(1), batch)
  step = jax.jit(jax.grad(lambda z, g: jnp.mean(g(z) ** 2)))
  return lambda: step(z, generator)


def stylegan2_w_grad_step(batch: int, size: int):
  import jax
  import jax.numpy as jnp
  from ganlatent_jax.generators import stylegan2

  config = stylegan2.make_config(size, style_dim=STYLEGAN2_STYLE_DIM, n_mlp=STYLEGAN2_N_MLP,
                                 channels=stylegan2.constant_channels(size, STYLEGAN2_WIDTH))
  generator = stylegan2.build(config, stylegan2.init_variables(config, jax.random.PRNGKey(0)), "benchmark")
  w = generator.mapping(generator.sample_z(jax.random.PRNGKey(1), batch))
  step = jax.jit(jax.grad(lambda w, g: jnp.mean(g.synthesis(w) ** 2)))
  return lambda: step(w, generator)


def main(argv=None):
  args = parse_args(argv)
  if args.cpu_settings:
    from ganlatent_jax import platform
    platform.apply_cpu_settings()  # before jax starts its backend
  import jax
  from harness import report, time_steps

  _force_lowering(args.lowering)
  if args.model == "resnet18":
    run = resnet18_train_step(args.batch, args.size)
  elif args.model == "dcgan_g":
    run = dcgan_latent_grad_step(args.batch)
  else:
    run = stylegan2_w_grad_step(args.batch, args.size)
  times = time_steps(run, warmup=args.warmup, steps=args.steps)
  report(f"{args.model}_{args.mode}", times, images_per_step=args.batch,
         flops_per_step=flops_per_step(args.model, args.batch, args.size), framework="jax",
         jax_version=jax.__version__, batch=args.batch, size=args.size, lowering=args.lowering, cpu_settings=args.cpu_settings,
         xla_flags=os.environ.get("XLA_FLAGS", ""))


if __name__ == "__main__":
  main()
