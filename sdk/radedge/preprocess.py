"""The fused preprocess op: stored pixels -> one lookup table -> resize -> normalise -> NCHW.

Every pointwise intensity step (modality LUT, VOI window, MONOCHROME1 inversion, scaling
to [0, 1]) is folded by the caller into one float32 table indexed by stored value; the
native op ``radedge._kernels.preprocess_cpu`` (or ``preprocess_cuda_host``) then makes a
single pass over the image (``preprocess_cuda`` for CUDA arrays, zero-copy):

    value       = lut[clamp(stored - lut_first_value, 0, len(lut) - 1)]
    content     = value resized to (content_height, content_width)
    out[c]      = (content, or pad_value around it - mean[c]) / std[c]

Resampling is separable. An axis that shrinks is area-averaged with OpenCV INTER_AREA's
weights, an axis that grows is interpolated as OpenCV INTER_LINEAR does (pixel centres
at i + 0.5, edges clamped), an axis that keeps its size is copied; so the content equals
``cv2.resize(lut[pixels], (content_width, content_height), interpolation=...)`` with
INTER_AREA when both axes shrink and INTER_LINEAR when both grow (to float32 rounding).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from . import cuda
from ._native import kernels, require_device
from .errors import NativeOpError

ResizeMode = Literal["stretch", "letterbox"]
OutputDtype = Literal["float32", "float16"]
Device = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class PreprocessSpec:
    """What a model expects as input (the manifest's ``preprocessing``).

    ``height`` x ``width``: model input size in pixels. ``resize``: ``"stretch"`` fills the
    input, ``"letterbox"`` keeps the aspect ratio and centres the image, filling the rest
    with ``pad_value`` (a display-domain value in the LUT's [0, 1] range, normalised like
    the image). ``mean`` / ``std``: one value for every channel or one per channel;
    ``out = (value - mean[c]) / std[c]``. ``channels``: 1, or 3 (the grey image
    replicated). ``dtype``: of the input tensor.
    """

    height: int
    width: int
    resize: ResizeMode = "letterbox"
    pad_value: float = 0.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    channels: int = 1
    dtype: OutputDtype = "float32"

    def __post_init__(self) -> None:
        # Manifests arrive as JSON: accept lists and ints, store tuples of floats.
        object.__setattr__(self, "mean", tuple(float(v) for v in np.atleast_1d(self.mean)))
        object.__setattr__(self, "std", tuple(float(v) for v in np.atleast_1d(self.std)))
        object.__setattr__(self, "pad_value", float(self.pad_value))
        for name in ("height", "width", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"PreprocessSpec.{name} must be a positive integer; got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.resize not in ("stretch", "letterbox"):
            raise ValueError(f"PreprocessSpec.resize must be 'stretch' or 'letterbox'; got {self.resize!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"PreprocessSpec.channels must be 1 or 3 (grey replicated); got {self.channels}")
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"PreprocessSpec.dtype must be 'float32' or 'float16'; got {self.dtype!r}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise ValueError(
                    f"PreprocessSpec.{name} needs 1 value (every channel) or {self.channels} (one per channel); "
                    f"got {len(values)}: {values}"
                )
            if not all(np.isfinite(values)):
                raise ValueError(f"PreprocessSpec.{name} must be finite; got {values}")
        if not all(v > 0 for v in self.std):
            raise ValueError(f"PreprocessSpec.std must be > 0 for every channel; got {self.std}")
        if not np.isfinite(self.pad_value):
            raise ValueError(f"PreprocessSpec.pad_value must be finite; got {self.pad_value}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image in the input tensor."""
        return (self.channels, self.height, self.width)


@dataclass(frozen=True)
class ResizeGeometry:
    """Where the resized source image lies in the model input.

    Coordinates are continuous pixel coordinates in which pixel ``i`` spans [i, i + 1)
    and its centre is at ``i + 0.5``, in both the source image and the model input, so
    ``x_out = x_src * scale_x + offset_x`` maps edges to edges and centres to centres.
    ``content_height`` x ``content_width``: size of the resized image inside the output
    (pixels); ``offset_y``, ``offset_x``: its top-left corner (the letterbox padding before
    it); ``scale_y = content_height / source_rows``, ``scale_x = content_width / source_columns``.
    """

    source_rows: int
    source_columns: int
    content_height: int
    content_width: int
    offset_y: int
    offset_x: int
    scale_y: float
    scale_x: float

    def to_source(self, x_out, y_out):
        """Model-input coordinates (floats or numpy arrays, pixels) -> source-image coordinates."""
        return (np.subtract(x_out, self.offset_x) / self.scale_x, np.subtract(y_out, self.offset_y) / self.scale_y)

    def to_output(self, x_src, y_src):
        """Source-image coordinates (floats or numpy arrays, pixels) -> model-input coordinates."""
        return (np.multiply(x_src, self.scale_x) + self.offset_x, np.multiply(y_src, self.scale_y) + self.offset_y)

    def as_dict(self) -> dict:
        return asdict(self)


def resize_geometry(source_rows: int, source_columns: int, spec: PreprocessSpec) -> ResizeGeometry:
    """The placement of a source_rows x source_columns image in ``spec``'s input.

    Letterbox: ``s = min(height / rows, width / columns)``, content ``max(1, round(n * s))``
    per axis with halves rounded up (exact integer arithmetic), centred with the offsets
    rounded down. Stretch: the content is the whole input. Computed by the native module,
    the same code the op uses.
    """
    g = kernels().resize_geometry(int(source_rows), int(source_columns), spec.height, spec.width, spec.resize)
    return ResizeGeometry(**g)


def preprocess_into(
    pixels: Any,
    lut: Any,
    lut_first_value: int,
    out: Any,
    slot: int,
    spec: PreprocessSpec,
    threads: int = 0,
    device: Device = "cpu",
    stream: Any = None,
    workspace: Any = None,
) -> ResizeGeometry:
    """Write one image into ``out[slot]`` and return where it landed.

    ``pixels``: stored values, uint8 / uint16 / int16 [rows, columns] (rows may be strided,
    columns must be contiguous). ``lut``: float32 [entries], display values (normally in
    [0, 1]) for stored values ``lut_first_value, lut_first_value + 1, ...``; values outside
    the table read its first or last entry. ``out``: C-contiguous ``spec.dtype``
    [N, spec.channels, spec.height, spec.width]; only ``out[slot]`` is written.
    ``threads``: CPU threads (0: RADEDGE_NUM_THREADS or all cores); the result is the same
    for any count. ``device``: ``"cpu"``, or ``"cuda"``.

    numpy arrays on ``"cuda"`` are copied to the GPU and back (for checking the CUDA kernel
    against the CPU one). CUDA arrays (radedge.cuda.DeviceArray, torch CUDA tensors, CuPy,
    pycuda: anything with ``__cuda_array_interface__`` or DLPack on a CUDA device) are read and
    written in place, zero-copy, on ``stream`` (a radedge.cuda.Stream, a torch / CuPy / pycuda
    stream, or None: the legacy default stream); the call only enqueues the work, so keep the
    arrays alive until the stream has run it. ``workspace``: a uint8 CUDA array of
    ``preprocess_cuda_workspace_bytes(rows, columns, spec)`` bytes or more (256-byte aligned,
    as allocations are) keeps the call allocation-free, as a CUDA graph capture needs; None
    takes it from CUDA's stream-ordered pool. A radedge DeviceArray ``out`` records ``stream``
    as the stream its contents wait for.

    Raises ValueError for arrays that do not match the spec (dtype, shape, layout, slot) or
    that mix host and device memory, and NativeOpError when ``device`` is not available or
    the CUDA op fails.
    """
    arrays = (("pixels", pixels), ("lut", lut), ("out", out))
    on_device = [name for name, array in arrays if cuda.is_device_array(array)]
    if on_device:
        return _preprocess_device_arrays(
            pixels, lut, lut_first_value, out, slot, spec, device, stream, workspace, on_device
        )
    if stream is not None or workspace is not None:
        raise ValueError(
            "stream and workspace apply to CUDA arrays; with numpy arrays preprocess copies to the GPU and back "
            "itself. Pass CUDA arrays (radedge.cuda.DeviceArray, torch or CuPy) to run on your stream"
        )
    for name, array in (("pixels", pixels), ("lut", lut), ("out", out)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array; got {type(array).__name__}")
    require_device("preprocess", device)
    arguments = dict(
        height=spec.height,
        width=spec.width,
        channels=spec.channels,
        dtype=spec.dtype,
        resize=spec.resize,
        pad_value=spec.pad_value,
        mean=list(spec.mean),
        std=list(spec.std),
    )
    if device == "cpu":
        g = kernels().preprocess_cpu(pixels, lut, int(lut_first_value), out, int(slot), threads=int(threads), **arguments)
    else:
        try:
            g = kernels().preprocess_cuda_host(pixels, lut, int(lut_first_value), out, int(slot), **arguments)
        except RuntimeError as exc:
            raise NativeOpError(str(exc)) from exc
    return ResizeGeometry(**g)


def _preprocess_device_arrays(pixels, lut, lut_first_value, out, slot, spec, device, stream, workspace, on_device):
    """The zero-copy path of preprocess_into: every array already on the GPU."""
    on_host = [name for name in ("pixels", "lut", "out") if name not in on_device]
    if on_host:
        raise ValueError(
            f"{' and '.join(on_device)} {'is a CUDA array' if len(on_device) == 1 else 'are CUDA arrays'} but "
            f"{' and '.join(on_host)} {'is' if len(on_host) == 1 else 'are'} not: pass all three on the GPU (upload "
            "with radedge.cuda.DeviceArray.from_numpy(array, stream=stream)) or all three as numpy arrays"
        )
    if device != "cuda":
        raise ValueError(f"pixels, lut and out are CUDA arrays; pass device='cuda' (got device={device!r})")
    if workspace is not None and not cuda.is_device_array(workspace):
        raise ValueError(
            f"workspace must be a CUDA array (uint8 [bytes]); got {type(workspace).__name__}. Allocate it with "
            "radedge.cuda.DeviceArray.empty(preprocess_cuda_workspace_bytes(rows, columns, spec), 'uint8')"
        )
    require_device("preprocess", "cuda")
    stream = cuda.as_stream(stream)
    arguments = dict(
        height=spec.height,
        width=spec.width,
        channels=spec.channels,
        dtype=spec.dtype,
        resize=spec.resize,
        pad_value=spec.pad_value,
        mean=list(spec.mean),
        std=list(spec.std),
    )
    try:
        g = kernels().preprocess_cuda(
            pixels, lut, int(lut_first_value), out, int(slot), workspace=workspace, stream=stream, **arguments
        )
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc
    cuda.mark_written(out, stream)
    return ResizeGeometry(**g)


def preprocess_cuda_workspace_bytes(source_rows: int, source_columns: int, spec: PreprocessSpec) -> int:
    """Bytes of device workspace the CUDA op needs to put a source_rows x source_columns image into
    ``spec``'s input; pass a uint8 DeviceArray of this size as ``preprocess_into(..., workspace=)``."""
    try:
        return kernels().preprocess_cuda_workspace_bytes(
            int(source_rows), int(source_columns), height=spec.height, width=spec.width, resize=spec.resize
        )
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc


def preprocess(
    pixels: np.ndarray,
    lut: np.ndarray,
    lut_first_value: int,
    spec: PreprocessSpec,
    threads: int = 0,
    device: Device = "cpu",
) -> tuple[np.ndarray, ResizeGeometry]:
    """``preprocess_into`` a new ``spec.dtype`` [1, channels, height, width] tensor; returns it and the geometry."""
    out = np.empty((1, *spec.shape), dtype=spec.dtype)
    geometry = preprocess_into(pixels, lut, lut_first_value, out, 0, spec, threads=threads, device=device)
    return out, geometry
