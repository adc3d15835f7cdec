"""The overlay a technologist sees: the windowed image, every head's layers, the flags in a banner.

``render_overlay`` draws the layers head results give (``radedge.heads``: masks filled and
outlined, boxes with class and score, labelled points, class activation maps in colour) on
the image as the model saw it (its lookup table), at display size. Shapes are drawn with numpy,
text with Pillow's FreeType font (Pillow comes with highdicom), the PNG encoded by imagecodecs'
libpng: no OpenCV, which a console application may carry in another build.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import imagecodecs
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..heads.base import BoxLayer, ColourMapLayer, MaskLayer, PointLayer
from ..ops.cam_overlay import overlay_cam
from ..ops.preprocess import preprocess
from ..spec.preprocess import PreprocessSpec

_COLOURS = [(255, 64, 32), (32, 160, 255), (64, 255, 64), (255, 224, 32), (224, 64, 255), (32, 255, 224)]
# Pillow's font size (the em, pixels) per pixel of capital-letter height: the banner and captions
# keep the letter heights they had when drawn in OpenCV's Hershey font (22 pixels at scale 1).
_EM_PER_CAP_HEIGHT = 20 / 14
_HERSHEY_CAP_HEIGHT = 22


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
    ``layers`` drawn over it (colour maps first, captions last), and ``banner`` lines on a
    black band (in red when ``alert``)."""
    rows, columns = display.rows, display.columns
    scale = min(1.0, max_side / max(rows, columns))
    height, width = max(1, round(rows * scale)), max(1, round(columns * scale))
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[...] = display.grey(height, width)[:, :, None]
    for layer in layers:
        if isinstance(layer, ColourMapLayer):
            _draw_colour_map(canvas, display, layer, scale)
    thickness = max(1, width // 400)
    caption_size = max(0.35, height / 1400) * _HERSHEY_CAP_HEIGHT
    captions: list[tuple[tuple[int, int], str, tuple[int, int, int], float, tuple[int, int, int] | None]] = []
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
                left, top = int(math.floor(x1 * scale)), int(math.floor(y1 * scale))
                right, bottom = int(math.ceil(x2 * scale)) - 1, int(math.ceil(y2 * scale)) - 1
                _draw_rectangle(canvas, left, top, right, bottom, colour, thickness)
                captions.append(((left, max(top - 4, 12)), caption, colour, caption_size, (0, 0, 0)))
        elif isinstance(layer, PointLayer):
            colour = _COLOURS[colour_index % len(_COLOURS)]
            colour_index += 1
            radius = max(3, width // 150)
            for (x, y), caption in layer.points:
                centre = (int(x * scale), int(y * scale))
                _draw_disc(canvas, centre, radius, colour)
                captions.append(((centre[0] + radius + 2, centre[1] + radius), caption, colour, caption_size, (0, 0, 0)))
    band = max(18, height // 24)
    lines = list(banner) or ["No flags"]
    canvas[: band * len(lines) + 1] = 0
    banner_colour = (255, 80, 60) if alert else (200, 200, 200)
    # A band of 32 pixels or more gets bold letters: an outline of their own colour.
    bold = banner_colour if band >= 32 else None
    for index, line in enumerate(lines):
        captions.append(((6, int(band * (index + 0.72))), line, banner_colour, band / 40.0 * _HERSHEY_CAP_HEIGHT, bold))
    return _draw_text(canvas, captions)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of ``rgb`` (uint8 [h, w, 3]): zlib level 1 with the Up filter, which on overlays
    gives a smaller file than OpenCV's defaults in less time (``examples/bench_raster_codecs.py``)."""
    return imagecodecs.png_encode(np.ascontiguousarray(rgb), level=1, filter=imagecodecs.PNG.FILTER.UP)


def _draw_mask(canvas: np.ndarray, region: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    """Tint ``region`` (bool, source size), area-averaged to the canvas, and draw its boundary
    (the pixels with a 4-neighbour outside it, holes' included) ``thickness`` pixels wide."""
    height, width = canvas.shape[:2]
    coverage, _ = preprocess(region.view(np.uint8), _COVERAGE_TABLE, 0, PreprocessSpec(height, width, resize="stretch"))
    small = coverage[0, 0] >= 0.5
    if not small.any():
        return
    tint = np.array(colour, dtype=np.float32)
    canvas[small] = (0.6 * canvas[small] + 0.4 * tint).astype(np.uint8)
    padded = np.pad(small, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    edge = small & ~inner
    if thickness > 1:
        grown = np.pad(edge, thickness)
        wide = np.zeros_like(grown)
        for dy in range(-(thickness // 2), (thickness - 1) // 2 + 1):
            for dx in range(-(thickness // 2), (thickness - 1) // 2 + 1):
                wide |= np.roll(grown, (dy, dx), axis=(0, 1))
        edge = wide[thickness:-thickness, thickness:-thickness]
    canvas[edge] = colour


_COVERAGE_TABLE = np.array([0.0, 1.0], dtype=np.float32)


def _draw_rectangle(canvas: np.ndarray, left: int, top: int, right: int, bottom: int,
                    colour: tuple[int, int, int], thickness: int) -> None:
    """The outline of the rectangle with corners (left, top) and (right, bottom), inclusive, each
    side ``thickness`` pixels wide and centred on it; clipped to the canvas."""
    height, width = canvas.shape[:2]
    before, after = thickness // 2, (thickness - 1) // 2

    def fill(y0: int, y1: int, x0: int, x1: int) -> None:
        y0, y1, x0, x1 = max(y0, 0), min(y1, height - 1), max(x0, 0), min(x1, width - 1)
        if y0 <= y1 and x0 <= x1:
            canvas[y0:y1 + 1, x0:x1 + 1] = colour

    fill(top - before, top + after, left - before, right + after)
    fill(bottom - before, bottom + after, left - before, right + after)
    fill(top - before, bottom + after, left - before, left + after)
    fill(top - before, bottom + after, right - before, right + after)


def _draw_disc(canvas: np.ndarray, centre: tuple[int, int], radius: int, colour: tuple[int, int, int]) -> None:
    """A filled disc, its rim anti-aliased: each pixel covered by the part of a 1-pixel ramp
    across the radius its centre lies on."""
    height, width = canvas.shape[:2]
    x, y = centre
    x0, x1 = max(x - radius - 1, 0), min(x + radius + 2, width)
    y0, y1 = max(y - radius - 1, 0), min(y + radius + 2, height)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    cover = np.clip(radius + 0.5 - np.hypot(xx - x, yy - y), 0.0, 1.0)[:, :, None]
    patch = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (patch + cover * (np.array(colour, dtype=np.float32) - patch) + 0.5).astype(np.uint8)


@lru_cache(maxsize=32)
def _font(em: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(em)


@lru_cache(maxsize=512)
def _text_coverage(text: str, em: int, outline: int) -> tuple[np.ndarray, int, int]:
    """float32 [h, w] coverage in [0, 1] of ``text`` in the ``em``-pixel font, grown by an
    ``outline`` pixels wide, and where its top left lies from the left end of the baseline.
    Cached: level names, labels and banner lines repeat from image to image."""
    font = _font(em)
    if isinstance(font, ImageFont.FreeTypeFont):
        left, top, right, bottom = font.getbbox(text, anchor="ls", stroke_width=outline)
        options = {"anchor": "ls", "stroke_width": outline, "stroke_fill": 255}
    else:  # a Pillow without FreeType has only its small bitmap font, placed from its top
        left, top, right, bottom = font.getbbox(text)
        top, bottom, options = top - 11, bottom - 11, {}
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font, **options)
    return np.asarray(mask, dtype=np.float32) / 255.0, left, top


def _draw_text(canvas: np.ndarray, texts: Sequence[tuple]) -> np.ndarray:
    """``canvas`` with each (origin, text, colour, capital height, outline colour or None) drawn,
    ``origin`` the left end of its baseline; an outline is one pixel wide: black, for captions
    that must read on any background, or the text's colour for bold."""
    for (x, y), text, colour, cap_height, outline in texts:
        em = max(6, round(cap_height * _EM_PER_CAP_HEIGHT))
        if outline is not None:
            _blend(canvas, *_text_coverage(text, em, 1), x, y, outline)
        if outline != colour:
            _blend(canvas, *_text_coverage(text, em, 0), x, y, colour)
    return canvas


def _blend(canvas: np.ndarray, coverage: np.ndarray, left: int, top: int, x: int, y: int,
           colour: tuple[int, int, int]) -> None:
    """``colour`` over ``canvas`` where ``coverage`` (placed at x + left, y + top) says, clipped."""
    height, width = canvas.shape[:2]
    x0, y0 = x + left, y + top
    cx0, cy0 = max(0, -x0), max(0, -y0)
    cx1, cy1 = min(coverage.shape[1], width - x0), min(coverage.shape[0], height - y0)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    alpha = coverage[cy0:cy1, cx0:cx1, None]
    region = canvas[y0 + cy0:y0 + cy1, x0 + cx0:x0 + cx1]
    patch = region.astype(np.float32)
    region[...] = (patch + alpha * (np.array(colour, dtype=np.float32) - patch) + 0.5).astype(np.uint8)


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
