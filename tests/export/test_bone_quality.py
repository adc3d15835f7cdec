"""``bone-quality``: the network's three heads, self-paced learning, the training script's
bundle, and the committed bundle on the committed CT examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import load_bundle
from radedge.errors import OutOfScopeError
from radedge.pipeline import load_model

pytestmark = pytest.mark.needs_torch

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "sdk" / "radedge" / "models" / "bone-quality"
EXAMPLES = ROOT / "examples" / "ct"


def test_quality_logits_are_the_mlp_of_the_two_subtask_logits_also_in_onnx():
    import torch

    from radedge.export.loaders import OnnxFromTorch, check_onnx_against_torch
    from radedge.export.models.bone_quality import BoneQualityNet

    torch.manual_seed(0)
    model = BoneQualityNet().eval()
    images = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 1, 128, 128)).astype(np.float32))
    with torch.no_grad():
        blastic, lytic, quality = model(images)
        assert blastic.shape == lytic.shape == (3, 1) and quality.shape == (3, 4)
        assert torch.allclose(quality, model.quality_mlp(torch.cat([blastic, lytic], dim=1)))
    names = ("blastic_logits", "lytic_logits", "quality_logits")
    onnx_bytes = OnnxFromTorch(model, (1, 1, 128, 128), "image", names)()
    report = check_onnx_against_torch(model, onnx_bytes, images.numpy(), "image", names)
    assert report.within(1e-4), report.max_abs_difference


def test_self_paced_weights_leave_hard_samples_out_early_and_take_them_in_late():
    import torch

    from radedge.export.recipes.bone_quality import SPL_RAMP, self_paced_threshold, self_paced_weights

    labels = torch.tensor([0, 0, 0, 0, 2, 2, 2, 2])
    losses = torch.tensor([0.1, 0.2, 3.0, 5.0, 0.3, 0.4, 2.5, 6.0])
    early = self_paced_weights(torch, losses, labels, 0.0)
    assert early.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    middle = self_paced_weights(torch, losses, labels, 0.5)
    assert 2.5 < self_paced_threshold(0.5) < 5.0
    assert middle.tolist() == [1, 1, 1, 0, 1, 1, 1, 0]
    assert self_paced_weights(torch, losses, labels, SPL_RAMP).tolist() == [1] * 8
    # An untrained network: every loss above the threshold; the easiest half of each class still counts.
    hard = self_paced_weights(torch, losses + 10, labels, 0.0)
    assert hard.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert self_paced_threshold(0.0) < self_paced_threshold(0.3) < self_paced_threshold(0.59)


def test_the_training_loss_gives_no_gradient_to_samples_left_out():
    import torch

    from radedge.export.recipes import recipe

    bone_quality = recipe("bone-quality")
    labels = torch.tensor([0, 0, 1, 1])
    # Sample 1 is confidently wrong (a normal slice called blastic and lytic): a hard sample.
    blastic = torch.tensor([[-4.0], [6.0], [4.0], [4.0]], requires_grad=True)
    lytic = torch.tensor([[-4.0], [6.0], [-4.0], [-3.0]], requires_grad=True)
    quality = (torch.cat([blastic, lytic], 1) @ torch.tensor([[-1.0, 1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, 1.0]]))
    outputs = {"blastic_logits": blastic, "lytic_logits": lytic, "quality_logits": quality}
    for progress, hard_sample_counts in ((0.0, False), (0.9, True)):
        blastic.grad = lytic.grad = None
        bone_quality.loss(torch, outputs, {"label": labels}, progress).backward(retain_graph=True)
        assert (blastic.grad[1, 0] != 0).item() is hard_sample_counts
        assert blastic.grad[0, 0] != 0  # the easy sample of the same class always counts


@pytest.mark.slow
def test_training_script_makes_a_bundle_the_sdk_runs_and_evaluates(tmp_path: Path):
    from radedge.export import train
    from radedge.export.recipes import recipe
    from radedge.export.recipes.base import HELD_OUT_SEED

    out = tmp_path / "bundle"
    assert train.main([
        "bone-quality", "--train", "8", "--val", "8", "--epochs", "1", "--batch", "4", "--workers", "1",
        "--threads", "1", "--out", str(out), "--checkpoint", str(tmp_path / "bone-quality.pt"), "--precision", "fp32",
    ]) == 0
    manifest = load_bundle(out).manifest
    assert manifest.display_head == "quality"
    assert manifest.scope.modalities == ("CT",) and manifest.scope.sop_classes == ("1.2.840.10008.5.1.4.1.1.2",)
    assert (manifest.intensity.window.center, manifest.intensity.window.width) == (400.0, 1800.0)
    rules = {rule.code: rule for head in manifest.heads for rule in head.flags}
    assert {code: (rule.head, rule.label, rule.requires) for code, rule in rules.items()} == {
        "SUSPECTED_BLASTIC_BONE_METASTASIS": ("quality", "blastic", ()),
        "SUSPECTED_LYTIC_BONE_METASTASIS": ("quality", "lytic", ()),
        "SUSPECTED_MIXED_BONE_METASTASIS": ("quality", "mixed", ()),
    }
    assert all(rule.threshold > 0.5 for rule in rules.values())
    assert manifest.provenance["training"]["self_paced"]["all_samples_from_progress"] == 0.6

    report = recipe("bone-quality").evaluate(str(out), count=4, seed=HELD_OUT_SEED, threads=1)
    assert sum(map(sum, report["confusion"]["counts"])) == 4
    assert [row[0] + row[1] + row[2] + row[3] for row in report["confusion"]["counts"]] == [1, 1, 1, 1]
    assert report["flags"]["SUSPECTED_MIXED_BONE_METASTASIS"]["positives"] == 1
    assert report["slices_with_several_flags"] == 0
    assert report["latency_ms"]["median"] > 0


def _truth() -> dict[str, dict]:
    return {item["file"]: item for item in json.loads((EXAMPLES / "ground_truth.json").read_text())["items"]}


@pytest.mark.parametrize("name", sorted(_truth()))
def test_committed_bundle_reads_each_ct_example_as_its_ground_truth(name: str):
    truth = _truth()[name]
    prediction = load_model(BUNDLE, threads=1).predict(EXAMPLES / name)
    assert prediction.classifications["quality"].top_label == truth["label"]
    codes = [flag.code for flag in prediction.flags]
    expected = {
        "normal": [],
        "blastic": ["SUSPECTED_BLASTIC_BONE_METASTASIS"],
        "lytic": ["SUSPECTED_LYTIC_BONE_METASTASIS"],
        "mixed": ["SUSPECTED_MIXED_BONE_METASTASIS"],
    }[truth["label"]]
    assert codes == expected
    assert all(flag.head == "quality" and flag.label == truth["label"] for flag in prediction.flags)


def test_operating_points_read_the_combined_head_and_allow_one_flag_per_slice():
    from radedge.export.recipes import recipe
    from radedge.export.recipes.bone_quality import EXCLUSIVE_THRESHOLD, _softmax

    codes = {1: "SUSPECTED_BLASTIC_BONE_METASTASIS", 2: "SUSPECTED_LYTIC_BONE_METASTASIS",
             3: "SUSPECTED_MIXED_BONE_METASTASIS"}
    labels = np.repeat(np.arange(4), 20)
    logits = np.random.default_rng(0).normal(0.0, 0.3, size=(80, 4)) + 6.0 * np.eye(4)[labels]
    points = recipe("bone-quality").operating_points({"quality_logits": logits}, {"label": labels})
    probabilities = _softmax(logits)
    for index, code in codes.items():
        # Every slice of the class flagged, at the lowest probability of the class.
        lowest = probabilities[labels == index, index].min()
        assert lowest - 1e-4 < points[code]["threshold"] <= lowest
        assert points[code]["sensitivity"] == 1.0 and points[code]["specificity"] == 1.0
        assert "raised_from" not in points[code]

    # One mixed slice that the MLP splits between blastic and mixed (about 0.48 each):
    # flagging it would take a mixed threshold under one half, where a slice could raise two
    # flags, so the threshold is raised to just above one half and that slice is missed.
    logits[60] = [0.0, 3.0, 0.0, 3.0]
    points = recipe("bone-quality").operating_points({"quality_logits": logits}, {"label": labels})
    mixed = points["SUSPECTED_MIXED_BONE_METASTASIS"]
    assert mixed["threshold"] == EXCLUSIVE_THRESHOLD and mixed["sensitivity"] == 0.95
    assert 0.4 < mixed["raised_from"] < 0.5
    probabilities = _softmax(logits)
    flagged = np.stack([probabilities[:, index] >= points[code]["threshold"] for index, code in codes.items()], 1)
    assert flagged.sum(axis=1).max() == 1 and not flagged[60].any()


def test_committed_bundle_refuses_a_radiograph():
    radiograph = next((ROOT / "examples" / "radiographs").glob("*.dcm"))
    with pytest.raises(OutOfScopeError):
        load_model(BUNDLE, threads=1).predict(radiograph)
