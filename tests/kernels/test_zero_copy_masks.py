"""Zero-copy CUDA-array entry points of mask decode, the histogram and the batched preprocess.

As in test_cuda_memory, the refusals are judged from metadata alone and run everywhere: the
arguments are objects whose ``__cuda_array_interface__`` (or DLPack capsule) points into the
never-mapped first page, which the bindings never dereference; accepted metadata reaches the
first CUDA call, which fails without a GPU. Everything that moves data is marked needs_cuda and
compares the device result with the CPU op: bit for bit where the op documents it (masks and
their statistics on x86-64 hosts, histogram counts, a batch against the same images one by one
on the device), within test_cuda_memory's tolerance for preprocess CUDA against CPU.
"""

from __future__ import annotations

import dataclasses
import gc
import subprocess
import sys

import numpy as np
import pytest

from radedge import cuda
from radedge._native import kernels
from radedge.errors import NativeOpError
from radedge.ops.histogram import histogram
from radedge.ops.mask_decode import (
    COUNTER_FIELDS,
    TALLY_FIELDS,
    DeviceMaskResult,
    MaskResult,
    decode_mask,
    mask_decode_cuda_workspace_bytes,
)
# _spec_arguments: the native entry points take the spec as the wrapper passes it.
from radedge.ops.preprocess import (
    FloatWindow,
    PreprocessSpec,
    _spec_arguments,
    preprocess_batch,
    preprocess_batch_cuda_workspace_bytes,
    preprocess_cuda_workspace_bytes,
    preprocess_into,
)

from ..helpers import (
    NOWHERE,
    READ_ONLY,
    FakeCudaArray,
    FakeDLPack,
    geometry_of,
    least_geometry,
    needs_torch_cuda,
    without_gpu,
)
from .test_cuda_memory import REPOSITORY, _tolerance
from .test_mask_decode import _smooth_logits


def _refused_without_device(call, op: str):
    """Valid metadata gets past every check to the device look-up: without a GPU that is where it
    stops; with one, CUDA finds no allocation at the fake address and calls it host memory."""
    if cuda.is_available():
        with pytest.raises(ValueError, match="points to host memory"):
            call()
    else:
        with pytest.raises(kernels().CudaError, match=rf"^{op} \(CUDA\): no usable CUDA device"):
            call()


# --- mask decode: metadata --------------------------------------------------------------------

# A 60 x 80 source letterboxed into a 32 x 32 input whose 16 x 16 logits decode into a 60 x 80 mask.
MASK_GEOMETRY = geometry_of(60, 80, 32, 32, "letterbox")


def _call_mask_decode_cuda(logits=None, mask=None, runs=None, tallies=None, counters=None, workspace=None,
                           stream=None, image=0, activation="sigmoid", thresholds=(0.5,), geometry=None):
    """Calls the binding with valid fake arrays for every argument not given: sigmoid, 2 channels."""
    g = dict(MASK_GEOMETRY, **(geometry or {}))
    arrays = dict(
        logits=logits if logits is not None else FakeCudaArray(shape=(1, 2, 16, 16), typestr="<f2"),
        mask=mask if mask is not None else _at(0x10000, shape=(60, 80), typestr="|u1"),
        tallies=tallies if tallies is not None else FakeCudaArray(shape=(2, 7), typestr="<u8",
                                                               data=(NOWHERE + 0x20000, False)),
        counters=counters if counters is not None else FakeCudaArray(shape=(2,), typestr="<u8",
                                                                  data=(NOWHERE + 0x30000, False)),
    )
    arrays = {name: value.capsule if isinstance(value, FakeDLPack) else value for name, value in arrays.items()}
    return kernels().mask_decode_cuda(
        arrays["logits"], image, arrays["mask"], activation=activation, thresholds=list(thresholds),
        runs=runs.capsule if isinstance(runs, FakeDLPack) else runs, tallies=arrays["tallies"],
        counters=arrays["counters"], workspace=workspace, stream=stream, geometry=g,
    )


def _at(offset: int, **fields) -> FakeCudaArray:
    """A fake writable array at NOWHERE + offset, so that fakes do not overlap unless a test wants them to."""
    return FakeCudaArray(**fields, data=(NOWHERE + offset, False))


