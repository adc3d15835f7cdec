"""build_lut against pydicom's own chain (``tests.reference_chain.pydicom_display``).

Synthetic images hold every representable stored value, so the whole table is compared.
"""

from __future__ import annotations


import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from radedge.errors import InvalidWindowError
from radedge.intensity import IntensityLut, build_lut
from radedge.io import Window, read_dicom, read_image

from tests.io.dicom_factory import every_stored_value, lut_item, make_dataset, round_trip
from tests.io.reference_files import SHARED_DICOM
from tests.reference_chain import pydicom_display

TOLERANCE = 1e-5


def assert_matches_pydicom(encoded: bytes, ds: pydicom.Dataset, index: int = 0) -> IntensityLut:
    image = read_dicom(encoded)
    lut = build_lut(image, voi_index=index)
    expected = pydicom_display(ds, ds.pixel_array, index)
    np.testing.assert_allclose(lut.apply(image.pixels), expected, atol=TOLERANCE, rtol=0)
    return lut


# --------------------------------------------------------------------------- real files


def _real_files():
    names = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "693_J2KI.dcm", "examples_overlay.dcm",
             "J2K_pixelrep_mismatch.dcm", "dicomdirtests/77654033/CR1/6154",
             "dicomdirtests/77654033/CR2/6247", "dicomdirtests/77654033/CR3/6278"]
    params = [pytest.param(get_testdata_file(name), id=name.split("/")[-1]) for name in names]
    for name in ("mlut_18.dcm", "vlut_04.dcm"):
        path = SHARED_DICOM / name
        params.append(pytest.param(str(path), id=name, marks=pytest.mark.skipif(
            not path.is_file(), reason=f"{path} not present")))
    return params


@pytest.mark.parametrize("path", _real_files())
def test_real_files_match_pydicom(path):
    ds = pydicom.dcmread(path)
    image = read_dicom(path)
    count = max(1, len(image.intensity.voi_luts) or len(image.intensity.windows))
    for index in range(count):
        lut = build_lut(image, voi_index=index)
        expected = pydicom_display(ds, ds.pixel_array, index)
        np.testing.assert_allclose(lut.apply(image.pixels), expected, atol=TOLERANCE, rtol=0)
        low, high = image.intensity.stored_value_range
        assert lut.first_stored_value == low and lut.last_stored_value == high


def test_cr_description_reads_as_the_chain():
    image = read_dicom(get_testdata_file("dicomdirtests/77654033/CR1/6154"))
    assert build_lut(image).description == (
        "Rescale 0.684*v+200 (OD) -> VOI window C=1600 W=2800 LINEAR (index 0) -> "
        "inverted (MONOCHROME1) -> [0,1]"
    )


# --------------------------------------------------------------------------- synthetic


def _sqrt_lut(bits_stored: int, signed: bool, out_bits: int = 16) -> tuple[int, np.ndarray]:
    values = every_stored_value(bits_stored, signed).ravel()
    span = values - values[0]
    return int(values[0]), np.round(np.sqrt(span / span[-1]) * (2 ** out_bits - 1)).astype(np.int64)


SYNTHETIC = {
    "linear-12u": (12, False, {"WindowCenter": "2048", "WindowWidth": "4096"}),
    "linear-exact-12u": (12, False, {"WindowCenter": "1000.5", "WindowWidth": "300.25",
                                      "VOILUTFunction": "LINEAR_EXACT"}),
    "sigmoid-12u": (12, False, {"WindowCenter": "1500", "WindowWidth": "700", "VOILUTFunction": "SIGMOID"}),
    "two-windows-12u": (12, False, {"WindowCenter": ["2048", "500"], "WindowWidth": ["4096", "200"],
                                    "WindowCenterWidthExplanation": ["FULL", "NARROW"]}),
    "linear-width-1": (12, False, {"WindowCenter": "2000", "WindowWidth": "1"}),
    "signed-12-hu": (12, True, {"RescaleSlope": "1", "RescaleIntercept": "-1024",
                                "WindowCenter": "40", "WindowWidth": "400"}),
    "unsigned-10": (10, False, {"WindowCenter": "300", "WindowWidth": "512"}),
    "unsigned-16": (16, False, {"WindowCenter": "30000", "WindowWidth": "20000"}),
    "signed-16": (16, True, {"WindowCenter": "-100", "WindowWidth": "3000"}),
    "unsigned-8": (8, False, {"WindowCenter": "100", "WindowWidth": "60"}),
    "unsigned-8-in-16": (8, False, {"WindowCenter": "100", "WindowWidth": "60", "BitsAllocated": 16}),
    "negative-slope": (12, False, {"RescaleSlope": "-1", "RescaleIntercept": "4095",
                                   "WindowCenter": "1000", "WindowWidth": "1500"}),
    "cr-monochrome1": (12, False, {"RescaleSlope": "0.684", "RescaleIntercept": "200",
                                   "WindowCenter": "1600", "WindowWidth": "2800",
                                   "photometric": "MONOCHROME1"}),
    "sigmoid-monochrome1-signed": (14, True, {"WindowCenter": "-500", "WindowWidth": "900",
                                              "VOILUTFunction": "SIGMOID", "photometric": "MONOCHROME1"}),
    "no-voi-rescale": (12, False, {"RescaleSlope": "2.5", "RescaleIntercept": "-7"}),
}


