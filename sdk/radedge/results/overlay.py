"""The overlay a technologist sees: the windowed image, every head's layers, the flags in a banner.

``render_overlay`` draws the layers head results give (``radedge.heads``: masks filled and
outlined, boxes with class and score, labelled points, class activation maps in colour) on
the image as the model saw it (its lookup table), at display size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..heads.base import BoxLayer, ColourMapLayer, MaskLayer, PointLayer
from ..ops.cam_overlay import overlay_cam
from ..ops.preprocess import preprocess
from ..spec.preprocess import PreprocessSpec

_COLOURS = [(255, 64, 32), (32, 160, 255), (64, 255, 64), (255, 224, 32), (224, 64, 255), (32, 255, 224)]


@dataclass(frozen=True, eq=False)
class DisplayImage:
    """The source image and the lookup table that windows it, for drawing on.

    ``pixels``: stored values [rows, columns]; ``table`` float32 and ``first_stored_value``:
    an ``IntensityLut``'s, mapping them to [0, 1].
    """

    pixels: np.ndarray
    table: np.ndarray
    first_stored_value: int

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return int(self.pixels.shape[1])

    def grey(self, height: int, width: int, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """uint8 [height, width]: the image (or its ``crop``, x y width height) windowed and resized."""
        values, _ = preprocess(
            self.pixels, self.table, self.first_stored_value, PreprocessSpec(height, width, resize="stretch"), crop=crop
        )
        return np.clip(values[0, 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_overlay(
    display: DisplayImage, layers: Sequence[Any], banner: Sequence[str], *, alert: bool, max_side: int = 1024
) -> np.ndarray:
    """RGB uint8 [h, w, 3]: the windowed image (long side at most ``max_side``), the
    ``layers`` drawn over it (colour maps first), and ``banner`` lines on a black band (in
    red when ``alert``)."""
    rows, columns = display.rows, display.columns
    scale = min(1.0, max_side / max(rows, columns))
    height, width = max(1, round(rows * scale)), max(1, round(columns * scale))
    canvas = cv2.cvtColor(display.grey(height, width), cv2.COLOR_GRAY2RGB)
    for layer in layers:
        if isinstance(layer, ColourMapLayer):
            _draw_colour_map(canvas, display, layer, scale)
    thickness = max(1, width // 400)
    colour_index = 0
    for layer in layers:
        if isinstance(layer, MaskLayer):
            for value in range(1, len(layer.labels) + 1):
                _draw_mask(canvas, layer.mask == value, _COLOURS[colour_index % len(_COLOURS)], thickness)
                colour_index += 1
        elif isinstance(layer, BoxLayer):
            colour = _COLOURS[colour_index % len(_COLOURS)]
            colour_index += 1
            for (x1, y1, x2, y2), caption in layer.boxes:
                top_left = (int(math.floor(x1 * scale)), int(math.floor(y1 * scale)))
                bottom_right = (int(math.ceil(x2 * scale)) - 1, int(math.ceil(y2 * scale)) - 1)
                cv2.rectangle(canvas, top_left, bottom_right, colour, thickness)
                _caption(canvas, caption, (top_left[0], max(top_left[1] - 4, 12)), colour, height)
        elif isinstance(layer, PointLayer):
            colour = _COLOURS[colour_index % len(_COLOURS)]
            colour_index += 1
            radius = max(3, width // 150)
            for (x, y), caption in layer.points:
                centre = (int(x * scale), int(y * scale))
                cv2.circle(canvas, centre, radius, colour, thickness=-1, lineType=cv2.LINE_AA)
                _caption(canvas, caption, (centre[0] + radius + 2, centre[1] + radius), colour, height)
    band = max(18, height // 24)
    lines = list(banner) or ["No flags"]
    cv2.rectangle(canvas, (0, 0), (width, band * len(lines)), (0, 0, 0), thickness=-1)
    for index, line in enumerate(lines):
        cv2.putText(
            canvas, line, (6, int(band * (index + 0.72))), cv2.FONT_HERSHEY_SIMPLEX, band / 40.0,
            (255, 80, 60) if alert else (200, 200, 200), max(1, band // 16), cv2.LINE_AA,
        )
    return canvas


def encode_png(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("OpenCV could not encode the overlay as PNG")
    return encoded.tobytes()


def _draw_mask(canvas: np.ndarray, region: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    height, width = canvas.shape[:2]
    small = cv2.resize(region.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA) >= 0.5
    if not small.any():
        return
    tint = np.array(colour, dtype=np.float32)
    canvas[small] = (0.6 * canvas[small] + 0.4 * tint).astype(np.uint8)
    contours, _ = cv2.findContours(small.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, colour, thickness)


def _draw_colour_map(canvas: np.ndarray, display: DisplayImage, layer: ColourMapLayer, scale: float) -> None:
    """The map over the region of the source its model saw (the whole image, or a crop),
    drawn by the CAM overlay op on that region of the canvas."""
    g = layer.geometry
    x0, y0 = int(round(g.crop_x * scale)), int(round(g.crop_y * scale))
    x1 = min(canvas.shape[1], int(round((g.crop_x + g.crop_width) * scale)))
    y1 = min(canvas.shape[0], int(round((g.crop_y + g.crop_height) * scale)))
    if x1 <= x0 or y1 <= y0:
        return
    region = display.grey(y1 - y0, x1 - x0, crop=(g.crop_x, g.crop_y, g.crop_width, g.crop_height))
    canvas[y0:y1, x0:x1] = overlay_cam(
        layer.values, region, g, colormap=layer.colormap, alpha=layer.alpha, floor=layer.floor
    )


def _caption(canvas: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int], height: int) -> None:
    size = max(0.35, height / 1400)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, size, colour, 1, cv2.LINE_AA)