MASK_DECODE_REFUSALS = {
    "logits float64": (dict(logits=FakeCudaArray(shape=(1, 2, 16, 16), typestr="<f8")),
                       r"^logits must be float32 or float16 \[N, C, h, w\]; got float64"),
    "logits 3-d": (dict(logits=FakeCudaArray(shape=(2, 16, 16), typestr="<f4")), r"^logits must be float32 or float16"),
    "logits strided": (
        dict(logits=FakeCudaArray(shape=(1, 2, 16, 16), typestr="<f4", strides=(2048, 1024, 128, 8))),
        r"^logits must be C-contiguous",
    ),
    "logits numpy": (dict(logits=np.zeros((1, 2, 16, 16), np.float32)),
                     r"^logits must be a CUDA device array.*host"),
    "logits CPU DLPack capsule": (dict(logits=FakeDLPack(shape=(1, 2, 16, 16), code=2, bits=32, device_type=1)),
                                  r"^logits must be a CUDA device array; got a DLPack tensor in host \(CPU\) memory"),
    "mask uint16": (dict(mask=_at(0x10000, shape=(60, 80), typestr="<u2")),
                    r"^mask must be a uint8 \[height, width\] array; got uint16"),
    "mask 3-d": (dict(mask=_at(0x10000, shape=(1, 60, 80), typestr="|u1")), r"^mask must be a uint8"),
    "mask read-only": (dict(mask=FakeCudaArray(shape=(60, 80), typestr="|u1", data=(NOWHERE + 0x10000, True))),
                       r"^mask is read-only"),
    "mask strided": (dict(mask=_at(0x10000, shape=(60, 80), typestr="|u1", strides=(160, 1))),
                     r"^mask must be C-contiguous"),
    "mask from a read-only DLPack 1.x tensor": (
        dict(mask=FakeDLPack(shape=(60, 80), code=1, bits=8, versioned=True, flags=READ_ONLY)),
        r"^mask is read-only",
    ),
    "mask host": (dict(mask=np.zeros((60, 80), np.uint8)), r"^mask must be a CUDA device array.*host"),
    "mask empty": (dict(mask=_at(0x10000, shape=(0, 80), typestr="|u1")), r"the mask must be 1 to 65535 pixels"),
    "runs int32": (dict(runs=_at(0x40000, shape=(100, 2), typestr="<i4")), r"^runs must be uint32 \[capacity, 2\]"),
    "runs of 3 columns": (dict(runs=_at(0x40000, shape=(100, 3), typestr="<u4")),
                          r"^runs must be uint32 \[capacity, 2\] with capacity >= 1"),
    "runs without rows": (dict(runs=_at(0x40000, shape=(0, 2), typestr="<u4")), r"capacity >= 1"),
    "runs read-only": (dict(runs=FakeCudaArray(shape=(100, 2), typestr="<u4", data=(NOWHERE + 0x40000, True))),
                       r"^runs is read-only"),
    "tallies of another label count": (dict(tallies=_at(0x20000, shape=(3, 7), typestr="<u8")),
                                       r"^tallies must be uint64 \[2, 7\] for a sigmoid head of 2 channels"),
    "tallies uint32": (dict(tallies=_at(0x20000, shape=(2, 7), typestr="<u4")),
                       r"^tallies must be uint64 \[labels, 7\]"),
    "tallies misaligned": (dict(tallies=_at(0x20004, shape=(2, 7), typestr="<u8")), r"^tallies must be 8-byte aligned"),
    "tallies read-only": (dict(tallies=FakeCudaArray(shape=(2, 7), typestr="<u8", data=(NOWHERE + 0x20000, True))),
                          r"^tallies is read-only"),
    "counters of 3": (dict(counters=_at(0x30000, shape=(3,), typestr="<u8")), r"^counters must be uint64 \[2\]"),
    "counters int64": (dict(counters=_at(0x30000, shape=(2,), typestr="<i8")), r"^counters must be uint64 \[2\]"),
    "counters host": (dict(counters=np.zeros(2, np.uint64)), r"^counters must be a CUDA device array"),
    "workspace float32": (dict(workspace=_at(0x50000, shape=(4096,), typestr="<f4")), r"^workspace must be a uint8"),
    "tallies overlap the mask": (dict(tallies=_at(0x10000 + 4000, shape=(2, 7), typestr="<u8")),
                                 r"^mask overlaps tallies in device memory; mask_decode writes mask"),
    "mask overlaps the logits": (dict(mask=_at(0x100, shape=(60, 80), typestr="|u1")),
                                 r"^mask overlaps logits in device memory"),
    "image outside the batch": (dict(image=1), r"image 1 is outside the batch of 1"),
    "one threshold too many": (dict(thresholds=(0.5, 0.5, 0.5)), r"needs 1 threshold .* or 2 \(one per channel\)"),
    "softmax with thresholds": (dict(activation="softmax", thresholds=(0.5,)), r"softmax head takes the argmax"),
    "unknown activation": (dict(activation="relu"), r"activation must be 'sigmoid' or 'softmax'"),
    "crop outside the source": (dict(geometry=dict(crop_x=70, crop_width=20)),
                                r"the crop must lie inside the source image: crop_x=70, crop_width=20"),
    "stream of another kind": (dict(stream="default"), r"stream must be None .* or a radedge.cuda.Stream"),
}


@pytest.mark.parametrize("arguments, message", MASK_DECODE_REFUSALS.values(), ids=MASK_DECODE_REFUSALS.keys())
def test_mask_decode_cuda_binding_checks_every_argument_before_cuda(arguments, message):
    with pytest.raises(ValueError, match=message):
        _call_mask_decode_cuda(**arguments)


def test_mask_decode_cuda_binding_accepts_valid_metadata_then_needs_the_device():
    runs = _at(0x40000, shape=(100, 2), typestr="<u4")
    workspace = _at(0x60000, shape=(1 << 16,), typestr="|u1")
    _refused_without_device(lambda: _call_mask_decode_cuda(runs=runs, workspace=workspace), "mask_decode")
    softmax_tallies = _at(0x20000, shape=(1, 7), typestr="<u8")
    _refused_without_device(
        lambda: _call_mask_decode_cuda(activation="softmax", thresholds=(), tallies=softmax_tallies), "mask_decode"
    )


def test_mask_decode_tally_layout_is_the_native_structs():
    assert TALLY_FIELDS == ("pixel_count", "sum_x", "sum_y", "min_x", "min_y", "max_x", "max_y")
    assert COUNTER_FIELDS == ("run_count", "non_finite_logits")


def test_mask_decode_statistics_from_tallies_on_the_host():
    empty = np.array([0, 0, 0, 2**64 - 1, 2**64 - 1, 0, 0], np.uint64)
    # Label 1: pixels (x, y) = (2, 1), (3, 1), (3, 4) of a 5 x 6 mask over a 10 x 12 source.
    label = np.array([3, 2 + 3 + 3, 1 + 1 + 4, 2, 1, 3, 4], np.uint64)
    stats = kernels().mask_decode_statistics(
        np.stack([label, empty]), source_rows=10, source_columns=12, mask_height=5, mask_width=6,
        row_spacing_mm=0.5, column_spacing_mm=0.25,
    )
    assert stats[0]["pixel_count"] == 3 and stats[0]["bbox"] == (2, 1, 4, 5)
    assert stats[0]["centroid"] == pytest.approx((8 / 3 + 0.5, 2 + 0.5))
    assert stats[0]["area_mm2"] == pytest.approx(3 * (0.5 * 2) * (0.25 * 2))
    assert stats[1] == {"pixel_count": 0, "bbox": None, "centroid": None, "area_mm2": 0.0}
    with pytest.raises(ValueError, match=r"tallies must be uint64 \[labels, 7\]"):
        kernels().mask_decode_statistics(np.zeros((2, 6), np.uint64), source_rows=1, source_columns=1, mask_height=1,
                                         mask_width=1)


def test_mask_decode_workspace_size_is_host_arithmetic():
    if not kernels().build_info()["cuda"]:
        pytest.skip("radedge was built without CUDA")
    plain = mask_decode_cuda_workspace_bytes((512, 512), (3000, 3000))
    encoded = mask_decode_cuda_workspace_bytes((512, 512), (3000, 3000), rle_capacity=1 << 16)
    assert plain % 256 == 0 and encoded % 256 == 0
    # The cell codes (one byte per logit) and the axis tables are in both; runs need row counts and starts.
    assert plain >= 512 * 512 + 8 * 6000
    assert encoded >= plain + 4 * 3000 + 4 * ((1 << 16) + 1)
    with pytest.raises(ValueError, match="sides must be 1 to 65535"):
        mask_decode_cuda_workspace_bytes((0, 512), (3000, 3000))


def _device_decode(logits, **options):
    g = MASK_GEOMETRY
    return decode_mask(logits, least_geometry(g), input_size=(g["input_height"], g["input_width"]),
                       activation="sigmoid", **options)


