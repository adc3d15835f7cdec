"""Every reference file decodes to the stored values pydicom gives, in radedge's layout."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filewriter import write_dataset

from radedge.io import read_dicom, read_image
from radedge.io.codecs import describe_syntax

from .dicom_factory import make_dataset, round_trip, to_bytes
from .reference_files import FIXTURES, REFERENCE_FILES, reference_id

REFERENCES = [pytest.param(r, id=reference_id(r), marks=() if r.available else pytest.mark.skip(
    reason=f"{r.path} not present (set RADEDGE_SHARED_DICOM)")) for r in REFERENCE_FILES]


def _pydicom_pixels(path: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path).pixel_array


@pytest.mark.parametrize("reference", REFERENCES)
def test_reference_file_decodes_to_stored_values(reference):
    image = read_dicom(reference.path)
    pixels = image.pixels
    assert pixels.dtype == np.dtype(reference.dtype)
    assert pixels.dtype.isnative
    assert pixels.flags.c_contiguous
    assert pixels.shape == reference.shape == (image.rows, image.columns)
    for (row, column), value in reference.spot_values.items():
        assert pixels[row, column] == value, (row, column)
    assert (int(pixels.min()), int(pixels.max())) == reference.value_range
    low, high = image.intensity.stored_value_range
    assert low <= pixels.min() and pixels.max() <= high
    assert image.source.transfer_syntax_uid == reference.transfer_syntax
    assert image.source.transfer_syntax_name == describe_syntax(reference.transfer_syntax).name
    assert image.source.format == "dicom"
    np.testing.assert_array_equal(pixels, _pydicom_pixels(reference.path))


def test_lossless_encodings_of_one_image_agree():
    groups: dict[str, list] = {}
    for reference in REFERENCE_FILES:
        if reference.lossless_group and reference.available:
            groups.setdefault(reference.lossless_group, []).append(reference)
    assert {r.transfer_syntax for r in groups["MR_small"]} >= {
        pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ExplicitVRBigEndian, pydicom.uid.RLELossless,
        pydicom.uid.JPEGLSLossless, pydicom.uid.JPEG2000Lossless, pydicom.uid.JPEGLosslessSV1,
        pydicom.uid.JPEGLossless,
    }
    for members in groups.values():
        first = read_dicom(members[0].path).pixels
        for member in members[1:]:
            np.testing.assert_array_equal(read_dicom(member.path).pixels, first, err_msg=member.name)


def test_path_bytes_file_object_and_dataset_give_the_same_image(tmp_path):
    path = pydicom.data.get_testdata_file("MR_small_jp2klossless.dcm")
    encoded = Path(path).read_bytes()
    from_path = read_dicom(path)
    # A file object positioned after unrelated leading bytes is read from its position.
    stream = io.BytesIO(b"leading bytes" + encoded)
    stream.seek(len(b"leading bytes"))
    readings = [read_dicom(encoded), read_image(encoded), read_dicom(stream),
                read_dicom(pydicom.dcmread(path)), read_image(Path(path))]
    for image in readings:
        np.testing.assert_array_equal(image.pixels, from_path.pixels)
        assert image.intensity == from_path.intensity
    assert from_path.source.path == path
    assert readings[0].source.path is None


def test_caller_dataset_is_not_modified():
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    del ds.file_meta.TransferSyntaxUID  # forces radedge to infer it from the encoding
    before = {elem.tag: elem.value for elem in ds if elem.tag != 0x7FE00010}
    image = read_dicom(ds)
    assert "TransferSyntaxUID" not in ds.file_meta
    assert {elem.tag: elem.value for elem in ds if elem.tag != 0x7FE00010} == before
    assert any("no Transfer Syntax UID" in note for note in image.notes)


@pytest.mark.parametrize("implicit_vr, little_endian", [(True, True), (False, True), (False, False)])
def test_raw_data_set_without_preamble_or_meta(implicit_vr, little_endian):
    source = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    expected = source.pixel_array
    buffer = io.BytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit_vr, little_endian
    source.set_original_encoding(implicit_vr, little_endian)
    write_dataset(pydicom.filebase.DicomFileLike(buffer), source)
    raw = buffer.getvalue()
    assert raw[128:132] != b"DICM"
    image = read_image(raw)
    np.testing.assert_array_equal(image.pixels, expected)
    assert any("no Transfer Syntax UID" in note for note in image.notes)


def test_big_endian_pixels_come_back_in_native_order():
    image = read_dicom(pydicom.data.get_testdata_file("MR_small_bigendian.dcm"))
    assert image.pixels.dtype == np.dtype("int16") and image.pixels.dtype.byteorder in ("=", "|")


@pytest.mark.parametrize("signed", [False, True])
def test_bits_above_bits_stored_are_cleared_as_pydicom_does(signed):
    # 12 of 16 bits with junk in the top 4 bits (PS3.5 8.1.1: their content is undefined).
    values = np.array([[0x0123, 0x0FFF, 0x0800, 0x07FF]])
    junk = values | 0xA000
    ds = make_dataset(np.zeros_like(values), bits_stored=12, signed=signed)
    ds.PixelData = junk.astype("<u2").tobytes()
    encoded, reread = round_trip(ds)
    image = read_dicom(encoded)
    np.testing.assert_array_equal(image.pixels, reread.pixel_array)
    expected = np.where(values >= 0x800, values - 0x1000, values) if signed else values
    np.testing.assert_array_equal(image.pixels, expected)


def test_jpeg2000_codestream_wider_than_bits_stored_is_confined():
    # A J2K codestream of 16-bit precision in a file declaring 12 bits stored: pydicom
    # returns the codestream's values; radedge clears the bits above Bits Stored and says so.
    values = np.tile(np.array([0x0123, 0x1FFF, 0xF00F, 0x0FFF], dtype=np.uint16), (64, 16))
    ds = make_dataset(values, bits_stored=16)
    ds.compress(pydicom.uid.JPEG2000Lossless, values, encoding_plugin="pylibjpeg")
    ds.BitsStored, ds.HighBit = 12, 11
    image = read_dicom(to_bytes(ds))
    np.testing.assert_array_equal(image.pixels, values & 0x0FFF)
    assert any("bits above Bits Stored (12)" in note for note in image.notes)


def test_signed_8_bit_is_widened_to_int16():
    values = np.array([[-128, -1, 0, 127]])
    image = read_dicom(to_bytes(make_dataset(values, bits_stored=8, signed=True)))
    assert image.pixels.dtype == np.int16
    np.testing.assert_array_equal(image.pixels, values)


@pytest.mark.needs_dcmtk
def test_jpeg_lossless_fixtures_are_reproducible(tmp_path):
    from tests.data.io.make_io_fixtures import FIXTURES as MADE, make

    for made in make(tmp_path):
        committed = FIXTURES / made.name
        np.testing.assert_array_equal(read_dicom(made).pixels, read_dicom(committed).pixels)
    assert {p.name for p in tmp_path.iterdir()} == set(MADE)
