"""DICOM ingestion: a file, bytes or a pydicom ``Dataset`` -> ``Image`` of stored values.

What is read, and where the standard defines it:

- Pixels (PS3.3 C.7.6.3 Image Pixel Module): one frame, one sample, MONOCHROME1 or
  MONOCHROME2, Bits Allocated 8 or 16, Bits Stored 8-16 with High Bit = Bits Stored - 1,
  Pixel Representation 0 (unsigned) or 1 (two's complement). Decoded through pydicom's
  decoders and plugins (native, deflated, big endian, RLE, JPEG, JPEG-LS, JPEG 2000,
  HTJ2K; ``codecs.preferred_plugin`` names the plugin used) into ``uint8`` / ``uint16`` /
  ``int16`` ``[rows, columns]``, C-contiguous, native byte order. Signed 8-bit stored
  values are widened to ``int16``.
- Intensity (PS3.3 C.11.1 Modality LUT Module, C.11.2 VOI LUT Module, C.11.6
  Presentation LUT Shape, C.7.5.1.1.2 Pixel Padding Value and Pixel Padding Range
  Limit): recorded in ``Intensity``, applied later by ``radedge.intensity.build_lut``.
- Pixel spacing (PS3.3 10.7.1.1 Pixel Spacing, C.8.11.4 DX Detector, C.8.11.5 DX
  Positioning ``EstimatedRadiographicMagnificationFactor``): see ``_spacing``.

Reading is defensive, and every bound is checked before the work it bounds:

- A path must name a regular file (``files.open_regular_file``), and no input may exceed
  ``limits.MAX_FILE_BYTES``.
- The header's structure is walked without reading values (``structure``), so sequences
  nested past ``limits.MAX_SEQUENCE_DEPTH`` or more than ``limits.MAX_HEADER_ELEMENTS``
  elements are refused before pydicom parses them.
- A Deflated Explicit VR Little Endian data set (PS3.5 A.5) is inflated as it is read: at
  most ``limits.MAX_INFLATED_HEADER_BYTES`` before Pixel Data, then only the Pixel Data
  value Rows x Columns need.
- The header is parsed up to Pixel Data (``stop_before_pixels``); the declared size, bit
  depths, frame count and transfer syntax are checked; the Pixel Data element's own
  length and encoding are compared with what the syntax, the header and the file hold;
  then only that element's value is read. Nothing after it is parsed.
- A compressed frame's own header (JPEG 2000 SIZ, JPEG SOFn, JPEG-LS SOF55, RLE header)
  must agree with Rows, Columns, Samples per Pixel and Bits Allocated before the decoder
  runs (``codestreams``).

Every failure is a ``radedge.errors`` ``InputError`` subclass whose message names the
attribute and value at fault; no message or log line carries patient data (only technical
attributes are ever read).
"""

from __future__ import annotations

import copy
import io
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, NamedTuple

import numpy as np
import pydicom
from pydicom import uid as dicom_uid
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError

from ..errors import (
    CorruptPixelDataError,
    EncapsulationMismatchError,
    InputError,
    InputTooLargeError,
    InputTypeError,
    NoPixelDataError,
    NotDicomError,
    SequenceTooDeepError,
    TruncatedPixelDataError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from . import limits
from .codecs import describe_syntax, preferred_plugin, require_decoder
from .codestreams import check_frame, syntax_of_frame
from .files import check_stream, open_regular_file, text_mode
from .image import Image, Intensity, LookupTable, PixelPadding, PixelSpacing, Rescale, Source, Window
from .limits import check_declared_size
from .sniff import ACCEPTED, HEAD_SIZE, describe_bytes, detect_format
from .structure import declared_encoding, first_element_is_implicit, too_many_elements, walk_to_pixel_data

log = logging.getLogger(__name__)

_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)
_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_UNDEFINED_LENGTH = 0xFFFFFFFF
_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def read_dicom(source, *, max_pixels: int | None = None) -> Image:
    """Read one DICOM image into an ``Image`` of stored values.

    ``source``: a path (``str`` / ``os.PathLike``), ``bytes``-like, a binary file object
    (read from its current position), or a ``pydicom.Dataset``. A Part 10 file (preamble
    and ``DICM``) or a raw data set without preamble are both accepted; a raw data set
    without meta information is read in the encoding pydicom detects, and that is noted.
    A path must name a regular file; no input may exceed ``limits.MAX_FILE_BYTES``.

    ``max_pixels`` bounds rows x columns (``None``: ``radedge.io.MAX_PIXELS``); the
    declared size is checked before any pixel is read or decoded, and a compressed frame's
    own header is checked against it before the decoder runs. Nothing after the Pixel Data
    element is read.

    Returns an ``Image`` whose ``pixels`` are ``uint8`` / ``uint16`` / ``int16``
    ``[rows, columns]``, every value inside ``intensity.stored_value_range``.

    Raises ``NotDicomError``, ``NotRegularFileError``, ``NoPixelDataError``,
    ``TruncatedPixelDataError``, ``UnsupportedTransferSyntaxError``,
    ``UnsupportedImageError``, ``ImageTooLargeError`` (``InputTooLargeError`` for the
    limits on the input itself), ``SequenceTooDeepError`` or ``CorruptPixelDataError``
    (``CodestreamMismatchError``, ``EncapsulationMismatchError``).
    """
    return _read(source, max_pixels, decode=True)


def check_dicom(source, *, max_pixels: int | None = None) -> Source:
    """Everything ``read_dicom`` checks before a decoder runs, and the ``Source`` it would
    describe: the header parses, Pixel Data is there and as long as the header says, the
    transfer syntax has a decoder here, the size is within the limits, a compressed frame's
    own header agrees, the lookup tables are well formed. No pixel is decoded, so it costs
    milliseconds: what a receiver can afford before it answers the sender. Raises what
    ``read_dicom`` raises; a file that passes may still fail to decode (a codestream damaged
    past its header)."""
    return _read(source, max_pixels, decode=False)


def _read(source, max_pixels: int | None, *, decode: bool):
    if isinstance(source, Dataset):
        filename = source.filename if isinstance(getattr(source, "filename", None), str) else None
        with _damaged_header_is_an_input_error(filename):
            return _read_dataset_object(source, filename, max_pixels, decode)
    with _binary_stream(source) as (stream, path), _damaged_header_is_an_input_error(path):
        return _read_stream(stream, path, max_pixels, decode)


#: What pydicom raises while converting a damaged element (it converts lazily, on first
#: access: an unknown VR, a value of the wrong length, a sequence item without a tag). Code
#: reading ``Image.header`` later (the DICOM outputs) meets the same.
PARSE_ERRORS = (InvalidDicomError, BytesLengthException, EOFError, OSError, struct.error,
                 ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError,
                 NotImplementedError)


@contextmanager
def _damaged_header_is_an_input_error(path: str | None) -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        if path is not None:
            exc.fields.setdefault("path", path)
        raise
    except RecursionError:
        # The structure walk refuses deep nesting before pydicom parses; this catches what
        # it could not see: a caller's Dataset, or bytes the walk did not understand.
        raise _too_deep(path) from None
    except PARSE_ERRORS as exc:
        if _recursion_behind(exc):
            raise _too_deep(path) from None
        raise NotDicomError(
            f"{_where(path)} has a damaged DICOM header ({type(exc).__name__}: "
            f"{_first_line(exc)}). The file was corrupted in storage or transfer; send it again."
        ) from None


def _too_deep(path: str | None) -> SequenceTooDeepError:
    return SequenceTooDeepError(
        f"{_where(path)} nests its DICOM sequences too deeply for pydicom to parse "
        f"(Python's recursion limit was reached); radiograph headers nest 3 or 4 deep. "
        "The file is damaged or was made to exhaust the reader; ask the sender for the "
        "image again."
    )


def _recursion_behind(exc: BaseException) -> bool:
    """Whether ``exc`` stands for a RecursionError: pydicom turns any exception while reading
    an item's tag into ``OSError("No tag to read ...")``, the RecursionError as its context."""
    return isinstance(exc, RecursionError) or isinstance(exc.__context__, RecursionError)


# --------------------------------------------------------------------------- sources


