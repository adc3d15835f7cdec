"""The export stage for ``bone-tumor``: PyTorch -> ONNX agreement, bundle, training and evaluation scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import load_bundle
from radedge.pipeline import load_model

pytestmark = pytest.mark.needs_torch


def test_onnx_export_reproduces_pytorch(tmp_path: Path):
    import torch

    from radedge.export.loaders import OnnxFromTorch, SaveBundle, check_onnx_against_torch
    from radedge.export.models.bone_tumor import BoneTumorNet

    torch.manual_seed(0)
    model = BoneTumorNet().eval()
    names = ("lesion_logits", "tumor_logits")
    onnx_bytes = OnnxFromTorch(model, (1, 1, 256, 256), "image", names)()
    samples = np.random.default_rng(0).normal(size=(3, 1, 256, 256)).astype(np.float32)
    report = check_onnx_against_torch(model, onnx_bytes, samples, "image", names)
    assert report.samples == 3
    assert report.within(1e-4), report.max_abs_difference

    from tests.models.make_tiny import manifest

    body = manifest()
    body["input"]["shape"] = [1, 1, 256, 256]
    bundle = load_bundle(SaveBundle(onnx_bytes, body)(tmp_path / "bundle"))
    assert bundle.manifest.provenance["opset"] == 17
    import hashlib

    assert bundle.manifest.provenance["onnx_sha256"] == hashlib.sha256(onnx_bytes).hexdigest()


def test_operating_point_is_the_highest_threshold_meeting_the_sensitivity():
    from radedge.export.recipes.base import choose_threshold

    p = np.array([0.95, 0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.05])
    malignant = np.array([True, True, True, True, False, False, False, False])
    point = choose_threshold(p, malignant, 0.75)
    assert point["threshold"] == 0.8  # three of four malignant flagged
    assert point["sensitivity"] == 0.75 and point["specificity"] == 1.0
    point = choose_threshold(p, malignant, 0.95)
    assert point["threshold"] == 0.3
    assert point["sensitivity"] == 1.0 and point["specificity"] == 0.75


@pytest.mark.slow
def test_training_script_makes_a_bundle_the_sdk_runs_and_evaluates(tmp_path: Path):
    from radedge.export import train
    from radedge.export.recipes import recipe
    from radedge.export.recipes.base import HELD_OUT_SEED

    out = tmp_path / "bundle"
    assert train.main([
        "bone-tumor", "--train", "9", "--val", "6", "--epochs", "1", "--batch", "3", "--workers", "1",
        "--out", str(out), "--checkpoint", str(tmp_path / "bone-tumor.pt"), "--precision", "fp32", "fp16",
    ]) == 0
    bundle = load_bundle(out)
    assert bundle.manifest.model_id == "bone-tumor"
    assert (tmp_path / "bone-tumor.pt").stat().st_size > 100_000
    rule = bundle.manifest.head("tumor").flags[0]
    assert 0.0 <= rule.threshold <= 1.0 and rule.operating_point["chosen_on"] == "validation phantoms"
    assert bundle.manifest.provenance["onnx_vs_torch_max_abs_difference"]["tumor_logits"] < 1e-3
    # FP16 is written only when it passed its gate against FP32 on the validation phantoms.
    gate = json.loads(bundle.read("gate.json"))
    assert gate["precisions"]["fp16"]["written"] == ("fp16" in bundle.manifest.precisions)
    assert gate["validation"]["images"] == 6

    report = recipe("bone-tumor").evaluate(str(out), count=3, seed=HELD_OUT_SEED)
    assert report["phantoms"] == 3
    assert sum(map(sum, report["confusion"]["counts"])) == 3
    assert 0.0 <= report["dice_mean"] <= 1.0
    assert report["bundle_sha256"] == bundle.digest
    assert load_model(out).manifest.model_version == "0.1.0"
