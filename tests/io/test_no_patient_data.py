"""Patient names, IDs and dates never reach an Image, an error message or a log line."""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radedge.errors import RadedgeError
from radedge.intensity import build_lut
from radedge.io import Window, read_dicom, read_image

from .dicom_factory import PATIENT_VALUES, make_dataset, to_bytes, with_patient_data


def _assert_clean(text: str) -> None:
    for keyword, value in PATIENT_VALUES.items():
        assert value not in text, f"{keyword} leaked"
        for part in value.split("^"):
            assert part not in text, f"part of {keyword} leaked"


def _bad_variants(ds: pydicom.Dataset) -> list:
    """Files carrying the patient data that radedge must refuse, one per error kind."""
    encoded = to_bytes(ds)
    pixel_offset = encoded.rfind(b"\xe0\x7f\x10\x00")
    no_pixels = copy.deepcopy(ds)
    del no_pixels.PixelData
    too_large = copy.deepcopy(ds)
    too_large.Rows = too_large.Columns = 65535
    frames = copy.deepcopy(ds)
    frames.NumberOfFrames = 2
    colour = copy.deepcopy(ds)
    colour.PhotometricInterpretation = "RGB"
    return [
        encoded[: pixel_offset + 100],   # cut inside Pixel Data
        encoded[: pixel_offset - 3],     # cut just before it
        to_bytes(no_pixels),
        to_bytes(too_large),
        to_bytes(frames),
        to_bytes(colour),
        encoded[128:],                   # preamble stripped
    ]


def test_no_patient_data_in_images_errors_or_logs(caplog):
    ds = with_patient_data(make_dataset(np.arange(256).reshape(16, 16) * 16, bits_stored=12,
                                        photometric="MONOCHROME1", WindowCenter=2048,
                                        WindowWidth=4096, ImagerPixelSpacing=[0.1, 0.1]))
    encoded = to_bytes(ds)
    assert PATIENT_VALUES["PatientName"].encode() in encoded
    texts = []
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        for source in (encoded, pydicom.dcmread(get_testdata_file("MR_small.dcm")), ds):
            if isinstance(source, pydicom.Dataset):
                source = with_patient_data(source)
            image = read_image(source)
            lut = build_lut(image)
            texts += [repr(image), str(image), repr(image.intensity), repr(image.source),
                      repr(image.spacing), str(image.notes), lut.description]
        for bad in _bad_variants(ds):
            with pytest.raises(RadedgeError) as caught:
                read_dicom(bad)
            texts += [str(caught.value), repr(caught.value)]
        with pytest.raises(RadedgeError) as caught:
            build_lut(read_image(encoded), voi=Window(center=10, width=0))
        texts.append(str(caught.value))
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(warning.message) for warning in caught_warnings]
    assert len(texts) > 30
    _assert_clean("\n".join(texts))
