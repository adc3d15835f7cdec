"""Heatmap heads: one channel per landmark or point kind (vertebral levels L1-L5, fracture
points) -> peaks with sub-pixel refinement in source pixels (``radedge.ops.find_peaks`` /
``find_argmax``), per channel up to ``decode.k``, each with its score."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError
from ..ops.heatmap_peaks import find_argmax, find_peaks
from ..spec.heads import HeadSpec
from .base import DecodeContext, Finding, HeadResult, PointLayer, op_error, register, tensor


@dataclass(frozen=True)
class Point:
    """One peak: channel ``channel`` (``label``), at (``x``, ``y``) in source-image pixels
    (continuous coordinates: x = 10.5 is the centre of column 10), with its ``score``."""

    label: str
    channel: int
    score: float
    x: float
    y: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 6), "xy": [round(self.x, 2), round(self.y, 2)]}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], labels: tuple[str, ...]) -> Point:
        x, y = document["xy"]
        return cls(str(document["label"]), labels.index(document["label"]), float(document["score"]), float(x), float(y))


@dataclass(frozen=True)
class HeatmapResult(HeadResult):
    """The peaks one heatmap head found: per channel best first, channels in label order."""

    kind: ClassVar[str] = "heatmap"
    head: str
    labels: tuple[str, ...]
    points: tuple[Point, ...]

    def of(self, label: str) -> tuple[Point, ...]:
        return tuple(point for point in self.points if point.label == label)

    def nearest(self, x: float, y: float) -> Point | None:
        """The peak of any channel nearest to (x, y), source pixels; None without peaks."""
        if not self.points:
            return None
        return min(self.points, key=lambda p: (math.hypot(p.x - x, p.y - y), -p.score))

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "points": [point.to_dict() for point in self.points]}

    @classmethod
    def from_dict(cls, head: str, document: Mapping[str, Any]) -> HeatmapResult:
        """The result ``to_dict`` describes (figures as rounded there)."""
        labels = tuple(document["labels"])
        return cls(head, labels, tuple(Point.from_dict(point, labels) for point in document["points"]))

    def findings(self, label: str, threshold: float) -> tuple[Finding, ...]:
        return tuple(
            Finding(point.score, point=(point.x, point.y), where=point.label)
            for point in self.of(label)
            if point.score >= threshold
        )

    def layers(self) -> tuple[Any, ...]:
        return (PointLayer(tuple(((p.x, p.y), p.label) for p in self.points)),)


@register("heatmap")
def decode_heatmap(spec: HeadSpec, outputs: Mapping[str, np.ndarray], context: DecodeContext) -> HeatmapResult:
    """maps float32 / float16 [1, C, h, w] -> the peaks of each of the C channels."""
    maps = tensor(spec, outputs, ndim=4)
    if maps.shape[1] != len(spec.labels):
        raise BackendError(f"head {spec.name!r} has {maps.shape[1]} channels for labels {spec.labels}")
    decode = spec.decode
    options = dict(activation=spec.activation, refine=decode.refine, threads=context.threads, device=context.device)
    try:
        if decode.mode == "argmax":
            peaks = find_argmax(maps, context.geometry, **options)
        else:
            peaks = find_peaks(maps, context.geometry, threshold=decode.threshold, k=decode.k, radius=decode.radius,
                               **options)
    except ValueError as exc:
        raise op_error(spec, exc) from exc
    points = []
    for channel, label in enumerate(spec.labels):
        for x, y, score in peaks.points(0, channel).tolist():
            # find_peaks applied the threshold; find_argmax keeps every channel's best cell.
            if decode.mode == "peaks" or score >= decode.threshold:
                points.append(Point(label, channel, float(score), float(x), float(y)))
    if decode.exclusive_radius:
        points = _exclusive(points, decode.exclusive_radius, maps.shape[-2:], context)
    return HeatmapResult(spec.name, spec.labels, tuple(points))


def _exclusive(points: list[Point], radius: int, grid: tuple[int, int], context: DecodeContext) -> list[Point]:
    """Keep, of peaks of different channels within ``radius`` cells of the head's grid of
    each other (the peak window), only the highest scoring; order as given."""
    input_size = context.geometry.input_size
    if input_size is None:
        raise BackendError("exclusive heatmap channels need the model input size in the geometry")
    cells_per_input_px = (grid[0] / input_size[0], grid[1] / input_size[1])
    cells = []
    for point in points:
        x_in, y_in = context.geometry.to_output(point.x, point.y)
        cells.append((float(y_in) * cells_per_input_px[0], float(x_in) * cells_per_input_px[1]))
    kept: list[int] = []
    for index in sorted(range(len(points)), key=lambda i: -points[i].score):
        y, x = cells[index]
        if all(
            points[other].channel == points[index].channel
            or max(abs(cells[other][0] - y), abs(cells[other][1] - x)) > radius
            for other in kept
        ):
            kept.append(index)
    return [points[index] for index in sorted(kept)]
