"""Slow, obvious numpy reference for the fused preprocess op (``radedge._kernels.preprocess``).

Written from the documented rules only; it shares no code with the C++ op:

- letterbox geometry: ``s = min(H / rows, W / columns)``, content size ``max(1, round(n * s))``
  rounded half up (evaluated exactly, in rationals), offsets ``(H - content_h) // 2`` and
  ``(W - content_w) // 2``; stretch: the content is the whole output;
- per axis, separable: area weights when the axis shrinks (OpenCV INTER_AREA's coverage
  table, including its rule of ignoring boundary slivers of at most 1e-3 of a source
  pixel), bilinear with half-pixel centres and clamped edges when it grows (OpenCV
  INTER_LINEAR), identity when the size is unchanged;
- normalisation ``(value - mean[c]) / std[c]`` of both the content and the letterbox padding.

Everything is computed in float64 with explicit weight matrices, so it is the yardstick
for the float32 kernels, not a copy of their arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def letterbox_content(rows: int, columns: int, height: int, width: int) -> tuple[int, int]:
    """(content_height, content_width) of a rows x columns image letterboxed into height x width."""
    s = min(Fraction(height, rows), Fraction(width, columns))
    return max(1, round_half_up(rows * s)), max(1, round_half_up(columns * s))


def geometry(rows: int, columns: int, height: int, width: int, resize: str) -> dict:
    """The placement of the resized image in the output, as a dict of ints and floats."""
    if resize == "stretch":
        content_h, content_w = height, width
    else:
        content_h, content_w = letterbox_content(rows, columns, height, width)
    return {
        "source_rows": rows,
        "source_columns": columns,
        "content_height": content_h,
        "content_width": content_w,
        "offset_y": (height - content_h) // 2,
        "offset_x": (width - content_w) // 2,
        "scale_y": content_h / rows,
        "scale_x": content_w / columns,
    }


def area_weights(source: int, target: int) -> np.ndarray:
    """float64[target, source]: output pixel i averages the source span [i*k, (i+1)*k), k = source/target.

    The weight of a source pixel is the length of its overlap with the span over the span's
    length; overlaps at either end of at most 1e-3 are ignored, as OpenCV INTER_AREA does.
    """
    k = 1.0 / (target / source)
    weights = np.zeros((target, source))
    for i in range(target):
        start = i * k
        stop = start + k
        span = min(k, source - start)
        for s in range(max(0, math.floor(start)), min(source, math.ceil(stop))):
            overlap = min(stop, s + 1) - max(start, s)
            at_edge = s < start or s + 1 > stop
            if overlap <= 0 or (at_edge and overlap <= 1e-3):
                continue
            weights[i, s] = min(overlap, 1.0, span) / span
    return weights


def linear_weights(source: int, target: int) -> np.ndarray:
    """float64[target, source]: bilinear with pixel centres at i + 0.5, edges clamped."""
    k = source / target
    weights = np.zeros((target, source))
    for i in range(target):
        position = (i + 0.5) * k - 0.5
        left = math.floor(position)
        fraction = position - left
        if left < 0:
            left, fraction = 0, 0.0
        if left >= source - 1:
            left, fraction = source - 1, 0.0
        weights[i, left] += 1.0 - fraction
        if fraction:
            weights[i, left + 1] += fraction
    return weights


def axis_weights(source: int, target: int) -> np.ndarray:
    if target == source:
        return np.eye(source)
    if target < source:
        return area_weights(source, target)
    return linear_weights(source, target)


def lookup(pixels: np.ndarray, lut: np.ndarray, lut_first_value: int) -> np.ndarray:
    """float64[rows, columns]: lut[clamp(stored - lut_first_value, 0, len(lut) - 1)]."""
    index = np.clip(pixels.astype(np.int64) - lut_first_value, 0, len(lut) - 1)
    return lut.astype(np.float64)[index]


def resample(image: np.ndarray, content_h: int, content_w: int) -> np.ndarray:
    """float64[content_h, content_w] from float64[rows, columns], separable."""
    rows, columns = image.shape
    return axis_weights(rows, content_h) @ image @ axis_weights(columns, content_w).T


def preprocess(
    pixels: np.ndarray,
    lut: np.ndarray,
    lut_first_value: int,
    height: int,
    width: int,
    resize: str = "letterbox",
    pad_value: float = 0.0,
    mean=(0.0,),
    std=(1.0,),
    channels: int = 1,
) -> np.ndarray:
    """float64[channels, height, width]: the op's output for one image, before the dtype cast."""
    rows, columns = pixels.shape
    g = geometry(rows, columns, height, width, resize)
    content = resample(lookup(pixels, lut, lut_first_value), g["content_height"], g["content_width"])
    display = np.full((height, width), float(pad_value))
    y0, x0 = g["offset_y"], g["offset_x"]
    display[y0 : y0 + g["content_height"], x0 : x0 + g["content_width"]] = content
    mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), (channels,))
    std = np.broadcast_to(np.asarray(std, dtype=np.float64), (channels,))
    return np.stack([(display - mean[c]) / std[c] for c in range(channels)])