def _build(bits: int, signed: bool, attributes: dict, syntax=None) -> tuple[bytes, pydicom.Dataset]:
    attributes = dict(attributes)
    photometric = attributes.pop("photometric", "MONOCHROME2")
    bits_allocated = attributes.pop("BitsAllocated", None)
    kwargs = {"syntax": syntax} if syntax else {}
    ds = make_dataset(every_stored_value(bits, signed), bits_stored=bits, signed=signed,
                      bits_allocated=bits_allocated, photometric=photometric, **kwargs)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return round_trip(ds)


@pytest.mark.parametrize("case", SYNTHETIC)
def test_synthetic_windows_match_pydicom_over_every_stored_value(case):
    bits, signed, attributes = SYNTHETIC[case]
    encoded, ds = _build(bits, signed, attributes)
    windows = read_dicom(encoded).intensity.windows
    for index in range(max(1, len(windows))):
        lut = assert_matches_pydicom(encoded, ds, index)
        assert lut.table.size == 2 ** bits


def test_modality_lut_sequence_then_window():
    first, data = _sqrt_lut(12, True)
    encoded, ds = _build(12, True, {"WindowCenter": "30000", "WindowWidth": "40000"})
    ds.ModalityLUTSequence = [lut_item(first, 16, data, first_vr="SS")]
    encoded, ds = round_trip(ds)
    lut = assert_matches_pydicom(encoded, ds)
    assert lut.description.startswith("Modality LUT Sequence (4096 entries from -2048, 16 bits)")


def test_modality_lut_sequence_then_voi_lut_sequence():
    first, data = _sqrt_lut(12, False)
    encoded, ds = _build(12, False, {})
    ds.ModalityLUTSequence = [lut_item(first, 16, data)]
    # The VOI input is the modality output, 0..65535: a 65536-entry table (descriptor 0),
    # which only fits in OW (US has a 16-bit length in explicit VR).
    gamma = np.round(np.arange(65536) ** 2 / 65535)
    ds.VOILUTSequence = [lut_item(0, 16, gamma, data_vr="OW")]
    encoded, ds = round_trip(ds)
    assert_matches_pydicom(encoded, ds)


@pytest.mark.parametrize("stored_bits, out_bits", [(8, 8), (10, 12), (10, 16)])
def test_voi_lut_output_range_is_its_descriptor_bits(stored_bits, out_bits):
    encoded, ds = _build(stored_bits, False, {})
    entries = 2 ** stored_bits
    ds.VOILUTSequence = [lut_item(0, out_bits, np.linspace(0, 2 ** out_bits - 1, entries).round())]
    encoded, ds = round_trip(ds)
    lut = assert_matches_pydicom(encoded, ds)
    assert f"output / {2 ** out_bits - 1}" in lut.description
    assert lut.table[0] == 0.0 and lut.table[-1] == 1.0


def test_voi_lut_words_in_a_big_endian_file():
    encoded, ds = _build(12, False, {}, syntax=ExplicitVRBigEndian)
    ds.VOILUTSequence = [lut_item(100, 16, np.arange(0, 65536, 64), data_vr="OW", little_endian=False)]
    encoded, ds = round_trip(ds)
    assert_matches_pydicom(encoded, ds)


def test_voi_lut_with_negative_first_mapped_on_signed_values():
    encoded, ds = _build(12, True, {})
    ds.VOILUTSequence = [lut_item(-1000, 16, np.linspace(0, 65535, 2000).round(), first_vr="SS")]
    encoded, ds = round_trip(ds)
    assert_matches_pydicom(encoded, ds)


def test_voi_lut_after_a_fractional_rescale():
    # The VOI LUT input is a float (0.5 * stored + 3): pydicom takes its integer part.
    encoded, ds = _build(12, False, {"RescaleSlope": "0.5", "RescaleIntercept": "3"})
    ds.VOILUTSequence = [lut_item(0, 16, np.linspace(0, 65535, 2100).round())]
    encoded, ds = round_trip(ds)
    assert_matches_pydicom(encoded, ds)