def test_decode_mask_refuses_mixing_host_and_device_arrays():
    device_logits = FakeCudaArray(shape=(1, 2, 16, 16), typestr="<f2")
    host_logits = np.zeros((1, 2, 16, 16), np.float16)
    with pytest.raises(ValueError, match=r"^out is a CUDA array but logits is not: .*from_numpy"):
        _device_decode(host_logits, out=FakeCudaArray(shape=(60, 80), typestr="|u1"), device="cuda")
    with pytest.raises(ValueError, match=r"^logits is a CUDA array but out is not"):
        _device_decode(device_logits, out=np.zeros((60, 80), np.uint8), device="cuda")
    with pytest.raises(ValueError, match=r"^logits and tallies are CUDA arrays but counters is not"):
        _device_decode(device_logits, tallies=FakeCudaArray(shape=(2, 7), typestr="<u8"),
                       counters=np.zeros(2, np.uint64),
                       device="cuda")
    with pytest.raises(ValueError, match=r"pass device='cuda' \(got device='cpu'\)"):
        _device_decode(device_logits)
    with pytest.raises(ValueError, match=r"^stream, tallies apply to CUDA arrays"):
        _device_decode(host_logits, stream=7, tallies=object())
    with pytest.raises(ValueError, match=r"output_size \(60, 81\) does not match out's shape \(60, 80\)"):
        _device_decode(device_logits, out=FakeCudaArray(shape=(60, 80), typestr="|u1"), output_size=(60, 81),
                       device="cuda")
    with pytest.raises(ValueError, match=r"a sigmoid head with 2 channels has 2 labels; got 1 names"):
        _device_decode(device_logits, labels=["lesion"], device="cuda")


@without_gpu
def test_decode_mask_on_device_arrays_refuses_clearly_without_a_device():
    _, why = kernels().cuda_device_count()
    with pytest.raises(NativeOpError, match="mask_decode cannot run on 'cuda'") as refused:
        _device_decode(FakeCudaArray(shape=(1, 2, 16, 16), typestr="<f2"), device="cuda")
    assert why in str(refused.value)


# --- mask decode: on the GPU ------------------------------------------------------------------

# (logit size, geometry, output size, activation, channels, thresholds): a radiograph-sized lesion
# mask, several labels with a crop, and a display-size mask.
MASK_CASES = {
    "sigmoid 1 label 3000 x 2400": ((128, 128), geometry_of(3000, 2400, 512, 512, "letterbox"), (3000, 2400),
                                    "sigmoid", 1, 0.5),
    "sigmoid 3 labels cropped": ((64, 64),
                                 geometry_of(900, 700, 256, 256, "letterbox", crop=(50, 80, 600, 700)),
                                 (900, 700), "sigmoid", 3, (0.5, 0.3, 0.7)),
    "softmax 4 classes display size": ((48, 80), geometry_of(333, 517, 96, 160), (250, 400),
                                       "softmax", 4, None),
}


def _decode_case(logits, case, **options):
    _, g, output_size, activation, _, thresholds = case
    return decode_mask(
        logits, least_geometry(g), input_size=(g["input_height"], g["input_width"]), activation=activation,
        thresholds=thresholds, output_size=output_size, spacing_mm=(0.14, 0.15), **options,
    )


def _case_logits(case, dtype, batch=2, seed=3):
    logit_size, _, _, _, channels, _ = case
    return _smooth_logits(np.random.default_rng(seed + channels), batch, channels, *logit_size).astype(dtype)


def _assert_same_result(device: MaskResult, host: MaskResult):
    """The CUDA op labels every pixel as the CPU op does on x86-64 (radedge/mask_decode.h), so the
    masks, the integer statistics derived from them and the runs are equal, not close."""
    np.testing.assert_array_equal(device.mask, host.mask)
    assert device.labels == host.labels
    assert device.run_count == host.run_count and device.pixel_area_mm2 == host.pixel_area_mm2
    if host.runs is None:
        assert device.runs is None
    else:
        np.testing.assert_array_equal(device.runs, host.runs)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("rle", [False, True], ids=["no rle", "rle"])
@pytest.mark.parametrize("case", MASK_CASES.values(), ids=MASK_CASES.keys())
def test_decode_mask_on_device_arrays_equals_the_cpu_op(case, rle, dtype):
    logits = _case_logits(case, dtype)
    stream = cuda.Stream()
    device_logits = cuda.DeviceArray.from_numpy(logits, stream=stream)
    result = _decode_case(device_logits, case, image=1, rle=rle, rle_capacity=1 << 18, device="cuda", stream=stream)
    assert isinstance(result, DeviceMaskResult)
    assert isinstance(result.mask, cuda.DeviceArray) and result.mask.shape == case[2] and result.mask.stream is stream
    assert (result.runs is not None) == rle
    expected = _decode_case(logits, case, image=1, rle=rle, rle_capacity=1 << 18, device="cpu")
    assert sum(label.pixel_count for label in expected.labels) > 1000, "the case must have regions to compare"
    _assert_same_result(result.to_host(), expected)
    assert result.labels == expected.labels and result.rle_complete == expected.rle_complete


@pytest.mark.needs_cuda
def test_decode_mask_writes_the_given_buffers_in_place():
    case = MASK_CASES["sigmoid 3 labels cropped"]
    logits = _case_logits(case, "float16", batch=1)
    stream = cuda.Stream()
    device_logits = cuda.DeviceArray.from_numpy(logits, stream=stream)
    out = cuda.DeviceArray.empty(case[2], "uint8", stream=stream)
    runs = cuda.DeviceArray.empty((5000, 2), "uint32", stream=stream)
    tallies = cuda.DeviceArray.empty((3, 7), "uint64", stream=stream)
    counters = cuda.DeviceArray.empty(2, "uint64", stream=stream)
    workspace = cuda.DeviceArray.empty(mask_decode_cuda_workspace_bytes(case[0], case[2], 5000), "uint8", stream=stream)
    pointers = [array.ptr for array in (out, runs, tallies, counters)]
    result = _decode_case(device_logits, case, out=out, runs=runs, tallies=tallies, counters=counters,
                          workspace=workspace, device="cuda", stream=stream)
    assert result.mask is out and result.runs is runs and result.tallies is tallies and result.counters is counters
    assert [array.ptr for array in (result.mask, result.runs, result.tallies, result.counters)] == pointers
    expected = _decode_case(logits, case, rle=True, rle_capacity=5000)
    _assert_same_result(result.to_host(), expected)
    # The buffers hold what the op left: the mask, then the raw tallies the statistics came from.
    np.testing.assert_array_equal(out.to_numpy(stream), expected.mask)
    raw = tallies.to_numpy(stream)
    assert [int(n) for n in raw[:, 0]] == [label.pixel_count for label in expected.labels]
    assert int(counters.to_numpy(stream)[0]) == expected.run_count


