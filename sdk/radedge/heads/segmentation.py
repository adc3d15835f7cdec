"""Segmentation heads: logits [1, C, h, w] -> a label mask at the source image's geometry.

The native mask decode op (``radedge.ops.decode_mask``) maps each source pixel centre
through the preprocessing geometry into the logit plane, reads it bilinearly and labels it,
measuring every label in the same pass. sigmoid heads: label i where its probability
reaches ``decode.threshold``; where several do, the highest logit wins. softmax heads:
argmax, with channel 0 as background. The mask is then split into its connected regions
(``radedge.heads.regions``), so each lesion is measured on its own.
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
from .regions import MAX_REGIONS, connected_components


@dataclass(frozen=True)
class RegionStats:
    """One region of a segmentation, measured at the source image's geometry: a connected
    region of one label (``SegmentationResult.regions``) or all of a label's pixels
    (``SegmentationResult.labels_summary``).

    ``bbox`` is (x0, y0, x1, y1) in source pixels, x1/y1 exclusive; ``centroid`` is
    (x, y) in source pixels (pixel centres at integer + 0.5); both None for an empty label.
    ``area_mm2`` is ``None`` when the image gives no usable pixel spacing.
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

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RegionStats:
        """The region ``to_dict`` describes (figures as rounded there)."""
        bbox, centroid = document.get("bbox_xyxy"), document.get("centroid_xy")
        return cls(
            str(document["label"]), int(document["pixel_count"]), document.get("area_mm2"),
            None if bbox is None else tuple(int(v) for v in bbox),  # type: ignore[arg-type]
            None if centroid is None else tuple(float(v) for v in centroid),  # type: ignore[arg-type]
        )


