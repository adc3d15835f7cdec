"""The one exception hierarchy radedge raises.

Every error says what was expected, what arrived and what to do about it. Catch
``RadedgeError`` to handle anything radedge refuses; catch a subclass to handle one case.

Each class has a ``code``: a dotted snake_case string (``"input.not_found"``), one per class,
unique, and never changed once released, so a console can choose its own (translated) wording
without parsing English. The first part names the area (``input``, ``argument``, ``bundle``,
``backend``, ``dependency``, ``native``, ``output``, ``serve``). ``fields`` holds what arrived
and what was expected (``path``, ``transfer_syntax_uid``, ``expected``, ``received``,
``limit``...), each also readable as an attribute; ``to_dict()`` gives code, message and fields
as JSON values. No message or field carries patient data from a DICOM header: only technical
attributes, and the path the caller gave. docs/errors.md lists every class.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar


class RadedgeError(Exception):
    """Base class of every error radedge raises on purpose.

    ``message``: the English text ``str(error)`` gives; ``fields``: structured facts about the
    failure, keyword arguments here, each also an attribute (``error.path``)."""

    code: ClassVar[str] = "error"
    #: The fields a raise of this class fills where it knows them; one not filled reads as None.
    field_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str = "", **fields: Any):
        super().__init__(message)
        self.fields: dict[str, Any] = dict(fields)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: a field, else a class's documented field that
        # this raise did not fill (None), else AttributeError.
        fields = self.__dict__.get("fields")
        if fields is not None and name in fields:
            return fields[name]
        if any(name in base.__dict__.get("field_names", ()) for base in type(self).__mro__):
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def to_dict(self, *, paths: bool = True) -> dict[str, Any]:
        """``{"code", "error", "message", "fields"}`` as JSON values (no NaN, no bytes, no tuples).

        ``paths=False`` leaves out the ``path`` field and writes "the input" for the path in the
        message, for sites whose file names carry patient names."""
        message = self.message
        fields = {name: _json_value(value) for name, value in (self.__dict__.get("fields") or {}).items()}
        if not paths:
            path = fields.pop("path", None)
            if path:
                message = message.replace(f"'{path}'", "the input").replace(str(path), "the input")
        return {"code": self.code, "error": type(self).__name__, "message": message, "fields": fields}

    def __reduce__(self):
        # Pickled whole, extra fields included, so an error raised in a worker process
        # reaches the caller as it was raised.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls, args, fields):
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(fields)
    return error


def _json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: tuples as lists, paths and unknown objects as text, a
    non-finite number as its text ("inf", "nan"), bytes as hex."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_json_value(item) for item in items]
    try:
        number = float(value)  # numpy scalars
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer() and not isinstance(value, float):
        return int(number)
    return number if math.isfinite(number) else str(number)


class InvalidArgumentError(RadedgeError, ValueError):
    """An argument of a radedge function has a value it cannot use: ``argument`` names it,
    ``received`` is what arrived (its type name for a wrong type), ``expected`` says what is
    accepted. Raised when the function is called (``load_model(threads=-3)`` fails at load, not
    at the first ``predict``). Also a ValueError."""

    code = "argument.invalid"
    field_names = ("argument", "received", "expected")

    def __init__(self, message: str = "", *, argument: str = "", received: Any = None, expected: Any = None,
                 **fields: Any):
        super().__init__(message, argument=argument, received=received, expected=expected, **fields)


def invalid_argument(function: str, argument: str, value: Any, expected: str) -> InvalidArgumentError:
    """The ``InvalidArgumentError`` for ``function``'s ``argument`` = ``value``, ``expected``
    saying in words what it accepts. A value of a JSON type is recorded as ``received``, any
    other by its type name."""
    shown = value if value is None or isinstance(value, (bool, int, float, str)) else type(value).__name__
    text = repr(value) if len(repr(value)) <= 80 else f"a {type(value).__name__}"
    return InvalidArgumentError(f"{function}: {argument}={text} is not valid; {argument} must be {expected}",
                                argument=argument, received=shown, expected=expected)


def check_count(function: str, argument: str, value: Any, *, minimum: int = 0, maximum: int | None = None,
                none: bool = False, meaning: str = "") -> Any:
    """``value`` if it is an integer (not a bool) in [minimum, maximum] (or None when ``none``),
    else ``InvalidArgumentError``. ``meaning``: what it counts, added to the expectation."""
    if value is None and none:
        return value
    in_range = (isinstance(value, int) and not isinstance(value, bool) and value >= minimum
                and (maximum is None or value <= maximum))
    if not in_range:
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        expected = f"an integer {bound}{' or None' if none else ''}{f' ({meaning})' if meaning else ''}"
        raise invalid_argument(function, argument, value, expected)
    return value


def check_choice(function: str, argument: str, value: Any, choices, *, none: bool = False) -> Any:
    """``value`` if it is one of ``choices`` (or None when ``none``), else ``InvalidArgumentError``."""
    if (value is None and none) or (isinstance(value, str) and value in choices):
        return value
    expected = "one of " + ", ".join(repr(choice) for choice in choices) + (" or None" if none else "")
    raise invalid_argument(function, argument, value, expected)


def check_flag(function: str, argument: str, value: Any) -> bool:
    """``value`` if it is a bool, else ``InvalidArgumentError``."""
    if not isinstance(value, bool):
        raise invalid_argument(function, argument, value, "True or False")
    return value


class InputError(RadedgeError):
    """An input image cannot be used (unreadable, unsupported or out of the model's scope).
    ``path``: the file, when the input was one."""

    code = "input.invalid"
    field_names = ("path",)


class InputNotFoundError(InputError, FileNotFoundError):
    """The path names nothing: no such file (or a folder on the way is missing). Also a
    ``FileNotFoundError``, as ``open`` would raise."""

    code = "input.not_found"
    field_names = ("path",)


class InputNotReadableError(InputError, PermissionError):
    """The file exists but cannot be read: permission denied, or the system refused to open it
    (``reason`` holds the system's words, ``errno`` its number). Also a ``PermissionError``."""

    code = "input.not_readable"
    field_names = ("path", "reason", "errno_name")


class InputTypeError(InputError, TypeError):
    """The input is of a type radedge does not read: ``received`` is its type name, ``expected``
    the accepted types. A text-mode file object is refused here: DICOM and images are bytes.
    Also a ``TypeError``."""

    code = "input.invalid_type"
    field_names = ("received", "expected")


class NotDicomError(InputError):
    """The file is not DICOM (no preamble/meta and not parseable as a raw data set)."""

    code = "input.not_dicom"
    field_names = ("path",)


class NoPixelDataError(InputError):
    """The DICOM object carries no Pixel Data (7FE0,0010): a report, a structured object, a header only."""

    code = "input.no_pixel_data"
    field_names = ("path", "sop_class_uid")


class TruncatedPixelDataError(InputError):
    """Pixel Data is shorter than Rows x Columns x samples x frames says it must be.
    ``expected`` and ``received``: bytes needed and bytes present, where known."""

    code = "input.truncated_pixel_data"
    field_names = ("path", "expected", "received", "transfer_syntax_uid")


class UnsupportedTransferSyntaxError(InputError):
    """No decoder in this installation handles the file's transfer syntax, or (for a
    ``pydicom.Dataset`` without File Meta Information) the syntax could not be told.

    ``missing_packages`` lists the pip packages that would add one (empty when radedge
    knows of no decoder at all for the syntax).
    """

    code = "input.unsupported_transfer_syntax"
    field_names = ("path", "transfer_syntax_uid", "missing_packages")

    def __init__(self, message: str, transfer_syntax_uid: str = "", missing_packages: tuple[str, ...] = (),
                 **fields: Any):
        super().__init__(message, transfer_syntax_uid=transfer_syntax_uid,
                         missing_packages=tuple(missing_packages), **fields)


class UnsupportedImageError(InputError):
    """The pixels are of a kind radedge does not process (colour, multi-frame, odd bit depths).
    ``attribute`` names the DICOM attribute at fault when there is one, ``received`` its value."""

    code = "input.unsupported_image"
    field_names = ("path", "attribute", "received")


class ImageTooLargeError(InputError):
    """The declared image size is beyond what radedge accepts; refused before allocating it.
    ``received``: the declared size (rows x columns, or pixels), ``limit`` the bound."""

    code = "input.image_too_large"
    field_names = ("path", "received", "limit")


class OutOfScopeError(InputError):
    """The image is readable but outside the model's intended input scope (manifest ``scope``).
    ``model_id``; ``attribute`` the DICOM attribute that decided, ``received`` its value and
    ``expected`` the values the scope accepts."""

    code = "input.out_of_scope"
    field_names = ("model_id", "attribute", "received", "expected")


class ScopeMetadataMissingError(OutOfScopeError):
    """Strict scope checking (``load_model(..., scope="strict")``): the image lacks an
    attribute the model's scope names (Body Part Examined, Modality, SOP Class UID, Presentation
    Intent Type), so whether it is in scope cannot be told. ``attribute`` names it. With the
    default ``scope="lenient"`` the image is analysed with a note instead."""

    code = "input.scope_metadata_missing"
    field_names = ("model_id", "attribute", "expected")


class NotAnalysableError(InputError):
    """The image decodes, but holds nothing a model could analyse meaningfully.

    Raised for header values that leave the intensities without meaning (a Rescale Slope
    that is not finite, zero or denormal, an intercept that is not finite, modality values
    that overflow, a window absurdly wide or far away for the values the image can hold),
    for an image whose every pixel is pixel padding or that is uniform under the model's
    intensity table, and for one with too few pixels for the model's input. ``Model.predict``
    raises it, as it raises ``OutOfScopeError``; ``ModelSet.predict`` records it, and an
    image no model could analyse is "not analysed" with this reason instead of getting a
    flag decision.
    """

    code = "input.not_analysable"
    field_names = ("path",)


class BundleError(RadedgeError):
    """A model bundle is missing, malformed or of an unsupported schema. ``location``: the
    bundle's path."""

    code = "bundle.invalid"
    field_names = ("location",)


class BundleNotFoundError(BundleError, FileNotFoundError):
    """The bundle path names nothing. Also a ``FileNotFoundError``."""

    code = "bundle.not_found"
    field_names = ("location",)


class PrecisionNotInBundleError(BundleError, InvalidArgumentError):
    """``precision`` names a model file the bundle does not carry (manifest ``precisions``):
    ``received`` is the precision asked for, ``expected`` the ones it carries. Also an
    ``InvalidArgumentError`` for the argument ``precision``."""

    code = "bundle.precision_missing"
    field_names = ("location", "argument", "received", "expected")


class BundleIntegrityError(BundleError):
    """A bundle file does not match the checksum its manifest records: tampered or truncated."""

    code = "bundle.integrity"
    field_names = ("location",)


class BundleSignatureError(BundleIntegrityError):
    """Trusted keys were given and the bundle's signature does not prove it came from one of them:
    unsigned, signed by another key, a malformed ``manifest.sig``, or a signature that does not
    verify (the manifest was resealed). Also raised for a key file that is not an Ed25519 key."""

    code = "bundle.signature"
    field_names = ("location",)


class BackendError(RadedgeError):
    """An inference backend failed to load a model or to run it."""

    code = "backend.failed"
    field_names = ("backend", "expected", "received")


class MissingDependencyError(RadedgeError):
    """An optional package needed for the requested feature is not installed."""

    code = "dependency.missing"
    field_names = ("package", "feature")

    def __init__(self, package: str, feature: str):
        super().__init__(
            f"{feature} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install {package}",
            package=package, feature=feature,
        )


class NativeOpError(RadedgeError):
    """A native kernel rejected its arguments or failed while running."""

    code = "native.failed"
    field_names = ()


class CorruptPixelDataError(InputError):
    """Pixel Data is present and as long as the header says, but the decoder rejected it.

    Raised for damaged compressed streams and for codestreams using a coding feature the
    installed decoder does not implement; the message carries the decoder's own words.
    """

    code = "input.corrupt_pixel_data"
    field_names = ("path", "transfer_syntax_uid")


class InvalidWindowError(InputError, ValueError):
    """A VOI window or VOI LUT cannot be applied (PS3.3 C.11.2.1.2).

    Raised for a Window Width below what the VOI LUT Function allows (< 1 for LINEAR,
    <= 0 for LINEAR_EXACT and SIGMOID), for a ``voi_index`` past the windows and VOI
    LUTs the image carries, and for a percentile window of an image that is all pixel
    padding. Also a ValueError: the window is a bad argument to the intensity chain.
    """

    code = "input.invalid_window"
    field_names = ("path",)


class NotRegularFileError(InputError):
    """The path names a FIFO, a device, a socket or a directory, not a regular file.
    ``received``: what it is ("a directory", "a FIFO (named pipe)"...).

    Refused from ``fstat`` before a byte is read: reading a FIFO or a terminal blocks until
    someone writes to it, and a device such as ``/dev/zero`` never ends.
    """

    code = "input.not_regular_file"
    field_names = ("path", "received")


class InputTooLargeError(ImageTooLargeError):
    """The input is larger than a limit in ``radedge.io.limits``, whatever size of image it declares.

    Raised for a file longer than ``MAX_FILE_BYTES``, a deflated data set whose header
    inflates past ``MAX_INFLATED_HEADER_BYTES``, and a DICOM header of more than
    ``MAX_HEADER_ELEMENTS`` elements or encapsulated Pixel Data of more than
    ``MAX_FRAGMENTS`` items. Refused before the excess is read, inflated or parsed.
    ``received`` and ``limit``: the size found (when known) and the bound.
    """

    code = "input.too_large"
    field_names = ("path", "received", "limit")


class SequenceTooDeepError(InputError):
    """DICOM sequences nest deeper than ``radedge.io.limits.MAX_SEQUENCE_DEPTH`` (PS3.5 7.5).

    Refused while the header's structure is walked, before pydicom parses it: pydicom
    parses nested sequences recursively and would fail with a ``RecursionError``.
    """

    code = "input.sequence_too_deep"
    field_names = ("path", "limit")


class CodestreamMismatchError(CorruptPixelDataError):
    """The compressed frame's own header disagrees with the DICOM Image Pixel module.

    JPEG 2000 SIZ, JPEG SOFn, JPEG-LS SOF55 or the RLE header declares other rows, columns,
    components, precision or segments than Rows, Columns, Samples per Pixel and Bits
    Allocated say. Refused before the decoder runs, since the decoder allocates what the
    codestream declares. ``attribute`` names the DICOM attribute, ``dicom_value`` and
    ``codestream_value`` the two figures.
    """

    code = "input.codestream_mismatch"
    field_names = ("path", "attribute", "dicom_value", "codestream_value")

    def __init__(self, message: str, attribute: str = "", dicom_value: int | None = None,
                 codestream_value: int | None = None, **fields: Any):
        super().__init__(message, attribute=attribute, dicom_value=dicom_value,
                         codestream_value=codestream_value, **fields)


class EncapsulationMismatchError(CorruptPixelDataError):
    """Pixel Data is encapsulated (undefined length, items) under a native transfer syntax,
    or has a defined length under a compressed one (PS3.5 A.4): the file contradicts itself,
    and decoding it either way would give wrong pixels.
    """

    code = "input.encapsulation_mismatch"
    field_names = ("path", "transfer_syntax_uid")


class NotDicomSourceError(InputError):
    """DICOM outputs (SEG, SR, GSPS, KOS) were asked for a result whose input was not DICOM
    (PNG, JPEG, TIFF or an array): there is no patient, study or instance for them to
    belong to."""

    code = "input.not_dicom_source"
    field_names = ()


class NoImageError(RadedgeError, ValueError):
    """An overlay was asked of a result that holds no image to draw on: one that was pickled
    (the decoded image is not pickled with it) or read back from JSON (``from_dict``). Draw
    the overlay before pickling, or predict again from the source."""

    code = "output.no_image"
    field_names = ()


class DicomOutputError(RadedgeError):
    """The DICOM objects for a result could not be made: the source's header lacks, or holds
    malformed, what a SEG, SR, GSPS or KOS must copy or reference (a Study Instance UID, a
    valid SOP Instance UID...). The message names what highdicom refused; the result itself
    (JSON, overlay) is unaffected."""

    code = "output.dicom"
    field_names = ()


class TimeBudgetExceededError(InputError):
    """Reading the input took longer than the time budget of one file, and was stopped.

    Decoding runs in a worker process (``IsolatedReader(time_budget_s=...)``, default
    ``radedge.io.limits.TIME_BUDGET_S``) so that a codestream that makes a native decoder
    run away costs at most the budget, and the files after it are still read. ``limit``
    is the budget in seconds.
    """

    code = "input.time_budget_exceeded"
    field_names = ("path", "limit")

    def __init__(self, message: str, limit: float | None = None, **fields: Any):
        super().__init__(message, limit=limit, **fields)


class MemoryBudgetExceededError(InputError):
    """Reading the input needed more memory than the worker process reading it may use
    (``radedge.io.limits.DECODE_MEMORY_BYTES``); the allocation failed and the read was stopped.
    ``limit`` is the cap in bytes."""

    code = "input.memory_budget_exceeded"
    field_names = ("path", "limit")

    def __init__(self, message: str, limit: int | None = None, **fields: Any):
        super().__init__(message, limit=limit, **fields)


class WorkerCrashedError(InputError):
    """The worker process reading the input died: a decoder crashed on it. The input is
    refused; the next one is read by a new worker. ``exit_code`` is the process's (negative:
    the signal that killed it)."""

    code = "input.worker_crashed"
    field_names = ("path", "exit_code")

    def __init__(self, message: str, exit_code: int | None = None, **fields: Any):
        super().__init__(message, exit_code=exit_code, **fields)


class ServeConfigError(RadedgeError):
    """A ``radedge serve`` configuration cannot be used: a setting is unknown, of the wrong
    type or out of range, or names a file that is not there. The message names the setting."""

    code = "serve.config"
    field_names = ()
