"""Slow, obvious numpy reference for the fused preprocess op (``radedge._kernels.preprocess``).

Written from the documented rules only; it shares no code with the C++ op:

- a crop ``(x, y, width, height)`` (default: the whole image) is cut out first and treated
  as the image from there on;
- letterbox geometry: ``s = min(H / rows, W / columns)`` of the crop, content size
  ``max(1, round(n * s))`` rounded half up (evaluated exactly, in rationals), offsets
  ``(H - content_h) // 2`` and ``(W - content_w) // 2``; stretch: the content is the whole output
  (tests/helpers.py's ``geometry_of``, which the decode op tests build their geometries with);
- float32 pixels: the LINEAR_EXACT window ``clip((v - low) / width, 0, 1)`` (then ``1 - x``
  when inverted), evaluated in float32 with ``low = float32(center - width / 2)`` as the op
  documents, since that rounding is part of its contract;
- per axis, separable: area weights when the axis shrinks (OpenCV INTER_AREA's coverage
  table, including its rule of ignoring boundary slivers of at most 1e-3 of a source
  pixel), bilinear with half-pixel centres and clamped edges when it grows (OpenCV
  INTER_LINEAR), identity when the size is unchanged;
- normalisation ``(value - mean[c]) / std[c]`` of both the content and the letterbox padding.

Everything else is computed in float64 with explicit weight matrices, so it is the
yardstick for the float32 kernels, not a copy of their arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from ..helpers import geometry_of


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


def float_window(pixels: np.ndarray, center: float, width: float, invert: bool = False) -> np.ndarray:
    """float64[rows, columns] display values of float32 pixels under a LINEAR_EXACT window."""
    low = np.float32(center - width / 2.0)
    with np.errstate(invalid="ignore"):
        t = (pixels.astype(np.float32) - low) / np.float32(width)
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0).astype(np.float64)
    return 1.0 - t if invert else t


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
    crop=None,
    window=None,
) -> np.ndarray:
    """float64[channels, height, width]: the op's output for one image, before the dtype cast.

    ``crop``: (x, y, width, height) or None; ``window``: (center, width, invert) for float32
    pixels, whose ``lut`` is None.
    """
    rows, columns = pixels.shape
    g = geometry_of(rows, columns, height, width, resize, crop)
    if pixels.dtype == np.float32:
        center, window_width, invert = window if window is not None else (0.5, 1.0, False)
        display = float_window(pixels, center, window_width, invert)
    else:
        display = lookup(pixels, lut, lut_first_value)
    x, y = g["crop_x"], g["crop_y"]
    display = display[y : y + g["crop_height"], x : x + g["crop_width"]]
    content = resample(display, g["content_height"], g["content_width"])
    display = np.full((height, width), float(pad_value))
    y0, x0 = g["offset_y"], g["offset_x"]
    display[y0 : y0 + g["content_height"], x0 : x0 + g["content_width"]] = content
    mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), (channels,))
    std = np.broadcast_to(np.asarray(std, dtype=np.float64), (channels,))
    return np.stack([(display - mean[c]) / std[c] for c in range(channels)])


def histogram(pixels: np.ndarray, first_value: int, bins: int, region=None, padding=None) -> np.ndarray:
    """int64[bins]: pixels of ``region`` (x, y, width, height; None: all) per clamped bin,
    pixels whose stored value lies in ``padding`` (low, high inclusive) left out."""
    if region is not None:
        x, y, width, height = region
        pixels = pixels[y : y + height, x : x + width]
    values = pixels.astype(np.int64).ravel()
    if padding is not None:
        values = values[(values < padding[0]) | (values > padding[1])]
    counts = np.zeros(bins, dtype=np.int64)
    for value in values:  # one at a time: slow and obvious
        counts[min(max(value - first_value, 0), bins - 1)] += 1
    return counts
