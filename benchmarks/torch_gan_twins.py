"""PyTorch twin of benchmarks/gan_step.py: the same GAN training step, rosinality-style, eager (dev-only).

  python3 -m venv --system-site-packages /tmp/venv-torch && /tmp/venv-torch/bin/pip install torch==2.13.0
  /tmp/venv-torch/bin/python benchmarks/torch_gan_twins.py --config=gan_3dshapes [--cycles=10] [--breakdown]

The package never imports torch; this script reads the same run config (configs/<name>.py, through the package's
config loader: hence the venv sees the system site-packages) and builds:
  * StyleGAN2 (`generator.family == 'stylegan2'`): rosinality's `model.py` layout at the config's widths — mapping
    (PixelNorm, n_mlp equalized linears at lr_mlp, fused leaky ReLU), constant input, fused modulated convs as
    grouped convs (per-sample weights), stride-2 transposed conv + blur for upsampling, random noise injection,
    ToRGB with upfirdn upsampling of the skip; the residual discriminator (blur + stride-2 convs, minibatch stddev
    over groups of 4, equalized lr). upfirdn2d is upstream's CPU path (`upfirdn2d_native`: zero insertion by
    padding, one single-channel conv over batch·channels).
  * DCGAN (`family == 'dcgan'`): dense → 4×4 → stride-2 5×5 transposed convs (ReLU between, tanh), no batch norm;
    the discriminator: stride-2 4×4 convs with leaky ReLU, then a dense logit.
and rosinality's `train.py` iteration: D update (logistic loss, G without grad), every r1_every steps a separate R1
update (γ/2·r1_every·E‖∇D‖², create_graph), G update (non-saturating loss through a D without weight grads), every
pl_every steps a separate path-length update (batch // pl_batch_shrink, pl_weight·pl_every, decay pl_decay), style
mixing with probability `style_mixing` (one crossover per batch), EMA of G's parameters; Adam with the lazy ratios.
Timing and the JSON line as gan_step.py (cycles of lcm(r1_every, pl_every) steps; `--breakdown` times the pieces).
"""
from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import autograd, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gan_step import (cycle_length, kind_summary, load_average, load_config, median_wall_and_cpu,  # noqa: E402
                      parse_args, piece_summary)  # noqa: E402  (no jax import at module level)
from harness import report  # noqa: E402

SQRT2 = math.sqrt(2.0)


# ---------------------------------------------------------------------------------------------------------------
# rosinality-style building blocks (CPU paths).

def fir_kernel(taps=(1.0, 3.0, 3.0, 1.0)):
  k = torch.tensor(taps, dtype=torch.float32)
  k = k[None, :] * k[:, None]
  return k / k.sum()


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
  """Upstream's `upfirdn2d_native` for NCHW x: zero insertion, pad, one single-channel conv, stride."""
  b, c, h, w = x.shape
  p0, p1 = pad
  x = x.reshape(b * c, h, 1, w, 1)
  if up > 1:
    x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
  x = x.reshape(b * c, 1, h * up, w * up)
  x = F.pad(x, (p0, p1, p0, p1))
  x = F.conv2d(x, torch.flip(kernel, [0, 1])[None, None])
  x = x[:, :, ::down, ::down]
  return x.reshape(b, c, x.shape[2], x.shape[3])


