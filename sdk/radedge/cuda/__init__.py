"""CUDA device memory, streams, events and graphs, and zero-copy exchange with torch, CuPy and pycuda.

radedge owns its device memory in its native module (``radedge._kernels``), so a GPU pipeline
keeps pixels on the device from upload to decoded result without pycuda:

    from radedge import cuda
    stream = cuda.Stream()
    pixels = cuda.DeviceArray.from_numpy(image.pixels, stream=stream)   # uint16 [rows, columns]
    lut = cuda.DeviceArray.from_numpy(table, stream=stream)             # float32 [entries]
    out = cuda.DeviceArray.empty((1, 3, 512, 512), "float16", stream=stream)
    preprocess_into(pixels, lut, first, out, 0, spec, device="cuda", stream=stream)
    tensor = torch.from_dlpack(out)          # the same memory, ordered after `stream`

Exchange, both ways, without copying:

- In: any object with ``__cuda_array_interface__`` (versions 2 and 3; a v3 ``stream`` is waited
  for) or DLPack (``__dlpack__`` / ``__dlpack_device__``, DLPack 0.x and 1.x capsules; the
  exporter is asked to order its work before radedge's stream) can be an op's input or output:
  torch CUDA tensors, CuPy arrays, pycuda GPUArrays, radedge's own DeviceArray, or a DLPack
  capsule. ``as_device_array(obj)`` makes a DeviceArray view that keeps ``obj`` alive.
- Out: DeviceArray exports ``__cuda_array_interface__`` v3 and ``__dlpack__`` (a versioned
  DLPack 1.1 capsule when the consumer asks for one), so ``torch.from_dlpack``,
  ``torch.as_tensor(..., device="cuda")`` and ``cupy.asarray`` share its memory.

Streams: ``None`` always means the legacy default stream. ``Stream()`` creates a non-blocking
stream that radedge destroys; ``Stream.wrap(s)`` borrows torch's
(``torch.cuda.current_stream()``), CuPy's, pycuda's or a raw ``cudaStream_t`` and never destroys
it. A DeviceArray's ``stream`` is the stream whose work its contents wait for: radedge's copies
set it, and consumers on another stream first wait for it.

Lifetimes: work is enqueued and returns at once. As with every CUDA library, keep the arrays an
enqueued op reads or writes alive and unchanged until its stream has run it; page-locked
(``PinnedArray``) sources of asynchronous copies likewise.

pycuda: its ``pycuda.autoinit`` creates a context of its own, which radedge's kernels (running in
the device's primary context) cannot address; use ``import pycuda.autoprimaryctx`` instead.

Importing this module imports neither torch nor CuPy nor pycuda; it recognises their objects by
the attributes they expose. Without a usable GPU, or in a radedge built without CUDA, every entry
point raises NativeOpError saying why; the CPU ops are unaffected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._native import kernels, require_device
from ..errors import NativeOpError, RadedgeError

__all__ = [
    "DeviceArray",
    "Event",
    "Graph",
    "PinnedArray",
    "Stream",
    "as_device_array",
    "as_stream",
    "device_properties",
    "is_available",
    "is_device_array",
    "mark_written",
]

# DLPack device types (DLDeviceType) whose memory CUDA kernels can read.
_DLPACK_CUDA = 2
_DLPACK_CUDA_MANAGED = 13


def device_properties(device: int | None = None) -> dict:
    """What a CUDA device is (None: the current one): ``name``, ``compute_capability`` (major,
    minor), ``multiprocessors``, ``total_memory_bytes``, ``memory_clock_khz`` (peak, 0 where the
    driver does not report it), ``memory_bus_width_bits``, and ``driver_version`` /
    ``runtime_version`` as CUDA's integers (13000 is 13.0). Raises NativeOpError without a device."""
    _require_cuda("device_properties")
    with _native_errors():
        return kernels().cuda_device_properties(_device_argument(device))


