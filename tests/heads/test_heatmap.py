"""Heatmap heads decoded into points; exclusive channels (grades of one finding) keep one class per finding."""

from __future__ import annotations

import numpy as np
import pytest

from radedge.heads import DecodeContext, decode_heatmap
from radedge.ops.preprocess import PreprocessSpec, resize_geometry
from radedge.spec import HeadSpec, HeatmapDecode

GRADES = ("grade_1", "grade_2", "grade_3")


def _maps() -> np.ndarray:
    """Logits [1, 3, 16, 16]: finding A at cell (4, 4) read as grade 2 (strong) and grade 3
    (weaker, one cell away); finding B at cell (12, 11) only grade 1."""
    maps = np.full((1, 3, 16, 16), -8.0, np.float32)
    maps[0, 1, 4, 4] = 3.0
    maps[0, 2, 5, 4] = 1.0
    maps[0, 0, 12, 11] = 2.0
    return maps


def _decode(exclusive_radius: int):
    head = HeadSpec("fracture", "heatmap", GRADES, "sigmoid",
                    HeatmapDecode(threshold=0.5, k=2, radius=1, refine=False, exclusive_radius=exclusive_radius))
    geometry = resize_geometry(320, 320, PreprocessSpec(64, 64, resize="stretch"))
    return decode_heatmap(head, {"fracture": _maps()}, DecodeContext(geometry))


def test_without_exclusive_one_finding_carries_two_grades():
    labels = sorted(point.label for point in _decode(0).points)
    assert labels == ["grade_1", "grade_2", "grade_3"]


def test_exclusive_keeps_the_strongest_class_of_each_finding():
    points = _decode(2).points
    assert sorted(point.label for point in points) == ["grade_1", "grade_2"]
    grade_2 = next(point for point in points if point.label == "grade_2")
    # cell (4, 4) of a 16-cell grid over 320 source pixels: centre at 4.5 * 20 = 90
    assert (grade_2.x, grade_2.y) == pytest.approx((90.0, 90.0))
    assert grade_2.score == pytest.approx(1 / (1 + np.exp(-3.0)), rel=1e-5)


def test_exclusive_radius_is_the_size_of_one_finding():
    # grade 3's peak is one cell from grade 2's: within radius 1 it is the same finding
    assert sorted(point.label for point in _decode(1).points) == ["grade_1", "grade_2"]
    # peaks 7 cells apart (finding A and B) are never merged, whatever their channels
    assert "grade_1" in [point.label for point in _decode(6).points]
    assert sorted(point.label for point in _decode(8).points) == ["grade_2"]


def test_exclusive_radius_is_for_peaks_only():
    with pytest.raises(ValueError, match="exclusive_radius applies to mode 'peaks'"):
        HeatmapDecode(mode="argmax", exclusive_radius=2)
    with pytest.raises(ValueError, match="exclusive_radius must be an integer"):
        HeatmapDecode(exclusive_radius=-1)
