"""Head outputs of a cropped input go back to the whole source image through the crop."""

from __future__ import annotations

import numpy as np

from radedge.bundle import OutputSpec
from radedge.decode import decode_segmentation, upsample_to_source
from radedge.io import Image, Intensity, Source
from radedge.preprocess import PreprocessSpec, resize_geometry

ROWS, COLUMNS = 200, 300
CROP = (100, 50, 150, 100)
SPEC = PreprocessSpec(64, 96, "stretch")


def test_upsample_maps_each_source_pixel_through_the_crop():
    geometry = resize_geometry(ROWS, COLUMNS, SPEC, crop=CROP)
    assert (geometry.scale_x, geometry.scale_y) == (96 / 150, 64 / 100)
    # A plane holding its own x and y centre coordinates: bilinear reads give them back exactly.
    y_out, x_out = np.mgrid[0:64, 0:96].astype(np.float32) + 0.5
    xs, ys = np.meshgrid(np.arange(COLUMNS) + 0.5, np.arange(ROWS) + 0.5)
    expected_x, expected_y = geometry.to_output(xs, ys)
    got_x = upsample_to_source(x_out, geometry, 64, 96)
    got_y = upsample_to_source(y_out, geometry, 64, 96)
    inside = (expected_x >= 0.5) & (expected_x <= 95.5) & (expected_y >= 0.5) & (expected_y <= 63.5)
    assert inside.sum() > 0.9 * 150 * 100
    np.testing.assert_allclose(got_x[inside], expected_x[inside], atol=2e-3)
    np.testing.assert_allclose(got_y[inside], expected_y[inside], atol=2e-3)


def test_mask_is_background_outside_the_crop():
    geometry = resize_geometry(ROWS, COLUMNS, SPEC, crop=CROP)
    head = OutputSpec("lesion", "segmentation", ("lesion",), "sigmoid", {"threshold": 0.5})
    image = Image(
        pixels=np.zeros((ROWS, COLUMNS), np.uint16),
        intensity=Intensity(bits_allocated=16, bits_stored=12, signed=False, photometric_interpretation="MONOCHROME2"),
        source=Source(path=None, format="dicom"),
    )
    logits = np.full((1, 1, 64, 96), 5.0, np.float32)  # lesion everywhere the model looked
    mask = decode_segmentation(head, logits, geometry, (64, 96), image).mask
    x, y, width, height = CROP
    expected = np.zeros((ROWS, COLUMNS), np.uint8)
    expected[y : y + height, x : x + width] = 1
    np.testing.assert_array_equal(mask, expected)