@pytest.mark.needs_cuda
def test_device_statistics_are_fetched_when_read_and_refetched_on_request():
    case = MASK_CASES["sigmoid 1 label 3000 x 2400"]
    logits = _case_logits(case, "float32", batch=1)
    stream = cuda.Stream()
    device_logits = cuda.DeviceArray.from_numpy(logits, stream=stream)
    result = _decode_case(device_logits, case, device="cuda", stream=stream)
    assert "not fetched" in repr(result)
    expected = _decode_case(logits, case)
    assert result.labels == expected.labels and result.run_count == 0
    assert "fetched" in repr(result) and "not fetched" not in repr(result)
    # The same buffers decoded again from other logits: what was fetched stays until fetch() again.
    device_logits.copy_from_numpy(-logits, stream=stream)
    again = _decode_case(device_logits, case, out=result.mask, tallies=result.tallies, counters=result.counters,
                         device="cuda", stream=stream)
    assert result.labels == expected.labels
    assert result.fetch().labels == again.labels == _decode_case(-logits, case).labels
    assert result.labels != expected.labels


@pytest.mark.needs_cuda
def test_non_finite_logits_make_the_fetch_refuse_the_result():
    case = MASK_CASES["softmax 4 classes display size"]
    logits = _case_logits(case, "float32", batch=1)
    logits[0, 2, 5, 7] = np.nan
    logits[0, 0, 1, 1] = -np.inf
    result = _decode_case(cuda.DeviceArray.from_numpy(logits), case, device="cuda")
    with pytest.raises(ValueError, match=r"logits hold 2 NaN or infinite values"):
        result.fetch()
    with pytest.raises(ValueError, match="NaN or infinite"):
        result.to_host()
    with pytest.raises(ValueError, match="NaN or infinite"):
        _decode_case(logits, case)  # the CPU op refuses the same logits


@pytest.mark.needs_cuda
def test_decode_mask_takes_a_dlpack_capsule_once():
    case = MASK_CASES["softmax 4 classes display size"]
    logits = _case_logits(case, "float16", batch=1)
    array = cuda.DeviceArray.from_numpy(logits)
    result = _decode_case(array.__dlpack__(max_version=(1, 0)), case, device="cuda")
    del array
    gc.collect()
    _assert_same_result(result.to_host(), _decode_case(logits, case))


@pytest.mark.needs_cuda
def test_mask_decode_graph_replays_like_eager():
    case = MASK_CASES["sigmoid 3 labels cropped"]
    logit_size, _, output_size, _, channels, _ = case
    logits = _case_logits(case, "float16", batch=1)
    stream = cuda.Stream()
    device_logits = cuda.DeviceArray.from_numpy(logits, stream=stream)
    buffers = dict(
        out=cuda.DeviceArray.from_numpy(np.full(output_size, 77, np.uint8), stream=stream),
        runs=cuda.DeviceArray.empty((1 << 16, 2), "uint32", stream=stream),
        tallies=cuda.DeviceArray.empty((channels, 7), "uint64", stream=stream),
        counters=cuda.DeviceArray.empty(2, "uint64", stream=stream),
        workspace=cuda.DeviceArray.empty(mask_decode_cuda_workspace_bytes(logit_size, output_size, 1 << 16), "uint8",
                                         stream=stream),
    )
    with pytest.raises(ValueError, match=r"out, tallies, counters would be allocated during a CUDA graph capture"):
        with cuda.Graph().capture(stream):
            _decode_case(device_logits, case, device="cuda", stream=stream)

    graph = cuda.Graph()
    with graph.capture(stream):
        captured = _decode_case(device_logits, case, device="cuda", stream=stream, **buffers)
    stream.synchronize()
    assert (buffers["out"].to_numpy(stream) == 77).all(), "capturing records the work without running it"
    for _ in range(10):
        graph.launch(stream)
    _assert_same_result(captured.fetch().to_host(), _decode_case(logits, case, rle=True, rle_capacity=1 << 16))

    # A replay decodes whatever the logits buffer holds when it runs.
    other = _case_logits(case, "float16", batch=1, seed=11)
    device_logits.copy_from_numpy(other, stream=stream)
    graph.launch(stream)
    _assert_same_result(captured.fetch().to_host(), _decode_case(other, case, rle=True, rle_capacity=1 << 16))


@needs_torch_cuda
@pytest.mark.needs_cuda
def test_decode_mask_on_torch_tensors_and_stream():
    import torch

    case = MASK_CASES["sigmoid 3 labels cropped"]
    logits = _case_logits(case, "float16", batch=2)
    torch_stream = torch.cuda.Stream()
    with torch.cuda.stream(torch_stream):
        device_logits = torch.from_numpy(logits).cuda()
        out = torch.empty(case[2], dtype=torch.uint8, device="cuda")
        pointer = out.data_ptr()
        result = _decode_case(device_logits, case, image=1, out=out, device="cuda", stream=torch_stream)
        assert result.mask is out and out.data_ptr() == pointer
        mask = out.cpu().numpy()  # torch reads it on the same stream
    expected = _decode_case(logits, case, image=1)
    np.testing.assert_array_equal(mask, expected.mask)
    assert result.labels == expected.labels
    _assert_same_result(result.to_host(), expected)


# --- histogram: metadata ----------------------------------------------------------------------


def _call_histogram_cuda(pixels=None, counts=None, first_value=0, region=None, padding=None, stream=None):
    pixels = pixels if pixels is not None else FakeCudaArray(shape=(30, 40), typestr="<u2")
    counts = counts if counts is not None else _at(0x10000, shape=(4096,), typestr="<i8")
    return kernels().histogram_cuda(
        pixels.capsule if isinstance(pixels, FakeDLPack) else pixels,
        counts.capsule if isinstance(counts, FakeDLPack) else counts,
        first_value, region=region, padding=padding, stream=stream,
    )


