"""ONNX Runtime on the CPU: the default backend, and the one every machine can run.

radedge depends on no ONNX Runtime package itself: ``onnxruntime`` and ``onnxruntime-gpu`` both
install the module ``onnxruntime``, and two of them in one environment overwrite each other's
files, so the flavour is chosen by an extra (``radedge[cpu]``, ``radedge[gpu]``) or left to the
application radedge is embedded in. Either runs this backend; ``installed_onnxruntime`` says
which is there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata

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


#: The extras that install an ONNX Runtime, and what each brings.
FLAVOURS = {"cpu": "onnxruntime", "gpu": "onnxruntime-gpu"}


class MissingOnnxRuntimeError(MissingDependencyError):
    """No ``onnxruntime`` module can be imported: neither flavour of ONNX Runtime is installed."""

    def __init__(self, detail: str | None = None):
        super().__init__("onnxruntime", "The ONNX Runtime backend")
        # The message names the extras, not the one package MissingDependencyError would.
        self.args = (
            "Running a model needs ONNX Runtime, and no onnxruntime module can be imported"
            + (f" ({detail})" if detail else "") + ". Install one flavour: pip install 'radedge[cpu]' "
            "(the onnxruntime package, any CPU) or pip install 'radedge[gpu]' (onnxruntime-gpu, for "
            "NVIDIA GPUs); an application that already ships either needs nothing more.",
        )
        self.detail = detail


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingOnnxRuntimeError(None if exc.name == "onnxruntime" else str(exc)) from None
    return onnxruntime


@dataclass(frozen=True)
class OnnxRuntimeInstall:
    """Which ONNX Runtime this environment has.

    ``distributions``: (package, version) of each installed package that provides the
    ``onnxruntime`` module (``onnxruntime``, ``onnxruntime-gpu``, or a vendor's build); more than
    one means they overwrite each other. ``version`` and ``providers``: what the module reports
    when it imports, else None and (); ``import_error``: why it does not.
    """

    distributions: tuple[tuple[str, str], ...]
    version: str | None
    providers: tuple[str, ...]
    import_error: str | None

    @property
    def flavour(self) -> str | None:
        """``"cpu"`` (onnxruntime), ``"gpu"`` (onnxruntime-gpu), another package's name, or None
        when none is installed or several are."""
        if len(self.distributions) != 1:
            return None
        name = self.distributions[0][0]
        return next((extra for extra, package in FLAVOURS.items() if package == name), name)

    def describe(self) -> str:
        """One line for ``radedge doctor``."""
        if not self.distributions and self.version is None:
            return "not installed: pip install 'radedge[cpu]' (onnxruntime) or 'radedge[gpu]' (onnxruntime-gpu)"
        if len(self.distributions) > 1:
            packages = " and ".join(f"{name} {version}" for name, version in self.distributions)
            line = f"CLASH: {packages} overwrite each other's onnxruntime module; uninstall all of them, install one"
        elif self.distributions:
            name, version = self.distributions[0]
            extra = next((extra for extra, package in FLAVOURS.items() if package == name), None)
            line = f"{name} {version}" + (f" (radedge[{extra}])" if extra else "")
        else:
            line = "a build no installed package lists"
        if self.version is None:
            return f"{line}; the module does not import ({self.import_error})"
        return f"{line}; providers {', '.join(self.providers) or 'none'}"


def installed_onnxruntime() -> OnnxRuntimeInstall:
    """What ``radedge doctor`` shows about ONNX Runtime: the packages that install the module,
    and the module itself (imported here)."""
    names = sorted(set(metadata.packages_distributions().get("onnxruntime", ())))
    distributions = []
    for name in names:
        try:
            distributions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:  # a stale name in another package's records
            continue
    try:
        ort = _import_onnxruntime()
    except MissingOnnxRuntimeError as exc:
        return OnnxRuntimeInstall(tuple(distributions), None, (), exc.detail or "no module named 'onnxruntime'")
    return OnnxRuntimeInstall(tuple(distributions), str(ort.__version__),
                              tuple(ort.get_available_providers()), None)


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
