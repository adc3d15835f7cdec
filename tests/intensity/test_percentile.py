"""Percentile windows and pixel padding in build_lut, against numpy on the modality values.

The convention under test (``radedge.io.Percentile``): nearest rank over the pixels that
are not padding, i.e. ``numpy.percentile(modality_values, p, method="inverted_cdf")``,
then ``[low value, high value]`` mapped linearly onto [0, 1]. The reference below works
on the pixels themselves, not on a histogram.
"""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radedge.errors import InvalidWindowError
from radedge.intensity import Percentile, build_lut, percentile_window, stored_value_histogram
from radedge.io import Image, Intensity, PixelPadding, Rescale, Source, Window, read_dicom, read_image

from tests.helpers import cpu_and_cuda
from tests.io.dicom_factory import lut_item, make_dataset, round_trip
from tests.reference_chain import pydicom_display


def reference_table(image: Image, percentile: Percentile, region=None) -> np.ndarray:
    """float64 display value of every stored value of the image's range (before padding -> 0)."""
    intensity = image.intensity
    first, last = intensity.stored_value_range
    stored = np.arange(first, last + 1)
    if intensity.modality_lut is not None:
        lut = intensity.modality_lut
        to_modality = lambda v: lut.data[np.clip(v - lut.first_mapped, 0, lut.data.size - 1)].astype(np.float64)  # noqa: E731
    elif intensity.rescale is not None:
        to_modality = lambda v: v * intensity.rescale.slope + intensity.rescale.intercept  # noqa: E731
    else:
        to_modality = lambda v: v.astype(np.float64)  # noqa: E731
    pixels = image.pixels.astype(np.int64)
    if region is not None:
        x, y, width, height = region
        pixels = pixels[y : y + height, x : x + width]
    counted = pixels[~intensity.pixel_padding.mask(pixels)] if intensity.pixel_padding else pixels.ravel()
    low, high = np.percentile(to_modality(counted), [percentile.low, percentile.high], method="inverted_cdf")
    modality = to_modality(stored)
    table = np.clip((modality - low) / (high - low), 0, 1) if high > low else (modality > low).astype(np.float64)
    return 1.0 - table if intensity.photometric_interpretation == "MONOCHROME1" else table


def make_image(pixels: np.ndarray, *, bits: int, signed: bool, rescale: Rescale | None = None,
               photometric: str = "MONOCHROME2", padding: PixelPadding | None = None) -> Image:
    intensity = Intensity(bits_allocated=16, bits_stored=bits, signed=signed, photometric_interpretation=photometric,
                          rescale=rescale, pixel_padding=padding)
    return Image(pixels=pixels, intensity=intensity, source=Source(path=None, format="dicom"))