HISTOGRAM_REFUSALS = {
    "pixels float32": (dict(pixels=FakeCudaArray(shape=(30, 40), typestr="<f4")),
                       r"^pixels must be uint8, uint16 or int16 \[rows, columns\] stored values"),
    "pixels 1-d": (dict(pixels=FakeCudaArray(shape=(1200,), typestr="<u2")), r"^pixels must be uint8, uint16 or int16"),
    "pixels columns strided": (dict(pixels=FakeCudaArray(shape=(30, 40), strides=(160, 4))),
                               r"^pixels must be in row-major order with a contiguous last axis"),
    "pixels numpy": (dict(pixels=np.zeros((30, 40), np.uint16)), r"^pixels must be a CUDA device array.*host"),
    "pixels CPU DLPack capsule": (dict(pixels=FakeDLPack(shape=(30, 40), device_type=1)),
                                  r"^pixels must be a CUDA device array; got a DLPack tensor in host \(CPU\) memory"),
    "counts int32": (dict(counts=_at(0x10000, shape=(4096,), typestr="<i4")), r"^counts must be int64 \[bins\]"),
    "counts 2-d": (dict(counts=_at(0x10000, shape=(64, 64), typestr="<i8")), r"^counts must be int64 \[bins\]"),
    "counts strided": (dict(counts=_at(0x10000, shape=(4096,), typestr="<i8", strides=(16,))),
                       r"^counts must be C-contiguous"),
    "counts read-only": (dict(counts=FakeCudaArray(shape=(4096,), typestr="<i8", data=(NOWHERE + 0x10000, True))),
                         r"^counts is read-only"),
    "counts host": (dict(counts=np.zeros(4096, np.int64)), r"^counts must be a CUDA device array.*host"),
    "counts misaligned": (dict(counts=_at(0x10004, shape=(4096,), typestr="<i8")), r"^counts must be 8-byte aligned"),
    "counts overlap the pixels": (dict(counts=_at(0x200, shape=(4096,), typestr="<i8")),
                                  r"^counts overlaps pixels in device memory; histogram writes counts"),
    "too many bins": (dict(counts=_at(0x10000, shape=(65537,), typestr="<i8")), r"counts must have 1 to 65536 bins"),
    "region outside": (dict(region=(30, 0, 20, 30)),
                       r"the region \(x=30, y=0, width=20, height=30\) reaches outside of the 30 rows x 40 columns"),
    "empty padding range": (dict(padding=(10, 5)), r"the padding range is empty \(low 10 > high 5\)"),
    "stream of another kind": (dict(stream=3.5), r"stream must be None .* or a radedge.cuda.Stream"),
}


@pytest.mark.parametrize("arguments, message", HISTOGRAM_REFUSALS.values(), ids=HISTOGRAM_REFUSALS.keys())
def test_histogram_cuda_binding_checks_every_argument_before_cuda(arguments, message):
    with pytest.raises(ValueError, match=message):
        _call_histogram_cuda(**arguments)


def test_histogram_cuda_binding_accepts_padded_rows_then_needs_the_device():
    padded = FakeCudaArray(shape=(30, 40), typestr="<i2", strides=(128, 2))
    _refused_without_device(lambda: _call_histogram_cuda(pixels=padded, region=(2, 3, 10, 20), padding=(0, 9)),
                            "histogram")


def test_histogram_refuses_mixing_host_and_device_arrays():
    with pytest.raises(ValueError, match=r"^out is a CUDA array but pixels is not"):
        histogram(np.zeros((30, 40), np.uint16), 0, 4096, out=_at(0x10000, shape=(4096,), typestr="<i8"))
    with pytest.raises(ValueError, match=r"^pixels is a CUDA array but out is a ndarray"):
        histogram(FakeCudaArray(shape=(30, 40)), 0, 4096, out=np.zeros(4096, np.int64), device="cuda")
    with pytest.raises(ValueError, match=r"pass device='cuda' \(got device='cpu'\)"):
        histogram(FakeCudaArray(shape=(30, 40)), 0, 4096)
    with pytest.raises(ValueError, match=r"out must hold the 4096 bins, int64 \[4096\]; got shape \(256,\)"):
        histogram(FakeCudaArray(shape=(30, 40)), 0, 4096, out=_at(0x10000, shape=(256,), typestr="<i8"), device="cuda")
    with pytest.raises(ValueError, match="stream and out apply to CUDA pixels"):
        histogram(np.zeros((30, 40), np.uint16), 0, 4096, stream=7)


@without_gpu
def test_histogram_of_device_pixels_refuses_clearly_without_a_device():
    with pytest.raises(NativeOpError, match="histogram cannot run on 'cuda'"):
        histogram(FakeCudaArray(shape=(30, 40)), 0, 4096, device="cuda")


# --- histogram: on the GPU --------------------------------------------------------------------


def _histogram_pixels(dtype, rows=1801, columns=1203, seed=4):
    """12-bit-like stored values with a flat padded block, as outside a collimator."""
    rng = np.random.default_rng(seed)
    low = -2048 if dtype == "int16" else 0
    high = 256 if dtype == "uint8" else low + 4096
    pixels = rng.integers(low, high, (rows, columns)).astype(dtype)
    pixels[:100, :300] = low + 1
    return pixels, low, high


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
@pytest.mark.parametrize("region, use_padding", [(None, False), ((101, 7, 900, 1500), True)], ids=["all", "region"])
@pytest.mark.parametrize("bins", [None, 65536], ids=["table range", "all 16-bit values"])
def test_histogram_of_device_pixels_equals_the_cpu_op(dtype, region, use_padding, bins):
    pixels, low, high = _histogram_pixels(dtype)
    first, count = (low, high - low) if bins is None else (-32768 if dtype == "int16" else 0, bins)
    padding = (low + 1, low + 1) if use_padding else None
    stream = cuda.Stream()
    device_pixels = cuda.DeviceArray.from_numpy(pixels, stream=stream)
    counts = histogram(device_pixels, first, count, region=region, padding=padding, device="cuda", stream=stream)
    assert isinstance(counts, cuda.DeviceArray) and counts.shape == (count,) and counts.stream is stream
    expected = histogram(pixels, first, count, region=region, padding=padding)
    assert expected.sum() > 10**5
    np.testing.assert_array_equal(counts.to_numpy(stream), expected)


@pytest.mark.needs_cuda
def test_histogram_counts_padded_rows_into_the_given_counts():
    pixels, low, high = _histogram_pixels("uint16", 700, 1024)
    device_wide = cuda.DeviceArray.from_numpy(pixels)
    # Columns 100 .. 899 of every row: a pitched view, zero-copy.
    crop = cuda.as_device_array(
        FakeCudaArray(shape=(700, 800), typestr="<u2", strides=(2048, 2), data=(device_wide.ptr + 2 * 100, False))
    )
    out = cuda.DeviceArray.from_numpy(np.full(4096, -1, np.int64))
    pointer = out.ptr
    assert histogram(crop, 0, 4096, out=out, device="cuda") is out and out.ptr == pointer
    np.testing.assert_array_equal(out.to_numpy(), histogram(np.ascontiguousarray(pixels[:, 100:900]), 0, 4096))


