"""Recognise an input by its first bytes, never by its file name.

A console receives files named ``IMG0001``, ``image.dcm`` that are really JPEGs, and
PNGs called ``.dcm`` by an exporter; only the content says what a file is. The formats
radedge reads:

- DICOM Part 10 (PS3.10 7.1): a 128-byte preamble, then ``DICM``.
- A raw DICOM data set without preamble or meta information (what some archives store
  and what PS3.10 calls a "stream"): it starts with a group 0002 or 0008 element tag.
- PNG (signature ``89 50 4E 47 0D 0A 1A 0A``), JPEG (``FF D8 FF``), TIFF (``II*\\0``,
  ``MM\\0*``, or the BigTIFF forms with 43).
"""

from __future__ import annotations

import struct
from typing import Literal

DetectedFormat = Literal["dicom", "dicom-raw", "png", "jpeg", "tiff"]

#: How many leading bytes ``detect_format`` needs (preamble + "DICM").
HEAD_SIZE = 132

ACCEPTED = (
    "DICOM (a Part 10 file with 'DICM' at byte 128, or a raw data set without "
    "preamble), PNG, JPEG or TIFF"
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

# Value representations of PS3.5 6.2; an explicit-VR data set has one of these at byte 4.
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC "
    b"UI UL UN UR US UT UV".split()
)

# Formats that arrive by mistake often enough to be worth naming in the error.
_KNOWN_OTHER = (
    (b"DICM", "a DICOM file whose 128-byte preamble was cut off (prepend 128 zero bytes)"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BM", "a BMP image"),
    (b"GIF8", "a GIF image"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 (JP2) file"),
    (b"\xff\x4f\xff\x51", "a raw JPEG 2000 codestream"),
    (b"RIFF", "a RIFF container (WebP, AVI or WAV)"),
    (b"<?xml", "an XML document"),
    (b"{", "a JSON or text document"),
)


def detect_format(head: bytes) -> DetectedFormat | None:
    """Return the format that ``head`` (the first ``HEAD_SIZE`` bytes or fewer) starts.

    ``"dicom-raw"`` is only a candidate: the caller confirms it by parsing the data set.
    """
    if len(head) >= HEAD_SIZE and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in _TIFF_SIGNATURES:
        return "tiff"
    if _looks_like_raw_dataset(head):
        return "dicom-raw"
    return None


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A data set without preamble starts with a group 0002 (meta) or 0008 element.

    Little or big endian; explicit VR (two VR letters at byte 4) or implicit VR (a 32-bit
    length that is even or undefined). Every data set of an image holds group 0008
    (SOP Class UID), and it sorts first, so this admits every real raw data set while
    rejecting text and other binary formats.
    """
    if len(head) < 8:
        return False
    for order in ("<", ">"):
        group, _element = struct.unpack(order + "HH", head[:4])
        if group not in (0x0002, 0x0008):
            continue
        if head[4:6] in _VRS:
            return True
        (length,) = struct.unpack(order + "I", head[4:8])
        if length == 0xFFFFFFFF or (length % 2 == 0 and length < 1 << 24):
            return True
    return False


def describe_bytes(head: bytes) -> str:
    """Say in words what the first bytes of an unrecognised input look like.

    Shows at most the first 8 bytes: enough to identify a format, too few to carry a
    value from a data set (a tag and length/VR alone take 8 bytes).
    """
    if not head:
        return "the input is empty (0 bytes)"
    first = head[:8]
    hex_bytes = " ".join(f"{b:02x}" for b in first)
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in first)
    what = next((name for magic, name in _KNOWN_OTHER if head.startswith(magic)), None)
    looks = f", which looks like {what}" if what else ""
    if len(head) < HEAD_SIZE:
        return f"the input is only {len(head)} bytes long, starting {hex_bytes} ('{text}'){looks}"
    return f"the first bytes are {hex_bytes} ('{text}'){looks}"
