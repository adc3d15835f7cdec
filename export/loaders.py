"""Composable export steps, each named ``<Target>From<Source>``.

    onnx_bytes = OnnxFromTorch(model, input_shape=(1, 1, 256, 256), ...)()
    report = check_onnx_against_torch(model, onnx_bytes, samples)
    SaveBundle(onnx_bytes, manifest)(directory)

Every step is a small callable object so steps can be chained, inspected and tested
alone. torch and onnx are imported here, never by the runtime SDK.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radedge import __version__
from radedge.bundle import write_bundle
from radedge.errors import MissingDependencyError, RadedgeError
from radedge.spec import Manifest

OPSET = 17


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "Exporting from PyTorch") from None
    return torch


class ExportError(RadedgeError):
    """An export step failed, or the exported model does not reproduce the PyTorch one."""


@dataclass
class OnnxFromTorch:
    """Trace a ``torch.nn.Module`` in eval mode to ONNX bytes with fixed shapes.

    Fixed shapes keep every engine output static, so data-dependent steps (thresholds,
    NMS) run in radedge's kernels after the engine (DESIGN.md, TensorRT across versions).
    """

    model: Any
    input_shape: tuple[int, ...]
    input_name: str = "image"
    output_names: Sequence[str] = ("output",)
    opset: int = OPSET

    def __call__(self) -> bytes:
        torch = _torch()
        self.model.eval()
        dummy = torch.zeros(self.input_shape, dtype=torch.float32)
        buffer = io.BytesIO()
        with torch.no_grad():
            # The TorchScript exporter gives a compact, fixed-shape graph with BatchNorm
            # folded, and needs nothing beyond torch itself.
            torch.onnx.export(
                self.model,
                (dummy,),
                buffer,
                input_names=[self.input_name],
                output_names=list(self.output_names),
                opset_version=self.opset,
                dynamo=False,
                do_constant_folding=True,
            )
        return buffer.getvalue()


@dataclass(frozen=True)
class AgreementReport:
    """How far ONNX Runtime's outputs are from PyTorch's, per output: the largest
    |difference| and the largest |PyTorch value| it is relative to."""

    max_abs_difference: dict[str, float]
    max_abs_reference: dict[str, float]
    samples: int

    def within(self, atol: float, rtol: float = 0.0) -> bool:
        """Every output's worst difference <= atol + rtol * its largest magnitude.

        The relative part matters for heads that sum over a whole image (pooled
        classifiers), where float32 reassociation alone moves large logits by ~1e-5 of
        their size."""
        return all(
            difference <= atol + rtol * self.max_abs_reference[name]
            for name, difference in self.max_abs_difference.items()
        )


def check_onnx_against_torch(
    model: Any, onnx_bytes: bytes, samples: np.ndarray, input_name: str = "image", output_names: Sequence[str] = ("output",)
) -> AgreementReport:
    """Run ``samples`` (float32[S, C, H, W]) through both, one at a time; compare outputs."""
    torch = _torch()
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    model.eval()
    worst = {name: 0.0 for name in output_names}
    largest = {name: 0.0 for name in output_names}
    with torch.no_grad():
        for sample in samples:
            batch = sample[None].astype(np.float32)
            reference = model(torch.from_numpy(batch))
            if not isinstance(reference, (tuple, list)):
                reference = (reference,)
            exported = session.run(list(output_names), {input_name: batch})
            for name, ref, got in zip(output_names, reference, exported):
                worst[name] = max(worst[name], float(np.max(np.abs(ref.numpy() - got))))
                largest[name] = max(largest[name], float(np.max(np.abs(ref.numpy()))))
    return AgreementReport(worst, largest, len(samples))


@dataclass
class SaveBundle:
    """Write ``model.onnx`` and a sealed manifest (checksums, provenance) to a directory.

    ``manifest``: a ``radedge.spec.Manifest`` (or its document: the model / input /
    preprocessing / outputs / scope sections); provenance gets the exporter version, opset
    and the ONNX file's sha256 added.
    """

    onnx_bytes: bytes
    manifest: Manifest | dict[str, Any]
    extra_files: dict[str, bytes] = field(default_factory=dict)

    def __call__(self, directory: str | Path) -> Path:
        body = self.manifest.to_document() if isinstance(self.manifest, Manifest) else dict(self.manifest)
        provenance = dict(body.get("provenance", {}))
        provenance.setdefault("exporter", f"radedge {__version__}")
        provenance.setdefault("opset", OPSET)
        provenance["onnx_sha256"] = hashlib.sha256(self.onnx_bytes).hexdigest()
        body["provenance"] = provenance
        return write_bundle(directory, body, {"model.onnx": self.onnx_bytes, **self.extra_files})
