"""Detection post-processing: detector outputs of fixed shape -> boxes in source-image pixels.

The engine's outputs have static shapes; everything that depends on the data (threshold,
top-k, NMS, how many boxes survive) happens in radedge's native ops, whose results also
have fixed shapes, so the whole chain can run inside one CUDA graph. Two decoders and a
plain NMS:

- :func:`decode_dense` for anchor-free dense heads (FCOS, CenterNet style): per level,
  class logits ``[N, K, h, w]``, distances ``[N, 4, h, w]`` (left, top, right, bottom from
  the cell centre) and optionally a centerness logit ``[N, 1, h, w]``. Cell ``(x, y)`` of a
  level with stride ``s`` has its centre at ``((x + cell_offset) * s, (y + cell_offset) * s)``
  in model-input pixels (``cell_offset`` 0.5; 0 for heads trained on corner grids).
- :func:`decode_boxes` for heads that already give boxes ``[N, M, 4]`` and scores
  ``[N, M, K]``.
- :func:`nms` for one image's boxes.

Rules shared by all three (radedge/detection.h states them for the native code):

- A logit ``x`` scores ``sigmoid(x)``, rounded to float32; with centerness the score is
  ``sqrt(cls * ctr)`` (``centerness_mode="sqrt"``, FCOS) or ``cls * ctr`` (``"product"``).
  A candidate is a (box, class) pair with score ``> score_threshold``.
- Order: score descending; equal scores go to the lower flat index (dense: level in the
  order given, then class, then row, then column; decoded boxes: ``box * K + class``;
  ``nms``: the box index). Each image's first ``pre_nms_top_k`` candidates go to NMS.
- NMS is greedy in that order and per class (any class with ``class_agnostic``): a box
  is dropped when an earlier kept box overlaps it with IoU ``> iou_threshold`` (strictly:
  equal does not suppress). IoU uses continuous coordinates (width ``x2 - x1``, no +1);
  zero-area boxes have IoU 0 with everything. NMS runs in model-input pixels; at most
  ``max_detections`` boxes are kept.
- Kept boxes are mapped to the source image through the preprocessing geometry,
  ``x_src = (x_in - offset_x) / scale_x + crop_x``, and clipped to the region the model
  saw, ``[crop_x, crop_x + source_columns] x [crop_y, crop_y + source_rows]`` (the whole
  source image when there is no crop).
- CPU and CUDA give the same bits.

NaN scores, non-finite probabilities and non-finite candidate boxes are refused with a
ValueError: they mean the engine or its input is broken, and a detection made from them
would be noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._native import kernels, require_device
from .errors import NativeOpError

Device = Literal["cpu", "cuda"]
ScoresAre = Literal["logits", "probabilities"]
CenternessMode = Literal["sqrt", "product"]
DistanceUnits = Literal["stride", "pixels"]
BoxFormat = Literal["xyxy", "cxcywh"]


@dataclass(frozen=True)
class ImageDetections:
    """The detections of one image, best first.

    ``boxes`` float32 [D, 4] (x1 y1 x2 y2, source-image pixels, or model-input pixels when
    decoded without a geometry); ``scores`` float32 [D]; ``classes`` int32 [D] (class index
    into the head's labels).
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass(frozen=True)
class Detections:
    """Fixed-size detections of a batch, as the native ops write them.

    ``boxes`` float32 [N, max_detections, 4] (x1 y1 x2 y2); ``scores`` float32
    [N, max_detections]; ``classes`` int32 [N, max_detections]; ``valid`` int32 [N]: image
    n's detections are the first ``valid[n]`` slots, best first; the other slots are zero.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    valid: np.ndarray

    @property
    def batch(self) -> int:
        return int(self.valid.shape[0])

    @property
    def max_detections(self) -> int:
        return int(self.scores.shape[1])

    def per_image(self) -> list[ImageDetections]:
        """One :class:`ImageDetections` per image, holding only its valid slots (views, no copy)."""
        return [
            ImageDetections(self.boxes[n, :count], self.scores[n, :count], self.classes[n, :count])
            for n, count in enumerate(int(v) for v in self.valid)
        ]


def source_mapping(geometry) -> dict:
    """The native ops' mapping dict for one image from a preprocessing ``ResizeGeometry``.

    Reads ``offset_x``, ``offset_y``, ``scale_x``, ``scale_y`` and the source region that was
    resized: ``crop_x``, ``crop_y``, ``crop_width``, ``crop_height`` when the geometry has them,
    else the whole ``source_columns`` x ``source_rows`` image. Boxes are clipped to that region.
    """
    crop_x, crop_y = getattr(geometry, "crop_x", 0), getattr(geometry, "crop_y", 0)
    return {
        "offset_x": float(geometry.offset_x),
        "offset_y": float(geometry.offset_y),
        "scale_x": float(geometry.scale_x),
        "scale_y": float(geometry.scale_y),
        # The native mapping's "source" is the region the model saw, placed at crop_x, crop_y.
        "source_columns": float(getattr(geometry, "crop_width", None) or geometry.source_columns - crop_x),
        "source_rows": float(getattr(geometry, "crop_height", None) or geometry.source_rows - crop_y),
        "crop_x": float(crop_x),
        "crop_y": float(crop_y),
    }


def _mappings(geometry, batch: int) -> list[dict] | None:
    """None, one geometry for every image, or a sequence of one geometry per image."""
    if geometry is None:
        return None
    if isinstance(geometry, Sequence):
        if len(geometry) != batch:
            raise ValueError(
                f"geometry must be one ResizeGeometry for the whole batch or one per image ({batch}); "
                f"got a sequence of {len(geometry)}"
            )
        return [source_mapping(g) for g in geometry]
    return [source_mapping(geometry)] * batch


def _require_arrays(**arrays) -> None:
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array; got {type(array).__name__}")


def _common_dtype(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The arrays unchanged when they share float32 or float16; else all cast to float32
    (exact for float16), so that a head mixing the two still decodes."""
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) == 1 or not dtypes <= {np.dtype(np.float32), np.dtype(np.float16)}:
        return arrays
    return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]


