"""Detection heads: dense anchor-free maps (FCOS / CenterNet) or decoded boxes -> boxes at the
source image's geometry, after score threshold, top-k and class-aware NMS in the native ops
(``radedge.ops.decode_dense`` / ``decode_boxes``); sizes in mm where the spacing allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError
from ..ops.detection import decode_boxes, decode_dense
from ..spec.heads import HeadSpec
from .base import BoxLayer, DecodeContext, Finding, HeadResult, op_error, register, tensor


@dataclass(frozen=True)
class Box:
    """One detection: ``label`` (class ``class_index`` of the head), ``score`` in [0, 1],
    ``xyxy`` (x1, y1, x2, y2) in source-image pixels (continuous coordinates, the edge of
    pixel i at i), ``size_mm`` (width, height) or None without pixel spacing."""

    label: str
    class_index: int
    score: float
    xyxy: tuple[float, float, float, float]
    size_mm: tuple[float, float] | None

    @property
    def centre(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.xyxy
        return ((x1 + x2) / 2, (y1 + y2) / 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": round(self.score, 6),
            "xyxy": [round(v, 2) for v in self.xyxy],
            "size_mm": None if self.size_mm is None else [round(v, 2) for v in self.size_mm],
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], labels: tuple[str, ...]) -> Box:
        size = document.get("size_mm")
        return cls(
            str(document["label"]), labels.index(document["label"]), float(document["score"]),
            tuple(float(v) for v in document["xyxy"]),  # type: ignore[arg-type]
            None if size is None else tuple(float(v) for v in size),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class DetectionResult(HeadResult):
    """The boxes one detection head kept, best first. ``size_source`` names the DICOM
    attribute the mm sizes come from, or says why there are none."""

    kind: ClassVar[str] = "detection"
    head: str
    labels: tuple[str, ...]
    boxes: tuple[Box, ...]
    size_source: str

    def of(self, label: str) -> tuple[Box, ...]:
        return tuple(box for box in self.boxes if box.label == label)

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "boxes": [box.to_dict() for box in self.boxes],
                "size_source": self.size_source}

    @classmethod
    def from_dict(cls, head: str, document: Mapping[str, Any]) -> DetectionResult:
        """The result ``to_dict`` describes (figures as rounded there)."""
        labels = tuple(document["labels"])
        return cls(head, labels, tuple(Box.from_dict(box, labels) for box in document["boxes"]),
                   str(document["size_source"]))

    def findings(self, label: str, threshold: float) -> tuple[Finding, ...]:
        return tuple(Finding(box.score, point=box.centre, box=box.xyxy) for box in self.of(label) if box.score >= threshold)

    def layers(self) -> tuple[Any, ...]:
        return (BoxLayer(tuple((box.xyxy, f"{box.label} {box.score:.2f}") for box in self.boxes)),)


@register("detection")
def decode_detection(spec: HeadSpec, outputs: Mapping[str, np.ndarray], context: DecodeContext) -> DetectionResult:
    """Dense levels (scores [1, K, h, w], distances [1, 4, h, w], centerness [1, 1, h, w]) or
    boxes [1, M, 4] + scores [1, M, K] -> boxes in source pixels."""
    decode = spec.decode
    options = dict(
        score_threshold=decode.score_threshold,
        iou_threshold=decode.iou_threshold,
        pre_nms_top_k=decode.pre_nms_top_k,
        max_detections=decode.max_detections,
        scores_are="logits" if spec.activation == "sigmoid" else "probabilities",
        class_agnostic=decode.class_agnostic,
        threads=context.threads,
        device=context.device,
    )
    try:
        if decode.format == "dense":
            levels = []
            for level in decode.levels:
                scores = tensor(spec, outputs, level.scores, ndim=4)
                if scores.shape[1] != len(spec.labels):
                    raise BackendError(
                        f"head {spec.name!r}: {level.scores!r} has {scores.shape[1]} classes for labels {spec.labels}"
                    )
                arrays = [scores, tensor(spec, outputs, level.distances, ndim=4)]
                if level.centerness is not None:
                    arrays.append(tensor(spec, outputs, level.centerness, ndim=4))
                levels.append(tuple(arrays))
            detections = decode_dense(
                levels, [level.stride for level in decode.levels], context.geometry,
                centerness_mode=decode.centerness_mode, distance_units=decode.distance_units,
                cell_offset=decode.cell_offset, **options,
            )
        else:
            boxes = tensor(spec, outputs, decode.boxes, ndim=3)
            scores = tensor(spec, outputs, decode.scores, ndim=3)
            if scores.shape[2] != len(spec.labels):
                raise BackendError(f"head {spec.name!r}: {decode.scores!r} has {scores.shape[2]} classes for {spec.labels}")
            detections = decode_boxes(boxes, scores, context.geometry, box_format=decode.box_format, **options)
        found = detections.per_image()[0]
    except ValueError as exc:
        raise op_error(spec, exc) from exc
    spacing = context.spacing_mm
    boxes = []
    for xyxy, score, index in zip(found.boxes.tolist(), found.scores.tolist(), found.classes.tolist()):
        x1, y1, x2, y2 = xyxy
        size = None if spacing is None else ((x2 - x1) * spacing[1], (y2 - y1) * spacing[0])
        boxes.append(Box(spec.labels[index], int(index), float(score), (x1, y1, x2, y2), size))
    return DetectionResult(spec.name, spec.labels, tuple(boxes), context.spacing_source)