@pytest.mark.needs_cuda
def test_histogram_graph_replays_like_eager():
    pixels, low, high = _histogram_pixels("int16")
    stream = cuda.Stream()
    device_pixels = cuda.DeviceArray.from_numpy(pixels, stream=stream)
    out = cuda.DeviceArray.from_numpy(np.full(high - low, -1, np.int64), stream=stream)
    with pytest.raises(ValueError, match="allocate an int64 \\[bins\\] CUDA array before the capture"):
        with cuda.Graph().capture(stream):
            histogram(device_pixels, low, high - low, device="cuda", stream=stream)
    graph = cuda.Graph()
    with graph.capture(stream):
        histogram(device_pixels, low, high - low, padding=(low + 1, low + 1), out=out, device="cuda", stream=stream)
    assert (out.to_numpy(stream) == -1).all(), "capturing records the work without running it"
    for _ in range(5):
        graph.launch(stream)  # the counts are cleared on every replay, not accumulated
    np.testing.assert_array_equal(out.to_numpy(stream), histogram(pixels, low, high - low, padding=(low + 1, low + 1)))
    other = _histogram_pixels("int16", seed=9)[0]
    device_pixels.copy_from_numpy(other, stream=stream)
    graph.launch(stream)
    np.testing.assert_array_equal(out.to_numpy(stream), histogram(other, low, high - low, padding=(low + 1, low + 1)))


@needs_torch_cuda
@pytest.mark.needs_cuda
def test_histogram_of_torch_pixels_on_a_torch_stream():
    import torch

    pixels, low, high = _histogram_pixels("int16")
    torch_stream = torch.cuda.Stream()
    with torch.cuda.stream(torch_stream):
        device_pixels = torch.from_numpy(pixels).cuda()
        counts = torch.full((high - low,), -1, dtype=torch.int64, device="cuda")
        pointer = counts.data_ptr()
        assert histogram(device_pixels, low, high - low, out=counts, device="cuda", stream=torch_stream) is counts
        result = counts.cpu().numpy()  # torch reads it on the same stream
    assert counts.data_ptr() == pointer
    np.testing.assert_array_equal(result, histogram(pixels, low, high - low))


# --- batched preprocess: metadata -------------------------------------------------------------


def _fake_image(offset: int, rows=30, columns=40, typestr="<u2", lut=True, crop=None, window=None):
    pixels = _at(offset, shape=(rows, columns), typestr=typestr)
    table = _at(offset + 0x8000, shape=(4096,), typestr="<f4") if lut else None
    return (pixels, table, 0, crop, window)


def _call_preprocess_batch_cuda(images=None, out=None, workspace=None, stream=None, spec=None):
    spec = spec or PreprocessSpec(8, 8)
    images = images if images is not None else [_fake_image(0x10000), _fake_image(0x20000, 50, 20, "<i2")]
    out = out if out is not None else _at(0x40000, shape=(2, 1, 8, 8), typestr="<f4")
    return kernels().preprocess_batch_cuda(
        images, out.capsule if isinstance(out, FakeDLPack) else out, workspace=workspace, stream=stream,
        **_spec_arguments(spec),
    )


# Referenced for the whole session: the capsule points into it.
_HOST_TABLE = FakeDLPack(shape=(4096,), code=2, bits=32, device_type=1)

BATCH_REFUSALS = {
    "no images": (dict(images=[]), r"preprocess_batch: no images"),
    "more images than slots": (dict(out=_at(0x40000, shape=(1, 1, 8, 8), typestr="<f4")),
                               r"2 images do not fit in out's batch of 1"),
    "image of 4 fields": (dict(images=[_fake_image(0x10000)[:4]]),
                          r"^images\[0\] must be \(pixels, lut, lut_first_value, crop, float_window\)"),
    "image not a tuple": (dict(images=[7]), r"^images\[0\] must be a \(pixels, lut, .*\) tuple; got int"),
    "image of bad fields": (dict(images=[(_at(0x10000, shape=(30, 40), typestr="<u2"), None, "zero", None, None)]),
                            r"^images\[0\]: expected \(pixels CUDA array"),
    "second pixels float64": (dict(images=[_fake_image(0x10000), _fake_image(0x20000, typestr="<f8")]),
                              r"^images\[1\]\.pixels must be uint8, uint16 or int16"),
    "second pixels numpy": (dict(images=[_fake_image(0x10000), (np.zeros((30, 40), np.uint16), None, 0, None, None)]),
                            r"^images\[1\]\.pixels must be a CUDA device array.*host"),
    "lut from a CPU DLPack capsule": (
        dict(images=[(_at(0x10000, shape=(30, 40), typestr="<u2"),
                      _HOST_TABLE.capsule, 0, None, None)]),
        r"^images\[0\]\.lut must be a CUDA device array; got a DLPack tensor in host \(CPU\) memory",
    ),
    "lut 2-d": (dict(images=[(_at(0x10000, shape=(30, 40), typestr="<u2"), _at(0x18000, shape=(64, 64), typestr="<f4"),
                              0, None, None)]), r"^images\[0\]\.lut must be a contiguous float32 \[entries\]"),
    "float32 pixels with a table": (dict(images=[_fake_image(0x10000, typestr="<f4")]),
                                    r"image 0: .*float32 pixels are mapped by the float window"),
    "crop outside the second image": (dict(images=[_fake_image(0x10000), _fake_image(0x20000, crop=(30, 0, 30, 10))]),
                                      r"image 1: .*crop"),
    "out read-only": (dict(out=FakeCudaArray(shape=(2, 1, 8, 8), typestr="<f4", data=(NOWHERE + 0x40000, True))),
                      r"^out is read-only"),
    "out float64": (dict(out=_at(0x40000, shape=(2, 1, 8, 8), typestr="<f8")), r"^out must be a C-contiguous float32"),
    "out of another size": (dict(out=_at(0x40000, shape=(2, 1, 9, 8), typestr="<f4")), r"out must be \[N, 1, 8, 8\]"),
    "out from a DLPack copy": (dict(out=FakeDLPack(shape=(2, 1, 8, 8), code=2, bits=32, versioned=True, flags=2)),
                               r"^out was exported as a copy"),
    "out overlaps a table": (dict(out=_at(0x18000, shape=(2, 1, 8, 8), typestr="<f4")),
                             r"^out overlaps images\[0\]\.lut in device memory; preprocess_batch writes out"),
    "workspace int8": (dict(workspace=_at(0x50000, shape=(4096,), typestr="|i1")),
                       r"^workspace must be a uint8 \[bytes\] device buffer of preprocess_batch_cuda_workspace_bytes"),
    "stream of another kind": (dict(stream=object()), r"stream must be None .* or a radedge.cuda.Stream"),
}


