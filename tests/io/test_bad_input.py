"""Every kind of bad DICOM input gets its typed error, and the message names the thing."""

from __future__ import annotations

import random
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, DeflatedExplicitVRLittleEndian

from radedge.errors import (
    CorruptPixelDataError,
    ImageTooLargeError,
    InputError,
    NoPixelDataError,
    NotDicomError,
    RadedgeError,
    TruncatedPixelDataError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from radedge.io import MAX_SIDE, limits, read_dicom, read_image

from .dicom_factory import make_dataset, to_bytes


def _bytes(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def _mr_dataset() -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file("MR_small.dcm"))


# --------------------------------------------------------------------------- not DICOM


@pytest.mark.parametrize("content, named", [
    (b"%PDF-1.7\n" + bytes(300), "PDF"),
    (b"PK\x03\x04" + bytes(300), "ZIP"),
    (b"", "empty"),
    (b"hello", "5 bytes"),
    (bytes(range(256)) * 2, "00 01 02 03"),
    (_bytes("MR_small.dcm")[128:], "preamble was cut off"),
])
def test_not_dicom_says_what_the_bytes_look_like(content, named, tmp_path):
    path = tmp_path / "image.dcm"  # the extension must not matter
    path.write_bytes(content)
    for reader in (read_image, read_dicom):
        with pytest.raises(NotDicomError) as caught:
            reader(path)
        assert named in str(caught.value)
        assert "PNG, JPEG or TIFF" in str(caught.value)


def test_read_dicom_on_a_png_points_to_the_raster_reader():
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    with pytest.raises(NotDicomError, match="PNG image: read it with radedge.io.read_image or read_raster"):
        read_dicom(png)


def test_dicm_file_with_an_unparseable_header():
    content = bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + bytes(40)
    with pytest.raises(NotDicomError, match="cannot be parsed"):
        read_dicom(content)


# --------------------------------------------------------------------------- no pixel data


def test_structured_report_has_no_pixel_data():
    with pytest.raises(NoPixelDataError, match="Basic Text SR Storage") as caught:
        read_image(get_testdata_file("reportsi.dcm"))
    assert "(7FE0,0010)" in str(caught.value)


def test_image_header_without_pixel_data_suggests_a_cut_file():
    ds = _mr_dataset()
    del ds.PixelData
    for source in (ds, to_bytes(ds)):
        with pytest.raises(NoPixelDataError, match="cut off before the Pixel Data"):
            read_dicom(source)


def test_float_pixel_data_is_refused():
    ds = _mr_dataset()
    del ds.PixelData
    ds.FloatPixelData = np.zeros(64 * 64, dtype="<f4").tobytes()
    for source in (ds, to_bytes(ds)):
        with pytest.raises(UnsupportedImageError, match="Float"):
            read_dicom(source)


# --------------------------------------------------------------------------- truncation


def test_native_pixel_data_shorter_than_declared_in_the_file():
    # pydicom's MR_truncated.dcm: the Pixel Data element says 8192 bytes, the file ends first.
    with pytest.raises(TruncatedPixelDataError, match="8130 bytes into its Pixel Data, which declares 8192"):
        read_dicom(get_testdata_file("MR_truncated.dcm"))


def test_native_pixel_data_shorter_than_rows_times_columns():
    ds = make_dataset(np.zeros((4, 4)), bits_stored=12)
    ds.Rows = 8
    for source in (ds, to_bytes(ds)):
        with pytest.raises(TruncatedPixelDataError, match="holds 32 bytes .* Rows 8 x Columns 4 .* needs 64 bytes"):
            read_dicom(source)


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"])
def test_file_cut_inside_pixel_data(name):
    content = _bytes(name)
    header_end = len(content) - 4000
    with pytest.raises(TruncatedPixelDataError, match="cut off"):
        read_dicom(content[:header_end])


def test_encapsulated_pixel_data_missing_its_delimiter_is_truncated():
    content = _bytes("MR_small_jp2klossless.dcm")
    delimiter = content.rfind(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    assert delimiter > 0
    with pytest.raises(TruncatedPixelDataError, match="no Sequence Delimitation Item"):
        read_dicom(content[:delimiter])


def test_deflated_file_cut_off():
    content = _bytes("image_dfl.dcm")
    with pytest.raises(TruncatedPixelDataError, match="deflate stream"):
        read_dicom(content[:-100])


def test_deflate_bomb_is_refused_while_inflating(monkeypatch):
    # 4 x 4 pixels, plus 8 MB of zeros in a private element: ~8 kB deflated.
    ds = make_dataset(np.zeros((4, 4)), bits_stored=12, syntax=DeflatedExplicitVRLittleEndian)
    ds.add_new(0x00091010, "OB", bytes(8 * 2**20))
    encoded = to_bytes(ds)
    assert len(encoded) < 64 * 2**10
    assert read_dicom(encoded).pixels.shape == (4, 4)  # within the default header allowance
    monkeypatch.setattr(limits, "MAX_INFLATED_HEADER_BYTES", 2**20)
    with pytest.raises(ImageTooLargeError, match="inflates to more than 1048576 bytes before its Pixel Data"):
        read_dicom(encoded)


def test_every_cut_of_a_file_gives_a_radedge_error_or_the_whole_image():
    """A file cut at any byte: a typed error or (cut only in trailing padding) the image."""
    for name in ("MR_small.dcm", "MR_small_jp2klossless.dcm", "JPEGLSNearLossless_08.dcm"):
        content = _bytes(name)
        expected = read_dicom(content).pixels
        for cut in range(0, len(content), 61):
            try:
                image = read_dicom(content[:cut])
            except InputError:
                continue
            np.testing.assert_array_equal(image.pixels, expected, err_msg=f"{name} cut at {cut}")


def test_corrupted_bytes_never_escape_as_raw_exceptions():
    """Random byte changes anywhere in a file: a typed error or an image, never a raw error."""
    rng = random.Random(20240517)
    sources = [_bytes(n) for n in ("MR_small.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm",
                                   "MR_small_jpeg_ls_lossless.dcm", "CT_small.dcm", "image_dfl.dcm",
                                   "MR_small_bigendian.dcm", "JPGExtended.dcm")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(300):
            content = bytearray(rng.choice(sources))
            for _ in range(rng.randint(1, 8)):
                content[rng.randrange(len(content))] = rng.randrange(256)
            try:
                read_image(bytes(content))
            except RadedgeError:
                pass


# --------------------------------------------------------------------------- decoding


def test_damaged_jpeg_data_reports_the_decoder_error():
    # pydicom's JPEG-lossy.dcm has a misplaced marker libjpeg rejects.
    with pytest.raises(CorruptPixelDataError, match="pylibjpeg") as caught:
        read_dicom(get_testdata_file("JPEG-lossy.dcm"))
    assert "JPEG Extended (Process 2 and 4)" in str(caught.value)


def test_zeroed_jpeg2000_fragment_is_corrupt():
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    ds.PixelData = pydicom.encaps.encapsulate([bytes(2000)])
    with pytest.raises(CorruptPixelDataError, match="JPEG 2000"):
        read_dicom(to_bytes(ds))


@pytest.mark.parametrize("syntax, named", [(MPEG2MPML, "MPEG2 Main Profile / Main Level"),
                                           ("1.2.3.4.5", "unknown transfer syntax")])
def test_transfer_syntax_nothing_decodes(syntax, named):
    ds = _mr_dataset()
    ds.file_meta.TransferSyntaxUID = syntax
    with pytest.raises(UnsupportedTransferSyntaxError) as caught:
        read_dicom(ds)
    assert named in str(caught.value)
    assert "Explicit VR Little Endian" in str(caught.value)  # what to send instead
    assert caught.value.missing_packages == ()
    assert caught.value.transfer_syntax_uid == syntax


def test_in_memory_dataset_without_transfer_syntax_is_read_as_little_endian_with_a_note():
    pixels = np.arange(4, dtype=np.uint8).reshape(2, 2)
    ds = make_dataset(pixels, bits_stored=8)
    del ds.file_meta.TransferSyntaxUID
    image = read_dicom(ds)
    assert np.array_equal(image.pixels, pixels)
    assert image.source.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert any("no Transfer Syntax UID" in note and "little endian is assumed" in note for note in image.notes)


def test_compressed_dataset_whose_codec_cannot_be_told():
    pixels = np.zeros((2, 2), dtype=np.uint8)
    ds = make_dataset(pixels, bits_stored=8)
    del ds.file_meta.TransferSyntaxUID
    ds.PixelData = encapsulate([b"\x00\x01\x02\x03" * 4])
    ds["PixelData"].is_undefined_length = True
    with pytest.raises(UnsupportedTransferSyntaxError, match="transfer_syntax_uid=") as caught:
        read_dicom(ds)
    assert "00 01 02 03" in str(caught.value)


# --------------------------------------------------------------------------- size


def test_absurd_declared_size_refused_before_reading_pixels(tmp_path):
    ds = make_dataset(np.zeros((2, 2)), bits_stored=16)
    ds.Rows = ds.Columns = 65535
    path = tmp_path / "huge.dcm"
    path.write_bytes(to_bytes(ds))
    tracemalloc.start()
    try:
        for source in (path, path.read_bytes(), ds):
            with pytest.raises(ImageTooLargeError) as caught:
                read_image(source)
            assert "65535 x 65535" in str(caught.value)
            assert str(MAX_SIDE) in str(caught.value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # 65535**2 16-bit pixels would be 8 GiB


def test_max_pixels_bounds_rows_times_columns():
    with pytest.raises(ImageTooLargeError, match=r"64 x 64 = 4096 pixels, more than the limit of 4000"):
        read_dicom(get_testdata_file("MR_small.dcm"), max_pixels=4000)
    assert read_dicom(get_testdata_file("MR_small.dcm"), max_pixels=4096).pixels.size == 4096


# --------------------------------------------------------------------------- unsupported pixels


@pytest.mark.parametrize("name, named", [
    ("examples_rgb_color.dcm", "RGB"),
    ("examples_palette.dcm", "PALETTE COLOR"),
    ("examples_ybr_color.dcm", "YBR_FULL_422"),
    ("liver_1frame.dcm", "Bits Allocated (0028,0100) = 1"),
    ("rtdose_1frame.dcm", "Bits Allocated (0028,0100) = 32"),
    ("rtdose.dcm", "Number of Frames = 15"),
])
def test_unsupported_pixel_kinds(name, named):
    with pytest.raises(UnsupportedImageError, match=named.replace("(", r"\(").replace(")", r"\)")):
        read_dicom(get_testdata_file(name))


def test_two_frames_refused():
    ds = make_dataset(np.zeros((4, 4)), bits_stored=12)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    with pytest.raises(UnsupportedImageError, match="Number of Frames = 2"):
        read_dicom(to_bytes(ds))


@pytest.mark.parametrize("attributes, named", [
    ({"BitsStored": 7, "HighBit": 6}, "Bits Stored (0028,0101) = 7"),
    ({"BitsStored": 12, "HighBit": 15}, "High Bit (0028,0102) = 15"),
    ({"PixelRepresentation": 2}, "Pixel Representation (0028,0103) = 2"),
    ({"SamplesPerPixel": 3}, "3 sample(s)"),
    ({"RescaleSlope": "0", "RescaleIntercept": "0"}, "Rescale Slope (0028,1053) = 0"),
    ({"Rows": 0}, "an empty image"),
])
def test_header_values_radedge_refuses(attributes, named):
    ds = make_dataset(np.zeros((4, 4)), bits_stored=12)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    with pytest.raises(UnsupportedImageError) as caught:
        read_dicom(ds)
    assert named in str(caught.value)


def test_rescale_slope_that_is_not_a_number():
    ds = make_dataset(np.zeros((4, 4)), bits_stored=12, RescaleSlope="9.75", RescaleIntercept="0")
    encoded = to_bytes(ds)
    assert encoded.count(b"9.75") == 1
    with pytest.raises(UnsupportedImageError, match="Rescale Slope .* not a number"):
        read_dicom(encoded.replace(b"9.75", b"abcd"))


def test_missing_photometric_interpretation():
    ds = make_dataset(np.zeros((4, 4)), bits_stored=12)
    del ds.PhotometricInterpretation
    with pytest.raises(UnsupportedImageError, match=r"no Photometric Interpretation \(0028,0004\)"):
        read_dicom(ds)


def test_incomplete_lut_is_refused():
    from .dicom_factory import lut_item

    ds = make_dataset(np.zeros((4, 4)), bits_stored=12)
    item = lut_item(0, 16, np.arange(10))
    item.LUTDescriptor = [4096, 0, 16]
    ds.ModalityLUTSequence = [item]
    with pytest.raises(UnsupportedImageError, match="10 LUT Data entries where its descriptor declares 4096"):
        read_dicom(to_bytes(ds))


def test_every_error_is_a_radedge_input_error():
    for error in (NotDicomError, NoPixelDataError, TruncatedPixelDataError, CorruptPixelDataError,
                  UnsupportedTransferSyntaxError, UnsupportedImageError, ImageTooLargeError):
        assert issubclass(error, InputError)