def test_several_voi_luts_take_precedence_over_windows():
    encoded, ds = _build(8, False, {"WindowCenter": "128", "WindowWidth": "256"})
    ds.VOILUTSequence = [lut_item(0, 16, np.linspace(0, 65535, 256).round()),
                         lut_item(0, 16, np.linspace(65535, 0, 256).round())]
    encoded, ds = round_trip(ds)
    assert_matches_pydicom(encoded, ds, 0)
    assert_matches_pydicom(encoded, ds, 1)


def test_implicit_vr_modality_lut_takes_its_sign_from_pixel_representation():
    first, data = _sqrt_lut(12, True)
    ds = make_dataset(every_stored_value(12, True), bits_stored=12, signed=True,
                      syntax=ImplicitVRLittleEndian)
    ds.ModalityLUTSequence = [lut_item(first, 16, data, first_vr="SS")]
    encoded, reread = round_trip(ds)
    assert read_dicom(encoded).intensity.modality_lut.first_mapped == -2048
    assert_matches_pydicom(encoded, reread)


def test_voi_lut_8_bit_entries_over_a_12_bit_range_clip_instead_of_wrapping():
    # pydicom 3.0.2 stores the VOI LUT index in the LUT's dtype (uint8 here), so inputs
    # past 255 wrap around; PS3.3 C.11.2.1.1 maps them to the last entry.
    data = np.linspace(0, 255, 4096).round()
    encoded, ds = _build(12, False, {})
    ds.VOILUTSequence = [lut_item(0, 8, data)]
    encoded, ds = round_trip(ds)
    lut = build_lut(read_dicom(encoded))
    np.testing.assert_allclose(lut.table, data / 255, atol=TOLERANCE)


# --------------------------------------------------------------------------- hypothesis


@st.composite
def window_cases(draw):
    bits = draw(st.integers(8, 16))
    signed = draw(st.booleans())
    bits_allocated = draw(st.sampled_from([8, 16])) if bits == 8 else 16
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    function = draw(st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]))
    attributes = {"VOILUTFunction": function,
                  "photometric": draw(st.sampled_from(["MONOCHROME1", "MONOCHROME2"]))}
    slope, intercept = 1.0, 0.0
    if draw(st.booleans()):
        slope = draw(st.sampled_from([-2, -1, -0.5, 0.25, 0.684, 1, 1.5, 3]))
        intercept = draw(st.integers(-3000, 3000))
        attributes.update(RescaleSlope=str(slope), RescaleIntercept=str(intercept))
    ends = sorted((low * slope + intercept, high * slope + intercept))
    span = ends[1] - ends[0]
    center = draw(st.integers(int(ends[0] - span / 4), int(ends[1] + span / 4))) + draw(
        st.sampled_from([0, 0.25, 0.5]))
    minimum_width = 1 if function == "LINEAR" else 0.25
    width = max(minimum_width, draw(st.integers(0, int(span * 1.5) + 2)) + draw(st.sampled_from([0, 0.5])))
    attributes.update(WindowCenter=f"{center:g}", WindowWidth=f"{width:g}")
    if bits_allocated == 8:
        attributes["BitsAllocated"] = 8
    return bits, signed, attributes


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window_cases())
def test_property_windows_match_pydicom(case):
    bits, signed, attributes = case
    encoded, ds = _build(bits, signed, attributes)
    assert_matches_pydicom(encoded, ds)


# --------------------------------------------------------------------------- voi choices


def test_voi_none_is_min_max_of_the_modality_output_present():
    stored = np.array([[100, 200], [300, 2000]])
    ds = make_dataset(stored, bits_stored=12, RescaleSlope="-2", RescaleIntercept="10",
                      WindowCenter="0", WindowWidth="10")
    encoded, _ = round_trip(ds)
    image = read_dicom(encoded)
    lut = build_lut(image, voi="none")
    modality = -2.0 * stored + 10
    expected = (modality - modality.min()) / (modality.max() - modality.min())
    np.testing.assert_allclose(lut.apply(stored), expected, atol=TOLERANCE)
    assert "VOI 'none' requested: min-max of the modality output over the stored values present " \
           "[-3990, -190]" in lut.description
    assert lut.table[0] == 1.0 and lut.table[-1] == 0.0  # values outside the present range clip


def test_voi_none_with_a_non_monotonic_modality_lut_looks_at_every_present_value():
    stored = np.array([[0, 1, 2, 3]])
    ds = make_dataset(stored, bits_stored=8)
    ds.ModalityLUTSequence = [lut_item(0, 16, [10, 50, 5, 20] + [1000] * 252)]
    encoded, reread = round_trip(ds)
    lut = build_lut(read_dicom(encoded), voi="none")
    np.testing.assert_allclose(lut.apply(stored), [[5 / 45, 1.0, 0.0, 15 / 45]], atol=TOLERANCE)
    np.testing.assert_allclose(lut.apply(stored), pydicom_display(reread, reread.pixel_array), atol=TOLERANCE)


