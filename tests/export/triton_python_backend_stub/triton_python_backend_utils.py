"""A stand-in for Triton's ``triton_python_backend_utils``, which exists only inside tritonserver.

It carries data the way the server's module does, for exactly what the model.py files of a
``radedge triton`` repository call: ``Tensor(name, array)`` with ``name()`` and
``as_numpy()``, ``InferenceRequest`` with ``inputs()``, ``InferenceResponse(output_tensors,
error)``, ``TritonError``, ``get_input_tensor_by_name``, ``get_output_tensor_by_name``. It
schedules nothing, batches nothing and holds no device memory: the tests that import it
run a model's ``initialize`` and ``execute`` as the Python backend would call them, nothing
more.
"""

from __future__ import annotations

import numpy as np


class TritonError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self._message = message

    def message(self) -> str:
        return self._message


class Tensor:
    def __init__(self, name: str, array: np.ndarray):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"Tensor {name!r}: the Python backend takes numpy arrays, not {type(array).__name__}")
        if array.dtype == np.object_ and not all(isinstance(v, bytes) for v in array.reshape(-1)):
            raise TypeError(f"Tensor {name!r}: a TYPE_STRING tensor holds bytes")
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class InferenceRequest:
    def __init__(self, inputs: list[Tensor]):
        self._inputs = list(inputs)

    def inputs(self) -> list[Tensor]:
        return self._inputs


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor], error: TritonError | None = None):
        self._output_tensors = list(output_tensors)
        self._error = error

    def output_tensors(self) -> list[Tensor]:
        return self._output_tensors

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error


def get_input_tensor_by_name(request: InferenceRequest, name: str) -> Tensor | None:
    return next((tensor for tensor in request.inputs() if tensor.name() == name), None)


def get_output_tensor_by_name(response: InferenceResponse, name: str) -> Tensor | None:
    return next((tensor for tensor in response.output_tensors() if tensor.name() == name), None)
