"""``read_image``: one entry point that recognises DICOM, PNG, JPEG and TIFF by content."""

from __future__ import annotations

import os
from pathlib import Path

from pydicom.dataset import Dataset

from ..errors import NotDicomError
from .dicom import read_dicom
from .files import open_regular_file
from .image import Image
from .raster import read_raster
from .sniff import ACCEPTED, HEAD_SIZE, describe_bytes, detect_format


def read_image(source, *, max_pixels: int | None = None) -> Image:
    """Read a radiograph from a file, bytes or a pydicom ``Dataset`` into an ``Image``.

    ``source``: ``str`` / ``os.PathLike`` (a file), ``bytes``-like, or a
    ``pydicom.Dataset``. The format is decided by content, never by file name: DICOM
    (``DICM`` at byte 128, or a raw data set without preamble that parses as one), PNG,
    JPEG or TIFF (their signatures). ``max_pixels``: see ``read_dicom`` / ``read_raster``.

    A path must name a regular file (``NotRegularFileError`` for a FIFO, a device or a
    directory, refused without blocking) of at most ``limits.MAX_FILE_BYTES``
    (``InputTooLargeError``), both checked before a byte is read.

    Raises ``NotDicomError`` for anything else, saying what the first bytes look like;
    otherwise what ``read_dicom`` or ``read_raster`` raise.
    """
    if isinstance(source, Dataset):
        return read_dicom(source, max_pixels=max_pixels)
    if isinstance(source, (str, os.PathLike)):
        with open_regular_file(source) as stream:
            head = stream.read(HEAD_SIZE)
        where = f"'{os.fspath(source)}'"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        source = bytes(source)
        head = source[:HEAD_SIZE]
        where = "the input"
    else:
        raise TypeError(
            f"read_image expects a path, bytes or a pydicom Dataset, not {type(source).__name__}"
        )
    kind = detect_format(head)
    if kind in ("dicom", "dicom-raw"):
        # A raw data set is only a candidate until it parses; read_dicom says if it does not.
        return read_dicom(source, max_pixels=max_pixels)
    if kind in ("png", "jpeg", "tiff"):
        return read_raster(source, max_pixels=max_pixels)
    raise NotDicomError(
        f"{where} is neither DICOM nor a PNG, JPEG or TIFF image: {describe_bytes(head)}. "
        f"radedge reads {ACCEPTED}."
    )


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