@pytest.mark.parametrize("arguments, message", BATCH_REFUSALS.values(), ids=BATCH_REFUSALS.keys())
def test_preprocess_batch_cuda_binding_checks_every_argument_before_cuda(arguments, message):
    with pytest.raises(ValueError, match=message):
        _call_preprocess_batch_cuda(**arguments)


def test_preprocess_batch_cuda_binding_accepts_valid_metadata_then_needs_the_device():
    images = [
        _fake_image(0x10000, crop=(5, 5, 20, 20)),
        (_at(0x20000, shape=(50, 20), typestr="<f4"), None, 0, None, (100.0, 50.0, True)),
        (FakeCudaArray(shape=(30, 40), typestr="|u1", strides=(64, 1), data=(NOWHERE + 0x30000, False)),
         _at(0x38000, shape=(256,), typestr="<f4"), -5, None, None),
    ]
    out = _at(0x40000, shape=(4, 3, 8, 8), typestr="<f2")
    spec = PreprocessSpec(8, 8, channels=3, dtype="float16")
    _refused_without_device(lambda: _call_preprocess_batch_cuda(images, out, spec=spec), "preprocess_batch")


def test_preprocess_batch_refuses_mixing_host_and_device_arrays():
    spec = PreprocessSpec(8, 8)
    host = np.zeros((30, 40), np.uint16)
    table = np.zeros(4096, np.float32)
    device_out = _at(0x40000, shape=(2, 1, 8, 8), typestr="<f4")
    with pytest.raises(ValueError, match=r"^out is a CUDA array but images\[0\]\.pixels and images\[0\]\.lut are not"):
        preprocess_batch([(host, table, 0)], device_out, spec, device="cuda")
    with pytest.raises(ValueError, match=r"^out, images\[0\]\.pixels and images\[0\]\.lut are CUDA arrays but "
                                         r"images\[1\]\.pixels is not"):
        preprocess_batch([_fake_image(0x10000)[:3], (host, None, 0)], device_out, spec, device="cuda")
    with pytest.raises(ValueError, match=r"pass device='cuda' \(got device='cpu'\)"):
        preprocess_batch([_fake_image(0x10000)[:3]], device_out, spec)
    with pytest.raises(ValueError, match="workspace must be a CUDA array"):
        preprocess_batch([_fake_image(0x10000)[:3]], device_out, spec, device="cuda", workspace=np.zeros(8, np.uint8))
    with pytest.raises(ValueError, match="stream applies to CUDA arrays; with numpy arrays preprocess runs on"):
        preprocess_batch([(host, table, 0)], np.zeros((1, 1, 8, 8), np.float32), spec, stream=7)


def test_batch_workspace_is_the_sum_of_the_images():
    if not kernels().build_info()["cuda"]:
        pytest.skip("radedge was built without CUDA")
    spec = PreprocessSpec(512, 512)
    sources = [(3000, 3000), (2048, 1536, (100, 100, 1000, 1200)), (300, 200)]
    total = preprocess_batch_cuda_workspace_bytes(sources, spec)
    assert total == sum(preprocess_cuda_workspace_bytes(s[0], s[1], spec, s[2] if len(s) == 3 else None)
                        for s in sources)
    with pytest.raises(ValueError, match=r"sources\[0\] must be \(rows, columns\)"):
        preprocess_batch_cuda_workspace_bytes([(3000,)], spec)
    with pytest.raises(ValueError):
        preprocess_batch_cuda_workspace_bytes([(0, 3000)], spec)


# --- batched preprocess: on the GPU -----------------------------------------------------------


def _batch_case(seed=12):
    """Images of several sizes, dtypes and intensity mappings, one with a crop."""
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, 4096, (900, 700)).astype(np.uint16), rng.random(4096).astype(np.float32), 0),
        (rng.integers(-1024, 3072, (512, 640)).astype(np.int16), rng.random(4096).astype(np.float32), -1024,
         (40, 30, 500, 400)),
        (rng.integers(0, 256, (300, 301)).astype(np.uint8), rng.random(256).astype(np.float32), 0),
        ((rng.random((200, 150)) * 1000 - 300).astype(np.float32), FloatWindow(200.0, 800.0, invert=True), 0),
    ]


def _upload_batch(images, stream):
    uploaded = []
    for pixels, lut, first, *crop in images:
        table = lut if not isinstance(lut, np.ndarray) else cuda.DeviceArray.from_numpy(lut, stream=stream)
        uploaded.append((cuda.DeviceArray.from_numpy(pixels, stream=stream), table, first, *crop))
    return uploaded


BATCH_SPEC = PreprocessSpec(192, 256, "letterbox", pad_value=0.1, mean=(0.45, 0.5, 0.55), std=(0.2, 0.25, 0.3),
                            channels=3, dtype="float16")


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_preprocess_batch_on_device_arrays_equals_each_image_alone_and_the_cpu_op(dtype):
    spec = dataclasses.replace(BATCH_SPEC, dtype=dtype)
    images = _batch_case()
    stream = cuda.Stream()
    uploaded = _upload_batch(images, stream)
    out = cuda.DeviceArray.from_numpy(np.full((5, *spec.shape), 7, dtype), stream=stream)
    pointer = out.ptr
    geometries = preprocess_batch(uploaded, out, spec, device="cuda", stream=stream)
    assert out.ptr == pointer and out.stream is stream
    batch = out.to_numpy(stream)
    assert (batch[4] == 7).all(), "slots past the images are left as they are"
    alone = cuda.DeviceArray.empty((1, *spec.shape), dtype, stream=stream)
    cpu = np.empty((4, *spec.shape), dtype)
    cpu_geometries = preprocess_batch(images, cpu, spec)
    assert geometries == cpu_geometries
    for index, (pixels, table, first, *crop) in enumerate(uploaded):
        preprocess_into(pixels, table, first, alone, 0, spec, device="cuda", stream=stream,
                        crop=crop[0] if crop else None)
        np.testing.assert_array_equal(batch[index], alone.to_numpy(stream)[0])
    np.testing.assert_allclose(batch[:4].astype(np.float32), cpu.astype(np.float32), **_tolerance(spec))


