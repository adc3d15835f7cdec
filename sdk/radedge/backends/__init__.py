"""Inference backends behind one protocol (``Backend``); heavy runtimes load lazily."""

from __future__ import annotations

from ..errors import BackendError
from .base import Backend, TensorSpec
from .onnxruntime import MissingOnnxRuntimeError, OnnxRuntimeInstall, installed_onnxruntime

BACKENDS = ("onnxruntime",)


def create_backend(name: str, model: bytes, *, threads: int | None = None) -> Backend:
    """Instantiate backend ``name`` on ``model`` (ONNX bytes)."""
    if name == "onnxruntime":
        from .onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model, threads=threads)
    raise BackendError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Backend",
    "MissingOnnxRuntimeError",
    "OnnxRuntimeInstall",
    "TensorSpec",
    "create_backend",
    "installed_onnxruntime",
]