@contextmanager
def _binary_stream(source) -> Iterator[tuple[BinaryIO, str | None]]:
    """Yield a seekable binary stream for a path, bytes or file object, and the path.

    Each is refused past ``limits.MAX_FILE_BYTES`` before it is read; a path (and a file
    object with a descriptor) must be a regular file.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        with open_regular_file(path) as stream:
            yield stream, path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        limits.check_input_size(memoryview(source).nbytes, "the input")
        yield io.BytesIO(bytes(source)), None
    elif hasattr(source, "read"):
        name = getattr(source, "name", None)
        path = name if isinstance(name, str) else None
        if isinstance(source, io.TextIOBase) or text_mode(getattr(source, "mode", "b")):
            raise InputTypeError(
                f"{_where(path)} is a file object opened in text mode; DICOM is bytes. Open it with "
                "open(path, 'rb'), or pass the path.", received="text file object", expected=["binary file object"],
                path=path)
        check_stream(source, _where(path))
        if getattr(source, "seekable", lambda: False)():
            position = source.tell()
            size = source.seek(0, io.SEEK_END) - position
            source.seek(position)
            limits.check_input_size(size, _where(path))
            yield source, path
        else:
            content = source.read(limits.MAX_FILE_BYTES + 1)
            limits.check_input_size(len(content), _where(path))
            yield io.BytesIO(content), path
    else:
        raise InputTypeError(
            "read_dicom reads a path, bytes, a binary file object or a pydicom Dataset, "
            f"not a {type(source).__name__}",
            received=type(source).__name__,
            expected=["str", "os.PathLike", "bytes", "bytearray", "memoryview", "binary file object",
                      "pydicom.Dataset"],
        )


def _where(path: str | None) -> str:
    return f"'{path}'" if path else "the input"


class _StreamBytes:
    """Random access to a seekable stream's bytes up to ``end``."""

    def __init__(self, stream: BinaryIO, end: int):
        self._stream = stream
        self.end = end

    def read_at(self, offset: int, size: int) -> bytes:
        self._stream.seek(offset)
        return self._stream.read(max(0, min(size, self.end - offset)))

    def available(self, upto: int) -> int:
        """How many bytes there are, up to ``upto``."""
        return min(upto, self.end)


class _HeaderReads:
    """``stream`` as pydicom parses a header from it, bounded in two ways.

    Each read asks for no more than is left before ``end``: pydicom reads an element's value
    with ``read(length)`` as its header declares it, and a buffered file allocates the bytes
    asked for before it finds fewer, so one damaged length of 4 GiB cost 4 GiB of address
    space (refused outright where memory is not overcommitted) for a file of a few kilobytes.

    Reads are counted: pydicom makes two or three per element, and past ``READS_PER_ELEMENT``
    x ``limits.MAX_HEADER_ELEMENTS`` the parse stops with ``InputTooLargeError``. The header
    walk (``structure.walk_to_pixel_data``) counts elements first, but hands over when it
    meets bytes it cannot read as elements; pydicom, reading on, once parsed the eight
    million empty elements of 60 MiB of zeros for a minute.
    """

    READS_PER_ELEMENT = 4

    def __init__(self, stream: BinaryIO, end: int, where: str):
        self._stream = stream
        self._end = end
        self._where = where
        self._reads_left = self.READS_PER_ELEMENT * limits.MAX_HEADER_ELEMENTS

    def read(self, size: int | None = -1) -> bytes:
        self._reads_left -= 1
        if self._reads_left < 0:
            raise too_many_elements(self._where, limits.MAX_HEADER_ELEMENTS)
        if size is None or size < 0:
            return self._stream.read(max(0, self._end - self._stream.tell()))
        return self._stream.read(max(0, min(size, self._end - self._stream.tell())))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _InflatedBytes:
    """A Deflated Explicit VR Little Endian data set (PS3.5 A.5), inflated only as far as read.

    Deflate compresses zeros about 1000:1, so a file of one megabyte can inflate to a
    gigabyte. Reading inflates in bounded steps up to ``limit``; a read that needs more
    raises ``InputTooLargeError`` instead. The limit starts at the header allowance and is
    raised to the end of the Pixel Data value once Rows x Columns have been checked; of what
    follows the Pixel Data, at most one step is inflated.
    """

    _STEP = 1 << 16  # bytes read or inflated at a time

    def __init__(self, stream: BinaryIO, offset: int, end: int, path: str | None):
        self._stream = stream
        self._position = offset
        self._end = end
        self._path = path
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.content = bytearray()
        self.limit = limits.MAX_INFLATED_HEADER_BYTES

    def read_at(self, offset: int, size: int) -> bytes:
        self._inflate_to(offset + size)
        return bytes(self.content[offset:offset + size])

    def available(self, upto: int) -> int:
        self._inflate_to(upto)
        return min(upto, len(self.content))

    def _inflate_to(self, target: int) -> None:
        if len(self.content) >= target or self._inflater.eof:
            return
        if target > self.limit:
            self._inflate_to(self.limit)
            if len(self.content) >= self.limit and not self._inflater.eof:
                raise InputTooLargeError(
                    f"{_where(self._path)} is a Deflated Explicit VR Little Endian data set whose "
                    f"header inflates to more than {limits.MAX_INFLATED_HEADER_BYTES} bytes "
                    "before its Pixel Data (radedge.io.limits.MAX_INFLATED_HEADER_BYTES); a "
                    "radiograph's header is a few kilobytes. Refused before inflating further: "
                    "the file is damaged or a deflate bomb. Ask the sender for it uncompressed."
                )
            return
        target = min(max(target, len(self.content) + self._STEP), self.limit)
        while len(self.content) < target and not self._inflater.eof:
            compressed = self._inflater.unconsumed_tail
            if not compressed and self._position < self._end:
                self._stream.seek(self._position)
                compressed = self._stream.read(min(self._STEP, self._end - self._position))
                self._position += len(compressed)
            try:
                inflated = self._inflater.decompress(
                    compressed, min(target - len(self.content), self._STEP))
            except zlib.error as exc:
                raise CorruptPixelDataError(
                    f"{_where(self._path)} uses Deflated Explicit VR Little Endian but its "
                    f"deflate stream is damaged ({exc}). Send it again."
                ) from None
            if not inflated and not compressed:
                raise TruncatedPixelDataError(
                    f"{_where(self._path)} uses Deflated Explicit VR Little Endian and its "
                    "deflate stream ends early: the file was cut off in transfer. Send it again."
                )
            self.content += inflated


# --------------------------------------------------------------------------- reading


def _read_stream(stream: BinaryIO, path: str | None, max_pixels: int | None, decode: bool) -> Image | Source:
    """Read from a seekable stream: header up to Pixel Data, then that element alone."""
    start = stream.tell()
    head = stream.read(HEAD_SIZE)
    file_end = stream.seek(0, io.SEEK_END)
    stream.seek(start)
    kind = detect_format(head)
    if kind not in ("dicom", "dicom-raw"):
        hint = (
            f" It is a {kind.upper()} image: read it with radedge.io.read_image or read_raster."
            if kind
            else f" radedge reads {ACCEPTED}."
        )
        raise NotDicomError(
            f"{_where(path)} is not DICOM: {describe_bytes(head)}; there is no 'DICM' at "
            f"byte 128 and it does not start like a raw data set.{hint}"
        )
    data_set_offset, declared_syntax = _file_meta_syntax(stream, start)
    if declared_syntax == dicom_uid.DeflatedExplicitVRLittleEndian:
        content = _InflatedBytes(stream, data_set_offset, file_end, path)
        walk = walk_to_pixel_data(content.read_at, 0, implicit_vr=False, little_endian=True,
                                  where=_where(path))
        if walk.pixel_data_offset is None and not walk.understood:
            # The walk stopped at bytes it could not read as elements; pydicom reads some
            # such headers, so it gets the whole header allowance to try.
            content.available(content.limit + 1)
        inflated = bytes(content.content)
        header_stream = _HeaderReads(io.BytesIO(inflated), len(inflated), _where(path))
        header = _parse(header_stream, 0, True, path, stop_before_pixels=True)
        # The inflated content is an Explicit VR Little Endian data set (PS3.5 A.5).
        return _read_pixel_data(header, content, header_stream.tell(),
                                str(dicom_uid.ExplicitVRLittleEndian), None, path, max_pixels, decode,
                                reported_syntax=dicom_uid.DeflatedExplicitVRLittleEndian)

    source = _StreamBytes(stream, file_end)
    implicit_vr, little_endian = declared_encoding(declared_syntax,
                                                   source.read_at(data_set_offset, 6))
    walk_to_pixel_data(source.read_at, data_set_offset, implicit_vr=implicit_vr,
                       little_endian=little_endian, where=_where(path))
    header = _parse(_HeaderReads(stream, file_end, _where(path)), start, kind == "dicom-raw", path,
                    stop_before_pixels=True)
    syntax_uid, syntax_note = _transfer_syntax(header, path)
    # stop_before_pixels leaves the stream at the tag of the pixel data element.
    return _read_pixel_data(header, source, stream.tell(), syntax_uid, syntax_note, path,
                            max_pixels, decode)


