"""The Comparator and the per-head judgement, on the tiny golden models: identical outputs pass
with perfect figures; each kind of damage a reduced precision can do fails on the head and
metric it touches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import load_bundle
from radedge.export.calibration import tensor_set
from radedge.export.compare import Comparator, OnnxRuntimeRunner, compare_accuracy

MODELS = Path(__file__).resolve().parents[1] / "models"


def _outputs(name: str, count: int = 12, labels=None):
    bundle = load_bundle(MODELS / name)
    rng = np.random.default_rng(7)
    images = rng.normal(0.0, 1.0, size=(count, *bundle.manifest.input_shape[1:])).astype(np.float32)
    runs = Comparator.run([OnnxRuntimeRunner(bundle.read("model.onnx"), "fp32")], images)
    return bundle.manifest, runs["fp32"].outputs, tensor_set(images, "random", labels)


@pytest.mark.parametrize("name", ["tiny_bone_tumor", "tiny_detector", "tiny_spine", "tiny_tumor_cls", "tiny_bone_quality"])
def test_identical_outputs_pass_with_perfect_figures(name):
    manifest, outputs, validation = _outputs(name)
    verdict = compare_accuracy(manifest, outputs, {k: v.copy() for k, v in outputs.items()}, validation, "fp16")
    assert verdict.passed, verdict.failures
    assert verdict.flag_changes == 0.0
    assert set(verdict.heads) == {head.name for head in manifest.heads}
    for figures in verdict.heads.values():
        for metric, value in figures.items():
            if metric.startswith("dice") and value is not None:
                assert value == 1.0
            if metric in ("peak_error_px", "map_drop", "max_probability_change") and value is not None:
                assert value == 0.0


def test_vanished_masks_fail_the_segmentation_head():
    manifest, outputs, validation = _outputs("tiny_bone_tumor")
    damaged = dict(outputs)
    damaged["lesion_logits"] = outputs["lesion_logits"] - 50.0
    verdict = compare_accuracy(manifest, outputs, damaged, validation, "int8")
    assert not verdict.passed
    assert any("head lesion" in text and "Dice" in text for text in verdict.failures), verdict.failures
    assert verdict.heads["lesion"]["dice_mean"] == 0.0


def test_shifted_heatmaps_fail_on_peak_distance():
    manifest, outputs, validation = _outputs("tiny_spine")
    head = manifest.head("levels")
    damaged = dict(outputs)
    # 3 grid cells to the right, in input pixels the grid's stride times that.
    damaged[head.tensors[0]] = np.roll(outputs[head.tensors[0]], 3, axis=-1)
    verdict = compare_accuracy(manifest, outputs, damaged, validation, "int8")
    figures = verdict.heads["levels"]
    assert figures["peaks"] > 0
    assert figures["peak_error_px"] is None or figures["peak_error_px"] > 2.0
    assert any("head levels" in text and "peak" in text for text in verdict.failures), verdict.failures


def test_moved_boxes_fail_on_map():
    manifest, outputs, validation = _outputs("tiny_detector")
    # Random inputs score under the decode threshold; raise a few cells so boxes exist.
    outputs = dict(outputs)
    outputs["cls"] = outputs["cls"].copy()
    outputs["cls"][:, :, 2:6:3, 2:6:3] += 12.0
    verdict_same = compare_accuracy(manifest, outputs, outputs, validation, "int8")
    assert verdict_same.heads["findings"]["boxes_reference"] > 0
    damaged = dict(outputs)
    damaged["reg"] = outputs["reg"] * 0.3
    verdict = compare_accuracy(manifest, outputs, damaged, validation, "int8")
    assert verdict.heads["findings"]["map_drop"] > 0.01
    assert any("head findings" in text and "mAP" in text for text in verdict.failures), verdict.failures


def test_auc_drop_needs_labels_and_flag_changes_are_counted():
    manifest, outputs, _ = _outputs("tiny_tumor_cls", count=40)
    head = manifest.head("tumor")
    logits = outputs[head.tensors[0]]
    truth = np.zeros((len(logits), 2), dtype=bool)
    order = np.argsort(logits[:, 1] - logits[:, 0])
    truth[order[len(order) // 2 :], 1] = True  # the reference ranks perfectly: AUC 1
    truth[:, 0] = ~truth[:, 1]
    _, _, labelled = _outputs("tiny_tumor_cls", count=40, labels={"tumor": truth})
    unlabelled = compare_accuracy(manifest, outputs, outputs, tensor_set(labelled.images, "x"), "fp16")
    assert unlabelled.heads["tumor"]["auc_drop"] is None
    reversed_logits = dict(outputs)
    reversed_logits[head.tensors[0]] = logits[:, ::-1].copy()
    verdict = compare_accuracy(manifest, outputs, reversed_logits, labelled, "int8")
    assert verdict.heads["tumor"]["auc_drop"] == pytest.approx(1.0)
    assert any("AUC of" in text for text in verdict.failures)
    assert verdict.heads["tumor"]["flag_agreement"] == 1.0  # no image near the 0.9 threshold either way
    surer = dict(outputs)
    surer[head.tensors[0]] = logits + np.array([0.0, 20.0], dtype=np.float32)
    flagged = compare_accuracy(manifest, outputs, surer, labelled, "int8")
    assert flagged.flag_changes > 0.5
    assert flagged.heads["tumor"]["flag_agreement"] < 0.5
    assert any("flag decisions change" in text for text in flagged.failures)
