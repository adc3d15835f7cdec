"""CAM overlay: a class activation map blended in colour over the display image.

The ``tumor-cls`` model outputs benign / malignant plus a class activation map [C, h, w]
over the whole model input; the caller picks the channel of the class to show. The native
op ``radedge._kernels.cam_overlay_cpu`` (or ``cam_overlay_cuda_host``) makes one pass over
the display image (uint8 [H, W] grey, the windowed source region at display resolution,
for instance the preprocess op's output in stretch mode):

- each display pixel centre is mapped through the preprocess geometry into the CAM, which
  is sampled bilinearly (cell centres at i + 0.5, edges clamped, as cv2.resize
  INTER_LINEAR): the display shows the content region only, and a pixel within half a
  cell of its edge interpolates with the neighbouring cell, as any bilinear upsampling does;
- the samples are normalised to [0, 1] by their minimum and maximum over the display
  (``normalise="minmax"``) or by a fixed ``(low, high)`` range, clamped;
- mapped through a 256-entry colour map (``"turbo"``, ``"jet"`` or your own uint8
  [256, 3] RGB table) at index round(255 t);
- alpha-blended over the grey image, exactly rounded in integers with alpha quantised to
  1/255, where the normalised value reaches ``floor`` (elsewhere the grey shows through).

Zero-copy on the GPU: given CUDA arrays (radedge.cuda.DeviceArray, torch, CuPy, pycuda,
DLPack) and ``device="cuda"``, ``cam_overlay_cuda`` reads the CAM and the display in place and
writes the overlay into a CUDA array (a new DeviceArray, or ``out``), enqueued on ``stream``
and not waited for; with ``out`` and a ``workspace`` it allocates nothing, so it can be
captured in a CUDA graph. The device does not check the CAM: where a numpy CAM holding NaN or infinity is refused
with ValueError, on the device a pixel whose bilinear sample reaches a NaN cell (or an infinite
one, whose interpolation is mostly NaN) is drawn with t = 0 (the colour map's first entry, or
grey where ``floor`` > 0) and left out of the min-max range, and an infinite sample stretches
that range to infinity, which draws every pixel with t = 0. Check the CAM upstream
(``torch.isfinite``) where it may not be finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import cuda
from .._native import kernels
from . import _device
from ._device import Device, run_on
from ._geometry import input_geometry


def colormap_table(name: str) -> np.ndarray:
    """The built-in colour map ``"turbo"`` or ``"jet"`` as uint8 [256, 3] RGB.

    Turbo is Google's published polynomial approximation of the Turbo map; jet is
    MATLAB's piecewise-linear jet, ``clamp(1.5 - |4t - k|, 0, 1)`` with k = 3, 2, 1 for red,
    green, blue; both sampled at t = i / 255 and rounded to uint8.
    """
    return kernels().colormap_table(name)


def overlay_cam(
    cam: Any,
    display: Any,
    geometry: Any,
    *,
    input_size: Any = None,
    colormap: str | np.ndarray = "turbo",
    alpha: float = 0.4,
    normalise: str | Sequence[float] = "minmax",
    floor: float = 0.0,
    out: Any = None,
    threads: int = 0,
    device: Device = "cpu",
    workspace: Any = None,
    stream: Any = None,
) -> Any:
    """The CAM over the display image, as uint8 [H, W, 3] RGB.

    ``cam``: float32 or float16 [h, w], C-contiguous, finite: one class's map over the whole
    model input. ``display``: uint8 [H, W], C-contiguous, the grey image of the source
    region that was resized into the model input (the whole image, or its crop), at any
    size. ``geometry``: the ResizeGeometry the preprocess op returned for the model input.
    ``input_size``: the model input's (height, width), or its PreprocessSpec; None (the default)
    takes it from the geometry, which records it when the preprocess op made it; given as well, it
    must agree.
    ``colormap``: ``"turbo"``, ``"jet"`` or a uint8 [256, 3] RGB numpy table. ``alpha``:
    colour opacity in [0, 1]. ``normalise``: ``"minmax"`` or a fixed ``(low, high)`` range in
    CAM units. ``floor``: normalised values below it (in [0, 1]) are not coloured. ``out``: a
    C-contiguous uint8 [H, W, 3] array to write into instead of a new one. ``threads``: CPU
    threads (0: RADEDGE_NUM_THREADS or all cores); the result is the same for any count.
    ``device``: ``"cpu"``, or ``"cuda"`` (numpy arrays are copied to the GPU and back).

    Zero-copy: with CUDA arrays for ``cam``, ``display`` (and ``out``, when given) and
    ``device="cuda"``, the op is enqueued on ``stream`` (a radedge.cuda.Stream, a torch / CuPy
    / pycuda stream, or None: the legacy default stream) and returns at once: ``out``, or a new
    radedge DeviceArray. ``workspace``: a uint8 CUDA array of
    ``cam_overlay_cuda_workspace_bytes(display)`` bytes; with ``out`` too the call allocates
    nothing, for CUDA graph capture. The CAM values are not checked on the device (see the module
    docstring); keep the arrays alive until the stream has run the op.

    Raises ValueError for arrays or parameters the op cannot use, and host arrays mixed with
    CUDA arrays; NativeOpError when ``device`` is not available or the CUDA op fails.
    """
    if isinstance(normalise, str):
        low, high = 0.0, 1.0
    else:
        try:
            low, high = (float(v) for v in normalise)
        except (TypeError, ValueError):
            raise ValueError(f"normalise must be 'minmax' or a (low, high) pair of numbers; got {normalise!r}") from None
        normalise = "fixed"
    if _device.runs_on_device(
        "cam_overlay", device, dict(cam=cam, display=display, out=out), dict(stream=stream, workspace=workspace)
    ):
        stream = cuda.as_stream(stream)
        cam, display = (_device.as_device_input(a, stream) for a in (cam, display))
        if out is None:
            shape = _device.shape_of(display, "display")
            if len(shape) != 2:
                raise ValueError(f"display must be a grey uint8 [H, W] image; got shape {shape}")
            out = _device.output(None, "out", (*shape, 3), "uint8", stream)
        else:
            out = _device.as_device_input(out, stream)
        with _device.native_errors():
            kernels().cam_overlay_cuda(
                cam, display, out, geometry=input_geometry(geometry, input_size), colormap=colormap,
                alpha=float(alpha), floor=float(floor), normalise=normalise, low=low, high=high, workspace=workspace,
                stream=stream,
            )
        cuda.mark_written(out, stream)
        return out
    for name, array in (("cam", cam), ("display", display)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array; got {type(array).__name__}")
    if out is None:
        out = np.empty((*display.shape[:2], 3), dtype=np.uint8) if display.ndim == 2 else np.empty((0, 0, 3), np.uint8)
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array; got {type(out).__name__}")
    arguments = dict(
        geometry=input_geometry(geometry, input_size), colormap=colormap, alpha=float(alpha), floor=float(floor),
        normalise=normalise, low=low, high=high,
    )
    run_on(
        "cam_overlay", device,
        lambda: kernels().cam_overlay_cpu(cam, display, out, threads=int(threads), **arguments),
        lambda: kernels().cam_overlay_cuda_host(cam, display, out, **arguments),
    )
    return out


def cam_overlay_cuda_workspace_bytes(display: Any) -> int:
    """Bytes of device workspace :func:`overlay_cam` needs on CUDA arrays for a display of
    ``display``'s [H, W] shape (the array, or its shape); pass a uint8 DeviceArray of that size
    as ``workspace``."""
    shape = tuple(int(n) for n in getattr(display, "shape", display))
    if len(shape) != 2:
        raise ValueError(f"display must be [H, W]; got shape {shape}")
    with _device.native_errors():
        return kernels().cam_overlay_cuda_workspace_bytes(*shape)
