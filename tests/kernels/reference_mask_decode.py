"""Slow, obvious numpy reference for the mask decode op (``radedge._kernels.mask_decode_cpu``).

Written from the documented rules only; it shares no code with the C++ op:

- per axis, each mask pixel centre ``i + 0.5`` is scaled to the source image, tested
  against the crop (outside: label 0), mapped through the crop -> content resize into
  the model input and scaled to the logit plane, then clamped to the plane's edges:
  ``p = ((s - crop_start) * (content / crop) + offset) * (logits / input) - 0.5``;
- the logits are read bilinearly at every pixel, in float64 (no cell shortcut);
- sigmoid: channel c qualifies where its value >= log(t_c / (1 - t_c)); the pixel gets
  1 + the qualifying channel with the highest value (lowest index on ties), else 0;
  softmax: the argmax (lowest index on ties);
- statistics from the finished mask with numpy; run-length encoding by comparing each
  pixel with the one before it in row-major order.
"""

from __future__ import annotations

import numpy as np


def axis_positions(
    output_size: int,
    source_size: int,
    crop_start: int,
    crop_size: int,
    content_offset: int,
    content_size: int,
    input_size: int,
    logits_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(inside bool[output_size], p float64[output_size]): whether each pixel centre
    is in the crop, and its clamped logit-plane coordinate."""
    i = np.arange(output_size, dtype=np.float64)
    s = (i + 0.5) * (source_size / output_size)
    inside = (s >= crop_start) & (s < crop_start + crop_size)
    p = ((s - crop_start) * (content_size / crop_size) + content_offset) * (logits_size / input_size) - 0.5
    return inside, np.clip(p, 0.0, logits_size - 1)


def bilinear(plane: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """float64[len(py), len(px)]: ``plane`` (float64 [h, w]) read at every (py, px) pair."""
    h, w = plane.shape
    y0 = np.floor(py).astype(np.int64)
    x0 = np.floor(px).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (py - y0)[:, None], (px - x0)[None, :]
    top = plane[y0][:, x0] * (1 - fx) + plane[y0][:, x1] * fx
    bottom = plane[y1][:, x0] * (1 - fx) + plane[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def logit_thresholds(thresholds, channels: int) -> np.ndarray:
    """float64[channels]: probabilities -> logits (0 -> -inf, 1 -> +inf)."""
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (channels,))
    with np.errstate(divide="ignore"):
        return np.log(t) - np.log1p(-t)


def labels_from_values(values: np.ndarray, activation: str, thresholds=None) -> np.ndarray:
    """uint8[H, W] from the interpolated logits float64 [C, H, W]."""
    if activation == "softmax":
        return np.argmax(values, axis=0).astype(np.uint8)
    t = logit_thresholds(thresholds, values.shape[0])[:, None, None]
    qualifies = values >= t
    best = np.argmax(np.where(qualifies, values, -np.inf), axis=0)
    return np.where(qualifies.any(axis=0), best + 1, 0).astype(np.uint8)


def interpolate(logits: np.ndarray, geometry: dict, output_size: tuple[int, int]):
    """(values float64 [C, H, W], inside bool[H, W]): every channel of ``logits`` (one
    image, [C, h, w]) read at every mask pixel; ``geometry`` holds the op's keywords."""
    g = geometry
    channels, h, w = logits.shape
    height, width = output_size
    inside_y, py = axis_positions(
        height, g["source_rows"], g["crop_y"], g["crop_height"], g["offset_y"], g["content_height"],
        g["input_height"], h,
    )
    inside_x, px = axis_positions(
        width, g["source_columns"], g["crop_x"], g["crop_width"], g["offset_x"], g["content_width"],
        g["input_width"], w,
    )
    planes = logits.astype(np.float64)
    values = np.stack([bilinear(planes[c], py, px) for c in range(channels)])
    return values, inside_y[:, None] & inside_x[None, :]


def decode(logits: np.ndarray, geometry: dict, output_size: tuple[int, int], activation: str, thresholds=None):
    """(mask uint8 [H, W], values float64 [C, H, W], inside bool[H, W]) for one image."""
    values, inside = interpolate(logits, geometry, output_size)
    mask = labels_from_values(values, activation, thresholds)
    mask[~inside] = 0
    return mask, values, inside


def near_decision_boundary(values: np.ndarray, activation: str, thresholds, tolerance: float) -> np.ndarray:
    """bool[H, W]: pixels where float32 rounding may legitimately change the label: some
    channel within ``tolerance`` of its threshold (sigmoid), or the two channels that
    compete for the pixel within ``tolerance`` of each other (the highest qualifying
    channels for sigmoid, the top two for softmax)."""
    if activation == "softmax":
        top_two = np.sort(values, axis=0)[-2:]
        return (top_two[1] - top_two[0]) <= tolerance
    t = logit_thresholds(thresholds, values.shape[0])[:, None, None]
    near_threshold = (np.abs(values - t) <= tolerance).any(axis=0)
    # Candidates for the win: every channel at or above its threshold minus the tolerance.
    candidates = np.where(values >= t - tolerance, values, -np.inf)
    if values.shape[0] < 2:
        return near_threshold
    top_two = np.sort(candidates, axis=0)[-2:]
    with np.errstate(invalid="ignore"):
        near_tie = np.isfinite(top_two[0]) & ((top_two[1] - top_two[0]) <= tolerance)
    return near_threshold | near_tie


def statistics(mask: np.ndarray, label_count: int, pixel_area_mm2: float | None) -> list[dict]:
    """Per label 1..label_count: pixel_count, bbox (x0, y0, x1, y1 exclusive), centroid
    (x, y, centres at + 0.5), area_mm2 - from the mask alone."""
    out = []
    for value in range(1, label_count + 1):
        ys, xs = np.nonzero(mask == value)
        count = len(xs)
        area = None if pixel_area_mm2 is None else count * pixel_area_mm2
        if count == 0:
            out.append(dict(pixel_count=0, bbox=None, centroid=None, area_mm2=area))
            continue
        out.append(
            dict(
                pixel_count=count,
                bbox=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                centroid=(float(xs.mean()) + 0.5, float(ys.mean()) + 0.5),
                area_mm2=area,
            )
        )
    return out


def pixel_area(spacing_mm, geometry: dict, output_size: tuple[int, int]) -> float | None:
    """mm^2 of one mask pixel: the source's pixel area times source pixels per mask pixel."""
    if spacing_mm is None:
        return None
    row_mm, column_mm = spacing_mm
    height, width = output_size
    return (row_mm * geometry["source_rows"] / height) * (column_mm * geometry["source_columns"] / width)


def rle_encode(mask: np.ndarray) -> np.ndarray:
    """uint32 [K, 2] (value, length) runs of the mask in row-major order."""
    flat = mask.reshape(-1)
    starts = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    return np.stack([flat[starts], lengths], axis=1).astype(np.uint32)