def radiograph(rows: int = 400, columns: int = 300, seed: int = 0) -> np.ndarray:
    """uint16 12-bit stored values: a smooth body on a background, with collimator padding of 0 around."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    body = 1500 + 1200 * np.exp(-(((x - columns / 2) / (columns / 4)) ** 2)) + rng.normal(0, 60, (rows, columns))
    pixels = np.clip(body, 1, 4095).astype(np.uint16)
    pixels[:, :30] = 0
    pixels[-50:, :] = 0
    return pixels


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
@pytest.mark.parametrize("percentile", [Percentile(), Percentile(0, 100), Percentile(2, 98), Percentile(49.9, 50.1)])
def test_percentile_window_matches_numpy_on_a_padded_dicom(device, photometric, percentile):
    ds = make_dataset(radiograph(), bits_stored=12, photometric=photometric, RescaleSlope="1.5",
                      RescaleIntercept="-100", PixelPaddingValue=0, WindowCenter="100", WindowWidth="50")
    image = read_dicom(round_trip(ds)[0])
    lut = build_lut(image, voi=percentile, device=device)
    expected = reference_table(image, percentile)
    expected[0] = 0.0  # padding: no signal, black in both photometric interpretations
    np.testing.assert_allclose(lut.table, expected, atol=1e-6, rtol=0)
    assert lut.table[0] == 0.0
    counted = np.count_nonzero(image.pixels)
    assert counted == 400 * 300 - 30 * 350 - 50 * 300
    assert f"percentile window {percentile.low:g}%-{percentile.high:g}% (nearest rank) of {counted} pixels " \
           "outside the pixel padding: modality [" in lut.description
    assert "pixel padding (stored value 0) -> 0, no signal" in lut.description


def test_description_names_the_window():
    pixels = np.arange(1, 1001, dtype=np.uint16).reshape(20, 50)
    image = make_image(pixels, bits=12, signed=False, rescale=Rescale(2.0, -10.0))
    lut = build_lut(image, voi=Percentile(10, 90))
    # Nearest rank of 1000 values: the 100th and 900th, stored 100 and 900.
    assert lut.description == (
        "Rescale 2*v-10 -> percentile window 10%-90% (nearest rank) of 1000 pixels: modality [190, 1790], "
        "i.e. C=990 W=1600 LINEAR_EXACT -> [0,1]"
    )
    assert lut.table[100] == 0.0 and lut.table[900] == 1.0 and lut.table[500] == pytest.approx(0.5)


@st.composite
def percentile_cases(draw):
    bits = draw(st.integers(8, 16))
    signed = draw(st.booleans())
    first, last = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    rows, columns = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # A few distinct values (ties) or many, anywhere in the range.
    centre = draw(st.integers(first, last))
    spread = draw(st.sampled_from([0, 3, 50, 2000]))
    pixels = np.clip(rng.integers(centre - spread, centre + spread + 1, (rows, columns)), first, last)
    dtype = np.int16 if signed else (np.uint8 if bits == 8 and draw(st.booleans()) else np.uint16)
    rescale = None
    if draw(st.booleans()):
        rescale = Rescale(draw(st.sampled_from([-2.0, -0.5, 0.25, 1.0, 3.0])), float(draw(st.integers(-3000, 3000))))
    padding = None
    if draw(st.booleans()):
        low = draw(st.integers(first, last))
        padding = PixelPadding(low, draw(st.none() | st.integers(low, min(last, low + 100))))
        pixels[: rows // 2] = low  # a padded band
    region = None
    if draw(st.booleans()):
        x, y = draw(st.integers(0, columns - 1)), draw(st.integers(0, rows - 1))
        region = (x, y, draw(st.integers(1, columns - x)), draw(st.integers(1, rows - y)))
    low = draw(st.floats(0, 99.9))
    percentile = Percentile(low, draw(st.floats(low + 0.01, 100)))
    photometric = draw(st.sampled_from(["MONOCHROME1", "MONOCHROME2"]))
    image = make_image(pixels.astype(dtype), bits=bits, signed=signed, rescale=rescale, photometric=photometric,
                       padding=padding)
    return image, percentile, region


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(percentile_cases(), st.integers(1, 3))
def test_percentile_window_matches_numpy_property(case, threads):
    image, percentile, region = case
    padding = image.intensity.pixel_padding
    pixels = image.pixels
    if region is not None:
        pixels = pixels[region[1] : region[1] + region[3], region[0] : region[0] + region[2]]
    if padding is not None and padding.mask(pixels).all():
        with pytest.raises(InvalidWindowError, match="no pixel.* lies outside the pixel padding"):
            build_lut(image, voi=percentile, region=region, threads=threads)
        return
    lut = build_lut(image, voi=percentile, region=region, threads=threads)
    expected = reference_table(image, percentile, region)
    if padding is not None:
        first, last = image.intensity.stored_value_range
        expected[max(padding.low, first) - first : min(padding.high, last) - first + 1] = 0.0
    np.testing.assert_allclose(lut.table, expected, atol=2e-6, rtol=0)


def test_percentile_over_a_non_monotonic_modality_lut():
    stored = np.array([[0, 1, 2, 3, 3, 3, 1, 0]])
    ds = make_dataset(stored, bits_stored=8)
    ds.ModalityLUTSequence = [lut_item(0, 16, [10, 50, 5, 20] + [1000] * 252)]
    image = read_dicom(round_trip(ds)[0])
    lut = build_lut(image, voi=Percentile(0, 100))
    # Modality values present: 10, 50, 5, 20: the window is [5, 50], whatever the stored order.
    np.testing.assert_allclose(lut.apply(np.array([0, 1, 2, 3])), [5 / 45, 1.0, 0.0, 15 / 45], atol=1e-6)
    np.testing.assert_allclose(lut.table, reference_table(image, Percentile(0, 100)), atol=1e-6)


def test_region_restricts_the_count():
    pixels = np.zeros((10, 10), np.uint16)
    pixels[:, 5:] = 1000
    pixels[:, :5] = np.arange(50, dtype=np.uint16).reshape(10, 5)
    image = make_image(pixels, bits=12, signed=False)
    whole = build_lut(image, voi=Percentile(0, 100))
    left = build_lut(image, voi=Percentile(0, 100), region=(0, 0, 5, 10))
    assert "of 100 pixels:" in whole.description and "modality [0, 1000]" in whole.description
    assert "of 50 pixels in region x=0 y=0 5x10: modality [0, 49]" in left.description
    assert left.table[49] == 1.0 and whole.table[49] == pytest.approx(49 / 1000)
    with pytest.raises(ValueError, match="region .* reaches outside"):
        build_lut(image, voi=Percentile(), region=(5, 0, 6, 10))


def test_all_padding_has_no_percentile():
    image = make_image(np.zeros((4, 4), np.uint16), bits=12, signed=False, padding=PixelPadding(0))
    with pytest.raises(InvalidWindowError, match="no pixel lies outside the pixel padding") as raised:
        build_lut(image, voi=Percentile())
    assert isinstance(raised.value, ValueError)
    # The min-max fallback has nothing to scale either: everything maps to 0.
    lut = build_lut(image, voi="none")
    assert (lut.table == 0).all()
    assert "every pixel is pixel padding" in lut.description


@pytest.mark.parametrize("low, high", [(-1, 50), (50, 50), (60, 40), (0, 100.5), (float("nan"), 50), ("1", 2),
                                       (True, 50)])
def test_percentile_bounds_are_checked(low, high):
    with pytest.raises(ValueError, match="Percentile"):
        Percentile(low, high)


def test_percentile_window_is_numpy_inverted_cdf_with_weights():
    rng = np.random.default_rng(5)
    for _ in range(50):
        values = rng.normal(0, 100, rng.integers(1, 40))
        counts = rng.integers(0, 5, values.size)
        counts[rng.integers(0, values.size)] += 1
        for p in (0.0, 0.5, 10.0, 33.3, 50.0, 99.5, 100.0):
            expected = np.percentile(np.repeat(values, counts), p, method="inverted_cdf")
            assert percentile_window(counts, values, p, p)[0] == expected
    with pytest.raises(ValueError, match="every count is 0"):
        percentile_window(np.zeros(3, np.int64), np.arange(3.0), 1, 2)


# --------------------------------------------------------------------------- padding in every table


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_padding_is_black_and_the_rest_is_pydicom(photometric):
    stored = radiograph(seed=3)
    ds = make_dataset(stored, bits_stored=12, photometric=photometric, WindowCenter="2000", WindowWidth="2500",
                      PixelPaddingValue=0, PixelPaddingRangeLimit=3)
    encoded, ds = round_trip(ds)
    image = read_dicom(encoded)
    lut = build_lut(image)
    assert (lut.table[:4] == 0).all()
    display = lut.apply(image.pixels)
    padded = stored <= 3
    assert padded.sum() > 10000 and (display[padded] == 0).all()
    # Everything else is the file's window, as pydicom computes it.
    np.testing.assert_allclose(display[~padded], pydicom_display(ds, ds.pixel_array)[~padded], atol=1e-5, rtol=0)
    assert lut.description.endswith("pixel padding (stored values 0 to 3) -> 0, no signal -> [0,1]")


def test_caller_window_maps_padding_to_black_too():
    image = make_image(radiograph(seed=4), bits=12, signed=False, photometric="MONOCHROME1",
                       padding=PixelPadding(4095, 4000))
    lut = build_lut(image, voi=Window(2048, 4096))
    assert (lut.table[4000:] == 0).all() and lut.table[3999] > 0


def test_min_max_fallback_does_not_count_padding():
    pixels = radiograph(seed=5)
    image = make_image(pixels, bits=12, signed=False, rescale=Rescale(1.0, 0.0), padding=PixelPadding(0))
    lut = build_lut(image, voi="none")
    body = pixels[pixels > 0]
    low, high = int(body.min()), int(body.max())
    assert lut.table[low] == 0.0 and lut.table[high] == 1.0
    assert "(pixel padding not counted): min-max of the modality output over the stored values present " \
           f"[{low}, {high}]" in lut.description


def test_histogram_of_an_image_skips_its_padding():
    pixels = radiograph(seed=6)
    image = make_image(pixels, bits=12, signed=False, padding=PixelPadding(0))
    counts = stored_value_histogram(image)
    assert counts.shape == (4096,) and counts[0] == 0
    np.testing.assert_array_equal(counts[1:], np.bincount(pixels.ravel(), minlength=4096)[1:])


def test_png_percentile_window():
    pixels = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    image = read_image(cv2.imencode(".png", pixels)[1].tobytes())
    lut = build_lut(image, voi=Percentile(25, 75))
    # Nearest rank of 1024 values, 4 of each: ranks 256 and 768 are values 63 and 191.
    assert "modality [63, 191]" in lut.description
    assert lut.table[63] == 0.0 and lut.table[191] == 1.0


@pytest.mark.needs_cuda
def test_cuda_histogram_gives_the_cpu_table():
    for bits, signed in ((12, False), (16, False), (16, True), (14, False)):
        first = -(1 << (bits - 1)) if signed else 0
        rng = np.random.default_rng(bits)
        pixels = rng.integers(first, first + (1 << bits), (1000, 900)).astype(np.int16 if signed else np.uint16)
        image = make_image(pixels, bits=bits, signed=signed, padding=PixelPadding(first, first + 10))
        cpu = build_lut(image, voi=Percentile(1, 99), region=(10, 20, 800, 900))
        gpu = build_lut(image, voi=Percentile(1, 99), region=(10, 20, 800, 900), device="cuda")
        np.testing.assert_array_equal(gpu.table, cpu.table)
        assert gpu.description == cpu.description


def test_pydicom_is_untouched_by_padding_reading():
    """The data set pydicom reads back is what was written: radedge's padding rule is its own."""
    ds = make_dataset(radiograph(seed=7), bits_stored=12, PixelPaddingValue=0)
    _, reread = round_trip(ds)
    assert isinstance(reread, pydicom.Dataset) and int(reread.PixelPaddingValue) == 0