def _read_pixel_data(header: Dataset, source, position: int, syntax_uid: str,
                     syntax_note: str | None, path: str | None, max_pixels: int | None, decode: bool, *,
                     reported_syntax: str | None = None) -> Image | Source:
    """Check the Pixel Data element at ``position`` against the header, read it, decode.

    Only that element's value is read: whatever follows it (trailing padding, digital
    signatures, or megabytes of junk) is never parsed.
    """
    notes = [syntax_note] if syntax_note else []
    # The encoding pydicom found the data set in, which overrules the one declared.
    implicit_vr, little_endian = header.original_encoding[:2]
    pixel_element = _pixel_element_header(source.read_at, position, bool(implicit_vr),
                                          little_endian is not False)
    if pixel_element is None:
        _raise_no_pixel_data(header, path)
    if pixel_element.tag in _FLOAT_PIXEL_DATA:
        _raise_float_pixel_data(path)
    layout = _check_header(header, path, max_pixels)
    if isinstance(source, _InflatedBytes):
        source.limit = max(source.limit, pixel_element.value_offset + layout.expected_bytes + 1)
    value_offset, size = _pixel_value_extent(source, pixel_element, syntax_uid, layout, path)
    value = source.read_at(value_offset, size)
    undefined_length = pixel_element.length == _UNDEFINED_LENGTH
    vr = pixel_element.vr or ("OB" if undefined_length else "OW")
    header.add(DataElement(_PIXEL_DATA, vr, value, is_undefined_length=undefined_length))
    return _decode_and_describe(header, syntax_uid, layout, path, notes, decode, reported_syntax=reported_syntax)


# File meta elements whose explicit-VR header has a 32-bit length (PS3.5 7.1.2).
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())


def _file_meta_syntax(stream: BinaryIO, start: int) -> tuple[int, str | None]:
    """Where the data set begins after the File Meta Information, and its Transfer Syntax UID.

    Parsed here, without pydicom, because pydicom inflates a deflated data set in full
    before returning anything: the size limits must bound that inflation first.
    The meta group (PS3.10 7.1) is always Explicit VR Little Endian.
    """
    stream.seek(start)
    position = start + HEAD_SIZE if stream.read(HEAD_SIZE)[128:132] == b"DICM" else start
    stream.seek(position)
    syntax = None
    while True:
        raw = stream.read(8)
        if len(raw) < 8 or struct.unpack("<H", raw[:2])[0] != 0x0002:
            break
        element = struct.unpack("<H", raw[2:4])[0]
        if raw[4:6] in _LONG_VRS:
            extra = stream.read(4)
            if len(extra) < 4:
                break
            header, length = 12, struct.unpack("<I", extra)[0]
        else:
            header, length = 8, struct.unpack("<H", raw[6:8])[0]
        value = stream.read(min(length, 1024))
        if element == 0x0010:
            syntax = value.rstrip(b"\x00 ").decode("ascii", "replace")
        position += header + length
        stream.seek(position)
    return position, syntax


def _read_dataset_object(dataset: Dataset, path: str | None, max_pixels: int | None,
                         decode: bool) -> Image | Source:
    syntax_uid, syntax_note = dataset_transfer_syntax(dataset, path)
    notes = [syntax_note] if syntax_note else []
    if _PIXEL_DATA not in dataset:
        if any(tag in dataset for tag in _FLOAT_PIXEL_DATA):
            _raise_float_pixel_data(path)
        _raise_no_pixel_data(dataset, path)
    layout = _check_header(dataset, path, max_pixels)
    syntax = describe_syntax(syntax_uid)
    if not syntax.encapsulated:
        element = dataset.get_item(_PIXEL_DATA, keep_deferred=True)
        undefined_length = (element.length == _UNDEFINED_LENGTH if isinstance(element, RawDataElement)
                            else element.is_undefined_length)
        if undefined_length:
            raise EncapsulationMismatchError(
                f"{_where(path)} declares the uncompressed transfer syntax {syntax.name} but its "
                "Pixel Data was read with undefined length, the encoding of compressed "
                "fragments (PS3.5 A.4); read as uncompressed it would be shifted by the item "
                "headers. Set file_meta.TransferSyntaxUID to the syntax the data was "
                "compressed in, or ask the sender for the image uncompressed."
            )
        value = element.value
        held = element.length if value is None else len(value)
        _check_native_length(held, layout, path)
    return _decode_and_describe(dataset, syntax_uid, layout, path, notes, decode)


def _parse(stream: BinaryIO, start: int, force: bool, path: str | None, *,
           stop_before_pixels: bool) -> Dataset:
    """``dcmread`` with every parsing failure turned into a radedge error."""
    stream.seek(start)
    try:
        dataset = pydicom.dcmread(stream, force=force, stop_before_pixels=stop_before_pixels)
    except zlib.error as exc:
        raise TruncatedPixelDataError(
            f"{_where(path)} uses Deflated Explicit VR Little Endian and its deflate stream "
            f"cannot be inflated ({exc}): the file was cut off or damaged in transfer. "
            "Send it again."
        ) from None
    except RecursionError:
        raise _too_deep(path) from None
    except PARSE_ERRORS as exc:
        if _recursion_behind(exc):
            raise _too_deep(path) from None
        what = "a raw data set" if force else "a DICOM file ('DICM' at byte 128)"
        raise NotDicomError(
            f"{_where(path)} starts like {what} but its header cannot be parsed "
            f"({type(exc).__name__}: {_first_line(exc)}). The file is damaged or not DICOM; "
            f"radedge reads {ACCEPTED}."
        ) from None
    if len(dataset) == 0:
        what = ("has no 'DICM' at byte 128 and does not parse as a raw data set" if force
                else "has a DICOM preamble but no data set elements could be read after it")
        raise NotDicomError(
            f"{_where(path)} {what}: the header cannot be parsed. The file is damaged or not "
            f"DICOM; radedge reads {ACCEPTED}."
        )
    return dataset


