"""Segmentation heads decoded back to the source image's geometry, also through a crop."""

from __future__ import annotations

import numpy as np
import pytest

from radedge.errors import BackendError
from radedge.heads import DecodeContext, decode_segmentation, softmax
from radedge.io.image import PixelSpacing
from radedge.ops.preprocess import PreprocessSpec, preprocess, resize_geometry
from radedge.spec import HeadSpec


def _reference_upsample(plane, geometry, input_height, input_width):
    """Each source pixel centre, mapped into the plane, read bilinearly with edge clamping."""
    h, w = plane.shape
    ys, xs = np.mgrid[0 : geometry.source_rows, 0 : geometry.source_columns].astype(np.float64)
    x_in = (xs + 0.5) * geometry.scale_x + geometry.offset_x  # model-input pixels (edge convention)
    y_in = (ys + 0.5) * geometry.scale_y + geometry.offset_y
    x = np.clip(x_in * w / input_width - 0.5, 0, w - 1)
    y = np.clip(y_in * h / input_height - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = plane[y0, x0] * (1 - fx) + plane[y0, x1] * fx
    bottom = plane[y1, x0] * (1 - fx) + plane[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _decode(head, logits, geometry, spacing=(0.15, 0.2)):
    """decode_segmentation of ``logits`` for ``head`` placed by ``geometry``, at that pixel spacing."""
    if spacing is None:
        context = DecodeContext(geometry, spacing_problem="the file gives no pixel spacing")
    else:
        context = DecodeContext(geometry, PixelSpacing(*spacing, source="ImagerPixelSpacing"))
    return decode_segmentation(head, {head.name: logits}, context)


def _head(activation="sigmoid", labels=("lesion",), threshold=0.5):
    return HeadSpec("mask_logits", "segmentation", tuple(labels), activation, {"threshold": threshold})


def _check_regions(result, pixel_area_mm2):
    """Every label's statistics, recomputed from the mask with numpy; the connected regions
    (checked against a flood fill in test_regions.py) add up to them."""
    for index, region in enumerate(result.labels_summary):
        ys, xs = np.nonzero(result.mask == index + 1)
        assert region.label == result.labels[index]
        assert region.pixel_count == len(xs)
        if pixel_area_mm2 is None:
            assert region.area_mm2 is None
        else:
            assert region.area_mm2 == pytest.approx(len(xs) * pixel_area_mm2, rel=1e-12)
        if len(xs) == 0:
            assert region.bbox is None and region.centroid is None
            continue
        assert region.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        np.testing.assert_allclose(region.centroid, (xs.mean() + 0.5, ys.mean() + 0.5), rtol=1e-12)
        if result.regions_omitted == 0:
            assert sum(r.pixel_count for r in result.regions_of(region.label)) == len(xs)


@pytest.mark.parametrize(
    "rows, columns, height, width, plane_scale, resize",
    [
        (300, 500, 64, 64, 1, "letterbox"),
        (501, 299, 64, 64, 0.5, "letterbox"),
        (97, 131, 48, 80, 0.5, "letterbox"),
        (97, 131, 48, 80, 1, "stretch"),
        (40, 30, 64, 64, 1, "letterbox"),
    ],
)
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_sigmoid_mask_matches_the_bilinear_reference(rows, columns, height, width, plane_scale, resize, threshold):
    spec = PreprocessSpec(height, width, resize=resize)
    geometry = resize_geometry(rows, columns, spec)
    rng = np.random.default_rng(rows * columns)
    plane = rng.normal(size=(int(height * plane_scale), int(width * plane_scale))).astype(np.float32)
    result = _decode(_head(threshold=threshold), plane[None, None], geometry)
    assert result.mask.shape == (rows, columns) and result.mask.dtype == np.uint8

    values = _reference_upsample(plane.astype(np.float64), geometry, height, width)
    logit_threshold = np.log(threshold / (1 - threshold))
    expected = (values >= logit_threshold).astype(np.uint8)
    # Exact, except where the interpolated logit is within float32 rounding of the threshold.
    differ = result.mask != expected
    assert not (differ & (np.abs(values - logit_threshold) > 1e-5 * np.abs(plane).max())).any()
    assert 0.05 < expected.mean() < 0.95  # both labels present, many boundaries
    _check_regions(result, 0.15 * 0.2)


def test_softmax_mask_matches_the_bilinear_reference():
    rows, columns, height, width = 333, 517, 96, 96
    geometry = resize_geometry(rows, columns, PreprocessSpec(height, width, resize="letterbox"))
    logits = np.random.default_rng(2).normal(size=(1, 4, 48, 48)).astype(np.float32)
    result = _decode(_head("softmax", ("a", "b", "c")), logits, geometry, spacing=None)
    values = np.stack([_reference_upsample(plane.astype(np.float64), geometry, height, width) for plane in logits[0]])
    expected = np.argmax(values, axis=0)
    top_two = np.sort(values, axis=0)[-2:]
    differ = result.mask != expected
    assert not (differ & (top_two[1] - top_two[0] > 1e-5 * np.abs(logits).max())).any()
    assert set(np.unique(result.mask)) == {0, 1, 2, 3}
    _check_regions(result, None)
    assert result.area_source == "no mm figures: the file gives no pixel spacing"


def test_overlapping_sigmoid_labels_go_to_the_higher_logit():
    geometry = resize_geometry(20, 20, PreprocessSpec(4, 4, resize="stretch"))
    logits = np.zeros((1, 2, 4, 4), np.float32)
    logits[0, 0] = 3.0
    logits[0, 1, :, :2] = 5.0  # label 2 beats label 1 on the left half only
    logits[0, 1, :, 2:] = 1.0
    result = _decode(_head(labels=("a", "b")), logits, geometry)
    assert result.region("b").bbox[0] == 0 and result.region("a").bbox[2] == 20
    assert (result.mask[:, :5] == 2).all() and (result.mask[:, -5:] == 1).all()


def test_round_trip_of_a_mask_through_preprocess_and_back():
    rows, columns = 700, 450
    y, x = np.mgrid[0:rows, 0:columns]
    mask = ((x - 300) ** 2 / 60**2 + (y - 200) ** 2 / 90**2 <= 1).astype(np.uint8)
    spec = PreprocessSpec(128, 128, resize="letterbox")
    forward, geometry = preprocess(mask, np.array([0.0, 1.0], np.float32), 0, spec)
    # Fractions of 0.5 become logits of 0: the round trip recovers the ellipse.
    logits = (forward[:, :1] - 0.5) * 20
    back = _decode(_head(), logits, geometry).mask == 1
    iou = np.logical_and(back, mask).sum() / np.logical_or(back, mask).sum()
    assert iou > 0.95


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_logits_are_a_backend_error(bad):
    geometry = resize_geometry(20, 20, PreprocessSpec(8, 8))
    logits = np.zeros((1, 1, 8, 8), np.float32)
    logits[0, 0, 3, 3] = bad
    with pytest.raises(BackendError, match="'mask_logits'.*NaN or infinite"):
        _decode(_head(), logits, geometry)


def test_channel_count_must_match_the_labels():
    geometry = resize_geometry(20, 20, PreprocessSpec(8, 8))
    with pytest.raises(BackendError, match="2 channels for labels"):
        _decode(_head(), np.zeros((1, 2, 8, 8), np.float32), geometry)
    with pytest.raises(BackendError, match="needs background \\+ 1 channels"):
        _decode(_head("softmax"), np.zeros((1, 1, 8, 8), np.float32), geometry)


def test_softmax_is_stable_for_large_logits():
    probabilities = softmax(np.array([1000.0, 0.0, -1000.0]))
    np.testing.assert_allclose(probabilities, [1.0, 0.0, 0.0])


CROP_ROWS, CROP_COLUMNS = 200, 300
CROP = (100, 50, 150, 100)
CROP_SPEC = PreprocessSpec(64, 96, "stretch")


def test_mask_edges_map_through_the_crop():
    geometry = resize_geometry(CROP_ROWS, CROP_COLUMNS, CROP_SPEC, crop=CROP)
    assert (geometry.scale_x, geometry.scale_y) == (96 / 150, 64 / 100)
    # Logits that cross zero at model-input x = 48 and y = 32: bilinear reads of a linear
    # ramp are exact, so the mask's edges sit where the crop puts those lines in the source.
    y_in, x_in = np.mgrid[0:64, 0:96].astype(np.float32) + 0.5
    logits = np.minimum(x_in - 48.0, y_in - 32.0)[None, None]
    mask = _decode(_head(), logits, geometry, spacing=None).mask
    x_edge, y_edge = geometry.to_source(48.0, 32.0)
    columns = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    # The first labelled pixel is the first whose centre lies at or past the edge.
    assert columns[0] == int(np.ceil(x_edge - 0.5)) and columns[-1] == CROP[0] + CROP[2] - 1
    assert rows[0] == int(np.ceil(y_edge - 0.5)) and rows[-1] == CROP[1] + CROP[3] - 1


def test_mask_is_background_outside_the_crop():
    geometry = resize_geometry(CROP_ROWS, CROP_COLUMNS, CROP_SPEC, crop=CROP)
    logits = np.full((1, 1, 64, 96), 5.0, np.float32)  # lesion everywhere the model looked
    mask = _decode(_head(), logits, geometry, spacing=None).mask
    x, y, width, height = CROP
    expected = np.zeros((CROP_ROWS, CROP_COLUMNS), np.uint8)
    expected[y : y + height, x : x + width] = 1
    np.testing.assert_array_equal(mask, expected)
