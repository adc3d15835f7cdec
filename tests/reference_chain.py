"""The reference chain every radedge intensity and preprocess result is checked against.

``pydicom_display``: pydicom 3 evaluated on the pixels: modality LUT or rescale, then
``apply_voi_lut(prefer_lut=True)`` at the index, then pydicom's output range mapped onto
[0, 1] (the window's [y_min, y_max], read back from pydicom itself by windowing -inf and
+inf; a VOI LUT's [0, 2**bits - 1]), then 1 - x for MONOCHROME1 (pydicom never inverts).

``reference_tensor``: that image resized with OpenCV as a model input is made
(INTER_AREA along an axis that shrinks, INTER_LINEAR along one that grows), letterboxed by
the documented rule and normalised: the slow, obvious chain radedge's fused op replaces.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut


def pydicom_display(ds: pydicom.Dataset, stored: np.ndarray, index: int = 0) -> np.ndarray:
    """pydicom's chain on ``stored``, scaled to [0, 1] with pydicom's output range."""
    ds = copy.deepcopy(ds)
    modality = apply_modality_lut(stored, ds)
    voi_lut = ds.get("VOILUTSequence")
    if voi_lut:
        out = apply_voi_lut(modality, ds, index, prefer_lut=True).astype(np.float64)
        out /= 2 ** voi_lut[index].LUTDescriptor[2] - 1
    elif "WindowCenter" in ds:
        with np.errstate(over="ignore"):
            out = apply_voi_lut(modality, ds, index)
            y_min = apply_voi_lut(np.array([-np.inf]), copy.deepcopy(ds), index)[0]
            y_max = apply_voi_lut(np.array([np.inf]), copy.deepcopy(ds), index)[0]
        out = (out - y_min) / (y_max - y_min)
    else:
        modality = modality.astype(np.float64)
        out = (modality - modality.min()) / (modality.max() - modality.min())
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 1.0 - out
    return out


def reference_tensor(display: np.ndarray, height: int, width: int, *, letterbox: bool = True,
                     pad_value: float = 0.0, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """``display`` (float [rows, columns] in [0, 1]) -> float32 [height, width] model input."""
    rows, columns = display.shape
    if not letterbox:
        content_h, content_w = height, width
    elif height / rows <= width / columns:  # height limits: full height, width rounded half up
        content_h, content_w = height, max(1, int(np.floor(columns * height / rows + 0.5)))
    else:
        content_h, content_w = max(1, int(np.floor(rows * width / columns + 0.5))), width
    # One axis at a time: INTER_AREA where it shrinks, INTER_LINEAR where it grows. When
    # both shrink (or both grow) this equals a single cv2.resize with that interpolation.
    resized = display.astype(np.float32)
    resized = cv2.resize(resized, (columns, content_h),
                         interpolation=cv2.INTER_AREA if content_h < rows else cv2.INTER_LINEAR)
    resized = cv2.resize(resized, (content_w, content_h),
                         interpolation=cv2.INTER_AREA if content_w < columns else cv2.INTER_LINEAR)
    canvas = np.full((height, width), pad_value, dtype=np.float32)
    top, left = (height - content_h) // 2, (width - content_w) // 2
    canvas[top:top + content_h, left:left + content_w] = resized
    return (canvas - mean) / std
