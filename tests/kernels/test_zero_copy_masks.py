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
import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from radedge import cuda
from radedge._native import kernels
from radedge.errors import NativeOpError
from radedge.histogram import histogram
from radedge.mask_decode import (
    COUNTER_FIELDS,
    TALLY_FIELDS,
    DeviceMaskResult,
    MaskResult,
    decode_mask,
    mask_decode_cuda_workspace_bytes,
)

from . import reference_mask_decode as mask_reference
from .test_cuda_memory import NOWHERE, READ_ONLY, REPOSITORY, _FakeDLPack, _Interface
from .test_mask_decode import GEOMETRY_KEYS, _smooth_logits

without_gpu = pytest.mark.skipif(cuda.is_available(), reason="checks the behaviour where no CUDA device is usable")


def _has_torch_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


needs_torch_cuda = pytest.mark.skipif(not _has_torch_cuda(), reason="needs PyTorch built with CUDA and a GPU")


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
MASK_GEOMETRY = mask_reference.letterbox_geometry(60, 80, 32, 32)


def _mask_geometry_object(g: dict = MASK_GEOMETRY) -> SimpleNamespace:
    return SimpleNamespace(**{key: g[key] for key in GEOMETRY_KEYS})


def _call_mask_decode_cuda(logits=None, mask=None, runs=None, tallies=None, counters=None, workspace=None,
                           stream=None, image=0, activation="sigmoid", thresholds=(0.5,), geometry=None):
    """Calls the binding with valid fake arrays for every argument not given: sigmoid, 2 channels."""
    g = dict(MASK_GEOMETRY, **(geometry or {}))
    arrays = dict(
        logits=logits if logits is not None else _Interface(shape=(1, 2, 16, 16), typestr="<f2"),
        mask=mask if mask is not None else _Interface(shape=(60, 80), typestr="|u1", data=(NOWHERE + 0x10000, False)),
        tallies=tallies if tallies is not None else _Interface(shape=(2, 7), typestr="<u8",
                                                               data=(NOWHERE + 0x20000, False)),
        counters=counters if counters is not None else _Interface(shape=(2,), typestr="<u8",
                                                                  data=(NOWHERE + 0x30000, False)),
    )
    arrays = {name: value.capsule if isinstance(value, _FakeDLPack) else value for name, value in arrays.items()}
    return kernels().mask_decode_cuda(
        arrays["logits"], image, arrays["mask"], activation=activation, thresholds=list(thresholds),
        runs=runs.capsule if isinstance(runs, _FakeDLPack) else runs, tallies=arrays["tallies"],
        counters=arrays["counters"], workspace=workspace, stream=stream, **g,
    )


def _at(offset: int, **fields) -> _Interface:
    """A fake writable array at NOWHERE + offset, so that fakes do not overlap unless a test wants them to."""
    return _Interface(**fields, data=(NOWHERE + offset, False))


