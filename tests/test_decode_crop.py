"""Head outputs of a cropped input go back to the whole source image through the crop."""

from __future__ import annotations

import numpy as np

from radedge.bundle import OutputSpec
from radedge.decode import decode_segmentation
from radedge.io import Image, Intensity, Source
from radedge.preprocess import PreprocessSpec, resize_geometry

ROWS, COLUMNS = 200, 300
CROP = (100, 50, 150, 100)
SPEC = PreprocessSpec(64, 96, "stretch")


def test_mask_edges_map_through_the_crop():
    geometry = resize_geometry(ROWS, COLUMNS, SPEC, crop=CROP)
    assert (geometry.scale_x, geometry.scale_y) == (96 / 150, 64 / 100)
    # Logits that cross zero at model-input x = 48 and y = 32: bilinear reads of a linear
    # ramp are exact, so the mask's edges sit where the crop puts those lines in the source.
    y_in, x_in = np.mgrid[0:64, 0:96].astype(np.float32) + 0.5
    head = OutputSpec("lesion", "segmentation", ("lesion",), "sigmoid", {"threshold": 0.5})
    image = Image(
        pixels=np.zeros((ROWS, COLUMNS), np.uint16),
        intensity=Intensity(bits_allocated=16, bits_stored=12, signed=False, photometric_interpretation="MONOCHROME2"),
        source=Source(path=None, format="dicom"),
    )
    logits = np.minimum(x_in - 48.0, y_in - 32.0)[None, None]
    mask = decode_segmentation(head, logits, geometry, (64, 96), image).mask
    x_edge, y_edge = geometry.to_source(48.0, 32.0)
    columns = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    # The first labelled pixel is the first whose centre lies at or past the edge.
    assert columns[0] == int(np.ceil(x_edge - 0.5)) and columns[-1] == CROP[0] + CROP[2] - 1
    assert rows[0] == int(np.ceil(y_edge - 0.5)) and rows[-1] == CROP[1] + CROP[3] - 1


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
