"""Zero-copy post-processing on CUDA arrays: box decode + NMS, heatmap peaks and the CAM overlay.

Without a GPU: every binding (``decode_dense_cuda``, ``decode_boxes_cuda``, ``nms_cuda``,
``heatmap_peaks_cuda``, ``cam_overlay_cuda``) checks its arguments from their metadata alone and
refuses what it cannot use with a ValueError before any CUDA call; accepted metadata reaches the
first CUDA call. The fake arrays (tests/helpers.py's ``FakeCudaArray``) point into the first
page of the address space, which Linux never maps: here each at an address of its own there, so
that the check for outputs overlapping other arguments does not refuse them, and nothing reads
them (the bindings judge the metadata; on a GPU, CUDA only reports the addresses as host memory).
The Python wrappers' routing between the numpy and the CUDA path, and the result types' host-side
behaviour (refusal marks, copies back), run here too.

With a GPU (needs_cuda): the zero-copy ops give what the CPU ops give (bit for bit where the op
guarantees it), write the caller's outputs in place, work on torch tensors and a torch stream,
mark refused values instead of raising, and replay inside a CUDA graph like eager calls.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from radedge import cuda
from radedge._native import kernels
from radedge.ops.cam_overlay import cam_overlay_cuda_workspace_bytes, overlay_cam
from radedge.ops.detection import (
    Detections,
    KeptBoxes,
    decode_boxes,
    decode_boxes_cuda_workspace_bytes,
    decode_dense,
    decode_dense_cuda_workspace_bytes,
    geometry_table,
    nms,
    nms_cuda_workspace_bytes,
)
from radedge.errors import NativeOpError
from radedge.ops.heatmap_peaks import Peaks, find_argmax, find_peaks, heatmap_peaks_cuda_workspace_bytes
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

from ..helpers import (
    NOWHERE,
    READ_ONLY,
    FakeCudaArray,
    FakeDLPack,
    geometry_of,
    needs_torch_cuda,
    without_gpu,
)
from .test_cam_overlay import _smooth_cam
from .test_detection import _clustered_boxes, _fcos_head, _level, _random_boxes, _random_geometry
from .test_heatmap_peaks import _blobs

# The fake DLPack tensors live at NOWHERE; the fake arrays here keep clear of it.
_FIRST_PAGE_END = 0x1000
_DLPACK_FAKES = (NOWHERE, NOWHERE + 0x100)


class _Page:
    """Hands out distinct addresses in the never-mapped first page (see the module docstring)."""

    def __init__(self):
        self.next = 0x100

    def take(self, nbytes: int, alignment: int) -> int:
        address = -(-self.next // alignment) * alignment
        if address < _DLPACK_FAKES[1] and address + nbytes > _DLPACK_FAKES[0]:
            address = -(-_DLPACK_FAKES[1] // alignment) * alignment
        self.next = address + max(nbytes, 1)
        assert self.next <= _FIRST_PAGE_END, "the fake arrays must fit in the first page"
        return address


def _fakes(page: _Page):
    """``make(shape, typestr="<f4", strides=None, readonly=False, alignment=16, offset=0)``: a fake
    CUDA array at an address of its own (``offset`` bytes past an aligned one)."""

    def make(shape, typestr="<f4", strides=None, readonly=False, alignment=16, offset=0):
        itemsize = np.dtype(typestr).itemsize
        if strides is None:
            nbytes = itemsize * int(np.prod(shape))
        else:
            nbytes = itemsize + sum(abs(s) * (n - 1) for s, n in zip(strides, shape))
        return FakeCudaArray(page.take(nbytes + offset, alignment) + offset, shape, typestr, strides, readonly)

    return make


def _call(op, base, overrides):
    """Calls ``kernels().<op>`` with ``base(make)``'s arguments, each override replacing one: a value,
    or a function of (make, the base arguments) that returns it. Fake DLPack tensors stay referenced
    while their capsules are read."""
    make = _fakes(_Page())
    arguments = base(make)
    keep = []

    def capsule(value):
        if isinstance(value, FakeDLPack):
            keep.append(value)
            return value.capsule
        return value

    for name, value in overrides.items():
        value = value(make, arguments) if callable(value) else value
        arguments[name] = [capsule(v) for v in value] if isinstance(value, list) else capsule(value)
    return getattr(kernels(), op)(**arguments)


# --- base arguments every refusal test varies ---------------------------------------------------


def _dense_base(make):
    return dict(
        scores=[make((1, 2, 2, 3))], distances=[make((1, 4, 2, 3))], centerness=None, strides=[8.0],
        out_boxes=make((1, 2, 4)), out_scores=make((1, 2)), out_classes=make((1, 2), "<i4"),
        out_valid=make((1,), "<i4"), score_threshold=0.05, iou_threshold=0.5, pre_nms_top_k=10, max_detections=2,
    )


def _boxes_base(make):
    return dict(
        boxes=make((1, 3, 4)), scores=make((1, 3, 2)), out_boxes=make((1, 2, 4)), out_scores=make((1, 2)),
        out_classes=make((1, 2), "<i4"), out_valid=make((1,), "<i4"), score_threshold=0.05, iou_threshold=0.5,
        pre_nms_top_k=10, max_detections=2,
    )


def _nms_base(make):
    return dict(
        boxes=make((3, 4)), scores=make((3,)), classes=make((3,), "<i4"), out_keep=make((2,), "<i4"),
        out_count=make((1,), "<i4"), iou_threshold=0.5, max_detections=2,
    )


# A 12 x 9 source letterboxed into a 12 x 12 input: content 12 x 9 at offset_x 1, scale 1.
GEOMETRY = geometry_of(12, 9, 12, 12, "letterbox")


def _peaks_base(make):
    return dict(
        heatmaps=make((2, 2, 3, 3)), out_x=make((2, 2, 2)), out_y=make((2, 2, 2)), out_score=make((2, 2, 2)),
        out_valid=make((2, 2), "<i4"), geometries=[GEOMETRY], mode="peaks", k=2, threshold=[0.5], radius=1,
        activation="none", refine=True,
    )


def _cam_base(make):
    return dict(
        cam=make((3, 3)), display=make((4, 5), "|u1"), out=make((4, 5, 3), "|u1"), geometry=GEOMETRY,
        colormap="turbo", alpha=0.4, floor=0.0, normalise="minmax",
    )


def _new(shape, typestr="<f4", **fields):
    """An override: a new fake array (``fields`` as ``make`` takes them)."""
    return lambda make, base: make(shape, typestr, **fields)


def _at(name, shape, typestr="<f4", offset=0):
    """An override: a fake array at the address of the base argument ``name`` (its first array for a
    list of levels) plus ``offset``."""

    def make_at(make, base):
        target = base[name][0] if isinstance(base[name], list) else base[name]
        return FakeCudaArray(target.address + offset, shape, typestr)

    return make_at


def _host(shape, dtype=np.float32):
    """An override: a numpy array."""
    return lambda make, base: np.zeros(shape, dtype)


def _host_capsule(shape, dtype=np.float32):
    """An override: a DLPack capsule of a numpy array."""
    return lambda make, base: np.zeros(shape, dtype).__dlpack__()


def _cpu_dlpack(shape):
    """An override: a DLPack capsule of a float32 tensor in CPU memory."""
    return lambda make, base: FakeDLPack(shape=shape, code=2, bits=32, device_type=1)


def _levels(*overrides):
    """An override: a list of arrays, one per level, each from an override."""
    return lambda make, base: [override(make, base) for override in overrides]


# --- the bindings refuse from metadata, before CUDA --------------------------------------------

DENSE_REFUSALS = {
    "scores float64": (
        dict(scores=_levels(_new((1, 2, 2, 3), "<f8"))),
        r"^scores\[0\] must be C-contiguous float32 or float16 \[N, K, h, w\] class scores; got float64",
    ),
    "scores 3-d": (dict(scores=_levels(_new((2, 2, 3)))), r"^scores\[0\] must be C-contiguous float32"),
    "scores strided": (
        dict(scores=_levels(_new((1, 2, 2, 3), strides=(96, 48, 24, 8)))),
        r"^scores\[0\] must be C-contiguous \(elements in row-major order",
    ),
    "scores from numpy": (
        dict(scores=_levels(_host((1, 2, 2, 3)))),
        r"^scores\[0\] must be a CUDA device array; got a numpy.ndarray in host \(CPU\) memory: .*from_numpy",
    ),
    "scores from a numpy DLPack capsule": (
        dict(scores=_levels(_host_capsule((1, 2, 2, 3)))),
        r"^scores\[0\] must be a CUDA device array; got .*host \(CPU\) memory",
    ),
    "distances from a CPU DLPack tensor": (
        dict(distances=_levels(_cpu_dlpack((1, 4, 2, 3)))),
        r"^distances\[0\] must be a CUDA device array; got .*host \(CPU\) memory",
    ),
    "distances float16 with float32 scores": (
        dict(distances=_levels(_new((1, 4, 2, 3), "<f2"))),
        r"^distances\[0\] is float16 .* but scores\[0\] is float32; .*same dtype",
    ),
    "distances of another level size": (
        dict(distances=_levels(_new((1, 4, 2, 2)))),
        r"^distances\[0\] must have shape \(1, 4, 2, 3\)",
    ),
    "one stride for two levels": (
        dict(scores=_levels(_new((1, 2, 2, 3)), _new((1, 2, 1, 2))),
             distances=_levels(_new((1, 4, 2, 3)), _new((1, 4, 1, 2)))),
        r"one entry per level; got 2 scores, 2 distances, 1 strides",
    ),
    "centerness of another size": (
        dict(centerness=_levels(_new((1, 1, 3, 3)))),
        r"^centerness\[0\] must have shape \(1, 1, 2, 3\)",
    ),
    "out_boxes too small for max_detections": (
        dict(out_boxes=_new((1, 1, 4))),
        r"^out_boxes must have shape \(1, 2, 4\) \(N images x max_detections",
    ),
    "out_scores larger than max_detections": (dict(out_scores=_new((1, 3))), r"^out_scores must have shape \(1, 2\)"),
    "out_valid for another batch": (dict(out_valid=_new((2,), "<i4")), r"^out_valid must have shape \(1,\)"),
    "out_classes int64": (
        dict(out_classes=_new((1, 2), "<i8")),
        r"^out_classes must be a C-contiguous int32 \[N, max_detections\] array; got int64",
    ),
    "out_boxes float16": (dict(out_boxes=_new((1, 2, 4), "<f2")), r"^out_boxes must be a C-contiguous float32"),
    "out_valid read-only": (
        dict(out_valid=_new((1,), "<i4", readonly=True)),
        r"^out_valid is read-only .* pass a writable array",
    ),
    "out_boxes from a read-only DLPack 1.x tensor": (
        dict(out_boxes=lambda make, base: FakeDLPack(shape=(1, 2, 4), code=2, bits=32, versioned=True,
                                                      flags=READ_ONLY)),
        r"^out_boxes is read-only",
    ),
    "out_boxes strided": (dict(out_boxes=_new((1, 2, 4), strides=(64, 32, 8))), r"^out_boxes must be C-contiguous"),
    "out_scores misaligned": (
        dict(out_scores=_new((1, 2), offset=2)),
        r"^out_scores starts at address 0x[0-9a-f]+, which is not a multiple of the 4 bytes",
    ),
    "out_boxes over the scores": (dict(out_boxes=_at("scores", (1, 2, 4))), r"^out_boxes overlaps scores\[0\]"),
    "out_valid inside out_classes": (
        dict(out_valid=_at("out_classes", (1,), "<i4", offset=4)),
        r"^out_classes overlaps out_valid in device memory",
    ),
    "geometries float64": (
        dict(geometries=_new((1, 14), "<f8")),
        r"^geometries must be a C-contiguous uint8 \[N, 112\] geometry table \(radedge.ops.detection.geometry_table\)",
    ),
    "geometries for two images": (
        dict(geometries=_new((2, 112), "|u1")),
        r"^geometries must have shape \(1, 112\) \(one InputGeometry per image",
    ),
    "geometries of a row too short": (
        dict(geometries=_new((1, 104), "|u1")), r"^geometries must have shape \(1, 112\)"
    ),
    "geometries off an 8-byte boundary": (
        dict(geometries=_new((1, 112), "|u1", offset=4)),
        r"^geometries starts at address 0x[0-9a-f]+, which is not a multiple of the 8 bytes",
    ),
    "workspace float32": (dict(workspace=_new((64,))), r"^workspace must be a uint8 \[bytes\]"),
    "workspace off a 256-byte boundary": (
        dict(workspace=_new((64,), "|u1", alignment=256, offset=16)),
        r"^workspace starts at .* not a multiple of the 256 bytes",
    ),
    "score_threshold 1": (dict(score_threshold=1.0), r"score_threshold must be in \[0, 1\)"),
    "max_detections 0": (dict(max_detections=0), r"max_detections must be 1 to 32768 per image; got 0"),
    "unknown centerness_mode": (dict(centerness_mode="mean"), r"centerness_mode must be 'sqrt'"),
    "stride 0": (dict(strides=[0.0]), r"stride of level 0 must be a finite number of pixels > 0"),
    "stream of another kind": (dict(stream="default"), r"stream must be None .* or a radedge.cuda.Stream"),
}


@pytest.mark.parametrize("overrides, message", DENSE_REFUSALS.values(), ids=DENSE_REFUSALS.keys())
def test_decode_dense_cuda_refuses_from_metadata_before_cuda(overrides, message):
    with pytest.raises(ValueError, match=message):
        _call("decode_dense_cuda", _dense_base, overrides)


BOXES_REFUSALS = {
    "boxes of five coordinates": (
        dict(boxes=_new((1, 3, 5))),
        r"^boxes must have shape \(1, 3, 4\) \(four coordinates per box\)",
    ),
    "scores for other boxes": (dict(scores=_new((1, 4, 2))), r"^scores must have shape \(1, 3, 2\)"),
    "boxes int32": (
        dict(boxes=_new((1, 3, 4), "<i4")),
        r"^boxes must be C-contiguous float32 or float16 \[N, M, 4\] boxes; got int32",
    ),
    "boxes float16, scores float32": (dict(boxes=_new((1, 3, 4), "<f2")), r"same dtype"),
    "out_classes too small": (dict(out_classes=_new((1, 1), "<i4")), r"^out_classes must have shape \(1, 2\)"),
    "out_scores over out_boxes": (
        dict(out_scores=_at("out_boxes", (1, 2), offset=8)),
        r"^out_boxes overlaps out_scores",
    ),
    "scores from a numpy DLPack capsule": (
        dict(scores=_host_capsule((1, 3, 2))),
        r"^scores must be a CUDA device array; got .*host \(CPU\) memory",
    ),
    "box_format xywh": (dict(box_format="xywh"), r"box_format must be 'xyxy'"),
    "scores_are sigmoid": (dict(scores_are="sigmoid"), r"scores_are must be 'logits'"),
}


@pytest.mark.parametrize("overrides, message", BOXES_REFUSALS.values(), ids=BOXES_REFUSALS.keys())
def test_decode_boxes_cuda_refuses_from_metadata_before_cuda(overrides, message):
    with pytest.raises(ValueError, match=message):
        _call("decode_boxes_cuda", _boxes_base, overrides)


NMS_REFUSALS = {
    "boxes [M, 5]": (dict(boxes=_new((3, 5))), r"^boxes must have shape \(3, 4\)"),
    "boxes float16": (
        dict(boxes=_new((3, 4), "<f2")),
        r"^boxes must be C-contiguous float32 \[M, 4\] boxes \(x1 y1 x2 y2\); got float16",
    ),
    "scores of another count": (dict(scores=_new((4,))), r"^scores must have shape \(3,\)"),
    "classes int64": (dict(classes=_new((3,), "<i8")), r"^classes must be C-contiguous int32"),
    "out_keep shorter than max_detections": (dict(out_keep=_new((1,), "<i4")), r"^out_keep must have shape \(2,\)"),
    "out_count of two": (dict(out_count=_new((2,), "<i4")), r"^out_count must have shape \(1,\)"),
    "out_keep read-only": (dict(out_keep=_new((2,), "<i4", readonly=True)), r"^out_keep is read-only"),
    "out_count inside out_keep": (
        dict(out_count=_at("out_keep", (1,), "<i4", offset=4)),
        r"^out_keep overlaps out_count",
    ),
    "out_keep float32": (dict(out_keep=_new((2,))), r"^out_keep must be a C-contiguous int32"),
    "boxes from a CPU DLPack tensor": (
        dict(boxes=_cpu_dlpack((3, 4))),
        r"^boxes must be a CUDA device array; got .*host \(CPU\) memory",
    ),
    "max_detections 0": (dict(max_detections=0), r"nms: max_detections must be 1 to 32768; got 0"),
    "iou_threshold NaN": (dict(iou_threshold=float("nan")), r"iou_threshold must be in \[0, 1\]"),
}


@pytest.mark.parametrize("overrides, message", NMS_REFUSALS.values(), ids=NMS_REFUSALS.keys())
def test_nms_cuda_refuses_from_metadata_before_cuda(overrides, message):
    with pytest.raises(ValueError, match=message):
        _call("nms_cuda", _nms_base, overrides)


PEAKS_REFUSALS = {
    "heatmaps float64": (
        dict(heatmaps=_new((2, 2, 3, 3), "<f8")),
        r"^heatmaps must be C-contiguous float32 or float16 \[N, C, h, w\] heatmaps; got float64",
    ),
    "heatmaps 3-d": (dict(heatmaps=_new((2, 3, 3))), r"^heatmaps must be C-contiguous float32"),
    "out_x for another k": (dict(out_x=_new((2, 2, 3))), r"^out_x must have shape \(2, 2, 2\) \(N x C x k"),
    "out_score for one image": (dict(out_score=_new((1, 2, 2))), r"^out_score must have shape \(2, 2, 2\)"),
    "out_valid float32": (
        dict(out_valid=_new((2, 2))),
        r"^out_valid must be a C-contiguous int32 \[N, C\] array; got float32",
    ),
    "out_y read-only": (dict(out_y=_new((2, 2, 2), readonly=True)), r"^out_y is read-only"),
    "out_y over out_x": (dict(out_y=_at("out_x", (2, 2, 2), offset=16)), r"^out_x overlaps out_y"),
    "out_valid over the heatmaps": (dict(out_valid=_at("heatmaps", (2, 2), "<i4")), r"^out_valid overlaps heatmaps"),
    "heatmaps from numpy": (dict(heatmaps=_host((2, 2, 3, 3))), r"^heatmaps must be a CUDA device array"),
    "three geometries for two images": (
        dict(geometries=[GEOMETRY] * 3),
        r"geometries must hold one geometry for the whole batch or one per image \(2\); got 3",
    ),
    "a geometry outside the input": (dict(geometries=[dict(GEOMETRY, offset_x=5)]), r"content rectangle"),
    "the second image's geometry outside the input": (
        dict(geometries=[GEOMETRY, dict(GEOMETRY, offset_y=3)]),
        r"content rectangle",
    ),
    "a geometry that is not one": (dict(geometries=[dict(GEOMETRY, crop_X=0)]), r"geometries\[0\] has an unknown key"),
    "k 0": (dict(k=0), r"k \(peaks per channel\) must be 1 to 1024; got 0"),
    "argmax with k 2": (dict(mode="argmax"), r"argmax mode finds one peak per channel, so k must be 1"),
    "three thresholds for two channels": (dict(threshold=[0.1, 0.2, 0.3]), r"threshold needs 1 value"),
    "workspace int8": (dict(workspace=_new((64,), "|i1")), r"^workspace must be a uint8"),
}


@pytest.mark.parametrize("overrides, message", PEAKS_REFUSALS.values(), ids=PEAKS_REFUSALS.keys())
def test_heatmap_peaks_cuda_refuses_from_metadata_before_cuda(overrides, message):
    with pytest.raises(ValueError, match=message):
        _call("heatmap_peaks_cuda", _peaks_base, overrides)


CAM_REFUSALS = {
    "cam 3-d": (dict(cam=_new((1, 3, 3))), r"^cam must be a C-contiguous float32 or float16 \[h, w\] map"),
    "cam float64": (dict(cam=_new((3, 3), "<f8")), r"^cam must be a C-contiguous float32"),
    "display uint16": (
        dict(display=_new((4, 5), "<u2")),
        r"^display must be a C-contiguous grey uint8 \[H, W\] image; got uint16",
    ),
    "display with padded rows": (dict(display=_new((4, 5), "|u1", strides=(8, 1))), r"^display must be C-contiguous"),
    "out with four channels": (
        dict(out=_new((4, 5, 4), "|u1")),
        r"^out must have shape \(4, 5, 3\) \(RGB for every display pixel\)",
    ),
    "out for another display": (dict(out=_new((5, 4, 3), "|u1")), r"^out must have shape \(4, 5, 3\)"),
    "out read-only": (dict(out=_new((4, 5, 3), "|u1", readonly=True)), r"^out is read-only"),
    "out over the display": (dict(out=_at("display", (4, 5, 3), "|u1")), r"out overlaps the display"),
    "out over the cam": (dict(out=_at("cam", (4, 5, 3), "|u1", offset=-32)), r"^out overlaps cam"),
    "out from numpy": (dict(out=_host((4, 5, 3), np.uint8)), r"^out must be a CUDA device array"),
    "alpha 2": (dict(alpha=2.0), r"alpha must be in \[0, 1\]"),
    "colormap of 255 entries": (
        dict(colormap=np.zeros((255, 3), np.uint8)),
        r"colormap table must be uint8 \[256, 3\]",
    ),
    "a fixed range with low = high": (dict(normalise="fixed", low=1.0, high=1.0), r"finite low < high"),
    "workspace off a 256-byte boundary": (
        dict(workspace=_new((64,), "|u1", alignment=256, offset=64)),
        r"^workspace starts at .* not a multiple of the 256 bytes",
    ),
}


@pytest.mark.parametrize("overrides, message", CAM_REFUSALS.values(), ids=CAM_REFUSALS.keys())
def test_cam_overlay_cuda_refuses_from_metadata_before_cuda(overrides, message):
    with pytest.raises(ValueError, match=message):
        _call("cam_overlay_cuda", _cam_base, overrides)


@pytest.mark.needs_torch
def test_torch_cpu_tensors_are_refused_as_host_arrays():
    import torch

    with pytest.raises(ValueError, match=r"^boxes must be a CUDA device array; got a torch\.Tensor in host \(CPU\)"):
        _call("nms_cuda", _nms_base, dict(boxes=torch.zeros(3, 4)))
    with pytest.raises(ValueError, match=r"^out_keep must be a CUDA device array; got a torch\.Tensor in host"):
        _call("nms_cuda", _nms_base, dict(out_keep=torch.zeros(2, dtype=torch.int32)))


ACCEPTED = {
    "decode_dense": ("decode_dense_cuda", _dense_base, dict(
        centerness=_levels(_new((1, 1, 2, 3))), geometries=_new((1, 112), "|u1", alignment=8),
        workspace=_new((64,), "|u1", alignment=256))),
    "decode_boxes": ("decode_boxes_cuda", _boxes_base, dict(geometries=_new((1, 112), "|u1", alignment=8))),
    "nms": ("nms_cuda", _nms_base, dict()),
    "nms of no boxes": ("nms_cuda", _nms_base, dict(boxes=lambda make, base: FakeCudaArray(0, (0, 4), "<f4"),
                                                    scores=lambda make, base: FakeCudaArray(0, (0,), "<f4"),
                                                    classes=None)),
    "heatmap_peaks": ("heatmap_peaks_cuda", _peaks_base, dict(geometries=[GEOMETRY, dict(GEOMETRY, offset_x=3)])),
    "cam_overlay": ("cam_overlay_cuda", _cam_base, dict(normalise="fixed", low=-1.0, high=2.0)),
}


@pytest.mark.parametrize("op, base, overrides", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_metadata_reaches_the_device(op, base, overrides):
    """Without a GPU the first CUDA call refuses; with one, CUDA reports the fake addresses as host
    memory, which is refused."""
    name = op.removesuffix("_cuda")
    if cuda.is_available():
        with pytest.raises(ValueError, match="points to host memory"):
            _call(op, base, overrides)
    else:
        with pytest.raises(kernels().CudaError, match=rf"^{name} \(CUDA\): no usable CUDA device"):
            _call(op, base, overrides)


# --- the Python wrappers route numpy and CUDA arrays -------------------------------------------


def _device_fakes(*shapes_and_types):
    make = _fakes(_Page())
    return [make(*spec) for spec in shapes_and_types]


def test_wrappers_refuse_host_arrays_mixed_with_cuda_arrays():
    (scores,) = _device_fakes(((1, 3, 2),))
    with pytest.raises(ValueError, match=r"^scores is a CUDA array but boxes is not: .*from_numpy"):
        decode_boxes(np.zeros((1, 3, 4), np.float32), scores, device="cuda")
    (distances,) = _device_fakes(((1, 4, 2, 3),))
    with pytest.raises(ValueError, match=r"^levels\[0\]\[1\] is a CUDA array but levels\[0\]\[0\] is not"):
        decode_dense([(np.zeros((1, 2, 2, 3), np.float32), distances)], [8], device="cuda")
    boxes, classes = _device_fakes(((3, 4),), ((3,), "<i4"))
    with pytest.raises(ValueError, match=r"^boxes and classes are CUDA arrays but scores is not"):
        nms(boxes, np.zeros(3, np.float32), classes, device="cuda")
    cam, display = _device_fakes(((3, 3),), ((4, 5), "|u1"))
    with pytest.raises(ValueError, match=r"^cam and display are CUDA arrays but out is not"):
        overlay_cam(cam, display, GEOMETRY, input_size=(12, 12), out=np.zeros((4, 5, 3), np.uint8), device="cuda")


def test_wrappers_ask_for_device_cuda_with_cuda_arrays():
    boxes, scores = _device_fakes(((1, 3, 4),), ((1, 3, 2),))
    with pytest.raises(ValueError, match=r"boxes and scores are CUDA arrays; pass device='cuda' \(got device='cpu'\)"):
        decode_boxes(boxes, scores)
    (heatmaps,) = _device_fakes(((1, 2, 3, 3),))
    with pytest.raises(ValueError, match=r"pass device='cuda'"):
        find_argmax(heatmaps, GEOMETRY, input_size=(12, 12))


def test_wrappers_refuse_device_arguments_with_numpy_arrays():
    boxes, scores = np.zeros((3, 4), np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"^out applies to CUDA arrays; with numpy arrays nms runs on the host arrays"):
        nms(boxes, scores, out=(np.zeros(3, np.int32), np.zeros(1, np.int32)))
    with pytest.raises(ValueError, match=r"^stream and workspace apply to CUDA arrays"):
        decode_boxes(boxes[None], scores[None, :, None], workspace=np.zeros(64, np.uint8), stream=7)
    with pytest.raises(ValueError, match=r"^stream applies to CUDA arrays"):
        find_peaks(np.zeros((1, 1, 3, 3), np.float32), GEOMETRY, input_size=(12, 12), threshold=0.5, k=1, stream=7)
    with pytest.raises(ValueError, match=r"^workspace applies to CUDA arrays"):
        overlay_cam(np.zeros((3, 3), np.float32), np.zeros((4, 5), np.uint8), GEOMETRY, input_size=(12, 12),
                    workspace=np.zeros(64, np.uint8))


def test_a_host_workspace_is_refused_with_cuda_arrays():
    boxes, scores = _device_fakes(((3, 4),), ((3,),))
    with pytest.raises(ValueError, match=r"^workspace must be a CUDA array .*nms_cuda_workspace_bytes"):
        nms(boxes, scores, device="cuda", workspace=np.zeros(1024, np.uint8))


WRAPPER_ENTRY_POINTS = {
    "decode_dense": lambda f: decode_dense([(f((1, 2, 2, 3)), f((1, 4, 2, 3)))], [8], device="cuda"),
    "decode_boxes": lambda f: decode_boxes(f((1, 3, 4)), f((1, 3, 2)), device="cuda"),
    "nms": lambda f: nms(f((3, 4)), f((3,)), device="cuda"),
    "find_peaks": lambda f: find_peaks(f((1, 1, 3, 3)), GEOMETRY, input_size=(12, 12), threshold=0.5, k=1,
                                       device="cuda"),
    "overlay_cam": lambda f: overlay_cam(f((3, 3)), f((4, 5), "|u1"), GEOMETRY, input_size=(12, 12), device="cuda"),
}


@without_gpu
@pytest.mark.parametrize("entry_point", WRAPPER_ENTRY_POINTS.values(), ids=WRAPPER_ENTRY_POINTS.keys())
def test_wrappers_on_cuda_arrays_say_why_cuda_is_unusable(entry_point):
    with pytest.raises(NativeOpError, match=r"cannot run on 'cuda': .*Available devices: cpu"):
        entry_point(_fakes(_Page()))


# --- the result types on the host --------------------------------------------------------------


def test_detections_mark_refused_images_and_refuse_to_split_them():
    boxes = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    scores = np.array([[0.9, 0.8, 0.0], [0.0, 0.0, 0.0]], np.float32)
    detections = Detections(boxes, scores, np.zeros((2, 3), np.int32), np.array([2, -1], np.int32))
    assert not detections.on_device
    np.testing.assert_array_equal(detections.refused, [False, True])
    assert detections.to_numpy() is detections
    with pytest.raises(ValueError, match=r"^image 1 of the batch was refused on the GPU \(valid = -1\)"):
        detections.per_image()
    kept = dataclasses.replace(detections, valid=np.array([2, 0], np.int32)).per_image()
    assert [len(image) for image in kept] == [2, 0]
    np.testing.assert_array_equal(kept[0].boxes, boxes[0, :2])


def test_cpu_results_are_never_marked_refused():
    levels = _fcos_head(np.random.default_rng(4), batch=2, classes=3, size=128)
    result = decode_dense(levels, [8, 16, 32])
    assert result.refused.tolist() == [False, False] and result.valid.min() > 0


def test_kept_boxes_give_the_numpy_indices_or_refuse():
    kept = KeptBoxes(np.array([4, 0, 7, -1], np.int32), np.array([3], np.int32))
    assert not kept.refused
    indices = kept.indices()
    assert indices.dtype == np.int64 and indices.tolist() == [4, 0, 7]
    refused = KeptBoxes(np.full(4, -1, np.int32), np.array([-1], np.int32))
    assert refused.refused
    with pytest.raises(ValueError, match="a score is NaN or a box is not finite"):
        refused.indices()


def _geometry_rows(table: np.ndarray) -> np.ndarray:
    """A uint8 [N, 112] geometry table read as N records of its fields (radedge/geometry.h's layout)."""
    fields = np.dtype([(name, np.dtype(dtype)) for name, dtype in kernels().GEOMETRY_FIELDS])
    return table.view(fields).reshape(len(table))


def test_geometry_table_rows_are_the_device_layout():
    rng = np.random.default_rng(12)
    geometries = [_random_geometry(rng) for _ in range(3)]
    table = geometry_table(geometries, 3)
    assert table.dtype == np.uint8 and table.shape == (3, 112) and table.flags.c_contiguous
    assert [name for name, _ in kernels().GEOMETRY_FIELDS] == [
        "source_rows", "source_columns", "crop_x", "crop_y", "crop_width", "crop_height", "content_height",
        "content_width", "offset_y", "offset_x", "scale_y", "scale_x", "input_height", "input_width",
    ]
    for row, geometry in zip(_geometry_rows(table), geometries):
        assert {name: row[name].item() for name in row.dtype.names} == geometry
    one = geometry_table(geometries[1], 2)
    np.testing.assert_array_equal(one, np.stack([table[1], table[1]]))


def test_geometry_table_checks_what_the_device_would_mark_refused():
    good = _random_geometry(np.random.default_rng(13))
    with pytest.raises(ValueError, match="geometry_table: the geometry of image 0: scale_x and scale_y must be finite"):
        geometry_table(dict(good, scale_x=0.0), 1)
    with pytest.raises(ValueError, match=r"sequence of one per image \(3\); got a sequence of 2"):
        geometry_table([good, good], 3)
    with pytest.raises(ValueError, match="geometry is None"):
        geometry_table(None, 1)


def test_heatmap_peaks_workspace_is_the_largest_that_one_call_needs():
    if not kernels().build_info()["cuda"]:
        with pytest.raises(NativeOpError, match="built without CUDA"):
            heatmap_peaks_cuda_workspace_bytes((2, 3, 64, 64), GEOMETRY)
        return
    spec = PreprocessSpec(256, 256)
    wide, tall = resize_geometry(100, 400, spec), resize_geometry(400, 300, spec)
    shape = (2, 3, 64, 64)
    single = [heatmap_peaks_cuda_workspace_bytes((1, 3, 64, 64), g, input_size=(256, 256)) for g in (wide, tall)]
    assert single[0] < single[1], "the taller content covers more cells, each with a candidate slot"
    assert heatmap_peaks_cuda_workspace_bytes(shape, [wide, tall], input_size=(256, 256)) == max(single)
    assert heatmap_peaks_cuda_workspace_bytes(shape, tall, input_size=(256, 256)) > max(single)
    with pytest.raises(ValueError, match=r"sequence of one per image \(2\); got a sequence of 3"):
        heatmap_peaks_cuda_workspace_bytes(shape, [wide, tall, wide], input_size=(256, 256))


def test_cam_overlay_workspace_grows_with_the_display():
    if not kernels().build_info()["cuda"]:
        with pytest.raises(NativeOpError, match="built without CUDA"):
            cam_overlay_cuda_workspace_bytes((100, 200))
        return
    small = cam_overlay_cuda_workspace_bytes((100, 200))
    assert small == cam_overlay_cuda_workspace_bytes(np.zeros((100, 200), np.uint8))
    assert cam_overlay_cuda_workspace_bytes((1000, 2000)) > small > 0
    with pytest.raises(ValueError, match=r"display must be \[H, W\]"):
        cam_overlay_cuda_workspace_bytes((100, 200, 3))


@without_gpu
def test_detection_workspace_sizes_need_the_device_they_are_for():
    for size in (
        lambda: decode_dense_cuda_workspace_bytes([((1, 2, 8, 8),)]),
        lambda: decode_boxes_cuda_workspace_bytes((1, 100, 3)),
        lambda: nms_cuda_workspace_bytes(100, 10),
    ):
        with pytest.raises(NativeOpError, match=r"\(CUDA\): .*(no usable CUDA device|built without CUDA)"):
            size()
    with pytest.raises(ValueError, match="max_detections must be 1 to 32768"):
        decode_boxes_cuda_workspace_bytes((1, 100, 3), max_detections=0)


# --- on a GPU ------------------------------------------------------------------------------------


def _same(got: Detections, expected: Detections) -> None:
    for field in ("boxes", "scores", "classes", "valid"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=field)


def _upload(stream):
    return lambda array: None if array is None else cuda.DeviceArray.from_numpy(array, stream=stream)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("fields", [dict(), dict(class_agnostic=True, iou_threshold=0.3, max_detections=7)])
def test_decode_dense_on_device_arrays_equals_the_cpu_op_bit_for_bit(dtype, fields):
    rng = np.random.default_rng(31)
    levels = _fcos_head(rng, batch=3, classes=7, size=512, dtype=dtype)
    geometry = [_random_geometry(rng) for _ in range(3)]
    stream = cuda.Stream()
    upload = _upload(stream)
    got = decode_dense([tuple(upload(a) for a in level) for level in levels], [8, 16, 32], geometry, device="cuda",
                       stream=stream, **fields)
    assert got.on_device and isinstance(got.boxes, cuda.DeviceArray) and got.boxes.stream is stream
    expected = decode_dense(levels, [8, 16, 32], geometry, **fields)
    assert expected.valid.min() > 0
    _same(got.to_numpy(stream), expected)
    assert not got.refused.any()
    assert [len(image) for image in got.per_image(stream)] == expected.valid.tolist()


@pytest.mark.needs_cuda
def test_decode_boxes_writes_the_callers_outputs_in_place_with_a_workspace():
    rng = np.random.default_rng(5)
    boxes = _random_boxes(rng, (2, 3000), "xyxy", quantised=True).astype(np.float32)
    scores = (np.round(rng.uniform(0, 1, (2, 3000, 7)) * 4) / 4).astype(np.float32)  # ties
    common = dict(pre_nms_top_k=4000, max_detections=500, score_threshold=0.3)
    stream = cuda.Stream()
    upload = _upload(stream)
    out = Detections(
        cuda.DeviceArray.empty((2, 500, 4), "float32", stream=stream),
        cuda.DeviceArray.empty((2, 500), "float32", stream=stream),
        cuda.DeviceArray.empty((2, 500), "int32", stream=stream),
        cuda.DeviceArray.empty((2,), "int32", stream=stream),
    )
    pointers = [a.ptr for a in (out.boxes, out.scores, out.classes, out.valid)]
    size = decode_boxes_cuda_workspace_bytes(scores, pre_nms_top_k=4000, max_detections=500)
    workspace = cuda.DeviceArray.empty(size, "uint8", stream=stream)
    got = decode_boxes(upload(boxes), upload(scores), device="cuda", out=out, workspace=workspace, stream=stream,
                       **common)
    assert got.boxes is out.boxes and got.valid is out.valid
    assert [a.ptr for a in (got.boxes, got.scores, got.classes, got.valid)] == pointers
    _same(got.to_numpy(stream), decode_boxes(boxes, scores, **common))


@pytest.mark.needs_cuda
@pytest.mark.parametrize("count", [0, 1, 65, 5000])
@pytest.mark.parametrize("class_aware", [False, True])
def test_nms_on_device_arrays_keeps_what_the_cpu_op_keeps(count, class_aware):
    boxes, scores, labels = _clustered_boxes(np.random.default_rng(count), count, max(1, count // 30), 5)
    scores = (np.round(scores * 20) / 20).astype(np.float32)  # ties
    classes = labels if class_aware else None
    stream = cuda.Stream()
    upload = _upload(stream)
    device_boxes, device_scores, device_classes = upload(boxes), upload(scores), upload(classes)
    for max_detections in (1, 100, None):
        kept = nms(device_boxes, device_scores, device_classes, 0.5, max_detections, device="cuda", stream=stream)
        expected = nms(boxes, scores, classes, 0.5, max_detections)
        assert isinstance(kept, KeptBoxes) and not kept.refused
        np.testing.assert_array_equal(kept.indices(stream), expected)
        keep = kept.keep.to_numpy(stream)
        assert keep.shape == ((max(1, count) if max_detections is None else max_detections),)
        assert (keep[len(expected):] == -1).all()


@pytest.mark.needs_cuda
def test_refused_values_are_marked_in_the_outputs_not_raised():
    stream = cuda.Stream()
    upload = _upload(stream)
    scores, distances = _level(batch=2)
    scores[1, 0, 2, 3] = np.nan
    got = decode_dense([(upload(scores), upload(distances))], [8], device="cuda", stream=stream)
    np.testing.assert_array_equal(got.refused, [False, True])
    host = got.to_numpy(stream)
    assert host.valid[1] == -1 and not host.boxes[1].any() and not host.scores[1].any() and not host.classes[1].any()
    first = decode_dense([(scores[:1], distances[:1])], [8])
    assert first.valid[0] > 0
    _same(Detections(host.boxes[:1], host.scores[:1], host.classes[:1], host.valid[:1]), first)
    with pytest.raises(ValueError, match="image 1 of the batch was refused"):
        got.per_image(stream)

    # An invalid geometry row, which only the device can meet (the host table is checked).
    boxes = np.array([[[10, 10, 50, 50]], [[20, 20, 60, 60]]], np.float32)
    probabilities = np.full((2, 1, 1), 0.9, np.float32)
    table = geometry_table(_random_geometry(np.random.default_rng(3)), 2)
    _geometry_rows(table)[0]["scale_x"] = 0.0
    mapped = decode_boxes(upload(boxes), upload(probabilities), upload(table), device="cuda", stream=stream)
    np.testing.assert_array_equal(mapped.refused, [True, False])

    kept = nms(upload(np.array([[0, 0, np.inf, 1], [0, 0, 1, 1]], np.float32)), upload(np.zeros(2, np.float32)),
               device="cuda", stream=stream)
    assert kept.refused
    assert (kept.keep.to_numpy(stream) == -1).all() and kept.count.to_numpy(stream).tolist() == [-1]
    with pytest.raises(ValueError, match="a score is NaN or a box is not finite"):
        kept.indices(stream)


@pytest.mark.needs_cuda
def test_limits_that_size_the_outputs_are_checked_before_allocating_them():
    stream = cuda.Stream()
    upload = _upload(stream)
    boxes, scores = upload(np.zeros((1, 3, 4), np.float32)), upload(np.zeros((1, 3, 2), np.float32))
    # 2^40 slots would be terabytes: allocating first would fail with an out-of-memory error instead.
    with pytest.raises(ValueError, match=r"max_detections must be 1 to 32768 per image; got 1099511627776"):
        decode_boxes(boxes, scores, device="cuda", max_detections=2**40, stream=stream)
    with pytest.raises(ValueError, match=r"k \(peaks per channel\) must be 1 to 1024; got 1099511627776"):
        find_peaks(upload(np.zeros((1, 1, 3, 3), np.float32)), GEOMETRY, threshold=0.5,
                   k=2**40, device="cuda", stream=stream)


def _peaks_case(rng, dtype):
    maps = (_blobs(rng, 2, 3, 64, 80, count=10) + rng.normal(0, 0.2, (2, 3, 64, 80))).astype(dtype)
    spec = PreprocessSpec(256, 320)
    return maps, [resize_geometry(600, 700, spec), resize_geometry(300, 900, spec)], (256, 320)


def _same_peaks(got: Peaks, expected: Peaks) -> None:
    """The op's guarantee across devices: the same peaks in the same order; positions to float64
    rounding (the device's arithmetic may differ from the host's in the last place); raw scores
    exactly."""
    np.testing.assert_array_equal(got.valid, expected.valid)
    np.testing.assert_allclose(got.x, expected.x, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(got.y, expected.y, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(got.score, expected.score)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_heatmap_peaks_on_device_arrays_match_the_cpu_op(dtype):
    rng = np.random.default_rng(17)
    maps, geometries, size = _peaks_case(rng, dtype)
    stream = cuda.Stream()
    device_maps = cuda.DeviceArray.from_numpy(maps, stream=stream)
    for geometry in (geometries, geometries[0]):  # one per image: one enqueue each; one for the batch
        got = find_peaks(device_maps, geometry, input_size=size, threshold=0.3, k=8, device="cuda", stream=stream)
        assert got.on_device and got.x.shape == (2, 3, 8)
        expected = find_peaks(maps, geometry, input_size=size, threshold=0.3, k=8)
        assert expected.valid.min() > 0
        _same_peaks(got.to_numpy(stream), expected)
        argmax = find_argmax(device_maps, geometry, input_size=size, device="cuda", stream=stream)
        _same_peaks(argmax.to_numpy(stream), find_argmax(maps, geometry, input_size=size))
    np.testing.assert_allclose(got.points(1, 2), expected.points(1, 2), rtol=1e-6, atol=1e-5)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("normalise, floor", [("minmax", 0.0), ((-1.0, 2.0), 0.3)])
def test_cam_overlay_on_device_arrays_equals_the_cpu_op_bit_for_bit(dtype, normalise, floor):
    rng = np.random.default_rng(23)
    cam = _smooth_cam(rng, 32, 32, dtype)
    display = rng.integers(0, 256, (333, 517), dtype=np.uint8)
    geometry = resize_geometry(999, 1551, PreprocessSpec(256, 256)).as_dict()
    arguments = dict(input_size=(256, 256), normalise=normalise, floor=floor, alpha=0.55)
    stream = cuda.Stream()
    upload = _upload(stream)
    out = cuda.DeviceArray.empty((333, 517, 3), "uint8", stream=stream)
    got = overlay_cam(upload(cam), upload(display), geometry, out=out, device="cuda", stream=stream, **arguments)
    assert got is out
    np.testing.assert_array_equal(out.to_numpy(stream), overlay_cam(cam, display, geometry, **arguments))


@needs_torch_cuda
@pytest.mark.needs_cuda
def test_torch_tensors_on_a_torch_stream_in_and_out_without_copies():
    import torch

    rng = np.random.default_rng(29)
    boxes, scores, labels = _clustered_boxes(rng, 4000, 120, 3)
    batch_boxes, batch_scores = boxes.reshape(2, 2000, 4), rng.uniform(0, 1, (2, 2000, 3)).astype(np.float32)
    common = dict(max_detections=100, score_threshold=0.2)
    torch_stream = torch.cuda.Stream()
    with torch.cuda.stream(torch_stream):
        out = (
            torch.empty((2, 100, 4), dtype=torch.float32, device="cuda"),
            torch.empty((2, 100), dtype=torch.float32, device="cuda"),
            torch.empty((2, 100), dtype=torch.int32, device="cuda"),
            torch.empty(2, dtype=torch.int32, device="cuda"),
        )
        pointers = [t.data_ptr() for t in out]
        got = decode_boxes(torch.from_numpy(batch_boxes).cuda(), torch.from_numpy(batch_scores).cuda(),
                           device="cuda", out=out, stream=torch_stream, **common)
        assert got.boxes is out[0] and [t.data_ptr() for t in out] == pointers
        detections = Detections(*(t.cpu().numpy() for t in out))  # torch reads on the same stream

        keep = torch.empty(50, dtype=torch.int32, device="cuda")
        count = torch.empty(1, dtype=torch.int32, device="cuda")
        kept = nms(torch.from_numpy(boxes).cuda(), torch.from_numpy(scores).cuda(), torch.from_numpy(labels).cuda(),
                   0.5, 50, device="cuda", out=(keep, count), stream=torch_stream)
        assert kept.keep is keep
        indices = keep.cpu().numpy()[: int(count.item())]
    torch_stream.synchronize()
    _same(detections, decode_boxes(batch_boxes, batch_scores, **common))
    np.testing.assert_array_equal(indices, nms(boxes, scores, labels, 0.5, 50))


def _chain_inputs(rng):
    levels = _fcos_head(rng, batch=2, classes=5, size=256)
    geometry = [_random_geometry(rng) for _ in range(2)]
    boxes, scores, labels = _clustered_boxes(rng, 3000, 100, 4)
    maps, peak_geometries, peak_size = _peaks_case(rng, np.float32)
    cam = _smooth_cam(rng, 16, 16, np.float32)
    display = rng.integers(0, 256, (300, 400), dtype=np.uint8)
    return levels, geometry, (boxes, scores, labels), (maps, peak_geometries, peak_size), (cam, display)


def _chain_outputs(stream, fill: bool):
    """Outputs of the chain below; with ``fill``, holding values no op writes."""
    def make(shape, dtype, value):
        if fill:
            return cuda.DeviceArray.from_numpy(np.full(shape, value, dtype), stream=stream)
        return cuda.DeviceArray.empty(shape, dtype, stream=stream)

    return dict(
        detections=Detections(make((2, 100, 4), "float32", 7.5), make((2, 100), "float32", 7.5),
                              make((2, 100), "int32", 77), make((2,), "int32", 777)),
        kept=KeptBoxes(make((200,), "int32", 77), make((1,), "int32", 777)),
        peaks=Peaks(make((2, 3, 4), "float32", 7.5), make((2, 3, 4), "float32", 7.5),
                    make((2, 3, 4), "float32", 7.5), make((2, 3), "int32", 77)),
        overlay=make((300, 400, 3), "uint8", 7),
    )


def _host(outputs, stream) -> dict:
    return dict(
        detections=outputs["detections"].to_numpy(stream),
        kept=[outputs["kept"].keep.to_numpy(stream), outputs["kept"].count.to_numpy(stream)],
        peaks=outputs["peaks"].to_numpy(stream),
        overlay=outputs["overlay"].to_numpy(stream),
    )


def _assert_same_chain(got: dict, expected: dict) -> None:
    _same(got["detections"], expected["detections"])
    for a, b in zip(got["kept"], expected["kept"]):
        np.testing.assert_array_equal(a, b)
    for field in ("x", "y", "score", "valid"):
        np.testing.assert_array_equal(getattr(got["peaks"], field), getattr(expected["peaks"], field))
    np.testing.assert_array_equal(got["overlay"], expected["overlay"])


@pytest.mark.needs_cuda
def test_post_processing_captured_in_a_graph_with_caller_workspaces_replays_like_eager():
    rng = np.random.default_rng(41)
    levels, geometry, (boxes, scores, labels), (maps, peak_geometries, peak_size), (cam, display) = _chain_inputs(rng)
    stream = cuda.Stream()
    upload = _upload(stream)
    device_levels = [tuple(upload(a) for a in level) for level in levels]
    # Uploaded before the capture: a capture cannot copy from host memory.
    device_geometries = upload(geometry_table(geometry, 2))
    device_boxes, device_scores, device_labels = upload(boxes), upload(scores), upload(labels)
    device_maps, device_cam, device_display = upload(maps), upload(cam), upload(display)
    workspaces = dict(
        dense=decode_dense_cuda_workspace_bytes(levels, max_detections=100),
        nms=nms_cuda_workspace_bytes(len(boxes), 200),
        peaks=heatmap_peaks_cuda_workspace_bytes(maps, peak_geometries, input_size=peak_size),
        cam=cam_overlay_cuda_workspace_bytes(display),
    )
    workspaces = {name: cuda.DeviceArray.empty(size, "uint8", stream=stream) for name, size in workspaces.items()}
    cam_geometry = resize_geometry(600, 800, PreprocessSpec(256, 256))

    def chain(outputs):
        decode_dense(device_levels, [8, 16, 32], device_geometries, max_detections=100, device="cuda", stream=stream,
                     workspace=workspaces["dense"], out=outputs["detections"])
        nms(device_boxes, device_scores, device_labels, 0.5, 200, device="cuda", stream=stream,
            workspace=workspaces["nms"], out=outputs["kept"])
        find_peaks(device_maps, peak_geometries, input_size=peak_size, threshold=0.3, k=4, device="cuda",
                   stream=stream, workspace=workspaces["peaks"], out=outputs["peaks"])
        overlay_cam(device_cam, device_display, cam_geometry, input_size=(256, 256), device="cuda", stream=stream,
                    workspace=workspaces["cam"], out=outputs["overlay"])

    eager = _chain_outputs(stream, fill=False)
    chain(eager)
    expected = _host(eager, stream)
    assert expected["detections"].valid.min() > 0 and expected["kept"][1][0] > 0

    captured = _chain_outputs(stream, fill=True)
    graph = cuda.Graph()
    with graph.capture(stream):
        chain(captured)
    assert graph.instantiated
    untouched = _host(captured, stream)
    assert (untouched["detections"].valid == 777).all() and (untouched["overlay"] == 7).all(), \
        "capturing records the work without running it"
    for _ in range(3):
        graph.launch(stream)
    _assert_same_chain(_host(captured, stream), expected)

    # A replay reads whatever the captured buffers hold when it runs.
    fresh = _fcos_head(np.random.default_rng(42), batch=2, classes=5, size=256)
    for device_level, level in zip(device_levels, fresh):
        for device_array, array in zip(device_level, level):
            device_array.copy_from_numpy(array, stream=stream)
    graph.launch(stream)
    _same(captured["detections"].to_numpy(stream), decode_dense(fresh, [8, 16, 32], geometry, max_detections=100))


@pytest.mark.needs_cuda
def test_a_geometry_upload_inside_a_capture_is_refused_with_the_fix():
    rng = np.random.default_rng(43)
    levels = _fcos_head(rng, batch=1, classes=3, size=128)
    stream = cuda.Stream()
    upload = _upload(stream)
    device_levels = [tuple(upload(a) for a in level) for level in levels]
    workspace = cuda.DeviceArray.empty(decode_dense_cuda_workspace_bytes(levels), "uint8", stream=stream)
    graph = cuda.Graph()
    with pytest.raises(ValueError, match=r"uploaded before a CUDA graph capture.*geometry_table"):
        with graph.capture(stream):
            decode_dense(device_levels, [8, 16, 32], _random_geometry(rng), device="cuda", stream=stream,
                         workspace=workspace)
    assert not graph.capturing and not stream.capturing
    # The stream still works, and the same call outside a capture uploads the geometry itself.
    geometry = _random_geometry(rng)
    result = decode_dense(device_levels, [8, 16, 32], geometry, device="cuda", stream=stream, workspace=workspace)
    _same(result.to_numpy(stream), decode_dense(levels, [8, 16, 32], geometry))


@pytest.mark.needs_cuda
def test_device_workspace_sizes_follow_the_shapes():
    small = decode_dense_cuda_workspace_bytes([((1, 3, 16, 16),), ((1, 3, 8, 8),)], pre_nms_top_k=100)
    large = decode_dense_cuda_workspace_bytes([((4, 3, 64, 64),), ((4, 3, 32, 32),)], pre_nms_top_k=1000)
    assert 0 < small < large
    assert decode_boxes_cuda_workspace_bytes((1, 100, 3)) < decode_boxes_cuda_workspace_bytes((2, 5000, 3))
    assert 0 < nms_cuda_workspace_bytes(0, 1) < nms_cuda_workspace_bytes(10000, 100)
