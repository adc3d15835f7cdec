"""Heatmap peaks: landmark and keypoint heads -> points in source-image pixels.

A heatmap head (the ``vcf`` model's vertebral levels L1-L5, one channel each, and its
fracture points) outputs float16/float32 [N, C, h, w] over the whole model input. The
native op ``radedge._kernels.heatmap_peaks_cpu`` (or ``heatmap_peaks_cuda_host``) finds,
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
placement into source pixels: continuous coordinates, where x = 10.5 is the centre of
source column 10.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._head_grid import placement
from ._native import kernels, require_device
from .errors import NativeOpError

Activation = Literal["none", "sigmoid"]
Device = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class Peaks:
    """Fixed-size peaks of a batch of heatmaps.

    ``x``, ``y``: float32 [N, C, K], source-image pixels (continuous coordinates);
    ``score``: float32 [N, C, K], the heatmap value after the activation; ``valid``: int32
    [N, C], how many of the K entries of each channel are peaks. A channel's peaks come
    first, best first; entries past ``valid`` are NaN.
    """

    x: np.ndarray
    y: np.ndarray
    score: np.ndarray
    valid: np.ndarray

    def points(self, image: int = 0, channel: int = 0) -> np.ndarray:
        """float32 [valid, 3]: (x, y, score) of each peak of one channel, best first."""
        count = int(self.valid[image, channel])
        return np.stack(
            [self.x[image, channel, :count], self.y[image, channel, :count], self.score[image, channel, :count]],
            axis=1,
        )


def _run(
    heatmaps: np.ndarray,
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
) -> Peaks:
    if not isinstance(heatmaps, np.ndarray):
        raise TypeError(f"heatmaps must be a numpy array; got {type(heatmaps).__name__}")
    require_device("heatmap_peaks", device)
    # One geometry for the batch, or one per image (the op takes one per call).
    if isinstance(geometry, Sequence) and not isinstance(geometry, (str, bytes)):
        geometries = list(geometry)
        if heatmaps.ndim < 1 or len(geometries) != heatmaps.shape[0]:
            raise ValueError(
                f"geometry is a sequence of {len(geometries)}; it must hold one geometry per image of the "
                f"batch ({heatmaps.shape[0] if heatmaps.ndim else 0}), or be one geometry for all"
            )
        batches = [(heatmaps[n : n + 1], g) for n, g in enumerate(geometries)]
    else:
        batches = [(heatmaps, geometry)]
    arguments = dict(
        mode=mode, k=int(k), threshold=[float(t) for t in threshold], radius=int(radius), activation=activation,
        refine=bool(refine),
    )
    parts = []
    for maps, g in batches:
        call = dict(arguments, placement=placement(g, input_size))
        if device == "cpu":
            parts.append(kernels().heatmap_peaks_cpu(maps, threads=int(threads), **call))
        else:
            try:
                parts.append(kernels().heatmap_peaks_cuda_host(maps, **call))
            except RuntimeError as exc:
                raise NativeOpError(str(exc)) from exc
    if len(parts) == 1:
        return Peaks(*parts[0])
    return Peaks(*(np.concatenate(arrays) for arrays in zip(*parts)))


def find_peaks(
    heatmaps: np.ndarray,
    geometry: Any,
    *,
    input_size: Any,
    threshold: float | Sequence[float],
    k: int,
    radius: int = 1,
    activation: Activation = "none",
    refine: bool = True,
    threads: int = 0,
    device: Device = "cpu",
) -> Peaks:
    """Up to ``k`` peaks per channel of ``heatmaps``, in source-image pixels.

    ``heatmaps``: float32 or float16 [N, C, h, w], C-contiguous, finite, over the whole
    model input. ``geometry``: the ResizeGeometry the preprocess op returned (one for the
    batch, or a sequence of N). ``input_size``: the model input's (height, width), or its
    PreprocessSpec. ``threshold``: minimum score, one value or one per channel; with
    ``activation="sigmoid"`` a probability in [0, 1) compared exactly as
    ``logit >= log(t / (1 - t))``. ``k``: 1 to 1024 peaks kept per channel. ``radius``:
    the local-maximum window is 2 radius + 1 cells wide (1 to 32). ``refine``: sub-cell
    quadratic refinement. ``threads``: CPU threads (0: RADEDGE_NUM_THREADS or all cores);
    the result is the same for any count. ``device``: ``"cpu"``, or ``"cuda"`` (copies to
    the GPU and back; for checking the CUDA kernels against the CPU ones).

    Raises ValueError for arrays or parameters the op cannot use (dtype, shape, layout,
    NaN or infinite values, thresholds, k, radius, geometry) and NativeOpError when
    ``device`` is not available or the CUDA op fails.
    """
    return _run(
        heatmaps, geometry, input_size, "peaks", k, np.atleast_1d(threshold).tolist(), radius, activation, refine,
        threads, device,
    )


def find_argmax(
    heatmaps: np.ndarray,
    geometry: Any,
    *,
    input_size: Any,
    activation: Activation = "none",
    refine: bool = True,
    threads: int = 0,
    device: Device = "cpu",
) -> Peaks:
    """The best cell of each channel of ``heatmaps`` (K = 1, no threshold), in source pixels.

    For landmark heads with exactly one landmark per channel. Ties go to the first cell in
    raster order. ``valid`` is 1 for every channel unless no cell centre lies inside the
    image content (an image much narrower than one cell). Arguments as ``find_peaks``; the
    result equals ``find_peaks`` with ``k=1`` and a threshold below every value.
    """
    return _run(heatmaps, geometry, input_size, "argmax", 1, [0.0], 1, activation, refine, threads, device)
