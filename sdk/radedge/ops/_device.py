"""The one device dispatch every op wrapper shares.

A wrapper takes numpy arrays (its CPU op, or the CUDA op copying to the GPU and back) or CUDA
arrays (any ``__cuda_array_interface__`` / DLPack exporter: radedge.cuda.DeviceArray, torch,
CuPy, pycuda), which its native ``*_cuda`` binding reads and writes in place on the caller's
stream. This module decides which (``runs_on_device``), runs a numpy call on the device asked
for (``run_on``), refuses mixtures, turns the native module's CUDA errors into NativeOpError,
and moves small results to the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

import numpy as np

from .. import cuda
from .._native import available_devices, kernels, require_device
from ..errors import NativeOpError

Device = Literal["cpu", "cuda"]

__all__ = ["Device", "available_devices", "require_device", "run_on", "runs_on_device"]

T = TypeVar("T")


def run_on(op: str, device: str, cpu: Callable[[], T], cuda_host: Callable[[], T]) -> T:
    """Run a call on numpy arrays: ``cpu()`` on ``"cpu"``, or ``cuda_host()`` (the CUDA op
    copying to the GPU and back) on ``"cuda"``, whose failures become NativeOpError. Raises
    NativeOpError listing the devices that work when ``device`` is not available."""
    require_device(op, device)
    if device == "cpu":
        return cpu()
    try:
        return cuda_host()
    except RuntimeError as exc:
        raise NativeOpError(str(exc)) from exc


def _listed(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def runs_on_device(op: str, device: str, arrays: dict[str, Any], device_only: dict[str, Any]) -> bool:
    """True when the call runs zero-copy on CUDA arrays, False when on numpy arrays.

    ``arrays``: the arrays of the call that may be either kind (None: not given); all must be of
    one kind. ``device_only``: arguments that only the zero-copy path takes (``out``, ``stream``,
    ``workspace``); given with numpy arrays they are refused. Raises ValueError naming what is
    wrong, NativeOpError when CUDA is unusable here.
    """
    given = {name: array for name, array in arrays.items() if array is not None}
    on_device = [name for name, array in given.items() if cuda.is_device_array(array)]
    if not on_device:
        extras = [name for name, value in device_only.items() if value is not None]
        if extras:
            raise ValueError(
                f"{_listed(extras)} {'applies' if len(extras) == 1 else 'apply'} to CUDA arrays; with numpy "
                f"arrays {op} runs on the host arrays and, on 'cuda', copies them to the GPU and back itself. Pass "
                "CUDA arrays (radedge.cuda.DeviceArray, torch or CuPy) to run on your stream"
            )
        return False
    on_host = [name for name in given if name not in on_device]
    if on_host:
        raise ValueError(
            f"{_listed(on_device)} {'is a CUDA array' if len(on_device) == 1 else 'are CUDA arrays'} but "
            f"{_listed(on_host)} {'is' if len(on_host) == 1 else 'are'} not: pass them all on the GPU (upload "
            "with radedge.cuda.DeviceArray.from_numpy(array, stream=stream)) or all as numpy arrays"
        )
    if device != "cuda":
        raise ValueError(
            f"{_listed(on_device)} {'is a CUDA array' if len(on_device) == 1 else 'are CUDA arrays'}; pass "
            f"device='cuda' (got device={device!r})"
        )
    workspace = device_only.get("workspace")
    if workspace is not None and not cuda.is_device_array(workspace):
        raise ValueError(
            f"workspace must be a CUDA array (uint8 [bytes]); got {type(workspace).__name__}. Allocate it with "
            f"radedge.cuda.DeviceArray.empty({op}_cuda_workspace_bytes(...), 'uint8')"
        )
    require_device(op, "cuda")
    return True


def as_device_input(array: Any, stream: cuda.Stream | None) -> Any:
    """``array`` itself, or for a DLPack capsule (which says nothing until consumed) a DeviceArray
    view of it whose contents are ordered before ``stream``."""
    if type(array).__name__ == "PyCapsule":
        return cuda.as_device_array(array, stream)
    return array


@contextlib.contextmanager
def native_errors() -> Iterator[None]:
    """The native module's CudaError as NativeOpError; ValueErrors pass unchanged."""
    try:
        yield
    except kernels().CudaError as exc:
        raise NativeOpError(str(exc)) from exc


def output(given: Any, name: str, shape: tuple[int, ...], dtype: str, stream: cuda.Stream | None) -> Any:
    """The caller's output array, or a new DeviceArray of ``shape`` and ``dtype`` on ``stream``'s device."""
    if given is not None:
        if not cuda.is_device_array(given):
            raise ValueError(
                f"{name} must be a CUDA array ({dtype} {list(shape)}) like the inputs; got {type(given).__name__}"
            )
        return given
    with native_errors():
        return cuda.DeviceArray.empty(shape, dtype, stream=stream)


def shape_of(array: Any, name: str) -> tuple[int, ...]:
    shape = getattr(array, "shape", None)
    if shape is None:
        raise ValueError(f"{name} ({type(array).__name__}) has no shape; pass a CUDA array")
    return tuple(int(n) for n in shape)


def to_host(array: Any, stream: Any = None) -> np.ndarray:
    """A numpy copy of a CUDA array (numpy arrays pass unchanged), made on ``stream`` (None: the
    legacy default stream) and finished on return. A radedge DeviceArray is copied after the work its
    contents wait for; other exporters' arrays after the work their own stream protocol names, so
    read what a radedge op wrote into them on the op's stream (pass it here) or after synchronising."""
    if isinstance(array, np.ndarray):
        return array
    stream = cuda.as_stream(stream)
    with native_errors():
        if isinstance(array, cuda.DeviceArray):
            return array.to_numpy(stream)
        return cuda.as_device_array(array, stream).to_numpy(stream)


def is_on_device(array: Any) -> bool:
    return not isinstance(array, np.ndarray) and cuda.is_device_array(array)
