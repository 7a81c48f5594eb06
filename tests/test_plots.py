"""viz/plots: PNG line charts with Pillow only."""
import numpy as np
import pytest

from ganlatent_jax.viz import plots


def test_a_line_chart_draws_each_series_in_its_colour():
  x = np.linspace(-1, 1, 50)
  chart = plots.line_chart([("up", x, x), ("down", x, -x)], title="t", width=200, height=150)
  assert chart.shape == (150, 200, 3) and chart.dtype == np.uint8
  for colour in plots.COLOURS[:2]:
    assert np.all(chart == colour, axis=-1).sum() > 50     # both lines are drawn
  # The rising series ends top right of the plotting area, the falling one bottom right.
  area = chart[plots.MARGIN["top"]:150 - plots.MARGIN["bottom"], plots.MARGIN["left"]:200 - plots.MARGIN["right"]]
  rows_up = np.nonzero(np.all(area[:, -6:] == plots.COLOURS[0], axis=-1).any(axis=1))[0]
  rows_down = np.nonzero(np.all(area[:, -6:] == plots.COLOURS[1], axis=-1).any(axis=1))[0]
  assert rows_up.mean() < area.shape[0] / 3 and rows_down.mean() > 2 * area.shape[0] / 3


def test_non_finite_points_are_skipped_and_empty_input_refused():
  chart = plots.line_chart([("g", [0.0, 1.0, 2.0], [0.0, np.inf, 1.0])])
  assert chart.shape == (240, 360, 3)
  with pytest.raises(ValueError, match="no finite point"):
    plots.line_chart([("g", [0.0], [np.nan])])
  with pytest.raises(ValueError, match="one length"):
    plots.line_chart([("g", [0.0, 1.0], [0.0])])


def test_side_by_side_pads_to_the_tallest():
  row = plots.side_by_side([np.zeros((10, 4, 3), np.uint8), np.zeros((6, 5, 3), np.uint8)], gap=2)
  assert row.shape == (10, 11, 3) and np.all(row[6:, 6:] == 255)
