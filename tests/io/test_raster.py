"""PNG, JPEG and TIFF through OpenCV: display values, sizes checked before decoding."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from radedge.errors import (
    CorruptPixelDataError,
    ImageTooLargeError,
    TruncatedPixelDataError,
    UnsupportedImageError,
)
from radedge.intensity import build_lut
from radedge.io import read_image, read_raster

GRADIENT_8 = (np.arange(48 * 40).reshape(48, 40) % 256).astype(np.uint8)
GRADIENT_16 = (np.arange(48 * 40).reshape(48, 40) * 34).astype(np.uint16)


def encode(extension: str, pixels: np.ndarray, *params: int) -> bytes:
    ok, encoded = cv2.imencode(extension, pixels, list(params))
    assert ok
    return encoded.tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A PNG with the given IHDR and IDAT payload, valid chunk by chunk."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def tiff(pixels: np.ndarray, *, photometric: int = 1, big_endian: bool = False,
         width: int | None = None, height: int | None = None, sample_format: int = 1) -> bytes:
    """An uncompressed single-strip TIFF 6.0 file of ``pixels`` (grey, one sample)."""
    order = ">" if big_endian else "<"
    rows, columns = pixels.shape
    data = pixels.astype(pixels.dtype.newbyteorder(order)).tobytes()
    entries = [(256, width or columns), (257, height or rows), (258, pixels.dtype.itemsize * 8),
               (259, 1), (262, photometric), (273, 0), (277, 1), (278, height or rows),
               (279, len(data)), (339, sample_format)]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    out = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(order + "IH", 8, len(entries))
    for tag, value in entries:
        out += struct.pack(order + "HHII", tag, 4, 1, data_offset if tag == 273 else value)
    return out + struct.pack(order + "I", 0) + data


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name, content, expected, bits", [
    ("png8", encode(".png", GRADIENT_8), GRADIENT_8, 8),
    ("png16", encode(".png", GRADIENT_16), GRADIENT_16, 16),
    ("tiff8", encode(".tiff", GRADIENT_8), GRADIENT_8, 8),
    ("tiff16", encode(".tiff", GRADIENT_16), GRADIENT_16, 16),
    ("tiff16-big-endian", tiff(GRADIENT_16, big_endian=True), GRADIENT_16, 16),
])
def test_lossless_raster_formats_read_exactly(name, content, expected, bits, tmp_path):
    path = tmp_path / "export.dcm"  # content decides, not the name
    path.write_bytes(content)
    for image in (read_image(path), read_image(content), read_raster(content)):
        np.testing.assert_array_equal(image.pixels, expected)
        assert image.pixels.dtype == expected.dtype and image.pixels.flags.c_contiguous
        assert image.intensity.bits_stored == bits
        assert image.intensity.photometric_interpretation == "MONOCHROME2"
        assert image.intensity.rescale is None and not image.intensity.windows
        assert "display values" in image.intensity.meaning.lower()
        assert "no modality or VOI information" in image.intensity.meaning
        assert "spacing is unknown" in image.intensity.meaning
        assert image.spacing is None
        assert "no patient-plane pixel spacing" in image.spacing_problem
    assert image.source.format == ("png" if name.startswith("png") else "tiff")


def test_jpeg_8_bit_reads_close_to_the_source():
    image = read_image(encode(".jpg", GRADIENT_8, cv2.IMWRITE_JPEG_QUALITY, 100))
    assert image.source.format == "jpeg" and image.pixels.dtype == np.uint8
    assert image.pixels.shape == GRADIENT_8.shape
    assert np.abs(image.pixels.astype(int) - GRADIENT_8).max() <= 8
    assert "JFIF" in image.spacing_problem


def test_raster_lut_is_the_display_value_scaled():
    for pixels, full_scale in ((GRADIENT_8, 255), (GRADIENT_16, 65535)):
        image = read_image(encode(".png", pixels))
        lut = build_lut(image)
        assert lut.first_stored_value == 0 and lut.table.size == full_scale + 1
        np.testing.assert_allclose(lut.table, np.arange(full_scale + 1) / full_scale, atol=1e-7)
        assert "display values as written by the exporting software" in lut.description


# --------------------------------------------------------------------------- colour


def test_colour_with_equal_channels_is_read_unchanged():
    image = read_image(encode(".png", np.dstack([GRADIENT_8] * 3)))
    np.testing.assert_array_equal(image.pixels, GRADIENT_8)
    assert any("three equal channels" in note for note in image.notes)


def test_true_colour_is_converted_with_a_note():
    colour = np.dstack([GRADIENT_8, GRADIENT_8, GRADIENT_8])
    colour[10:20, 10:20] = (0, 0, 255)  # a red annotation, in OpenCV's BGR order
    image = read_image(encode(".png", colour))
    np.testing.assert_array_equal(image.pixels, cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    assert image.pixels[15, 15] == round(0.299 * 255)
    note = next(note for note in image.notes if "BT.601" in note)
    assert "differ by up to 255" in note


def test_alpha_channel_is_dropped_with_a_note():
    rgba = np.dstack([GRADIENT_8] * 3 + [np.full_like(GRADIENT_8, 255)])
    rgba[0, 0, 3] = 0
    image = read_image(encode(".png", rgba))
    np.testing.assert_array_equal(image.pixels, GRADIENT_8)
    assert any("alpha channel ignored (1 pixels not fully opaque)" in note for note in image.notes)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_white_is_zero_tiff_displays_stored_zero_as_white(dtype):
    # OpenCV inverts 8-bit WhiteIsZero samples but not 16-bit ones; either way the
    # display intensity of a stored 0 must be white (1.0).
    top = np.iinfo(dtype).max
    stored = np.array([[0, top // 2, top]] * 4, dtype=dtype)
    image = read_image(tiff(stored, photometric=0))
    lut = build_lut(image)
    display = lut.apply(image.pixels)
    np.testing.assert_allclose(display[0], [1.0, 1.0 - (top // 2) / top, 0.0], atol=1e-6)
    assert any("WhiteIsZero" in note for note in image.notes)


# --------------------------------------------------------------------------- refusals


def test_huge_png_is_refused_before_decoding():
    content = png(100_000, 100_000, zlib.compress(bytes(1000)))
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError, match="100000 x 100000") as caught:
            read_image(content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "PNG header" in str(caught.value)
    assert peak < 16 * 2**20


def test_huge_jpeg_is_refused_before_decoding():
    # SOI, then a baseline frame header (SOF0) declaring 60000 x 50000, one component.
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 50_000, 60_000, 1) + b"\x01\x11\x00"
    content = b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9) + sof0 + b"\xff\xd9"
    with pytest.raises(ImageTooLargeError, match="50000 x 60000"):
        read_image(content)


def test_huge_tiff_is_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="30000 x 20000"):
        read_image(tiff(GRADIENT_8, width=20_000, height=30_000))


def test_max_pixels_applies_to_raster_files():
    with pytest.raises(ImageTooLargeError, match="48 x 40 = 1920 pixels, more than the limit of 1000"):
        read_raster(encode(".png", GRADIENT_8), max_pixels=1000)


@pytest.mark.parametrize("content", [
    encode(".png", GRADIENT_8)[:-30],
    encode(".jpg", GRADIENT_8)[:-200],
    tiff(GRADIENT_16)[:-100],
], ids=["png", "jpeg", "tiff"])
def test_cut_off_raster_files_are_truncated(content):
    with pytest.raises(TruncatedPixelDataError, match="cut off"):
        read_image(content)


def test_png_with_damaged_image_data_is_corrupt():
    with pytest.raises(CorruptPixelDataError, match="could not decode the PNG"):
        read_image(png(40, 48, b"this is not a zlib stream"))


@pytest.mark.parametrize("sample_format, named", [(2, "signed integer"), (3, "floating-point")])
def test_tiff_sample_formats_radedge_refuses(sample_format, named):
    with pytest.raises(UnsupportedImageError, match=named):
        read_image(tiff(GRADIENT_16, sample_format=sample_format))


def test_read_raster_on_dicom_points_to_read_image():
    with pytest.raises(UnsupportedImageError, match="It is DICOM"):
        read_raster(get_testdata_file("CT_small.dcm"))