def _first_line(exc: BaseException) -> str:
    """The exception's text on one line, bounded: pydicom lists one line per plugin tried."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines())
    return text[:400] if text else type(exc).__name__


def _transfer_syntax(dataset: Dataset, path: str | None) -> tuple[str, str | None]:
    """The data set's Transfer Syntax UID (0002,0010), inferred when there is no meta."""
    meta = getattr(dataset, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        uid = str(uid).strip()
        if not dicom_uid.UID(uid).is_transfer_syntax:
            require_decoder(uid)  # raises UnsupportedTransferSyntaxError naming the UID
        return uid, None
    implicit, little = getattr(dataset, "original_encoding", (None, None))
    if implicit is None or little is None:
        raise UnsupportedTransferSyntaxError(
            f"{_where(path)} has no Transfer Syntax UID (0002,0010) and was not read from a "
            "file, so the encoding of its Pixel Data is unknown. Set "
            "dataset.file_meta.TransferSyntaxUID (e.g. pydicom.uid.ExplicitVRLittleEndian)."
        )
    if implicit:
        uid = dicom_uid.ImplicitVRLittleEndian
    elif little:
        uid = dicom_uid.ExplicitVRLittleEndian
    else:
        uid = dicom_uid.ExplicitVRBigEndian
    return str(uid), (
        f"no Transfer Syntax UID (0002,0010) in the file: read as {uid.name}, "
        "the encoding its data elements use"
    )


#: The Item tag (FFFE,E000) in little endian: the first bytes of encapsulated Pixel Data.
_ITEM_TAG_BYTES = b"\xfe\xff\x00\xe0"


def dataset_transfer_syntax(dataset: Dataset, path: str | None = None) -> tuple[str, str | None]:
    """The Transfer Syntax of a ``pydicom.Dataset``'s Pixel Data, and a note when it was inferred.

    ``dataset.file_meta.TransferSyntaxUID`` when present (``dcmread`` sets it). Without it (a
    C-STORE handler's ``event.dataset`` in pynetdicom, decoded from the network with no file
    meta; a data set made in memory), from the Pixel Data itself:

    - encapsulated (undefined length, or a value starting with an Item tag): the syntax the
      first fragment's codestream declares (``codestreams.syntax_of_frame``: JPEG, JPEG-LS,
      JPEG 2000, HTJ2K, RLE);
    - native: Implicit VR Little Endian, Explicit VR Little Endian or Explicit VR Big Endian as
      the data set was decoded (``original_encoding``); a data set made in memory is taken as
      little endian. Whether the value is as long as Rows x Columns x Bits Allocated needs is
      checked afterwards, as for a file.

    Raises ``UnsupportedTransferSyntaxError`` when encapsulated Pixel Data starts with no
    codestream radedge knows; pass ``transfer_syntax_uid`` (``read_image``, ``predict``) then.
    """
    meta = getattr(dataset, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return _transfer_syntax(dataset, path)
    implicit, little = getattr(dataset, "original_encoding", (None, None))
    element = dataset.get_item(_PIXEL_DATA, keep_deferred=True) if _PIXEL_DATA in dataset else None
    value = None if element is None else element.value
    undefined_length = element is not None and (
        element.length == _UNDEFINED_LENGTH if isinstance(element, RawDataElement) else element.is_undefined_length)
    if isinstance(value, (bytes, bytearray)) and (undefined_length or bytes(value[:4]) == _ITEM_TAG_BYTES):
        try:
            uid, reason = syntax_of_frame(_first_frame(value, path))
        except ValueError as exc:
            raise UnsupportedTransferSyntaxError(
                f"{_where(path)} has no Transfer Syntax UID (0002,0010) and its Pixel Data is compressed, but "
                f"the codec cannot be told: {exc}. Pass the transfer syntax the data was received in "
                "(transfer_syntax_uid=..., the presentation context's) or set dataset.file_meta.TransferSyntaxUID."
            ) from None
        require_decoder(uid)
        return uid, (f"no Transfer Syntax UID (0002,0010): Pixel Data read as {dicom_uid.UID(uid).name}, "
                     f"the syntax of its first fragment ({reason})")
    if implicit:
        uid = dicom_uid.ImplicitVRLittleEndian
    elif little is False:
        uid = dicom_uid.ExplicitVRBigEndian
    else:
        uid = dicom_uid.ExplicitVRLittleEndian
    how = ("the encoding the data set was decoded in" if implicit is not None and little is not None
           else "the data set was made in memory, so little endian is assumed")
    return str(uid), (f"no Transfer Syntax UID (0002,0010): uncompressed Pixel Data read as {uid.name}, "
                      f"{how}")


class _PixelElement(NamedTuple):
    """The header of the top-level Pixel Data element: where its value starts, how long it is."""

    tag: int
    value_offset: int
    length: int  # _UNDEFINED_LENGTH for encapsulated Pixel Data
    vr: str | None  # as written (explicit VR), None for implicit VR


def _pixel_element_header(read_at, offset: int, implicit_vr: bool, little_endian: bool) -> _PixelElement | None:
    """Parse the element header at ``offset`` if it is (7FE0,0010/0008/0009), else None."""
    order = "<" if little_endian else ">"
    raw = read_at(offset, 12)
    if len(raw) < 8:
        return None
    group, element = struct.unpack(order + "HH", raw[:4])
    tag = group << 16 | element
    if tag not in (_PIXEL_DATA, *_FLOAT_PIXEL_DATA):
        return None
    # An explicit VR element whose VR bytes are not letters is read as implicit, as pydicom
    # does (some writers switch encodings).
    if implicit_vr or first_element_is_implicit(raw):
        (length,) = struct.unpack(order + "I", raw[4:8])
        return _PixelElement(tag, offset + 8, length, None)
    if len(raw) < 12:
        return _PixelElement(tag, offset + len(raw), 0, raw[4:6].decode("ascii"))
    (length,) = struct.unpack(order + "I", raw[8:12])
    return _PixelElement(tag, offset + 12, length, raw[4:6].decode("ascii"))


def _pixel_value_extent(source, pixel_element: _PixelElement, syntax_uid: str, layout,
                        path: str | None) -> tuple[int, int]:
    """Where the Pixel Data value to read starts, and how many bytes of it to read.

    Compares the element's declared extent with the transfer syntax, the header and the
    bytes present. Native data is read only as far as Rows x Columns x Bits Allocated
    need (pydicom drops any excess): a length field claiming gigabytes costs nothing.
    """
    value_offset, length = pixel_element.value_offset, pixel_element.length
    syntax = describe_syntax(syntax_uid)
    if length == _UNDEFINED_LENGTH:
        if not syntax.encapsulated:
            raise EncapsulationMismatchError(
                f"{_where(path)} declares the uncompressed transfer syntax {syntax.name} but its "
                "Pixel Data has undefined length, the encoding of compressed fragments "
                "(PS3.5 A.4); read as uncompressed it would be shifted by the item headers. "
                "The sender wrote an invalid file; ask for it again, uncompressed or with the "
                "transfer syntax its data was compressed in."
            )
        end = _check_encapsulated_items(source, value_offset, path)
        return value_offset, end - value_offset
    if syntax.encapsulated:
        raise EncapsulationMismatchError(
            f"{_where(path)} uses the compressed transfer syntax {syntax.name} "
            "but its Pixel Data has a defined length instead of encapsulated fragments "
            "(PS3.5 A.4). The sender wrote an invalid file; ask for it uncompressed."
        )
    needed = min(length, layout.expected_bytes + layout.expected_bytes % 2)
    present = source.available(value_offset + needed) - value_offset
    if present < needed:
        raise TruncatedPixelDataError(
            f"{_where(path)} ends {present} bytes into its Pixel Data, which declares "
            f"{length} bytes ({layout.rows} x {layout.columns} x {layout.bits_allocated // 8} "
            "bytes needs "
            f"{layout.expected_bytes}): the file was cut off in transfer. Send it again.",
            expected=layout.expected_bytes, received=present,
        )
    _check_native_length(length, layout, path)
    return value_offset, needed


def _check_native_length(held: int, layout, path: str | None) -> None:
    if held < layout.expected_bytes:
        raise TruncatedPixelDataError(
            f"{_where(path)} holds {held} bytes of Pixel Data but Rows {layout.rows} x Columns "
            f"{layout.columns} x {layout.bits_allocated} bits allocated needs "
            f"{layout.expected_bytes} bytes: the data was cut short or the header's size "
            "attributes are wrong. Send the original image again.",
            expected=layout.expected_bytes, received=held,
        )


def _check_encapsulated_items(source, value_offset: int, path: str | None) -> int:
    """Walk the items of encapsulated Pixel Data (PS3.5 A.4) without reading fragments.

    Returns the offset of the Sequence Delimitation Item. A file cut off inside the
    fragments makes pydicom silently drop the element; this walk finds the cut and says so.
    At most ``limits.MAX_FRAGMENTS`` items are walked.
    """
    position = value_offset
    for _ in range(limits.MAX_FRAGMENTS + 1):
        raw = source.read_at(position, 8)
        if len(raw) < 8:
            raise TruncatedPixelDataError(
                f"{_where(path)} ends inside its compressed Pixel Data "
                f"({source.available(position + 8) - value_offset} bytes of fragments, no "
                "Sequence Delimitation Item): the file was cut off in transfer. Send it again."
            )
        group, element, length = struct.unpack("<HHI", raw)
        tag = group << 16 | element
        if tag == _SEQUENCE_DELIMITER:
            return position
        if tag != _ITEM:
            raise CorruptPixelDataError(
                f"{_where(path)} has encapsulated Pixel Data with ({group:04X},{element:04X}) "
                f"where an Item tag (FFFE,E000) belongs, {position - value_offset} bytes in: "
                "the compressed data is damaged. Send the image again or uncompressed."
            )
        end = position + 8 + length
        if length == _UNDEFINED_LENGTH or source.available(end) < end:
            remaining = source.available(end) - position - 8
            raise TruncatedPixelDataError(
                f"{_where(path)} ends inside a fragment of its compressed Pixel Data (the "
                f"fragment declares {length} bytes, {remaining} remain): "
                "the file was cut off in transfer. Send it again."
            )
        position = end
    raise InputTooLargeError(
        f"{_where(path)} has more than {limits.MAX_FRAGMENTS} items in its compressed Pixel Data "
        "(radedge.io.limits.MAX_FRAGMENTS) for a single frame; writers use one fragment or a "
        "few hundred. Refused before reading them: the file is damaged or was made to exhaust "
        "the reader. Ask the sender for the image again."
    )


def _first_frame(value, path: str | None):
    """The compressed bytes of frame 0 of encapsulated Pixel Data (PS3.5 A.4).

    The first item is the Basic Offset Table; every fragment after it belongs to the one
    frame of a single-frame image (multi-frame images are refused before this). One
    fragment is returned as a view, several are joined, as pydicom's decoders join them.
    """
    view = memoryview(value)
    fragments = []
    position = 0
    for index in range(limits.MAX_FRAGMENTS + 1):
        if position + 8 > len(view):
            break
        group, element, length = struct.unpack_from("<HHI", view, position)
        tag = group << 16 | element
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM or position + 8 + length > len(view):
            raise CorruptPixelDataError(
                f"{_where(path)} has encapsulated Pixel Data whose item {index} is not a whole "
                "Item (FFFE,E000) of the declared length: the compressed data is damaged. "
                "Send the image again or uncompressed."
            )
        if index > 0:
            fragments.append(view[position + 8:position + 8 + length])
        position += 8 + length
    else:
        raise InputTooLargeError(
            f"{_where(path)} has more than {limits.MAX_FRAGMENTS} items in its compressed Pixel "
            "Data (radedge.io.limits.MAX_FRAGMENTS) for a single frame. Refused before decoding."
        )
    if not fragments:
        raise CorruptPixelDataError(
            f"{_where(path)} has encapsulated Pixel Data without a fragment after its Basic "
            "Offset Table (PS3.5 A.4): there is no compressed frame. Send the image again."
        )
    return fragments[0] if len(fragments) == 1 else b"".join(fragments)


def _raise_no_pixel_data(dataset: Dataset, path: str | None) -> None:
    sop_class = _text(dataset, "SOPClassUID")
    what = ""
    if sop_class:
        name = dicom_uid.UID(sop_class).name
        what = f" It is a {name} object." if name != sop_class else f" Its SOP Class UID is {sop_class}."
    maybe_cut = ""
    if "Rows" in dataset and "Columns" in dataset:
        maybe_cut = (
            " Its header describes an image (Rows and Columns are present), so the file may "
            "have been cut off before the Pixel Data: send it again."
        )
    raise NoPixelDataError(
        f"{_where(path)} carries no Pixel Data (7FE0,0010).{what}{maybe_cut} radedge reads "
        "images only; structured reports, presentation states and other non-image objects "
        "cannot be analysed.",
        sop_class_uid=sop_class,
    )


def _raise_float_pixel_data(path: str | None) -> None:
    raise UnsupportedImageError(
        f"{_where(path)} stores Float or Double Float Pixel Data (7FE0,0008/0009), used for "
        "parametric maps; radiographs store integer Pixel Data (7FE0,0010)."
    )


# --------------------------------------------------------------------------- header checks


class _Layout:
    """The Image Pixel module attributes radedge depends on, validated."""

    def __init__(self, rows, columns, samples, bits_allocated, bits_stored, signed, photometric):
        self.rows = rows
        self.columns = columns
        self.samples = samples
        self.bits_allocated = bits_allocated
        self.bits_stored = bits_stored
        self.signed = signed
        self.photometric = photometric

    @property
    def expected_bytes(self) -> int:
        return self.rows * self.columns * (self.bits_allocated // 8)


def _integer(dataset: Dataset, keyword: str, path: str | None, *, required: bool = True) -> int | None:
    if keyword not in dataset or dataset[keyword].VM == 0:
        if required:
            raise UnsupportedImageError(
                f"{_where(path)} has no {keyword} {_tag_of(keyword)}, which the Image Pixel module "
                "(PS3.3 C.7.6.3) requires; the sender wrote an incomplete header.",
                attribute=keyword,
            )
        return None
    raw = dataset[keyword].value
    try:
        if isinstance(raw, (list, tuple, pydicom.multival.MultiValue)):
            raise ValueError
        return int(str(raw).strip())
    except (TypeError, ValueError):
        raise UnsupportedImageError(
            f"{_where(path)} has {keyword} {_tag_of(keyword)} = {_short(raw)}, not a single integer.",
            attribute=keyword, received=_short(raw),
        ) from None


def _tag_of(keyword: str) -> str:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})" if tag is not None else ""


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(dataset: Dataset, keyword: str) -> str | None:
    if keyword not in dataset:
        return None
    value = dataset[keyword].value
    if value is None or value == "":
        return None
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        value = "\\".join(str(v) for v in value)
    return str(value).strip() or None


def _check_header(dataset: Dataset, path: str | None, max_pixels: int | None) -> _Layout:
    """Validate the Image Pixel module (PS3.3 C.7.6.3) before anything is decoded."""
    samples = _integer(dataset, "SamplesPerPixel", path, required=False) or 1
    photometric = (_text(dataset, "PhotometricInterpretation") or "").upper()
    if not photometric:
        raise UnsupportedImageError(
            f"{_where(path)} has no Photometric Interpretation (0028,0004), which the Image "
            "Pixel module (PS3.3 C.7.6.3) requires: whether large values are bright or dark "
            "is unknown. The sender wrote an incomplete header."
        )
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImageError(
            f"{_where(path)} has Photometric Interpretation {photometric} with {samples} sample(s) "
            "per pixel; radedge reads greyscale radiographs only (MONOCHROME1 or MONOCHROME2, "
            "one sample). Colour (RGB, YBR_*) and PALETTE COLOR images are refused rather "
            "than converted, because a model trained on greyscale X-rays has no defined "
            "output for them.",
            attribute="PhotometricInterpretation", received=photometric,
        )
    frames = _integer(dataset, "NumberOfFrames", path, required=False)
    if frames is not None and frames > 1:
        raise UnsupportedImageError(
            f"{_where(path)} is a multi-frame image (Number of Frames = {frames}); radedge "
            "analyses single-frame radiographs. Split the frames (e.g. with dcmtk or "
            "pydicom) and send them one by one.",
            attribute="NumberOfFrames", received=frames,
        )
    bits_allocated = _integer(dataset, "BitsAllocated", path)
    if bits_allocated not in (8, 16):
        raise UnsupportedImageError(
            f"{_where(path)} has Bits Allocated (0028,0100) = {bits_allocated}; radedge reads "
            "8 or 16 bits per pixel (1-bit segmentations and 32-bit dose grids are not "
            "radiographs).",
            attribute="BitsAllocated", received=bits_allocated,
        )
    bits_stored = _integer(dataset, "BitsStored", path)
    if not 8 <= bits_stored <= 16 or bits_stored > bits_allocated:
        raise UnsupportedImageError(
            f"{_where(path)} has Bits Stored (0028,0101) = {bits_stored} with Bits Allocated "
            f"{bits_allocated}; radedge reads 8 to 16 stored bits, no more than allocated.",
            attribute="BitsStored", received=bits_stored,
        )
    high_bit = _integer(dataset, "HighBit", path)
    if high_bit != bits_stored - 1:
        raise UnsupportedImageError(
            f"{_where(path)} has High Bit (0028,0102) = {high_bit} with Bits Stored "
            f"{bits_stored}. PS3.5 8.1.1 allows only High Bit = Bits Stored - 1 "
            f"(= {bits_stored - 1}) for current transfer syntaxes; other values come from "
            "retired ACR-NEMA layouts whose bit positions radedge will not guess.",
            attribute="HighBit", received=high_bit,
        )
    representation = _integer(dataset, "PixelRepresentation", path)
    if representation not in (0, 1):
        raise UnsupportedImageError(
            f"{_where(path)} has Pixel Representation (0028,0103) = {representation}; "
            "only 0 (unsigned) and 1 (two's complement) exist.",
            attribute="PixelRepresentation", received=representation,
        )
    rows = _integer(dataset, "Rows", path)
    columns = _integer(dataset, "Columns", path)
    if rows <= 0 or columns <= 0:
        raise UnsupportedImageError(
            f"{_where(path)} declares Rows {rows} x Columns {columns}: an empty image."
        )
    check_declared_size(rows, columns, max_pixels, f"{_where(path)} (DICOM Rows x Columns)")
    return _Layout(rows, columns, samples, bits_allocated, bits_stored, representation == 1, photometric)


# --------------------------------------------------------------------------- decoding


def _decode_and_describe(dataset: Dataset, syntax_uid: str, layout: _Layout, path: str | None,
                         notes: list[str], decode: bool, reported_syntax: str | None = None) -> Image | Source:
    # Parse intensity metadata first: a malformed LUT refuses the image before decoding.
    little_endian = dicom_uid.UID(syntax_uid).is_little_endian
    if little_endian is None:
        little_endian = dataset.original_encoding[1] is not False
    intensity = _intensity(dataset, layout, bool(little_endian), path, notes)
    if decode:
        pixels = _decode(dataset, syntax_uid, layout, path, notes)
    else:
        _check_decodable(dataset, syntax_uid, layout, path)
    spacing, spacing_problem = _spacing(dataset, notes)
    syntax = describe_syntax(reported_syntax or syntax_uid)
    source = Source(
        path=path,
        format="dicom",
        transfer_syntax_uid=syntax.uid,
        transfer_syntax_name=syntax.name,
        sop_class_uid=_text(dataset, "SOPClassUID"),
        modality=_text(dataset, "Modality"),
        presentation_intent=_text(dataset, "PresentationIntentType"),
        body_part=_text(dataset, "BodyPartExamined"),
        view_position=_text(dataset, "ViewPosition"),
    )
    if not decode:
        return source
    log.debug(
        "read DICOM %s: %s, %d x %d, %d of %d bits %s, %s",
        source.modality or "(no modality)", syntax.name, layout.rows, layout.columns,
        layout.bits_stored, layout.bits_allocated, "signed" if layout.signed else "unsigned",
        layout.photometric,
    )
    return Image(
        pixels=pixels,
        intensity=intensity,
        source=source,
        spacing=spacing,
        spacing_problem=spacing_problem,
        notes=tuple(notes),
        header=_without_pixel_data(dataset, source.transfer_syntax_uid),
    )


# Pixel Data, Float Pixel Data, Double Float Pixel Data (PS3.3 C.7.6.3).
_PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


def _without_pixel_data(dataset: Dataset, syntax_uid: str | None) -> Dataset:
    """``dataset``'s elements but Pixel Data, with its file meta and the transfer syntax it
    was read in, in a plain ``Dataset``: unlike the ``FileDataset`` pydicom read, it holds no
    open file and pickles."""
    header = Dataset({tag: element for tag, element in dataset.items() if int(tag) not in _PIXEL_DATA_TAGS})
    meta = getattr(dataset, "file_meta", None)
    # Group 2 only: FileMetaDataset refuses anything else, and a damaged file's meta may hold it.
    header.file_meta = FileMetaDataset({tag: element for tag, element in (meta or {}).items() if tag.group == 2})
    if syntax_uid:
        header.file_meta.TransferSyntaxUID = syntax_uid
    return header


def _check_decodable(dataset: Dataset, syntax_uid: str, layout: _Layout, path: str | None):
    """pydicom's decoder for the syntax, once a compressed first frame's own header agrees
    with the DICOM header."""
    decoder = require_decoder(syntax_uid)
    if describe_syntax(syntax_uid).encapsulated:
        check_frame(_first_frame(dataset.PixelData, path), syntax_uid, rows=layout.rows,
                    columns=layout.columns, samples=layout.samples,
                    bits_allocated=layout.bits_allocated, where=_where(path))
    return decoder


def _decode(dataset: Dataset, syntax_uid: str, layout: _Layout, path: str | None,
            notes: list[str]) -> np.ndarray:
    """Decode frame 0 to stored values in native byte order, every value in range."""
    decoder = _check_decodable(dataset, syntax_uid, layout, path)
    meta = getattr(dataset, "file_meta", None)
    if meta is None or meta.get("TransferSyntaxUID") != syntax_uid:
        # pydicom's decoders read the syntax from the meta; give a copy one, never mutate
        # a caller's data set.
        dataset = copy.copy(dataset)
        dataset.file_meta = copy.deepcopy(meta) if meta is not None else FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = syntax_uid
    try:
        pixels, _ = decoder.as_array(dataset, index=0, validate=True, raw=True,
                                     decoding_plugin=preferred_plugin(syntax_uid))
    except (InputError, MemoryError, KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        # pydicom and its plugins raise many types, and the Rust-based pylibjpeg-rle raises
        # pyo3's PanicException (a BaseException) on corrupt RLE segments; none may escape raw.
        message = _first_line(exc)
        if "less than expected" in message:
            raise TruncatedPixelDataError(
                f"{_where(path)}: the Pixel Data is shorter than Rows x Columns needs "
                f"({message}). Send the original image again.",
                transfer_syntax_uid=syntax_uid,
            ) from None
        raise CorruptPixelDataError(
            f"{_where(path)}: {describe_syntax(syntax_uid).name} Pixel Data could not be decoded "
            f"({type(exc).__name__}: {message}). The compressed data is damaged or uses a "
            "feature the installed decoder lacks; ask the sender for an uncompressed or "
            "lossless (JPEG 2000, JPEG-LS, RLE) copy.",
            transfer_syntax_uid=syntax_uid,
        ) from None

    if pixels.shape != (layout.rows, layout.columns):
        raise CorruptPixelDataError(
            f"{_where(path)}: the decoder returned pixels of shape {pixels.shape}, not the "
            f"declared Rows x Columns ({layout.rows}, {layout.columns}); the codestream and "
            "the header disagree."
        )
    if pixels.dtype == np.int8:
        pixels = pixels.astype(np.int16)
    pixels = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("="), copy=False))
    return _confine_to_bits_stored(pixels, layout, notes)


