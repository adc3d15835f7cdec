"""The native pre- and post-processing ops, each on ``device="cpu"`` or ``"cuda"``.

    preprocess      stored pixels -> lookup table -> crop -> resize -> normalise -> NCHW tensor
    histogram       stored-value counts, for percentile windows
    mask_decode     segmentation logits -> label mask at source geometry, statistics, RLE
    detection       dense anchor-free maps or decoded boxes -> threshold, top-k, NMS, source pixels
    heatmap_peaks   landmark heatmaps -> sub-pixel peaks in source pixels
    cam_overlay     class activation map -> colour overlay on the display image

Each takes numpy arrays or, zero-copy, CUDA arrays (see ``radedge.cuda``). Every op maps
between the model input and the source image through the ``ResizeGeometry`` the
preprocess op returns.
"""

from __future__ import annotations

from ..spec.geometry import Crop, ResizeGeometry, center_crop
from ..spec.preprocess import PreprocessSpec
from ._device import Device, available_devices
from .cam_overlay import colormap_table, overlay_cam
from .detection import Detections, ImageDetections, KeptBoxes, decode_boxes, decode_dense, nms
from .heatmap_peaks import Peaks, find_argmax, find_peaks
from .histogram import histogram
from .mask_decode import DeviceMaskResult, LabelStats, MaskResult, decode_mask, decode_masks, decode_rle
from .preprocess import FloatWindow, preprocess, preprocess_batch, preprocess_into, resize_geometry

__all__ = [
    "Crop",
    "Detections",
    "Device",
    "DeviceMaskResult",
    "FloatWindow",
    "ImageDetections",
    "KeptBoxes",
    "LabelStats",
    "MaskResult",
    "Peaks",
    "PreprocessSpec",
    "ResizeGeometry",
    "available_devices",
    "center_crop",
    "colormap_table",
    "decode_boxes",
    "decode_dense",
    "decode_mask",
    "decode_masks",
    "decode_rle",
    "find_argmax",
    "find_peaks",
    "histogram",
    "nms",
    "overlay_cam",
    "preprocess",
    "preprocess_batch",
    "preprocess_into",
    "resize_geometry",
]
