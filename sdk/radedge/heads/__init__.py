"""One decoder per head kind, behind a registry (``decoder_for(kind)``, ``decode_heads``).

    classification   logits -> probabilities                      (classification.py)
    segmentation     logits -> label mask at source geometry,      (segmentation.py)
                     each connected region measured                (regions.py)
    detection        dense maps or boxes -> boxes after NMS        (detection.py)
    heatmap          landmark maps -> sub-pixel peaks              (heatmap.py)
    cam              class activation maps -> map for display      (cam.py)

A new kind is a module here with its result type and a decoder registered with
``@register("kind")``, imported below, and its decode parameters in ``radedge.spec.heads``.
"""

from __future__ import annotations

from .base import (
    BoxLayer,
    ColourMapLayer,
    DecodeContext,
    Finding,
    HeadResult,
    MaskLayer,
    NotEvaluable,
    PointLayer,
    decode_heads,
    decoder_for,
    register,
)
from .cam import CamResult, decode_cam
from .classification import ClassificationResult, decode_classification, sigmoid, softmax
from .detection import Box, DetectionResult, decode_detection
from .heatmap import HeatmapResult, Point, decode_heatmap
from .segmentation import RegionStats, SegmentationResult, decode_segmentation

__all__ = [
    "Box",
    "BoxLayer",
    "CamResult",
    "ClassificationResult",
    "ColourMapLayer",
    "DecodeContext",
    "DetectionResult",
    "Finding",
    "HeadResult",
    "HeatmapResult",
    "MaskLayer",
    "NotEvaluable",
    "Point",
    "PointLayer",
    "RegionStats",
    "SegmentationResult",
    "decode_cam",
    "decode_classification",
    "decode_detection",
    "decode_heads",
    "decode_heatmap",
    "decode_segmentation",
    "decoder_for",
    "register",
    "sigmoid",
    "softmax",
]
