"""Execution plans: how one model's input tensor is made, run and decoded on one device.

A plan owns the device side of a model: its buffers (one set per thread, in an
``ExecutionContext``), the preprocess op, the backend call and the head decoders with the
device they run on. ``Model`` stays the same for every device; ``CpuPlan`` runs ONNX
Runtime and the CPU ops, and a GPU plan keeps the tensors on the device.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from ..backends import Backend
from ..errors import BundleError
from ..heads import DecodeContext, HeadResult, decode_heads
from ..intensity import IntensityLut
from ..io.image import Image, PixelSpacing
from ..ops.preprocess import preprocess_into
from ..spec.geometry import Crop, ResizeGeometry
from ..spec.manifest import Manifest
from .timer import StageTimer


class ExecutionContext:
    """What one thread needs to run a model: its input buffer (``input``, the model's
    ``input_shape`` in the preprocessing dtype). A context is never shared between threads."""

    def __init__(self, manifest: Manifest):
        dtype = np.float16 if manifest.preprocess.dtype == "float16" else np.float32
        self.input = np.zeros(manifest.input_shape, dtype=dtype)


class ExecutionPlan(ABC):
    """The device side of one model: preprocess -> inference -> decode, each stage timed.

    Safe to call from several threads: each thread gets its own ``ExecutionContext``.
    """

    device: str = ""

    def __init__(self, manifest: Manifest, backend: Backend, *, threads: int = 0):
        self.manifest = manifest
        self.backend = backend
        self.threads = threads
        self._local = threading.local()
        self._check_tensors()

    def _check_tensors(self) -> None:
        produced = {spec.name for spec in self.backend.outputs}
        missing = [name for name in self.manifest.tensors if name not in produced]
        if missing:
            raise BundleError(
                f"the manifest's heads read outputs {missing} but the model produces {sorted(produced)}; "
                "the bundle's manifest and model do not belong together"
            )
        inputs = [spec.name for spec in self.backend.inputs]
        if inputs != [self.manifest.input_name]:
            raise BundleError(f"the manifest's input is {self.manifest.input_name!r}, the model's inputs are {inputs}")

    def context(self) -> ExecutionContext:
        """This thread's context, made on first use."""
        context = getattr(self._local, "context", None)
        if context is None:
            context = self._local.context = ExecutionContext(self.manifest)
        return context

    def warm_up(self) -> None:
        """Run the backend once on a blank input, so the first image is timed like the rest."""
        self.backend.run({self.manifest.input_name: self.context().input})

    @abstractmethod
    def run(
        self, image: Image, lut: IntensityLut, crop: Crop | None, timer: StageTimer
    ) -> tuple[ResizeGeometry, Mapping[str, HeadResult]]:
        """``crop`` (None: the whole image) of ``image`` through the model: the geometry it
        was placed with and every head's result, laps ``preprocess``, ``inference`` and
        ``decode`` on ``timer``."""


class CpuPlan(ExecutionPlan):
    """ONNX Runtime (or any host backend) with the native CPU ops on numpy buffers."""

    device = "cpu"

    def run(self, image, lut, crop, timer):
        context = self.context()
        geometry = preprocess_into(
            image.pixels, lut.table, lut.first_stored_value, context.input, 0, self.manifest.preprocess,
            threads=self.threads, crop=crop,
        )
        timer.lap("preprocess")
        outputs = self.backend.run({self.manifest.input_name: context.input})
        timer.lap("inference")
        heads = decode_outputs(
            self.manifest, outputs, geometry, image.spacing, image.spacing_problem, threads=self.threads,
            device=self.device,
        )
        timer.lap("decode")
        return geometry, heads


def decode_outputs(
    manifest: Manifest,
    outputs: Mapping[str, np.ndarray],
    geometry: ResizeGeometry,
    spacing: PixelSpacing | None,
    spacing_problem: str | None,
    *,
    threads: int = 0,
    device: str = "cpu",
) -> dict[str, HeadResult]:
    """Every head of ``manifest`` decoded from the network's raw ``outputs`` (tensor name ->
    array holding one image, batch 1) at the source geometry: what a plan does after
    inference, and what a server that ran inference itself does (``radedge triton``).

    ``geometry``: where the preprocess op placed the image in the input; ``spacing``: the
    source's pixel spacing, or None with ``spacing_problem`` saying why there is none.
    """
    return decode_heads(manifest.heads, outputs, DecodeContext(geometry, spacing, spacing_problem, threads, device))