@pytest.mark.needs_cuda
def test_preprocess_batch_graph_replays_like_eager():
    images = _batch_case()
    stream = cuda.Stream()
    uploaded = _upload_batch(images, stream)
    sources = [(*pixels.shape, *crop) for pixels, _, _, *crop in images]
    workspace = cuda.DeviceArray.empty(preprocess_batch_cuda_workspace_bytes(sources, BATCH_SPEC), "uint8",
                                       stream=stream)
    eager = cuda.DeviceArray.empty((4, *BATCH_SPEC.shape), "float16", stream=stream)
    preprocess_batch(uploaded, eager, BATCH_SPEC, device="cuda", stream=stream, workspace=workspace)
    out = cuda.DeviceArray.from_numpy(np.full((4, *BATCH_SPEC.shape), np.nan, np.float16), stream=stream)
    graph = cuda.Graph()
    with graph.capture(stream):
        preprocess_batch(uploaded, out, BATCH_SPEC, device="cuda", stream=stream, workspace=workspace)
    assert np.isnan(out.to_numpy(stream)).all(), "capturing records the work without running it"
    for _ in range(10):
        graph.launch(stream)
    np.testing.assert_array_equal(out.to_numpy(stream), eager.to_numpy(stream))
    other = np.random.default_rng(5).integers(0, 4096, (900, 700)).astype(np.uint16)
    uploaded[0][0].copy_from_numpy(other, stream=stream)
    graph.launch(stream)
    preprocess_batch(uploaded, eager, BATCH_SPEC, device="cuda", stream=stream, workspace=workspace)
    np.testing.assert_array_equal(out.to_numpy(stream), eager.to_numpy(stream))


@needs_torch_cuda
@pytest.mark.needs_cuda
def test_preprocess_batch_of_torch_tensors_on_a_torch_stream():
    import torch

    images = _batch_case()[:3]
    torch_stream = torch.cuda.Stream()
    with torch.cuda.stream(torch_stream):
        device_images = [(torch.from_numpy(pixels.astype(np.int16) if pixels.dtype == np.uint16 else pixels).cuda(),
                          torch.from_numpy(lut).cuda(), first, *crop) for pixels, lut, first, *crop in images]
        out = torch.empty((3, *BATCH_SPEC.shape), dtype=torch.float16, device="cuda")
        pointer = out.data_ptr()
        preprocess_batch(device_images, out, BATCH_SPEC, device="cuda", stream=torch_stream)
        result = out.cpu().numpy()  # torch reads it on the same stream
    assert out.data_ptr() == pointer
    host_images = [(pixels.astype(np.int16) if pixels.dtype == np.uint16 else pixels, lut, first, *crop)
                   for pixels, lut, first, *crop in images]
    expected = np.empty((3, *BATCH_SPEC.shape), np.float16)
    preprocess_batch(host_images, expected, BATCH_SPEC)
    np.testing.assert_allclose(result.astype(np.float32), expected.astype(np.float32), **_tolerance(BATCH_SPEC))


# --- device-to-device copies and device properties, which the GPU benchmark uses ----------------


@without_gpu
def test_device_properties_refuse_clearly_without_a_device():
    _, why = kernels().cuda_device_count()
    with pytest.raises(NativeOpError, match="device_properties cannot run on 'cuda'") as refused:
        cuda.device_properties()
    assert why in str(refused.value)
    with pytest.raises(kernels().CudaError, match=r"^cuda_device_properties \(CUDA\): no usable CUDA device"):
        kernels().cuda_device_properties()


@pytest.mark.needs_cuda
def test_device_properties_name_the_device_and_versions():
    properties = cuda.device_properties()
    assert properties["name"] and properties["multiprocessors"] > 0 and properties["total_memory_bytes"] > 2**28
    if kernels().build_info()["cuda_emulation"]:
        # The CPU emulator (a test build) names itself and claims no GPU generation or versions.
        assert "emulator" in properties["name"] and properties["compute_capability"] == (0, 0)
        assert cuda.device_properties(properties["device"]) == properties
        return
    major, minor = properties["compute_capability"]
    assert major >= 5 and minor >= 0
    # CUDA's minor-version compatibility lets a runtime run on a driver of the same major version.
    assert properties["runtime_version"] >= 11000
    assert properties["driver_version"] // 1000 >= properties["runtime_version"] // 1000
    assert cuda.device_properties(properties["device"]) == properties


@pytest.mark.needs_cuda
def test_device_to_device_copy_on_a_stream():
    stream = cuda.Stream()
    host = np.arange(3 * 1000 * 7, dtype=np.float32).reshape(3, 1000, 7)
    source = cuda.DeviceArray.from_numpy(host, stream=stream)
    target = cuda.DeviceArray.from_numpy(np.zeros_like(host), stream=stream)
    pointer = target.ptr
    assert target.copy_from(source, stream=stream) is target
    assert target.ptr == pointer and target.stream is stream
    np.testing.assert_array_equal(target.to_numpy(stream), host)
    with pytest.raises(ValueError, match=r"the source is float32 \(3, 1000, 7\) .* but the device array float64"):
        cuda.DeviceArray.empty(host.shape, "float64").copy_from(source)
    with pytest.raises(ValueError, match="source must be C-contiguous"):
        cuda.DeviceArray.empty((7, 1000, 3), "float32").copy_from(
            FakeCudaArray(shape=(7, 1000, 3), typestr="<f4", strides=(4, 28, 28000), data=(source.ptr, False))
        )
    with pytest.raises(ValueError, match=r"source must be a CUDA device array.*host"):
        target.copy_from(host)


# --- the GPU benchmark --------------------------------------------------------------------------


@without_gpu
def test_gpu_benchmark_explains_and_exits_0_without_a_gpu():
    completed = subprocess.run([sys.executable, str(REPOSITORY / "examples" / "bench_gpu.py")], capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "no usable CUDA device" in completed.stdout and "nothing was measured" in completed.stdout


@pytest.mark.needs_cuda
def test_gpu_benchmark_runs_and_reports_ratios():
    completed = subprocess.run([sys.executable, str(REPOSITORY / "examples" / "bench_gpu.py"), "--repeat", "20"],
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "results match radedge's CPU ops" in out
    if kernels().build_info()["cuda_emulation"]:
        assert "nothing was timed" in out and "ratio" not in out, out
        return
    assert out.count("ratio") >= 2 and "GB/s read + written" in out and "host launch" in out
    if hasattr(kernels(), "nms_cuda"):
        assert "preprocess + mask decode + NMS" in out, out
