"""The one conversion of a geometry into what the native ops take.

Every decode op (mask decode, detection, heatmap peaks, CAM overlay) maps between the model
input and the source image through the ``ResizeGeometry`` the preprocess op returned
(``radedge.spec.geometry``). The native ops take it as radedge/geometry.h's ``InputGeometry``:
the geometry's fields together with the model input size, which a head's output grid spans at
any resolution. This module makes that from a ResizeGeometry, or any object or mapping with its
fields, and an optional ``input_size``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._native import kernels

# InputGeometry's fields, in the order of its layout (radedge/geometry.h, _kernels.GEOMETRY_FIELDS).
_FIELDS = (
    "source_rows", "source_columns", "crop_x", "crop_y", "crop_width", "crop_height", "content_height", "content_width",
    "offset_y", "offset_x", "scale_y", "scale_x", "input_height", "input_width",
)
_FIELD_SET = frozenset(_FIELDS)
# The fields a geometry cannot do without: the crop defaults to the whole image, the scales are
# content / crop, and the model input size may be given as input_size.
_REQUIRED = ("source_rows", "source_columns", "content_height", "content_width", "offset_y", "offset_x")


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


def input_geometry(geometry: Any, input_size: Any = None) -> dict:
    """The native ops' geometry: a dict of InputGeometry's fields (see ``_kernels.GEOMETRY_FIELDS``).

    ``geometry``: the ResizeGeometry the preprocess op returned, or any object or mapping with its
    fields; crop fields that are absent or None mean the whole image was resized, absent scales
    are content / crop as the preprocess op computes them (0 for an empty crop, which the op
    refuses). ``input_size``: the model input's (height, width) or its PreprocessSpec; None takes
    it from the geometry's ``input_height`` and ``input_width``. The values are passed on as they
    are: the native op refuses a non-integer offset or size rather than rounding it, and checks
    that the parts fit together.

    Raises ValueError when the geometry lacks a field, when neither it nor ``input_size`` gives the
    model input size, or when both do and disagree.
    """
    # A dataclass or namespace keeps its fields in __dict__; other objects are asked one by one.
    fields = geometry if isinstance(geometry, Mapping) else getattr(geometry, "__dict__", {})
    if fields.keys() == _FIELD_SET:
        # Exactly the fields (a ResizeGeometry): one copy, as the ops run this on every call.
        g = dict(fields)
    elif fields is geometry:
        g = {name: geometry.get(name) for name in _FIELDS}
    else:
        g = {name: fields[name] if name in fields else getattr(geometry, name, None) for name in _FIELDS}
    missing = [name for name in _REQUIRED if g[name] is None]
    if missing:
        raise ValueError(
            f"geometry must describe where the image lies in the model input (the ResizeGeometry that "
            f"preprocess returned); {type(geometry).__name__} lacks {', '.join(missing)}"
        )
    recorded = (g["input_height"], g["input_width"])
    if input_size is None:
        if None in recorded:
            raise ValueError(
                "the geometry does not record the model input size: pass input_size=(height, width), or the "
                "ResizeGeometry the preprocess op returned (it records the size)"
            )
    else:
        size = input_size_of(input_size)
        if None not in recorded and recorded != size:
            raise ValueError(
                f"input_size {size} disagrees with the model input the geometry records ({recorded[0]}, "
                f"{recorded[1]}); pass the geometry the preprocess op returned for this model, or leave input_size out"
            )
        g["input_height"], g["input_width"] = size
    if g["crop_x"] is None:
        g["crop_x"] = 0
    if g["crop_y"] is None:
        g["crop_y"] = 0
    if g["crop_width"] is None:
        g["crop_width"] = g["source_columns"] - g["crop_x"]
    if g["crop_height"] is None:
        g["crop_height"] = g["source_rows"] - g["crop_y"]
    if g["scale_y"] is None:
        g["scale_y"] = g["content_height"] / g["crop_height"] if g["crop_height"] else 0.0
    if g["scale_x"] is None:
        g["scale_x"] = g["content_width"] / g["crop_width"] if g["crop_width"] else 0.0
    return g


def is_per_image(geometry: Any) -> bool:
    """Whether ``geometry`` is a sequence of one geometry per image rather than one geometry."""
    return isinstance(geometry, Sequence) and not isinstance(geometry, (str, bytes))


def input_geometries(geometry: Any, batch: int, input_size: Any = None, *, one_for_all: bool = False) -> list[dict]:
    """The native geometries of a batch of ``batch`` images: one per image, from one geometry for
    every image or a sequence of one per image. With ``one_for_all`` a single geometry gives a list
    of one (for ops that take one geometry for the whole batch). ``input_size`` as for
    :func:`input_geometry`."""
    if not is_per_image(geometry):
        one = input_geometry(geometry, input_size)
        return [one] if one_for_all else [one] * batch
    if len(geometry) != batch:
        raise ValueError(
            f"geometry must be one geometry for the whole batch or a sequence of one per image ({batch}); "
            f"got a sequence of {len(geometry)}"
        )
    return [input_geometry(g, input_size) for g in geometry]


def geometry_table(geometry: Any, batch: int, *, input_size: Any = None) -> np.ndarray:
    """uint8 [N, 112]: the geometries of a batch (one geometry for every image, or a sequence of
    one per image), checked, each row the bytes of the InputGeometry the CUDA detection ops read
    (the fields of ``radedge._kernels.GEOMETRY_FIELDS`` in order, int64 or float64, native byte
    order). Upload it once with ``radedge.cuda.DeviceArray.from_numpy(table)`` and pass the device
    copy as the zero-copy ops' ``geometry``: a CUDA graph capture cannot upload it itself.
    ``input_size`` as for :func:`input_geometry`."""
    if geometry is None:
        raise ValueError("geometry is None: there is nothing to map (pass None as the ops' geometry instead)")
    return kernels().geometry_table(input_geometries(geometry, int(batch), input_size))
