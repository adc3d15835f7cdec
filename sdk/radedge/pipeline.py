"""The pipeline: one image in, one ``Prediction`` out, every stage timed.

read (decode the file) -> lut (one intensity table) -> preprocess (native op) ->
inference (backend) -> decode (heads at source geometry) -> flags.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backends import Backend, create_backend
from .bundle import Bundle, Manifest, load_bundle
from .decode import decode_classification, decode_segmentation
from .errors import BackendError, BundleError, OutOfScopeError
from .flags import evaluate_flags
from .intensity import IntensityLut, build_lut
from .io import read_image
from .io.image import Image
from .preprocess import preprocess_into
from .results import ClassificationResult, Prediction, SegmentationResult

# SOP classes whose pixels are "For Processing" (raw detector data, not meant for
# display or for models trained on presentation images), PS3.4 B.5.
FOR_PROCESSING_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "Digital Mammography X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "Digital Intra-Oral X-Ray Image Storage - For Processing",
}


class Model:
    """A verified bundle on a backend, ready to ``predict``.

    Safe to call from several threads: the backend session is shared, each thread gets
    its own input buffer.
    """

    def __init__(self, bundle: Bundle, backend: Backend, *, threads: int = 0):
        self.bundle = bundle
        self.manifest: Manifest = bundle.manifest
        self.backend = backend
        self.threads = threads
        self._local = threading.local()
        self._check_outputs()

    def _check_outputs(self) -> None:
        produced = {spec.name for spec in self.backend.outputs}
        for spec in self.manifest.outputs:
            if spec.name not in produced:
                raise BundleError(
                    f"the manifest describes output {spec.name!r} but the model produces {sorted(produced)}; "
                    "the bundle's manifest and model.onnx do not belong together"
                )
        inputs = [spec.name for spec in self.backend.inputs]
        if inputs != [self.manifest.input_name]:
            raise BundleError(f"the manifest's input is {self.manifest.input_name!r}, the model's inputs are {inputs}")

    def _input_buffer(self) -> np.ndarray:
        buffer = getattr(self._local, "input", None)
        if buffer is None:
            dtype = np.float16 if self.manifest.preprocess.dtype == "float16" else np.float32
            buffer = np.zeros(self.manifest.input_shape, dtype=dtype)
            self._local.input = buffer
        return buffer

    def warm_up(self) -> None:
        """Run the backend once on a blank input, so the first image is timed like the rest."""
        self.backend.run({self.manifest.input_name: self._input_buffer()})

    def check_scope(self, image: Image) -> list[str]:
        """Refuse an image outside the manifest's intended scope (``OutOfScopeError``);
        return notes on what could not be checked."""
        scope = self.manifest.scope
        source = image.source
        notes = []
        model = f"{self.manifest.model_id} {self.manifest.model_version}"
        intents = {value.upper() for value in scope.presentation_intents}
        if intents:
            processing_class = FOR_PROCESSING_SOP_CLASSES.get(source.sop_class_uid or "")
            intent = (source.presentation_intent or "").upper()
            if processing_class and "FOR PROCESSING" not in intents:
                intent = "FOR PROCESSING"
            if intent and intent not in intents:
                raise OutOfScopeError(
                    f"this image is {intent} (PresentationIntentType / SOP class) but {model} was trained on "
                    f"{' / '.join(sorted(intents))} images. Send the modality's presentation image "
                    "(the processed one the console displays), not the raw detector image."
                )
            if not intent and source.format == "dicom":
                notes.append("PresentationIntentType absent: presentation intent not checked")
        modalities = {value.upper() for value in scope.modalities}
        if modalities and source.format == "dicom":
            if source.modality and source.modality.upper() not in modalities:
                raise OutOfScopeError(
                    f"this image's modality is {source.modality}; {model} is intended for "
                    f"{', '.join(sorted(modalities))} only"
                )
        body_parts = {value.upper() for value in scope.body_parts}
        if body_parts and source.format == "dicom":
            if source.body_part and source.body_part.upper() not in body_parts:
                raise OutOfScopeError(
                    f"this image's BodyPartExamined is {source.body_part}; {model} is intended for "
                    f"{', '.join(sorted(body_parts))}. Route other body parts to a model made for them."
                )
            if not source.body_part:
                notes.append("BodyPartExamined absent: body part not checked")
        if source.format != "dicom":
            notes.append(f"{source.format.upper()} input carries no DICOM metadata: model scope not checked")
        return notes

    def predict(self, source: Any, *, label: str | None = None, check_scope: bool = True) -> Prediction:
        """Run the whole chain on ``source``: a file path, DICOM bytes, a pydicom Dataset
        or a ``radedge.io.Image``. ``label`` names the input in the result (defaults to the
        path, never to anything from the DICOM header)."""
        timings: dict[str, float] = {}
        start = mark = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            timings[stage] = (now - mark) * 1e3
            mark = now

        image = source if isinstance(source, Image) else read_image(source)
        lap("read")
        notes = self.check_scope(image) if check_scope else ["model scope not checked (check_scope=False)"]
        spec = self.manifest.intensity
        voi = spec.window if spec.window is not None else spec.voi
        lut = build_lut(image, voi=voi, voi_index=spec.voi_index, threads=self.threads)
        lap("lut")
        buffer = self._input_buffer()
        geometry = preprocess_into(
            image.pixels, lut.table, lut.first_stored_value, buffer, 0, self.manifest.preprocess, threads=self.threads
        )
        lap("preprocess")
        outputs = self.backend.run({self.manifest.input_name: buffer})
        lap("inference")
        classifications: dict[str, ClassificationResult] = {}
        segmentations: dict[str, SegmentationResult] = {}
        input_size = (self.manifest.preprocess.height, self.manifest.preprocess.width)
        for spec_out in self.manifest.outputs:
            values = outputs[spec_out.name]
            if spec_out.kind == "classification":
                classifications[spec_out.name] = decode_classification(spec_out, values)
            elif spec_out.kind == "segmentation":
                segmentations[spec_out.name] = decode_segmentation(
                    spec_out, values, geometry, input_size, image, threads=self.threads
                )
            else:
                raise BackendError(
                    f"output {spec_out.name!r} is a {spec_out.kind} head, which this radedge version does not decode yet"
                )
        lap("decode")
        flags = evaluate_flags((rule for out in self.manifest.outputs for rule in out.flags), classifications)
        lap("flags")
        timings["total"] = (time.perf_counter() - start) * 1e3
        return Prediction(
            source=label if label is not None else _describe_source(source),
            flags=flags,
            classifications=classifications,
            segmentations=segmentations,
            timings_ms=timings,
            provenance=self.provenance(),
            image=_describe_image(image, lut, notes),
            geometry=geometry,
            _input=image,
            _display_lut=(lut.table, lut.first_stored_value),
        )

    def provenance(self) -> dict[str, Any]:
        return {
            "model_id": self.manifest.model_id,
            "model_version": self.manifest.model_version,
            "bundle_sha256": self.bundle.digest,
            "radedge_version": __version__,
            "backend": self.backend.name,
            "device": self.backend.device,
        }


def load_model(
    bundle: str | os.PathLike | Bundle | None = None,
    *,
    backend: str = "onnxruntime",
    threads: int = 0,
    warm_up: bool = True,
) -> Model:
    """Load and verify a bundle (``None``: the bundled demo model ``bone-tumor``) on a backend.

    ``threads`` caps the native ops' and the backend's CPU threads (0: all cores).
    """
    loaded = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    instance = create_backend(backend, loaded.read("model.onnx"), threads=threads or None)
    model = Model(loaded, instance, threads=threads)
    if warm_up:
        model.warm_up()
    return model


def _describe_source(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(Path(source))
    if isinstance(source, Image) and source.source.path:
        return source.source.path
    return f"<{type(source).__name__}>"


def _describe_image(image: Image, lut: IntensityLut, notes: list[str]) -> dict[str, Any]:
    spacing = image.spacing
    return {
        "rows": image.rows,
        "columns": image.columns,
        "format": image.source.format,
        "transfer_syntax": image.source.transfer_syntax_name,
        "modality": image.source.modality,
        "body_part": image.source.body_part,
        "presentation_intent": image.source.presentation_intent,
        "photometric_interpretation": image.intensity.photometric_interpretation,
        "bits_stored": image.intensity.bits_stored,
        "pixel_spacing_mm": [spacing.row_mm, spacing.column_mm] if spacing else None,
        "pixel_spacing_source": spacing.source if spacing else None,
        "pixel_spacing_problem": image.spacing_problem,
        "intensity": lut.description,
        "notes": list(image.notes) + notes,
    }