def is_available() -> bool:
    """True when radedge was built with CUDA and a CUDA device is visible to this process."""
    try:
        count, _ = kernels().cuda_device_count()
    except RadedgeError:
        return False
    return count > 0


@contextlib.contextmanager
def _native_errors() -> Iterator[None]:
    """Turns the native module's CudaError into NativeOpError; ValueErrors pass unchanged."""
    try:
        yield
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc


def _require_cuda(what: str) -> None:
    require_device(f"radedge.cuda.{what}", "cuda")


def _device_argument(device: int | None) -> int:
    return -1 if device is None else int(device)


def is_device_array(obj: Any) -> bool:
    """Whether ``obj`` exports CUDA memory (``__cuda_array_interface__``, DLPack on a CUDA device, or
    a DLPack capsule), judged from its metadata alone: no CUDA call is made."""
    if type(obj).__name__ == "PyCapsule":
        return True
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        try:
            device_type = int(obj.__dlpack_device__()[0])
        except Exception:  # an exporter that cannot say where it lives is no device array for us
            return False
        if device_type in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
            return True
    # torch raises AttributeError for a CPU tensor's __cuda_array_interface__, so hasattr says False.
    return hasattr(obj, "__cuda_array_interface__")


def _declared_shape(obj: Any) -> tuple[int, ...] | None:
    """The shape a CUDA array declares (its ``shape`` attribute, else its ``__cuda_array_interface__``),
    read without a CUDA call; None where it declares none (a DLPack capsule) or not in integers."""
    shape = getattr(obj, "shape", None)
    if shape is None:
        interface = getattr(obj, "__cuda_array_interface__", None)
        shape = interface.get("shape") if isinstance(interface, dict) else None
    try:
        return tuple(int(n) for n in shape) if shape is not None else None
    except (TypeError, ValueError):
        return None


def _stream_device(stream: Any) -> int | None:
    """The device a stream object names: CuPy's device_id, torch's device_index or device.index."""
    for attribute in ("device_id", "device_index"):
        value = getattr(stream, attribute, None)
        if isinstance(value, (int, np.integer)):
            return int(value)
    index = getattr(getattr(stream, "device", None), "index", None)
    return int(index) if isinstance(index, (int, np.integer)) else None


def _stream_handle(stream: Any) -> tuple[int, int | None]:
    """(cudaStream_t as an int, device or None) of a stream object from any library, by duck typing."""
    if isinstance(stream, (int, np.integer)) and not isinstance(stream, bool):
        return int(stream), None
    if hasattr(stream, "__cuda_stream__"):  # the CUDA stream protocol of cuda-python (and recent CuPy, torch)
        _, handle = stream.__cuda_stream__()
        return int(handle), _stream_device(stream)
    if hasattr(stream, "cuda_stream"):  # torch.cuda.Stream / ExternalStream
        return int(stream.cuda_stream), _stream_device(stream)
    if hasattr(stream, "ptr") and hasattr(stream, "device_id"):  # cupy.cuda.Stream
        return int(stream.ptr), _stream_device(stream)
    if hasattr(stream, "handle"):  # pycuda.driver.Stream
        return int(stream.handle), None
    raise TypeError(
        f"cannot find a CUDA stream handle in a {type(stream).__module__}.{type(stream).__qualname__}; pass a "
        "radedge.cuda.Stream, torch.cuda.Stream, CuPy or pycuda stream, an object with __cuda_stream__, or an int "
        "cudaStream_t"
    )


