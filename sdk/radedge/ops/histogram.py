"""The histogram op: how many pixels hold each stored value, over a table's range.

``histogram(pixels, first_value, bins)`` counts into int64 [bins]: bin ``b`` holds the
pixels whose stored value is ``first_value + b``; values below or above the range count
in the first or last bin (as the preprocess op's table lookup clamps them). ``region``
restricts the count to a rectangle (``(x, y, width, height)``, as a preprocess crop) and
``padding`` leaves out a range of stored values (DICOM pixel padding, PS3.3
C.7.5.1.1.2), which then count nowhere.

On ``"cpu"`` the rows are split across threads; on ``"cuda"`` blocks count into shared
memory histograms and add them up with atomics: ``radedge._kernels.histogram_cuda_host``
copies numpy pixels to the GPU for that, and ``radedge._kernels.histogram_cuda`` counts
pixels already on the GPU (CUDA arrays from any library) without a copy, enqueue-only.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import cuda
from .._native import kernels
from ..errors import NativeOpError
from ..io.image import PixelPadding
from ._device import Device, require_device, run_on
from .preprocess import _crop_argument


def _padding_argument(padding) -> tuple[int, int] | None:
    if isinstance(padding, PixelPadding):
        return (padding.low, padding.high)
    if padding is None:
        return None
    values = tuple(int(v) for v in padding)
    if len(values) != 2:
        raise ValueError(f"padding must be (low, high) stored values or a PixelPadding; got {padding!r}")
    return values  # type: ignore[return-value]


def histogram(
    pixels: Any,
    first_value: int,
    bins: int,
    *,
    region: Sequence[int] | None = None,
    padding: PixelPadding | tuple[int, int] | None = None,
    threads: int = 0,
    device: Device = "cpu",
    stream: Any = None,
    out: Any = None,
) -> Any:
    """int64 [bins]: the count of each stored value ``first_value .. first_value + bins - 1``.

    ``pixels``: uint8 / uint16 / int16 [rows, columns] stored values (columns contiguous).
    ``bins``: 1 to 65536. ``region``: ``(x, y, width, height)`` in pixels, None for the
    whole image. ``padding``: a ``PixelPadding`` or ``(low, high)`` inclusive stored values
    not to count. ``threads``: CPU threads (0: the default); the counts do not depend on it.

    numpy pixels give a numpy array (on ``"cuda"`` they are copied to the GPU for the count).
    CUDA-array pixels (radedge.cuda.DeviceArray, torch CUDA tensors, CuPy, pycuda: anything
    with ``__cuda_array_interface__`` or DLPack on a CUDA device; rows may be padded) are
    counted in place, zero-copy, on ``stream`` (a radedge.cuda.Stream, a torch / CuPy /
    pycuda stream, or None: the legacy default stream), into ``out`` (a C-contiguous int64
    [bins] CUDA array; None: a new ``radedge.cuda.DeviceArray``), which is returned: the
    counts stay on the device (read them with ``out.to_numpy(stream)``, ``torch.as_tensor``...).
    The call only enqueues the work and allocates nothing when ``out`` is given, so it can be
    captured in a CUDA graph; keep ``pixels`` alive until the stream has run it.

    Raises ValueError for arrays or arguments the op cannot use (float pixels, a region
    outside the image, an empty padding range, host and device arrays mixed...),
    NativeOpError when ``device`` is not available or the CUDA op fails.
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= bins <= 65536:
        raise ValueError(f"bins must be an integer from 1 to 65536; got {bins!r}")
    padding = _padding_argument(padding)
    region_argument = _crop_argument(region, "region")
    if cuda.is_device_array(pixels) or (out is not None and cuda.is_device_array(out)):
        return _histogram_device(pixels, int(first_value), int(bins), region_argument, padding, device, stream, out)
    if stream is not None or out is not None:
        raise ValueError(
            "stream and out apply to CUDA pixels; with numpy pixels histogram returns a new numpy array. Pass the "
            "pixels as a CUDA array (radedge.cuda.DeviceArray, torch or CuPy) to count on your stream"
        )
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a numpy array or a CUDA array; got {type(pixels).__name__}")
    counts = np.zeros(int(bins), dtype=np.int64)
    run_on(
        "histogram", device,
        lambda: kernels().histogram_cpu(
            pixels, counts, int(first_value), region=region_argument, padding=padding, threads=int(threads)
        ),
        lambda: kernels().histogram_cuda_host(pixels, counts, int(first_value), region=region_argument, padding=padding),
    )
    return counts


def _histogram_device(pixels, first_value: int, bins: int, region, padding, device, stream, out):
    """The zero-copy path of histogram: pixels and counts on the GPU."""
    if not cuda.is_device_array(pixels):
        raise ValueError(
            "out is a CUDA array but pixels is not: pass the pixels on the GPU too (upload with "
            "radedge.cuda.DeviceArray.from_numpy(pixels, stream=stream)), or no out to count numpy pixels"
        )
    if out is not None and not cuda.is_device_array(out):
        raise ValueError(
            f"pixels is a CUDA array but out is a {type(out).__name__}: pass an int64 [bins] CUDA array, or None "
            "for a new one"
        )
    if device != "cuda":
        raise ValueError(f"pixels is a CUDA array; pass device='cuda' (got device={device!r})")
    if out is not None:
        declared = cuda._declared_shape(out)
        if declared is not None and declared != (bins,):
            raise ValueError(f"out must hold the {bins} bins, int64 [{bins}]; got shape {declared}")
    require_device("histogram", "cuda")
    stream = cuda.as_stream(stream)
    try:
        if out is None:
            if stream is not None and stream.capturing:
                raise ValueError(
                    "histogram would allocate its counts during a CUDA graph capture, which CUDA refuses: allocate "
                    "an int64 [bins] CUDA array before the capture and pass it as out"
                )
            out = cuda.DeviceArray.empty(bins, "int64", stream=stream)
        elif type(out).__name__ == "PyCapsule":
            # A capsule can be consumed once: the view is both what the op writes and what is returned.
            out = cuda.as_device_array(out, stream)
        kernels().histogram_cuda(pixels, out, first_value, region=region, padding=padding, stream=stream)
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc
    cuda.mark_written(out, stream)
    return out
