"""Size limits checked against an image's *declared* dimensions, before any pixel is decoded.

A DICOM header or a PNG/JPEG/TIFF header states rows and columns in a few bytes; the
decoder then allocates ``rows x columns x bytes per sample``. Checking the declared size
first means a hostile or corrupt file (65535 x 65535 declared, a few bytes of data) is
refused without allocating gigabytes.

The limits are generous for radiography: the largest flat-panel detectors are about
4300 x 4300 (18.5 million pixels) and stitched long-leg or full-spine images about
3000 x 12000 (36 million). ``MAX_PIXELS`` of 200 million allows five times that while
bounding one image to 400 MB of 16-bit stored values.
"""

from __future__ import annotations

from ..errors import ImageTooLargeError

#: Largest number of rows or of columns accepted, whatever ``max_pixels`` says.
MAX_SIDE = 32768

#: Largest rows x columns accepted when a reader's ``max_pixels`` is ``None``.
MAX_PIXELS = 200_000_000


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
            f"genuine, downsample it before sending it to radedge."
        )
    if rows * columns > limit:
        raise ImageTooLargeError(
            f"{what} declares {rows} x {columns} = {rows * columns} pixels, more than the "
            f"limit of {limit} (max_pixels; default radedge.io.MAX_PIXELS = {MAX_PIXELS}). "
            f"Refused before decoding. Pass a larger max_pixels if this size is expected."
        )
