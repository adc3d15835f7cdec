"""radedge: run X-ray imaging AI models at the acquisition console.

``import radedge`` is cheap: it imports neither torch nor tensorrt, and loads
ONNX Runtime only when a model is loaded.
"""

from __future__ import annotations

from .errors import (
    BackendError,
    BundleError,
    BundleIntegrityError,
    CorruptPixelDataError,
    ImageTooLargeError,
    InputError,
    InvalidWindowError,
    MissingDependencyError,
    NativeOpError,
    NoPixelDataError,
    NotDicomError,
    OutOfScopeError,
    RadedgeError,
    TruncatedPixelDataError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BundleError",
    "BundleIntegrityError",
    "CorruptPixelDataError",
    "ImageTooLargeError",
    "InputError",
    "InvalidWindowError",
    "MissingDependencyError",
    "NativeOpError",
    "NoPixelDataError",
    "NotDicomError",
    "OutOfScopeError",
    "RadedgeError",
    "TruncatedPixelDataError",
    "UnsupportedImageError",
    "UnsupportedTransferSyntaxError",
    "__version__",
]
