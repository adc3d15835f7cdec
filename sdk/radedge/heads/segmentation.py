"""Segmentation heads: logits [1, C, h, w] -> a label mask at the source image's geometry.

The native mask decode op (``radedge.ops.decode_mask``) maps each source pixel centre
through the preprocessing geometry into the logit plane, reads it bilinearly and labels it,
measuring every label in the same pass. sigmoid heads: label i where its probability
reaches ``decode.threshold``; where several do, the highest logit wins. softmax heads:
argmax, with channel 0 as background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError
from ..ops.mask_decode import decode_mask
from ..spec.heads import HeadSpec
from .base import DecodeContext, Finding, HeadResult, MaskLayer, NotEvaluable, op_error, register, tensor


@dataclass(frozen=True)
class RegionStats:
    """One label of a segmentation, measured at the source image's geometry.

    ``bbox`` is (x0, y0, x1, y1) in source pixels, x1/y1 exclusive; ``centroid`` is
    (x, y) in source pixels (pixel centres at integer + 0.5). ``area_mm2`` is ``None``
    when the image gives no usable pixel spacing.
    """

    label: str
    pixel_count: int
    area_mm2: float | None
    bbox: tuple[int, int, int, int] | None
    centroid: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "pixel_count": self.pixel_count,
            "area_mm2": None if self.area_mm2 is None else round(self.area_mm2, 3),
            "bbox_xyxy": list(self.bbox) if self.bbox else None,
            "centroid_xy": [round(c, 2) for c in self.centroid] if self.centroid else None,
        }


@dataclass(frozen=True)
class SegmentationResult(HeadResult):
    """A segmentation head decoded back to the source image.

    ``mask``: uint8 [rows, columns] at the source geometry; 0 is background and
    ``i + 1`` is ``labels[i]``. ``area_source`` names the DICOM attribute the mm² figures
    come from, or says why there are none.
    """

    kind: ClassVar[str] = "segmentation"
    head: str
    labels: tuple[str, ...]
    mask: np.ndarray
    threshold: float
    regions: tuple[RegionStats, ...]
    area_source: str

    def region(self, label: str) -> RegionStats:
        return self.regions[self.labels.index(label)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "threshold": self.threshold,
            "mask_shape": list(self.mask.shape),
            "area_source": self.area_source,
            "regions": [region.to_dict() for region in self.regions],
        }

    def findings(self, label: str, threshold: float) -> tuple[Finding, ...]:
        """The label's region when it covers at least ``threshold`` mm²."""
        region = self.region(label)
        if region.pixel_count == 0:
            return ()
        if region.area_mm2 is None:
            raise NotEvaluable(f"the area of {label!r} is unknown ({self.area_source})")
        if region.area_mm2 < threshold:
            return ()
        return (Finding(region.area_mm2, point=region.centroid, box=tuple(float(v) for v in region.bbox)),)

    def layers(self) -> tuple[Any, ...]:
        return (MaskLayer(self.mask, self.labels),)


@register("segmentation")
def decode_segmentation(spec: HeadSpec, outputs: Mapping[str, np.ndarray], context: DecodeContext) -> SegmentationResult:
    """logits float32 / float16 [1, C, h, w] -> uint8 label mask [rows, columns] plus per-label stats."""
    values = tensor(spec, outputs, ndim=4)
    threshold = spec.decode.threshold
    if spec.activation == "sigmoid":
        if values.shape[1] != len(spec.labels):
            raise BackendError(f"head {spec.name!r} has {values.shape[1]} channels for labels {spec.labels}")
        thresholds = threshold
    else:
        if values.shape[1] != len(spec.labels) + 1:
            raise BackendError(f"softmax head {spec.name!r} needs background + {len(spec.labels)} channels")
        thresholds = None
    try:
        decoded = decode_mask(
            values,
            context.geometry,
            activation=spec.activation,
            thresholds=thresholds,
            labels=spec.labels,
            spacing_mm=context.spacing_mm,
            threads=context.threads,
            device=context.device,
        )
    except ValueError as exc:
        # NaN / infinite logits, or a geometry that does not fit the logits.
        raise op_error(spec, exc) from exc
    regions = tuple(
        RegionStats(stats.label, stats.pixel_count, stats.area_mm2, stats.bbox, stats.centroid)
        for stats in decoded.labels
    )
    return SegmentationResult(spec.name, spec.labels, decoded.mask, threshold, regions, context.spacing_source)
