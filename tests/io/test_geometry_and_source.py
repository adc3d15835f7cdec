"""Pixel spacing with its source (PS3.3 10.7.1.1, C.8.11.4), Source fields, and notes."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import DigitalXRayImageStorageForPresentation, JPEG2000Lossless

from radedge.io import read_dicom

from .dicom_factory import make_dataset, to_bytes


def _read(**attributes):
    ds = make_dataset(np.zeros((4, 4)), bits_stored=12, **attributes)
    return read_dicom(to_bytes(ds))


def test_pixel_spacing_is_used_first():
    image = _read(PixelSpacing=[0.139, 0.14], ImagerPixelSpacing=[0.15, 0.15],
                  PixelSpacingCalibrationType="GEOMETRY")
    assert (image.spacing.row_mm, image.spacing.column_mm) == (0.139, 0.14)
    assert image.spacing.source == "PixelSpacing"
    assert "calibrated" in image.spacing.note
    assert "Pixel Spacing Calibration Type GEOMETRY" in image.spacing.note
    assert image.spacing_problem is None


def test_pixel_spacing_equal_to_imager_spacing_is_flagged_as_probably_uncalibrated():
    image = _read(PixelSpacing=[0.15, 0.15], ImagerPixelSpacing=[0.15, 0.15])
    assert image.spacing.source == "PixelSpacing"
    assert "probably the detector plane" in image.spacing.note


def test_imager_pixel_spacing_is_the_detector_plane():
    image = _read(ImagerPixelSpacing=[0.15, 0.16])
    assert (image.spacing.row_mm, image.spacing.column_mm) == (0.15, 0.16)
    assert image.spacing.source == "ImagerPixelSpacing"
    assert image.spacing.note == "detector plane, not corrected for geometric magnification"


def test_imager_pixel_spacing_divided_by_the_magnification_factor():
    image = _read(ImagerPixelSpacing=[0.15, 0.15], EstimatedRadiographicMagnificationFactor="1.25")
    assert image.spacing.row_mm == pytest.approx(0.12)
    assert image.spacing.column_mm == pytest.approx(0.12)
    assert image.spacing.source == "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"
    assert "1.25" in image.spacing.note


def test_invalid_pixel_spacing_falls_back_to_imager_spacing_with_a_note():
    image = _read(PixelSpacing=[0, 0], ImagerPixelSpacing=[0.15, 0.15])
    assert image.spacing.source == "ImagerPixelSpacing"
    assert any("Pixel Spacing (0028,0030) is 0\\0" in note for note in image.notes)


# pydicom warns when it writes a DS that is not a decimal string: those values are the point.
@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize("factor", ["0", "-1.2", "NaN", "inf", "-inf", "1e-308", "5e-324", "0.5", "0.999",
                                    "10.5", "1e308"])
def test_magnification_factor_outside_one_to_ten_is_ignored_with_a_note(factor):
    # SID / SOD (PS3.3 C.8.11.5) is at least 1; none of these may divide the detector spacing.
    image = _read(ImagerPixelSpacing=[0.15, 0.16], EstimatedRadiographicMagnificationFactor=factor)
    assert (image.spacing.row_mm, image.spacing.column_mm) == (0.15, 0.16)
    assert image.spacing.source == "ImagerPixelSpacing"
    assert image.spacing.note == "detector plane, not corrected for geometric magnification"
    assert image.spacing_problem is None
    assert [note for note in image.notes if "Magnification Factor" in note] == [
        f"Estimated Radiographic Magnification Factor is {float(factor):g}, not between 1 and 10 "
        "(source-detector over source-patient distance); ignored, so the spacing is the detector plane's"]


@pytest.mark.parametrize("factor, spacing_mm", [("1", 0.15), ("1.5", 0.1), ("10", 0.015)])
def test_magnification_factor_from_one_to_ten_divides_the_detector_spacing(factor, spacing_mm):
    image = _read(ImagerPixelSpacing=[0.15, 0.15], EstimatedRadiographicMagnificationFactor=factor)
    assert image.spacing.row_mm == pytest.approx(spacing_mm)
    assert image.spacing.source == "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"
    assert not any("Magnification Factor" in note for note in image.notes)


def test_magnification_factor_that_is_not_numeric_is_ignored_with_a_note():
    encoded = to_bytes(make_dataset(np.zeros((4, 4)), bits_stored=12, ImagerPixelSpacing=[0.15, 0.15],
                                    EstimatedRadiographicMagnificationFactor="1.25"))
    image = read_dicom(encoded.replace(b"1.25", b"x.25", 1))
    assert image.spacing.source == "ImagerPixelSpacing" and image.spacing.row_mm == 0.15
    assert "Estimated Radiographic Magnification Factor is not numeric; ignored" in image.notes


def test_magnification_factor_beside_pixel_spacing_is_not_used():
    image = _read(PixelSpacing=[0.2, 0.2], ImagerPixelSpacing=[0.15, 0.15],
                  EstimatedRadiographicMagnificationFactor="1e-308")
    assert (image.spacing.row_mm, image.spacing.source) == (0.2, "PixelSpacing")


@pytest.mark.parametrize("attributes, problem", [
    ({}, "Pixel Spacing (0028,0030) is absent; Imager Pixel Spacing (0018,1164) is absent"),
    ({"PixelSpacing": [0, 0]}, "Pixel Spacing (0028,0030) is 0\\0: zero, negative or not finite"),
    ({"ImagerPixelSpacing": [-0.1, 0.1]}, "Imager Pixel Spacing (0018,1164) is -0.1\\0.1"),
    ({"PixelSpacing": [0.1]}, "Pixel Spacing (0028,0030) has 1 value(s), not 2"),
])
def test_unusable_spacing_says_which_attribute_was_what(attributes, problem):
    image = _read(**attributes)
    assert image.spacing is None
    assert problem in image.spacing_problem


def test_malformed_spacing_is_reported():
    encoded = to_bytes(make_dataset(np.zeros((4, 4)), bits_stored=12, PixelSpacing=[0.25, 0.25]))
    assert encoded.count(b"0.25\\0.25") == 1
    image = read_dicom(encoded.replace(b"0.25\\0.25", b"0.25\\x.25"))
    assert image.spacing is None
    assert "Pixel Spacing (0028,0030) is malformed" in image.spacing_problem


def test_source_describes_the_acquisition():
    ds = make_dataset(np.arange(64 * 64).reshape(64, 64) % 4096, bits_stored=12,
                      PresentationIntentType="FOR PRESENTATION", BodyPartExamined="LSPINE",
                      ViewPosition="LL")
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    source = read_dicom(to_bytes(ds)).source
    assert source.format == "dicom"
    assert source.transfer_syntax_uid == JPEG2000Lossless
    assert source.transfer_syntax_name == "JPEG 2000 Image Compression (Lossless Only)"
    assert source.sop_class_uid == DigitalXRayImageStorageForPresentation
    assert source.modality == "DX"
    assert source.presentation_intent == "FOR PRESENTATION"
    assert source.body_part == "LSPINE"
    assert source.view_position == "LL"


@pytest.mark.parametrize("photometric, shape, contradiction", [
    ("MONOCHROME1", "INVERSE", False),
    ("MONOCHROME2", "IDENTITY", False),
    ("MONOCHROME1", "IDENTITY", True),
    ("MONOCHROME2", "INVERSE", True),
])
def test_presentation_lut_shape_contradiction_is_noted(photometric, shape, contradiction):
    image = _read(photometric=photometric, PresentationLUTShape=shape)
    assert image.intensity.presentation_lut_shape == shape
    assert image.intensity.photometric_interpretation == photometric
    noted = [note for note in image.notes if "contradicts Photometric Interpretation" in note]
    assert bool(noted) == contradiction


def test_window_attributes_become_windows():
    image = _read(WindowCenter=[2048, 1000], WindowWidth=[4096, 500],
                  WindowCenterWidthExplanation=["FULL", "BONE"], VOILUTFunction="SIGMOID")
    windows = image.intensity.windows
    assert [(w.center, w.width, w.function, w.explanation) for w in windows] == [
        (2048.0, 4096.0, "SIGMOID", "FULL"), (1000.0, 500.0, "SIGMOID", "BONE")]


def test_unknown_voi_function_falls_back_to_linear_with_a_note():
    image = _read(WindowCenter=100, WindowWidth=50, VOILUTFunction="GAMMA")
    assert image.intensity.windows[0].function == "LINEAR"
    assert any("'GAMMA'" in note for note in image.notes)


def test_meaning_states_the_stored_value_semantics():
    meaning = _read(photometric="MONOCHROME1", RescaleSlope="0.5", RescaleIntercept="-10",
                    RescaleType="US").intensity.meaning
    assert "12 of 16 bits, unsigned" in meaning
    assert "Modality values (US) = 0.5 * stored - 10" in meaning
    assert "MONOCHROME1: the largest values display darkest" in meaning