class Event:
    """A CUDA event: recorded on a stream, waited for by the host or by other streams, and (with
    ``timing``) a clock: ``start.elapsed_ms(end)``.

    ``device``: CUDA device ordinal (None: the current one). ``timing=False`` makes a cheaper marker
    that only orders work.
    """

    __slots__ = ("_native",)

    def __init__(self, device: int | None = None, timing: bool = True):
        _require_cuda("Event")
        with _native_errors():
            self._native = kernels().Event(_device_argument(device), bool(timing))

    def record(self, stream: Any = None) -> Event:
        """Captures the work enqueued so far on ``stream`` (None: the legacy default stream); returns self."""
        with _native_errors():
            self._native.record(as_stream(stream))
        return self

    def synchronize(self) -> None:
        """Waits until the recorded work has run."""
        with _native_errors():
            self._native.synchronize()

    def query(self) -> bool:
        """True when the recorded work has run (or nothing was recorded)."""
        with _native_errors():
            return self._native.query()

    def elapsed_ms(self, end: Event) -> float:
        """Milliseconds of GPU time from this event to ``end``; waits for ``end`` first."""
        with _native_errors():
            return self._native.elapsed_ms(end._native)

    @property
    def device(self) -> int:
        return self._native.device

    @property
    def timing(self) -> bool:
        return self._native.timing

    @property
    def recorded(self) -> bool:
        return self._native.recorded


class Stream:
    """A CUDA stream: ``Stream()`` creates a non-blocking one (destroyed with this object);
    ``Stream.wrap(s)`` borrows one that torch, CuPy, pycuda or other code created and destroys.

    ``device``: CUDA device ordinal (None: the current one). ``priority``: lower values run first
    (CUDA's range is about -5 to 0; values outside it are clamped).
    """

    __slots__ = ("_native", "_external")

    def __init__(self, device: int | None = None, priority: int = 0):
        _require_cuda("Stream")
        with _native_errors():
            self._native = kernels().Stream(_device_argument(device), int(priority))
        self._external = None

    @classmethod
    def wrap(cls, stream: Any, device: int | None = None) -> Stream:
        """Borrows ``stream``: a torch.cuda.Stream (e.g. ``torch.cuda.current_stream()``), a CuPy or pycuda
        stream, an object with ``__cuda_stream__``, or a cudaStream_t as an int (0 or 1: the legacy default
        stream, 2: the per-thread default stream). Keeps ``stream`` alive, never destroys it. ``device``
        overrides the device read from the object (None: the object's, else the current device)."""
        if isinstance(stream, Stream):
            return stream
        handle, found_device = _stream_handle(stream)
        _require_cuda("Stream.wrap")
        wrapped = cls.__new__(cls)
        with _native_errors():
            on = device if device is not None else found_device
            wrapped._native = kernels().Stream.wrap(handle, _device_argument(on))
        wrapped._external = None if isinstance(stream, (int, np.integer)) else stream
        return wrapped

    @property
    def handle(self) -> int:
        """The cudaStream_t as an int (0: the legacy default stream)."""
        return self._native.handle

    @property
    def device(self) -> int:
        """CUDA device ordinal; -1 for a borrowed stream used on whichever device is current."""
        return self._native.device

    @property
    def owned(self) -> bool:
        """True when radedge created the stream and destroys it."""
        return self._native.owned

    @property
    def capturing(self) -> bool:
        """True while a Graph capture records this stream's work."""
        with _native_errors():
            return self._native.capturing

    def __cuda_stream__(self) -> tuple[int, int]:
        """The CUDA stream protocol (cuda-python): (version 0, handle)."""
        return (0, self.handle)

    def synchronize(self) -> None:
        """Waits until all work enqueued so far has run."""
        with _native_errors():
            self._native.synchronize()

    def query(self) -> bool:
        """True when all work enqueued so far has run."""
        with _native_errors():
            return self._native.query()

    def wait(self, event: Event) -> None:
        """Work enqueued on this stream from now on runs after ``event``'s recorded work."""
        with _native_errors():
            self._native.wait_event(event._native)

    def wait_stream(self, other: Any) -> None:
        """Work enqueued on this stream from now on runs after the work enqueued so far on ``other``."""
        with _native_errors():
            self._native.wait_stream(as_stream(other)._native if other is not None else Stream.wrap(0)._native)

    def record(self, event: Event | None = None) -> Event:
        """Records ``event`` (default: a new timing event on this stream's device) here and returns it."""
        if event is None:
            event = Event(None if self.device < 0 else self.device)
        return event.record(self)

    def __repr__(self) -> str:
        kind = "owned" if self.owned else "borrowed"
        return f"radedge.cuda.Stream(handle={self.handle:#x}, device={self.device}, {kind})"


