"""Slow, obvious Python reference for the heatmap peaks op (``radedge._kernels.heatmap_peaks_cpu``).

Written from the documented rules only; it shares no code with the C++ op:

- content cells: the cells whose centre ``(i + 0.5) * input / grid`` lies in
  ``[offset, offset + content)``, per axis, decided exactly in rationals; nothing else
  exists for the op (neither peak nor neighbour);
- local maxima: a cell is a peak when it is >= every content cell in its (2r + 1)^2
  window, > every one before it in raster order there, and its score reaches the
  threshold (for sigmoid: raw >= log(t / (1 - t)), -inf for t = 0);
- argmax: the largest content cell, the first in raster order among equals;
- top k by raw value descending, then raster index ascending;
- refinement per axis: the parabola vertex through the scores of the cell and its two
  neighbours when both are content cells, clamped to [-0.5, 0.5], 0 when flat;
- source coordinates: ``x_input = (x + 0.5 + dx) * input / grid``, then
  ``(x_input - offset) / scale + crop``.

Every value is a Python float (float64), so this is the yardstick for the op's float32
outputs, not a copy of its arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def content_range(offset: int, content: int, input_size: int, grid: int) -> range:
    """The cells along one axis whose centres lie inside the content."""
    inside = [i for i in range(grid) if offset <= Fraction(2 * i + 1, 2) * Fraction(input_size, grid) < offset + content]
    return range(inside[0], inside[-1] + 1) if inside else range(0)


def sigmoid(raw: float) -> float:
    return 1.0 / (1.0 + math.exp(-raw))


def raw_threshold(threshold: float, activation: str) -> float:
    if activation == "none":
        return threshold
    return -math.inf if threshold == 0 else math.log(threshold / (1.0 - threshold))


def is_peak(values: np.ndarray, y: int, x: int, radius: int, rows: range, columns: range) -> bool:
    value = values[y, x]
    for ny in range(y - radius, y + radius + 1):
        for nx in range(x - radius, x + radius + 1):
            if ny not in rows or nx not in columns or (ny, nx) == (y, x):
                continue
            if values[ny, nx] > value:
                return False
            if (ny, nx) < (y, x) and values[ny, nx] == value:
                return False
    return True


def parabola_offset(before: float, centre: float, after: float) -> float:
    curvature = 2 * centre - after - before
    if curvature <= 0:
        return 0.0
    return min(0.5, max(-0.5, (after - before) / (2 * curvature)))


def to_source(cell: int, offset: float, input_size: int, grid: int, content_offset: int, scale: float,
              crop: int) -> float:
    x_input = (cell + 0.5 + offset) * (input_size / grid)
    return (x_input - content_offset) / scale + crop


def peaks_of_map(values: np.ndarray, geometry: dict, mode: str, k: int, threshold: float, radius: int,
                 activation: str, refine: bool) -> list[tuple[float, float, float]]:
    """(x, y, score) of the peaks of one [h, w] map (float64 values), best first."""
    h, w = values.shape
    p = geometry
    rows = content_range(p["offset_y"], p["content_height"], p["input_height"], h)
    columns = content_range(p["offset_x"], p["content_width"], p["input_width"], w)
    cells = [(y, x) for y in rows for x in columns]
    if mode == "argmax":
        found = []
        for y, x in cells:
            if not found or values[y, x] > values[found[0]]:
                found = [(y, x)]
    else:
        lowest = raw_threshold(threshold, activation)
        found = [(y, x) for y, x in cells if values[y, x] >= lowest and is_peak(values, y, x, radius, rows, columns)]
    found.sort(key=lambda cell: (-values[cell], cell[0] * w + cell[1]))

    def score(y, x):
        return sigmoid(values[y, x]) if activation == "sigmoid" else float(values[y, x])

    result = []
    for y, x in found[:k]:
        dx = dy = 0.0
        if refine and x - 1 in columns and x + 1 in columns:
            dx = parabola_offset(score(y, x - 1), score(y, x), score(y, x + 1))
        if refine and y - 1 in rows and y + 1 in rows:
            dy = parabola_offset(score(y - 1, x), score(y, x), score(y + 1, x))
        result.append((
            to_source(x, dx, p["input_width"], w, p["offset_x"], p["scale_x"], p.get("crop_x", 0)),
            to_source(y, dy, p["input_height"], h, p["offset_y"], p["scale_y"], p.get("crop_y", 0)),
            score(y, x),
        ))
    return result


def heatmap_peaks(heatmaps: np.ndarray, geometry: dict, mode: str, k: int, threshold, radius: int = 1,
                  activation: str = "none", refine: bool = True):
    """The op's outputs (x, y, score float64 [N, C, k] with NaN past valid; valid int [N, C])."""
    n_images, channels = heatmaps.shape[:2]
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (channels,))
    x = np.full((n_images, channels, k), np.nan)
    y = np.full((n_images, channels, k), np.nan)
    score = np.full((n_images, channels, k), np.nan)
    valid = np.zeros((n_images, channels), dtype=np.int64)
    for n in range(n_images):
        for c in range(channels):
            values = heatmaps[n, c].astype(np.float64)
            found = peaks_of_map(values, geometry, mode, k, float(thresholds[c]), radius, activation, refine)
            valid[n, c] = len(found)
            for i, (px, py, ps) in enumerate(found):
                x[n, c, i], y[n, c, i], score[n, c, i] = px, py, ps
    return x, y, score, valid
