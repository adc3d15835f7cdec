"""Class activation map heads: maps [1, K, h, w], one per class of the classification head
they explain; the map of that head's top class (or of ``decode.label``) is kept for display,
drawn over the source by ``radedge.ops.overlay_cam`` at the source image's geometry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError
from ..spec.geometry import ResizeGeometry
from ..spec.heads import HeadSpec
from .base import ColourMapLayer, DecodeContext, HeadResult, register, tensor
from .classification import ClassificationResult


@dataclass(frozen=True, eq=False)
class CamResult(HeadResult):
    """The class activation map of class ``label``, as head ``explains`` decided it.

    ``values``: float32 [h, w] over the whole model input (None in a result read back from
    JSON, which holds only ``map_shape``); ``geometry``: where the source (or its crop) lies
    in that input; ``peak_xy``: the map's maximum inside the image, in source pixels
    (continuous coordinates), or None when the map is flat there. ``colormap``, ``alpha``
    and ``floor``: how the overlay draws it (the manifest's decode parameters).
    """

    kind: ClassVar[str] = "cam"
    head: str
    labels: tuple[str, ...]
    explains: str
    label: str
    values: np.ndarray | None
    geometry: ResizeGeometry
    peak_xy: tuple[float, float] | None
    colormap: str = "turbo"
    alpha: float = 0.4
    floor: float = 0.2
    map_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.values is not None:
            object.__setattr__(self, "map_shape", (int(self.values.shape[0]), int(self.values.shape[1])))

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "explains": self.explains,
            "label": self.label,
            "map_shape": None if self.map_shape is None else list(self.map_shape),
            "peak_xy": None if self.peak_xy is None else [round(v, 2) for v in self.peak_xy],
        }

    @classmethod
    def from_dict(cls, head: str, document: Mapping[str, Any], geometry: ResizeGeometry) -> CamResult:
        """The result ``to_dict`` describes, over the model input ``geometry`` places the
        image in (the prediction's); without its map, so the overlay cannot draw it."""
        peak, shape = document.get("peak_xy"), document.get("map_shape")
        return cls(
            head, tuple(document["labels"]), str(document["explains"]), str(document["label"]), None, geometry,
            None if peak is None else (float(peak[0]), float(peak[1])),
            map_shape=None if shape is None else (int(shape[0]), int(shape[1])),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CamResult):
            return NotImplemented
        same_values = (self.values is None and other.values is None) or (
            self.values is not None and other.values is not None and np.array_equal(self.values, other.values)
        )
        return same_values and all(
            getattr(self, name) == getattr(other, name)
            for name in ("head", "labels", "explains", "label", "geometry", "peak_xy", "colormap", "alpha", "floor",
                         "map_shape")
        )

    __hash__ = None  # type: ignore[assignment]

    def layers(self) -> tuple[Any, ...]:
        if self.values is None:
            return ()
        return (ColourMapLayer(self.values, self.geometry, self.colormap, self.alpha, self.floor),)


def _peak(values: np.ndarray, geometry: ResizeGeometry) -> tuple[float, float] | None:
    """The map's maximum over the cells whose centres lie in the image content, mapped to source pixels."""
    height, width = values.shape
    input_height, input_width = geometry.input_size
    ys = (np.arange(height) + 0.5) * input_height / height
    xs = (np.arange(width) + 0.5) * input_width / width
    rows = (ys >= geometry.offset_y) & (ys < geometry.offset_y + geometry.content_height)
    columns = (xs >= geometry.offset_x) & (xs < geometry.offset_x + geometry.content_width)
    inside = values[np.ix_(rows, columns)]
    if inside.size == 0 or float(inside.max()) == float(inside.min()):
        return None
    row, column = np.unravel_index(int(np.argmax(inside)), inside.shape)
    x, y = geometry.to_source(xs[columns][column], ys[rows][row])
    return (float(x), float(y))


@register("cam")
def decode_cam(spec: HeadSpec, outputs: Mapping[str, np.ndarray], context: DecodeContext) -> CamResult:
    """maps float32 / float16 [1, K, h, w] -> the map of the explained head's class."""
    maps = tensor(spec, outputs, ndim=4)
    if maps.shape[1] != len(spec.labels):
        raise BackendError(f"head {spec.name!r} has {maps.shape[1]} maps for labels {spec.labels}")
    decode = spec.decode
    explained = context.decoded.get(decode.explains)
    if not isinstance(explained, ClassificationResult):
        raise BackendError(f"cam head {spec.name!r} explains {decode.explains!r}, which was not decoded before it")
    label = decode.label or explained.top_label
    values = np.ascontiguousarray(maps[0, spec.labels.index(label)], dtype=np.float32)
    if not np.isfinite(values).all():
        raise BackendError(f"head {spec.name!r} produced non-finite values; the model or its input is broken")
    return CamResult(
        spec.name, spec.labels, decode.explains, label, values, context.geometry, _peak(values, context.geometry),
        decode.colormap, decode.alpha, decode.floor,
    )
