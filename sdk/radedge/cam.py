"""CAM overlay: a class activation map blended in colour over the display image.

The ``tumor-cls`` model outputs benign / malignant plus a class activation map [C, h, w]
over the whole model input; the caller picks the channel of the class to show. The native
op ``radedge._kernels.cam_overlay_cpu`` (or ``cam_overlay_cuda_host``) makes one pass over
the display image (uint8 [H, W] grey, the windowed source region at display resolution,
for instance the preprocess op's output in stretch mode):

- each display pixel centre is mapped through the preprocess placement into the CAM, which
  is sampled bilinearly (cell centres at i + 0.5, edges clamped, as cv2.resize
  INTER_LINEAR): the display shows the content region only, and a pixel within half a
  cell of its edge interpolates with the neighbouring cell, as any bilinear upsampling does;
- the samples are normalised to [0, 1] by their minimum and maximum over the display
  (``normalise="minmax"``) or by a fixed ``(low, high)`` range, clamped;
- mapped through a 256-entry colour map (``"turbo"``, ``"jet"`` or your own uint8
  [256, 3] RGB table) at index round(255 t);
- alpha-blended over the grey image, exactly rounded in integers with alpha quantised to
  1/255, where the normalised value reaches ``floor`` (elsewhere the grey shows through).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ._head_grid import placement
from ._native import kernels, require_device
from .errors import NativeOpError

Device = Literal["cpu", "cuda"]


def colormap_table(name: str) -> np.ndarray:
    """The built-in colour map ``"turbo"`` or ``"jet"`` as uint8 [256, 3] RGB.

    Turbo is Google's published polynomial approximation of the Turbo map; jet is
    MATLAB's piecewise-linear jet, ``clamp(1.5 - |4t - k|, 0, 1)`` with k = 3, 2, 1 for red,
    green, blue; both sampled at t = i / 255 and rounded to uint8.
    """
    return kernels().colormap_table(name)


def overlay_cam(
    cam: np.ndarray,
    display: np.ndarray,
    geometry: Any,
    *,
    input_size: Any,
    colormap: str | np.ndarray = "turbo",
    alpha: float = 0.4,
    normalise: str | Sequence[float] = "minmax",
    floor: float = 0.0,
    out: np.ndarray | None = None,
    threads: int = 0,
    device: Device = "cpu",
) -> np.ndarray:
    """The CAM over the display image, as uint8 [H, W, 3] RGB.

    ``cam``: float32 or float16 [h, w], C-contiguous, finite: one class's map over the whole
    model input. ``display``: uint8 [H, W], C-contiguous, the grey image of the source
    region that was resized into the model input (the whole image, or its crop), at any
    size. ``geometry``: the ResizeGeometry the preprocess op returned for the model input.
    ``input_size``: the model input's (height, width), or its PreprocessSpec.
    ``colormap``: ``"turbo"``, ``"jet"`` or a uint8 [256, 3] RGB table. ``alpha``: colour
    opacity in [0, 1]. ``normalise``: ``"minmax"`` or a fixed ``(low, high)`` range in CAM
    units. ``floor``: normalised values below it (in [0, 1]) are not coloured. ``out``: a
    C-contiguous uint8 [H, W, 3] array to write into instead of a new one. ``threads``:
    CPU threads (0: RADEDGE_NUM_THREADS or all cores); the result is the same for any
    count. ``device``: ``"cpu"``, or ``"cuda"`` (copies to the GPU and back).

    Raises ValueError for arrays or parameters the op cannot use and NativeOpError when
    ``device`` is not available or the CUDA op fails.
    """
    for name, array in (("cam", cam), ("display", display)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array; got {type(array).__name__}")
    require_device("cam_overlay", device)
    if isinstance(normalise, str):
        low, high = 0.0, 1.0
    else:
        try:
            low, high = (float(v) for v in normalise)
        except (TypeError, ValueError):
            raise ValueError(f"normalise must be 'minmax' or a (low, high) pair of numbers; got {normalise!r}") from None
        normalise = "fixed"
    if out is None:
        out = np.empty((*display.shape[:2], 3), dtype=np.uint8) if display.ndim == 2 else np.empty((0, 0, 3), np.uint8)
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array; got {type(out).__name__}")
    arguments = dict(
        placement=placement(geometry, input_size), colormap=colormap, alpha=float(alpha), floor=float(floor),
        normalise=normalise, low=low, high=high,
    )
    if device == "cpu":
        kernels().cam_overlay_cpu(cam, display, out, threads=int(threads), **arguments)
    else:
        try:
            kernels().cam_overlay_cuda_host(cam, display, out, **arguments)
        except RuntimeError as exc:
            raise NativeOpError(str(exc)) from exc
    return out
