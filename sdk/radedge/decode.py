"""Turning raw head outputs into results at the source image's geometry.

Segmentation logits are upsampled bilinearly through the inverse of the preprocessing
resize (letterbox padding removed), then thresholded, so the mask lines up with the
stored pixels and can be measured in mm.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .bundle import OutputSpec
from .errors import BackendError
from .io.image import Image
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


def upsample_to_source(plane: np.ndarray, geometry: ResizeGeometry, input_height: int, input_width: int) -> np.ndarray:
    """Resample one float32 [h, w] output plane onto the source grid [rows, columns].

    The plane covers the model input (``input_height`` x ``input_width``) at any
    resolution h x w; each source pixel centre is mapped through the preprocessing
    geometry (crop origin included) into plane coordinates and read bilinearly (edge
    values repeat past the border).
    """
    h, w = plane.shape
    in_h, in_w = input_height, input_width
    fy, fx = h / in_h, w / in_w
    a_x, a_y = geometry.scale_x * fx, geometry.scale_y * fy
    b_x = ((0.5 - geometry.crop_x) * geometry.scale_x + geometry.offset_x) * fx - 0.5
    b_y = ((0.5 - geometry.crop_y) * geometry.scale_y + geometry.offset_y) * fy - 0.5
    to_plane = np.array([[a_x, 0.0, b_x], [0.0, a_y, b_y]], dtype=np.float64)
    return cv2.warpAffine(
        np.ascontiguousarray(plane, dtype=np.float32),
        to_plane,
        (geometry.source_columns, geometry.source_rows),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def decode_segmentation(
    spec: OutputSpec, logits: np.ndarray, geometry: ResizeGeometry, input_size: tuple[int, int], image: Image
) -> SegmentationResult:
    """``logits`` float32[1, C, h, w] -> uint8 label mask [rows, columns] plus per-label stats.

    ``input_size`` is the model input's (H, W); the logits may be at any resolution of it.

    sigmoid heads: label i where its probability >= ``decode.threshold`` (later labels win
    overlaps); softmax heads: argmax, with channel 0 as background.
    """
    values = np.asarray(logits, dtype=np.float32)
    if values.ndim != 4 or values.shape[0] != 1:
        raise BackendError(f"head {spec.name!r} must give [1, C, h, w] logits, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise BackendError(f"head {spec.name!r} produced non-finite logits; the model or its input is broken")
    threshold = float(spec.decode.get("threshold", 0.5))
    mask = np.zeros((geometry.source_rows, geometry.source_columns), dtype=np.uint8)
    if spec.activation == "sigmoid":
        if values.shape[1] != len(spec.labels):
            raise BackendError(f"head {spec.name!r} has {values.shape[1]} channels for labels {spec.labels}")
        # Thresholding the logit is the same test as thresholding the sigmoid, without it.
        logit_threshold = math.log(threshold / (1.0 - threshold))
        for index in range(values.shape[1]):
            mask[upsample_to_source(values[0, index], geometry, *input_size) >= logit_threshold] = index + 1
    elif spec.activation == "softmax":
        if values.shape[1] != len(spec.labels) + 1:
            raise BackendError(f"softmax head {spec.name!r} needs background + {len(spec.labels)} channels")
        planes = np.stack([upsample_to_source(values[0, c], geometry, *input_size) for c in range(values.shape[1])])
        mask[:] = np.argmax(planes, axis=0).astype(np.uint8)
    else:
        raise BackendError(f"head {spec.name!r}: activation {spec.activation!r} is not softmax or sigmoid")
    # Source pixels outside the preprocessing crop were never shown to the model.
    x, y = geometry.crop_x, geometry.crop_y
    mask[:y] = 0
    mask[y + geometry.crop_height :] = 0
    mask[:, :x] = 0
    mask[:, x + geometry.crop_width :] = 0

    if image.spacing is not None:
        pixel_area = image.spacing.row_mm * image.spacing.column_mm
        area_source = image.spacing.source
    else:
        pixel_area = None
        area_source = f"no mm figures: {image.spacing_problem or 'the image gives no pixel spacing'}"
    regions = tuple(_region_stats(mask == index + 1, label, pixel_area) for index, label in enumerate(spec.labels))
    return SegmentationResult(spec.name, spec.labels, mask, threshold, regions, area_source)


def _region_stats(region: np.ndarray, label: str, pixel_area_mm2: float | None) -> RegionStats:
    moments = cv2.moments(region.view(np.uint8), binaryImage=True)
    count = int(round(moments["m00"]))
    if count == 0:
        return RegionStats(label, 0, 0.0 if pixel_area_mm2 is not None else None, None, None)
    rows_hit = np.flatnonzero(region.any(axis=1))
    cols_hit = np.flatnonzero(region.any(axis=0))
    bbox = (int(cols_hit[0]), int(rows_hit[0]), int(cols_hit[-1]) + 1, int(rows_hit[-1]) + 1)
    centroid = (moments["m10"] / moments["m00"] + 0.5, moments["m01"] / moments["m00"] + 0.5)
    area = count * pixel_area_mm2 if pixel_area_mm2 is not None else None
    return RegionStats(label, count, area, bbox, centroid)
