"""``read_image``: one entry point that recognises DICOM, PNG, JPEG and TIFF by content."""

from __future__ import annotations

import copy
import io
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydicom import uid as dicom_uid
from pydicom.dataset import Dataset, FileMetaDataset

from ..errors import InputError, InputTypeError, NotDicomError, invalid_argument
from . import limits
from .dicom import read_dicom
from .files import check_stream, open_regular_file, text_mode, unreadable
from .image import Image
from .raster import read_raster
from .sniff import ACCEPTED, HEAD_SIZE, describe_bytes, detect_format

#: A UID (PS3.5 9.1): digit groups without leading zeros, separated by dots, at most 64 characters.
_UID = re.compile(r"(?=.{1,64}$)(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")

#: What ``read_image`` reads, as errors name it.
ACCEPTED_SOURCES = ("str", "os.PathLike", "bytes", "bytearray", "memoryview", "binary file object",
                    "pydicom.Dataset")


def read_image(source, *, max_pixels: int | None = None, transfer_syntax_uid: str | None = None) -> Image:
    """Read a radiograph from a file, bytes or a pydicom ``Dataset`` into an ``Image``.

    ``source``: ``str`` / ``os.PathLike`` (a file), ``bytes`` / ``bytearray`` /
    ``memoryview``, a binary file object (``open(path, "rb")``, ``io.BytesIO``; read from its
    current position to its end), or a ``pydicom.Dataset``. The format is decided by content,
    never by file name: DICOM (``DICM`` at byte 128, or a raw data set without preamble that
    parses as one), PNG, JPEG or TIFF (their signatures). ``max_pixels``: see ``read_dicom`` /
    ``read_raster``.

    ``transfer_syntax_uid``: for a ``Dataset`` only, the syntax its Pixel Data is encoded in
    (a DICOM receiver's presentation context); it overrides ``file_meta``. Without it, a
    Dataset without ``file_meta.TransferSyntaxUID`` has its syntax inferred from the Pixel
    Data (``radedge.io.dicom.dataset_transfer_syntax``).

    A path must name a regular file (``NotRegularFileError`` for a FIFO, a device or a
    directory, refused without blocking) of at most ``limits.MAX_FILE_BYTES``
    (``InputTooLargeError``), both checked before a byte is read; ``InputNotFoundError`` when
    nothing is there, ``InputNotReadableError`` when it cannot be opened. ``InputTypeError``
    for any other kind of ``source``, a text-mode file object included.

    Raises ``NotDicomError`` for anything else, saying what the first bytes look like;
    otherwise what ``read_dicom`` or ``read_raster`` raise. Every ``InputError`` raised for a
    path carries it in ``fields["path"]``.
    """
    if max_pixels is not None:
        _check_max_pixels(max_pixels)
    if transfer_syntax_uid is not None:
        if not isinstance(source, Dataset):
            raise invalid_argument(
                "read_image", "transfer_syntax_uid", transfer_syntax_uid,
                f"None for a {type(source).__name__} source: a file, bytes or a file object carries its own "
                "transfer syntax, and only a pydicom Dataset may lack one")
        source = with_transfer_syntax(source, transfer_syntax_uid)
    if isinstance(source, Dataset):
        return read_dicom(source, max_pixels=max_pixels)
    path = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not isinstance(path, str):
            raise InputTypeError(
                f"read_image reads a path given as text; {path!r} is bytes. Decode it (os.fsdecode) first.",
                received="bytes path", expected=list(ACCEPTED_SOURCES))
        with open_regular_file(path) as stream:
            try:
                head = stream.read(HEAD_SIZE)
            except OSError as exc:
                raise unreadable(path, exc) from None
        where = f"'{path}'"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        source = bytes(source)
        head = source[:HEAD_SIZE]
        where = "the input"
    elif hasattr(source, "read"):
        source, path = read_file_object(source)
        head = source[:HEAD_SIZE]
        where = f"'{path}'" if path else "the input"
    else:
        raise InputTypeError(
            f"read_image reads a path, bytes, a binary file object or a pydicom Dataset, not a "
            f"{type(source).__name__}.", received=type(source).__name__, expected=list(ACCEPTED_SOURCES))
    try:
        kind = detect_format(head)
        if kind in ("dicom", "dicom-raw"):
            # A raw data set is only a candidate until it parses; read_dicom says if it does not.
            image = read_dicom(source, max_pixels=max_pixels)
        elif kind in ("png", "jpeg", "tiff"):
            image = read_raster(source, max_pixels=max_pixels)
        else:
            image = None
        if image is not None:
            # A file object's name is the path it was opened from: the image names it, as for a path.
            return image if image.source.path == path else replace(image, source=replace(image.source, path=path))
        raise NotDicomError(
            f"{where} is neither DICOM nor a PNG, JPEG or TIFF image: {describe_bytes(head)}. "
            f"radedge reads {ACCEPTED}."
        )
    except InputError as exc:
        if path is not None:
            exc.fields.setdefault("path", path)
        raise