def _confine_to_bits_stored(pixels: np.ndarray, layout: _Layout, notes: list[str]) -> np.ndarray:
    """Keep every value inside the Bits Stored range, so the LUT index is always valid.

    pydicom already masks (unsigned) or sign-extends (signed) the bits above Bits Stored
    for native, RLE and JPEG data (PS3.5 8.1.1: their content is undefined). JPEG 2000 and
    JPEG-LS codestreams carry their own precision and are returned as coded; a codestream
    wider than Bits Stored gets the same correction here, and a note counts the pixels.
    """
    if layout.signed:
        low, high = -(1 << (layout.bits_stored - 1)), (1 << (layout.bits_stored - 1)) - 1
    else:
        low, high = 0, (1 << layout.bits_stored) - 1
    if pixels.size == 0:
        return pixels
    if int(pixels.min()) >= low and int(pixels.max()) <= high:
        return pixels
    outside = int(np.count_nonzero((pixels < low) | (pixels > high)))
    if not pixels.flags.writeable:
        pixels = pixels.copy()
    shift = pixels.dtype.itemsize * 8 - layout.bits_stored
    np.left_shift(pixels, shift, out=pixels)
    np.right_shift(pixels, shift, out=pixels)
    notes.append(
        f"{outside} pixel values used bits above Bits Stored ({layout.bits_stored}); those "
        "bits were cleared (sign-extended for signed data) as pydicom does for native data"
    )
    return pixels


