"""The detection ops (decode_dense, decode_boxes, nms) against the numpy reference, against
OpenCV's NMS, and against themselves across thread counts and devices.

Comparisons with the reference are exact. The reference in float32 arithmetic restates
the documented formulas, and the op must match it bit for bit; the reference in float64
arithmetic is the mathematical definition, and may differ from the float32 one only where
a float32 rounding moves an IoU across the threshold, which the float32 run records as a
disagreement: every difference must have that cause.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radedge._native import kernels
from radedge.ops._geometry import input_geometry
from radedge.ops.detection import Detections, decode_boxes, decode_dense, nms
from radedge.errors import NativeOpError
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

from ..helpers import geometry_of
from . import reference_detection as reference


def _assert_same(got: Detections, expected: reference.Result) -> None:
    np.testing.assert_array_equal(got.valid, expected.valid)
    np.testing.assert_array_equal(got.classes, expected.classes)
    np.testing.assert_array_equal(got.scores, expected.scores)
    np.testing.assert_array_equal(got.boxes, expected.boxes)


def _assert_float64_differs_only_at_the_threshold(expected32: reference.Result, run64) -> None:
    """The float64 reference may differ only where the float32 run met an IoU whose float32
    and float64 values fall on either side of the threshold, and then only by a rounding."""
    if not expected32.disagreements:
        return  # Every NMS decision was the same in both precisions: the results are equal.
    expected64 = run64()
    same = np.array_equal(expected64.valid, expected32.valid) and np.array_equal(
        expected64.classes, expected32.classes
    ) and np.array_equal(expected64.scores, expected32.scores)
    if not same:
        for iou64, threshold in expected32.disagreements:
            assert abs(iou64 - threshold) <= 1e-5 * max(1.0, threshold), (iou64, threshold)


def _random_geometry(rng: np.random.Generator) -> dict:
    """A geometry of a source crop placed anywhere in its model input, with a scale of its own per axis."""
    crop_x, crop_y = int(rng.integers(0, 50)), int(rng.integers(0, 50))
    crop_width, crop_height = int(rng.integers(1, 400)), int(rng.integers(1, 400))
    content_width = max(1, round(crop_width * rng.uniform(0.1, 3.0)))
    content_height = max(1, round(crop_height * rng.uniform(0.1, 3.0)))
    offset_x, offset_y = int(rng.integers(0, 20)), int(rng.integers(0, 20))
    placed = geometry_of(
        crop_y + crop_height + int(rng.integers(0, 30)), crop_x + crop_width + int(rng.integers(0, 30)),
        offset_y + content_height + int(rng.integers(0, 20)), offset_x + content_width + int(rng.integers(0, 20)),
        crop=(crop_x, crop_y, crop_width, crop_height),
    )
    return dict(placed, content_height=content_height, content_width=content_width, offset_y=offset_y,
                offset_x=offset_x, scale_y=content_height / crop_height, scale_x=content_width / crop_width)


def _dense_head(rng, batch, classes, sizes, dtype, centerness, scores_are, units, quantised):
    """Per-level score, distance (and centerness) arrays; quantised values give many exact ties."""
    scores, distances, ctr = [], [], []
    for height, width in sizes:
        if scores_are == "logits":
            values = rng.normal(-1.0, 2.5, (batch, classes, height, width))
            c = rng.normal(0.0, 2.0, (batch, 1, height, width))
            if quantised:
                values, c = np.round(values * 2) / 2, np.round(c * 2) / 2
        else:
            values = rng.uniform(0.0, 1.0, (batch, classes, height, width))
            c = rng.uniform(0.0, 1.0, (batch, 1, height, width))
            if quantised:
                values, c = np.round(values * 8) / 8, np.round(c * 8) / 8
        high = 3.0 if units == "stride" else 40.0
        d = rng.uniform(0.0, high, (batch, 4, height, width))
        if quantised:
            d = np.round(d * 4) / 4
        scores.append(values.astype(dtype))
        distances.append(d.astype(dtype))
        ctr.append(c.astype(dtype))
    return scores, distances, (ctr if centerness else None)


@st.composite
def dense_cases(draw):
    levels = draw(st.integers(1, 3))
    return dict(
        batch=draw(st.integers(1, 2)),
        classes=draw(st.integers(1, 4)),
        sizes=[(draw(st.integers(1, 6)), draw(st.integers(1, 6))) for _ in range(levels)],
        strides=draw(st.sampled_from([(8.0, 16.0, 32.0), (4.0, 8.0, 16.0), (1.0, 2.5, 3.0), (16.0, 8.0, 4.0)]))[
            :levels
        ],
        dtype=draw(st.sampled_from(["float32", "float16"])),
        centerness=draw(st.sampled_from([None, "sqrt", "product"])),
        scores_are=draw(st.sampled_from(["logits", "probabilities"])),
        distance_units=draw(st.sampled_from(["stride", "pixels"])),
        cell_offset=draw(st.sampled_from([0.5, 0.0, 0.25])),
        score_threshold=draw(st.one_of(st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.8]), st.floats(0.0, 0.95))),
        iou_threshold=draw(st.one_of(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]), st.floats(0.0, 1.0))),
        pre_nms_top_k=draw(st.integers(1, 50)),
        max_detections=draw(st.integers(1, 30)),
        class_agnostic=draw(st.booleans()),
        quantised=draw(st.booleans()),
        mapped=draw(st.booleans()),
        threads=draw(st.integers(1, 3)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _run_dense_case(case, device="cpu"):
    rng = np.random.default_rng(case["seed"])
    scores, distances, centerness = _dense_head(
        rng, case["batch"], case["classes"], case["sizes"], case["dtype"], case["centerness"], case["scores_are"],
        case["distance_units"], case["quantised"],
    )
    geometry = [_random_geometry(rng) for _ in range(case["batch"])] if case["mapped"] else None
    params = dict(
        score_threshold=case["score_threshold"],
        iou_threshold=case["iou_threshold"],
        pre_nms_top_k=case["pre_nms_top_k"],
        max_detections=case["max_detections"],
        class_agnostic=case["class_agnostic"],
        scores_are=case["scores_are"],
        centerness_mode=case["centerness"] or "sqrt",
        distance_units=case["distance_units"],
        cell_offset=case["cell_offset"],
    )
    levels = [(s, d) if centerness is None else (s, d, c) for s, d, c in zip(scores, distances, centerness or scores)]
    got = decode_dense(levels, case["strides"], geometry, threads=case["threads"], device=device, **params)

    def expected(precision):
        return reference.decode_dense(scores, distances, centerness, case["strides"], geometries=geometry,
                                      precision=precision, **params)

    return got, expected


@settings(max_examples=150, deadline=None)
@given(case=dense_cases())
def test_decode_dense_matches_reference(case):
    got, expected = _run_dense_case(case)
    expected32 = expected("float32")
    _assert_same(got, expected32)
    _assert_float64_differs_only_at_the_threshold(expected32, lambda: expected("float64"))


@st.composite
def boxes_cases(draw):
    return dict(
        batch=draw(st.integers(1, 2)),
        count=draw(st.integers(1, 30)),
        classes=draw(st.integers(1, 3)),
        dtype=draw(st.sampled_from(["float32", "float16"])),
        scores_are=draw(st.sampled_from(["logits", "probabilities"])),
        box_format=draw(st.sampled_from(["xyxy", "cxcywh"])),
        score_threshold=draw(st.one_of(st.sampled_from([0.0, 0.1, 0.5]), st.floats(0.0, 0.95))),
        iou_threshold=draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))),
        pre_nms_top_k=draw(st.integers(1, 60)),
        max_detections=draw(st.integers(1, 40)),
        class_agnostic=draw(st.booleans()),
        duplicates=draw(st.integers(0, 10)),
        quantised=draw(st.booleans()),
        mapped=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _random_boxes(rng, shape_prefix, box_format, quantised):
    """Boxes in a 64-pixel frame, some degenerate (zero or negative width) when quantised."""
    x1 = rng.uniform(0, 48, shape_prefix)
    y1 = rng.uniform(0, 48, shape_prefix)
    w = rng.uniform(0, 24, shape_prefix)
    h = rng.uniform(0, 24, shape_prefix)
    if quantised:
        x1, y1, w, h = np.round(x1), np.round(y1), np.round(w) - 1, np.round(h)
    if box_format == "xyxy":
        return np.stack([x1, y1, x1 + w, y1 + h], axis=-1)
    return np.stack([x1 + w / 2, y1 + h / 2, w, h], axis=-1)


@settings(max_examples=150, deadline=None)
@given(case=boxes_cases())
def test_decode_boxes_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    shape = (case["batch"], case["count"])
    boxes = _random_boxes(rng, shape, case["box_format"], case["quantised"])
    if case["scores_are"] == "logits":
        scores = rng.normal(-0.5, 2.0, (*shape, case["classes"]))
        scores = np.round(scores * 2) / 2 if case["quantised"] else scores
    else:
        scores = rng.uniform(0.0, 1.0, (*shape, case["classes"]))
        scores = np.round(scores * 4) / 4 if case["quantised"] else scores
    # Exact duplicates of boxes and their scores.
    for _ in range(case["duplicates"]):
        src, dst = rng.integers(0, case["count"], 2)
        boxes[:, dst], scores[:, dst] = boxes[:, src], scores[:, src]
    boxes, scores = boxes.astype(case["dtype"]), scores.astype(case["dtype"])
    geometry = [_random_geometry(rng) for _ in range(case["batch"])] if case["mapped"] else None
    params = {k: case[k] for k in ("score_threshold", "iou_threshold", "pre_nms_top_k", "max_detections",
                                   "class_agnostic", "scores_are", "box_format")}
    got = decode_boxes(boxes, scores, geometry, **params)
    expected32 = reference.decode_boxes(boxes, scores, geometries=geometry, precision="float32", **params)
    _assert_same(got, expected32)
    _assert_float64_differs_only_at_the_threshold(
        expected32, lambda: reference.decode_boxes(boxes, scores, geometries=geometry, precision="float64", **params)
    )


@st.composite
def nms_cases(draw):
    return dict(
        count=draw(st.integers(0, 60)),
        labels=draw(st.sampled_from([None, 1, 3])),
        iou_threshold=draw(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0))),
        max_detections=draw(st.integers(1, 70)),
        quantised=draw(st.booleans()),
        duplicates=draw(st.integers(0, 15)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _nms_inputs(case):
    rng = np.random.default_rng(case["seed"])
    count = case["count"]
    boxes = _random_boxes(rng, (count,), "xyxy", case["quantised"]).astype(np.float32)
    # Any real numbers: negative, both zeros, infinities; quantised ones tie often.
    scores = rng.normal(0.0, 1.0, count)
    if case["quantised"]:
        scores = np.round(scores * 2) / 2
        scores[rng.random(count) < 0.1] = -0.0
        scores[rng.random(count) < 0.05] = np.inf
    scores = scores.astype(np.float32)
    for _ in range(case["duplicates"] if count else 0):
        src, dst = rng.integers(0, count, 2)
        boxes[dst], scores[dst] = boxes[src], scores[src]
    classes = None
    if case["labels"] is not None:
        classes = rng.integers(-2, case["labels"] - 2, count).astype(np.int32)
    return boxes, scores, classes


@settings(max_examples=200, deadline=None)
@given(case=nms_cases())
def test_nms_matches_reference(case):
    boxes, scores, classes = _nms_inputs(case)
    got = nms(boxes, scores, classes, case["iou_threshold"], case["max_detections"])
    expected = reference.nms(boxes, scores, classes, case["iou_threshold"], case["max_detections"])
    assert got.dtype == np.int64
    assert got.tolist() == expected.kept
    if expected.disagreements:
        expected64 = reference.nms(boxes, scores, classes, case["iou_threshold"], case["max_detections"], "float64")
        if expected64.kept != expected.kept:
            assert all(abs(iou64 - t) <= 1e-5 for iou64, t in expected.disagreements), expected.disagreements


# --- against OpenCV -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("class_aware", [False, True])
def test_nms_agrees_with_opencv(seed, class_aware):
    """cv2.dnn.NMSBoxes has the same rules for boxes of positive area: stable sort by score
    descending (ties to the lower index), IoU > threshold suppresses, continuous (Rect2d)
    coordinates; NMSBoxesBatched is its class-aware form. It computes IoU as
    1 - float(1 - IoU in double), so a decision may differ from ours only where an IoU is
    within a rounding of the threshold. Where it differs by design (two zero-area boxes
    suppress each other in OpenCV; never here) is tested separately."""
    rng = np.random.default_rng(seed)
    count = 400
    centres = rng.uniform(0, 500, (40, 2))
    which = rng.integers(0, 40, count)
    size = rng.uniform(10, 60, (count, 2))
    xy = centres[which] + rng.normal(0, 6, (count, 2)) - size / 2
    boxes = np.concatenate([xy, xy + size], axis=1).astype(np.float32)
    # Ties; all > 0, as NMSBoxes needs a score threshold >= 0 and keeps scores above it.
    scores = (np.round(rng.uniform(0, 1, count) * 49) + 1).astype(np.float32) / np.float32(50)
    classes = rng.integers(0, 3, count).astype(np.int32) if class_aware else None
    threshold = float(rng.uniform(0.2, 0.8))
    rects = [(float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])) for b in boxes]
    if class_aware:
        theirs = cv2.dnn.NMSBoxesBatched(rects, scores.tolist(), classes.tolist(), 0.0, threshold)
    else:
        theirs = cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, threshold)
    ours = nms(boxes, scores, classes, threshold)
    theirs = np.asarray(theirs, dtype=np.int64).reshape(-1)
    # NMSBoxesBatched returns the kept boxes in its own order; NMSBoxes in ours.
    if (sorted if class_aware else list)(ours.tolist()) != (sorted if class_aware else list)(theirs.tolist()):
        closest = reference.nms(boxes, scores, classes, threshold, count, "float64").closest
        assert closest <= 1e-6, f"OpenCV and radedge differ, and no IoU is within 1e-6 of the threshold ({closest})"
    assert 20 < len(ours) < count


def test_opencv_lets_zero_area_boxes_suppress_each_other_and_we_do_not():
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    rects = [(float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])) for b in boxes]
    assert cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, 0.5).tolist() == [0, 2]
    assert nms(boxes, scores, None, 0.5).tolist() == [0, 1, 2]


# --- the rules, one example each --------------------------------------------------------------


def test_equal_scores_go_to_the_lower_index():
    boxes = np.array([[0, 0, 10, 10]] * 4, np.float32)
    scores = np.array([0.5, 0.7, 0.7, 0.7], np.float32)
    assert nms(boxes, scores, None, 0.5).tolist() == [1]
    assert nms(boxes, scores, None, 1.0).tolist() == [1, 2, 3, 0]


def test_iou_equal_to_the_threshold_does_not_suppress():
    # Intersection 2, union 4: IoU exactly 0.5 in every precision.
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 1]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, None, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, None, 0.4999).tolist() == [0]


def test_iou_uses_continuous_coordinates():
    # Continuous: intersection 1 x 2, union 4 + 4 - 2, IoU 1/3. With the +1 convention it
    # would be 2 x 3 / (9 + 9 - 6) = 0.5.
    boxes = np.array([[0, 0, 2, 2], [1, 0, 3, 2]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, None, 0.34).tolist() == [0, 1]
    assert nms(boxes, scores, None, 0.33).tolist() == [0]
    assert nms(boxes, scores, None, 1 / 3).tolist() == [0, 1]  # float32(1/3) is not > itself


def test_zero_area_and_inverted_boxes_have_iou_zero():
    boxes = np.array([[3, 3, 3, 8], [3, 3, 3, 8], [0, 0, 10, 10], [9, 9, 1, 1]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, None, 0.0).tolist() == [0, 1, 2, 3]


def test_classes_never_suppress_each_other_unless_agnostic():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, np.array([0, 1, 0], np.int32), 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, None, 0.5).tolist() == [0]
    got = decode_boxes(boxes[None], np.array([[[0.9, 0.85], [0.8, 0.1], [0.7, 0.2]]], np.float32),
                       score_threshold=0.15, class_agnostic=False)
    assert got.per_image()[0].classes.tolist() == [0, 1]
    assert got.per_image()[0].scores.tolist() == pytest.approx([0.9, 0.85])
    agnostic = decode_boxes(boxes[None], np.array([[[0.9, 0.85], [0.8, 0.1], [0.7, 0.2]]], np.float32),
                            score_threshold=0.15, class_agnostic=True)
    assert agnostic.per_image()[0].classes.tolist() == [0]


def test_max_detections_keeps_the_best_and_zeroes_the_rest():
    boxes = np.array([[[i * 20, 0, i * 20 + 10, 10] for i in range(6)]], np.float32)
    scores = np.array([[[0.1], [0.6], [0.3], [0.9], [0.05], [0.7]]], np.float32)
    got = decode_boxes(boxes, scores, score_threshold=0.08, max_detections=3)
    assert got.valid.tolist() == [3]
    assert got.scores[0].tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert got.boxes[0, 0].tolist() == [60, 0, 70, 10]
    wide = decode_boxes(boxes, scores, score_threshold=0.08, max_detections=8)
    assert wide.valid.tolist() == [5]
    assert (wide.boxes[0, 5:] == 0).all() and (wide.scores[0, 5:] == 0).all() and (wide.classes[0, 5:] == 0).all()
    assert nms(boxes[0], scores[0, :, 0], None, 0.5, max_detections=2).tolist() == [3, 5]


def test_score_threshold_is_strict_and_top_k_comes_before_nms():
    boxes = np.array([[[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]]], np.float32)
    scores = np.array([[[0.5], [0.9], [0.8]]], np.float32)
    got = decode_boxes(boxes, scores, score_threshold=0.5)
    assert got.scores[0, : got.valid[0]].tolist() == pytest.approx([0.9, 0.8])
    # top-1 keeps only the 0.9 box; the 0.8 box never reaches NMS.
    top1 = decode_boxes(boxes, scores, score_threshold=0.0, pre_nms_top_k=1)
    assert top1.valid.tolist() == [1] and top1.scores[0, 0] == np.float32(0.9)


def test_dense_cell_geometry_units_and_offset():
    # One level, 2 x 3 cells, stride 8, one class; only cell (x=2, y=1) scores.
    scores = np.full((1, 1, 2, 3), -20.0, np.float32)
    scores[0, 0, 1, 2] = 3.0
    distances = np.zeros((1, 4, 2, 3), np.float32)
    distances[0, :, 1, 2] = [1.0, 0.5, 2.0, 0.25]
    got = decode_dense([(scores, distances)], [8])
    # Centre (2.5 * 8, 1.5 * 8) = (20, 12); box (20 - 8, 12 - 4, 20 + 16, 12 + 2).
    assert got.valid.tolist() == [1]
    assert got.boxes[0, 0].tolist() == [12.0, 8.0, 36.0, 14.0]
    assert got.scores[0, 0] == reference.sigmoid(3.0)
    corner = decode_dense([(scores, distances)], [8], cell_offset=0.0)
    assert corner.boxes[0, 0].tolist() == [8.0, 4.0, 32.0, 10.0]
    pixels = decode_dense([(scores, distances * 8)], [8], distance_units="pixels")
    assert pixels.boxes[0, 0].tolist() == [12.0, 8.0, 36.0, 14.0]


def test_dense_centerness_modes():
    scores = np.array([[[[1.0]]]], np.float32)
    centerness = np.array([[[[-0.5]]]], np.float32)
    distances = np.ones((1, 4, 1, 1), np.float32)
    cls, ctr = reference.sigmoid(1.0), reference.sigmoid(-0.5)
    fcos = decode_dense([(scores, distances, centerness)], [4], score_threshold=0.0)
    assert fcos.scores[0, 0] == np.sqrt(np.float32(cls * ctr))
    product = decode_dense([(scores, distances, centerness)], [4], score_threshold=0.0, centerness_mode="product")
    assert product.scores[0, 0] == np.float32(cls * ctr)
    # The threshold applies to the combined score.
    assert decode_dense([(scores, distances, centerness)], [4], score_threshold=0.6).valid.tolist() == [0]


def test_flat_order_breaks_ties_across_levels_classes_rows_and_columns():
    # Equal logits everywhere, boxes that overlap by IoU <= 1/16: the order is the flat index.
    levels = []
    for height, width, stride in ((2, 2, 16), (1, 1, 64)):
        scores = np.zeros((1, 2, height, width), np.float32)
        distances = np.full((1, 4, height, width), 0.25, np.float32)
        levels.append((scores, distances))
    got = decode_dense(levels, [16, 64], score_threshold=0.4, iou_threshold=0.1, max_detections=10)
    assert got.valid.tolist() == [10]
    assert got.classes[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 1]
    centres = (got.boxes[0, :, 0] + got.boxes[0, :, 2]) / 2, (got.boxes[0, :, 1] + got.boxes[0, :, 3]) / 2
    assert list(zip(centres[0].tolist(), centres[1].tolist()))[:4] == [(8, 8), (24, 8), (8, 24), (24, 24)]


def test_boxes_map_to_source_pixels_through_a_letterbox():
    g = resize_geometry(3000, 2000, PreprocessSpec(512, 512, "letterbox"))  # content 341 x 512 at x 85
    # The content's corners in model-input pixels map to the source image's corners.
    boxes = np.array([[[85.0, 0.0, 85.0 + 341.0, 512.0], [80.0, -3.0, 100.0, 20.0]]], np.float32)
    scores = np.array([[[0.9], [0.8]]], np.float32)
    got = decode_boxes(boxes, scores, g, iou_threshold=1.0)
    np.testing.assert_allclose(got.boxes[0, 0], [0, 0, 2000, 3000], atol=1e-3)
    # A box over the padding is clipped to the source image.
    x2 = (100.0 - 85) / g.scale_x
    np.testing.assert_allclose(got.boxes[0, 1], [0, 0, x2, 20 / g.scale_y], rtol=1e-6)


def test_boxes_map_through_a_source_crop():
    g = resize_geometry(300, 600, PreprocessSpec(200, 400, "stretch"), crop=(300, 40, 200, 100))
    assert (g.scale_x, g.scale_y, g.offset_x, g.offset_y) == (2.0, 2.0, 0, 0)
    boxes = np.array([[[10.0, 20.0, 30.0, 40.0], [-50.0, 150.0, 500.0, 300.0]]], np.float32)
    scores = np.array([[[0.9], [0.8]]], np.float32)
    got = decode_boxes(boxes, scores, g, iou_threshold=1.0)
    assert got.boxes[0, 0].tolist() == [305.0, 50.0, 315.0, 60.0]
    # Clipped to the crop region [300, 500] x [40, 140], the part of the source the model saw.
    assert got.boxes[0, 1].tolist() == [300.0, 115.0, 500.0, 140.0]
    assert [input_geometry(g)[k] for k in ("crop_x", "crop_y", "crop_width", "crop_height")] == [300, 40, 200, 100]
    plain = resize_geometry(100, 200, PreprocessSpec(64, 64, "stretch"))
    assert [input_geometry(plain)[k] for k in ("crop_x", "crop_y", "crop_width", "crop_height")] == [0, 0, 200, 100]


def test_one_geometry_per_image():
    boxes = np.array([[[0.0, 0.0, 10.0, 10.0]], [[0.0, 0.0, 10.0, 10.0]]], np.float32)
    scores = np.full((2, 1, 1), 0.9, np.float32)
    g1 = geometry_of(50, 50, 50, 50)
    g2 = geometry_of(50, 50, 100, 90, crop=(5, 0, 45, 50))  # scale 2, crop_x 5
    got = decode_boxes(boxes, scores, [g1, g2])
    assert got.boxes[:, 0].tolist() == [[0, 0, 10, 10], [5, 0, 10, 5]]


def test_per_image_lists():
    boxes = np.array([[[0, 0, 5, 5], [10, 10, 20, 20]], [[0, 0, 5, 5], [0, 0, 5, 5]]], np.float32)
    scores = np.array([[[0.2], [0.9]], [[0.1], [0.01]]], np.float32)
    got = decode_boxes(boxes, scores, score_threshold=0.05, max_detections=4)
    images = got.per_image()
    assert got.batch == 2 and got.max_detections == 4
    assert [len(i) for i in images] == [2, 1]
    assert images[0].boxes.shape == (2, 4) and images[0].boxes.dtype == np.float32
    assert images[0].scores.tolist() == pytest.approx([0.9, 0.2]) and images[1].classes.tolist() == [0]


def test_sigmoid_is_float64_sigmoid_rounded_to_float32():
    """The op's own exp (host and device share it) against numpy's float64 exp, over the
    logits that give every kind of float32 result: 0, subnormals, normals, 1 - ulp, 1."""
    rng = np.random.default_rng(0)
    logits = np.concatenate([
        np.linspace(-110, 40, 16000), rng.normal(0, 6, 8000), rng.uniform(-104, -85, 2000), [-np.inf, np.inf],
        np.arange(-30, 30, 0.25),
    ]).astype(np.float32)
    logits = np.unique(logits)
    count = len(logits)
    boxes = np.tile(np.array([0, 0, 1, 1], np.float32), (1, count, 1))
    got = decode_boxes(boxes, logits.reshape(1, count, 1), scores_are="logits", score_threshold=0.0,
                       iou_threshold=1.0, pre_nms_top_k=count, max_detections=count)
    expected = np.array([reference.sigmoid(x) for x in logits], np.float32)
    expected = np.sort(expected[expected > 0])[::-1]
    assert got.valid[0] == len(expected) > 20000
    np.testing.assert_array_equal(got.scores[0, : got.valid[0]], expected)


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("centerness_mode, centerness_logit", [(None, 0.0), ("sqrt", 20.0), ("sqrt", -2.5),
                                                               ("product", 20.0), ("product", 1.5)])
def test_logits_skipped_without_a_sigmoid_never_lose_a_candidate(threshold, centerness_mode, centerness_logit):
    """The ops skip logits whose score cannot pass (detail::cannot_pass); right at the
    threshold, the kept candidates must be exactly the reference's."""
    ctr = float(reference.sigmoid(centerness_logit))
    # The class score at which the combined score reaches the threshold.
    needed = {None: threshold, "sqrt": threshold**2 / ctr, "product": threshold / ctr}[centerness_mode]
    if needed >= 1:
        pytest.skip("no class score reaches this threshold with this centerness")
    boundary = _logit(needed)
    near = boundary + np.concatenate([np.linspace(-2e-4, 2e-4, 61), np.linspace(-0.3, 0.3, 41)])
    logits = np.unique(np.concatenate([near, np.nextafter(near.astype(np.float32), np.float32(np.inf))])).astype(
        np.float32)
    width = len(logits)
    scores = logits.reshape(1, 1, 1, width)
    distances = np.full((1, 4, 1, width), 0.25, np.float32)
    centerness = None if centerness_mode is None else np.full((1, 1, 1, width), centerness_logit, np.float32)
    params = dict(score_threshold=threshold, iou_threshold=1.0, pre_nms_top_k=width, max_detections=width,
                  centerness_mode=centerness_mode or "sqrt")
    level = (scores, distances) if centerness is None else (scores, distances, centerness)
    got = decode_dense([level], [1.0], **params)
    expected = reference.decode_dense([scores], [distances], None if centerness is None else [centerness], [1.0],
                                      **params)
    assert 0 < expected.valid[0] < width
    _assert_same(got, expected)


