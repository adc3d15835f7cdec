"""Access to the compiled module ``radedge._kernels`` with an error that says how to build it."""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

from .errors import RadedgeError


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
