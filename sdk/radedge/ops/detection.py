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
  saw, ``[crop_x, crop_x + crop_width] x [crop_y, crop_y + crop_height]`` (the whole
  source image when there is no crop).
- CPU and CUDA give the same bits.

NaN scores, non-finite probabilities and non-finite candidate boxes are refused with a
ValueError: they mean the engine or its input is broken, and a detection made from them
would be noise.

Zero-copy on the GPU. Given CUDA arrays (radedge.cuda.DeviceArray, torch CUDA tensors, CuPy,
pycuda: anything with ``__cuda_array_interface__`` or DLPack on a CUDA device) and
``device="cuda"``, the three ops read the engine's outputs where they lie and write into
fixed-size CUDA arrays: new radedge DeviceArrays, or the caller's through ``out=``. They only
enqueue work on ``stream`` and return at once; with ``out`` and a ``workspace`` (sized by
``*_cuda_workspace_bytes``) they allocate nothing and wait for nothing, so the chain from
preprocess to detections can be captured in one ``radedge.cuda.Graph``. A queued stream cannot
raise, so refused values are marked in the results instead of raised: ``valid[n] = -1`` for
an image whose values are refused (``Detections.refused``), with all its slots zero, and
``count = -1`` for ``nms`` (``KeptBoxes.refused``). Read them after the stream has run the op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .. import cuda
from .._native import kernels
from . import _device
from ._device import Device, run_on
from ._geometry import geometry_table, input_geometries

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

    numpy arrays from the numpy path; CUDA arrays (radedge DeviceArrays, or the caller's
    ``out`` arrays) from the zero-copy path, where ``valid[n] = -1`` marks an image whose
    values the op refused (see ``refused``). Read CUDA results after the stream has run the op:
    ``refused``, ``per_image`` and ``to_numpy`` copy them to the host on the stream you pass.
    """

    boxes: Any
    scores: Any
    classes: Any
    valid: Any
    # What the device op reads while it runs (the uploaded geometry table): kept alive with the
    # results, which the caller keeps until the stream has run the op.
    _inputs: tuple = field(default=(), repr=False, compare=False)

    @property
    def batch(self) -> int:
        return int(self.valid.shape[0])

    @property
    def max_detections(self) -> int:
        return int(self.scores.shape[1])

    @property
    def on_device(self) -> bool:
        """True when the arrays are CUDA arrays (the zero-copy path)."""
        return _device.is_on_device(self.valid)

    @property
    def refused(self) -> np.ndarray:
        """bool [N]: the images the op refused, ``valid[n] == -1``: a NaN score or centerness, a
        non-finite probability or candidate box, or (on CUDA) an invalid geometry row.

        Only the CUDA zero-copy path reports refusals this way; the numpy path raises ValueError
        instead, so there it is all False. For CUDA results this copies ``valid`` to the host,
        finished on return: radedge DeviceArrays (the default outputs) are read after the stream
        that wrote them; a caller's ``out`` arrays only once that stream has been synchronised.
        """
        return _device.to_host(self.valid) < 0

    def to_numpy(self, stream: Any = None) -> Detections:
        """These detections with numpy arrays (numpy results are returned as they are), copied on
        ``stream`` (None: the legacy default stream) and finished on return; radedge DeviceArrays
        are read after the stream that wrote them, other arrays should be written on ``stream``
        or synchronised first."""
        if not self.on_device:
            return self
        return Detections(*(_device.to_host(a, stream) for a in (self.boxes, self.scores, self.classes, self.valid)))

    def per_image(self, stream: Any = None) -> list[ImageDetections]:
        """One :class:`ImageDetections` per image, holding only its valid slots (numpy views; CUDA
        results are first copied with ``to_numpy(stream)``). Raises ValueError when the op refused
        an image (``refused``)."""
        host = self.to_numpy(stream)
        refused = [n for n, count in enumerate(int(v) for v in host.valid) if count < 0]
        if refused:
            raise ValueError(
                f"image{'s' if len(refused) > 1 else ''} {', '.join(map(str, refused))} of the batch "
                f"{'were' if len(refused) > 1 else 'was'} refused on the GPU (valid = -1): a NaN score or "
                "centerness, a non-finite probability or candidate box, or an invalid geometry. The detector "
                "output is broken: check the engine and its input"
            )
        return [
            ImageDetections(host.boxes[n, :count], host.scores[n, :count], host.classes[n, :count])
            for n, count in enumerate(int(v) for v in host.valid)
        ]


@dataclass(frozen=True)
class KeptBoxes:
    """What :func:`nms` writes on CUDA arrays: ``keep`` int32 [max_detections], the kept box
    indices best first, -1 past the count; ``count`` int32 [1], how many were kept, or -1 when the
    op refused the input (a NaN score or a non-finite box; ``keep`` is then all -1)."""

    keep: Any
    count: Any

    @property
    def refused(self) -> bool:
        """Whether the op refused the input (``count == -1``). Copies ``count`` to the host as
        ``Detections.refused`` copies ``valid``."""
        return bool(_device.to_host(self.count)[0] < 0)

    def indices(self, stream: Any = None) -> np.ndarray:
        """int64 [kept]: the kept indices, best first, as the numpy path returns them; copied on
        ``stream`` as ``Detections.to_numpy`` copies. Raises ValueError when the op refused the
        input."""
        count = int(_device.to_host(self.count, stream)[0])
        if count < 0:
            raise ValueError(
                "nms (CUDA): a score is NaN or a box is not finite; scores may be any number but NaN and boxes "
                "must be finite"
            )
        return _device.to_host(self.keep, stream)[:count].astype(np.int64)


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


def _check_max_detections(max_detections: int) -> None:
    """The op's own check, made before the outputs it sizes are allocated on the device."""
    limit = kernels().MAX_NMS_CANDIDATES
    if not 1 <= max_detections <= limit:
        raise ValueError(f"max_detections must be 1 to {limit} per image; got {max_detections}")


