"""Heatmap peaks: landmark and keypoint heads -> points in source-image pixels.

A heatmap head (the ``vcf`` model's vertebral levels L1-L5, one channel each, and its
fracture points) outputs float16/float32 [N, C, h, w] over the whole model input. The
native op ``radedge._kernels.heatmap_peaks_cpu`` (or ``heatmap_peaks_cuda_host``, or
``heatmap_peaks_cuda`` on CUDA arrays) finds,
per channel, on the cells whose centres lie inside the image content (letterbox padding
is ignored):

- ``find_peaks``: local maxima. A cell is a peak when its value is >= every value in its
  (2 radius + 1)^2 window and > every value before it in raster order in that window (so a
  flat top gives one peak), and its score reaches ``threshold``; the best ``k`` by score
  are kept, ties by raster order.
- ``find_argmax``: the single best cell of each channel, no threshold (one landmark per
  channel, such as a vertebral level).

Each peak is refined to sub-cell precision by a quadratic fit per axis on its scores and
its two neighbours (exact for a quadratic peak; offset clamped to half a cell; none at
the content's edge or on a flat top), then mapped through the inverse of the preprocess
geometry into source pixels: continuous coordinates, where x = 10.5 is the centre of
source column 10.

Zero-copy on the GPU: given a CUDA heatmap array (radedge.cuda.DeviceArray, torch, CuPy,
pycuda, DLPack) and ``device="cuda"``, the op reads it in place and writes fixed-size CUDA
arrays (new DeviceArrays, or the caller's ``out``), enqueued on ``stream`` and not waited
for; with ``out`` and a ``workspace`` it allocates nothing, so it can be captured in a CUDA
graph. The device does not check the values: where numpy heatmaps holding NaN or infinity
are refused with ValueError, on the device a NaN cell is never a peak and never suppresses a
neighbour (a peak beside one is not refined along that axis), and infinities compare as the
numbers they are (an infinite cell can be a peak, scored infinity, or 1 after a sigmoid).
Check the engine's output upstream (``torch.isfinite``) where it may not be finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .. import cuda
from .._native import kernels
from . import _device
from ._device import Device, run_on
from ._geometry import input_geometries

Activation = Literal["none", "sigmoid"]


@dataclass(frozen=True)
class Peaks:
    """Fixed-size peaks of a batch of heatmaps.

    ``x``, ``y``: float32 [N, C, K], source-image pixels (continuous coordinates);
    ``score``: float32 [N, C, K], the heatmap value after the activation; ``valid``: int32
    [N, C], how many of the K entries of each channel are peaks. A channel's peaks come
    first, best first; entries past ``valid`` are NaN.

    numpy arrays from numpy heatmaps; CUDA arrays (new DeviceArrays or the caller's ``out``)
    from CUDA heatmaps, to be read once the stream has run the op (``to_numpy``).
    """

    x: Any
    y: Any
    score: Any
    valid: Any

    @property
    def on_device(self) -> bool:
        """True when the arrays are CUDA arrays (the zero-copy path)."""
        return _device.is_on_device(self.valid)

    def to_numpy(self, stream: Any = None) -> Peaks:
        """These peaks with numpy arrays (numpy peaks are returned as they are), copied on
        ``stream`` (None: the legacy default stream) and finished on return; radedge DeviceArrays
        are read after the stream that wrote them, other arrays should be written on ``stream``
        or synchronised first."""
        if not self.on_device:
            return self
        return Peaks(*(_device.to_host(a, stream) for a in (self.x, self.y, self.score, self.valid)))

    def points(self, image: int = 0, channel: int = 0) -> np.ndarray:
        """float32 [valid, 3]: (x, y, score) of each peak of one channel, best first (CUDA peaks are
        copied to the host first, as ``to_numpy()`` does)."""
        host = self.to_numpy()
        count = int(host.valid[image, channel])
        return np.stack(
            [host.x[image, channel, :count], host.y[image, channel, :count], host.score[image, channel, :count]],
            axis=1,
        )


def _run(
    heatmaps: Any,
    geometry: Any,
    input_size: Any,
    mode: str,
    k: int,
    threshold: Sequence[float],
    radius: int,
    activation: str,
    refine: bool,
    threads: int,
    device: str,
    out: Any = None,
    workspace: Any = None,
    stream: Any = None,
) -> Peaks:
    arguments = dict(
        mode=mode, k=int(k), threshold=[float(t) for t in threshold], radius=int(radius), activation=activation,
        refine=bool(refine),
    )
    if _device.runs_on_device(
        "heatmap_peaks", device, dict(heatmaps=heatmaps), dict(out=out, stream=stream, workspace=workspace)
    ):
        return _run_on_device(heatmaps, geometry, input_size, arguments, out, workspace, stream)
    if not isinstance(heatmaps, np.ndarray):
        raise TypeError(f"heatmaps must be a numpy array; got {type(heatmaps).__name__}")
    # The op takes one geometry per call: a batch of images with their own geometries is decoded image by image.
    batch = heatmaps.shape[0] if heatmaps.ndim else 0
    geometries = input_geometries(geometry, batch, input_size, one_for_all=True)
    if len(geometries) == 1:
        batches = [(heatmaps, geometries[0])]
    else:
        batches = [(heatmaps[n : n + 1], g) for n, g in enumerate(geometries)]
    parts = []
    for maps, g in batches:
        call = dict(arguments, geometry=g)
        parts.append(run_on(
            "heatmap_peaks", device,
            lambda: kernels().heatmap_peaks_cpu(maps, threads=int(threads), **call),
            lambda: kernels().heatmap_peaks_cuda_host(maps, **call),
        ))
    if len(parts) == 1:
        return Peaks(*parts[0])
    return Peaks(*(np.concatenate(arrays) for arrays in zip(*parts)))


def _run_on_device(heatmaps, geometry, input_size, arguments, out, workspace, stream) -> Peaks:
    stream = cuda.as_stream(stream)
    heatmaps = _device.as_device_input(heatmaps, stream)
    shape = _device.shape_of(heatmaps, "heatmaps")
    if len(shape) != 4:
        raise ValueError(f"heatmaps must be float32 or float16 [N, C, h, w]; got shape {shape}")
    k = arguments["k"]
    if not 1 <= k <= kernels().MAX_PEAKS:
        raise ValueError(f"k (peaks per channel) must be 1 to {kernels().MAX_PEAKS}; got {k}")
    geometries = input_geometries(geometry, shape[0], input_size, one_for_all=True)
    if out is None:
        given = (None,) * 4
    else:
        given = (out.x, out.y, out.score, out.valid) if isinstance(out, Peaks) else tuple(out)
        if len(given) != 4:
            raise ValueError(f"out must be a Peaks or (x, y, score, valid) CUDA arrays; got {len(given)} items")
    batch, channels = shape[:2]
    specs = (
        ("out.x", (batch, channels, k), "float32"),
        ("out.y", (batch, channels, k), "float32"),
        ("out.score", (batch, channels, k), "float32"),
        ("out.valid", (batch, channels), "int32"),
    )
    x, y, score, valid = (
        _device.output(g, name, array_shape, dtype, stream) for g, (name, array_shape, dtype) in zip(given, specs)
    )
    with _device.native_errors():
        kernels().heatmap_peaks_cuda(
            heatmaps, out_x=x, out_y=y, out_score=score, out_valid=valid, geometries=geometries, workspace=workspace,
            stream=stream, **arguments,
        )
    for array in (x, y, score, valid):
        cuda.mark_written(array, stream)
    return Peaks(x, y, score, valid)


def heatmap_peaks_cuda_workspace_bytes(heatmaps: Any, geometry: Any, *, input_size: Any = None) -> int:
    """Bytes of device workspace :func:`find_peaks` and :func:`find_argmax` need on CUDA heatmaps of
    ``heatmaps``' [N, C, h, w] shape (the array, or its shape) placed by ``geometry`` (one for the
    batch or one per image; ``input_size`` as for :func:`find_peaks`); pass a uint8 DeviceArray of
    that size as ``workspace``."""
    shape = tuple(int(n) for n in getattr(heatmaps, "shape", heatmaps))
    if len(shape) != 4:
        raise ValueError(f"heatmaps must be [N, C, h, w]; got shape {shape}")
    geometries = input_geometries(geometry, shape[0], input_size, one_for_all=True)
    with _device.native_errors():
        return kernels().heatmap_peaks_cuda_workspace_bytes(*shape, geometries=geometries)


def find_peaks(
    heatmaps: Any,
    geometry: Any,
    *,
    input_size: Any = None,
    threshold: float | Sequence[float],
    k: int,
    radius: int = 1,
    activation: Activation = "none",
    refine: bool = True,
    threads: int = 0,
    device: Device = "cpu",
    out: Peaks | Sequence[Any] | None = None,
    workspace: Any = None,
    stream: Any = None,
) -> Peaks:
    """Up to ``k`` peaks per channel of ``heatmaps``, in source-image pixels.

    ``heatmaps``: float32 or float16 [N, C, h, w], C-contiguous, finite, over the whole
    model input. ``geometry``: the ResizeGeometry the preprocess op returned (one for the
    batch, or a sequence of N). ``input_size``: the model input's (height, width), or its
    PreprocessSpec; None (the default) takes it from the geometry, which records it when the
    preprocess op made it; given as well, it must agree. ``threshold``: minimum score, one value
    or one per channel; with ``activation="sigmoid"`` a probability in [0, 1) compared exactly as
    ``logit >= log(t / (1 - t))``. ``k``: 1 to 1024 peaks kept per channel. ``radius``:
    the local-maximum window is 2 radius + 1 cells wide (1 to 32). ``refine``: sub-cell
    quadratic refinement. ``threads``: CPU threads (0: RADEDGE_NUM_THREADS or all cores);
    the result is the same for any count. ``device``: ``"cpu"``, or ``"cuda"`` (numpy
    heatmaps are copied to the GPU and back; for checking the CUDA kernels against the CPU
    ones).

    Zero-copy: with CUDA heatmaps and ``device="cuda"`` the op is enqueued on ``stream`` (a
    radedge.cuda.Stream, a torch / CuPy / pycuda stream, or None: the legacy default stream)
    and returns at once; the Peaks hold new radedge DeviceArrays, or ``out``'s (a Peaks, or
    (x, y, score, valid) CUDA arrays of the dtypes and shapes above), written in place.
    ``workspace``: a uint8 CUDA array of ``heatmap_peaks_cuda_workspace_bytes(...)`` bytes;
    with ``out`` too the call allocates nothing, for CUDA graph capture. The values are not
    checked on the device (see the module docstring: NaN cells are skipped, infinities
    compared); keep the heatmaps and the result alive until the stream has run the op.

    Raises ValueError for arrays or parameters the op cannot use (dtype, shape, layout,
    NaN or infinite values of numpy heatmaps, thresholds, k, radius, geometry, host arrays
    mixed with CUDA arrays) and NativeOpError when ``device`` is not available or the CUDA
    op fails.
    """
    return _run(
        heatmaps, geometry, input_size, "peaks", k, np.atleast_1d(threshold).tolist(), radius, activation, refine,
        threads, device, out, workspace, stream,
    )


def find_argmax(
    heatmaps: Any,
    geometry: Any,
    *,
    input_size: Any = None,
    activation: Activation = "none",
    refine: bool = True,
    threads: int = 0,
    device: Device = "cpu",
    out: Peaks | Sequence[Any] | None = None,
    workspace: Any = None,
    stream: Any = None,
) -> Peaks:
    """The best cell of each channel of ``heatmaps`` (K = 1, no threshold), in source pixels.

    For landmark heads with exactly one landmark per channel. Ties go to the first cell in
    raster order. ``valid`` is 1 for every channel unless no cell centre lies inside the
    image content (an image much narrower than one cell). Arguments, zero-copy path
    included, as ``find_peaks``; the result equals ``find_peaks`` with ``k=1`` and a
    threshold below every value.
    """
    return _run(
        heatmaps, geometry, input_size, "argmax", 1, [0.0], 1, activation, refine, threads, device, out, workspace,
        stream,
    )