def with_transfer_syntax(dataset: Dataset, transfer_syntax_uid: str) -> Dataset:
    """A shallow copy of ``dataset`` whose ``file_meta.TransferSyntaxUID`` is ``transfer_syntax_uid``
    (the caller's data set is not changed). ``InvalidArgumentError`` unless it is a UID string."""
    if not isinstance(transfer_syntax_uid, str) or not _UID.fullmatch(transfer_syntax_uid.strip()):
        raise invalid_argument("read_image", "transfer_syntax_uid", transfer_syntax_uid,
                               "a transfer syntax UID such as pydicom.uid.JPEG2000Lossless ('1.2.840.10008.1.2.4.90')")
    copied = copy.copy(dataset)
    meta = getattr(dataset, "file_meta", None)
    copied.file_meta = copy.deepcopy(meta) if meta is not None else FileMetaDataset()
    copied.file_meta.TransferSyntaxUID = dicom_uid.UID(transfer_syntax_uid.strip())
    return copied


def _check_max_pixels(max_pixels: Any) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise invalid_argument("read_image", "max_pixels", max_pixels, "a positive integer (pixels) or None")


def read_file_object(stream) -> tuple[bytes, str | None]:
    """The bytes of a binary file object from its position to its end, and its path if it has one.

    A text-mode file object is refused (``InputTypeError``): DICOM and images are bytes, and
    decoding them as text has already failed or altered them."""
    name = getattr(stream, "name", None)
    path = name if isinstance(name, str) else None
    if isinstance(stream, io.TextIOBase) or text_mode(getattr(stream, "mode", "b")):
        raise InputTypeError(
            f"{_quoted(path)} is a file object opened in text mode; images are bytes. Open it with "
            "open(path, 'rb'), or pass the path.", received="text file object", expected=list(ACCEPTED_SOURCES),
            path=path)
    where = _quoted(path)
    check_stream(stream, where)
    try:
        content = stream.read(limits.MAX_FILE_BYTES + 1)
    except UnicodeDecodeError:
        content = ""
    except OSError as exc:
        raise unreadable(path, exc) from None
    if isinstance(content, str):
        raise InputTypeError(
            f"{where} is a file object that reads text; images are bytes. Open it with open(path, 'rb').",
            received="text file object", expected=list(ACCEPTED_SOURCES), path=path)
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise InputTypeError(
            f"{where} is an object whose read() returned a {type(content).__name__}, not bytes.",
            received=type(stream).__name__, expected=list(ACCEPTED_SOURCES), path=path)
    limits.check_input_size(len(content), where)
    return bytes(content), path


def _quoted(path: str | None) -> str:
    return f"'{path}'" if path else "the input"


# Files that sit beside images in a folder (ground truth, notes, configuration) and are clearly not images;
# a folder walk skips them, but a file named explicitly is still read (and refused if need be).
NOT_IMAGES = frozenset({".json", ".txt", ".md", ".csv", ".xml", ".html", ".py", ".yaml", ".yml", ".log", ".toml",
                        ".ini", ".cfg", ".service", ".sh"})


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Every file under ``folder`` that may be an image, sorted: hidden files and folders and
    files with a notes suffix (``NOT_IMAGES``) left out."""
    root = Path(folder)
    return sorted(
        path for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.suffix.lower() not in NOT_IMAGES
    )
