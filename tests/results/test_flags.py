"""Flag rules over every head kind, on head results made by hand."""

from __future__ import annotations

import numpy as np
import pytest

from radedge.heads import Box, ClassificationResult, DetectionResult, HeatmapResult, Point, RegionStats, SegmentationResult
from radedge.results import UNLOCATED, evaluate_flags
from radedge.spec import Condition, FlagRule

LEVELS = HeatmapResult("levels", ("L1", "L2", "L3"), (
    Point("L1", 0, 0.9, 100.0, 100.0), Point("L2", 1, 0.9, 100.0, 200.0), Point("L3", 2, 0.9, 100.0, 300.0),
))
LESIONS = DetectionResult("lesions", ("osteophyte", "collapse"), (
    Box("collapse", 1, 0.95, (80.0, 180.0, 120.0, 215.0), None),
    Box("osteophyte", 0, 0.7, (60.0, 290.0, 90.0, 320.0), None),
    Box("collapse", 1, 0.6, (90.0, 290.0, 110.0, 310.0), None),
), "no mm figures")
ABNORMAL = ClassificationResult("abnormal", ("normal", "abnormal"), np.array([0.2, 0.8], np.float32))
RESULTS = {"levels": LEVELS, "lesions": LESIONS, "abnormal": ABNORMAL}


def _rule(head, label, threshold, **options) -> FlagRule:
    return FlagRule(options.pop("code", "CODE"), options.pop("title", "Title {label} at {where}"), head, label,
                    threshold, **options)


def test_a_box_of_a_class_above_its_threshold_names_the_class_and_the_level():
    (flag,), notes = evaluate_flags([_rule("lesions", "collapse", 0.5, locate_with="levels")], RESULTS)
    assert flag.title == "Title collapse at L2, L3" and flag.where == "L2, L3" and notes == []
    assert flag.score == pytest.approx(0.95) and flag.locations == ((80.0, 180.0, 120.0, 215.0), (90.0, 290.0, 110.0, 310.0))
    (high,), _ = evaluate_flags([_rule("lesions", "collapse", 0.9, locate_with="levels")], RESULTS)
    assert high.where == "L2" and len(high.locations) == 1
    assert evaluate_flags([_rule("lesions", "collapse", 0.96)], RESULTS) == ((), [])


def test_without_a_locator_a_box_has_no_place_name():
    (flag,), _ = evaluate_flags([_rule("lesions", "osteophyte", 0.5)], RESULTS)
    assert flag.where is None and flag.title == f"Title osteophyte at {UNLOCATED}"


def test_a_rule_may_need_two_heads_together():
    both = _rule("abnormal", "abnormal", 0.5, requires=(Condition("lesions", "collapse", 0.9),), title="Both")
    (flag,), _ = evaluate_flags([both], RESULTS)
    assert flag.code == "CODE" and flag.score == pytest.approx(0.8)
    stricter = _rule("abnormal", "abnormal", 0.5, requires=(Condition("lesions", "collapse", 0.99),), title="Both")
    assert evaluate_flags([stricter], RESULTS) == ((), [])


def test_heatmap_findings_are_named_by_their_channel():
    (flag,), _ = evaluate_flags([_rule("levels", "L3", 0.5, title="Landmark {where}")], RESULTS)
    assert flag.title == "Landmark L3" and flag.locations == ((100.0, 300.0),)


def test_an_area_rule_without_spacing_is_a_note_not_a_guess():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:4, 2:5] = 1
    region = RegionStats("lesion", 6, None, (2, 2, 5, 4), (3.5, 3.0))
    result = SegmentationResult("mask", ("lesion",), mask, 0.5, (region,), "no mm figures: no spacing")
    flags, notes = evaluate_flags([_rule("mask", "lesion", 1.0, code="BIG", title="Big")], {"mask": result})
    assert flags == () and notes == ["flag BIG not evaluated: the area of 'lesion' is unknown (no mm figures: no spacing)"]
    measured = SegmentationResult("mask", ("lesion",), mask, 0.5, (RegionStats("lesion", 6, 2.5, (2, 2, 5, 4), (3.5, 3.0)),),
                                  "PixelSpacing")
    (flag,), _ = evaluate_flags([_rule("mask", "lesion", 2.0, title="Big")], {"mask": measured})
    assert flag.score == 2.5 and flag.locations == ((2.0, 2.0, 5.0, 4.0),)


def test_an_area_flag_locates_each_lesion_of_the_label():
    mask = np.zeros((20, 30), np.uint8)
    mask[2:6, 2:8] = 1  # 24 pixels
    mask[10:18, 20:28] = 1  # 64 pixels, listed first
    summary = RegionStats("lesion", 88, 88 * 0.25, (2, 2, 28, 18), (17.0, 10.0))
    result = SegmentationResult("mask", ("lesion",), mask, 0.5, (summary,), "PixelSpacing")
    assert [region.pixel_count for region in result.regions] == [64, 24]
    (flag,), _ = evaluate_flags([_rule("mask", "lesion", 20.0, title="Big")], {"mask": result})
    # The threshold applies to the label's whole area; each lesion is a location.
    assert flag.score == 22.0 and flag.locations == ((20.0, 10.0, 28.0, 18.0), (2.0, 2.0, 8.0, 6.0))
    assert evaluate_flags([_rule("mask", "lesion", 23.0, title="Big")], {"mask": result})[0] == ()
