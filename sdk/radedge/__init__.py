"""radedge: run X-ray imaging AI models at the acquisition console.

    import radedge
    model = radedge.load_model()              # the bundled bone-tumor demo model
    prediction = model.predict("image.dcm")   # flags, per-head results, timings
    print(prediction.to_json())

    models = radedge.load_models()            # every bundled model, each image routed by scope
    analysis = models.predict("image.dcm")    # each model's prediction, and why others did not apply

``import radedge`` is cheap: it imports neither torch nor tensorrt, and loads
ONNX Runtime only when a model is loaded. The names below the errors are loaded on
first use.
"""

from __future__ import annotations

import logging

from .errors import (
    BackendError,
    BundleError,
    BundleIntegrityError,
    BundleNotFoundError,
    BundleSignatureError,
    CodestreamMismatchError,
    CorruptPixelDataError,
    DicomOutputError,
    EncapsulationMismatchError,
    ImageTooLargeError,
    InputError,
    InputNotFoundError,
    InputNotReadableError,
    InputTooLargeError,
    InputTypeError,
    InvalidArgumentError,
    InvalidWindowError,
    MemoryBudgetExceededError,
    MissingDependencyError,
    NativeOpError,
    NoImageError,
    NoPixelDataError,
    NotAnalysableError,
    NotDicomError,
    NotDicomSourceError,
    NotRegularFileError,
    OutOfScopeError,
    PrecisionNotInBundleError,
    RadedgeError,
    ScopeMetadataMissingError,
    SequenceTooDeepError,
    ServeConfigError,
    TimeBudgetExceededError,
    TruncatedPixelDataError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
    WorkerCrashedError,
)

__version__ = "0.1.0"

# A library logs and leaves the handlers to the application: without one, nothing is printed
# (Python's last-resort handler would print warnings to stderr).
logging.getLogger("radedge").addHandler(logging.NullHandler())

_LAZY = {
    "load_model": "pipeline",
    "load_models": "pipeline",
    "Model": "pipeline",
    "ModelSet": "pipeline",
    "Prediction": "results",
    "ImageAnalysis": "results",
    "Flag": "results",
    "read_image": "io",
    "Image": "io",
    "IsolatedReader": "io",
    "load_bundle": "bundle",
    "build_lut": "intensity",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'radedge' has no attribute {name!r}")


__all__ = [
    "BackendError",
    "BundleError",
    "BundleIntegrityError",
    "BundleNotFoundError",
    "BundleSignatureError",
    "CodestreamMismatchError",
    "CorruptPixelDataError",
    "DicomOutputError",
    "EncapsulationMismatchError",
    "ImageTooLargeError",
    "InputError",
    "InputNotFoundError",
    "InputNotReadableError",
    "InputTooLargeError",
    "InputTypeError",
    "InvalidArgumentError",
    "InvalidWindowError",
    "MemoryBudgetExceededError",
    "MissingDependencyError",
    "NativeOpError",
    "NoImageError",
    "NoPixelDataError",
    "NotAnalysableError",
    "NotDicomError",
    "NotDicomSourceError",
    "NotRegularFileError",
    "OutOfScopeError",
    "PrecisionNotInBundleError",
    "RadedgeError",
    "ScopeMetadataMissingError",
    "SequenceTooDeepError",
    "ServeConfigError",
    "TimeBudgetExceededError",
    "TruncatedPixelDataError",
    "UnsupportedImageError",
    "UnsupportedTransferSyntaxError",
    "WorkerCrashedError",
    "__version__",
    *_LAZY,
]
