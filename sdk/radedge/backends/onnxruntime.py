"""ONNX Runtime on the CPU: the default backend, and the one every machine can run."""

from __future__ import annotations

import os

import numpy as np

from ..errors import BackendError, MissingDependencyError
from .base import Backend, TensorSpec

_ORT_TYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(uint8)": np.dtype(np.uint8),
}


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "The ONNX Runtime backend") from None
    return onnxruntime


class OnnxRuntimeBackend(Backend):
    """An ONNX Runtime ``InferenceSession`` on the CPU execution provider.

    ``threads`` caps intra-op threads (``None``: ONNX Runtime's default, one per core).
    The session is created once; ``run`` may be called from several threads.
    """

    name = "onnxruntime"
    device = "cpu"

    def __init__(self, model: bytes, *, threads: int | None = None):
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        elif "RADEDGE_NUM_THREADS" in os.environ:
            options.intra_op_num_threads = int(os.environ["RADEDGE_NUM_THREADS"])
        options.log_severity_level = 3
        # Idle intra-op threads otherwise spin after each run, taking the cores the native
        # decode ops run on next (measured: mask decode 3-7 ms instead of ~1 ms on 2 cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad models
            raise BackendError(f"ONNX Runtime could not load the model: {exc}") from None
        super().__init__(
            inputs=tuple(self._spec(arg) for arg in self._session.get_inputs()),
            outputs=tuple(self._spec(arg) for arg in self._session.get_outputs()),
        )
        self._output_names = [spec.name for spec in self.outputs]

    @staticmethod
    def _spec(arg) -> TensorSpec:
        if arg.type not in _ORT_TYPES:
            raise BackendError(f"model tensor {arg.name!r} has type {arg.type}, which radedge does not handle")
        shape = tuple(dim if isinstance(dim, int) else None for dim in arg.shape)
        return TensorSpec(arg.name, shape, _ORT_TYPES[arg.type])

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            values = self._session.run(self._output_names, feeds)
        except Exception as exc:
            raise BackendError(f"ONNX Runtime failed while running the model: {exc}") from None
        return dict(zip(self._output_names, values))