def as_stream(stream: Any) -> Stream | None:
    """None stays None (the legacy default stream); a radedge Stream is returned as is; anything else
    is borrowed with ``Stream.wrap``."""
    if stream is None or isinstance(stream, Stream):
        return stream
    return Stream.wrap(stream)


class Graph:
    """One executable CUDA graph, recorded by capturing a stream and replayed with ``launch``:

        graph = radedge.cuda.Graph()
        with graph.capture(stream):
            preprocess_into(pixels, lut, first, out, 0, spec, device="cuda", stream=stream, workspace=workspace)
        for image in images:
            pixels.copy_from_numpy(image, stream=stream)   # new input, same buffer
            graph.launch(stream)

    What runs inside ``capture`` is recorded, not run, and each launch replays it with the same
    pointers and parameters. So the captured work must be allocation-free and synchronisation-free:
    no device or pinned allocations or frees, no waits for the host, no copies from pageable host
    memory (CUDA refuses these during a capture). radedge's CUDA ops qualify when given a
    ``workspace`` (they only enqueue kernels on the stream). Every buffer the graph touches must stay
    allocated, at the same address, for as long as the graph is launched: write new inputs into the
    same arrays. Ordering with work outside the graph is set where the graph is launched (the
    exporters' streams are not waited for during the capture).
    """

    __slots__ = ("_native",)

    def __init__(self):
        _require_cuda("Graph")
        with _native_errors():
            self._native = kernels().Graph()

    @contextlib.contextmanager
    def capture(self, stream: Any, mode: str = "thread_local") -> Iterator[Graph]:
        """Records the work enqueued on ``stream`` (not the legacy default stream) inside the block, then
        instantiates it, replacing what this graph held. ``mode``: CUDA's capture mode: "thread_local"
        (refuse unsafe calls from this thread), "global" (from any thread) or "relaxed". An exception
        inside the block discards the capture and propagates."""
        stream = as_stream(stream)
        if stream is None:
            raise ValueError(
                "Graph.capture needs a stream other than the legacy default stream (CUDA cannot capture it); "
                "create one with radedge.cuda.Stream()"
            )
        with _native_errors():
            self._native.begin_capture(stream, mode)
        try:
            yield self
        except BaseException:
            self._native.abandon_capture()
            raise
        with _native_errors():
            self._native.end_capture()

    def launch(self, stream: Any = None) -> None:
        """Enqueues one replay on ``stream`` (None: the legacy default stream), a stream of the captured device."""
        with _native_errors():
            self._native.launch(as_stream(stream))

    @property
    def instantiated(self) -> bool:
        """True once a capture has ended successfully."""
        return self._native.instantiated

    @property
    def capturing(self) -> bool:
        return self._native.capturing


def _dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.byteorder == ">":
        dtype = dtype.newbyteorder("<")
    return dtype