class Blur(nn.Module):
  def __init__(self, pad, upsample_factor=1):
    super().__init__()
    self.register_buffer("kernel", fir_kernel() * upsample_factor ** 2)
    self.pad = pad

  def forward(self, x):
    return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
  def __init__(self, factor=2):
    super().__init__()
    self.register_buffer("kernel", fir_kernel() * factor ** 2)
    p = 4 - factor
    self.pad, self.factor = ((p + 1) // 2 + factor - 1, p // 2), factor

  def forward(self, x):
    return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


def fused_leaky_relu(x, bias):
  return F.leaky_relu(x + bias.view(1, -1, *[1] * (x.ndim - 2)), 0.2) * SQRT2


class EqualLinear(nn.Module):
  def __init__(self, in_dim, out_dim, bias_init=0.0, lr_mul=1.0, activate=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
    self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
    self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(in_dim), lr_mul, activate

  def forward(self, x):
    if self.activate:
      return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
    return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
  def __init__(self, c_in, c_out, k, stride=1, padding=0, bias=True):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
    self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
    self.scale, self.stride, self.padding = 1 / math.sqrt(c_in * k * k), stride, padding

  def forward(self, x):
    return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class ModulatedConv2d(nn.Module):
  def __init__(self, c_in, c_out, k, style_dim, demodulate=True, upsample=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(1, c_out, c_in, k, k))
    self.modulation = EqualLinear(style_dim, c_in, bias_init=1.0)
    self.scale, self.k, self.c_out = 1 / math.sqrt(c_in * k * k), k, c_out
    self.demodulate, self.upsample = demodulate, upsample
    if upsample:
      p = (4 - 2) - (k - 1)
      self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)

  def forward(self, x, style):
    b, c_in, h, w = x.shape
    style = self.modulation(style).view(b, 1, c_in, 1, 1)
    weight = self.scale * self.weight * style
    if self.demodulate:
      weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.c_out, 1, 1, 1)
    x = x.reshape(1, b * c_in, h, w)
    if self.upsample:
      weight = weight.transpose(1, 2).reshape(b * c_in, self.c_out, self.k, self.k)
      out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
      return self.blur(out.view(b, self.c_out, out.shape[2], out.shape[3]))
    out = F.conv2d(x, weight.view(b * self.c_out, c_in, self.k, self.k), padding=self.k // 2, groups=b)
    return out.view(b, self.c_out, h, w)


class StyledConv(nn.Module):
  def __init__(self, c_in, c_out, style_dim, upsample=False):
    super().__init__()
    self.conv = ModulatedConv2d(c_in, c_out, 3, style_dim, upsample=upsample)
    self.noise_weight = nn.Parameter(torch.zeros(1))
    self.bias = nn.Parameter(torch.zeros(c_out))

  def forward(self, x, style):
    out = self.conv(x, style)
    out = out + self.noise_weight * out.new_empty(out.shape[0], 1, out.shape[2], out.shape[3]).normal_()
    return fused_leaky_relu(out, self.bias)


class ToRGB(nn.Module):
  def __init__(self, c_in, style_dim, channels, upsample=True):
    super().__init__()
    self.upsample = Upsample() if upsample else None
    self.conv = ModulatedConv2d(c_in, channels, 1, style_dim, demodulate=False)
    self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

  def forward(self, x, style, skip=None):
    out = self.conv(x, style) + self.bias
    return out if skip is None else out + self.upsample(skip)


class StyleGAN2Generator(nn.Module):
  def __init__(self, size, style_dim, n_mlp, widths, lr_mlp, image_channels):
    super().__init__()
    self.style_dim = style_dim
    self.style = nn.ModuleList(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp))
    self.input = nn.Parameter(torch.randn(1, widths[4], 4, 4))
    self.conv1 = StyledConv(widths[4], widths[4], style_dim)
    self.to_rgb1 = ToRGB(widths[4], style_dim, image_channels, upsample=False)
    self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
    c_in = widths[4]
    for i in range(3, int(math.log2(size)) + 1):
      c_out = widths[2 ** i]
      self.convs.append(StyledConv(c_in, c_out, style_dim, upsample=True))
      self.convs.append(StyledConv(c_out, c_out, style_dim))
      self.to_rgbs.append(ToRGB(c_out, style_dim, image_channels))
      c_in = c_out
    self.n_latent = int(math.log2(size)) * 2 - 2

  def mapping(self, z):
    x = z * torch.rsqrt(torch.mean(z ** 2, dim=1, keepdim=True) + 1e-8)
    for layer in self.style:
      x = layer(x)
    return x

  def forward(self, zs, return_latents=False):
    styles = [self.mapping(z) for z in zs]
    if len(styles) < 2:
      latent = styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
    else:
      inject = random.randint(1, self.n_latent - 1)
      latent = torch.cat([styles[0].unsqueeze(1).repeat(1, inject, 1),
                          styles[1].unsqueeze(1).repeat(1, self.n_latent - inject, 1)], 1)
    out = self.conv1(self.input.repeat(latent.shape[0], 1, 1, 1), latent[:, 0])
    skip = self.to_rgb1(out, latent[:, 1])
    i = 1
    for up, conv, to_rgb in zip(self.convs[::2], self.convs[1::2], self.to_rgbs):
      out = conv(up(out, latent[:, i]), latent[:, i + 1])
      skip = to_rgb(out, latent[:, i + 2], skip)
      i += 2
    return (skip, latent) if return_latents else skip


