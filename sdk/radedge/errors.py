"""The one exception hierarchy radedge raises.

Every error says what was expected, what arrived and what to do about it. Catch
``RadedgeError`` to handle anything radedge refuses; catch a subclass to handle one case.
"""

from __future__ import annotations


class RadedgeError(Exception):
    """Base class of every error radedge raises on purpose."""

    def __reduce__(self):
        # Pickled whole, extra fields included, so an error raised in a worker process
        # reaches the caller as it was raised.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls, args, fields):
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(fields)
    return error


class InputError(RadedgeError):
    """An input image cannot be used (unreadable, unsupported or out of the model's scope)."""


class NotDicomError(InputError):
    """The file is not DICOM (no preamble/meta and not parseable as a raw data set)."""


class NoPixelDataError(InputError):
    """The DICOM object carries no Pixel Data (7FE0,0010): a report, a structured object, a header only."""


class TruncatedPixelDataError(InputError):
    """Pixel Data is shorter than Rows x Columns x samples x frames says it must be."""


class UnsupportedTransferSyntaxError(InputError):
    """No decoder in this installation handles the file's transfer syntax.

    ``missing_packages`` lists the pip packages that would add one (empty when radedge
    knows of no decoder at all for the syntax).
    """

    def __init__(self, message: str, transfer_syntax_uid: str = "", missing_packages: tuple[str, ...] = ()):
        super().__init__(message)
        self.transfer_syntax_uid = transfer_syntax_uid
        self.missing_packages = tuple(missing_packages)


class UnsupportedImageError(InputError):
    """The pixels are of a kind radedge does not process (colour, multi-frame, odd bit depths)."""


class ImageTooLargeError(InputError):
    """The declared image size is beyond what radedge accepts; refused before allocating it."""


class OutOfScopeError(InputError):
    """The image is readable but outside the model's intended input scope (manifest ``scope``)."""


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


class BundleError(RadedgeError):
    """A model bundle is missing, malformed or of an unsupported schema."""


class BundleIntegrityError(BundleError):
    """A bundle file does not match the checksum its manifest records: tampered or truncated."""


class BundleSignatureError(BundleIntegrityError):
    """Trusted keys were given and the bundle's signature does not prove it came from one of them:
    unsigned, signed by another key, a malformed ``manifest.sig``, or a signature that does not
    verify (the manifest was resealed). Also raised for a key file that is not an Ed25519 key."""


class BackendError(RadedgeError):
    """An inference backend failed to load a model or to run it."""


class MissingDependencyError(RadedgeError):
    """An optional package needed for the requested feature is not installed."""

    def __init__(self, package: str, feature: str):
        super().__init__(
            f"{feature} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install {package}"
        )
        self.package = package
        self.feature = feature


class NativeOpError(RadedgeError):
    """A native kernel rejected its arguments or failed while running."""


class CorruptPixelDataError(InputError):
    """Pixel Data is present and as long as the header says, but the decoder rejected it.

    Raised for damaged compressed streams and for codestreams using a coding feature the
    installed decoder does not implement; the message carries the decoder's own words.
    """


class InvalidWindowError(InputError, ValueError):
    """A VOI window or VOI LUT cannot be applied (PS3.3 C.11.2.1.2).

    Raised for a Window Width below what the VOI LUT Function allows (< 1 for LINEAR,
    <= 0 for LINEAR_EXACT and SIGMOID), for a ``voi_index`` past the windows and VOI
    LUTs the image carries, and for a percentile window of an image that is all pixel
    padding. Also a ValueError: the window is a bad argument to the intensity chain.
    """


class NotRegularFileError(InputError):
    """The path names a FIFO, a device, a socket or a directory, not a regular file.

    Refused from ``fstat`` before a byte is read: reading a FIFO or a terminal blocks until
    someone writes to it, and a device such as ``/dev/zero`` never ends.
    """


