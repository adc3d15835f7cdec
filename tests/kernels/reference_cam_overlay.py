"""Slow, obvious numpy reference for the CAM overlay op (``radedge._kernels.cam_overlay_cpu``).

Written from the documented rules only; it shares no code with the C++ op:

- display pixel v of W shows input position ``(v + 0.5) * content / W + offset``, which is
  CAM position ``x_input * w / input`` (the CAM spans the input); the CAM is sampled
  bilinearly there with cell centres at i + 0.5 and edge cells repeated, in float64;
- normalised ``t = clip((sample - low) / (high - low), 0, 1)`` (0 when high <= low), with
  [low, high] the samples' minimum and maximum, or fixed;
- colour ``table[round(255 t)]``; the blend ``round((g (255 - a) + c a) / 255)`` with
  ``a = round(255 alpha)``, where ``t >= floor``; the grey value elsewhere.

The colour maps are evaluated here from their published definitions.
"""

from __future__ import annotations

import math

import numpy as np

# Google's polynomial approximation of Turbo (GLSL, Ruofei Du, 2019): per channel, the
# coefficients of 1, t, t^2, t^3 (kRedVec4, ...) and t^4, t^5 (kRedVec2, ...).
TURBO_COEFFICIENTS = np.array([
    [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
])


def to_bytes(unit: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def turbo_table() -> np.ndarray:
    t = np.arange(256) / 255.0
    powers = np.stack([t**p for p in range(6)])  # [6, 256]
    return to_bytes((TURBO_COEFFICIENTS @ powers).T)


def jet_table() -> np.ndarray:
    t = np.arange(256) / 255.0
    return to_bytes(np.stack([1.5 - np.abs(4.0 * t - k) for k in (3.0, 2.0, 1.0)], axis=1))


def table(colormap) -> np.ndarray:
    if isinstance(colormap, str):
        return {"turbo": turbo_table, "jet": jet_table}[colormap]()
    return np.asarray(colormap, dtype=np.uint8)


def axis_taps(display: int, offset: int, content: int, input_size: int, cam: int):
    """(left, right, fraction) per display pixel along one axis: the two CAM cells it lies
    between and how far it is from the left one's centre."""
    left, right, fraction = [], [], []
    for v in range(display):
        position = ((v + 0.5) * (content / display) + offset) * (cam / input_size) - 0.5
        cell = math.floor(position)
        if cell < 0:
            left.append(0), right.append(0), fraction.append(0.0)
        elif cell >= cam - 1:
            left.append(cam - 1), right.append(cam - 1), fraction.append(0.0)
        else:
            left.append(cell), right.append(cell + 1), fraction.append(position - cell)
    return np.array(left), np.array(right), np.array(fraction)


def samples(cam: np.ndarray, geometry: dict, rows: int, columns: int) -> np.ndarray:
    """float64 [rows, columns]: the CAM sampled at every display pixel."""
    p = geometry
    h, w = cam.shape
    top, bottom, fy = axis_taps(rows, p["offset_y"], p["content_height"], p["input_height"], h)
    left, right, fx = axis_taps(columns, p["offset_x"], p["content_width"], p["input_width"], w)
    values = cam.astype(np.float64)
    # Interpolating as a + f (b - a) keeps a constant map exactly constant.
    vertical = values[top] + fy[:, None] * (values[bottom] - values[top])
    return vertical[:, left] + fx[None, :] * (vertical[:, right] - vertical[:, left])


def blend(grey: np.ndarray, colour: np.ndarray, alpha: float) -> np.ndarray:
    """uint8: round((grey (255 - a) + colour a) / 255), a = round(255 alpha); never a tie."""
    a = math.floor(alpha * 255 + 0.5)
    numerator = grey.astype(np.int64) * (255 - a) + colour.astype(np.int64) * a
    return np.floor(numerator / 255 + 0.5).astype(np.uint8)


def overlay(cam, display, geometry, colormap="turbo", alpha=0.4, floor=0.0, normalise="minmax", low=0.0, high=1.0):
    """The op's result and its unrounded intermediates: a dict with ``image`` (uint8 [H, W, 3]),
    ``t`` (float64 [H, W], normalised), ``range`` (low, high) and ``colours`` (the table)."""
    rows, columns = display.shape
    values = samples(cam, geometry, rows, columns)
    if normalise == "minmax":
        low, high = float(values.min()), float(values.max())
    # The op samples in float32, where a constant stretch of the CAM stays exactly constant;
    # in float64 the interpolation weights leave ~1e-16 of noise on it. A spread far below
    # one float32 step of the values is that noise: the map is flat.
    flat = high - low <= 2.0**-30 * max(abs(low), abs(high))
    t = np.zeros_like(values) if flat else np.clip((values - low) / (high - low), 0.0, 1.0)
    colours = table(colormap)
    index = np.floor(t * 255 + 0.5).astype(np.int64)
    grey = display[..., None]
    image = np.where((t >= floor)[..., None], blend(grey, colours[index], alpha), grey)
    return {"image": image.astype(np.uint8), "t": t, "range": (low, high), "colours": colours}
