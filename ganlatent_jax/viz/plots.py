"""Line charts as PNG with Pillow only (the package has no plotting dependency): enough for a learned curve and a
density, axes with their ranges, one colour per series and a legend.

  chart = line_chart([("g(s)", s, g)], title="g", xlabel="s = <u, z>", ylabel="t")
  grids.save_png(path, side_by_side([chart, other]))
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

COLOURS = ((31, 111, 235), (218, 54, 51), (46, 160, 67), (130, 80, 223), (191, 135, 0))
MARGIN = dict(left=56, right=12, top=40, bottom=36)   # top: the title line, then the y label above the axis


def _ticks(low: float, high: float) -> list[float]:
  return [low, (low + high) / 2, high]


def _format(value: float) -> str:
  return f"{value:.3g}"


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, title: str = "", xlabel: str = "",
               ylabel: str = "", width: int = 360, height: int = 240) -> np.ndarray:
  """(height, width, 3) uint8 chart of the series (label, xs, ys); non-finite points are skipped."""
  if not series:
    raise ValueError("line_chart needs at least one series")
  finite = [(np.asarray(x, np.float64), np.asarray(y, np.float64)) for _, x, y in series]
  for (label, x, y), (xs, ys) in zip(series, finite):
    if xs.shape != ys.shape or xs.ndim != 1:
      raise ValueError(f"series {label!r}: xs and ys must be 1-D of one length, got {xs.shape} and {ys.shape}")
  every_x = np.concatenate([xs[np.isfinite(xs) & np.isfinite(ys)] for xs, ys in finite])
  every_y = np.concatenate([ys[np.isfinite(xs) & np.isfinite(ys)] for xs, ys in finite])
  if not len(every_x):
    raise ValueError("line_chart: no finite point to draw")
  x_low, x_high = float(every_x.min()), float(every_x.max())
  y_low, y_high = float(every_y.min()), float(every_y.max())
  x_high = x_high if x_high > x_low else x_low + 1
  y_high = y_high if y_high > y_low else y_low + 1
  image = Image.new("RGB", (width, height), "white")
  draw = ImageDraw.Draw(image)
  left, top = MARGIN["left"], MARGIN["top"]
  right, bottom = width - MARGIN["right"], height - MARGIN["bottom"]

  def to_pixel(x, y):
    return (left + (x - x_low) / (x_high - x_low) * (right - left),
            bottom - (y - y_low) / (y_high - y_low) * (bottom - top))

  draw.rectangle([left, top, right, bottom], outline=(150, 150, 150))
  for x in _ticks(x_low, x_high):
    px = to_pixel(x, y_low)[0]
    draw.line([px, bottom, px, bottom + 3], fill=(90, 90, 90))
    draw.text((px - 12, bottom + 5), _format(x), fill=(60, 60, 60))
  for y in _ticks(y_low, y_high):
    py = to_pixel(x_low, y)[1]
    draw.line([left - 3, py, left, py], fill=(90, 90, 90))
    draw.text((4, py - 5), _format(y), fill=(60, 60, 60))
  draw.text((left, 4), title, fill=(20, 20, 20))
  draw.text(((left + right) // 2 - 3 * len(xlabel), height - 14), xlabel, fill=(60, 60, 60))
  draw.text((4, top - 18), ylabel, fill=(60, 60, 60))
  for index, ((label, _, _), (xs, ys)) in enumerate(zip(series, finite)):
    colour = COLOURS[index % len(COLOURS)]
    keep = np.isfinite(xs) & np.isfinite(ys)
    points = [to_pixel(x, y) for x, y in zip(xs[keep], ys[keep])]
    if len(points) > 1:
      draw.line(points, fill=colour, width=2)
    elif points:
      draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=colour)
    draw.text((right - 7 * len(label) - 4, top + 4 + 12 * index), label, fill=colour)
  return np.asarray(image)


def side_by_side(charts: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
  """Charts of one height in a row, white gaps between."""
  height = max(c.shape[0] for c in charts)
  parts = []
  for index, chart in enumerate(charts):
    padded = np.full((height, chart.shape[1], 3), 255, np.uint8)
    padded[:chart.shape[0]] = chart
    parts.append(padded)
    if index < len(charts) - 1:
      parts.append(np.full((height, gap, 3), 255, np.uint8))
  return np.concatenate(parts, axis=1)
