"""``vcf``: the sampler's targets, the paper's metrics, a training run that exports a bundle,
and the committed bundle on its example."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import load_bundle
from radedge.pipeline import load_model

pytestmark = pytest.mark.needs_torch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "spine"


@pytest.fixture(scope="module")
def fractured_sample():
    """Seed 4 (the bundled example's phantom): L1 has a Genant grade 2 fracture."""
    from radedge.export import phantoms
    from radedge.export.recipes.vcf import RECIPE

    return phantoms.lumbar_spine_radiograph(4), RECIPE.sample(4)


def test_trapezoid_mask_fills_the_quadrilateral_whichever_way_it_winds():
    from radedge.export.recipes.vcf import inside_trapezoid, trapezoid_mask

    corners = np.array([[2.0, 2.0], [10.0, 2.0], [10.0, 6.0], [2.0, 10.0]])
    for order in (corners, corners[::-1]):
        mask = trapezoid_mask((12, 12), order)
        assert mask[3, 3] == 1 and mask[8, 3] == 1  # under the sloping edge, left side
        assert mask[8, 9] == 0  # beyond the sloping edge
        assert mask[1, 5] == 0 and mask[5, 11] == 0
        assert int(mask.sum()) == 48  # 8 x 4 rectangle + the triangle's 16 pixel centres
        assert inside_trapezoid((3.0, 9.0), order) and not inside_trapezoid((9.0, 9.0), order)


def test_fracture_target_covers_the_fractured_bodies_only(fractured_sample):
    from radedge.export.recipes.vcf import GRID

    phantom, sample = fractured_sample
    assert sample["image"].shape == (1, 256, 256)
    assert sample["fracture"].shape == (3, GRID, GRID) and sample["levels"].shape == (5, GRID, GRID)
    grades = {v["level"]: v["genant_grade"] for v in phantom.vertebrae}
    assert grades == {"L1": 2, "L2": 0, "L3": 0, "L4": 0, "L5": 0}
    assert sample["grades"].tolist() == [2, 0, 0, 0, 0]
    # Only the grade 2 channel holds a target, and only over L1's body.
    assert sample["fracture"][0].max() == 0 and sample["fracture"][2].max() == 0
    target = sample["fracture"][1] >= 0.5
    l1 = sample["bodies"] == 1
    assert target.sum() >= 10
    assert (target & l1).sum() >= 0.9 * target.sum()
    for level in range(2, 6):
        assert not (target & (sample["bodies"] == level)).any()
    # The trapezoid sits where the image's L1 is: its centre maps to a cell of the target.
    x, y = sample["centres"][0]
    assert target[int(y), int(x)]


def test_level_targets_peak_at_the_body_centres(fractured_sample):
    from radedge.export import phantoms
    from radedge.export.recipes.base import model_input
    from radedge.export.recipes.vcf import GRID, OUTPUT_STRIDE, RECIPE

    phantom, sample = fractured_sample
    _, geometry = model_input(phantoms.to_dataset(phantom), RECIPE.spec)
    previous_y = -1.0
    for level, vertebra in enumerate(phantom.vertebrae):
        peak_y, peak_x = np.unravel_index(sample["levels"][level].argmax(), (GRID, GRID))
        # The peak cell's centre, back in source pixels, lies within one cell of the body centre.
        x_src, y_src = geometry.to_source((peak_x + 0.5) * OUTPUT_STRIDE, (peak_y + 0.5) * OUTPUT_STRIDE)
        cell_in_source = OUTPUT_STRIDE / geometry.scale_x
        assert np.hypot(x_src - vertebra["centre_xy_px"][0], y_src - vertebra["centre_xy_px"][1]) < cell_in_source
        assert sample["bodies"][peak_y, peak_x] == level + 1  # inside its own body
        assert sample["levels"][level].max() > 0.6
        assert peak_y > previous_y  # L1 .. L5 run head to foot
        previous_y = peak_y


def test_vertebral_metrics_per_patient_and_per_body():
    from radedge.export.recipes.vcf import level_detection, vertebral_metrics

    truth = np.array([
        [True, False, False, False, False],
        [False, False, False, False, False],
        [False, True, True, False, False],
        [False, False, False, False, False],
    ])
    predicted = np.array([
        [True, False, False, False, False],   # found
        [False, False, True, False, False],   # false positive patient
        [False, True, False, False, False],   # one of two found: patient still positive
        [False, False, False, False, False],
    ])
    figures = vertebral_metrics(predicted, truth)
    patient = figures["per_patient"]
    assert patient == {"accuracy": 0.75, "sensitivity": 1.0, "specificity": 0.5, "count": 4}
    body = figures["per_vertebral_body"]
    assert body["count"] == 20
    assert body["sensitivity"] == round(2 / 3, 4)
    assert body["specificity"] == round(16 / 17, 4)
    assert body["accuracy"] == 0.9

    found = np.ones((4, 5), dtype=bool)
    found[1, 3] = False
    levels = level_detection(found)
    assert levels["success_rate"] == 0.75 and levels["per_body"] == 0.95 and levels["images"] == 4


def test_body_scores_read_the_highest_grade_channel_on_each_body():
    from radedge.export.recipes.vcf import body_scores

    bodies = np.zeros((1, 16, 16), dtype=np.int8)
    for level in range(5):
        bodies[0, 3 * level : 3 * level + 2, 4:8] = level + 1
    logits = np.full((1, 3, 16, 16), -8.0, dtype=np.float32)
    logits[0, 2, 3, 5] = 2.0  # grade 3 on L2
    logits[0, 0, 13, 15] = 4.0  # off the spine: on no body, even grown by a cell
    scores, grades = body_scores(logits, bodies)
    assert scores[0, 1] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert grades[0, 1] == 3
    assert scores[0, [0, 2, 3, 4]].max() < 0.01


def test_estimated_grade_is_the_best_peak_located_at_each_level():
    from radedge.export.recipes.vcf import estimated_grades
    from radedge.heads.heatmap import HeatmapResult, Point

    levels = HeatmapResult("levels", ("L1", "L2"), (Point("L1", 0, 0.9, 100.0, 100.0), Point("L2", 1, 0.9, 100.0, 300.0)))
    labels = ("genant_1", "genant_2", "genant_3")
    fracture = HeatmapResult("fracture", labels, (
        Point("genant_1", 0, 0.6, 105.0, 110.0),
        Point("genant_2", 1, 0.8, 95.0, 95.0),  # the best at L1
        Point("genant_3", 2, 0.95, 100.0, 290.0),  # below its own threshold: not counted
        Point("genant_1", 0, 0.7, 110.0, 280.0),
    ))
    thresholds = {"genant_1": 0.5, "genant_2": 0.5, "genant_3": 0.97}
    assert estimated_grades(fracture, levels, thresholds) == {"L1": 2, "L2": 1}


@pytest.mark.slow
def test_one_epoch_exports_a_bundle_the_sdk_runs(tmp_path: Path):
    from radedge.export import train
    from radedge.export.recipes import recipe
    from radedge.export.recipes.base import HELD_OUT_SEED

    out = tmp_path / "bundle"
    assert train.main([
        "vcf", "--train", "6", "--val", "6", "--epochs", "1", "--batch", "3", "--workers", "1", "--threads", "1",
        "--out", str(out), "--checkpoint", str(tmp_path / "vcf.pt"), "--precision", "fp32",
    ]) == 0
    bundle = load_bundle(out)
    assert bundle.manifest.model_id == "vcf"
    fracture = bundle.manifest.head("fracture")
    assert [rule.locate_with for rule in fracture.flags] == ["levels"] * 3
    assert fracture.flags[1].title == "Possible compression fracture at {where} (Genant grade 2)"
    assert bundle.manifest.head("levels").labels == ("L1", "L2", "L3", "L4", "L5")
    assert bundle.manifest.provenance["onnx_vs_torch_max_abs_difference"]["levels"] < 1e-3

    report = recipe("vcf").evaluate(str(out), count=2, seed=HELD_OUT_SEED)
    assert report["phantoms"] == 2
    assert report["per_vertebral_body"]["count"] == 10
    assert report["bundle_sha256"] == bundle.digest
    assert report["latency_ms"]["median"] > 0


@pytest.mark.parametrize("file", ["lumbar_spine_fracture.dcm", "lumbar_spine_monochrome1.dcm"])
def test_committed_model_flags_the_example_fracture_at_its_level(file: str):
    from radedge.export.recipes.vcf import corners_of, inside_trapezoid

    truth = json.loads((EXAMPLES / "ground_truth.json").read_text())
    item = next(i for i in truth["items"] if i["file"] == file)
    fractured = {v["level"]: v["genant_grade"] for v in item["vertebrae"] if v["fractured"]}
    assert fractured  # both examples hold one fracture (L1 grade 2, L2 grade 3)
    prediction = load_model(ROOT / "sdk" / "radedge" / "models" / "vcf").predict(EXAMPLES / file)
    flagged = {level for flag in prediction.flags if flag.where for level in flag.where.split(", ")}
    assert flagged == set(fractured)
    # One flag per fractured body, with its grade: the grade channels are exclusive.
    assert sorted(f.title for f in prediction.flags) == sorted(
        f"Possible compression fracture at {level} (Genant grade {grade})" for level, grade in fractured.items()
    )
    # Every level found, each inside its own body.
    levels = prediction.heatmaps["levels"]
    for vertebra in item["vertebrae"]:
        (point,) = levels.of(vertebra["level"])
        assert inside_trapezoid((point.x, point.y), corners_of(vertebra))