class InputTooLargeError(ImageTooLargeError):
    """The input is larger than a limit in ``radedge.io.limits``, whatever size of image it declares.

    Raised for a file longer than ``MAX_FILE_BYTES``, a deflated data set whose header
    inflates past ``MAX_INFLATED_HEADER_BYTES``, and a DICOM header of more than
    ``MAX_HEADER_ELEMENTS`` elements or encapsulated Pixel Data of more than
    ``MAX_FRAGMENTS`` items. Refused before the excess is read, inflated or parsed.
    """


class SequenceTooDeepError(InputError):
    """DICOM sequences nest deeper than ``radedge.io.limits.MAX_SEQUENCE_DEPTH`` (PS3.5 7.5).

    Refused while the header's structure is walked, before pydicom parses it: pydicom
    parses nested sequences recursively and would fail with a ``RecursionError``.
    """


class CodestreamMismatchError(CorruptPixelDataError):
    """The compressed frame's own header disagrees with the DICOM Image Pixel module.

    JPEG 2000 SIZ, JPEG SOFn, JPEG-LS SOF55 or the RLE header declares other rows, columns,
    components, precision or segments than Rows, Columns, Samples per Pixel and Bits
    Allocated say. Refused before the decoder runs, since the decoder allocates what the
    codestream declares. ``attribute`` names the DICOM attribute, ``dicom_value`` and
    ``codestream_value`` the two figures.
    """

    def __init__(self, message: str, attribute: str = "", dicom_value: int | None = None,
                 codestream_value: int | None = None):
        super().__init__(message)
        self.attribute = attribute
        self.dicom_value = dicom_value
        self.codestream_value = codestream_value


class EncapsulationMismatchError(CorruptPixelDataError):
    """Pixel Data is encapsulated (undefined length, items) under a native transfer syntax,
    or has a defined length under a compressed one (PS3.5 A.4): the file contradicts itself,
    and decoding it either way would give wrong pixels.
    """


class NotDicomSourceError(InputError):
    """DICOM outputs (SEG, SR, GSPS, KOS) were asked for a result whose input was not DICOM
    (PNG, JPEG, TIFF or an array): there is no patient, study or instance for them to
    belong to."""


class NoImageError(RadedgeError, ValueError):
    """An overlay was asked of a result that holds no image to draw on: one that was pickled
    (the decoded image is not pickled with it) or read back from JSON (``from_dict``). Draw
    the overlay before pickling, or predict again from the source."""


class DicomOutputError(RadedgeError):
    """The DICOM objects for a result could not be made: the source's header lacks, or holds
    malformed, what a SEG, SR, GSPS or KOS must copy or reference (a Study Instance UID, a
    valid SOP Instance UID...). The message names what highdicom refused; the result itself
    (JSON, overlay) is unaffected."""


class TimeBudgetExceededError(InputError):
    """Reading the input took longer than the time budget of one file, and was stopped.

    Decoding runs in a worker process (``radedge run --time-budget``, default
    ``radedge.io.limits.TIME_BUDGET_S``) so that a codestream that makes a native decoder
    run away costs at most the budget, and the files after it are still read. ``limit``
    is the budget in seconds.
    """

    def __init__(self, message: str, limit: float | None = None):
        super().__init__(message)
        self.limit = limit


class MemoryBudgetExceededError(InputError):
    """Reading the input needed more memory than the worker process reading it may use
    (``radedge.io.limits.DECODE_MEMORY_BYTES``); the allocation failed and the read was stopped.
    ``limit`` is the cap in bytes."""

    def __init__(self, message: str, limit: int | None = None):
        super().__init__(message)
        self.limit = limit


class WorkerCrashedError(InputError):
    """The worker process reading the input died: a decoder crashed on it. The input is
    refused; the next one is read by a new worker. ``exit_code`` is the process's (negative:
    the signal that killed it)."""

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.exit_code = exit_code


class ServeConfigError(RadedgeError):
    """A ``radedge serve`` configuration cannot be used: a setting is unknown, of the wrong
    type or out of range, or names a file that is not there. The message names the setting."""
