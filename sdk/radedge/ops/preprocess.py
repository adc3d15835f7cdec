"""The fused preprocess op: stored pixels -> one lookup table -> crop -> resize -> normalise -> NCHW.

Every pointwise intensity step (modality LUT, VOI window, MONOCHROME1 inversion, scaling
to [0, 1]) is folded by the caller into one float32 table indexed by stored value; the
native op ``radedge._kernels.preprocess_cpu`` (or ``preprocess_cuda_host``) then makes a
single pass over the image:

    value       = lut[clamp(stored - lut_first_value, 0, len(lut) - 1)]
    content     = value over the crop (default: the whole image) resized to (content_height, content_width)
    out[c]      = (content, or pad_value around it - mean[c]) / std[c]

float32 pixels (values that are not stored integers: already rescaled, or display values)
have no table; a ``FloatWindow`` maps them instead, in the kernel, as a LINEAR_EXACT
window (PS3.3 C.11.2.1.3.2): ``value = clip((v - (center - width / 2)) / width, 0, 1)``,
then ``1 - value`` if ``invert``. The default window (center 0.5, width 1) takes display
values in [0, 1] as they are. NaN or infinite pixels are refused (ValueError).

A crop is a rectangle of source pixels (``Crop(x, y, width, height)``, see
``center_crop``); it is resized into the content exactly as a whole image of its size
would be (stretch, or letterbox on the crop's aspect ratio), and ``ResizeGeometry`` maps
between model-input and whole-image coordinates through it.

Resampling is separable. An axis that shrinks is area-averaged with OpenCV INTER_AREA's
weights, an axis that grows is interpolated as OpenCV INTER_LINEAR does (pixel centres
at i + 0.5, edges clamped), an axis that keeps its size is copied; so the content equals
``cv2.resize(lut[pixels], (content_width, content_height), interpolation=...)`` with
INTER_AREA when both axes shrink and INTER_LINEAR when both grow (to float32 rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .. import cuda
from .._native import kernels
from ..errors import NativeOpError
from ..spec.geometry import Crop, ResizeGeometry, center_crop
from ..spec.preprocess import PreprocessSpec
from ._device import Device, native_errors, run_on, runs_on_device

__all__ = [
    "Crop",
    "FloatWindow",
    "PreprocessSpec",
    "ResizeGeometry",
    "center_crop",
    "preprocess",
    "preprocess_batch",
    "preprocess_batch_cuda_workspace_bytes",
    "preprocess_cuda_workspace_bytes",
    "preprocess_into",
    "resize_geometry",
]


@dataclass(frozen=True)
class FloatWindow:
    """How float32 pixels become display values: a LINEAR_EXACT window in the pixels' units.

    ``value = clip((v - (center - width / 2)) / width, 0, 1)``, then ``1 - value`` when
    ``invert`` (data whose largest values display darkest, as MONOCHROME1). The default
    (center 0.5, width 1) keeps display values in [0, 1] as they are. ``width`` must be > 0.
    """

    center: float = 0.5
    width: float = 1.0
    invert: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", float(self.center))
        object.__setattr__(self, "width", float(self.width))
        object.__setattr__(self, "invert", bool(self.invert))
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise ValueError(f"FloatWindow: center and width must be finite; got center={self.center}, width={self.width}")
        if not self.width > 0:
            raise ValueError(
                f"FloatWindow: width must be > 0 (the span of values mapped onto [0, 1]); got {self.width}"
            )


def resize_geometry(
    source_rows: int, source_columns: int, spec: PreprocessSpec, crop: Crop | Sequence[int] | None = None
) -> ResizeGeometry:
    """The placement of ``crop`` (default: the whole image) of a source_rows x source_columns image in ``spec``'s input.

    Letterbox: ``s = min(height / crop_height, width / crop_width)``, content
    ``max(1, round(n * s))`` per axis with halves rounded up (exact integer arithmetic),
    centred with the offsets rounded down. Stretch: the content is the whole input.
    Computed by the native module, the same code the op uses.
    """
    g = kernels().resize_geometry(
        int(source_rows), int(source_columns), spec.height, spec.width, spec.resize, crop=_crop_argument(crop)
    )
    return ResizeGeometry(**g)


def _crop_argument(crop, name: str = "crop") -> tuple[int, int, int, int] | None:
    if crop is None:
        return None
    values = tuple(crop)
    if len(values) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{name} must be (x, y, width, height), four integers in source pixels; got {crop!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def _intensity_arguments(lut) -> tuple[Any, tuple[float, float, bool] | None]:
    """The native op's (lut, float_window) for a table (numpy or CUDA array), a FloatWindow or None."""
    if isinstance(lut, FloatWindow):
        return None, (lut.center, lut.width, lut.invert)
    if lut is None or isinstance(lut, np.ndarray) or cuda.is_device_array(lut):
        return lut, None
    raise TypeError(
        f"lut must be a numpy float32 table (stored-value pixels) or a FloatWindow / None (float32 pixels); "
        f"got {type(lut).__name__}"
    )