def test_constant_image_maps_to_zero_and_says_so():
    ds = make_dataset(np.full((3, 3), 700), bits_stored=12)
    lut = build_lut(read_dicom(round_trip(ds)[0]))
    assert lut.apply(np.array([0, 700, 701])).tolist() == [0.0, 0.0, 1.0]
    assert "every stored value present has modality value 700" in lut.description


def test_caller_window_overrides_the_file():
    encoded, ds = _build(12, False, {"WindowCenter": "2048", "WindowWidth": "4096", "RescaleSlope": "2",
                                     "RescaleIntercept": "-100"})
    window = Window(center=3000, width=1200, function="LINEAR_EXACT", explanation="training")
    lut = build_lut(read_dicom(encoded), voi=window, voi_index=7)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = "3000", "1200", "LINEAR_EXACT"
    np.testing.assert_allclose(lut.apply(ds.pixel_array), pydicom_display(ds, ds.pixel_array), atol=TOLERANCE)
    assert "VOI window C=3000 W=1200 LINEAR_EXACT (given by the caller, 'training')" in lut.description


def test_raster_window_and_none_use_the_display_values():
    import cv2

    pixels = np.array([[10, 20], [30, 250]], dtype=np.uint8)
    image = read_image(cv2.imencode(".png", pixels)[1].tobytes())
    np.testing.assert_allclose(build_lut(image, voi="none").apply(pixels), (pixels - 10) / 240, atol=TOLERANCE)
    windowed = build_lut(image, voi=Window(center=20.5, width=21)).apply(pixels)
    np.testing.assert_allclose(windowed, [[0.0, 0.5], [1.0, 1.0]], atol=TOLERANCE)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("function, width, allowed", [
    ("LINEAR", 0.5, False), ("LINEAR", 1, True), ("LINEAR_EXACT", 0, False),
    ("LINEAR_EXACT", 0.5, True), ("SIGMOID", -1, False), ("SIGMOID", 0.25, True),
])
def test_window_width_limits_per_function(function, width, allowed):
    encoded, ds = _build(12, False, {"WindowCenter": "100", "WindowWidth": f"{width:g}",
                                     "VOILUTFunction": function})
    if allowed:
        assert_matches_pydicom(encoded, ds)
        return
    image = read_dicom(encoded)  # reading succeeds: another window may still be chosen
    assert any("window 0" in note and "unusable" in note for note in image.notes)
    with pytest.raises(InvalidWindowError, match=f"Window Width {width:g} with VOI LUT Function {function}"):
        build_lut(image)
    with pytest.raises(ValueError):  # what pydicom itself raises for the same window
        pydicom_display(ds, ds.pixel_array)


def test_voi_index_past_the_windows():
    encoded, _ = _build(12, False, {"WindowCenter": ["1", "2"], "WindowWidth": ["10", "20"]})
    with pytest.raises(InvalidWindowError, match="voi_index 2 asked for, but the image carries 2 window"):
        build_lut(read_dicom(encoded), voi_index=2)


def test_voi_index_past_the_voi_luts_explains_their_precedence():
    encoded, ds = _build(8, False, {"WindowCenter": ["1", "2"], "WindowWidth": ["10", "20"]})
    ds.VOILUTSequence = [lut_item(0, 8, np.arange(256))]
    encoded, _ = round_trip(ds)
    with pytest.raises(InvalidWindowError, match="VOI LUTs take precedence over the file's 2 window"):
        build_lut(read_dicom(encoded), voi_index=1)


def test_voi_argument_must_be_known():
    image = read_dicom(get_testdata_file("MR_small.dcm"))
    with pytest.raises(ValueError, match="voi must be 'file', 'none', a radedge.io.Window or a radedge.io.Percentile"):
        build_lut(image, voi="auto")


# --------------------------------------------------------------------------- the table


def test_table_is_read_only_float32_covering_the_stored_range():
    image = read_dicom(get_testdata_file("MR_small.dcm"))
    lut = build_lut(image)
    with pytest.raises(ValueError, match=r"must lie in \[-32768, 32767\]"):
        lut.apply(np.array([40000]))
    assert lut.table.dtype == np.float32 and lut.table.shape == (65536,)
    assert (lut.first_stored_value, lut.last_stored_value) == (-32768, 32767)
    assert not lut.table.flags.writeable
    assert 0.0 <= lut.table.min() and lut.table.max() <= 1.0
