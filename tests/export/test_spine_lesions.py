"""``spine-lesions``: the lesion phantoms and their boxes, the detection metrics, dense targets,
training to a bundle the SDK runs, and the committed model on its example."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

# The recipe imports its architecture, which needs torch (radedge[export]).
pytest.importorskip("torch", reason="needs torch (pip install 'radedge[export]')")

from radedge.export.phantoms._protocol import draw_protocol, streams
from radedge.export.metrics import auroc, average_precision, box_iou, mean_average_precision
from radedge.export.phantoms.spine_lesions import FINDINGS, lesion_anatomy, spine_lesion_radiograph
from radedge.export.recipes.spine_lesions import (
    FLAG_CODE,
    SMALL_BOX,
    STRIDES,
    dense_targets,
    level_targets,
)
from radedge.ops.detection import decode_dense

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "spine" / "lumbar_spine_lesions.dcm"
EXAMPLE_TRUTH = REPO / "examples" / "spine" / "lesions_ground_truth.json"
BUNDLE = REPO / "sdk" / "radedge" / "models" / "spine-lesions"


def _anatomy(seed: int, findings):
    rng = streams(seed, "lumbar_spine_lesions")
    protocol = draw_protocol(rng["acquisition"], "lumbar_spine", seed, rows=None, columns=None, bits_stored=None,
                             photometric=None, detected_quanta=None)
    return lesion_anatomy(rng, protocol, findings)


# --- phantoms ------------------------------------------------------------------------------


def test_same_seed_gives_the_same_phantom_and_boxes():
    first, second = spine_lesion_radiograph(11), spine_lesion_radiograph(11)
    assert np.array_equal(first.stored, second.stored)
    assert first.findings == second.findings
    assert not np.array_equal(first.stored, spine_lesion_radiograph(12).stored)


def test_about_half_are_normal_and_normal_ones_have_no_box():
    counts = {True: 0, False: 0}
    labels = set()
    for seed in range(40):
        phantom = spine_lesion_radiograph(seed, rows=2400, columns=2000)
        truth = phantom.ground_truth()
        assert truth["kind"] == "lumbar_spine_lesions" and truth["findings"] == phantom.findings
        assert len(phantom.findings) <= 3
        assert len({f["label"] for f in phantom.findings}) == len(phantom.findings)
        counts[bool(phantom.findings)] += 1
        labels.update(f["label"] for f in phantom.findings)
    assert 12 <= counts[False] <= 28, counts
    assert len(labels) >= 6, labels
    assert spine_lesion_radiograph(4, findings=()).findings == []


def test_unknown_or_repeated_findings_are_refused():
    with pytest.raises(ValueError, match="distinct labels"):
        spine_lesion_radiograph(0, findings=("fracture",))
    with pytest.raises(ValueError, match="distinct labels"):
        spine_lesion_radiograph(0, findings=("osteophytes", "osteophytes"))


@pytest.mark.parametrize("label", FINDINGS)
def test_box_encloses_what_the_finding_changed(label):
    """The finding's anatomy against the same seed's normal spine: at least 97 % of the
    change lies in the box (2 px slack for the half-resolution grid), and the change fills
    the box, so the box is neither too small nor loose."""
    seed = 30 + FINDINGS.index(label)
    scene, grid, with_finding, _ = _anatomy(seed, (label,))
    _, _, normal, _ = _anatomy(seed, ())
    phantom = spine_lesion_radiograph(seed, findings=(label,))
    (finding,) = phantom.findings
    assert finding["label"] == label and finding["level"].split("-")[0] in ("L1", "L2", "L3", "L4", "L5")
    x1, y1, x2, y2 = finding["box_xyxy_px"]
    assert 0 <= x1 < x2 <= phantom.columns and 0 <= y1 < y2 <= phantom.rows

    change = np.abs(with_finding.astype(np.float64) - normal)
    # Column j of the image-oriented grid is centred on full-resolution pixel 2j + 0.5.
    columns = np.arange(change.shape[1]) * 2 + 1.0
    rows = np.arange(change.shape[0]) * 2 + 1.0
    inside = ((rows[:, None] >= y1 - 2) & (rows[:, None] <= y2 + 2)
              & (columns[None, :] >= x1 - 2) & (columns[None, :] <= x2 + 2))
    assert change.sum() > 0
    assert change[inside].sum() >= 0.97 * change.sum(), f"{change[~inside].sum() / change.sum():.3f} outside"
    changed = change > 0.05  # a millimetre of cortex is 0.055
    ys, xs = np.nonzero(changed & inside)
    assert len(ys) > 0
    changed_area = (rows[ys].max() - rows[ys].min() + 2) * (columns[xs].max() - columns[xs].min() + 2)
    assert changed_area >= 0.5 * (x2 - x1) * (y2 - y1), "the box is much larger than the change"


def test_findings_are_visible_in_the_stored_image():
    """A collapsed body and an implant change the written pixels inside their boxes."""
    normal = spine_lesion_radiograph(5, findings=()).monochrome2().astype(np.float64)
    phantom = spine_lesion_radiograph(5, findings=("surgical implant", "vertebral collapse"))
    image = phantom.monochrome2().astype(np.float64)
    spread = np.percentile(normal, 95) - np.percentile(normal, 5)
    for finding in phantom.findings:
        x1, y1, x2, y2 = (int(round(v)) for v in finding["box_xyxy_px"])
        difference = np.abs(image[y1:y2, x1:x2] - normal[y1:y2, x1:x2]).mean()
        assert difference > 0.05 * spread, (finding["label"], difference, spread)


# --- metrics ---------------------------------------------------------------------------------


def test_average_precision_all_point_interpolation():
    truths = {0: [[0, 0, 10, 10]], 1: [[20, 20, 30, 30]]}
    perfect = [(0, 0.9, [0, 0, 10, 10]), (1, 0.8, [20, 20, 30, 30])]
    assert average_precision(perfect, truths) == pytest.approx(1.0)
    # TP, FP, TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3.
    mixed = [(0, 0.9, [0, 0, 10, 10]), (0, 0.8, [50, 50, 60, 60]), (1, 0.7, [20, 20, 30, 30])]
    assert average_precision(mixed, truths) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # The false positive ranked first instead: precision 0, 1/2, 2/3 -> 1/2 * 2/3 + 1/2 * 2/3.
    reordered = [(0, 0.95, [50, 50, 60, 60]), (0, 0.9, [0, 0, 10, 10]), (1, 0.7, [20, 20, 30, 30])]
    assert average_precision(reordered, truths) == pytest.approx(2 / 3)
    # A second box on a matched truth is a false positive; a box at IoU < 0.5 misses.
    duplicate = [(0, 0.9, [0, 0, 10, 10]), (0, 0.8, [0, 0, 10, 10])]
    assert average_precision(duplicate, truths) == pytest.approx(0.5)
    shifted = [(0, 0.9, [4, 0, 14, 10])]  # IoU 60 / 140
    assert average_precision(shifted, truths) == 0.0
    assert average_precision(shifted, {0: []}) is None
    assert average_precision([], truths) == 0.0


def test_mean_average_precision_skips_classes_without_truth():
    truth = [[(0, [0, 0, 10, 10])], [(1, [0, 0, 10, 10]), (0, [40, 40, 50, 50])]]
    predicted = [[(0, 0.9, [0, 0, 10, 10]), (2, 0.8, [0, 0, 10, 10])], [(1, 0.6, [30, 30, 40, 40])]]
    result = mean_average_precision(predicted, truth, labels=("a", "b", "c", "d"))
    assert result["per_class"] == {"a": 0.5, "b": 0.0, "c": None, "d": None}
    assert result["mAP"] == 0.25


def test_box_iou_and_auroc_on_hand_made_cases():
    assert box_iou([0, 0, 10, 10], np.array([[5, 0, 15, 10], [20, 20, 30, 30]])) == pytest.approx([50 / 150, 0.0])
    assert auroc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([True, False, True, False])) == 0.75
    assert auroc(np.array([0.9, 0.5, 0.5]), np.array([True, True, False])) == 0.75


def test_dense_targets_decode_back_to_their_boxes_through_the_sdk_op():
    boxes = np.array([[40.0, 60.0, 100.0, 90.0], [150.0, 150.0, 156.0, 155.0]], dtype=np.float32)
    classes = np.array([2, 0])
    labels, distances = dense_targets(boxes, classes, stride=8)
    assert labels[2].sum() >= 4 and labels[0].sum() >= 1 and labels.sum() == labels.max(0).sum()
    logits = np.where(labels > 0, 8.0, -8.0).astype(np.float32)[None]
    found = decode_dense([(logits, np.maximum(distances, 1e-3)[None])], [8], None, score_threshold=0.5,
                         iou_threshold=0.5).per_image()[0]
    for cls, box in zip(classes, boxes):
        mine = found.boxes[found.classes == cls]
        assert len(mine) >= 1
        # The tiny box's nearest cell centre lies outside it, 1 px below: its distance to the
        # bottom edge clamps at 0.1 px, so that box comes back 1.1 px taller (IoU 0.81).
        assert box_iou(box, mine).max() > (0.99 if cls == 2 else 0.8), (cls, mine, box)


def test_small_boxes_go_to_the_fine_level_and_both_levels_decode_back_through_the_sdk_op():
    # A 60 x 30 implant, a 7 x 6 spur, a 10 x 10 focus: the spur and the focus are under
    # SMALL_BOX and learnt at stride 4 only, the implant at stride 8 only.
    boxes = np.array([[40.0, 60.0, 100.0, 90.0], [150.0, 150.0, 157.0, 156.0], [201.0, 33.0, 211.0, 43.0]],
                     dtype=np.float32)
    classes = np.array([2, 0, 6])
    assert STRIDES == (4, 8) and 10.0 < SMALL_BOX <= 30.0
    targets = level_targets(boxes, classes)
    fine, coarse = targets["box_labels_4"], targets["box_labels_8"]
    assert fine.shape == (7, 64, 64) and coarse.shape == (7, 32, 32)
    assert fine[2].sum() == 0 and coarse[0].sum() == 0 and coarse[6].sum() == 0
    assert fine[0].sum() >= 1 and fine[6].sum() >= 4 and coarse[2].sum() >= 4
    levels = [(np.where(targets[f"box_labels_{s}"] > 0, 8.0, -8.0).astype(np.float32)[None],
               np.maximum(targets[f"box_distance_targets_{s}"], 1e-3)[None]) for s in STRIDES]
    found = decode_dense(levels, list(STRIDES), None, score_threshold=0.5, iou_threshold=0.5).per_image()[0]
    for cls, box in zip(classes, boxes):
        mine = found.boxes[found.classes == cls]
        assert len(mine) >= 1 and box_iou(box, mine).max() > 0.99, (cls, mine, box)


# --- training and the committed model ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_torch
def test_one_epoch_exports_a_bundle_the_sdk_runs(tmp_path: Path):
    from radedge.bundle import load_bundle
    from radedge.export import train
    from radedge.export.recipes import recipe
    from radedge.export.recipes.base import HELD_OUT_SEED, dicom_bytes
    from radedge.pipeline import load_model

    out = tmp_path / "bundle"
    assert train.main([
        "spine-lesions", "--train", "8", "--val", "6", "--epochs", "1", "--batch", "4", "--workers", "1",
        "--threads", "1", "--out", str(out), "--checkpoint", str(tmp_path / "spine-lesions.pt"), "--precision", "fp32",
    ]) == 0
    bundle = load_bundle(out)
    assert bundle.manifest.model_id == "spine-lesions"
    detection = bundle.manifest.head("lesions")
    assert detection.labels == FINDINGS and [level.stride for level in detection.decode.levels] == list(STRIDES)
    rule = bundle.manifest.head("abnormal").flags[0]
    assert rule.code == FLAG_CODE and rule.operating_point["chosen_on"] == "validation phantoms"

    model = load_model(out, threads=1)
    prediction = model.predict(dicom_bytes(spine_lesion_radiograph(HELD_OUT_SEED)))
    assert set(prediction.classifications["abnormal"].labels) == {"normal", "abnormal"}
    for box in prediction.detections["lesions"].boxes:
        assert box.label in FINDINGS and 0.0 <= box.score <= 1.0
    report = recipe("spine-lesions").evaluate(str(out), count=2, seed=HELD_OUT_SEED, threads=1)
    assert report["phantoms"] == 2 and report["bundle_sha256"] == bundle.digest


def test_committed_model_flags_and_finds_the_example():
    from radedge.pipeline import load_model

    truth = json.loads(EXAMPLE_TRUTH.read_text())
    (item,) = [entry for entry in truth["items"] if entry["file"] == EXAMPLE.name]
    assert len(item["findings"]) >= 2
    prediction = load_model(BUNDLE, threads=1).predict(EXAMPLE)
    assert any(flag.code == FLAG_CODE for flag in prediction.flags)
    boxes = prediction.detections["lesions"].boxes
    for finding in item["findings"]:
        same = [box.xyxy for box in boxes if box.label == finding["label"]]
        assert same, f"no {finding['label']} box"
        assert box_iou(finding["box_xyxy_px"], np.array(same)).max() >= 0.5, finding


def test_example_regenerates_identically(tmp_path: Path):
    import pydicom

    from radedge.export.phantoms.spine_lesions import write_examples

    (path,) = write_examples(tmp_path)
    assert json.loads((tmp_path / EXAMPLE_TRUTH.name).read_text()) == json.loads(EXAMPLE_TRUTH.read_text())
    assert np.array_equal(pydicom.dcmread(EXAMPLE).pixel_array, pydicom.dcmread(path).pixel_array)
    assert EXAMPLE.stat().st_size < 2.2e6


def test_cropping_shifts_the_boxes_with_the_pixels():
    phantom = spine_lesion_radiograph(2, findings=("surgical implant",), rows=2400, columns=2000)
    cropped = phantom.cropped(100, 50, 2000, 1800)
    (before,), (after,) = phantom.findings, cropped.findings
    assert after["label"] == before["label"] and after["level"] == before["level"]
    assert np.allclose(after["box_xyxy_px"], np.array(before["box_xyxy_px"]) - [50, 100, 50, 100])
    assert cropped.vertebrae[0]["centre_xy_px"][1] == pytest.approx(phantom.vertebrae[0]["centre_xy_px"][1] - 100)
