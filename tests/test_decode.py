"""Decoding head outputs back to the source image's geometry."""

from __future__ import annotations

import numpy as np
import pytest

from radedge.decode import softmax, upsample_to_source
from radedge.preprocess import PreprocessSpec, preprocess, resize_geometry


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
def test_upsample_matches_the_bilinear_reference(rows, columns, height, width, plane_scale, resize):
    spec = PreprocessSpec(height, width, resize=resize)
    geometry = resize_geometry(rows, columns, spec)
    rng = np.random.default_rng(rows * columns)
    plane = rng.normal(size=(int(height * plane_scale), int(width * plane_scale))).astype(np.float32)
    got = upsample_to_source(plane, geometry, height, width)
    expected = _reference_upsample(plane.astype(np.float64), geometry, height, width)
    assert got.shape == (rows, columns)
    # OpenCV's warpAffine quantises sub-pixel positions to 1/32 pixel.
    np.testing.assert_allclose(got, expected, atol=0.05 * np.abs(plane).max())


def test_round_trip_of_a_mask_through_preprocess_and_back():
    rows, columns = 700, 450
    y, x = np.mgrid[0:rows, 0:columns]
    mask = ((x - 300) ** 2 / 60**2 + (y - 200) ** 2 / 90**2 <= 1).astype(np.uint8)
    spec = PreprocessSpec(128, 128, resize="letterbox")
    forward, geometry = preprocess(mask, np.array([0.0, 1.0], np.float32), 0, spec)
    # Fractions of 0.5 become logits of 0: the round trip recovers the ellipse.
    logits = (forward[0, 0] - 0.5) * 20
    back = upsample_to_source(logits, geometry, 128, 128) >= 0
    iou = np.logical_and(back, mask).sum() / np.logical_or(back, mask).sum()
    assert iou > 0.95


def test_softmax_is_stable_for_large_logits():
    probabilities = softmax(np.array([1000.0, 0.0, -1000.0]))
    np.testing.assert_allclose(probabilities, [1.0, 0.0, 0.0])