def _spec_arguments(spec: PreprocessSpec) -> dict:
    return dict(
        height=spec.height,
        width=spec.width,
        channels=spec.channels,
        dtype=spec.dtype,
        resize=spec.resize,
        pad_value=spec.pad_value,
        mean=list(spec.mean),
        std=list(spec.std),
    )


def preprocess_into(
    pixels: Any,
    lut: Any,
    lut_first_value: int,
    out: Any,
    slot: int,
    spec: PreprocessSpec,
    threads: int = 0,
    device: Device = "cpu",
    crop: Crop | Sequence[int] | None = None,
    stream: Any = None,
    workspace: Any = None,
) -> ResizeGeometry:
    """Write one image into ``out[slot]`` and return where it landed.

    ``pixels``: stored values, uint8 / uint16 / int16 [rows, columns], or float32 values
    (rows may be strided, columns must be contiguous). ``lut``: for stored values, float32
    [entries], display values (normally in [0, 1]) for stored values ``lut_first_value,
    lut_first_value + 1, ...``; values outside the table read its first or last entry. For
    float32 pixels, a ``FloatWindow`` (None: ``FloatWindow()``), and ``lut_first_value`` is
    not used. ``out``: C-contiguous ``spec.dtype`` [N, spec.channels, spec.height,
    spec.width]; only ``out[slot]`` is written. ``crop``: ``(x, y, width, height)`` in
    source pixels, the part of the image to resize (None: all of it). ``threads``: CPU
    threads (0: RADEDGE_NUM_THREADS or all cores); the result is the same for any count.
    ``device``: ``"cpu"``, or ``"cuda"``.

    numpy arrays on ``"cuda"`` are copied to the GPU and back (for checking the CUDA kernel
    against the CPU one). CUDA arrays (radedge.cuda.DeviceArray, torch CUDA tensors, CuPy,
    pycuda: anything with ``__cuda_array_interface__`` or DLPack on a CUDA device) are read and
    written in place, zero-copy, on ``stream`` (a radedge.cuda.Stream, a torch / CuPy / pycuda
    stream, or None: the legacy default stream); the call only enqueues the work, so keep the
    arrays alive until the stream has run it. ``workspace``: a uint8 CUDA array of
    ``preprocess_cuda_workspace_bytes(rows, columns, spec, crop)`` bytes or more (256-byte
    aligned, as allocations are) keeps the call allocation-free, as a CUDA graph capture needs;
    None takes it from CUDA's stream-ordered pool. A radedge DeviceArray ``out`` records
    ``stream`` as the stream its contents wait for.

    Raises ValueError for arrays that do not match the spec (dtype, shape, layout, slot), that
    mix host and device memory, a crop that is empty or reaches outside the image, a window
    width <= 0 and non-finite float pixels; NativeOpError when ``device`` is not available or
    the CUDA op fails.
    """
    table, window = _intensity_arguments(lut)
    arrays = {"pixels": pixels, "lut": table, "out": out}
    if runs_on_device("preprocess", device, arrays, {"stream": stream, "workspace": workspace}):
        stream = cuda.as_stream(stream)
        with native_errors():
            g = kernels().preprocess_cuda(
                pixels, table, int(lut_first_value), out, int(slot), workspace=workspace, stream=stream,
                crop=_crop_argument(crop), float_window=window, **_spec_arguments(spec),
            )
        cuda.mark_written(out, stream)
        return ResizeGeometry(**g)
    for name, array in (("pixels", pixels), ("out", out)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array; got {type(array).__name__}")
    arguments = dict(_spec_arguments(spec), crop=_crop_argument(crop), float_window=window)
    g = run_on(
        "preprocess", device,
        lambda: kernels().preprocess_cpu(
            pixels, table, int(lut_first_value), out, int(slot), threads=int(threads), **arguments
        ),
        lambda: kernels().preprocess_cuda_host(pixels, table, int(lut_first_value), out, int(slot), **arguments),
    )
    return ResizeGeometry(**g)


def preprocess_cuda_workspace_bytes(
    source_rows: int, source_columns: int, spec: PreprocessSpec, crop: Crop | Sequence[int] | None = None
) -> int:
    """Bytes of device workspace the CUDA op needs to put ``crop`` of a source_rows x
    source_columns image into ``spec``'s input; pass a uint8 DeviceArray of this size as
    ``preprocess_into(..., workspace=)``."""
    try:
        return kernels().preprocess_cuda_workspace_bytes(
            int(source_rows), int(source_columns), height=spec.height, width=spec.width, resize=spec.resize,
            crop=_crop_argument(crop),
        )
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc


def preprocess(
    pixels: np.ndarray,
    lut: np.ndarray | FloatWindow | None,
    lut_first_value: int,
    spec: PreprocessSpec,
    threads: int = 0,
    device: Device = "cpu",
    crop: Crop | Sequence[int] | None = None,
) -> tuple[np.ndarray, ResizeGeometry]:
    """``preprocess_into`` a new ``spec.dtype`` [1, channels, height, width] tensor; returns it and the geometry."""
    out = np.empty((1, *spec.shape), dtype=spec.dtype)
    geometry = preprocess_into(pixels, lut, lut_first_value, out, 0, spec, threads=threads, device=device, crop=crop)
    return out, geometry


def preprocess_batch(
    images: Sequence[tuple],
    out: Any,
    spec: PreprocessSpec,
    threads: int = 0,
    device: Device = "cpu",
    stream: Any = None,
    workspace: Any = None,
) -> list[ResizeGeometry]:
    """Write ``images[i]`` into ``out[i]``, images of any sizes and pixel dtypes; one geometry each.

    Each image is ``(pixels, lut, lut_first_value)`` or ``(pixels, lut, lut_first_value,
    crop)`` with the meanings of ``preprocess_into``. ``out``: C-contiguous ``spec.dtype``
    [N, channels, height, width] with N >= len(images); slots past the images are left as
    they are. Every slot holds exactly (bit for bit) what ``preprocess_into`` would write
    for its image on the same device. On ``"cpu"`` the rows of all the images form one pool
    of work for the threads, so small images do not leave cores idle; on ``"cuda"`` each
    image is one enqueue of the kernel on a single stream.

    numpy arrays on ``"cuda"`` are copied to the GPU and back. CUDA arrays (every pixels,
    every table and ``out``; see ``preprocess_into``) are read and written in place,
    zero-copy, on ``stream``, and the call only enqueues the work. ``workspace``: a uint8 CUDA
    array of ``preprocess_batch_cuda_workspace_bytes(...)`` bytes or more keeps the call
    allocation-free, as a CUDA graph capture needs; None takes it from CUDA's stream-ordered
    pool.

    Raises ValueError naming the image at fault (see ``preprocess_into``), for an empty list,
    more images than ``out`` holds, or host and device arrays mixed; NativeOpError as
    ``preprocess_into``.
    """
    items = []
    for index, image in enumerate(images):
        if not isinstance(image, (tuple, list)) or len(image) not in (3, 4):
            raise ValueError(
                f"images[{index}] must be (pixels, lut, lut_first_value) or (pixels, lut, lut_first_value, crop); "
                f"got {type(image).__name__}" + (f" of {len(image)} items" if isinstance(image, (tuple, list)) else "")
            )
        pixels, lut, first = image[:3]
        table, window = _intensity_arguments(lut)
        crop = _crop_argument(image[3] if len(image) == 4 else None)
        items.append((pixels, table, int(first), crop, window))
    arrays = {"out": out}
    for index, (pixels, table, *_) in enumerate(items):
        arrays[f"images[{index}].pixels"] = pixels
        arrays[f"images[{index}].lut"] = table
    if runs_on_device("preprocess", device, arrays, {"stream": stream, "workspace": workspace}):
        stream = cuda.as_stream(stream)
        with native_errors():
            geometries = kernels().preprocess_batch_cuda(
                items, out, workspace=workspace, stream=stream, **_spec_arguments(spec)
            )
        cuda.mark_written(out, stream)
        return [ResizeGeometry(**g) for g in geometries]
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array; got {type(out).__name__}")
    for index, (pixels, *_) in enumerate(items):
        if not isinstance(pixels, np.ndarray):
            raise TypeError(f"images[{index}]: pixels must be a numpy array; got {type(pixels).__name__}")
    geometries = run_on(
        "preprocess", device,
        lambda: kernels().preprocess_batch_cpu(items, out, threads=int(threads), **_spec_arguments(spec)),
        lambda: kernels().preprocess_batch_cuda_host(items, out, **_spec_arguments(spec)),
    )
    return [ResizeGeometry(**g) for g in geometries]


def preprocess_batch_cuda_workspace_bytes(
    sources: Sequence[Sequence], spec: PreprocessSpec
) -> int:
    """Bytes of device workspace ``preprocess_batch`` needs on CUDA arrays: ``sources[i]`` is
    image i's ``(rows, columns)`` or ``(rows, columns, crop)``. Pass a uint8 CUDA array of
    this size as ``preprocess_batch(..., workspace=)``."""
    arguments = []
    for index, source in enumerate(sources):
        if len(source) not in (2, 3):
            raise ValueError(f"sources[{index}] must be (rows, columns) or (rows, columns, crop); got {source!r}")
        crop = _crop_argument(source[2] if len(source) == 3 else None)
        arguments.append((int(source[0]), int(source[1]), crop))
    try:
        return kernels().preprocess_batch_cuda_workspace_bytes(
            arguments, height=spec.height, width=spec.width, resize=spec.resize
        )
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc
