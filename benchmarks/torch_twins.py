"""PyTorch twins of benchmarks/convnets.py (dev-only: run in a separate venv with torch, never needed by the package).

  /work/venv-torch/bin/python benchmarks/torch_twins.py --model=resnet18 --mode=train --batch=64 --size=64

Same networks (torchvision ResNet-18 layout; the DCGAN generator of `generators/dcgan.py`; a rosinality-style
StyleGAN2 generator with 64 channels everywhere), same steps, same FLOP formula (imported from convnets.py), same
JSON line. Eager mode, torch's default thread count.
"""
from __future__ import annotations

import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convnets  # noqa: E402  (FLOP formulas and shapes; no jax at import)
from harness import report, time_steps  # noqa: E402


class BasicBlock(nn.Module):
  def __init__(self, c_in, width, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(width)
    self.downsample = (nn.Sequential(nn.Conv2d(c_in, width, 1, stride, bias=False), nn.BatchNorm2d(width))
                       if stride != 1 or c_in != width else None)

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet18(nn.Module):
  def __init__(self, classes=1000):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    blocks, c = [], 64
    for stage, width in enumerate(convnets.RESNET18_WIDTHS):
      for block in range(2):
        blocks.append(BasicBlock(c, width, 2 if stage > 0 and block == 0 else 1))
        c = width
    self.blocks = nn.Sequential(*blocks)
    self.fc = nn.Linear(c, classes)

  def forward(self, x):
    x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
    return self.fc(self.blocks(x).mean((2, 3)))


class DCGANGenerator(nn.Module):
  def __init__(self):
    super().__init__()
    c0, k = convnets.DCGAN_CHANNELS[0], convnets.DCGAN_KERNEL
    self.project = nn.Linear(convnets.DCGAN_LATENT, 16 * c0)
    self.project_bn = nn.BatchNorm2d(c0)
    widths = (*convnets.DCGAN_CHANNELS, 3)
    self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, k, 2, (k - 1) // 2, 1) for a, b in zip(widths, widths[1:]))
    self.bns = nn.ModuleList(nn.BatchNorm2d(b) for b in widths[1:-1])

  def forward(self, z):
    x = F.relu(self.project_bn(self.project(z).view(len(z), -1, 4, 4)))
    for i, up in enumerate(self.ups):
      x = up(x)
      if i < len(self.bns):
        x = F.relu(self.bns[i](x))
    return torch.tanh(x)


BLUR = torch.tensor([1.0, 3.0, 3.0, 1.0])


def _blur(x, pad, gain=1.0):
  """upfirdn2d(x, blur kernel, pad) as a depthwise conv."""
  c = x.shape[1]
  k = (BLUR[:, None] * BLUR[None]) / BLUR.sum() ** 2 * gain
  x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
  return F.conv2d(x, k.expand(c, 1, 4, 4).contiguous(), groups=c)


class ModulatedConv(nn.Module):
  def __init__(self, c_in, c_out, k, style_dim, demodulate=True, upsample=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(1, c_out, c_in, k, k))
    self.scale = 1 / math.sqrt(c_in * k * k)
    self.modulation = nn.Linear(style_dim, c_in)
    nn.init.normal_(self.modulation.weight, std=1 / math.sqrt(style_dim))  # EqualLinear, folded
    nn.init.ones_(self.modulation.bias)
    self.demodulate, self.upsample, self.k = demodulate, upsample, k

  def forward(self, x, w):
    b, c_in, h, wd = x.shape
    style = self.modulation(w).view(b, 1, c_in, 1, 1)
    weight = self.scale * self.weight * style
    if self.demodulate:
      weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, -1, 1, 1, 1)
    c_out = weight.shape[1]
    x = x.reshape(1, b * c_in, h, wd)
    if self.upsample:
      weight = weight.transpose(1, 2).reshape(b * c_in, c_out, self.k, self.k)
      x = F.conv_transpose2d(x, weight, stride=2, groups=b)
      x = _blur(x.view(b * c_out, 1, *x.shape[2:]).view(1, b * c_out, *x.shape[2:]), (1, 1), gain=4.0)
    else:
      x = F.conv2d(x, weight.view(b * c_out, c_in, self.k, self.k), padding=self.k // 2, groups=b)
    return x.view(b, c_out, *x.shape[2:])


class StyledConv(nn.Module):
  def __init__(self, c_in, c_out, style_dim, upsample=False):
    super().__init__()
    self.conv = ModulatedConv(c_in, c_out, 3, style_dim, upsample=upsample)
    self.noise_strength = nn.Parameter(torch.zeros(1))
    self.bias = nn.Parameter(torch.zeros(1, c_out, 1, 1))

  def forward(self, x, w):
    x = self.conv(x, w)
    x = x + self.noise_strength * torch.randn(x.shape[0], 1, *x.shape[2:])
    return F.leaky_relu(x + self.bias, 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
  def __init__(self, c_in, style_dim):
    super().__init__()
    self.conv = ModulatedConv(c_in, 3, 1, style_dim, demodulate=False)
    self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

  def forward(self, x, w, skip=None):
    out = self.conv(x, w) + self.bias
    if skip is not None:  # upfirdn2d(skip, blur, up=2): zero insertion + blur
      b, c, h, wd = skip.shape
      up = torch.zeros(b, c, h, 2, wd, 2)
      up[:, :, :, 0, :, 0] = skip
      out = out + _blur(up.view(b, c, 2 * h, 2 * wd), (2, 1), gain=4.0)
    return out


class StyleGAN2Synthesis(nn.Module):
  def __init__(self, size, style_dim, width):
    super().__init__()
    self.const = nn.Parameter(torch.randn(1, width, 4, 4))
    self.conv1 = StyledConv(width, width, style_dim)
    self.to_rgb1 = ToRGB(width, style_dim)
    n = int(math.log2(size)) - 2
    self.ups = nn.ModuleList(StyledConv(width, width, style_dim, upsample=True) for _ in range(n))
    self.convs = nn.ModuleList(StyledConv(width, width, style_dim) for _ in range(n))
    self.rgbs = nn.ModuleList(ToRGB(width, style_dim) for _ in range(n))

  def forward(self, w):
    x = self.conv1(self.const.expand(len(w), -1, -1, -1), w)
    skip = self.to_rgb1(x, w)
    for up, conv, rgb in zip(self.ups, self.convs, self.rgbs):
      x = conv(up(x, w), w)
      skip = rgb(x, w, skip)
    return skip


def main(argv=None):
  args = convnets.parse_args(argv)
  torch.manual_seed(0)
  if args.model == "resnet18":
    model = ResNet18().train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    images = torch.randn(args.batch, 3, args.size, args.size)
    labels = torch.randint(0, 1000, (args.batch,))

    def run():
      optimizer.zero_grad(set_to_none=True)
      loss = F.cross_entropy(model(images), labels)
      loss.backward()
      optimizer.step()
      return loss.item()
  else:
    if args.model == "dcgan_g":
      model = DCGANGenerator().eval()
      latent = torch.randn(args.batch, convnets.DCGAN_LATENT)
    else:
      model = StyleGAN2Synthesis(args.size, convnets.STYLEGAN2_STYLE_DIM, convnets.STYLEGAN2_WIDTH)
      latent = torch.randn(args.batch, convnets.STYLEGAN2_STYLE_DIM)
    for p in model.parameters():
      p.requires_grad_(False)

    def run():
      z = latent.clone().requires_grad_(True)
      (grad,) = torch.autograd.grad(model(z).pow(2).mean(), z)
      return grad.sum().item()
  times = time_steps(run, warmup=args.warmup, steps=args.steps)
  report(f"{args.model}_{args.mode}", times, images_per_step=args.batch,
         flops_per_step=convnets.flops_per_step(args.model, args.batch, args.size), framework="torch",
         torch_version=torch.__version__, threads=torch.get_num_threads(), batch=args.batch, size=args.size)


if __name__ == "__main__":
  main()