MASK_DECODE_REFUSALS = {
    "logits float64": (dict(logits=_Interface(shape=(1, 2, 16, 16), typestr="<f8")),
                       r"^logits must be float32 or float16 \[N, C, h, w\]; got float64"),
    "logits 3-d": (dict(logits=_Interface(shape=(2, 16, 16), typestr="<f4")), r"^logits must be float32 or float16"),
    "logits strided": (
        dict(logits=_Interface(shape=(1, 2, 16, 16), typestr="<f4", strides=(2048, 1024, 128, 8))),
        r"^logits must be C-contiguous",
    ),
    "logits numpy": (dict(logits=np.zeros((1, 2, 16, 16), np.float32)),
                     r"^logits must be a CUDA device array.*host"),
    "logits CPU DLPack capsule": (dict(logits=_FakeDLPack(shape=(1, 2, 16, 16), code=2, bits=32, device_type=1)),
                                  r"^logits must be a CUDA device array; got a DLPack tensor in host \(CPU\) memory"),
    "mask uint16": (dict(mask=_at(0x10000, shape=(60, 80), typestr="<u2")), r"^mask must be a uint8 \[height, width\] array; got uint16"),
    "mask 3-d": (dict(mask=_at(0x10000, shape=(1, 60, 80), typestr="|u1")), r"^mask must be a uint8"),
    "mask read-only": (dict(mask=_Interface(shape=(60, 80), typestr="|u1", data=(NOWHERE + 0x10000, True))),
                       r"^mask is read-only"),
    "mask strided": (dict(mask=_at(0x10000, shape=(60, 80), typestr="|u1", strides=(160, 1))),
                     r"^mask must be C-contiguous"),
    "mask from a read-only DLPack 1.x tensor": (
        dict(mask=_FakeDLPack(shape=(60, 80), code=1, bits=8, versioned=True, flags=READ_ONLY)),
        r"^mask is read-only",
    ),
    "mask host": (dict(mask=np.zeros((60, 80), np.uint8)), r"^mask must be a CUDA device array.*host"),
    "mask empty": (dict(mask=_at(0x10000, shape=(0, 80), typestr="|u1")), r"the mask must be 1 to 65535 pixels"),
    "runs int32": (dict(runs=_at(0x40000, shape=(100, 2), typestr="<i4")), r"^runs must be uint32 \[capacity, 2\]"),
    "runs of 3 columns": (dict(runs=_at(0x40000, shape=(100, 3), typestr="<u4")),
                          r"^runs must be uint32 \[capacity, 2\] with capacity >= 1"),
    "runs without rows": (dict(runs=_at(0x40000, shape=(0, 2), typestr="<u4")), r"capacity >= 1"),
    "runs read-only": (dict(runs=_Interface(shape=(100, 2), typestr="<u4", data=(NOWHERE + 0x40000, True))),
                       r"^runs is read-only"),
    "tallies of another label count": (dict(tallies=_at(0x20000, shape=(3, 7), typestr="<u8")),
                                       r"^tallies must be uint64 \[2, 7\] for a sigmoid head of 2 channels"),
    "tallies uint32": (dict(tallies=_at(0x20000, shape=(2, 7), typestr="<u4")), r"^tallies must be uint64 \[labels, 7\]"),
    "tallies misaligned": (dict(tallies=_at(0x20004, shape=(2, 7), typestr="<u8")), r"^tallies must be 8-byte aligned"),
    "tallies read-only": (dict(tallies=_Interface(shape=(2, 7), typestr="<u8", data=(NOWHERE + 0x20000, True))),
                          r"^tallies is read-only"),
    "counters of 3": (dict(counters=_at(0x30000, shape=(3,), typestr="<u8")), r"^counters must be uint64 \[2\]"),
    "counters int64": (dict(counters=_at(0x30000, shape=(2,), typestr="<i8")), r"^counters must be uint64 \[2\]"),
    "counters host": (dict(counters=np.zeros(2, np.uint64)), r"^counters must be a CUDA device array"),
    "workspace float32": (dict(workspace=_at(0x50000, shape=(4096,), typestr="<f4")), r"^workspace must be a uint8"),
    "tallies overlap the mask": (dict(tallies=_at(0x10000 + 4000, shape=(2, 7), typestr="<u8")),
                                 r"^tallies overlaps mask in device memory"),
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
    return decode_mask(logits, _mask_geometry_object(g), input_size=(g["input_height"], g["input_width"]),
                       activation="sigmoid", **options)


def test_decode_mask_refuses_mixing_host_and_device_arrays():
    device_logits = _Interface(shape=(1, 2, 16, 16), typestr="<f2")
    host_logits = np.zeros((1, 2, 16, 16), np.float16)
    with pytest.raises(ValueError, match=r"^out is a CUDA array but logits is not: .*from_numpy"):
        _device_decode(host_logits, out=_Interface(shape=(60, 80), typestr="|u1"), device="cuda")
    with pytest.raises(ValueError, match=r"^logits is a CUDA array but out is not"):
        _device_decode(device_logits, out=np.zeros((60, 80), np.uint8), device="cuda")
    with pytest.raises(ValueError, match=r"^logits and tallies are CUDA arrays but counters is not"):
        _device_decode(device_logits, tallies=_Interface(shape=(2, 7), typestr="<u8"), counters=np.zeros(2, np.uint64),
                       device="cuda")
    with pytest.raises(ValueError, match=r"pass device='cuda' \(got device='cpu'\)"):
        _device_decode(device_logits)
    with pytest.raises(ValueError, match=r"^stream, tallies apply to CUDA arrays"):
        _device_decode(host_logits, stream=7, tallies=object())
    with pytest.raises(ValueError, match=r"output_size \(60, 81\) does not match out's shape \(60, 80\)"):
        _device_decode(device_logits, out=_Interface(shape=(60, 80), typestr="|u1"), output_size=(60, 81),
                       device="cuda")
    with pytest.raises(ValueError, match=r"a sigmoid head with 2 channels has 2 labels; got 1 names"):
        _device_decode(device_logits, labels=["lesion"], device="cuda")


@without_gpu
def test_decode_mask_on_device_arrays_refuses_clearly_without_a_device():
    _, why = kernels().cuda_device_count()
    with pytest.raises(NativeOpError, match="mask_decode cannot run on 'cuda'") as refused:
        _device_decode(_Interface(shape=(1, 2, 16, 16), typestr="<f2"), device="cuda")
    assert why in str(refused.value)


# --- mask decode: on the GPU ------------------------------------------------------------------

# (logit size, geometry, output size, activation, channels, thresholds): a radiograph-sized lesion
# mask, several labels with a crop, and a display-size mask.
MASK_CASES = {
    "sigmoid 1 label 3000 x 2400": ((128, 128), mask_reference.letterbox_geometry(3000, 2400, 512, 512), (3000, 2400),
                                    "sigmoid", 1, 0.5),
    "sigmoid 3 labels cropped": ((64, 64), mask_reference.letterbox_geometry(900, 700, 256, 256, crop=(50, 80, 600, 700)),
                                 (900, 700), "sigmoid", 3, (0.5, 0.3, 0.7)),
    "softmax 4 classes display size": ((48, 80), mask_reference.stretch_geometry(333, 517, 96, 160), (250, 400),
                                       "softmax", 4, None),
}


def _decode_case(logits, case, **options):
    _, g, output_size, activation, _, thresholds = case
    return decode_mask(
        logits, SimpleNamespace(**{key: g[key] for key in GEOMETRY_KEYS}), input_size=(g["input_height"], g["input_width"]),
        activation=activation, thresholds=thresholds, output_size=output_size, spacing_mm=(0.14, 0.15), **options,
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