class ConvLayer(nn.Sequential):
  def __init__(self, c_in, c_out, k, downsample=False, bias=True, activate=True):
    layers = []
    if downsample:
      p = (4 - 2) + (k - 1)
      layers.append(Blur(((p + 1) // 2, p // 2)))
      stride, padding = 2, 0
    else:
      stride, padding = 1, k // 2
    layers.append(EqualConv2d(c_in, c_out, k, stride, padding, bias=bias and not activate))
    super().__init__(*layers)
    self.act_bias = nn.Parameter(torch.zeros(c_out)) if activate and bias else None
    self.activate = activate

  def forward(self, x):
    x = super().forward(x)
    return fused_leaky_relu(x, self.act_bias) if self.activate else x


class ResBlock(nn.Module):
  def __init__(self, c_in, c_out):
    super().__init__()
    self.conv1 = ConvLayer(c_in, c_in, 3)
    self.conv2 = ConvLayer(c_in, c_out, 3, downsample=True)
    self.skip = ConvLayer(c_in, c_out, 1, downsample=True, activate=False, bias=False)

  def forward(self, x):
    return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class StyleGAN2Discriminator(nn.Module):
  def __init__(self, size, widths, image_channels, stddev_group=4):
    super().__init__()
    convs = [ConvLayer(image_channels, widths[size], 1)]
    c_in = widths[size]
    for i in range(int(math.log2(size)), 2, -1):
      convs.append(ResBlock(c_in, widths[2 ** (i - 1)]))
      c_in = widths[2 ** (i - 1)]
    self.convs = nn.Sequential(*convs)
    self.stddev_group = stddev_group
    self.final_conv = ConvLayer(c_in + 1, widths[4], 3)
    self.final_linear = nn.Sequential(EqualLinear(widths[4] * 16, widths[4], activate=True),
                                      EqualLinear(widths[4], 1))

  def forward(self, x):
    out = self.convs(x)
    b, c, h, w = out.shape
    group = min(b, self.stddev_group)
    std = torch.sqrt(out.view(group, -1, 1, c, h, w).var(0, unbiased=False) + 1e-8)
    std = std.mean([2, 3, 4], keepdim=True).squeeze(2).repeat(group, 1, h, w)
    out = self.final_conv(torch.cat([out, std], 1))
    return self.final_linear(out.view(b, -1))


class DCGANGenerator(nn.Module):
  def __init__(self, latent_dim, channels, out_channels, kernel_size):
    super().__init__()
    self.c0 = channels[0]
    self.project = nn.Linear(latent_dim, 16 * channels[0])
    widths = (*channels, out_channels)
    k = kernel_size
    self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, k, 2, (k - 1) // 2, 1) for a, b in zip(widths, widths[1:]))

  def forward(self, zs, return_latents=False):
    x = F.relu(self.project(zs[0]).view(len(zs[0]), self.c0, 4, 4))
    for i, up in enumerate(self.ups):
      x = up(x)
      if i < len(self.ups) - 1:
        x = F.relu(x)
    return torch.tanh(x)


class DCGANDiscriminator(nn.Module):
  def __init__(self, size, widths, image_channels):
    super().__init__()
    chans = (image_channels, *widths)
    self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(chans, chans[1:]))
    self.logit = nn.Linear(widths[-1] * (size // 2 ** len(widths)) ** 2, 1)

  def forward(self, x):
    for conv in self.convs:
      x = F.leaky_relu(conv(x), 0.2)
    return self.logit(x.flatten(1))


# ---------------------------------------------------------------------------------------------------------------
# The step (rosinality's train.py).

def build(config):
  g, d = dict(config.architecture), dict(config.discriminator)
  size = 64 if g["family"] == "dcgan" else int(g["size"])
  if g["family"] == "stylegan2":
    res = [2 ** i for i in range(2, int(math.log2(size)) + 1)]
    channels = 3 if "image_channels" not in g else int(g["image_channels"])
    gen = StyleGAN2Generator(size, int(g["style_dim"]), int(g["n_mlp"]), dict(zip(res, g["channels"])),
                             float(g["lr_mlp"]), channels)
    latent_dim = int(g["style_dim"])
  else:
    channels = int(g["out_channels"])
    size = 4 * 2 ** len(g["channels"])
    gen = DCGANGenerator(int(g["latent_dim"]), tuple(g["channels"]), channels, int(g["kernel_size"]))
    latent_dim = int(g["latent_dim"])
  if d["kind"] == "stylegan2":
    widths, w, r = {}, int(d["width"]), size
    while r >= 4:
      widths[r] = min(w, int(d.get("max_width") or 8 * int(d["width"])))
      w, r = w * 2, r // 2
    disc = StyleGAN2Discriminator(size, widths, channels, int(d.get("stddev_group", 4)))
  else:
    num = int(math.log2(size)) - 2
    disc = DCGANDiscriminator(size, tuple(min(int(d["width"]) * 2 ** i, int(d.get("max_width") or 10 ** 9))
                                          for i in range(num)), channels)
  return gen, disc, latent_dim, (channels, size, size)


def requires_grad(model, flag):
  for p in model.parameters():
    p.requires_grad = flag


class TwinStep:
  def __init__(self, config):
    torch.manual_seed(0)
    random.seed(0)
    self.gen, self.disc, self.latent_dim, self.image_shape = build(config)
    self.g_ema, _, _, _ = build(config)
    self.g_ema.load_state_dict(self.gen.state_dict())
    requires_grad(self.g_ema, False)
    self.batch = int(config.batch_size)
    r1_gamma, pl_weight = float(config.r1_gamma), float(config.get("pl_weight", 0.0))
    self.r1_gamma = r1_gamma
    self.r1_every = int(config.r1_every) if r1_gamma > 0 else 0
    self.pl_weight = pl_weight
    self.pl_every = int(config.get("pl_every", 4)) if pl_weight > 0 else 0
    self.pl_batch = max(1, self.batch // int(config.get("pl_batch_shrink", 2)))
    self.pl_decay = float(config.get("pl_decay", 0.01))
    self.mixing = float(config.get("style_mixing", 0.0))
    self.ema_decay = float(config.ema_decay)
    g_ratio = self.pl_every / (self.pl_every + 1) if self.pl_every else 1.0
    d_ratio = self.r1_every / (self.r1_every + 1) if self.r1_every else 1.0
    b1, b2 = float(config.beta1), float(config.beta2)
    self.g_optim = torch.optim.Adam(self.gen.parameters(), lr=config.architecture.learning_rate * g_ratio, betas=(b1 ** g_ratio, b2 ** g_ratio))
    self.d_optim = torch.optim.Adam(self.disc.parameters(), lr=config.discriminator.learning_rate * d_ratio, betas=(b1 ** d_ratio, b2 ** d_ratio))
    self.mean_path_length = 0.0
    self.step = 0

  def noise(self, batch):
    if self.mixing > 0 and random.random() < self.mixing:
      return list(torch.randn(2, batch, self.latent_dim).unbind(0))
    return [torch.randn(batch, self.latent_dim)]

  # pieces ----------------------------------------------------------------------------------------------------
  def d_adversarial(self, real):
    requires_grad(self.gen, False)
    requires_grad(self.disc, True)
    with torch.no_grad():
      fake = self.gen(self.noise(self.batch))
    loss = F.softplus(self.disc(fake)).mean() + F.softplus(-self.disc(real)).mean()
    self.disc.zero_grad(set_to_none=True)
    loss.backward()
    return loss

  def r1(self, real):
    real = real.detach().requires_grad_(True)
    real_pred = self.disc(real)
    (grad,) = autograd.grad(real_pred.sum(), real, create_graph=True)
    r1_loss = grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()
    self.disc.zero_grad(set_to_none=True)
    (self.r1_gamma / 2 * r1_loss * self.r1_every + 0 * real_pred[0]).sum().backward()
    return r1_loss

  def g_adversarial(self):
    requires_grad(self.gen, True)
    requires_grad(self.disc, False)
    loss = F.softplus(-self.disc(self.gen(self.noise(self.batch)))).mean()
    self.gen.zero_grad(set_to_none=True)
    loss.backward()
    return loss

  def path_length(self):
    fake, latents = self.gen(self.noise(self.pl_batch), return_latents=True)
    noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
    (grad,) = autograd.grad((fake * noise).sum(), latents, create_graph=True)
    lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    path_mean = self.mean_path_length + self.pl_decay * (lengths.mean() - self.mean_path_length)
    penalty = (lengths - path_mean).pow(2).mean()
    self.mean_path_length = path_mean.detach()
    self.gen.zero_grad(set_to_none=True)
    (self.pl_weight * self.pl_every * penalty + 0 * fake[0, 0, 0, 0]).backward()
    return penalty

  @torch.no_grad()
  def ema(self):
    decay = min(self.ema_decay, (1 + self.step) / (10 + self.step))
    for e, p in zip(self.g_ema.parameters(), self.gen.parameters()):
      e.mul_(decay).add_(p, alpha=1 - decay)

  # the full step -------------------------------------------------------------------------------------------
  def __call__(self, real):
    self.d_adversarial(real)
    self.d_optim.step()
    if self.r1_every and self.step % self.r1_every == 0:
      requires_grad(self.disc, True)
      self.r1(real)
      self.d_optim.step()
    self.g_adversarial()
    self.g_optim.step()
    if self.pl_every and self.step % self.pl_every == 0:
      self.path_length()
      self.g_optim.step()
    self.ema()
    self.step += 1


def breakdown(twin: TwinStep, real, calls: int) -> dict:
  def g_forward():
    with torch.no_grad():
      return twin.gen(twin.noise(twin.batch))
  for p in twin.disc.parameters():
    p.grad = torch.ones_like(p)
  for p in twin.gen.parameters():
    p.grad = torch.ones_like(p)

  def d_adam():
    twin.d_optim.step()

  def g_adam_ema():
    twin.g_optim.step()
    twin.ema()

  pieces = {"g_forward_for_d": g_forward, "d_adam": d_adam, "g_adam_ema": g_adam_ema}

  def with_grads(fn, gen_flag, disc_flag):
    def run():
      requires_grad(twin.gen, gen_flag)
      requires_grad(twin.disc, disc_flag)
      return fn()
    return run
  pieces["d_adversarial_fwd_bwd"] = lambda: (F.softplus(twin.disc(pieces_fake)).mean()
                                             + F.softplus(-twin.disc(real)).mean()).backward()
  pieces["g_adversarial_fwd_bwd"] = with_grads(twin.g_adversarial, True, False)
  if twin.r1_every:
    pieces["r1_double_backward"] = with_grads(lambda: twin.r1(real), False, True)
  if twin.pl_every:
    pieces["path_length_double_backward"] = with_grads(twin.path_length, True, False)
  requires_grad(twin.gen, False)
  requires_grad(twin.disc, True)
  pieces_fake = g_forward()
  seconds = {}
  for name, fn in pieces.items():
    if name == "d_adversarial_fwd_bwd":
      fn = with_grads(fn, False, True)
    seconds[name] = median_wall_and_cpu(fn, calls)
  return piece_summary(seconds, twin.r1_every, twin.pl_every)


def main(argv=None):
  args = parse_args(argv)
  if args.threads:
    torch.set_num_threads(args.threads)
  config = load_config(args.config, args.override)
  twin = TwinStep(config)
  cycle = cycle_length(twin.r1_every, twin.pl_every)
  load_before = load_average()
  # Real images: random values of the right shape (the step's cost does not depend on them; the JAX benchmark
  # renders them ahead of the step and reports that cost separately).
  reals = [torch.rand(twin.batch, *twin.image_shape) * 2 - 1 for _ in range(cycle)]
  by_kind: dict[str, list[float]] = {}
  cpu_by_kind: dict[str, list[float]] = {}

  def kind(step: int) -> str:
    names = [n for n, every in (("r1", twin.r1_every), ("pl", twin.pl_every)) if every and step % every == 0]
    return "+".join(names) or "plain"

  def run_cycle(record: bool):
    steps = []
    for i in range(cycle):
      step = twin.step
      t0, c0 = time.perf_counter(), time.process_time()
      twin(reals[i])
      steps.append(time.perf_counter() - t0)
      if record:
        by_kind.setdefault(kind(step), []).append(steps[-1])
        cpu_by_kind.setdefault(kind(step), []).append(time.process_time() - c0)
    return sum(steps) / cycle

  start = time.perf_counter()
  twin(reals[0])
  first_step_s = time.perf_counter() - start
  extra = {"config": args.config, "overrides": args.override, "batch": twin.batch, "cycle_steps": cycle,
           "r1_every": twin.r1_every, "pl_every": twin.pl_every, "style_mixing": twin.mixing,
           "first_step_s": round(first_step_s, 3)}
  if args.step:
    run_cycle(record=False)
    times = [run_cycle(record=True) for _ in range(args.cycles)]
    extra.update(kind_summary(by_kind, twin.batch))
    extra.update({f"cpu_{k}": v for k, v in kind_summary(cpu_by_kind, twin.batch).items()})
  if args.breakdown:
    extra.update(breakdown(twin, reals[0], args.piece_calls))
  extra.update(load_average_before=load_before, load_average_after=load_average())
  if args.step:
    report(f"gan_step_{args.config}", times, images_per_step=twin.batch, framework="torch",
           torch_version=torch.__version__, threads=torch.get_num_threads(), **extra)
  else:
    import json
    print(json.dumps({"name": f"gan_step_{args.config}_breakdown", "framework": "torch", **extra}), flush=True)


if __name__ == "__main__":
  main()
