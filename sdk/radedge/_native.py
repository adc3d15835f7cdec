"""Access to the compiled module ``radedge._kernels`` with an error that says how to build it."""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

from .errors import NativeOpError, RadedgeError

# Every native op has a CPU and a CUDA implementation.
DEVICES: tuple[str, ...] = ("cpu", "cuda")


@lru_cache(maxsize=1)
def kernels() -> ModuleType:
    try:
        from . import _kernels
    except ImportError as exc:
        raise RadedgeError(
            "radedge's native module radedge._kernels is not built or does not load "
            f"({exc}). Install radedge with pip (pip install .) or run `make demo`, which "
            "compiles it with CMake and a C++17 compiler."
        ) from exc
    return _kernels


def available_devices() -> tuple[str, ...]:
    """Devices the native ops can run on in this process: always ``"cpu"``, plus ``"cuda"``
    when the module was built with CUDA and a CUDA device is visible."""
    count, _ = kernels().cuda_device_count()
    return ("cpu", "cuda") if count > 0 else ("cpu",)


def require_device(op: str, device: str) -> None:
    """Raise NativeOpError, listing the devices that would work, unless ``op`` can run on
    ``device`` here."""
    if device == "cpu":
        return
    if device == "cuda":
        count, why = kernels().cuda_device_count()
        if count > 0:
            return
        if kernels().build_info()["cuda"]:
            fix = "check the NVIDIA driver and CUDA_VISIBLE_DEVICES, or use device='cpu'"
        else:
            fix = "rebuild radedge with the CUDA toolkit (nvcc on PATH), or use device='cpu'"
        raise NativeOpError(
            f"{op} cannot run on 'cuda': {why}. Available devices: {', '.join(available_devices())}; {fix}."
        )
    raise NativeOpError(
        f"{op} has no implementation for device {device!r}; implemented: {', '.join(DEVICES)}; "
        f"available here: {', '.join(available_devices())}"
    )
