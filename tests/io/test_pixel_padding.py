"""Pixel Padding Value (0028,0120) and Pixel Padding Range Limit (0028,0121), PS3.3
C.7.5.1.1.2: read into ``Intensity.pixel_padding`` as stored values of the image."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataelem import DataElement
from pydicom.uid import ImplicitVRLittleEndian

from radedge.io import PixelPadding, read_dicom

from .dicom_factory import make_dataset, round_trip

STORED = np.arange(0, 4096, dtype=np.uint16).reshape(64, 64)
SIGNED = np.arange(-2048, 2048).reshape(64, 64)


def _read(ds):
    return read_dicom(round_trip(ds)[0])


def test_no_padding_attributes_no_padding():
    image = _read(make_dataset(STORED, bits_stored=12))
    assert image.intensity.pixel_padding is None
    assert "padding" not in image.intensity.meaning


def test_padding_value_alone_marks_one_stored_value():
    image = _read(make_dataset(STORED, bits_stored=12, PixelPaddingValue=0))
    padding = image.intensity.pixel_padding
    assert padding == PixelPadding(0) and (padding.low, padding.high) == (0, 0)
    assert "Stored value 0 is pixel padding (no image)." in image.intensity.meaning
    assert padding.mask(np.array([0, 1, 4095])).tolist() == [True, False, False]


def test_range_limit_marks_the_range_in_either_order():
    for value, limit in ((4095, 4000), (4000, 4095)):
        image = _read(make_dataset(STORED, bits_stored=12, PixelPaddingValue=value, PixelPaddingRangeLimit=limit))
        padding = image.intensity.pixel_padding
        assert (padding.low, padding.high) == (4000, 4095)
        assert "Stored values 4000 to 4095 are pixel padding" in image.intensity.meaning
        assert padding.mask(STORED).sum() == 96


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian])
def test_signed_padding_is_a_signed_stored_value(syntax):
    kwargs = {"syntax": syntax} if syntax else {}
    ds = make_dataset(SIGNED, bits_stored=12, signed=True, PixelPaddingValue=-2048, PixelPaddingRangeLimit=-2000,
                      **kwargs)
    padding = _read(ds).intensity.pixel_padding
    assert (padding.low, padding.high) == (-2048, -2000)


def test_padding_written_with_the_other_vr_keeps_its_bits():
    ds = make_dataset(SIGNED, bits_stored=12, signed=True)
    ds.add(DataElement(0x00280120, "US", 65535))  # signed image, US: the bits of -1
    image = _read(ds)
    assert image.intensity.pixel_padding == PixelPadding(-1)
    assert any("written with the other VR" in note and "-1" in note for note in image.notes)

    ds = make_dataset(STORED, bits_stored=16)
    ds.add(DataElement(0x00280120, "SS", -1))  # unsigned image, SS: the bits of 65535
    image = _read(ds)
    assert image.intensity.pixel_padding == PixelPadding(65535)


def test_range_limit_without_value_is_ignored_with_a_note():
    image = _read(make_dataset(STORED, bits_stored=12, PixelPaddingRangeLimit=10))
    assert image.intensity.pixel_padding is None
    assert any("Pixel Padding Range Limit (0028,0121) is present without Pixel Padding Value" in n for n in image.notes)


def test_padding_outside_bits_stored_marks_nothing_and_is_noted():
    image = _read(make_dataset(STORED, bits_stored=12, PixelPaddingValue=65535))
    assert image.intensity.pixel_padding is None
    assert any("pixel padding 65535 to 65535 lies outside the stored values 0 to 4095" in n for n in image.notes)
    # Partly inside the range: kept; the tables use the part inside.
    image = _read(make_dataset(STORED, bits_stored=12, PixelPaddingValue=65535, PixelPaddingRangeLimit=4090))
    assert image.intensity.pixel_padding == PixelPadding(65535, 4090)
