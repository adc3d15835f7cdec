"""The reference chain every radedge intensity and preprocess result is checked against.

``pydicom_display``: pydicom 3 evaluated on the pixels: modality LUT or rescale, then
``apply_voi_lut(prefer_lut=True)`` at the index, then pydicom's output range mapped onto
[0, 1] (the window's [y_min, y_max], read back from pydicom itself by windowing -inf and
+inf; a VOI LUT's [0, 2**bits - 1]), then 1 - x for MONOCHROME1 (pydicom never inverts).

``reference_tensor``: that image resized with OpenCV as a model input is made
(INTER_AREA along an axis that shrinks, INTER_LINEAR along one that grows), letterboxed by
the documented rule and normalised: the slow, obvious chain radedge's fused op replaces.

Both live in ``radedge.bench.baseline``, where ``radedge bench --baseline`` times them as the
research pipeline; the tests and the benchmark share one copy.
"""

from __future__ import annotations

from radedge.bench.baseline import pydicom_display, reference_tensor

__all__ = ["pydicom_display", "reference_tensor"]