class DeviceArray:
    """An n-dimensional array in CUDA device memory, owning it (``empty``, ``from_numpy``) or viewing
    another library's (``as_device_array``), whose owner it keeps alive.

    ``shape``, ``dtype`` (numpy dtype: bool, int8-64, uint8-64, float16, float32, float64), ``strides``
    (bytes), ``device`` (CUDA ordinal), ``ptr`` (device address of element 0). Exports
    ``__cuda_array_interface__`` v3 and DLPack. ``stream``: the stream whose work the contents wait
    for (None: ready); consumers on other streams wait for it.
    """

    __slots__ = ("_native", "_stream")

    def __init__(self, shape: int | Sequence[int], dtype: Any, device: int | None = None, stream: Any = None):
        """Uninitialised, C-contiguous device memory (the same as ``DeviceArray.empty``)."""
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(n) for n in shape)
        typestr = _dtype(dtype).str
        stream = as_stream(stream)
        if device is None and stream is not None and stream.device >= 0:
            device = stream.device
        _require_cuda("DeviceArray")
        with _native_errors():
            self._native = kernels().DeviceArray.empty(list(shape), typestr, _device_argument(device))
        self._stream = None
        self.stream = stream

    @classmethod
    def _wrap(cls, native: Any, stream: Stream | None) -> DeviceArray:
        array = cls.__new__(cls)
        array._native = native
        array._stream = stream
        return array

    @classmethod
    def empty(
        cls, shape: int | Sequence[int], dtype: Any, device: int | None = None, stream: Any = None
    ) -> DeviceArray:
        """Uninitialised, C-contiguous. ``device``: None: the stream's device, else the current one.
        ``stream``: becomes the array's stream."""
        return cls(shape, dtype, device=device, stream=stream)

    @classmethod
    def from_numpy(cls, array: Any, stream: Any = None, device: int | None = None) -> DeviceArray:
        """A device copy of a numpy array (or anything numpy.asarray takes). With ``stream`` None the
        copy has finished on return; with a stream it is enqueued there (a page-locked source must then
        stay unchanged until the stream has run it; pageable memory is staged by CUDA before return)."""
        host = np.asarray(array)
        result = cls.empty(host.shape, host.dtype, device=device, stream=stream)
        result.copy_from_numpy(host, stream=stream)
        return result

    def copy_from_numpy(self, array: Any, stream: Any = None) -> DeviceArray:
        """Copies a host array of the same shape and dtype in, after the work this array waits for.
        ``stream`` None: the legacy default stream, and the copy has finished on return; else enqueued
        on ``stream``, which becomes this array's stream. Returns self."""
        host = np.asarray(array)
        if host.dtype.byteorder == ">":
            host = host.astype(_dtype(host.dtype))
        if not host.flags.c_contiguous:
            # A contiguous copy in pageable memory, which CUDA stages before the call returns.
            host = np.ascontiguousarray(host)
        stream = as_stream(stream)
        with _native_errors():
            self._native.copy_from_host(host, stream, stream is None)
        self._stream = stream
        return self

    def copy_from(self, source: Any, stream: Any = None) -> DeviceArray:
        """Enqueues a device-to-device copy of ``source`` (a C-contiguous CUDA array of the same shape
        and dtype from any exporter) into this array on ``stream`` (None: the legacy default stream),
        after the work this array waits for; ``stream`` becomes this array's stream. Returns self."""
        stream = as_stream(stream)
        with _native_errors():
            self._native.copy_from_device(source, stream)
        self._stream = stream if stream is not None else Stream.wrap(0)
        return self

    def copy_to_numpy(self, out: np.ndarray, stream: Any = None) -> np.ndarray:
        """Copies into ``out`` (writable, C-contiguous, same shape and dtype) after the work this array
        waits for. ``stream`` None: finished on return; else enqueued on ``stream`` (read ``out`` only
        after the stream has run it: asynchronous for page-locked ``out``). Returns ``out``."""
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array; got {type(out).__name__}")
        stream = as_stream(stream)
        with _native_errors():
            self._native.copy_to_host(out, stream, stream is None)
        return out

    def to_numpy(self, stream: Any = None) -> np.ndarray:
        """A new numpy array with the contents, copied on ``stream`` (None: the legacy default stream)
        after the work this array waits for; the copy has finished on return."""
        out = np.empty(self.shape, self.dtype)
        stream = as_stream(stream)
        with _native_errors():
            self._native.copy_to_host(out, stream, True)
        return out

    @property
    def stream(self) -> Stream | None:
        return self._stream

    @stream.setter
    def stream(self, stream: Any) -> None:
        stream = as_stream(stream)
        self._native.stream = stream
        self._stream = stream

    @property
    def shape(self) -> tuple[int, ...]:
        return self._native.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._native.typestr)

    @property
    def strides(self) -> tuple[int, ...]:
        """Byte strides."""
        return self._native.strides

    @property
    def ndim(self) -> int:
        return len(self._native.shape)

    @property
    def size(self) -> int:
        return self._native.size

    @property
    def nbytes(self) -> int:
        return self._native.nbytes

    @property
    def device(self) -> int:
        return self._native.device

    @property
    def ptr(self) -> int:
        return self._native.ptr

    @property
    def readonly(self) -> bool:
        return self._native.readonly

    @property
    def owns_memory(self) -> bool:
        """False for views of another library's memory."""
        return self._native.owns_memory

    @property
    def is_c_contiguous(self) -> bool:
        return self._native.c_contiguous

    @property
    def __cuda_array_interface__(self) -> dict:
        return self._native.__cuda_array_interface__

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None, copy: Any = None):
        with _native_errors():
            return self._native.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._native.__dlpack_device__()

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self.shape[0]

    def __repr__(self) -> str:
        kind = "" if self.owns_memory else ", view"
        return f"radedge.cuda.DeviceArray(shape={self.shape}, dtype={self.dtype}, device={self.device}{kind})"


