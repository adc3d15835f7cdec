"""Turning raw head outputs into results at the source image's geometry.

Segmentation logits are read bilinearly through the inverse of the preprocessing resize
(letterbox padding removed) and labelled by the native mask decode op, so the mask lines
up with the stored pixels and can be measured in mm.
"""

from __future__ import annotations

import numpy as np

from .bundle import OutputSpec
from .errors import BackendError
from .io.image import Image
from .mask_decode import decode_mask
from .preprocess import ResizeGeometry
from .results import ClassificationResult, RegionStats, SegmentationResult


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def decode_classification(spec: OutputSpec, logits: np.ndarray) -> ClassificationResult:
    """``logits`` float32[1, K] (or [K]) -> probabilities over ``spec.labels``."""
    values = np.asarray(logits, dtype=np.float32).reshape(-1)
    if values.size != len(spec.labels):
        raise BackendError(f"head {spec.name!r} gave {values.size} values for {len(spec.labels)} labels {spec.labels}")
    if not np.isfinite(values).all():
        raise BackendError(f"head {spec.name!r} produced non-finite logits; the model or its input is broken")
    if spec.activation == "softmax":
        probabilities = softmax(values)
    elif spec.activation == "sigmoid":
        probabilities = sigmoid(values)
    else:
        raise BackendError(f"head {spec.name!r}: activation {spec.activation!r} is not softmax or sigmoid")
    return ClassificationResult(spec.name, spec.labels, probabilities.astype(np.float32))


def decode_segmentation(
    spec: OutputSpec,
    logits: np.ndarray,
    geometry: ResizeGeometry,
    input_size: tuple[int, int],
    image: Image,
    *,
    threads: int = 0,
) -> SegmentationResult:
    """``logits`` float32/float16 [1, C, h, w] -> uint8 label mask [rows, columns] plus per-label stats.

    ``input_size`` is the model input's (H, W); the logits may be at any resolution of it.
    The native mask decode op (:func:`radedge.mask_decode.decode_mask`) maps each source
    pixel centre through the preprocessing geometry into the logit plane, reads it
    bilinearly and labels it, measuring every label in the same pass.

    sigmoid heads: label i where its probability >= ``decode.threshold``; where several
    labels reach it, the one with the highest logit wins. softmax heads: argmax, with
    channel 0 as background. ``threads``: CPU threads of the op (0: all cores).
    """
    values = np.asarray(logits)
    if values.ndim != 4 or values.shape[0] != 1:
        raise BackendError(f"head {spec.name!r} must give [1, C, h, w] logits, got shape {values.shape}")
    if values.dtype not in (np.float32, np.float16):
        values = values.astype(np.float32)
    threshold = float(spec.decode.get("threshold", 0.5))
    if spec.activation == "sigmoid":
        if values.shape[1] != len(spec.labels):
            raise BackendError(f"head {spec.name!r} has {values.shape[1]} channels for labels {spec.labels}")
        thresholds = threshold
    elif spec.activation == "softmax":
        if values.shape[1] != len(spec.labels) + 1:
            raise BackendError(f"softmax head {spec.name!r} needs background + {len(spec.labels)} channels")
        thresholds = None
    else:
        raise BackendError(f"head {spec.name!r}: activation {spec.activation!r} is not softmax or sigmoid")
    if image.spacing is not None:
        spacing_mm = (image.spacing.row_mm, image.spacing.column_mm)
        area_source = image.spacing.source
    else:
        spacing_mm = None
        area_source = f"no mm figures: {image.spacing_problem or 'the image gives no pixel spacing'}"
    try:
        decoded = decode_mask(
            np.ascontiguousarray(values),
            geometry,
            input_size=input_size,
            activation=spec.activation,
            thresholds=thresholds,
            labels=spec.labels,
            spacing_mm=spacing_mm,
            threads=threads,
        )
    except ValueError as exc:
        # NaN / infinite logits, or a geometry that does not fit the logits.
        raise BackendError(f"head {spec.name!r}: {exc}") from exc
    regions = tuple(
        RegionStats(stats.label, stats.pixel_count, stats.area_mm2, stats.bbox, stats.centroid)
        for stats in decoded.labels
    )
    return SegmentationResult(spec.name, spec.labels, decoded.mask, threshold, regions, area_source)