def test_float16_inputs_decode_like_their_float32_values():
    rng = np.random.default_rng(7)
    scores, distances, centerness = _dense_head(rng, 2, 3, [(9, 7), (5, 4)], "float16", True, "logits", "stride", False)
    half = decode_dense([(s, d, c) for s, d, c in zip(scores, distances, centerness)], [8, 16], score_threshold=0.1)
    single = decode_dense(
        [(s.astype(np.float32), d.astype(np.float32), c.astype(np.float32)) for s, d, c in zip(scores, distances,
                                                                                          centerness)],
        [8, 16], score_threshold=0.1,
    )
    assert half.valid.min() > 0
    for field in ("boxes", "scores", "classes", "valid"):
        np.testing.assert_array_equal(getattr(half, field), getattr(single, field))
    # A head mixing float16 and float32 tensors is decoded as float32.
    mixed = decode_dense([(s, d.astype(np.float32), c) for s, d, c in zip(scores, distances, centerness)], [8, 16],
                         score_threshold=0.1)
    np.testing.assert_array_equal(mixed.boxes, single.boxes)


def _fcos_head(rng, batch=1, classes=7, size=512, dtype="float32"):
    """A realistic 3-level FCOS head for a size x size input: background logits around -6,
    a few objects, distances that reach the object edges."""
    levels = []
    for stride in (8, 16, 32):
        h = w = size // stride
        logits = rng.normal(-6.0, 1.5, (batch, classes, h, w))
        for _ in range(6):
            n, k = rng.integers(0, batch), rng.integers(0, classes)
            cy, cx, r = rng.integers(0, h), rng.integers(0, w), max(1, h // 10)
            logits[n, k, max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] += rng.uniform(4, 9)
        distances = rng.uniform(0.5, 6.0, (batch, 4, h, w))
        centerness = rng.normal(0.0, 1.5, (batch, 1, h, w))
        levels.append((logits.astype(dtype), distances.astype(dtype), centerness.astype(dtype)))
    return levels


@pytest.mark.parametrize("fields", [dict(), dict(class_agnostic=True), dict(score_threshold=0.0, pre_nms_top_k=2000)])
def test_thread_count_does_not_change_a_bit(fields):
    levels = _fcos_head(np.random.default_rng(3), batch=2, classes=7, size=768)
    results = [decode_dense(levels, [8, 16, 32], threads=t, **fields) for t in (1, 2, 3, 7)]
    assert results[0].valid.min() > 5
    for r in results[1:]:
        for field in ("boxes", "scores", "classes", "valid"):
            np.testing.assert_array_equal(getattr(r, field), getattr(results[0], field))


def _clustered_boxes(rng, count, clusters, classes):
    """count boxes jittered around `clusters` objects in a 1024-pixel image, as a detector
    produces them before NMS."""
    centres = rng.uniform(0, 1024, (clusters, 2))
    sizes = rng.uniform(16, 160, (clusters, 2))
    which = rng.integers(0, clusters, count)
    centre = centres[which] + rng.normal(0, 4, (count, 2))
    size = sizes[which] * rng.uniform(0.8, 1.25, (count, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)
    scores = rng.uniform(0.05, 1.0, count).astype(np.float32)
    labels = rng.integers(0, classes, count).astype(np.int32)
    return boxes, scores, labels


@pytest.mark.parametrize("class_aware", [False, True])
def test_nms_of_ten_thousand_boxes_matches_the_reference(class_aware):
    boxes, scores, labels = _clustered_boxes(np.random.default_rng(1), 10000, 300, 5)
    classes = labels if class_aware else None
    got = nms(boxes, scores, classes, 0.5, max_detections=300, threads=2)
    assert got.tolist() == _fast_reference_nms(boxes, scores, classes, 0.5, 300)
    assert len(got) == 300


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("class_aware", [False, True])
def test_nms_of_boxes_from_specks_to_the_whole_image_matches_the_reference(threshold, class_aware):
    """Box widths from 0.01 to 4000 pixels (and some zero or negative) in a 5000-pixel
    frame, so that the CPU's strips see both tiny and image-wide boxes."""
    rng = np.random.default_rng(int(threshold * 10) + class_aware)
    count = 3000
    size = np.exp(rng.uniform(np.log(0.01), np.log(4000), (count, 2)))
    size[rng.random(count) < 0.05] *= -0.1
    x1y1 = rng.uniform(-500, 5000, (count, 2))
    boxes = np.concatenate([x1y1, x1y1 + size], axis=1).astype(np.float32)
    scores = np.round(rng.uniform(0, 1, count) * 100).astype(np.float32)  # ties
    classes = rng.integers(0, 3, count).astype(np.int32) if class_aware else None
    got = nms(boxes, scores, classes, threshold, threads=2)
    assert got.tolist() == _fast_reference_nms(boxes, scores, classes, threshold, count)
    assert 100 < len(got) < count


def _fast_reference_nms(boxes, scores, classes, threshold, max_detections):
    """reference.nms's rules with the inner loop over later boxes done by numpy, in float32
    as the op computes (the pure-Python loop takes minutes at this size)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    b = boxes[order].astype(np.float32)
    labels = None if classes is None else classes[order]
    zero = np.float32(0)
    area = np.maximum(zero, b[:, 2] - b[:, 0]) * np.maximum(zero, b[:, 3] - b[:, 1])
    removed = np.zeros(len(order), bool)
    kept = []
    for i in range(len(order)):
        if removed[i]:
            continue
        kept.append(order[i])
        if len(kept) == max_detections:
            break
        width = np.maximum(zero, np.minimum(b[i, 2], b[i + 1 :, 2]) - np.maximum(b[i, 0], b[i + 1 :, 0]))
        height = np.maximum(zero, np.minimum(b[i, 3], b[i + 1 :, 3]) - np.maximum(b[i, 1], b[i + 1 :, 1]))
        intersection = width * height
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = intersection / ((area[i] + area[i + 1 :]) - intersection)
        suppress = iou > np.float32(threshold)
        if labels is not None:
            suppress &= labels[i + 1 :] == labels[i]
        removed[i + 1 :] |= suppress
    return kept


# --- inputs the ops refuse ------------------------------------------------------------------


def _level(batch=1, classes=2, height=4, width=5, dtype=np.float32, centerness=False):
    scores = np.zeros((batch, classes, height, width), dtype)
    distances = np.ones((batch, 4, height, width), dtype)
    if centerness:
        return scores, distances, np.zeros((batch, 1, height, width), dtype)
    return scores, distances


def _bad(*, levels=None, strides=None, **params):
    levels = [_level(), _level(height=2, width=3)] if levels is None else levels
    strides = [8, 16] if strides is None else strides
    return decode_dense(levels, strides, **params)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _bad(levels=[_level(), _level(batch=2, height=2, width=3)]),
         r"scores\[1\] must have shape \(1, 2, 2, 3\)"),
        (lambda: _bad(levels=[_level(), _level(classes=3, height=2, width=3)]), r"scores\[1\] must have shape"),
        (lambda: _bad(levels=[_level(), (np.zeros((1, 2, 2, 3), np.float32), np.ones((1, 4, 3, 2), np.float32))]),
         r"distances\[1\] must have shape \(1, 4, 2, 3\)"),
        (lambda: _bad(levels=[_level(), (np.zeros((1, 2, 2, 3), np.float32), np.ones((1, 3, 2, 3), np.float32))]),
         r"distances\[1\] must have shape"),
        (lambda: _bad(levels=[_level(centerness=True), (np.zeros((1, 2, 2, 3), np.float32),
                                                         np.ones((1, 4, 2, 3), np.float32),
                                                         np.zeros((1, 1, 3, 2), np.float32))]),
         r"centerness\[1\] must have shape \(1, 1, 2, 3\)"),
        (lambda: _bad(levels=[_level(centerness=True), _level()]),
         "centerness must be given for every level or for none"),
        (lambda: _bad(levels=[(np.zeros((2, 4, 5), np.float32), np.ones((1, 4, 4, 5), np.float32))], strides=[8]),
         r"scores\[0\] must be float32 or float16 \[N, K, h, w\]"),
        (lambda: _bad(levels=[_level(dtype=np.float64)], strides=[8]), "must be float32 or float16.*got float64"),
        (lambda: _bad(levels=[_level(dtype=np.int32)], strides=[8]), "got int32"),
        (lambda: _bad(levels=[(np.zeros((1, 2, 4, 10), np.float32)[..., ::2], np.ones((1, 4, 4, 5), np.float32))],
                      strides=[8]), "C-contiguous.*ascontiguousarray"),
        (lambda: _bad(levels=[_level(height=0)], strides=[8]), "level 0 is empty"),
        (lambda: _bad(levels=[_level(classes=0)], strides=[8]), "at least one class"),
        (lambda: _bad(levels=[], strides=[]), "one array per level; got none"),
        (lambda: _bad(levels=[_level()] * 9, strides=[8] * 9), "1 to 8 levels; got 9"),
        (lambda: _bad(strides=[8]), "one entry per level"),
        (lambda: _bad(strides=[8, 0]), "stride of level 1 must be a finite number of pixels > 0; got 0"),
        (lambda: _bad(strides=[8, -16]), "stride of level 1"),
        (lambda: _bad(strides=[float("nan"), 16]), "stride of level 0"),
        (lambda: _bad(score_threshold=-0.1), r"score_threshold must be in \[0, 1\)"),
        (lambda: _bad(score_threshold=1.0), r"score_threshold must be in \[0, 1\)"),
        (lambda: _bad(score_threshold=float("nan")), "score_threshold"),
        (lambda: _bad(iou_threshold=-0.01), r"iou_threshold must be in \[0, 1\]"),
        (lambda: _bad(iou_threshold=1.5), "iou_threshold"),
        (lambda: _bad(iou_threshold=float("nan")), "iou_threshold"),
        (lambda: _bad(max_detections=0), "max_detections must be 1 to 32768 per image; got 0"),
        (lambda: _bad(max_detections=10**9), "max_detections must be 1 to 32768"),
        (lambda: _bad(pre_nms_top_k=0), "pre_nms_top_k must be 1 to 32768"),
        (lambda: _bad(pre_nms_top_k=2**40), "pre_nms_top_k must be 1 to 32768"),
        (lambda: _bad(cell_offset=2.0), r"cell_offset must be in \[0, 1\]"),
        (lambda: _bad(centerness_mode="mean"), "centerness_mode must be 'sqrt'"),
        (lambda: _bad(distance_units="cells"), "distance_units must be 'stride'"),
        (lambda: _bad(scores_are="sigmoid"), "scores_are must be 'logits'"),
        (lambda: _bad(threads=-1), "threads must be >= 0"),
        (lambda: _bad(levels=[(np.zeros((1, 2, 4, 5), np.float32), np.ones((1, 4, 4, 5), np.float32)),
                              (np.zeros((1, 2, 2, 3), np.float32), np.ones((1, 4, 2, 3), np.float32), None, None)],
                      strides=[8, 16]), r"levels\[1\] must be \(scores, distances\)"),
    ],
)
def test_bad_dense_input_is_a_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_geometry_is_a_value_error():
    good = geometry_of(10, 10, 10, 10)
    with pytest.raises(ValueError, match=r"^decode_dense: the geometry of image 0: scale_x and scale_y must be finite"):
        _bad(geometry=dict(good, scale_x=0.0))
    with pytest.raises(ValueError, match=r"geometries\[0\]\['crop_x'\] must be an integer \(pixels\); got inf"):
        _bad(geometry=dict(good, crop_x=float("inf")))
    with pytest.raises(ValueError, match="the geometry of image 0: source_rows must be 1 to"):
        _bad(geometry=dict(good, source_rows=0))
    with pytest.raises(ValueError, match=r"one geometry for the whole batch or a sequence of one per image \(1\)"):
        _bad(geometry=[good, good])
    with pytest.raises(ValueError, match=r"input_size \(12, 12\) disagrees with the model input the geometry records"):
        _bad(geometry=good, input_size=(12, 12))


@pytest.mark.parametrize("where", ["scores", "centerness"])
@pytest.mark.parametrize("scores_are", ["logits", "probabilities"])
def test_nan_scores_are_a_value_error(where, scores_are):
    scores, distances, centerness = _level(centerness=True)
    # Far below any threshold: refused because the engine is broken, not because it scores.
    target = scores if where == "scores" else centerness
    target[0, 0, 2, 3] = np.nan
    with pytest.raises(ValueError, match=rf"{where} of level 0 holds? nan at image 0.*row 2, column 3.*broken"):
        decode_dense([(scores, distances, centerness)], [8], scores_are=scores_are)


def test_infinite_logits_are_scores_but_infinite_probabilities_are_refused():
    scores, distances = _level()
    scores[0, 1, 0, 0] = np.inf
    scores[0, 0, 1, 1] = -np.inf
    got = decode_dense([(scores, distances)], [8], score_threshold=0.6)
    assert got.valid.tolist() == [1] and got.scores[0, 0] == 1.0 and got.classes[0, 0] == 1
    with pytest.raises(ValueError, match="probabilities must be finite"):
        decode_dense([(scores, distances)], [8], scores_are="probabilities")


def test_non_finite_boxes_are_refused_only_for_candidates():
    scores, distances = _level()
    scores[...] = -10.0
    scores[0, 0, 1, 1] = 5.0
    distances[0, 2, 3, 4] = np.nan  # a cell whose scores do not pass: never read
    assert decode_dense([(scores, distances)], [8]).valid.tolist() == [1]
    distances[0, 0, 1, 1] = np.inf
    with pytest.raises(ValueError, match="the box of a candidate is not finite.*row 1, column 1"):
        decode_dense([(scores, distances)], [8])
    boxes = np.array([[[0, 0, np.nan, 1]]], np.float32)
    with pytest.raises(ValueError, match="box of a candidate is not finite"):
        decode_boxes(boxes, np.full((1, 1, 1), 0.9, np.float32))
    assert decode_boxes(boxes, np.full((1, 1, 1), 0.01, np.float32)).valid.tolist() == [0]


@pytest.mark.parametrize(
    "boxes, scores, params, message",
    [
        (np.zeros((1, 5, 3), np.float32), np.zeros((1, 5, 2), np.float32), {}, r"boxes must have shape \(1, 5, 4\)"),
        (np.zeros((1, 5, 4), np.float32), np.zeros((1, 6, 2), np.float32), {}, r"scores must have shape \(1, 5, 2\)"),
        (np.zeros((2, 5, 4), np.float32), np.zeros((1, 5, 2), np.float32), {}, r"scores must have shape \(2, 5, 2\)"),
        (np.zeros((5, 4), np.float32), np.zeros((1, 5, 2), np.float32), {},
         r"boxes must be float32 or float16 \[N, M, 4\]"),
        (np.zeros((1, 0, 4), np.float32), np.zeros((1, 0, 2), np.float32), {}, "at least one box per image"),
        (np.zeros((1, 5, 4), np.float32), np.zeros((1, 5, 0), np.float32), {}, "at least one class"),
        (np.zeros((1, 5, 4), np.float32), np.full((1, 5, 2), np.nan, np.float32), {},
         "scores hold nan at image 0, box 0"),
        (np.zeros((1, 5, 4), np.float32), np.zeros((1, 5, 2), np.float32), dict(box_format="xywh"),
         "box_format must be"),
        (np.zeros((1, 5, 8), np.float32)[..., ::2], np.zeros((1, 5, 2), np.float32), {}, "C-contiguous"),
    ],
)
def test_bad_boxes_input_is_a_value_error(boxes, scores, params, message):
    with pytest.raises(ValueError, match=message):
        decode_boxes(boxes, scores, **params)


@pytest.mark.parametrize(
    "boxes, scores, classes, params, message",
    [
        (np.zeros((3, 5), np.float32), np.zeros(3, np.float32), None, {}, r"boxes must be float32 \[M, 4\]"),
        (np.zeros((3, 4), np.float64), np.zeros(3, np.float32), None, {}, r"boxes must be float32 \[M, 4\]"),
        (np.zeros((3, 4), np.float32), np.zeros(4, np.float32), None, {}, "scores must be float32 \\[M\\] with M = 3"),
        (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), np.zeros(3, np.int64), {}, "classes must be int32"),
        (np.zeros((3, 4), np.float32), np.array([0, np.nan, 0], np.float32), None, {}, r"scores\[1\] is NaN"),
        (np.array([[0, 0, np.inf, 1]], np.float32), np.zeros(1, np.float32), None, {}, r"boxes\[0\].*is not finite"),
        (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), None, dict(max_detections=0),
         "max_detections must be 1"),
        (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), None, dict(iou_threshold=float("nan")),
         "iou_threshold"),
        (np.zeros((3, 4), np.float32), np.zeros(3, np.float32), None, dict(iou_threshold=-1.0), "iou_threshold"),
        (np.zeros((40000, 4), np.float32), np.zeros(40000, np.float32), None, {}, "takes 0 to 32768 boxes; got 40000"),
        (np.zeros((6, 8), np.float32)[:, ::2], np.zeros(6, np.float32), None, {}, "C-contiguous"),
    ],
)
def test_bad_nms_input_is_a_value_error(boxes, scores, classes, params, message):
    with pytest.raises(ValueError, match=message):
        nms(boxes, scores, classes, **params)


def test_nms_of_no_boxes_keeps_nothing():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)).tolist() == []


def test_the_binding_checks_what_the_wrapper_would_smooth_over():
    """The binding is callable without radedge.ops.detection: mixed dtypes and bad geometry
    dicts are its own ValueErrors."""
    scores, distances = _level()
    common = dict(score_threshold=0.05, iou_threshold=0.5, pre_nms_top_k=100, max_detections=10)
    with pytest.raises(ValueError, match="same dtype"):
        kernels().decode_dense_cpu([scores], [distances.astype(np.float16)], None, [8.0], **common)
    geometry = geometry_of(10, 10, 10, 10)
    with pytest.raises(ValueError, match=r"geometries\[0\] has an unknown key 'crop_X'"):
        kernels().decode_dense_cpu([scores], [distances], None, [8.0], geometries=[{**geometry, "crop_X": 3}],
                                   **common)
    with pytest.raises(ValueError, match=r"geometries\[0\] lacks 'scale_y'"):
        kernels().decode_dense_cpu([scores], [distances], None, [8.0],
                                   geometries=[{k: v for k, v in geometry.items() if k != "scale_y"}], **common)
    boxes, box_scores = np.zeros((1, 2, 4), np.float16), np.zeros((1, 2, 1), np.float32)
    with pytest.raises(ValueError, match="same dtype"):
        kernels().decode_boxes_cpu(boxes, box_scores, **common)


def test_non_arrays_are_a_type_error():
    with pytest.raises(TypeError, match="boxes must be a numpy array"):
        nms([[0, 0, 1, 1]], np.zeros(1, np.float32))
    with pytest.raises(TypeError, match=r"levels\[0\]\[0\] must be a numpy array"):
        decode_dense([([0.0], np.zeros((1, 4, 1, 1), np.float32))], [8])


# --- devices -----------------------------------------------------------------------------------


def test_unknown_device_names_the_implemented_ones():
    with pytest.raises(NativeOpError, match=r"no implementation for device 'tpu'; implemented: cpu, cuda"):
        nms(np.zeros((1, 4), np.float32), np.zeros(1, np.float32), device="tpu")


def test_cuda_without_a_device_says_what_is_available():
    count, _ = kernels().cuda_device_count()
    if count > 0:
        pytest.skip("a CUDA device is visible here; this checks the refusal where there is none")
    with pytest.raises(NativeOpError, match=r"cannot run on 'cuda'.*Available devices: cpu"):
        decode_dense([_level()], [8], device="cuda")


def _same(a: Detections, b: Detections) -> None:
    for field in ("boxes", "scores", "classes", "valid"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize(
    "fields",
    [
        dict(),
        dict(class_agnostic=True, iou_threshold=0.3),
        dict(score_threshold=0.0, pre_nms_top_k=5000, max_detections=1000),
        dict(centerness_mode="product", cell_offset=0.0, max_detections=1),
    ],
)
def test_cuda_decode_dense_matches_cpu(dtype, fields):
    """CUDA and CPU evaluate the same float expressions in the same order: equal bits."""
    rng = np.random.default_rng(21)
    levels = _fcos_head(rng, batch=3, classes=7, size=512, dtype=dtype)
    geometry = [_random_geometry(rng) for _ in range(3)]
    gpu = decode_dense(levels, [8, 16, 32], geometry, device="cuda", **fields)
    cpu = decode_dense(levels, [8, 16, 32], geometry, device="cpu", **fields)
    assert cpu.valid.min() > 0
    _same(gpu, cpu)


@pytest.mark.needs_cuda
@settings(max_examples=40, deadline=None)
@given(case=dense_cases())
def test_cuda_decode_dense_matches_cpu_property(case):
    gpu, _ = _run_dense_case(case, device="cuda")
    cpu, _ = _run_dense_case(case, device="cpu")
    _same(gpu, cpu)


@pytest.mark.needs_cuda
@pytest.mark.parametrize("box_format", ["xyxy", "cxcywh"])
@pytest.mark.parametrize("scores_are", ["logits", "probabilities"])
def test_cuda_decode_boxes_matches_cpu(box_format, scores_are):
    rng = np.random.default_rng(5)
    boxes = _random_boxes(rng, (2, 3000), box_format, quantised=True).astype(np.float32)
    scores = rng.normal(-2, 2, (2, 3000, 7)) if scores_are == "logits" else rng.uniform(0, 1, (2, 3000, 7))
    scores = (np.round(scores * 4) / 4).astype(np.float32)  # ties
    common = dict(scores_are=scores_are, box_format=box_format, pre_nms_top_k=4000, max_detections=500)
    _same(decode_boxes(boxes, scores, device="cuda", **common), decode_boxes(boxes, scores, device="cpu", **common))


@pytest.mark.needs_cuda
@pytest.mark.parametrize("count", [1, 63, 64, 65, 1000, 10000, 32768])
@pytest.mark.parametrize("class_aware", [False, True])
def test_cuda_nms_matches_cpu(count, class_aware):
    boxes, scores, labels = _clustered_boxes(np.random.default_rng(count), count, max(1, count // 30), 5)
    scores = np.round(scores * 20) / np.float32(20)  # ties
    classes = labels if class_aware else None
    for max_detections in (1, 100, count):
        gpu = nms(boxes, scores, classes, 0.5, max_detections, device="cuda")
        cpu = nms(boxes, scores, classes, 0.5, max_detections, device="cpu")
        np.testing.assert_array_equal(gpu, cpu)


@pytest.mark.needs_cuda
@settings(max_examples=60, deadline=None)
@given(case=nms_cases())
def test_cuda_nms_matches_cpu_property(case):
    boxes, scores, classes = _nms_inputs(case)
    gpu = nms(boxes, scores, classes, case["iou_threshold"], case["max_detections"], device="cuda")
    cpu = nms(boxes, scores, classes, case["iou_threshold"], case["max_detections"], device="cpu")
    np.testing.assert_array_equal(gpu, cpu)


@pytest.mark.needs_cuda
def test_cuda_refuses_what_the_cpu_refuses():
    scores, distances = _level(batch=2)
    scores[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"image 1 holds a NaN score"):
        decode_dense([(scores, distances)], [8], device="cuda")
    with pytest.raises(ValueError, match="not finite"):
        nms(np.array([[0, 0, np.inf, 1]], np.float32), np.zeros(1, np.float32), device="cuda")
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), device="cuda").tolist() == []
