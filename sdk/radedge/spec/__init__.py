"""The plain data every stage speaks: the manifest schema, VOI windows and the input geometry.

Nothing here imports a native op, OpenCV or an inference backend, so a bundle's manifest
can be parsed and checked anywhere.
"""

from __future__ import annotations

from .flags import Condition, FlagRule
from .geometry import Crop, ResizeGeometry, center_crop, grow_box
from .heads import (
    ACTIVATIONS,
    DECODE_PARAMETERS,
    CamDecode,
    ClassificationDecode,
    DenseLevel,
    DetectionDecode,
    HeadKind,
    HeadSpec,
    HeatmapDecode,
    SegmentationDecode,
)
from .manifest import (
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    InputRegion,
    IntensitySpec,
    Manifest,
    ModelLicense,
    head_name_for_output,
    upgrade_document,
)
from .precision import PRECISION_FILES, PRECISIONS, GateThresholds, Precision
from .preprocess import PreprocessSpec
from .scope import Scope
from .window import Percentile, VoiFunction, Window, check_window

__all__ = [
    "ACTIVATIONS",
    "DECODE_PARAMETERS",
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "CamDecode",
    "ClassificationDecode",
    "Condition",
    "Crop",
    "DenseLevel",
    "DetectionDecode",
    "FlagRule",
    "GateThresholds",
    "HeadKind",
    "HeadSpec",
    "HeatmapDecode",
    "InputRegion",
    "IntensitySpec",
    "Manifest",
    "ModelLicense",
    "PRECISIONS",
    "PRECISION_FILES",
    "Percentile",
    "Precision",
    "PreprocessSpec",
    "ResizeGeometry",
    "Scope",
    "SegmentationDecode",
    "VoiFunction",
    "Window",
    "center_crop",
    "grow_box",
    "head_name_for_output",
    "upgrade_document",
    "check_window",
]
