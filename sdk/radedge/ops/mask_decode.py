"""The mask decode op: segmentation logits -> uint8 label mask at the source image's
geometry, per-label statistics and an optional run-length encoding, in one native pass
(``radedge._kernels.mask_decode_cpu``, or ``mask_decode_cuda_host``).

Geometry: the logits [N, C, h, w] cover the model input (``input_size``) at any
resolution. The source image was cropped (``crop_*`` of the geometry; the whole image
when the geometry has none) and the crop resized into the content rectangle of the model
input. Each mask pixel's centre is mapped back through those steps into the logit plane
and read bilinearly (half-pixel centres, edges clamped, as OpenCV INTER_LINEAR); mask
pixels whose centre falls outside the crop are 0. The mask is the source size by default,
or any ``output_size`` (spread evenly over the source image, e.g. for display).

Labels: ``"sigmoid"`` heads (multi-label) give ``1 + c`` where channel c's probability
reaches its threshold; where several labels do, the one with the highest logit wins (the
lowest index on a tie), so overlaps go to the more confident label; 0 where none does.
``"softmax"`` heads (multi-class, channel 0 = background) give the argmax channel.

Statistics are per label over the mask's pixels: pixel count, bounding box (x0, y0, x1, y1,
x1 / y1 exclusive), centroid (x, y, pixel centres at integer + 0.5) and, given the source's
pixel spacing, the area in mm^2 (scaled to the mask's pixel size).

Run-length encoding (``rle=True``): the mask in row-major order as uint32 (value, length)
rows; a run may continue from one row into the next. :func:`decode_rle` turns it back.

On the GPU without copies: CUDA-array logits (radedge.cuda.DeviceArray, torch, CuPy, ...)
are decoded by ``radedge._kernels.mask_decode_cuda`` on the caller's stream into CUDA
buffers; the mask and runs stay there and a :class:`DeviceMaskResult` fetches the small
statistics only when they are read (see :func:`decode_mask`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .. import cuda
from .._native import kernels
from ..errors import NativeOpError
from ._device import Device, require_device, run_on
from ._geometry import input_geometry

Activation = Literal["sigmoid", "softmax"]

#: Runs kept by default when ``rle=True``: 512 kB of (value, length) pairs, far more than a
#: segmentation mask of smooth regions needs (an empty mask is 1 run).
DEFAULT_RUN_CAPACITY = 1 << 16


@dataclass(frozen=True)
class LabelStats:
    """One label of a decoded mask, measured on the mask's pixel grid.

    ``value``: the label's value in the mask (1, 2, ...); ``label``: its name.
    ``bbox``: (x0, y0, x1, y1), x1 / y1 exclusive, mask pixels; ``centroid``: (x, y), mask
    pixels with centres at integer + 0.5; both ``None`` for an empty label. ``area_mm2``:
    ``None`` when no pixel spacing was given.
    """

    value: int
    label: str
    pixel_count: int
    bbox: tuple[int, int, int, int] | None
    centroid: tuple[float, float] | None
    area_mm2: float | None


@dataclass(frozen=True)
class MaskResult:
    """What :func:`decode_mask` produced for one image.

    ``mask``: uint8 [height, width], 0 = background, ``i + 1`` = ``labels[i]``.
    ``labels``: statistics per label, in value order. ``runs``: uint32 [K, 2] (value,
    length) pairs in row-major order, or ``None`` without ``rle``; ``run_count``: the runs
    the whole mask needs (0 without ``rle``). When ``run_count > len(runs)`` the capacity
    was too small and ``runs`` holds only the first ones: ``rle_complete`` is then False.
    ``pixel_area_mm2``: the area of one mask pixel, ``None`` without a pixel spacing.
    """

    mask: np.ndarray
    labels: tuple[LabelStats, ...]
    runs: np.ndarray | None
    run_count: int
    pixel_area_mm2: float | None

    @property
    def rle_complete(self) -> bool:
        return self.runs is not None and self.run_count == len(self.runs)


#: The columns of the uint64 [labels, 7] tallies the CUDA op leaves on the device, per label.
TALLY_FIELDS = ("pixel_count", "sum_x", "sum_y", "min_x", "min_y", "max_x", "max_y")
#: The uint64 [2] counters of one CUDA call.
COUNTER_FIELDS = ("run_count", "non_finite_logits")


@contextlib.contextmanager
def _cuda_errors() -> Iterator[None]:
    try:
        yield
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc


def _to_host(array: Any, stream: Any) -> np.ndarray:
    """A numpy copy of a C-contiguous CUDA array, copied on ``stream`` and waited for."""
    view = array if isinstance(array, cuda.DeviceArray) else cuda.as_device_array(array, stream)
    return view.to_numpy(stream)


class DeviceMaskResult:
    """What :func:`decode_mask` enqueued for CUDA-array logits: results on the device,
    statistics on demand.

    ``mask``: the CUDA array the mask is written to (``out``, or a new
    ``radedge.cuda.DeviceArray`` uint8 [height, width]). ``runs``: CUDA uint32 [capacity, 2]
    or None without run-length encoding; its first ``min(run_count, capacity)`` rows are the
    runs. ``tallies`` (uint64 [labels, 7], columns :data:`TALLY_FIELDS`) and ``counters``
    (uint64 [2], :data:`COUNTER_FIELDS`): what the statistics are made of. ``stream``: where
    the op was enqueued. ``pixel_area_mm2``: as in :class:`MaskResult`.

    Nothing is waited for until a statistic is read: :meth:`fetch` copies the tallies and
    counters back (a few hundred bytes) on ``stream``, waits for that copy, and computes the
    statistics with the CPU op's code; ``labels``, ``run_count`` and ``rle_complete`` fetch
    the first time they are read and then keep what was fetched. Call :meth:`fetch` again
    after the buffers were written anew (a CUDA graph replaying the call). :meth:`to_host`
    brings everything back as a :class:`MaskResult`. Both raise ValueError when the logits
    held NaN or infinite values: the mask is then undefined.

    The result keeps the logits and workspace referenced, so they stay allocated while it lives.
    """

    __slots__ = ("mask", "runs", "tallies", "counters", "stream", "pixel_area_mm2", "_names", "_geometry",
                 "_spacing", "_encode", "_fetched", "_inputs")

    def __init__(self, *, mask, runs, tallies, counters, stream, names, geometry, spacing, encode, pixel_area_mm2,
                 inputs):
        self.mask = mask
        self.runs = runs
        self.tallies = tallies
        self.counters = counters
        self.stream = stream
        self.pixel_area_mm2 = pixel_area_mm2
        self._names = names
        self._geometry = geometry
        self._spacing = spacing
        self._encode = encode
        self._fetched: tuple[tuple[LabelStats, ...], int] | None = None
        self._inputs = inputs

    def fetch(self) -> DeviceMaskResult:
        """Waits for the op on ``stream``, reads its tallies and counters, and returns self."""
        with _cuda_errors():
            tallies = _to_host(self.tallies, self.stream)
            counters = _to_host(self.counters, self.stream)
        run_count, non_finite = int(counters[0]), int(counters[1])
        if non_finite:
            raise ValueError(
                f"mask_decode: the logits hold {non_finite} NaN or infinite values; the model or its input is "
                "broken, so no mask can be decoded (the mask on the device is undefined)"
            )
        height, width = (int(n) for n in cuda._declared_shape(self.mask))
        row_mm, column_mm = self._spacing or (0.0, 0.0)
        entries = kernels().mask_decode_statistics(
            tallies, source_rows=self._geometry["source_rows"], source_columns=self._geometry["source_columns"],
            mask_height=height, mask_width=width, row_spacing_mm=row_mm, column_spacing_mm=column_mm,
        )
        self._fetched = (_label_stats(entries, self._names), run_count if self._encode else 0)
        return self

    def _statistics(self) -> tuple[tuple[LabelStats, ...], int]:
        if self._fetched is None:
            self.fetch()
        return self._fetched

    @property
    def labels(self) -> tuple[LabelStats, ...]:
        return self._statistics()[0]

    @property
    def run_count(self) -> int:
        """Runs the whole mask needs (0 without run-length encoding)."""
        return self._statistics()[1]

    @property
    def rle_complete(self) -> bool:
        if self.runs is None:
            return False
        return self.run_count <= cuda._declared_shape(self.runs)[0]

    def to_host(self) -> MaskResult:
        """Fetches the statistics and copies the mask and the stored runs back: the
        :class:`MaskResult` the CPU op gives for the same logits."""
        self.fetch()
        labels, run_count = self._fetched
        with _cuda_errors():
            mask = _to_host(self.mask, self.stream)
            runs = None
            if self.runs is not None:
                runs = _to_host(self.runs, self.stream)
                runs = runs[: min(run_count, len(runs))]
        return MaskResult(mask, labels, runs, run_count, self.pixel_area_mm2)

    def __repr__(self) -> str:
        shape = cuda._declared_shape(self.mask)
        state = "fetched" if self._fetched is not None else "not fetched"
        return f"radedge.ops.mask_decode.DeviceMaskResult(mask {shape}, {len(self._names)} labels, statistics {state})"


def mask_decode_cuda_workspace_bytes(
    logits_size: tuple[int, int], output_size: tuple[int, int], rle_capacity: int = 0
) -> int:
    """Bytes of device workspace the CUDA op needs to decode (h, w) logits into an
    ``output_size`` (height, width) mask with ``rle_capacity`` runs (0: no run-length
    encoding); pass a uint8 CUDA array of this size as ``decode_mask(..., workspace=)``."""
    with _cuda_errors():
        return kernels().mask_decode_cuda_workspace_bytes(
            int(logits_size[0]), int(logits_size[1]), int(output_size[0]), int(output_size[1]), int(rle_capacity)
        )


def _thresholds(activation: str, thresholds) -> list[float]:
    if activation == "softmax":
        if thresholds is not None:
            raise ValueError("a softmax head takes the argmax and no thresholds; pass thresholds=None")
        return []
    if thresholds is None:
        return [0.5]
    return [float(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=np.float64))]


def _spacing(spacing_mm) -> tuple[float, float]:
    if spacing_mm is None:
        return 0.0, 0.0
    row_mm, column_mm = float(spacing_mm[0]), float(spacing_mm[1])
    if not (row_mm > 0 and column_mm > 0 and np.isfinite([row_mm, column_mm]).all()):
        raise ValueError(f"spacing_mm must be (row, column) in mm, both finite and > 0, or None; got {spacing_mm!r}")
    return row_mm, column_mm


def _output_shape(geometry: dict, output_size) -> tuple[int, int]:
    size = (geometry["source_rows"], geometry["source_columns"]) if output_size is None else output_size
    if len(size) != 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in size):
        raise ValueError(f"output_size must be (height, width) in whole pixels; got {output_size!r}")
    if min(size) < 1:
        raise ValueError(f"output_size must be at least 1 x 1; got {tuple(size)}")
    return int(size[0]), int(size[1])


def _label_names(activation: str, shape: tuple[int, ...] | None, labels) -> tuple[str, ...]:
    channels = shape[1] if shape is not None and len(shape) == 4 else 0
    label_count = channels if activation == "sigmoid" else channels - 1
    if labels is None:
        return tuple(str(value) for value in range(1, max(label_count, 0) + 1))
    names = tuple(str(name) for name in labels)
    if shape is not None and len(shape) == 4 and len(names) != label_count:
        raise ValueError(
            f"a {activation} head with {channels} channels has {label_count} labels; got {len(names)} names {names}"
        )
    return names


def _rle_capacity(rle_capacity) -> int:
    if isinstance(rle_capacity, bool) or not isinstance(rle_capacity, (int, np.integer)) or rle_capacity < 1:
        raise ValueError(f"rle_capacity must be a positive number of runs; got {rle_capacity!r}")
    return int(rle_capacity)


def _pixel_area(spacing: tuple[float, float] | None, geometry: dict, mask_shape: tuple[int, int]) -> float | None:
    if spacing is None:
        return None
    row_mm, column_mm = spacing
    row_size = row_mm * geometry["source_rows"] / mask_shape[0]
    column_size = column_mm * geometry["source_columns"] / mask_shape[1]
    return row_size * column_size


def _label_stats(entries, names) -> tuple[LabelStats, ...]:
    return tuple(
        LabelStats(
            value=index + 1,
            label=names[index],
            pixel_count=int(entry["pixel_count"]),
            bbox=None if entry["bbox"] is None else tuple(int(v) for v in entry["bbox"]),
            centroid=None if entry["centroid"] is None else tuple(float(v) for v in entry["centroid"]),
            area_mm2=entry["area_mm2"],
        )
        for index, entry in enumerate(entries)
    )


# The zero-copy path's device-only arguments, which have no meaning for numpy logits.
_DEVICE_ONLY = ("stream", "workspace", "runs", "tallies", "counters")


def decode_mask(
    logits: Any,
    geometry,
    *,
    input_size: Any = None,
    activation: Activation,
    thresholds: float | Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    image: int = 0,
    output_size: tuple[int, int] | None = None,
    spacing_mm: tuple[float, float] | None = None,
    rle: bool = False,
    rle_capacity: int = DEFAULT_RUN_CAPACITY,
    out: Any = None,
    device: Device = "cpu",
    threads: int = 0,
    stream: Any = None,
    workspace: Any = None,
    runs: Any = None,
    tallies: Any = None,
    counters: Any = None,
) -> MaskResult | DeviceMaskResult:
    """Decode ``logits[image]`` into a label mask with statistics.

    ``logits``: float32 or float16 [N, C, h, w], C-contiguous, raw (before the activation).
    ``geometry``: the ``ResizeGeometry`` the preprocess op returned for this image.
    ``input_size``: the model input's (height, width) in pixels, or its PreprocessSpec; None (the
    default) takes it from the geometry, which records it when the preprocess op made it; given
    as well, it must agree. ``activation``:
    ``"sigmoid"`` with ``thresholds`` (probabilities in [0, 1], one for every channel or one
    per channel; ``None``: 0.5) or ``"softmax"`` (argmax; ``thresholds`` must be ``None``).
    ``labels``: names of the labels (C for sigmoid, C - 1 for softmax; default "1", "2",
    ...). ``image``: which image of the batch to decode. ``output_size``: (height, width) of the mask, default the source's (rows,
    columns). ``spacing_mm``: the SOURCE's (row, column) pixel spacing in mm, for areas.
    ``rle``: also run-length encode the mask, keeping up to ``rle_capacity`` runs. ``out``:
    a uint8 [height, width] array to write the mask into (its shape is the output size).
    ``device``: ``"cpu"`` or ``"cuda"``. ``threads``: CPU threads (0: RADEDGE_NUM_THREADS or
    all cores); the result is the same for any count.

    numpy logits give a :class:`MaskResult`; on ``"cuda"`` they are copied to the GPU and
    back (for checking the CUDA kernels).

    CUDA-array logits (radedge.cuda.DeviceArray, torch CUDA tensors, CuPy, pycuda: anything
    with ``__cuda_array_interface__`` or DLPack on a CUDA device) are decoded in place,
    zero-copy, on ``stream`` (a radedge.cuda.Stream, a torch / CuPy / pycuda stream, or None:
    the legacy default stream), and give a :class:`DeviceMaskResult`: the mask and runs stay
    on the device, the statistics come back when read. The call only enqueues the work; keep
    the arrays alive until the stream has run it. The buffers the op writes may be given
    (CUDA arrays, all C-contiguous and separate): ``out`` (uint8 [height, width]), ``runs``
    (uint32 [capacity, 2]; giving it turns the run-length encoding on, with its capacity),
    ``tallies`` (uint64 [labels, 7]), ``counters`` (uint64 [2]) and ``workspace`` (uint8,
    :func:`mask_decode_cuda_workspace_bytes` bytes). Those not given are allocated (the
    workspace from CUDA's stream-ordered pool), which a CUDA graph capture does not allow:
    inside ``radedge.cuda.Graph.capture`` pass them all.

    Raises ValueError for inputs that do not fit together (shapes, dtypes, layouts,
    thresholds, geometry, NaN or infinite logits, host and device arrays mixed) and
    NativeOpError when ``device`` is not available or the CUDA op fails.
    """
    device_arguments = {
        "logits": logits, "out": out, "runs": runs, "tallies": tallies, "counters": counters, "workspace": workspace,
    }
    on_device = [name for name, array in device_arguments.items() if array is not None and cuda.is_device_array(array)]
    if on_device:
        return _decode_mask_device(
            logits, geometry, input_size=input_size, activation=activation, thresholds=thresholds, labels=labels,
            image=image, output_size=output_size, spacing_mm=spacing_mm, rle=rle, rle_capacity=rle_capacity,
            device=device, stream=stream, buffers={k: v for k, v in device_arguments.items() if k != "logits"},
            on_device=on_device,
        )
    device_only = (stream, workspace, runs, tallies, counters)
    given = [name for name, value in zip(_DEVICE_ONLY, device_only) if value is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} apply to CUDA arrays; with numpy logits decode_mask allocates and copies itself. "
            "Pass CUDA-array logits (radedge.cuda.DeviceArray, torch or CuPy) to decode on your stream"
        )
    if not isinstance(logits, np.ndarray):
        raise TypeError(f"logits must be a numpy array or a CUDA array; got {type(logits).__name__}")
    require_device("mask_decode", device)
    if activation not in ("sigmoid", "softmax"):
        raise ValueError(f"activation must be 'sigmoid' or 'softmax'; got {activation!r}")
    native_geometry = input_geometry(geometry, input_size)
    threshold_list = _thresholds(activation, thresholds)

    if out is None:
        out = np.empty(_output_shape(native_geometry, output_size), dtype=np.uint8)
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array; got {type(out).__name__}")
    elif output_size is not None and tuple(output_size) != out.shape:
        raise ValueError(f"output_size {tuple(output_size)} does not match out's shape {out.shape}; pass one of them")

    names = _label_names(activation, logits.shape, labels)
    host_runs = np.zeros((_rle_capacity(rle_capacity), 2), dtype=np.uint32) if rle else None
    row_mm, column_mm = _spacing(spacing_mm)
    call = dict(
        activation=activation,
        thresholds=threshold_list,
        geometry=native_geometry,
        row_spacing_mm=row_mm,
        column_spacing_mm=column_mm,
        runs=host_runs,
    )
    native = run_on(
        "mask_decode", device,
        lambda: kernels().mask_decode_cpu(logits, int(image), out, threads=int(threads), **call),
        lambda: kernels().mask_decode_cuda_host(logits, int(image), out, **call),
    )

    run_count = int(native["run_count"])
    if host_runs is not None:
        host_runs = host_runs[: min(run_count, len(host_runs))]
    spacing = None if spacing_mm is None else (row_mm, column_mm)
    return MaskResult(
        out, _label_stats(native["labels"], names), host_runs, run_count if rle else 0,
        _pixel_area(spacing, native_geometry, out.shape),
    )


def _decode_mask_device(
    logits, geometry, *, input_size, activation, thresholds, labels, image, output_size, spacing_mm, rle,
    rle_capacity, device, stream, buffers: dict, on_device: list[str],
) -> DeviceMaskResult:
    """The zero-copy path of decode_mask: logits and every given buffer on the GPU."""
    on_host = [name for name in ("logits", *buffers) if name not in on_device and
               (name == "logits" or buffers[name] is not None)]
    if on_host:
        raise ValueError(
            f"{' and '.join(on_device)} {'is a CUDA array' if len(on_device) == 1 else 'are CUDA arrays'} but "
            f"{' and '.join(on_host)} {'is' if len(on_host) == 1 else 'are'} not: pass them all on the GPU (upload "
            "with radedge.cuda.DeviceArray.from_numpy(array, stream=stream)) or logits and out as numpy arrays"
        )
    if device != "cuda":
        raise ValueError(f"{' and '.join(on_device)} on the GPU: pass device='cuda' (got device={device!r})")
    if activation not in ("sigmoid", "softmax"):
        raise ValueError(f"activation must be 'sigmoid' or 'softmax'; got {activation!r}")
    native_geometry = input_geometry(geometry, input_size)
    threshold_list = _thresholds(activation, thresholds)
    row_mm, column_mm = _spacing(spacing_mm)
    shape = cuda._declared_shape(logits)
    names = _label_names(activation, shape, labels)

    out = buffers["out"]
    if out is None:
        mask_shape = _output_shape(native_geometry, output_size)
    else:
        declared = cuda._declared_shape(out)
        if output_size is not None and declared is not None and tuple(output_size) != declared:
            raise ValueError(
                f"output_size {tuple(output_size)} does not match out's shape {declared}; pass one of them"
            )
        mask_shape = declared
    runs = buffers["runs"]
    encode = rle or runs is not None
    capacity = _rle_capacity(rle_capacity) if encode and runs is None else None

    require_device("mask_decode", "cuda")
    stream = cuda.as_stream(stream)
    # A DLPack capsule can be consumed once: hold it as a view, which both the op and the result use.
    held = {
        name: cuda.as_device_array(array, stream) if type(array).__name__ == "PyCapsule" else array
        for name, array in (("logits", logits), *buffers.items())
    }
    logits = held["logits"]
    if shape is None:
        shape = tuple(logits.shape)
        names = _label_names(activation, shape, labels)
    if mask_shape is None:
        mask_shape = tuple(held["out"].shape)
    missing = [name for name in ("out", "runs", "tallies", "counters")
               if held[name] is None and (name != "runs" or encode)]
    if missing and stream is not None and stream.capturing:
        raise ValueError(
            f"{', '.join(missing)} would be allocated during a CUDA graph capture, which CUDA refuses: allocate "
            "them before the capture (see decode_mask's docstring for their shapes) and pass them"
        )
    label_count = (shape[1] if activation == "sigmoid" else shape[1] - 1) if len(shape) == 4 else 1
    with _cuda_errors():
        mask = held["out"] if held["out"] is not None else cuda.DeviceArray.empty(mask_shape, "uint8", stream=stream)
        if encode and held["runs"] is None:
            held["runs"] = cuda.DeviceArray.empty((capacity, 2), "uint32", stream=stream)
        tally_buffer = held["tallies"]
        if tally_buffer is None:
            tally_buffer = cuda.DeviceArray.empty((max(label_count, 1), 7), "uint64", stream=stream)
        counter_buffer = held["counters"]
        if counter_buffer is None:
            counter_buffer = cuda.DeviceArray.empty(2, "uint64", stream=stream)
        kernels().mask_decode_cuda(
            logits, int(image), mask, activation=activation, thresholds=threshold_list, geometry=native_geometry,
            row_spacing_mm=row_mm, column_spacing_mm=column_mm, runs=held["runs"], tallies=tally_buffer,
            counters=counter_buffer, workspace=held["workspace"], stream=stream,
        )
    for written in (mask, held["runs"], tally_buffer, counter_buffer):
        if written is not None:
            cuda.mark_written(written, stream)
    spacing = None if spacing_mm is None else (row_mm, column_mm)
    return DeviceMaskResult(
        mask=mask, runs=held["runs"], tallies=tally_buffer, counters=counter_buffer, stream=stream, names=names,
        geometry=native_geometry, spacing=spacing, encode=encode,
        pixel_area_mm2=_pixel_area(spacing, native_geometry, mask_shape),
        inputs=(logits, held["workspace"]),
    )


def decode_masks(
    logits: np.ndarray, geometries: Sequence, **options
) -> list[MaskResult]:
    """:func:`decode_mask` for every image of the batch: ``geometries`` holds one geometry
    per image (the images of a batch may come from sources of different sizes). ``options``
    are decode_mask's keywords other than ``image`` and ``out``."""
    if not isinstance(logits, np.ndarray) or logits.ndim != 4:
        raise ValueError(f"logits must be a [N, C, h, w] numpy array; got {getattr(logits, 'shape', type(logits))}")
    if "image" in options or "out" in options:
        raise ValueError("decode_masks decodes every image into new masks; use decode_mask for image= or out=")
    if len(geometries) != logits.shape[0]:
        raise ValueError(f"{logits.shape[0]} images in the batch but {len(geometries)} geometries; pass one per image")
    return [decode_mask(logits, geometry, image=n, **options) for n, geometry in enumerate(geometries)]


def decode_rle(runs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The uint8 mask of ``shape`` that ``runs`` (uint32 [K, 2] (value, length) pairs,
    row-major, as in :class:`MaskResult`) encodes. Raises ValueError when the runs do not
    cover the mask exactly or hold values above 255."""
    runs = np.asarray(runs)
    if runs.ndim != 2 or runs.shape[1] != 2 or not np.issubdtype(runs.dtype, np.integer):
        raise ValueError(f"runs must be integer [K, 2] (value, length) pairs; got {runs.dtype} {runs.shape}")
    height, width = (int(n) for n in shape)
    values, lengths = runs[:, 0].astype(np.int64), runs[:, 1].astype(np.int64)
    if (values < 0).any() or (values > 255).any():
        raise ValueError("run values must be mask labels, 0 to 255")
    if (lengths < 1).any():
        raise ValueError("every run must be at least 1 pixel long")
    if int(lengths.sum()) != height * width:
        raise ValueError(
            f"the runs cover {int(lengths.sum())} pixels but a {height} x {width} mask has {height * width}; "
            "an incomplete encoding (MaskResult.rle_complete False) cannot be decoded"
        )
    return np.repeat(values.astype(np.uint8), lengths).reshape(height, width)
