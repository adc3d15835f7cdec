"""The one geometry every op takes: its conversion from Python (radedge.ops._geometry and the
binding's parser), its one check, and every decode op taking the preprocess op's geometry as it is."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from radedge._native import kernels
from radedge.ops import ResizeGeometry, decode_boxes, decode_dense, decode_mask, find_argmax, find_peaks, overlay_cam
from radedge.ops._geometry import geometry_table, input_geometries, input_geometry
from radedge.ops.preprocess import PreprocessSpec, preprocess, resize_geometry

from ..helpers import geometry_of, least_geometry

SPEC = PreprocessSpec(32, 48, "letterbox")
# A 60 x 40 source letterboxed into the 32 x 48 input: content 32 x 21 at offset_x 13.
RESIZED = resize_geometry(60, 40, SPEC)


def test_the_preprocess_op_records_the_model_input_it_placed_the_image_in():
    pixels = np.zeros((60, 40), np.uint16)
    _, geometry = preprocess(pixels, np.zeros(1, np.float32), 0, SPEC)
    assert geometry == RESIZED == ResizeGeometry(**geometry_of(60, 40, 32, 48, "letterbox"))
    assert geometry.input_size == (32, 48)


def test_a_recorded_input_size_needs_no_input_size_and_must_agree_with_one():
    assert input_geometry(RESIZED) == input_geometry(RESIZED, (32, 48)) == input_geometry(RESIZED, SPEC)
    assert input_geometry(RESIZED) == geometry_of(60, 40, 32, 48, "letterbox")
    with pytest.raises(ValueError, match=r"input_size \(32, 64\) disagrees with the model input the geometry records "
                                         r"\(32, 48\); pass the geometry the preprocess op returned"):
        input_geometry(RESIZED, (32, 64))


def test_geometries_without_an_input_size_take_it_from_input_size():
    g = geometry_of(60, 40, 32, 48, "letterbox")
    without = {k: v for k, v in g.items() if k not in ("input_height", "input_width")}
    assert input_geometry(without, (32, 48)) == g
    assert input_geometry(least_geometry(g), SPEC) == g, "crop fields and scales are what the op would make"
    with pytest.raises(ValueError, match=r"does not record the model input size: pass input_size=\(height, width\)"):
        input_geometry(least_geometry(g))
    older = SimpleNamespace(**{k: v for k, v in g.items() if not k.startswith("crop_")})
    assert input_geometry(older, SPEC) == g, "no crop: the whole image was resized"
    with pytest.raises(ValueError, match="SimpleNamespace lacks source_rows"):
        input_geometry(SimpleNamespace(content_height=1), SPEC)


def test_one_geometry_for_a_batch_or_one_per_image():
    other = resize_geometry(40, 60, SPEC)
    assert input_geometries(RESIZED, 3) == [input_geometry(RESIZED)] * 3
    assert input_geometries(RESIZED, 3, one_for_all=True) == [input_geometry(RESIZED)]
    assert input_geometries([RESIZED, other], 2) == [input_geometry(RESIZED), input_geometry(other)]
    with pytest.raises(ValueError, match=r"one geometry for the whole batch or a sequence of one per image \(3\); "
                                         r"got a sequence of 2"):
        input_geometries([RESIZED, other], 3)


# --- the check every op makes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(source_columns=0), r"source_columns must be 1 to 16777216 \(the whole source image, pixels\); got 0"),
        (dict(source_rows=2**24 + 1), "source_rows must be 1 to 16777216"),
        (dict(crop_x=30, crop_width=20), r"the crop must lie inside the source image: crop_x=30, crop_width=20 for "
                                         r"source_columns=40 .*; without a crop pass crop_x=0, "
                                         r"crop_width=source_columns"),
        (dict(crop_y=-1), "the crop must lie inside the source image: crop_y=-1"),
        (dict(crop_height=0), "crop_height=0 for source_rows=60"),
        (dict(input_width=0), r"input_width must be 1 to 16777216 \(the model input, pixels\); got 0"),
        (dict(offset_x=28), r"the content rectangle \(offset_x=28, offset_y=0, content_width=21, content_height=32\) "
                            r"must be non-empty and inside the 48 x 32 model input"),
        (dict(content_height=0), "content rectangle .* non-empty"),
        (dict(offset_y=-1), "content rectangle"),
        (dict(scale_x=float("inf")), r"scale_x and scale_y must be finite and > 0 \(input pixels per source pixel"),
        (dict(scale_y=-1.0), "scale_x and scale_y must be finite and > 0"),
        (dict(scale_y=float("nan")), "scale_x and scale_y must be finite and > 0"),
    ],
)
def test_check_geometry_says_what_is_wrong_and_what_to_pass(fields, message):
    with pytest.raises(ValueError, match=r"^geometry_table: the geometry of image 0: .*" + message):
        geometry_table(dict(input_geometry(RESIZED), **fields), 1)


def test_the_binding_parses_objects_and_mappings_with_exactly_the_fields():
    table = geometry_table(RESIZED, 1)
    np.testing.assert_array_equal(kernels().geometry_table([RESIZED]), table)
    np.testing.assert_array_equal(kernels().geometry_table([input_geometry(RESIZED)]), table)
    with pytest.raises(ValueError, match=r"geometries\[0\]\.input_height is missing or None; pass a ResizeGeometry"):
        kernels().geometry_table([dataclasses.replace(RESIZED, input_height=None)])
    with pytest.raises(ValueError, match=r"geometries\[0\] has an unknown key 'cropx'"):
        kernels().geometry_table([dict(input_geometry(RESIZED), cropx=0)])
    with pytest.raises(ValueError, match=r"geometries\[0\] lacks 'input_width'"):
        kernels().geometry_table([{k: v for k, v in input_geometry(RESIZED).items() if k != "input_width"}])
    with pytest.raises(ValueError, match=r"geometries\[0\]\['offset_x'\] must be an integer \(pixels\); got 13.0"):
        kernels().geometry_table([dict(input_geometry(RESIZED), offset_x=13.0)])
    with pytest.raises(ValueError, match=r"geometries\[0\]\['scale_y'\] must be a number"):
        kernels().geometry_table([dict(input_geometry(RESIZED), scale_y="1")])
    with pytest.raises(ValueError, match=r"geometries\[0\]\['source_rows'\] is out of range"):
        kernels().geometry_table([dict(input_geometry(RESIZED), source_rows=2**70)])


# --- every decode op takes the preprocess op's geometry as it is ------------------------------

# Each op on small inputs over RESIZED's 32 x 48 input, with the keywords that stay the same.
OPS = {
    "decode_mask": lambda g, **kw: decode_mask(np.zeros((1, 1, 8, 12), np.float32), g, activation="sigmoid", **kw),
    "find_peaks": lambda g, **kw: find_peaks(np.zeros((1, 1, 8, 12), np.float32), g, threshold=0.5, k=2, **kw),
    "find_argmax": lambda g, **kw: find_argmax(np.zeros((1, 1, 8, 12), np.float32), g, **kw),
    "overlay_cam": lambda g, **kw: overlay_cam(np.zeros((8, 12), np.float32), np.zeros((6, 4), np.uint8), g, **kw),
    "decode_dense": lambda g, **kw: decode_dense(
        [(np.zeros((1, 2, 4, 6), np.float32), np.ones((1, 4, 4, 6), np.float32))], [8], g, **kw),
    "decode_boxes": lambda g, **kw: decode_boxes(np.zeros((1, 3, 4), np.float32), np.zeros((1, 3, 2), np.float32), g,
                                                 **kw),
}


def _same(a, b) -> None:
    arrays = (a,) if isinstance(a, np.ndarray) else dataclasses.astuple(a) if dataclasses.is_dataclass(a) else a
    others = (b,) if isinstance(b, np.ndarray) else dataclasses.astuple(b) if dataclasses.is_dataclass(b) else b
    for x, y in zip(arrays, others):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("op", OPS.values(), ids=OPS.keys())
def test_input_size_is_optional_where_the_geometry_records_it(op):
    _same(op(RESIZED), op(RESIZED, input_size=(32, 48)))
    _same(op(RESIZED), op(least_geometry(input_geometry(RESIZED)), input_size=SPEC))
    with pytest.raises(ValueError, match=r"input_size \(64, 48\) disagrees with the model input the geometry records"):
        op(RESIZED, input_size=(64, 48))
    with pytest.raises(ValueError, match="does not record the model input size"):
        op(least_geometry(input_geometry(RESIZED)))
