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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._native import kernels, require_device
from .errors import NativeOpError

Activation = Literal["sigmoid", "softmax"]
Device = Literal["cpu", "cuda"]

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


def _field(geometry, name: str, default: int) -> int:
    # Geometries without a crop (older ResizeGeometry) mean the whole source image.
    value = getattr(geometry, name, None)
    return int(default if value is None else value)


def geometry_arguments(geometry, input_size: tuple[int, int]) -> dict:
    """The native op's geometry keywords from a ``radedge.preprocess.ResizeGeometry`` (or
    any object with its fields) and the model input's (height, width)."""
    if len(input_size) != 2:
        raise ValueError(f"input_size must be the model input's (height, width); got {input_size!r}")
    rows, columns = int(geometry.source_rows), int(geometry.source_columns)
    return dict(
        source_rows=rows,
        source_columns=columns,
        crop_x=_field(geometry, "crop_x", 0),
        crop_y=_field(geometry, "crop_y", 0),
        crop_width=_field(geometry, "crop_width", columns),
        crop_height=_field(geometry, "crop_height", rows),
        offset_x=int(geometry.offset_x),
        offset_y=int(geometry.offset_y),
        content_width=int(geometry.content_width),
        content_height=int(geometry.content_height),
        input_height=int(input_size[0]),
        input_width=int(input_size[1]),
    )


def _thresholds(activation: str, thresholds) -> list[float]:
    if activation == "softmax":
        if thresholds is not None:
            raise ValueError("a softmax head takes the argmax and no thresholds; pass thresholds=None")
        return []
    if thresholds is None:
        return [0.5]
    return [float(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=np.float64))]


def decode_mask(
    logits: np.ndarray,
    geometry,
    *,
    input_size: tuple[int, int],
    activation: Activation,
    thresholds: float | Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    image: int = 0,
    output_size: tuple[int, int] | None = None,
    spacing_mm: tuple[float, float] | None = None,
    rle: bool = False,
    rle_capacity: int = DEFAULT_RUN_CAPACITY,
    out: np.ndarray | None = None,
    device: Device = "cpu",
    threads: int = 0,
) -> MaskResult:
    """Decode ``logits[image]`` into a label mask with statistics.

    ``logits``: float32 or float16 [N, C, h, w], C-contiguous, raw (before the activation).
    ``geometry``: the ``ResizeGeometry`` the preprocess op returned for this image.
    ``input_size``: the model input's (height, width) in pixels. ``activation``:
    ``"sigmoid"`` with ``thresholds`` (probabilities in [0, 1], one for every channel or one
    per channel; ``None``: 0.5) or ``"softmax"`` (argmax; ``thresholds`` must be ``None``).
    ``labels``: names of the labels (C for sigmoid, C - 1 for softmax; default "1", "2",
    ...). ``image``: which image of the batch to decode. ``output_size``: (height, width) of the mask, default the source's (rows,
    columns). ``spacing_mm``: the SOURCE's (row, column) pixel spacing in mm, for areas.
    ``rle``: also run-length encode the mask, keeping up to ``rle_capacity`` runs. ``out``:
    a uint8 [height, width] array to write the mask into (its shape is the output size).
    ``device``: ``"cpu"`` or ``"cuda"`` (copies to the GPU and back; for checking the CUDA
    kernels). ``threads``: CPU threads (0: RADEDGE_NUM_THREADS or all cores); the result is
    the same for any count.

    Raises ValueError for inputs that do not fit together (shapes, dtypes, layouts,
    thresholds, geometry, NaN or infinite logits) and NativeOpError when ``device`` is not
    available or the CUDA op fails.
    """
    if not isinstance(logits, np.ndarray):
        raise TypeError(f"logits must be a numpy array; got {type(logits).__name__}")
    require_device("mask_decode", device)
    if activation not in ("sigmoid", "softmax"):
        raise ValueError(f"activation must be 'sigmoid' or 'softmax'; got {activation!r}")
    arguments = geometry_arguments(geometry, input_size)
    threshold_list = _thresholds(activation, thresholds)

    if out is None:
        size = (arguments["source_rows"], arguments["source_columns"]) if output_size is None else output_size
        if len(size) != 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in size):
            raise ValueError(f"output_size must be (height, width) in whole pixels; got {output_size!r}")
        if min(size) < 1:
            raise ValueError(f"output_size must be at least 1 x 1; got {tuple(size)}")
        out = np.empty((int(size[0]), int(size[1])), dtype=np.uint8)
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array; got {type(out).__name__}")
    elif output_size is not None and tuple(output_size) != out.shape:
        raise ValueError(f"output_size {tuple(output_size)} does not match out's shape {out.shape}; pass one of them")

    channels = logits.shape[1] if logits.ndim == 4 else 0
    label_count = channels if activation == "sigmoid" else channels - 1
    if labels is None:
        names = tuple(str(value) for value in range(1, max(label_count, 0) + 1))
    else:
        names = tuple(str(name) for name in labels)
        if logits.ndim == 4 and len(names) != label_count:
            raise ValueError(
                f"a {activation} head with {channels} channels has {label_count} labels; got {len(names)} names {names}"
            )

    runs = None
    if rle:
        if isinstance(rle_capacity, bool) or not isinstance(rle_capacity, (int, np.integer)) or rle_capacity < 1:
            raise ValueError(f"rle_capacity must be a positive number of runs; got {rle_capacity!r}")
        runs = np.zeros((int(rle_capacity), 2), dtype=np.uint32)

    row_mm, column_mm = (0.0, 0.0) if spacing_mm is None else (float(spacing_mm[0]), float(spacing_mm[1]))
    if spacing_mm is not None and not (row_mm > 0 and column_mm > 0 and np.isfinite([row_mm, column_mm]).all()):
        raise ValueError(f"spacing_mm must be (row, column) in mm, both finite and > 0, or None; got {spacing_mm!r}")
    call = dict(
        activation=activation,
        thresholds=threshold_list,
        row_spacing_mm=row_mm,
        column_spacing_mm=column_mm,
        runs=runs,
        **arguments,
    )
    if device == "cpu":
        native = kernels().mask_decode_cpu(logits, int(image), out, threads=int(threads), **call)
    else:
        try:
            native = kernels().mask_decode_cuda_host(logits, int(image), out, **call)
        except RuntimeError as exc:
            raise NativeOpError(str(exc)) from exc

    stats = tuple(
        LabelStats(
            value=index + 1,
            label=names[index],
            pixel_count=int(entry["pixel_count"]),
            bbox=None if entry["bbox"] is None else tuple(int(v) for v in entry["bbox"]),
            centroid=None if entry["centroid"] is None else tuple(float(v) for v in entry["centroid"]),
            area_mm2=entry["area_mm2"],
        )
        for index, entry in enumerate(native["labels"])
    )
    run_count = int(native["run_count"])
    if runs is not None:
        runs = runs[: min(run_count, len(runs))]
    pixel_area = None
    if spacing_mm is not None:
        pixel_area = (row_mm * arguments["source_rows"] / out.shape[0]) * (
            column_mm * arguments["source_columns"] / out.shape[1]
        )
    return MaskResult(out, stats, runs, run_count if rle else 0, pixel_area)


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