def as_device_array(obj: Any, stream: Any = None) -> DeviceArray:
    """A zero-copy DeviceArray view of a CUDA array from any exporter (torch CUDA tensor, CuPy array,
    pycuda GPUArray, numba device array, radedge DeviceArray, DLPack capsule), keeping it alive.

    With ``stream``, the exporter's pending work is ordered before it (DLPack asks the exporter; a
    CAI v3 ``stream`` is waited for) and the view's stream becomes ``stream``. Raises ValueError for
    host arrays and unsupported dtypes, NativeOpError where CUDA is not usable.
    """
    stream = as_stream(stream)
    with _native_errors():
        native = kernels().as_device_array(obj, stream)
    return DeviceArray._wrap(native, stream)


def mark_written(array: Any, stream: Any) -> None:
    """Records, after enqueuing work that writes ``array`` on ``stream`` (None: the legacy default
    stream), that its contents now wait for that stream. Only radedge DeviceArrays keep such a
    record; other exporters order their readers themselves, so this does nothing for them."""
    if isinstance(array, DeviceArray):
        array.stream = stream if stream is not None else Stream.wrap(0)


class PinnedArray:
    """A C-contiguous array in page-locked host memory: the staging buffer for asynchronous host <->
    device copies. ``numpy()`` (or ``numpy.asarray(pinned)``) is a numpy view of the same memory.

        staging = PinnedArray.empty((rows, columns), "uint16")
        staging.numpy()[...] = pixels
        device_pixels.copy_from_numpy(staging.numpy(), stream=stream)   # returns at once
    """

    __slots__ = ("_native", "_array")

    def __init__(self, shape: int | Sequence[int], dtype: Any):
        """Uninitialised page-locked memory (the same as ``PinnedArray.empty``)."""
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(n) for n in shape)
        typestr = _dtype(dtype).str
        _require_cuda("PinnedArray")
        with _native_errors():
            self._native = kernels().PinnedArray.empty(list(shape), typestr)
        # The buffer protocol hands numpy a memoryview that keeps the native owner alive.
        self._array = np.asarray(self._native)

    @classmethod
    def empty(cls, shape: int | Sequence[int], dtype: Any) -> PinnedArray:
        return cls(shape, dtype)

    def numpy(self) -> np.ndarray:
        """The numpy view of the page-locked memory (no copy)."""
        return self._array

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy:
            return np.array(self._array, dtype=dtype, copy=True)
        return self._array if dtype is None else np.asarray(self._array, dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def nbytes(self) -> int:
        return self._array.nbytes

    @property
    def ptr(self) -> int:
        return self._native.ptr

    def __repr__(self) -> str:
        return f"radedge.cuda.PinnedArray(shape={self.shape}, dtype={self.dtype})"