def _run(op: str, device: Device, call_cpu, call_cuda):
    require_device(op, device)
    if device == "cpu":
        return call_cpu()
    try:
        return call_cuda()
    except RuntimeError as exc:
        raise NativeOpError(str(exc)) from exc


def decode_dense(
    levels: Sequence[tuple[np.ndarray, ...]],
    strides: Sequence[float],
    geometry=None,
    *,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    pre_nms_top_k: int = 1000,
    max_detections: int = 100,
    scores_are: ScoresAre = "logits",
    centerness_mode: CenternessMode = "sqrt",
    distance_units: DistanceUnits = "stride",
    cell_offset: float = 0.5,
    class_agnostic: bool = False,
    threads: int = 0,
    device: Device = "cpu",
) -> Detections:
    """Boxes from a dense anchor-free head, after threshold, top-k and NMS.

    ``levels``: one ``(scores, distances)`` or ``(scores, distances, centerness)`` tuple per
    level (centerness on every level or none), C-contiguous float32 or float16:
    ``scores`` [N, K, h, w] (logits, or probabilities with ``scores_are="probabilities"``,
    which then also applies to centerness), ``distances`` [N, 4, h, w] (left, top, right,
    bottom from the cell centre, in multiples of the stride, or model-input pixels with
    ``distance_units="pixels"``), ``centerness`` [N, 1, h, w]. ``strides``: model-input
    pixels per cell of each level. ``geometry``: the preprocessing ``ResizeGeometry`` (one
    for every image, or a sequence of one per image) to map boxes to source pixels, or None
    to keep model-input pixels, unclipped.

    ``score_threshold`` in [0, 1); ``iou_threshold`` in [0, 1]; ``pre_nms_top_k`` and
    ``max_detections`` 1 to 32768 per image. ``threads``: CPU threads (0: RADEDGE_NUM_THREADS
    or all cores), the result is the same for any count. ``device``: ``"cpu"`` or
    ``"cuda"`` (copies to the GPU and back; for checking the CUDA kernels).

    Raises ValueError for shapes that do not agree, bad parameters and refused values
    (NaN scores, non-finite candidate boxes), TypeError for non-arrays and NativeOpError
    when ``device`` is unavailable or the CUDA op fails.
    """
    levels = [tuple(level) for level in levels]
    for i, level in enumerate(levels):
        if len(level) not in (2, 3):
            raise ValueError(
                f"levels[{i}] must be (scores, distances) or (scores, distances, centerness); got {len(level)} items"
            )
        _require_arrays(**{f"levels[{i}][{j}]": a for j, a in enumerate(level) if a is not None})
    with_centerness = [len(level) == 3 and level[2] is not None for level in levels]
    if any(with_centerness) and not all(with_centerness):
        raise ValueError(
            "centerness must be given for every level or for none; levels "
            f"{[i for i, c in enumerate(with_centerness) if c]} have it"
        )
    arrays = _common_dtype([a for level in levels for a in level if a is not None])
    per_level = 3 if levels and all(with_centerness) else 2
    scores = arrays[0::per_level]
    distances = arrays[1::per_level]
    centerness = arrays[2::per_level] if per_level == 3 else None
    batch = int(scores[0].shape[0]) if scores and scores[0].ndim == 4 else 1
    arguments = dict(
        score_threshold=float(score_threshold),
        iou_threshold=float(iou_threshold),
        pre_nms_top_k=int(pre_nms_top_k),
        max_detections=int(max_detections),
        class_agnostic=bool(class_agnostic),
        scores_are=scores_are,
        centerness_mode=centerness_mode,
        distance_units=distance_units,
        cell_offset=float(cell_offset),
        mappings=_mappings(geometry, batch),
    )
    strides = [float(s) for s in strides]
    result = _run(
        "decode_dense",
        device,
        lambda: kernels().decode_dense_cpu(scores, distances, centerness, strides, threads=int(threads), **arguments),
        lambda: kernels().decode_dense_cuda_host(scores, distances, centerness, strides, **arguments),
    )
    return Detections(*result)


