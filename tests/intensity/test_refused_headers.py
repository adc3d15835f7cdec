"""Header values that leave the intensity table without meaning: ``build_lut`` refuses them with
``NotAnalysableError`` before a table of NaN, or of one grey, reaches a model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from radedge.errors import InputError, InvalidWindowError, NotAnalysableError
from radedge.intensity import ABSURD_WINDOW_RATIO, build_lut
from radedge.io import Window, read_dicom

from tests.io.dicom_factory import lut_item, make_dataset, to_bytes

# pydicom warns when it writes a DS that is not a decimal string ("NaN", "inf"): those files are
# what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DS")

STORED = np.array([[0, 1000, 2000, 4095]])


def _image(stored=STORED, **attributes):
    return read_dicom(to_bytes(make_dataset(stored, bits_stored=12, **attributes)))


@pytest.mark.parametrize("slope, intercept, expected", [
    ("NaN", "0", r"Rescale Slope \(0028,1053\) is nan, not a finite number"),
    ("inf", "0", r"Rescale Slope \(0028,1053\) is inf, not a finite number"),
    ("-inf", "0", r"Rescale Slope \(0028,1053\) is -inf, not a finite number"),
    ("5e-324", "0", r"Rescale Slope \(0028,1053\) is 4.94066e-324, a denormal number"),
    ("-1e-310", "0", r"Rescale Slope \(0028,1053\) is -1e-310, a denormal number"),
    ("1", "NaN", r"Rescale Intercept \(0028,1052\) is nan, not a finite number"),
    ("1", "-inf", r"Rescale Intercept \(0028,1052\) is -inf, not a finite number"),
    ("1e305", "0", r"take stored values 0 to 4095 beyond the largest number a float64 holds"),
])
@pytest.mark.parametrize("voi", ["file", "none"])
def test_a_rescale_without_meaning_is_refused(slope, intercept, expected, voi):
    image = _image(RescaleSlope=slope, RescaleIntercept=intercept, WindowCenter="2048", WindowWidth="4096")
    with pytest.raises(NotAnalysableError, match=expected) as refused:
        build_lut(image, voi=voi)
    assert isinstance(refused.value, InputError)
    assert "send the image again" in str(refused.value)


def test_a_slope_of_zero_built_by_hand_is_refused():
    # The DICOM reader already refuses slope 0; an Image made in code reaches build_lut with it.
    from dataclasses import replace

    from radedge.io import Rescale

    image = _image(RescaleSlope="1", RescaleIntercept="0")
    image = replace(image, intensity=replace(image.intensity, rescale=Rescale(slope=0.0, intercept=5.0)))
    with pytest.raises(NotAnalysableError, match="Rescale Slope .* is 0, which maps every stored value"):
        build_lut(image)


def test_a_slope_just_above_the_denormals_is_still_a_table():
    assert 2.3e-308 > np.finfo(np.float64).tiny
    lut = build_lut(_image(RescaleSlope="2.3e-308", RescaleIntercept="0"), voi="none")
    assert np.isfinite(lut.table).all()
    np.testing.assert_allclose(lut.apply(STORED), [[0.0, 1000 / 4095, 2000 / 4095, 1.0]], rtol=1e-6)


@pytest.mark.parametrize("slope", ["NaN", "inf"])
def test_a_non_finite_rescale_with_a_voi_lut_is_refused_not_an_index_error(slope):
    ds = make_dataset(STORED, bits_stored=12, RescaleSlope=slope, RescaleIntercept="0")
    ds.VOILUTSequence = [lut_item(0, 16, np.arange(4096) * 16)]
    with pytest.raises(NotAnalysableError, match="Rescale Slope"):
        build_lut(read_dicom(to_bytes(ds)))


@pytest.mark.parametrize("center, width, what", [
    ("2048", "1e308", "Window Center 2048, Width 1e+308"),
    ("2048", "5e10", "Window Center 2048, Width 5e+10"),
    ("1e300", "4096", "Window Center 1e+300, Width 4096"),
    ("-5e10", "100", "Window Center -5e+10, Width 100"),
])
def test_a_window_out_of_all_proportion_is_refused(center, width, what):
    image = _image(RescaleSlope="1", RescaleIntercept="0", WindowCenter=center, WindowWidth=width)
    expected = (f"the file's window 0 ({what}) is out of all proportion to the modality values this image can "
                "hold (0 to 4095)")
    with pytest.raises(NotAnalysableError, match=re.escape(expected)):
        build_lut(image)


def test_the_window_limit_scales_with_the_modality_span():
    # 12 bits at slope 1e-6 span 0.004095: a width of 4096 is a million times that, a 1e-10 slope's 1e10 times.
    limit = ABSURD_WINDOW_RATIO * 4095 * 1e-6
    assert 4096 < limit
    build_lut(_image(RescaleSlope="1e-6", RescaleIntercept="0", WindowCenter="0", WindowWidth="4096"))
    with pytest.raises(NotAnalysableError, match="out of all proportion"):
        build_lut(_image(RescaleSlope="1e-10", RescaleIntercept="0", WindowCenter="0", WindowWidth="4096"))


def test_a_callers_window_is_held_to_the_same_limit():
    image = _image(WindowCenter="2048", WindowWidth="4096")
    with pytest.raises(NotAnalysableError, match=r"given by the caller \(Window Center 0, Width 1e\+20\)"):
        build_lut(image, voi=Window(center=0, width=1e20))
    assert build_lut(image, voi=Window(center=0, width=1e9)).table.max() > 0.5


@pytest.mark.parametrize("center, width", [("NaN", "4096"), ("2048", "inf")])
def test_a_non_finite_window_stays_an_invalid_window(center, width):
    image = _image(WindowCenter=center, WindowWidth=width)
    with pytest.raises(InvalidWindowError, match="both must be finite numbers"):
        build_lut(image)