# --------------------------------------------------------------------------- intensity


def _numbers(dataset: Dataset, keyword: str) -> list[float] | None:
    """A DS/IS attribute's values as floats; None when absent, ValueError when malformed."""
    if keyword not in dataset or dataset[keyword].VM == 0:
        return None
    value = dataset[keyword].value
    values = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    return [float(str(v).strip()) for v in values]


def _strings(dataset: Dataset, keyword: str) -> list[str]:
    if keyword not in dataset or dataset[keyword].VM == 0:
        return []
    value = dataset[keyword].value
    values = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    return [str(v).strip() for v in values]


def _lookup_table(item: Dataset, little_endian: bool, kind: str, path: str | None) -> LookupTable:
    """One LUT item (PS3.3 C.11.1.1.1 / C.11.2.1.1), interpreted as pydicom 3 does.

    - LUT Descriptor value 1: number of entries, 0 meaning 65536 (pydicom also turns a
      first value read as SS and negative back into its unsigned meaning).
    - Value 2: first stored (or modality) value mapped; signed or unsigned as the VR read
      (US / SS, resolved from Pixel Representation for implicit VR) says.
    - Value 3: bits per entry; output lies in [0, 2**bits - 1]. pydicom accepts 8 and
      10-16 for VOI LUTs and 8 or 16 for Modality LUTs (PS3.3 C.11.1.1.1); radedge accepts
      8-16 for both, reading 9-15 as 16-bit entries.
    - LUT Data: US values as read, or OW words in the data set's byte order.
    """
    for keyword in ("LUTDescriptor", "LUTData"):
        if keyword not in item or item[keyword].VM == 0:
            raise UnsupportedImageError(
                f"{_where(path)} has a {kind} item without {keyword} {_tag_of(keyword)}; "
                "the table cannot be applied."
            )
    descriptor = [int(v) for v in item.LUTDescriptor]
    if len(descriptor) != 3:
        raise UnsupportedImageError(
            f"{_where(path)} has a {kind} LUT Descriptor with {len(descriptor)} values, "
            "not 3 (entries, first value mapped, bits per entry)."
        )
    entries = descriptor[0] or 65536
    first_mapped, bits = descriptor[1], descriptor[2]
    if not 8 <= bits <= 16:
        raise UnsupportedImageError(
            f"{_where(path)} has a {kind} whose LUT Descriptor gives {bits} bits per entry; "
            "PS3.3 C.11 allows 8 to 16."
        )
    element = item["LUTData"]
    if element.VR == "OW" or isinstance(element.value, (bytes, bytearray)):
        raw = bytes(element.value)
        data = np.frombuffer(raw, dtype="<u2" if little_endian else ">u2", count=len(raw) // 2)
    else:
        data = np.atleast_1d(np.asarray(element.value, dtype=np.int64))
    if data.size < entries:
        raise UnsupportedImageError(
            f"{_where(path)} has a {kind} with {data.size} LUT Data entries where its "
            f"descriptor declares {entries}; the table is incomplete."
        )
    data = data[:entries]
    dtype = np.uint8 if bits == 8 and int(data.max()) <= 0xFF else np.uint16
    explanation = _text(item, "LUTExplanation") or ""
    return LookupTable(first_mapped=first_mapped, bits=bits, data=data.astype(dtype), explanation=explanation)


def _intensity(dataset: Dataset, layout: _Layout, little_endian: bool, path: str | None,
               notes: list[str]) -> Intensity:
    """Modality LUT (C.11.1), VOI LUT (C.11.2) and Presentation LUT Shape, as stored."""
    modality_lut = None
    rescale = None
    sequence = dataset.get("ModalityLUTSequence")
    if sequence:
        modality_lut = _lookup_table(sequence[0], little_endian, "Modality LUT Sequence", path)
        if len(sequence) > 1:
            notes.append(f"Modality LUT Sequence has {len(sequence)} items; the first is used "
                         "(PS3.3 C.11.1 allows one)")
        if "RescaleSlope" in dataset or "RescaleIntercept" in dataset:
            notes.append("both a Modality LUT Sequence and Rescale Slope/Intercept are present; "
                         "the sequence is used, as pydicom does")
    else:
        try:
            slope = _numbers(dataset, "RescaleSlope")
            intercept = _numbers(dataset, "RescaleIntercept")
        except ValueError:
            raise UnsupportedImageError(
                f"{_where(path)} has a Rescale Slope (0028,1053) or Rescale Intercept (0028,1052) "
                f"that is not a number ({_short(dataset.get('RescaleSlope'))}, "
                f"{_short(dataset.get('RescaleIntercept'))}); modality values cannot be computed."
            ) from None
        if slope is not None and intercept is not None:
            if slope[0] == 0:
                raise UnsupportedImageError(
                    f"{_where(path)} has Rescale Slope (0028,1053) = 0, which maps every stored "
                    "value to the intercept: the image carries no intensity information."
                )
            rescale = Rescale(slope=slope[0], intercept=intercept[0],
                              rescale_type=_text(dataset, "RescaleType") or "")
        elif slope is not None or intercept is not None:
            present = "Rescale Slope" if slope is not None else "Rescale Intercept"
            notes.append(f"{present} is present without its partner; ignored (identity "
                         "modality transform), as pydicom does")

    windows = _windows(dataset, notes)
    voi_luts: tuple[LookupTable, ...] = ()
    voi_sequence = dataset.get("VOILUTSequence")
    if voi_sequence:
        first = voi_sequence[0]
        if "LUTDescriptor" in first and "LUTData" in first:
            voi_luts = tuple(
                _lookup_table(item, little_endian, f"VOI LUT Sequence item {index}", path)
                for index, item in enumerate(voi_sequence)
            )
        else:
            notes.append("VOI LUT Sequence item 0 lacks LUT Descriptor or LUT Data; the "
                         "sequence is ignored, as pydicom does")

    shape = _text(dataset, "PresentationLUTShape")
    shape = shape.upper() if shape else None
    expected_shape = "INVERSE" if layout.photometric == "MONOCHROME1" else "IDENTITY"
    if shape in ("IDENTITY", "INVERSE") and shape != expected_shape:
        notes.append(
            f"Presentation LUT Shape {shape} contradicts Photometric Interpretation "
            f"{layout.photometric} (PS3.3 C.8.11.6 expects {expected_shape}); the Photometric "
            "Interpretation decides whether values are inverted"
        )

    padding = _pixel_padding(dataset, layout, notes)
    meaning = _meaning(dataset, layout, rescale, modality_lut, windows, voi_luts)
    if padding is not None:
        meaning += (f" Stored values {padding.low} to {padding.high} are pixel padding (no image)."
                    if padding.low != padding.high else
                    f" Stored value {padding.value} is pixel padding (no image).")
    return Intensity(
        bits_allocated=layout.bits_allocated,
        bits_stored=layout.bits_stored,
        signed=layout.signed,
        photometric_interpretation=layout.photometric,
        rescale=rescale,
        modality_lut=modality_lut,
        windows=windows,
        voi_luts=voi_luts,
        presentation_lut_shape=shape,
        meaning=meaning,
        pixel_padding=padding,
    )


def _pixel_padding(dataset: Dataset, layout: _Layout, notes: list[str]) -> PixelPadding | None:
    """Pixel Padding Value (0028,0120) and Pixel Padding Range Limit (0028,0121), PS3.3
    C.7.5.1.1.2, as stored values of this image.

    Both have VR US or SS, which should follow Pixel Representation; a value written with
    the other VR is read back as the same 16 bits in the image's representation (so SS -1
    on unsigned data is 65535, US 65535 on signed data is -1), and noted. A range that
    holds no value representable in Bits Stored cannot mark any pixel and is dropped, with
    a note.
    """
    value = _padding_number(dataset, "PixelPaddingValue", layout, notes)
    limit = _padding_number(dataset, "PixelPaddingRangeLimit", layout, notes)
    if value is None:
        if limit is not None:
            notes.append("Pixel Padding Range Limit (0028,0121) is present without Pixel Padding Value "
                         "(0028,0120); ignored, as PS3.3 C.7.5.1.1.2 defines the range by both")
        return None
    padding = PixelPadding(value=value, range_limit=limit)
    first, last = (-(1 << (layout.bits_stored - 1)), (1 << (layout.bits_stored - 1)) - 1) if layout.signed \
        else (0, (1 << layout.bits_stored) - 1)
    if padding.high < first or padding.low > last:
        notes.append(f"pixel padding {padding.low} to {padding.high} lies outside the stored values "
                     f"{first} to {last} that Bits Stored allows; it marks no pixel and is ignored")
        return None
    return padding


def _padding_number(dataset: Dataset, keyword: str, layout: _Layout, notes: list[str]) -> int | None:
    if keyword not in dataset or dataset[keyword].VM == 0:
        return None
    element = dataset[keyword]
    raw = element.value
    if isinstance(raw, (bytes, bytearray)):
        # An ambiguous 'US or SS' element pydicom could not resolve: two little endian bytes.
        if len(raw) != 2:
            notes.append(f"{keyword} {_tag_of(keyword)} is {len(raw)} bytes, not one 16-bit value; ignored")
            return None
        raw = int.from_bytes(raw, "little", signed=layout.signed)
    if isinstance(raw, (list, tuple, pydicom.multival.MultiValue)):
        notes.append(f"{keyword} {_tag_of(keyword)} has {len(raw)} values; the first is used")
        raw = raw[0]
    try:
        number = int(raw)
    except (TypeError, ValueError):
        notes.append(f"{keyword} {_tag_of(keyword)} is not an integer ({_short(raw)}); ignored")
        return None
    if not -(1 << 15) <= number < (1 << 16):
        notes.append(f"{keyword} {_tag_of(keyword)} = {number} does not fit in 16 bits; ignored")
        return None
    reinterpreted = number
    if layout.signed and number >= (1 << 15):
        reinterpreted = number - (1 << 16)
    elif not layout.signed and number < 0:
        reinterpreted = number + (1 << 16)
    if reinterpreted != number:
        representation = "signed" if layout.signed else "unsigned"
        notes.append(f"{keyword} {_tag_of(keyword)} = {number} was written with the other VR than Pixel "
                     f"Representation ({representation}) asks for; read as the same 16 bits, {reinterpreted}")
    return reinterpreted


def _windows(dataset: Dataset, notes: list[str]) -> tuple[Window, ...]:
    """Window Center/Width pairs (PS3.3 C.11.2.1.2), one ``Window`` per value pair.

    As in pydicom's ``apply_windowing``, an attribute with one value applies to every
    index of the other.
    """
    try:
        centers = _numbers(dataset, "WindowCenter")
        widths = _numbers(dataset, "WindowWidth")
    except ValueError:
        notes.append("Window Center or Window Width is not numeric; the file's windows are ignored")
        return ()
    if not centers or not widths:
        if centers or widths:
            notes.append("Window Center without Window Width (or the reverse); ignored")
        return ()
    if len(centers) == 1 or len(widths) == 1:
        count = max(len(centers), len(widths))
    else:
        count = min(len(centers), len(widths))
        if len(centers) != len(widths):
            notes.append(f"{len(centers)} Window Center values but {len(widths)} Window Width "
                         f"values; the first {count} pairs are used")
    function = (_text(dataset, "VOILUTFunction") or "LINEAR").upper()
    if function not in _VOI_FUNCTIONS:
        notes.append(f"VOI LUT Function {function!r} is not LINEAR, LINEAR_EXACT or SIGMOID "
                     "(PS3.3 C.11.2.1.3); LINEAR is used")
        function = "LINEAR"
    explanations = _strings(dataset, "WindowCenterWidthExplanation")
    windows = []
    for index in range(count):
        center = centers[0] if len(centers) == 1 else centers[index]
        width = widths[0] if len(widths) == 1 else widths[index]
        explanation = explanations[index] if index < len(explanations) else ""
        windows.append(Window(center=center, width=width, function=function, explanation=explanation))
        minimum = "at least 1" if function == "LINEAR" else "greater than 0"
        if (width < 1 if function == "LINEAR" else width <= 0) or not np.isfinite([center, width]).all():
            notes.append(f"window {index} (C={center:g} W={width:g} {function}) is unusable: "
                         f"PS3.3 C.11.2.1.2 requires a width {minimum}; choose another window")
    return tuple(windows)


def _meaning(dataset, layout: _Layout, rescale, modality_lut, windows, voi_luts) -> str:
    modality = _text(dataset, "Modality") or "DICOM"
    sign = "signed" if layout.signed else "unsigned"
    parts = [f"Stored values of a {modality} image: {layout.bits_stored} of "
             f"{layout.bits_allocated} bits, {sign}."]
    if modality_lut is not None:
        parts.append(f"A Modality LUT Sequence ({modality_lut.data.size} entries) maps them to "
                     "modality values.")
    elif rescale is not None:
        kind = f" ({rescale.rescale_type})" if rescale.rescale_type else ""
        sign = "-" if rescale.intercept < 0 else "+"
        parts.append(f"Modality values{kind} = {rescale.slope:g} * stored {sign} "
                     f"{abs(rescale.intercept):g}.")
    else:
        parts.append("No modality transform: stored values are the modality values.")
    if layout.photometric == "MONOCHROME1":
        parts.append("MONOCHROME1: the largest values display darkest.")
    else:
        parts.append("MONOCHROME2: the largest values display brightest.")
    parts.append(f"The file offers {len(windows)} VOI window(s) and {len(voi_luts)} VOI LUT(s).")
    return " ".join(parts)


# --------------------------------------------------------------------------- geometry


#: The Estimated Radiographic Magnification Factors (0018,1114) ``_spacing`` divides by. The
#: factor is SID / SOD (PS3.3 C.8.11.5 DX Positioning): at least 1, as the patient lies between
#: the source and the detector; about 1.05-1.4 for chest and spine, 1.5-2 for magnification
#: views. A factor outside is a damaged header, and dividing by it (1e-308, 1e308) could make
#: any spacing. Ignoring one just below 1 moves the spacing only as far as the factor is from 1.
USABLE_MAGNIFICATION = (1.0, 10.0)


def _spacing(dataset: Dataset, notes: list[str]) -> tuple[PixelSpacing | None, str | None]:
    """Physical pixel size and the attribute it came from (PS3.3 10.7.1.1, C.8.11.4).

    1. Pixel Spacing (0028,0030), when present and positive: spacing in the patient
       (for projection radiography: calibrated to a plane in the patient, its Pixel
       Spacing Calibration Type saying how).
    2. Else Imager Pixel Spacing (0018,1164), at the detector front plane; divided by
       Estimated Radiographic Magnification Factor (0018,1114) when that is present and
       within ``USABLE_MAGNIFICATION``, which approximates the spacing at the isocenter.
       A factor outside (not a number, infinite, zero, negative, absurd) is ignored
       with a note, and the detector-plane spacing is used.
    3. Else no spacing, and the problem says which attribute was what.
    """
    pixel_spacing, pixel_problem = _pair(dataset, "PixelSpacing")
    if pixel_spacing is not None:
        note = "in the patient (calibrated plane)"
        calibration = _text(dataset, "PixelSpacingCalibrationType")
        if calibration:
            note += f"; Pixel Spacing Calibration Type {calibration}"
        imager, _ = _pair(dataset, "ImagerPixelSpacing")
        if imager is not None and np.allclose(imager, pixel_spacing) and not calibration:
            note += ("; equal to Imager Pixel Spacing with no calibration type, so probably "
                     "the detector plane, not corrected for magnification")
        return PixelSpacing(pixel_spacing[0], pixel_spacing[1], "PixelSpacing", note), None

    imager, imager_problem = _pair(dataset, "ImagerPixelSpacing")
    if imager is not None:
        if pixel_problem:
            notes.append(pixel_problem + "; Imager Pixel Spacing used instead")
        try:
            factor = _numbers(dataset, "EstimatedRadiographicMagnificationFactor")
        except ValueError:
            factor = None
            notes.append("Estimated Radiographic Magnification Factor is not numeric; ignored")
        low, high = USABLE_MAGNIFICATION
        if factor and low <= factor[0] <= high:
            return PixelSpacing(
                imager[0] / factor[0], imager[1] / factor[0],
                "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor",
                f"detector-plane spacing divided by the estimated magnification factor "
                f"{factor[0]:g}: approximately the spacing at the isocenter",
            ), None
        if factor:
            notes.append(f"Estimated Radiographic Magnification Factor is {factor[0]:g}, not between "
                         f"{low:g} and {high:g} (source-detector over source-patient distance); ignored, "
                         "so the spacing is the detector plane's")
        return PixelSpacing(imager[0], imager[1], "ImagerPixelSpacing",
                            "detector plane, not corrected for geometric magnification"), None

    return None, (
        f"{pixel_problem or 'Pixel Spacing (0028,0030) is absent'}; "
        f"{imager_problem or 'Imager Pixel Spacing (0018,1164) is absent'}"
    )


_SPACING_NAMES = {"PixelSpacing": "Pixel Spacing", "ImagerPixelSpacing": "Imager Pixel Spacing"}


def _pair(dataset: Dataset, keyword: str) -> tuple[tuple[float, float] | None, str | None]:
    """A two-valued positive DS attribute, or the reason it cannot be used."""
    label = f"{_SPACING_NAMES[keyword]} {_tag_of(keyword)}"
    if keyword not in dataset or dataset[keyword].VM == 0:
        return None, None
    try:
        values = _numbers(dataset, keyword)
    except ValueError:
        return None, f"{label} is malformed ({_short(dataset[keyword].value)})"
    if len(values) != 2:
        return None, f"{label} has {len(values)} value(s), not 2 (row, column)"
    if not all(np.isfinite(values)) or min(values) <= 0:
        return None, f"{label} is {values[0]:g}\\{values[1]:g}: zero, negative or not finite"
    return (values[0], values[1]), None