def _device_geometries(geometry, batch: int, input_size, stream: cuda.Stream | None) -> tuple[Any, tuple]:
    """(the geometries argument of a CUDA op, the arrays to keep alive while it runs)."""
    if geometry is None:
        return None, ()
    if type(geometry).__name__ == "PyCapsule" or _device.is_on_device(geometry):
        return _device.as_device_input(geometry, stream), ()
    table = geometry_table(geometry, batch, input_size=input_size)
    if stream is not None and stream.capturing:
        raise ValueError(
            "geometry must be uploaded before a CUDA graph capture (a capture cannot copy from host memory): pass "
            "geometry=radedge.cuda.DeviceArray.from_numpy(geometry_table(geometry, batch)), made before the capture"
        )
    with _device.native_errors():
        uploaded = cuda.DeviceArray.from_numpy(table, stream=stream)
    return uploaded, (uploaded,)


def _detection_outputs(out, batch: int, max_detections: int, stream: cuda.Stream | None) -> tuple:
    """out_boxes, out_scores, out_classes, out_valid: the caller's (a Detections or a sequence of
    four CUDA arrays) or new DeviceArrays."""
    if out is None:
        given = (None,) * 4
    elif isinstance(out, Detections):
        given = (out.boxes, out.scores, out.classes, out.valid)
    else:
        given = tuple(out)
        if len(given) != 4:
            raise ValueError(
                f"out must be a Detections or (boxes, scores, classes, valid) CUDA arrays; got {len(given)} items"
            )
    specs = (
        ("out.boxes", (batch, max_detections, 4), "float32"),
        ("out.scores", (batch, max_detections), "float32"),
        ("out.classes", (batch, max_detections), "int32"),
        ("out.valid", (batch,), "int32"),
    )
    return tuple(_device.output(g, name, shape, dtype, stream) for g, (name, shape, dtype) in zip(given, specs))


def _detections_on_device(run, batch: int, geometry, input_size, max_detections: int, out, workspace,
                          stream) -> Detections:
    """Runs ``run(out_boxes=..., ..., geometries=..., workspace=..., stream=...)`` on CUDA arrays."""
    _check_max_detections(max_detections)
    geometries, uploaded = _device_geometries(geometry, batch, input_size, stream)
    outputs = _detection_outputs(out, batch, max_detections, stream)
    names = ("out_boxes", "out_scores", "out_classes", "out_valid")
    with _device.native_errors():
        run(**dict(zip(names, outputs)), geometries=geometries, workspace=workspace, stream=stream)
    for array in outputs:
        cuda.mark_written(array, stream)
    return Detections(*outputs, _inputs=uploaded)