def decode_boxes(
    boxes: np.ndarray,
    scores: np.ndarray,
    geometry=None,
    *,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    pre_nms_top_k: int = 1000,
    max_detections: int = 100,
    scores_are: ScoresAre = "probabilities",
    box_format: BoxFormat = "xyxy",
    class_agnostic: bool = False,
    threads: int = 0,
    device: Device = "cpu",
) -> Detections:
    """Boxes from a head that already decodes them, after threshold, top-k and NMS.

    ``boxes``: C-contiguous float32 or float16 [N, M, 4] in model-input pixels, ``"xyxy"``
    (x1 y1 x2 y2) or ``"cxcywh"`` (centre x, centre y, width, height). ``scores``: [N, M, K],
    probabilities, or logits with ``scores_are="logits"``; every (box, class) pair is a
    candidate. The other arguments and the errors are those of :func:`decode_dense`.
    """
    _require_arrays(boxes=boxes, scores=scores)
    boxes, scores = _common_dtype([boxes, scores])
    batch = int(boxes.shape[0]) if boxes.ndim == 3 else 1
    arguments = dict(
        score_threshold=float(score_threshold),
        iou_threshold=float(iou_threshold),
        pre_nms_top_k=int(pre_nms_top_k),
        max_detections=int(max_detections),
        class_agnostic=bool(class_agnostic),
        scores_are=scores_are,
        box_format=box_format,
        mappings=_mappings(geometry, batch),
    )
    result = _run(
        "decode_boxes",
        device,
        lambda: kernels().decode_boxes_cpu(boxes, scores, threads=int(threads), **arguments),
        lambda: kernels().decode_boxes_cuda_host(boxes, scores, **arguments),
    )
    return Detections(*result)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray | None = None,
    iou_threshold: float = 0.5,
    max_detections: int | None = None,
    *,
    threads: int = 0,
    device: Device = "cpu",
) -> np.ndarray:
    """Greedy non-maximum suppression of one image's boxes; returns the kept indices.

    ``boxes``: C-contiguous float32 [M, 4], x1 y1 x2 y2 (any pixel frame); ``scores``:
    float32 [M], any numbers but NaN; ``classes``: int32 [M] for class-aware NMS (boxes of
    different classes never suppress each other), or None for class-agnostic NMS.
    ``max_detections``: stop after this many kept boxes (None: no limit). At most 32768 boxes.

    Returns int64 [kept] indices into ``boxes``, best first (score descending, ties to the
    lower index). Unlike OpenCV's ``cv2.dnn.NMSBoxes``, two zero-area boxes never suppress
    each other (OpenCV counts their overlap as 1), and there is no score threshold.
    """
    _require_arrays(boxes=boxes, scores=scores, **({} if classes is None else {"classes": classes}))
    count = int(boxes.shape[0]) if boxes.ndim >= 1 else 0
    limit = max(1, count) if max_detections is None else int(max_detections)
    keep = _run(
        "nms",
        device,
        lambda: kernels().nms_cpu(
            boxes, scores, classes, iou_threshold=float(iou_threshold), max_detections=limit, threads=int(threads)
        ),
        lambda: kernels().nms_cuda_host(
            boxes, scores, classes, iou_threshold=float(iou_threshold), max_detections=limit
        ),
    )
    return keep.astype(np.int64)
