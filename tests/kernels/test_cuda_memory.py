"""radedge.cuda: device memory, pinned staging, streams, events, graphs and zero-copy exchange.

What needs no GPU runs everywhere: without a usable device every CUDA entry point refuses with
a clear error and the CPU ops keep working, and the import of __cuda_array_interface__ and DLPack
objects is checked from their metadata. Those checks use objects whose metadata points at memory
that does not exist (tests/helpers.py's ``FakeCudaArray`` and ``FakeDLPack``, which says why that
is legitimate); without a GPU the first CUDA call they reach fails (asserted below). Everything
that moves data is marked needs_cuda and checks the result against numpy or the CPU op.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from radedge import cuda
from radedge._native import kernels
from radedge.errors import NativeOpError
# The native entry points take the spec as the wrapper passes it.
from radedge.ops.preprocess import (
    PreprocessSpec,
    _spec_arguments,
    preprocess,
    preprocess_cuda_workspace_bytes,
    preprocess_into,
)

from ..helpers import (
    IS_COPIED,
    NOWHERE,
    READ_ONLY,
    USED_NAME,
    FakeCudaArray,
    FakeDLPack,
    capsule_name,
    needs_torch_cuda,
    without_gpu,
)
from . import reference

REPOSITORY = Path(__file__).resolve().parents[2]


def _pixels(rng, rows, columns, dtype="uint16"):
    return rng.integers(0, 4096, (rows, columns)).astype(dtype)


def _lut(rng, entries=4096):
    return rng.random(entries).astype(np.float32)


def _cpu_result(pixels, lut, first, spec):
    out, _ = preprocess(np.asarray(pixels), np.asarray(lut), first, spec, device="cpu")
    return out


def _tolerance(spec: PreprocessSpec) -> dict:
    """CUDA and CPU evaluate the same float32 expressions; allow rounding, as test_preprocess does."""
    atol = 1e-5 / min(spec.std)
    return {"rtol": 2.0**-10, "atol": atol} if spec.dtype == "float16" else {"rtol": 1e-6, "atol": atol}


# --- without a GPU -----------------------------------------------------------------------------


def test_is_available_agrees_with_the_native_device_count():
    count, why = kernels().cuda_device_count()
    assert cuda.is_available() == (count > 0)
    if count == 0:
        assert why


ENTRY_POINTS = {
    "Stream()": lambda: cuda.Stream(),
    "Stream.wrap(0)": lambda: cuda.Stream.wrap(0),
    "Event()": lambda: cuda.Event(),
    "Graph()": lambda: cuda.Graph(),
    "DeviceArray(...)": lambda: cuda.DeviceArray((2, 3), "float32"),
    "DeviceArray.empty": lambda: cuda.DeviceArray.empty((2, 3), "float32"),
    "DeviceArray.from_numpy": lambda: cuda.DeviceArray.from_numpy(np.arange(6, dtype=np.uint16)),
    "PinnedArray(...)": lambda: cuda.PinnedArray(16, "uint8"),
    "PinnedArray.empty": lambda: cuda.PinnedArray.empty(16, "uint8"),
    "as_device_array": lambda: cuda.as_device_array(FakeCudaArray()),
    "preprocess_into(device arrays)": lambda: preprocess_into(
        FakeCudaArray(),
        FakeCudaArray(shape=(10,), typestr="<f4"),
        0,
        FakeCudaArray(shape=(1, 1, 8, 8), typestr="<f4"),
        0,
        PreprocessSpec(8, 8),
        device="cuda",
    ),
}


@without_gpu
@pytest.mark.parametrize("entry_point", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_every_entry_point_refuses_clearly_without_a_device(entry_point):
    _, why = kernels().cuda_device_count()
    with pytest.raises(NativeOpError) as refused:
        entry_point()
    message = str(refused.value)
    assert why in message, "the message says why CUDA is unusable"
    assert "CUDA_VISIBLE_DEVICES" in message or "rebuild" in message, "and what to do about it"


NATIVE_ENTRY_POINTS = {
    "Stream": lambda k: k.Stream(),
    "Stream.wrap": lambda k: k.Stream.wrap(0),
    "Event": lambda k: k.Event(),
    "Graph": lambda k: k.Graph(),
    "DeviceArray.empty": lambda k: k.DeviceArray.empty([3], "<f4"),
    "PinnedArray.empty": lambda k: k.PinnedArray.empty([3], "|u1"),
    "as_device_array": lambda k: k.as_device_array(FakeCudaArray()),
}


@without_gpu
@pytest.mark.parametrize("op, entry_point", NATIVE_ENTRY_POINTS.items(), ids=NATIVE_ENTRY_POINTS.keys())
def test_native_entry_points_raise_cuda_error_naming_themselves(op, entry_point):
    with pytest.raises(kernels().CudaError, match=rf"^{op} \(CUDA\): no usable CUDA device: "):
        entry_point(kernels())


@without_gpu
def test_cpu_ops_still_work_after_cuda_refusals():
    for entry_point in ENTRY_POINTS.values():
        with pytest.raises(NativeOpError):
            entry_point()
    rng = np.random.default_rng(1)
    pixels, lut = _pixels(rng, 37, 53), _lut(rng)
    spec = PreprocessSpec(24, 24, "letterbox", pad_value=0.2, mean=(0.4,), std=(0.3,))
    out = _cpu_result(pixels, lut, 0, spec)
    expected = reference.preprocess(pixels, lut, 0, 24, 24, "letterbox", 0.2, (0.4,), (0.3,), 1)
    np.testing.assert_allclose(out[0], expected, **_tolerance(spec))


HOST_ARRAYS = {
    "numpy array": lambda: np.zeros((4, 5), np.uint16),
    "DLPack 0.x capsule from numpy": lambda: np.zeros((4, 5), np.uint16).__dlpack__(),
    "DLPack 1.x capsule from numpy": lambda: np.zeros((4, 5), np.uint16).__dlpack__(max_version=(1, 0)),
    "bytes": lambda: b"\x00" * 40,
}


@pytest.mark.parametrize("make", HOST_ARRAYS.values(), ids=HOST_ARRAYS.keys())
def test_host_arrays_are_refused_with_the_way_to_upload(make):
    obj = make()
    with pytest.raises(ValueError, match=r"host.*DeviceArray\.from_numpy") as refused:
        cuda.as_device_array(obj)
    assert "array must be" in str(refused.value)
    if type(obj).__name__ == "PyCapsule":
        # Refused, not consumed: the capsule keeps its name, so its own destructor frees numpy's tensor.
        assert capsule_name(obj).decode().startswith("dltensor")


@pytest.mark.needs_torch
def test_torch_cpu_tensor_is_refused_as_a_host_array():
    import torch

    with pytest.raises(ValueError, match=r"torch\.Tensor in host \(CPU\) memory"):
        cuda.as_device_array(torch.zeros(4, 5))
    assert not cuda.is_device_array(torch.zeros(3))


def test_objects_without_either_protocol_are_refused():
    with pytest.raises(ValueError, match=r"__cuda_array_interface__ or __dlpack__.*got a list"):
        cuda.as_device_array([1, 2, 3])
    with pytest.raises(ValueError, match="got None"):
        cuda.as_device_array(None)


def test_is_device_array_reads_metadata_only():
    assert cuda.is_device_array(FakeCudaArray())
    assert cuda.is_device_array(FakeDLPack().capsule)
    assert not cuda.is_device_array(np.zeros(3))
    assert not cuda.is_device_array([1.0])


CAI_REFUSALS = {
    "no data": (dict(data=None), "data is not a"),
    "version 1": (dict(version=1), "version 1; radedge reads versions 2 and 3"),
    "version 4": (dict(version=4), "version 4"),
    "big-endian": (dict(typestr=">u2"), "big-endian"),
    "complex": (dict(typestr="<c8"), "'<c8' is not supported"),
    "not a typestr": (dict(typestr="uint16"), "not a numpy type string"),
    "object dtype": (dict(typestr="|O8"), "not supported"),
    "negative extent": (dict(shape=(4, -5)), "negative extent"),
    "shape of floats": (dict(shape=(4.0, 5)), "shape holds float"),
    "too large": (dict(shape=(2**40, 2**40)), "too large"),
    "strides per axis": (dict(strides=(2,)), "1 strides for 2 dimensions"),
    "masked": (dict(mask=FakeCudaArray(typestr="|b1")), "masked array"),
    "stream 0": (dict(stream=0), "stream 0"),
    "null pointer": (dict(data=(0, False)), "null data pointer for 20 elements"),
    "pointer not int": (dict(data=("0x10", False)), "data pointer that is not an int"),
}


@pytest.mark.parametrize("fields, message", CAI_REFUSALS.values(), ids=CAI_REFUSALS.keys())
def test_cuda_array_interface_metadata_is_validated_before_any_cuda_call(fields, message):
    with pytest.raises(ValueError, match=message):
        cuda.as_device_array(FakeCudaArray(**fields))


def test_a_missing_interface_key_is_named():
    obj = FakeCudaArray()
    del obj.fields["typestr"]
    with pytest.raises(ValueError, match="without 'typestr'"):
        cuda.as_device_array(obj)


CAI_ACCEPTED = {
    "v3 C-contiguous": dict(),
    "v2": dict(version=2),
    "v3 with a stream": dict(stream=1),
    "explicit strides": dict(strides=(20, 2)),
    "negative strides": dict(strides=(-10, 2)),
    "empty with a null pointer": dict(shape=(0, 5), data=(0, False)),
    "0-d float16": dict(shape=(), typestr="<f2"),
    "bool": dict(typestr="|b1"),
    "read-only": dict(data=(NOWHERE, True)),
}


@pytest.mark.parametrize("fields", CAI_ACCEPTED.values(), ids=CAI_ACCEPTED.keys())
def test_valid_cuda_array_interface_metadata_is_accepted(fields):
    """Accepted metadata reaches the device look-up: without a GPU that is where it stops; with one,
    CUDA reports the fake address as unregistered (host) memory, which is refused."""
    obj = FakeCudaArray(**fields)
    if cuda.is_available():
        if obj.fields["data"][0] == 0:
            view = cuda.as_device_array(obj)
            assert view.shape == obj.fields["shape"] and view.size == 0
        else:
            with pytest.raises(ValueError, match="points to host memory"):
                cuda.as_device_array(obj)
    else:
        with pytest.raises(NativeOpError, match="no usable CUDA device"):
            cuda.as_device_array(obj)


def _call_preprocess_cuda(pixels=None, lut=None, out=None, workspace=None, stream=None, spec=None):
    spec = spec or PreprocessSpec(8, 8)
    # A FakeDLPack stays referenced by the caller while its capsule is read.
    out = out.capsule if isinstance(out, FakeDLPack) else out
    return kernels().preprocess_cuda(
        pixels if pixels is not None else FakeCudaArray(shape=(30, 40), typestr="<u2"),
        lut if lut is not None else FakeCudaArray(shape=(4096,), typestr="<f4"),
        0,
        out if out is not None else FakeCudaArray(shape=(1, 1, 8, 8), typestr="<f4"),
        0,
        workspace=workspace,
        stream=stream,
        **_spec_arguments(spec),
    )


PREPROCESS_REFUSALS = {
    "pixels float64": (
        dict(pixels=FakeCudaArray(shape=(30, 40), typestr="<f8")),
        r"^pixels must be uint8, uint16 or int16",
    ),
    "float32 pixels with a table": (
        dict(pixels=FakeCudaArray(shape=(30, 40), typestr="<f4")),
        r"float32 pixels are mapped by the float window",
    ),
    "pixels 3-d": (dict(pixels=FakeCudaArray(shape=(3, 30, 40))), r"^pixels must be uint8"),
    "pixels columns strided": (
        dict(pixels=FakeCudaArray(shape=(30, 40), strides=(160, 4))),
        r"^pixels must be in row-major order with a contiguous last axis",
    ),
    "pixels rows overlap": (
        dict(pixels=FakeCudaArray(shape=(30, 40), strides=(60, 2))), r"^pixels must be in row-major"
    ),
    "pixels host": (dict(pixels=np.zeros((30, 40), np.uint16)), r"^pixels must be a CUDA device array.*host"),
    "lut 2-d": (
        dict(lut=FakeCudaArray(shape=(64, 64), typestr="<f4")), r"^lut must be a contiguous float32 \[entries\]"
    ),
    "lut float64": (dict(lut=FakeCudaArray(shape=(4096,), typestr="<f8")), r"^lut must be"),
    "lut strided": (dict(lut=FakeCudaArray(shape=(4096,), typestr="<f4", strides=(8,))), r"^lut must be C-contiguous"),
    "out read-only": (
        dict(out=FakeCudaArray(shape=(1, 1, 8, 8), typestr="<f4", data=(NOWHERE, True))),
        r"^out is read-only",
    ),
    "out float64": (dict(out=FakeCudaArray(shape=(1, 1, 8, 8), typestr="<f8")), r"^out must be a C-contiguous float32"),
    "out strided": (
        dict(out=FakeCudaArray(shape=(1, 1, 8, 8), typestr="<f4", strides=(1024, 512, 64, 8))),
        r"^out must be C-contiguous",
    ),
    "out of another size": (dict(out=FakeCudaArray(shape=(1, 1, 9, 8), typestr="<f4")), r"out must be \[N, 1, 8, 8\]"),
    "workspace float32": (dict(workspace=FakeCudaArray(shape=(4096,), typestr="<f4")), r"^workspace must be a uint8"),
    "stream of another kind": (dict(stream="default"), r"stream must be None .* or a radedge.cuda.Stream"),
    "out from a read-only DLPack 1.x tensor": (
        dict(out=FakeDLPack(shape=(1, 1, 8, 8), code=2, bits=32, versioned=True, flags=READ_ONLY)),
        r"^out is read-only",
    ),
    "out from a DLPack copy": (
        dict(out=FakeDLPack(shape=(1, 1, 8, 8), code=2, bits=32, versioned=True, flags=IS_COPIED)),
        r"^out was exported as a copy",
    ),
}


@pytest.mark.parametrize("arguments, message", PREPROCESS_REFUSALS.values(), ids=PREPROCESS_REFUSALS.keys())
def test_preprocess_cuda_binding_checks_every_argument_before_cuda(arguments, message):
    with pytest.raises(ValueError, match=message):
        _call_preprocess_cuda(**arguments)


def test_preprocess_cuda_binding_accepts_padded_rows_then_needs_the_device():
    padded = FakeCudaArray(shape=(30, 40), strides=(128, 2))  # pitched rows of 64 uint16
    if cuda.is_available():
        with pytest.raises(ValueError, match="points to host memory"):
            _call_preprocess_cuda(pixels=padded)
    else:
        with pytest.raises(kernels().CudaError, match=r"^preprocess \(CUDA\): no usable CUDA device"):
            _call_preprocess_cuda(pixels=padded)


def test_preprocess_into_refuses_mixing_host_and_device_arrays():
    rng = np.random.default_rng(2)
    spec = PreprocessSpec(8, 8)
    with pytest.raises(ValueError, match=r"^out is a CUDA array but pixels and lut are not: .*from_numpy"):
        preprocess_into(_pixels(rng, 30, 40), _lut(rng), 0, FakeCudaArray(shape=(1, 1, 8, 8), typestr="<f4"), 0, spec,
                        device="cuda")
    device_arrays = (FakeCudaArray(shape=(30, 40)), FakeCudaArray(shape=(4096,), typestr="<f4"),
                     FakeCudaArray(shape=(1, 1, 8, 8), typestr="<f4"))
    with pytest.raises(ValueError, match=r"pass device='cuda' \(got device='cpu'\)"):
        preprocess_into(*device_arrays[:2], 0, device_arrays[2], 0, spec)
    with pytest.raises(ValueError, match="workspace must be a CUDA array"):
        preprocess_into(
            *device_arrays[:2], 0, device_arrays[2], 0, spec, device="cuda", workspace=np.zeros(64, np.uint8)
        )
    with pytest.raises(ValueError, match="stream applies to CUDA arrays; with numpy arrays preprocess runs on the host"):
        preprocess_into(_pixels(rng, 30, 40), _lut(rng), 0, np.empty((1, 1, 8, 8), np.float32), 0, spec, stream=7)


DLPACK_REFUSALS = {
    "complex64": (dict(code=5, bits=64), "element type complex64"),
    "bfloat16": (dict(code=4, bits=16), "element type bfloat16"),
    "DLPack 2.x": (dict(versioned=True, major=2), r"DLPack 2\.1 tensor; radedge reads DLPack 1\.x"),
    "CPU": (dict(device_type=1), r"host \(CPU\) memory"),
    "pinned host": (dict(device_type=3), "page-locked host memory"),
    "ROCm": (dict(device_type=10), "ROCm device"),
    "negative extent": (dict(shape=(4, -1)), "negative extent"),
}


@pytest.mark.parametrize("fields, message", DLPACK_REFUSALS.values(), ids=DLPACK_REFUSALS.keys())
def test_refused_dlpack_capsules_are_left_to_their_exporter(fields, message):
    fake = FakeDLPack(**fields)
    name = fake.name
    with pytest.raises(ValueError, match=message):
        cuda.as_device_array(fake.capsule)
    assert fake.name == name, "a refused capsule is not renamed, so its exporter still releases it"
    assert fake.deleted == 0


def test_a_consumed_dlpack_capsule_is_refused_the_second_time():
    fake = FakeDLPack(name=USED_NAME)
    with pytest.raises(ValueError, match="already consumed"):
        cuda.as_device_array(fake.capsule)
    assert fake.deleted == 0


@pytest.mark.parametrize("versioned", [False, True], ids=["DLPack 0.x", "DLPack 1.x"])
def test_an_accepted_dlpack_capsule_is_consumed_and_its_deleter_called_once(versioned):
    fake = FakeDLPack(versioned=versioned)
    if cuda.is_available():
        view = cuda.as_device_array(fake.capsule)
        assert (view.ptr, view.shape, view.dtype, view.owns_memory) == (NOWHERE, (4, 5), np.uint16, False)
        assert fake.deleted == 0, "the view still uses the tensor"
        del view
        gc.collect()
    else:
        with pytest.raises(NativeOpError, match="no usable CUDA device"):
            cuda.as_device_array(fake.capsule)
    assert fake.name == "used_" + ("dltensor_versioned" if versioned else "dltensor")
    assert fake.deleted == 1


def test_stream_handles_are_read_from_each_library_by_their_attributes():
    class TorchLike:
        cuda_stream = 0x1234

        class device:
            index = 1

    class CupyLike:
        ptr, device_id = 0x5678, 2

    class PycudaLike:
        handle = 0x9ABC

    class Protocol:
        def __cuda_stream__(self):
            return (0, 0xDEF0)

    assert cuda._stream_handle(TorchLike()) == (0x1234, 1)
    assert cuda._stream_handle(CupyLike()) == (0x5678, 2)
    assert cuda._stream_handle(PycudaLike()) == (0x9ABC, None)
    assert cuda._stream_handle(Protocol()) == (0xDEF0, None)
    assert cuda._stream_handle(np.uint64(7)) == (7, None)
    with pytest.raises(TypeError, match="cannot find a CUDA stream handle"):
        cuda._stream_handle("stream")
    assert cuda.as_stream(None) is None


def test_workspace_size_is_host_arithmetic():
    if not kernels().build_info()["cuda"]:
        pytest.skip("radedge was built without CUDA")
    small = preprocess_cuda_workspace_bytes(100, 100, PreprocessSpec(64, 64))
    large = preprocess_cuda_workspace_bytes(3000, 3000, PreprocessSpec(512, 512))
    assert small % 256 == 0 and large % 256 == 0
    assert 0 < small < large
    with pytest.raises(ValueError):
        preprocess_cuda_workspace_bytes(0, 100, PreprocessSpec(64, 64))


# --- with a GPU --------------------------------------------------------------------------------

DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "int64", "uint64", "float16", "float32", "float64"]


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 3, 4)], ids=str)
def test_numpy_round_trip(dtype, shape):
    rng = np.random.default_rng(len(shape))
    host = np.asarray(rng.random(shape) * 100).astype(dtype)
    array = cuda.DeviceArray.from_numpy(host)
    assert (array.shape, array.dtype, array.nbytes, array.owns_memory) == (host.shape, host.dtype, host.nbytes, True)
    assert array.strides == host.strides or host.size == 0
    assert array.stream is None, "a copy without a stream has finished on return"
    back = array.to_numpy()
    assert back.dtype == host.dtype and back.shape == host.shape
    np.testing.assert_array_equal(back, host)


@pytest.mark.needs_cuda
def test_copies_refuse_other_shapes_and_dtypes():
    array = cuda.DeviceArray.empty((3, 4), "float32")
    with pytest.raises(ValueError, match=r"host array is float32 \(4, 3\) but the device array float32 \(3, 4\)"):
        array.copy_from_numpy(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="host array is float64"):
        array.copy_to_numpy(np.zeros((3, 4), np.float64))
    with pytest.raises(ValueError, match="read-only"):
        frozen = np.zeros((3, 4), np.float32)
        frozen.flags.writeable = False
        array.copy_to_numpy(frozen)


@pytest.mark.needs_cuda
def test_pinned_staging_round_trip_on_a_stream():
    stream = cuda.Stream()
    staging = cuda.PinnedArray.empty((512, 384), "uint16")
    view = staging.numpy()
    assert view.ctypes.data == staging.ptr and np.asarray(staging).ctypes.data == staging.ptr
    rng = np.random.default_rng(3)
    expected = rng.integers(0, 65535, (512, 384)).astype(np.uint16)
    view[...] = expected
    device = cuda.DeviceArray.empty((512, 384), "uint16", stream=stream)
    device.copy_from_numpy(staging, stream=stream)
    assert device.stream is stream
    back = cuda.PinnedArray.empty((512, 384), "uint16")
    device.copy_to_numpy(back.numpy(), stream=stream)
    stream.synchronize()
    np.testing.assert_array_equal(back.numpy(), expected)
    assert stream.query()


@pytest.mark.needs_cuda
def test_cuda_array_interface_export():
    stream = cuda.Stream()
    array = cuda.DeviceArray.from_numpy(np.arange(12, dtype=np.float16).reshape(3, 4), stream=stream)
    interface = array.__cuda_array_interface__
    assert interface["version"] == 3
    assert interface["shape"] == (3, 4) and interface["typestr"] == "<f2" and interface["strides"] is None
    assert interface["data"] == (array.ptr, False)
    assert interface["stream"] == stream.handle, "consumers wait for the stream the copy was enqueued on"
    stream.synchronize()
    array.stream = None
    assert array.__cuda_array_interface__["stream"] is None


@pytest.mark.needs_cuda
def test_dlpack_export_is_consumed_zero_copy_and_keeps_the_memory_alive():
    host = np.arange(24, dtype=np.int32).reshape(4, 6)
    array = cuda.DeviceArray.from_numpy(host)
    assert array.__dlpack_device__() == (2, array.device)
    capsule = array.__dlpack__(max_version=(1, 0))
    assert capsule_name(capsule) == b"dltensor_versioned"
    pointer = array.ptr
    del array
    gc.collect()
    view = cuda.as_device_array(capsule)  # the capsule alone keeps the memory
    assert view.ptr == pointer and view.shape == (4, 6) and not view.owns_memory
    assert capsule_name(capsule) == b"used_dltensor_versioned"
    del capsule
    gc.collect()
    np.testing.assert_array_equal(view.to_numpy(), host)
    legacy = cuda.DeviceArray.from_numpy(host).__dlpack__()
    assert capsule_name(legacy) == b"dltensor"
    del legacy  # dies unconsumed: its destructor releases the tensor
    gc.collect()


@pytest.mark.needs_cuda
def test_dlpack_export_refuses_what_it_cannot_honour():
    array = cuda.DeviceArray.from_numpy(np.zeros(4, np.float32))
    with pytest.raises(BufferError, match="without copying"):
        array.__dlpack__(copy=True)
    with pytest.raises(BufferError, match="lives on CUDA device"):
        array.__dlpack__(dl_device=(1, 0))
    with pytest.raises(ValueError, match="stream 0"):
        array.__dlpack__(stream=0)
    read_only = cuda.as_device_array(FakeCudaArray(shape=(4,), typestr="<f4", data=(array.ptr, True)))
    with pytest.raises(BufferError, match="read-only"):
        read_only.__dlpack__()
    assert capsule_name(read_only.__dlpack__(max_version=(1, 0))) == b"dltensor_versioned"


@pytest.mark.needs_cuda
def test_a_view_keeps_its_exporter_alive():
    host = np.arange(10, dtype=np.uint8)
    array = cuda.DeviceArray.from_numpy(host)
    view = cuda.as_device_array(array)
    assert view.ptr == array.ptr and not view.owns_memory
    del array
    gc.collect()
    np.testing.assert_array_equal(view.to_numpy(), host)


@pytest.mark.needs_cuda
def test_host_pointers_behind_a_cuda_array_interface_are_refused():
    host = np.zeros((4, 5), np.uint16)
    with pytest.raises(ValueError, match="points to host memory"):
        cuda.as_device_array(FakeCudaArray(data=(host.ctypes.data, False)))


@pytest.mark.needs_cuda
def test_graph_capture_refuses_the_legacy_stream_and_discards_failed_captures():
    with pytest.raises(ValueError, match="legacy default stream"):
        with cuda.Graph().capture(None):
            pass
    stream = cuda.Stream()
    graph = cuda.Graph()
    with pytest.raises(NativeOpError, match="cudaStreamSynchronize"):
        with graph.capture(stream):
            stream.synchronize()  # waiting for a stream that is being captured is refused by CUDA
    assert not graph.capturing and not graph.instantiated and not stream.capturing
    array = cuda.DeviceArray.from_numpy(np.arange(5, dtype=np.float32), stream=stream)
    np.testing.assert_array_equal(array.to_numpy(stream), np.arange(5, dtype=np.float32))


def _preprocess_case(rng, rows=900, columns=700, dtype="uint16"):
    pixels = _pixels(rng, rows, columns, dtype)
    lut = _lut(rng)
    spec = PreprocessSpec(
        256, 192, "letterbox", pad_value=0.3, mean=(0.45, 0.5, 0.55), std=(0.2, 0.25, 0.3), channels=3
    )
    return pixels, lut, spec


@pytest.mark.needs_cuda
def test_preprocess_on_device_arrays_matches_the_cpu_op():
    rng = np.random.default_rng(5)
    pixels, lut, spec = _preprocess_case(rng)
    stream = cuda.Stream()
    device_pixels = cuda.DeviceArray.from_numpy(pixels, stream=stream)
    device_lut = cuda.DeviceArray.from_numpy(lut, stream=stream)
    out = cuda.DeviceArray.empty((2, *spec.shape), "float32", stream=stream)
    geometry = preprocess_into(device_pixels, device_lut, 0, out, 1, spec, device="cuda", stream=stream)
    assert out.stream is stream
    expected = _cpu_result(pixels, lut, 0, spec)
    np.testing.assert_allclose(out.to_numpy(stream)[1], expected[0], **_tolerance(spec))
    assert geometry == preprocess(pixels, lut, 0, spec)[1]


@pytest.mark.needs_cuda
def test_preprocess_reads_padded_rows_zero_copy():
    rng = np.random.default_rng(6)
    wide = _pixels(rng, 300, 512, "int16")
    lut = _lut(rng)
    spec = PreprocessSpec(64, 64, "stretch")
    device_wide = cuda.DeviceArray.from_numpy(wide)
    crop = cuda.as_device_array(
        FakeCudaArray(shape=(300, 400), typestr="<i2", strides=(1024, 2), data=(device_wide.ptr + 2 * 50, False))
    )
    out = cuda.DeviceArray.empty((1, *spec.shape), "float32")
    preprocess_into(crop, cuda.DeviceArray.from_numpy(lut), -1024, out, 0, spec, device="cuda")
    expected = _cpu_result(np.ascontiguousarray(wide[:, 50:450]), lut, -1024, spec)
    np.testing.assert_allclose(out.to_numpy(), expected, **_tolerance(spec))


@pytest.mark.needs_cuda
def test_streams_and_events_order_work():
    rng = np.random.default_rng(7)
    pixels, lut, spec = _preprocess_case(rng, 3000, 3000)
    producer, consumer = cuda.Stream(), cuda.Stream()
    device_pixels = cuda.DeviceArray.from_numpy(pixels)
    device_lut = cuda.DeviceArray.from_numpy(lut)
    out = cuda.DeviceArray.from_numpy(np.full((1, *spec.shape), np.nan, np.float32))
    start = producer.record()
    for _ in range(20):  # long enough that an unordered read would see the NaNs
        preprocess_into(device_pixels, device_lut, 0, out, 0, spec, device="cuda", stream=producer)
    done = producer.record()
    consumer.wait(done)
    out.stream = None  # so that only the event orders the consumer's copy
    result = cuda.PinnedArray.empty(out.shape, "float32")
    out.copy_to_numpy(result.numpy(), stream=consumer)
    consumer.synchronize()
    assert done.query() and start.elapsed_ms(done) > 0
    np.testing.assert_allclose(result.numpy(), _cpu_result(pixels, lut, 0, spec), **_tolerance(spec))
    # The array's own stream orders a copy on another stream without an explicit event.
    again = cuda.DeviceArray.from_numpy(np.full((1, *spec.shape), np.nan, np.float32))
    for _ in range(20):
        preprocess_into(device_pixels, device_lut, 0, again, 0, spec, device="cuda", stream=producer)
    assert again.stream is producer
    np.testing.assert_allclose(again.to_numpy(consumer), result.numpy(), rtol=0, atol=0)


@pytest.mark.needs_cuda
def test_graph_replays_preprocess_100_times_like_eager():
    rng = np.random.default_rng(8)
    pixels, lut, spec = _preprocess_case(rng)
    stream = cuda.Stream()
    device_pixels = cuda.DeviceArray.from_numpy(pixels, stream=stream)
    device_lut = cuda.DeviceArray.from_numpy(lut, stream=stream)
    workspace = cuda.DeviceArray.empty(preprocess_cuda_workspace_bytes(*pixels.shape, spec), "uint8", stream=stream)
    eager = cuda.DeviceArray.empty((1, *spec.shape), "float32", stream=stream)
    preprocess_into(device_pixels, device_lut, 0, eager, 0, spec, device="cuda", stream=stream, workspace=workspace)
    expected = eager.to_numpy(stream)

    out = cuda.DeviceArray.from_numpy(np.full((1, *spec.shape), np.nan, np.float32), stream=stream)
    graph = cuda.Graph()
    with graph.capture(stream):
        preprocess_into(device_pixels, device_lut, 0, out, 0, spec, device="cuda", stream=stream, workspace=workspace)
    assert graph.instantiated
    stream.synchronize()
    assert np.isnan(out.to_numpy(stream)).all(), "capturing records the work without running it"
    for _ in range(100):
        graph.launch(stream)
    np.testing.assert_array_equal(out.to_numpy(stream), expected)

    # A replay reads whatever the captured buffers hold when it runs.
    other = _pixels(rng, *pixels.shape)
    device_pixels.copy_from_numpy(other, stream=stream)
    graph.launch(stream)
    preprocess_into(device_pixels, device_lut, 0, eager, 0, spec, device="cuda", stream=stream, workspace=workspace)
    np.testing.assert_array_equal(out.to_numpy(stream), eager.to_numpy(stream))
    np.testing.assert_allclose(out.to_numpy(stream), _cpu_result(other, lut, 0, spec), **_tolerance(spec))


@pytest.mark.needs_cuda
def test_arrays_on_another_device_are_refused():
    if kernels().cuda_device_count()[0] < 2:
        pytest.skip("needs two CUDA devices")
    array = cuda.DeviceArray.empty((4,), "float32", device=1)
    with pytest.raises(ValueError, match="is on CUDA device 1 but the op runs on device 0"):
        cuda.as_device_array(array, stream=cuda.Stream(device=0))


@needs_torch_cuda
@pytest.mark.needs_cuda
def test_torch_tensor_in_preprocess_torch_tensor_out_without_copies():
    import torch

    rng = np.random.default_rng(9)
    pixels, lut, spec = _preprocess_case(rng)
    torch_stream = torch.cuda.Stream()
    with torch.cuda.stream(torch_stream):
        # int16 holds the 12-bit values; torch has no uint16 arithmetic on every version.
        device_pixels = torch.from_numpy(pixels.astype(np.int16)).cuda()
        device_lut = torch.from_numpy(lut).cuda()
        out = torch.empty((1, *spec.shape), dtype=torch.float16, device="cuda")
        pointer = out.data_ptr()
        half = dataclasses.replace(spec, dtype="float16")
        preprocess_into(device_pixels, device_lut, 0, out, 0, half, device="cuda", stream=torch_stream)
        assert out.data_ptr() == pointer
        result = (out.float() * 1).cpu().numpy()  # torch reads it on the same stream
    np.testing.assert_allclose(result, _cpu_result(pixels.astype(np.int16), lut, 0, half), **_tolerance(half))


@needs_torch_cuda
@pytest.mark.needs_cuda
def test_torch_exchange_both_ways_shares_memory():
    import torch

    tensor = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    view = cuda.as_device_array(tensor)
    assert view.ptr == tensor.data_ptr() and view.shape == (3, 4) and view.strides == (16, 4)
    transposed = cuda.as_device_array(tensor.t())
    assert transposed.strides == (4, 16) and not transposed.is_c_contiguous
    del tensor
    gc.collect()
    np.testing.assert_array_equal(view.to_numpy(), np.arange(12, dtype=np.float32).reshape(3, 4))

    host = np.arange(6, dtype=np.int64)
    array = cuda.DeviceArray.from_numpy(host)
    shared = torch.from_dlpack(array)
    assert shared.data_ptr() == array.ptr and shared.device.type == "cuda"
    assert torch.as_tensor(array, device="cuda").data_ptr() == array.ptr
    shared.add_(1)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(array.to_numpy(), host + 1)
    del array
    gc.collect()
    np.testing.assert_array_equal(shared.cpu().numpy(), host + 1)


@needs_torch_cuda
@pytest.mark.needs_cuda
def test_wrapped_torch_streams_are_borrowed_not_destroyed():
    import torch

    torch_stream = torch.cuda.Stream()
    wrapped = cuda.Stream.wrap(torch_stream)
    assert wrapped.handle == torch_stream.cuda_stream and not wrapped.owned
    assert wrapped.device == torch_stream.device.index
    del wrapped
    gc.collect()
    with torch.cuda.stream(torch_stream):
        value = (torch.ones(4, device="cuda") * 2).sum().item()
    torch_stream.synchronize()
    assert value == 8.0
    assert cuda.Stream.wrap(torch.cuda.current_stream()).handle == torch.cuda.current_stream().cuda_stream


@pytest.mark.needs_cuda
def test_cupy_exchange_both_ways_shares_memory():
    cupy = pytest.importorskip("cupy")
    rng = np.random.default_rng(10)
    pixels, lut, spec = _preprocess_case(rng, 400, 300)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        device_pixels = cupy.asarray(pixels)
        device_lut = cupy.asarray(lut)
        out = cupy.empty((1, *spec.shape), dtype=cupy.float32)
        preprocess_into(device_pixels, device_lut, 0, out, 0, spec, device="cuda", stream=stream)
        result = cupy.asnumpy(out)
    np.testing.assert_allclose(result, _cpu_result(pixels, lut, 0, spec), **_tolerance(spec))

    array = cuda.DeviceArray.from_numpy(lut)
    assert cupy.asarray(array).data.ptr == array.ptr
    assert cupy.from_dlpack(array).data.ptr == array.ptr
    assert cuda.as_device_array(device_lut).ptr == device_lut.data.ptr


@pytest.mark.needs_cuda
@pytest.mark.slow
def test_compute_sanitizer_finds_no_memory_errors(tmp_path):
    sanitizer = shutil.which("compute-sanitizer") or next(
        (str(p) for p in Path("/usr/local/cuda/bin").glob("compute-sanitizer") if p.exists()), None
    )
    if sanitizer is None:
        pytest.skip("compute-sanitizer (CUDA toolkit) is not installed")
    script = tmp_path / "exercise.py"
    script.write_text(
        textwrap.dedent(
            """
            import gc
            import numpy as np
            from radedge import cuda
            from radedge.ops.preprocess import PreprocessSpec, preprocess_cuda_workspace_bytes, preprocess_into

            rng = np.random.default_rng(0)
            pixels = rng.integers(0, 4096, (611, 433)).astype(np.uint16)
            lut = rng.random(4096).astype(np.float32)
            spec = PreprocessSpec(128, 96, "letterbox", channels=3, dtype="float16")
            stream = cuda.Stream()
            staging = cuda.PinnedArray.empty(pixels.shape, "uint16")
            staging.numpy()[...] = pixels
            device_pixels = cuda.DeviceArray.from_numpy(staging, stream=stream)
            device_lut = cuda.DeviceArray.from_numpy(lut, stream=stream)
            out = cuda.DeviceArray.empty((2, *spec.shape), "float16", stream=stream)
            preprocess_into(device_pixels, device_lut, 0, out, 1, spec, device="cuda", stream=stream)
            workspace = cuda.DeviceArray.empty(preprocess_cuda_workspace_bytes(*pixels.shape, spec), "uint8")
            graph = cuda.Graph()
            with graph.capture(stream):
                preprocess_into(device_pixels, device_lut, 0, out, 0, spec, device="cuda", stream=stream,
                                workspace=workspace)
            for _ in range(3):
                graph.launch(stream)
            view = cuda.as_device_array(out.__dlpack__(max_version=(1, 0)))
            result = view.to_numpy(stream)
            assert np.array_equal(result[0], result[1])
            del view, out, graph
            gc.collect()
            print("exercised")
            """
        )
    )
    completed = subprocess.run(
        [sanitizer, "--tool", "memcheck", "--error-exitcode", "1", sys.executable, str(script)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert "exercised" in completed.stdout
    assert "ERROR SUMMARY: 0 errors" in completed.stdout + completed.stderr


def _framework_with_cuda() -> bool:
    """Whether torch or CuPy, which the zero-copy example hands memory to, can use the GPU."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return True
    if importlib.util.find_spec("cupy") is not None:
        import cupy

        try:
            return cupy.cuda.runtime.getDeviceCount() > 0
        except cupy.cuda.runtime.CUDARuntimeError:
            return False
    return False


@pytest.mark.needs_cuda
def test_zero_copy_example_runs():
    if not _framework_with_cuda():
        pytest.skip("neither torch nor CuPy is installed with CUDA support here")
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "examples" / "zero_copy_interop.py")], capture_output=True, text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "same memory" in completed.stdout


@without_gpu
def test_zero_copy_example_explains_and_exits_0_without_a_gpu():
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "examples" / "zero_copy_interop.py")], capture_output=True, text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "no usable CUDA device" in completed.stdout
