"""The placement the decode ops share: where the source image lies in the model input.

A head's output grid (h x w) spans the whole model input at any resolution; the source
image (or its crop) fills the content rectangle of the input, as the preprocess op placed
it (``radedge.ops.preprocess.ResizeGeometry``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

_INTEGER_FIELDS = ("content_height", "content_width", "offset_y", "offset_x")
_REAL_FIELDS = ("scale_y", "scale_x")
# Older geometries have no crop: the whole image was resized.
_CROP_FIELDS = ("crop_y", "crop_x")


def input_size_of(input_size: Any) -> tuple[int, int]:
    """(height, width) of the model input from a (height, width) pair or a PreprocessSpec."""
    if hasattr(input_size, "height") and hasattr(input_size, "width"):
        pair = (input_size.height, input_size.width)
    else:
        pair = input_size
    try:
        height, width = pair
        return operator.index(height), operator.index(width)
    except (TypeError, ValueError):
        raise ValueError(
            f"input_size must be the model input's (height, width) in integers, or its PreprocessSpec; "
            f"got {input_size!r}"
        ) from None


def placement(geometry: Any, input_size: Any) -> dict:
    """The native ops' placement dict from a ResizeGeometry (or a mapping with its fields)
    and the model input size."""
    if isinstance(geometry, Mapping):
        get = geometry.get
    else:

        def get(name, default=None):
            return getattr(geometry, name, default)

    missing = [name for name in _INTEGER_FIELDS + _REAL_FIELDS if get(name) is None]
    if missing:
        raise ValueError(
            f"geometry must describe where the image lies in the model input (the ResizeGeometry that "
            f"preprocess returned); {type(geometry).__name__} lacks {', '.join(missing)}"
        )
    height, width = input_size_of(input_size)
    result = {"input_height": height, "input_width": width}
    for name in _INTEGER_FIELDS + _CROP_FIELDS:
        result[name] = get(name, 0)
    for name in _REAL_FIELDS:
        result[name] = get(name)
    return result