def decode_dense(
    levels: Sequence[tuple[Any, ...]],
    strides: Sequence[float],
    geometry=None,
    *,
    input_size: Any = None,
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
    out: Detections | Sequence[Any] | None = None,
    workspace: Any = None,
    stream: Any = None,
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
    to keep model-input pixels, unclipped. ``input_size``: the model input's (height, width),
    or its PreprocessSpec, for geometries that do not record it (None: the geometry's; given as
    well, it must agree); the boxes do not depend on it, but the geometry is checked against it.

    ``score_threshold`` in [0, 1); ``iou_threshold`` in [0, 1]; ``pre_nms_top_k`` and
    ``max_detections`` 1 to 32768 per image. ``threads``: CPU threads (0: RADEDGE_NUM_THREADS
    or all cores), the result is the same for any count. ``device``: ``"cpu"`` or
    ``"cuda"`` (numpy arrays are copied to the GPU and back; for checking the CUDA kernels).

    Zero-copy: with CUDA arrays for every input (radedge.cuda.DeviceArray, torch, CuPy, pycuda,
    DLPack) and ``device="cuda"``, the op runs on the GPU where the arrays lie and returns at
    once, its work enqueued on ``stream`` (a radedge.cuda.Stream, a torch / CuPy / pycuda
    stream, or None: the legacy default stream). The result holds new radedge DeviceArrays, or
    ``out``'s arrays (a Detections, or (boxes, scores, classes, valid) CUDA arrays of the
    documented dtypes and shapes), written in place. ``geometry`` may then also be a uint8
    [N, 112] CUDA array uploaded from :func:`geometry_table`, which a CUDA graph capture needs
    (it cannot upload the geometry itself); a row that is not a valid geometry marks its image
    refused. ``workspace``: a uint8 CUDA array of
    ``*_cuda_workspace_bytes(...)`` bytes; None takes one from CUDA's stream-ordered pool. With
    ``out`` and a workspace the call allocates nothing and waits for nothing, so a CUDA graph
    can capture it. Refused values do not raise there: the image's
    ``valid`` is -1 (``Detections.refused``). Keep the inputs and the result alive until the
    stream has run the op. ``threads`` does not apply.

    Raises ValueError for shapes that do not agree, bad parameters, refused values (NaN
    scores, non-finite candidate boxes; numpy arrays only) and host arrays mixed with CUDA
    arrays, TypeError for non-arrays and NativeOpError when ``device`` is unavailable or the
    CUDA op fails.
    """
    levels = [tuple(level) for level in levels]
    for i, level in enumerate(levels):
        if len(level) not in (2, 3):
            raise ValueError(
                f"levels[{i}] must be (scores, distances) or (scores, distances, centerness); got {len(level)} items"
            )
    with_centerness = [len(level) == 3 and level[2] is not None for level in levels]
    if any(with_centerness) and not all(with_centerness):
        raise ValueError(
            "centerness must be given for every level or for none; levels "
            f"{[i for i, c in enumerate(with_centerness) if c]} have it"
        )
    per_level = 3 if levels and all(with_centerness) else 2
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
    )
    strides = [float(s) for s in strides]
    named = {f"levels[{i}][{j}]": a for i, level in enumerate(levels) for j, a in enumerate(level[:per_level])}
    if _device.runs_on_device("decode_dense", device, named, dict(out=out, stream=stream, workspace=workspace)):
        stream = cuda.as_stream(stream)
        arrays = [_device.as_device_input(a, stream) for a in named.values()]
        scores, distances = arrays[0::per_level], arrays[1::per_level]
        centerness = arrays[2::per_level] if per_level == 3 else None
        shape = _device.shape_of(scores[0], "levels[0][0]") if scores else ()
        return _detections_on_device(
            lambda **device_arguments: kernels().decode_dense_cuda(
                scores, distances, centerness, strides, **arguments, **device_arguments
            ),
            shape[0] if shape else 1, geometry, input_size, int(max_detections), out, workspace, stream,
        )
    for i, level in enumerate(levels):
        _require_arrays(**{f"levels[{i}][{j}]": a for j, a in enumerate(level) if a is not None})
    arrays = _common_dtype([a for level in levels for a in level if a is not None])
    scores = arrays[0::per_level]
    distances = arrays[1::per_level]
    centerness = arrays[2::per_level] if per_level == 3 else None
    batch = int(scores[0].shape[0]) if scores and scores[0].ndim == 4 else 1
    arguments["geometries"] = None if geometry is None else input_geometries(geometry, batch, input_size)
    result = run_on(
        "decode_dense",
        device,
        lambda: kernels().decode_dense_cpu(scores, distances, centerness, strides, threads=int(threads), **arguments),
        lambda: kernels().decode_dense_cuda_host(scores, distances, centerness, strides, **arguments),
    )
    return Detections(*result)


def decode_boxes(
    boxes: Any,
    scores: Any,
    geometry=None,
    *,
    input_size: Any = None,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    pre_nms_top_k: int = 1000,
    max_detections: int = 100,
    scores_are: ScoresAre = "probabilities",
    box_format: BoxFormat = "xyxy",
    class_agnostic: bool = False,
    threads: int = 0,
    device: Device = "cpu",
    out: Detections | Sequence[Any] | None = None,
    workspace: Any = None,
    stream: Any = None,
) -> Detections:
    """Boxes from a head that already decodes them, after threshold, top-k and NMS.

    ``boxes``: C-contiguous float32 or float16 [N, M, 4] in model-input pixels, ``"xyxy"``
    (x1 y1 x2 y2) or ``"cxcywh"`` (centre x, centre y, width, height). ``scores``: [N, M, K],
    probabilities, or logits with ``scores_are="logits"``; every (box, class) pair is a
    candidate. The other arguments, the zero-copy path and the errors are those of
    :func:`decode_dense`.
    """
    arguments = dict(
        score_threshold=float(score_threshold),
        iou_threshold=float(iou_threshold),
        pre_nms_top_k=int(pre_nms_top_k),
        max_detections=int(max_detections),
        class_agnostic=bool(class_agnostic),
        scores_are=scores_are,
        box_format=box_format,
    )
    if _device.runs_on_device(
        "decode_boxes", device, dict(boxes=boxes, scores=scores), dict(out=out, stream=stream, workspace=workspace)
    ):
        stream = cuda.as_stream(stream)
        boxes, scores = (_device.as_device_input(a, stream) for a in (boxes, scores))
        shape = _device.shape_of(boxes, "boxes")
        return _detections_on_device(
            lambda **device_arguments: kernels().decode_boxes_cuda(boxes, scores, **arguments, **device_arguments),
            shape[0] if shape else 1, geometry, input_size, int(max_detections), out, workspace, stream,
        )
    _require_arrays(boxes=boxes, scores=scores)
    boxes, scores = _common_dtype([boxes, scores])
    batch = int(boxes.shape[0]) if boxes.ndim == 3 else 1
    arguments["geometries"] = None if geometry is None else input_geometries(geometry, batch, input_size)
    result = run_on(
        "decode_boxes",
        device,
        lambda: kernels().decode_boxes_cpu(boxes, scores, threads=int(threads), **arguments),
        lambda: kernels().decode_boxes_cuda_host(boxes, scores, **arguments),
    )
    return Detections(*result)


def nms(
    boxes: Any,
    scores: Any,
    classes: Any = None,
    iou_threshold: float = 0.5,
    max_detections: int | None = None,
    *,
    threads: int = 0,
    device: Device = "cpu",
    out: KeptBoxes | Sequence[Any] | None = None,
    workspace: Any = None,
    stream: Any = None,
) -> np.ndarray | KeptBoxes:
    """Greedy non-maximum suppression of one image's boxes; returns the kept indices.

    ``boxes``: C-contiguous float32 [M, 4], x1 y1 x2 y2 (any pixel frame); ``scores``:
    float32 [M], any numbers but NaN; ``classes``: int32 [M] for class-aware NMS (boxes of
    different classes never suppress each other), or None for class-agnostic NMS.
    ``max_detections``: stop after this many kept boxes (None: no limit). At most 32768 boxes.

    Returns int64 [kept] indices into ``boxes``, best first (score descending, ties to the
    lower index). Unlike OpenCV's ``cv2.dnn.NMSBoxes``, two zero-area boxes never suppress
    each other (OpenCV counts their overlap as 1), and there is no score threshold.

    Zero-copy: with CUDA arrays and ``device="cuda"`` the op is enqueued on ``stream`` (as for
    :func:`decode_dense`) and returns a :class:`KeptBoxes` at once: ``keep`` int32
    [max_detections] (-1 past the count) and ``count`` int32 [1], new DeviceArrays or ``out``'s
    (a KeptBoxes or a (keep, count) pair of CUDA arrays). A NaN score or a non-finite box
    does not raise there: ``count`` is -1 (``KeptBoxes.refused``); ``KeptBoxes.indices()``
    gives what the numpy path returns. ``workspace``: a uint8 CUDA array of
    ``nms_cuda_workspace_bytes(M, max_detections)`` bytes; with ``out`` too the call allocates
    nothing, so a CUDA graph can capture it.
    """
    arrays = dict(boxes=boxes, scores=scores, classes=classes)
    if _device.runs_on_device("nms", device, arrays, dict(out=out, stream=stream, workspace=workspace)):
        stream = cuda.as_stream(stream)
        boxes, scores = (_device.as_device_input(a, stream) for a in (boxes, scores))
        classes = None if classes is None else _device.as_device_input(classes, stream)
        shape = _device.shape_of(boxes, "boxes")
        limit = max(1, shape[0] if shape else 0) if max_detections is None else int(max_detections)
        _check_max_detections(limit)
        if out is None:
            given = (None, None)
        else:
            given = (out.keep, out.count) if isinstance(out, KeptBoxes) else tuple(out)
            if len(given) != 2:
                raise ValueError(f"out must be a KeptBoxes or (keep, count) CUDA arrays; got {len(given)} items")
        keep = _device.output(given[0], "out.keep", (limit,), "int32", stream)
        count = _device.output(given[1], "out.count", (1,), "int32", stream)
        with _device.native_errors():
            kernels().nms_cuda(
                boxes, scores, classes, out_keep=keep, out_count=count, iou_threshold=float(iou_threshold),
                max_detections=limit, workspace=workspace, stream=stream,
            )
        cuda.mark_written(keep, stream)
        cuda.mark_written(count, stream)
        return KeptBoxes(keep, count)
    _require_arrays(boxes=boxes, scores=scores, **({} if classes is None else {"classes": classes}))
    count = int(boxes.shape[0]) if boxes.ndim >= 1 else 0
    limit = max(1, count) if max_detections is None else int(max_detections)
    keep = run_on(
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


def decode_dense_cuda_workspace_bytes(
    levels: Sequence[tuple[Any, ...]], *, pre_nms_top_k: int = 1000, max_detections: int = 100
) -> int:
    """Bytes of device workspace :func:`decode_dense` needs on CUDA arrays for ``levels`` and these
    limits, on the current CUDA device; pass a uint8 DeviceArray of that size as ``workspace``.
    ``levels``: the tuples ``decode_dense`` takes, of which only each level's scores are read, for
    their [N, K, h, w] shape (a shape tuple in their place does as well)."""
    shapes = [_shape_of_rank(tuple(level)[0], f"levels[{i}][0]", 4) for i, level in enumerate(levels)]
    if not shapes:
        raise ValueError("levels must hold one (scores, distances[, centerness]) tuple per level; got none")
    with _device.native_errors():
        return kernels().decode_dense_cuda_workspace_bytes(
            shapes[0][0], shapes[0][1], [(h, w) for _, _, h, w in shapes], pre_nms_top_k=int(pre_nms_top_k),
            max_detections=int(max_detections),
        )


def decode_boxes_cuda_workspace_bytes(scores: Any, *, pre_nms_top_k: int = 1000, max_detections: int = 100) -> int:
    """Bytes of device workspace :func:`decode_boxes` needs on CUDA arrays for ``scores`` [N, M, K]
    (the array, or its shape) and these limits, on the current CUDA device."""
    shape = _shape_of_rank(scores, "scores", 3)
    with _device.native_errors():
        return kernels().decode_boxes_cuda_workspace_bytes(
            *shape, pre_nms_top_k=int(pre_nms_top_k), max_detections=int(max_detections)
        )


def nms_cuda_workspace_bytes(count: int, max_detections: int) -> int:
    """Bytes of device workspace :func:`nms` needs on CUDA arrays for ``count`` boxes and
    ``max_detections``, on the current CUDA device."""
    with _device.native_errors():
        return kernels().nms_cuda_workspace_bytes(int(count), int(max_detections))


def _shape_of_rank(array_or_shape: Any, name: str, rank: int) -> tuple[int, ...]:
    shape = tuple(int(n) for n in getattr(array_or_shape, "shape", array_or_shape))
    if len(shape) != rank:
        raise ValueError(f"{name} must have {rank} dimensions; got shape {shape}")
    return shape
