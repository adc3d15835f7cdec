"""The one protocol every inference backend implements.

``Backend.run`` is the template method: it validates the inputs against the model's
declared inputs and times the call; a backend's ``_run`` only does the work.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..errors import BackendError


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (None for a dynamic dimension) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


class Backend(ABC):
    """Runs one model on one device. Subclasses set ``name``/``device`` and implement ``_run``."""

    name: str = ""
    device: str = ""

    def __init__(self, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]):
        self.inputs = inputs
        self.outputs = outputs
        self.last_run_ms = 0.0

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (name -> array); return every output by name."""
        for spec in self.inputs:
            if spec.name not in feeds:
                raise BackendError(f"{self.name}: input {spec.name!r} was not given (got {sorted(feeds)})",
                                   backend=self.name, expected=spec.name, received=sorted(feeds))
            array = feeds[spec.name]
            if array.dtype != spec.dtype:
                raise BackendError(f"{self.name}: input {spec.name!r} must be {spec.dtype}, got {array.dtype}",
                                   backend=self.name, expected=str(spec.dtype), received=str(array.dtype))
            if len(array.shape) != len(spec.shape) or any(
                want is not None and want != got for want, got in zip(spec.shape, array.shape)
            ):
                raise BackendError(f"{self.name}: input {spec.name!r} must have shape {spec.shape}, got {array.shape}",
                                   backend=self.name, expected=list(spec.shape), received=list(array.shape))
        start = time.perf_counter()
        results = self._run(feeds)
        self.last_run_ms = (time.perf_counter() - start) * 1e3
        return results

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Do the inference; inputs are already validated."""
