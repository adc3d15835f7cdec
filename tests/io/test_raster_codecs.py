"""PNG, JPEG and TIFF decode through imagecodecs to the pixels OpenCV's ``imdecode`` gives, so
dropping OpenCV from the runtime changed no image; and what imagecodecs adds (12-bit and lossless
JPEG) or radedge refuses (CMYK JPEG)."""

from __future__ import annotations

import io
import struct

import imagecodecs
import numpy as np
import pytest

from radedge.errors import UnsupportedImageError
from radedge.io import read_raster
from radedge.io.raster import _bt601_grey

cv2 = pytest.importorskip("cv2")
PIL = pytest.importorskip("PIL.Image")

RNG = np.random.default_rng(7)


def _smooth(dtype, rows: int = 90, columns: int = 70) -> np.ndarray:
    top = np.iinfo(dtype).max
    y, x = np.mgrid[:rows, :columns]
    values = (np.sin(x / 9.0) + np.cos(y / 13.0) + 2) / 4 * top + RNG.normal(0, top * 0.02, (rows, columns))
    return np.clip(values, 0, top).astype(dtype)


def _pillow(mode_image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    mode_image.save(buffer, kind, **options)
    return buffer.getvalue()


GREY_8, GREY_16 = _smooth(np.uint8), _smooth(np.uint16)
COLOUR_8 = np.dstack([GREY_8, np.roll(GREY_8, 5, 0), np.roll(GREY_8, 9, 1)])
COLOUR_16 = np.dstack([GREY_16, np.roll(GREY_16, 5, 0), np.roll(GREY_16, 9, 1)])
BGRA_8 = np.dstack([COLOUR_8, np.where(GREY_8 > 128, 255, 40).astype(np.uint8)])


def _opencv(extension: str, pixels: np.ndarray, *params: int) -> bytes:
    ok, encoded = cv2.imencode(extension, pixels, list(params))
    assert ok
    return encoded.tobytes()


def _planar_tiff(rgb: np.ndarray) -> bytes:
    """An uncompressed TIFF of ``rgb`` (uint8 [rows, columns, 3]) with PlanarConfiguration 2:
    one strip per colour plane."""
    rows, columns, _ = rgb.shape
    entries = [(256, 4, 1, columns), (257, 4, 1, rows), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 3, None), (277, 3, 1, 3), (278, 4, 1, rows), (279, 4, 3, None), (284, 3, 1, 2)]
    values_at = 8 + 2 + 12 * len(entries) + 4
    plane = rows * columns
    data_at = values_at + 6 + 12 + 12
    pointed = {258: values_at, 273: values_at + 6, 279: values_at + 18}
    out = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, kind, count, value in entries:
        if tag in pointed:
            out += struct.pack("<HHII", tag, kind, count, pointed[tag])
        elif kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0) + struct.pack("<3H", 8, 8, 8)
    out += struct.pack("<3I", data_at, data_at + plane, data_at + 2 * plane) + struct.pack("<3I", plane, plane, plane)
    return out + b"".join(np.ascontiguousarray(rgb[..., channel]).tobytes() for channel in range(3))


FILES = {
    "png-grey-8": lambda: _opencv(".png", GREY_8),
    "png-grey-16": lambda: _opencv(".png", GREY_16),
    "png-colour-8": lambda: _opencv(".png", COLOUR_8),
    "png-colour-16": lambda: _opencv(".png", COLOUR_16),
    "png-rgba-8": lambda: _opencv(".png", BGRA_8),
    "png-palette": lambda: _pillow(PIL.fromarray(GREY_8).convert("P"), "PNG"),
    "png-1-bit": lambda: _pillow(PIL.fromarray(GREY_8 > 128), "PNG"),
    "tiff-grey-8": lambda: _opencv(".tiff", GREY_8),
    "tiff-grey-16": lambda: _opencv(".tiff", GREY_16),
    "tiff-grey-16-uncompressed": lambda: _opencv(".tiff", GREY_16, cv2.IMWRITE_TIFF_COMPRESSION, 1),
    "tiff-colour-8": lambda: _opencv(".tiff", COLOUR_8),
    "tiff-colour-16": lambda: _opencv(".tiff", COLOUR_16),
    "tiff-colour-planar": lambda: _planar_tiff(COLOUR_8),
    "tiff-palette": lambda: _pillow(PIL.fromarray(COLOUR_8[..., ::-1].copy()).convert("P"), "TIFF"),
    "tiff-1-bit": lambda: _pillow(PIL.fromarray(GREY_8 > 128), "TIFF"),
    "jpeg-grey": lambda: _opencv(".jpg", GREY_8, cv2.IMWRITE_JPEG_QUALITY, 90),
    "jpeg-colour": lambda: _opencv(".jpg", COLOUR_8, cv2.IMWRITE_JPEG_QUALITY, 90),
    "jpeg-progressive": lambda: _opencv(".jpg", COLOUR_8, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
}


@pytest.mark.parametrize("name", FILES)
def test_pixels_are_those_opencv_decodes(name):
    data = FILES[name]()
    image = read_raster(data)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if reference.ndim == 3:
        if reference.shape[2] == 4:
            reference = reference[..., :3]
        reference = reference[..., 0] if (reference == reference[..., :1]).all() else \
            cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)
    assert image.pixels.dtype == reference.dtype
    np.testing.assert_array_equal(image.pixels, reference)
    assert image.intensity.photometric_interpretation == "MONOCHROME2"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_bt601_grey_is_opencvs_integer_for_integer(dtype):
    top = np.iinfo(dtype).max
    rgb = RNG.integers(0, top + 1, (300, 211, 3), dtype=dtype)
    rgb[0, :6] = [[top, top, top], [0, 0, 0], [top, 0, 0], [0, top, 0], [0, 0, top], [1, 1, 1]]
    np.testing.assert_array_equal(_bt601_grey(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_12_bit_jpeg_reads_as_12_bit(lossless):
    stored = (_smooth(np.uint16) >> 4).astype(np.uint16)
    image = read_raster(imagecodecs.jpeg8_encode(stored, level=95, bitspersample=12, lossless=lossless))
    assert image.pixels.dtype == np.uint16 and image.intensity.bits_stored == 12
    difference = np.abs(image.pixels.astype(int) - stored).max()
    assert difference == 0 if lossless else 0 < difference <= 64


def test_cmyk_jpeg_is_refused_with_what_to_do():
    data = _pillow(PIL.fromarray(COLOUR_8).convert("CMYK"), "JPEG")
    with pytest.raises(UnsupportedImageError, match="CMYK.*greyscale PNG"):
        read_raster(data)
