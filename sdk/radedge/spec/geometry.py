"""Where each model-input pixel came from: the one geometry type every op and head shares.

The preprocess op places a rectangle of the source image (the whole image, or a crop of
it) into the model input, resized and, for a letterbox, padded; it returns that placement
as a ``ResizeGeometry``. Every decode op (mask decode, box decode, heatmap peaks, CAM
overlay) reads the same object to map head outputs back to source pixels, and a second-stage
model reads its crop from one. Plain data: importing this module loads no native code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class ResizeGeometry:
    """Where the resized source crop lies in the model input.

    Coordinates are continuous pixel coordinates in which pixel ``i`` spans [i, i + 1)
    and its centre is at ``i + 0.5``, in both the source image and the model input, so
    ``x_out = (x_src - crop_x) * scale_x + offset_x`` maps edges to edges and centres to
    centres. ``source_rows`` x ``source_columns``: the whole source image;
    ``crop_x``, ``crop_y``, ``crop_width``, ``crop_height``: the rectangle of it that was
    resized (defaults: the whole image); ``content_height`` x ``content_width``: size of the
    resized crop inside the output (pixels); ``offset_y``, ``offset_x``: its top-left corner
    (the letterbox padding before it); ``scale_y = content_height / crop_height``,
    ``scale_x = content_width / crop_width``. ``input_height`` x ``input_width``: the model
    input the content lies in (the preprocess op records it; a head's output grid spans
    the whole input at any resolution).
    """

    source_rows: int
    source_columns: int
    content_height: int
    content_width: int
    offset_y: int
    offset_x: int
    scale_y: float
    scale_x: float
    crop_x: int = 0
    crop_y: int = 0
    crop_width: int | None = None  # None: source_columns - crop_x
    crop_height: int | None = None  # None: source_rows - crop_y
    input_height: int | None = None  # the model input the placement is in; None: not recorded
    input_width: int | None = None

    def __post_init__(self) -> None:
        if self.crop_width is None:
            object.__setattr__(self, "crop_width", self.source_columns - self.crop_x)
        if self.crop_height is None:
            object.__setattr__(self, "crop_height", self.source_rows - self.crop_y)

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(height, width) of the model input, or None when the geometry does not record it."""
        if self.input_height is None or self.input_width is None:
            return None
        return (self.input_height, self.input_width)

    @property
    def crop(self) -> Crop:
        """The source rectangle that was resized."""
        return Crop(self.crop_x, self.crop_y, self.crop_width, self.crop_height)

    def to_source(self, x_out, y_out):
        """Model-input coordinates (floats or numpy arrays, pixels) -> source-image coordinates."""
        return (
            np.subtract(x_out, self.offset_x) / self.scale_x + self.crop_x,
            np.subtract(y_out, self.offset_y) / self.scale_y + self.crop_y,
        )

    def to_output(self, x_src, y_src):
        """Source-image coordinates (floats or numpy arrays, pixels) -> model-input coordinates."""
        return (
            np.subtract(x_src, self.crop_x) * self.scale_x + self.offset_x,
            np.subtract(y_src, self.crop_y) * self.scale_y + self.offset_y,
        )

    def as_dict(self) -> dict:
        return asdict(self)


class Crop(NamedTuple):
    """A rectangle of source pixels: columns ``x .. x + width - 1``, rows ``y .. y + height - 1``.

    It must lie inside the image and hold at least one pixel; anything else is a
    ValueError from the op.
    """

    x: int
    y: int
    width: int
    height: int


def center_crop(rows: int, columns: int, *, fraction: float | None = None, aspect: float | None = None) -> Crop:
    """The centred crop of a ``rows`` x ``columns`` image, from a fraction, an aspect ratio, or both.

    ``aspect`` (width / height, > 0): the largest centred rectangle of that shape, e.g.
    ``aspect=1`` for the central square. ``fraction`` (0 < f <= 1): keep that fraction of
    each side (of the aspect crop, when both are given). Sizes are rounded half up and are
    at least one pixel; offsets are ``(n - size) // 2``, as for the letterbox.
    """
    for name, value in (("rows", rows), ("columns", columns)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"center_crop: {name} must be a positive integer; got {value!r}")
    if fraction is None and aspect is None:
        raise ValueError("center_crop: give fraction (of each side, 0 < f <= 1), aspect (width / height), or both")
    width, height = int(columns), int(rows)
    if aspect is not None:
        if not (math.isfinite(aspect) and aspect > 0):
            raise ValueError(f"center_crop: aspect (width / height) must be finite and > 0; got {aspect!r}")
        if width > height * aspect:
            width = max(1, math.floor(height * aspect + 0.5))
        else:
            height = max(1, math.floor(width / aspect + 0.5))
    if fraction is not None:
        if not (math.isfinite(fraction) and 0 < fraction <= 1):
            raise ValueError(f"center_crop: fraction must be in (0, 1]; got {fraction!r}")
        width = max(1, math.floor(width * fraction + 0.5))
        height = max(1, math.floor(height * fraction + 0.5))
    return Crop((int(columns) - width) // 2, (int(rows) - height) // 2, width, height)


def grow_box(box: tuple[float, ...], margin: float, rows: int, columns: int) -> Crop:
    """``box`` (x1, y1, x2, y2, source pixels) grown by ``margin`` of its size on each side,
    clipped to the image, as whole pixels: the region a second-stage model analyses
    (``InputRegion``), and the one its training must crop."""
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    left = max(0, math.floor(x1 - margin * width))
    top = max(0, math.floor(y1 - margin * height))
    right = min(columns, math.ceil(x2 + margin * width))
    bottom = min(rows, math.ceil(y2 + margin * height))
    right, bottom = max(right, min(columns, left + 1)), max(bottom, min(rows, top + 1))
    return Crop(left, top, right - left, bottom - top)