@dataclass(frozen=True, eq=False)
class SegmentationResult(HeadResult):
    """A segmentation head decoded back to the source image.

    ``mask``: uint8 [rows, columns] at the source geometry; 0 is background and ``i + 1``
    is ``labels[i]`` (None in a result read back from JSON, which holds only ``mask_shape``).
    ``labels_summary``: one ``RegionStats`` per label, in label order, over all its pixels.
    ``regions``: each 8-connected region of one label on its own (two lesions are two
    regions), largest first, at most ``MAX_REGIONS``; ``regions_omitted`` counts the
    smaller ones left out. Given None (the default), they are measured on ``mask``.
    ``area_source`` names the DICOM attribute the mm² figures come from, or says why there
    are none.

    Pickled, the mask travels run-length encoded when that is smaller (a lesion mask of a
    3000 x 3000 image: kilobytes instead of 9 MB) and comes back unchanged.
    """

    kind: ClassVar[str] = "segmentation"
    head: str
    labels: tuple[str, ...]
    mask: np.ndarray | None
    threshold: float
    labels_summary: tuple[RegionStats, ...]
    area_source: str
    regions: tuple[RegionStats, ...] | None = None
    regions_omitted: int = 0
    mask_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.mask is not None:
            object.__setattr__(self, "mask_shape", (int(self.mask.shape[0]), int(self.mask.shape[1])))
        if self.regions is None:
            regions, omitted = _connected_regions(self.mask, self.labels, self.labels_summary)
            object.__setattr__(self, "regions", regions)
            object.__setattr__(self, "regions_omitted", omitted)

    def region(self, label: str) -> RegionStats:
        """The summary of ``label``: all its pixels, whatever regions they form."""
        return self.labels_summary[self.labels.index(label)]

    def regions_of(self, label: str) -> tuple[RegionStats, ...]:
        """The listed connected regions of ``label``, largest first."""
        return tuple(region for region in self.regions if region.label == label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "threshold": self.threshold,
            "mask_shape": None if self.mask_shape is None else list(self.mask_shape),
            "area_source": self.area_source,
            "regions": [region.to_dict() for region in self.regions],
            "regions_omitted": self.regions_omitted,
            "labels_summary": [region.to_dict() for region in self.labels_summary],
        }

    @classmethod
    def from_dict(cls, head: str, document: Mapping[str, Any]) -> SegmentationResult:
        shape = document.get("mask_shape")
        return cls(
            head, tuple(document["labels"]), None, float(document["threshold"]),
            tuple(RegionStats.from_dict(region) for region in document["labels_summary"]), str(document["area_source"]),
            tuple(RegionStats.from_dict(region) for region in document["regions"]), int(document["regions_omitted"]),
            None if shape is None else (int(shape[0]), int(shape[1])),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SegmentationResult):
            return NotImplemented
        same_mask = (self.mask is None and other.mask is None) or (
            self.mask is not None and other.mask is not None and np.array_equal(self.mask, other.mask)
        )
        return same_mask and all(
            getattr(self, name) == getattr(other, name)
            for name in ("head", "labels", "threshold", "labels_summary", "area_source", "regions",
                         "regions_omitted", "mask_shape")
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["mask"] = pack_mask(self.mask)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["mask"] = unpack_mask(state["mask"])
        self.__dict__.update(state)

    def findings(self, label: str, threshold: float) -> tuple[Finding, ...]:
        """When the label covers at least ``threshold`` mm² in all (its summary), one finding
        per listed connected region of it, largest first, each scored with that total area
        and located at the region's box and centroid."""
        summary = self.region(label)
        if summary.pixel_count == 0:
            return ()
        if summary.area_mm2 is None:
            raise NotEvaluable(f"the area of {label!r} is unknown ({self.area_source})")
        if summary.area_mm2 < threshold:
            return ()
        located = self.regions_of(label) or (summary,)
        return tuple(
            Finding(summary.area_mm2, point=region.centroid, box=tuple(float(v) for v in region.bbox))
            for region in located
        )

    def layers(self) -> tuple[Any, ...]:
        return () if self.mask is None else (MaskLayer(self.mask, self.labels),)


def _connected_regions(
    mask: np.ndarray | None, labels: tuple[str, ...], summary: tuple[RegionStats, ...]
) -> tuple[tuple[RegionStats, ...], int]:
    """The mask's connected regions (``radedge.heads.regions``) as ``RegionStats``, their
    areas at the mm² per pixel of their label's summary, and how many were left out."""
    boxes = [stats.bbox for stats in summary if stats.pixel_count > 0 and stats.bbox is not None]
    if mask is None or not boxes:
        return (), 0
    window = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    found = connected_components(mask, window)
    regions = []
    for component in found[:MAX_REGIONS]:
        stats = summary[component.value - 1]
        mm2_per_pixel = None if stats.area_mm2 is None else stats.area_mm2 / stats.pixel_count
        regions.append(RegionStats(
            labels[component.value - 1], component.pixel_count,
            None if mm2_per_pixel is None else component.pixel_count * mm2_per_pixel,
            component.bbox, component.centroid,
        ))
    return tuple(regions), max(0, len(found) - MAX_REGIONS)


def pack_mask(mask: np.ndarray | None) -> Any:
    """``mask`` as pickling stores it: (shape, run values uint8, run lengths uint32) when
    that is smaller than the mask, else the mask itself."""
    if mask is None or mask.size == 0:
        return mask
    flat = np.ascontiguousarray(mask).ravel()
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    if starts.size * 5 >= flat.size:
        return mask
    lengths = np.diff(np.r_[starts, flat.size]).astype(np.uint32)
    return ("runs", mask.shape, mask.dtype.str, flat[starts], lengths)


def unpack_mask(packed: Any) -> np.ndarray | None:
    if not (isinstance(packed, tuple) and packed and packed[0] == "runs"):
        return packed
    _, shape, dtype, values, lengths = packed
    return np.repeat(values, lengths).astype(np.dtype(dtype), copy=False).reshape(shape)


@register("segmentation")
def decode_segmentation(spec: HeadSpec, outputs: Mapping[str, np.ndarray], context: DecodeContext) -> SegmentationResult:
    """logits float32 / float16 [1, C, h, w] -> uint8 label mask [rows, columns], per-label
    stats and each connected region's."""
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
    summary = tuple(
        RegionStats(stats.label, stats.pixel_count, stats.area_mm2, stats.bbox, stats.centroid)
        for stats in decoded.labels
    )
    return SegmentationResult(spec.name, spec.labels, decoded.mask, threshold, summary, context.spacing_source)
