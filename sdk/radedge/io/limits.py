"""Limits checked before work is spent on an input: its size, its structure, its declared image.

A DICOM header or a PNG/JPEG/TIFF header states rows and columns in a few bytes; the
decoder then allocates ``rows x columns x bytes per sample``. Checking the declared size
first means a hostile or corrupt file (65535 x 65535 declared, a few bytes of data) is
refused without allocating gigabytes. The same holds for every other size an input
declares: the file's length (``fstat``), what a deflated data set inflates to, how many
elements its header holds and how deeply its sequences nest.

The limits are generous for radiography: the largest flat-panel detectors are about
4300 x 4300 (18.5 million pixels) and stitched long-leg or full-spine images about
3000 x 12000 (36 million). ``MAX_PIXELS`` of 200 million allows five times that while
bounding one image to 400 MB of 16-bit stored values.
"""

from __future__ import annotations

from ..errors import ImageTooLargeError, InputTooLargeError

#: Largest number of rows or of columns accepted, whatever ``max_pixels`` says.
MAX_SIDE = 32768

#: Largest rows x columns accepted when a reader's ``max_pixels`` is ``None``.
MAX_PIXELS = 200_000_000

#: Largest file (or ``bytes`` input) read, in bytes: 1 GiB, more than twice the native
#: Pixel Data of a ``MAX_PIXELS`` image at 16 bits. Checked with ``fstat`` before reading.
MAX_FILE_BYTES = 1 << 30

#: Largest inflated header (the data set before Pixel Data) of a Deflated Explicit VR Little
#: Endian file (PS3.5 A.5). Deflate compresses zeros about 1000:1, so without this a 1 MB
#: file could claim a gigabyte of private elements. Pixel Data itself is inflated only as far
#: as Rows x Columns x Bits Allocated need, and what follows it at most 64 KiB further.
MAX_INFLATED_HEADER_BYTES = 64 << 20

#: Most data elements (nested ones included) read before Pixel Data. pydicom parses about
#: 300 000 small elements a second; a radiograph's header has a few hundred.
MAX_HEADER_ELEMENTS = 100_000

#: Deepest nesting of sequences (PS3.5 7.5) in a header. Radiograph headers nest 3 or 4
#: deep (a code sequence inside a procedure step inside a request); pydicom parses each
#: level recursively, so a few hundred levels exhaust Python's stack.
MAX_SEQUENCE_DEPTH = 32

#: Most items in encapsulated Pixel Data (PS3.5 A.4) of a single-frame image: the Basic
#: Offset Table and the fragments. Writers emit one fragment per frame or fragments of
#: tens of kilobytes; walking millions of empty items would take minutes.
MAX_FRAGMENTS = 100_000


def check_declared_size(rows: int, columns: int, max_pixels: int | None, what: str) -> None:
    """Refuse a declared ``rows x columns`` beyond ``MAX_SIDE`` or ``max_pixels``.

    ``what`` names where the figures came from (``"DICOM Rows x Columns"``, ``"PNG IHDR"``)
    so the message can say so. ``max_pixels=None`` means ``MAX_PIXELS``.
    """
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    if rows > MAX_SIDE or columns > MAX_SIDE:
        raise ImageTooLargeError(
            f"{what} declares {rows} x {columns} pixels; radedge accepts at most {MAX_SIDE} "
            f"per side (radedge.io.MAX_SIDE). Refused before decoding. If the image is "
            f"genuine, downsample it before sending it to radedge.",
            received=[rows, columns], limit=MAX_SIDE,
        )
    if rows * columns > limit:
        raise ImageTooLargeError(
            f"{what} declares {rows} x {columns} = {rows * columns} pixels, more than the "
            f"limit of {limit} (max_pixels; default radedge.io.MAX_PIXELS = {MAX_PIXELS}). "
            f"Refused before decoding. Pass a larger max_pixels if this size is expected.",
            received=rows * columns, limit=limit,
        )


def check_input_size(size: int, where: str) -> None:
    """Refuse an input of ``size`` bytes beyond ``MAX_FILE_BYTES``, before it is read."""
    if size > MAX_FILE_BYTES:
        raise InputTooLargeError(
            f"{where} is {size} bytes long; radedge reads inputs of at most {MAX_FILE_BYTES} "
            "bytes (radedge.io.limits.MAX_FILE_BYTES), which holds any image within the pixel "
            "limit. Refused before reading. If the file is a genuine image, ask the sender "
            "for a compressed copy or a single frame.",
            received=size, limit=MAX_FILE_BYTES,
        )

#: Wall time one file may take to be read and decoded when reading happens in a worker
#: process (``radedge run``; ``radedge.io.IsolatedReader``), in seconds. A 36-million-pixel
#: JPEG 2000 radiograph decodes in about 3 s on one core; a decoder still busy after ten
#: times that is looping on a damaged codestream.
TIME_BUDGET_S = 30.0

#: Address space the worker process reading a file may add to what it holds at rest, in
#: bytes: 4 GiB, what decoding a ``MAX_PIXELS`` JPEG 2000 image needs (32-bit samples per
#: component plus the 16-bit result) with room to spare. An allocation past it fails.
DECODE_MEMORY_BYTES = 4 << 30
