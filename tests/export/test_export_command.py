"""``radedge export`` end to end: intake, the precisions, the gate's refusal, the bundle it writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import load_bundle
from radedge.cli import main
from radedge.spec import FlagRule, HeadSpec, Manifest, PreprocessSpec, Scope

pytestmark = pytest.mark.needs_torch

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").rglob("*.dcm"))


def _fragile_setup(tmp_path: Path):
    """The fragile model's state_dict, a manifest whose flag threshold splits the examples in
    two by the FP32 model's own probability, and a validation folder labelled the same way."""
    import torch

    from radedge.export.calibration import folder_set
    from tests.export.fragile import build

    model = build()
    checkpoint = tmp_path / "fragile.pt"
    torch.save(model.state_dict(), checkpoint)
    folder = tmp_path / "validation"
    folder.mkdir()
    for path in EXAMPLES:
        shutil.copy(path, folder / path.name)

    def manifest(threshold: float) -> Manifest:
        rule = FlagRule("FRAGILE_FLAG", "Fragile finding", "tumor", "malignant", threshold)
        return Manifest.create(
            model_id="fragile", model_version="0.0.1", description="deliberately fragile",
            preprocess=PreprocessSpec(64, 64, resize="letterbox"),
            heads=[HeadSpec("tumor", "classification", ("benign", "malignant"), "softmax", flags=(rule,))],
            scope=Scope(), display_head="tumor", input_name="image",
        )

    images = folder_set(folder, manifest(0.5)).images
    with torch.no_grad():
        probability = torch.softmax(model(torch.from_numpy(images)), dim=1)[:, 1].numpy()
    threshold = float(np.median(probability))
    assert probability.max() - probability.min() > 1e-3, "the examples should not all look alike"
    labels = {path.name: {"tumor": "malignant" if p >= threshold else "benign"}
              for path, p in zip(sorted(folder.iterdir()), probability)}
    (folder / "labels.json").write_text(json.dumps(labels))
    document = tmp_path / "manifest.json"
    document.write_text(json.dumps(manifest(threshold).to_document()))
    return checkpoint, document, folder


def test_fp16_of_a_fragile_model_is_refused_and_fp32_written(tmp_path, capsys):
    checkpoint, manifest, folder = _fragile_setup(tmp_path)
    out = tmp_path / "bundle"
    code = main(["export", str(checkpoint), "--factory", "tests.export.fragile:build", "--manifest", str(manifest),
                 "--precision", "fp32", "fp16", "--validation", str(folder), "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 1, printed.err
    assert "REFUSED" in printed.out and "refused fp16: head tumor: AUC of" in printed.out, printed.out
    bundle = load_bundle(out)
    assert set(bundle.manifest.precisions) == {"fp32"}
    assert "model.fp16.onnx" not in bundle.manifest.files and not (out / "model.fp16.onnx").exists()
    report = json.loads(bundle.read("gate.json"))
    fp16 = report["precisions"]["fp16"]
    assert fp16["written"] is False
    assert fp16["heads"]["tumor"]["auc_drop"] > 0.4
    assert any("flag decisions change" in text for text in fp16["failures"])
    assert report["precisions"]["fp32"]["written"] is True
    assert report["validation"]["images"] == len(EXAMPLES) and len(report["validation"]["sha256"]) == 64
    assert bundle.manifest.provenance["checkpoint_format"] == "state_dict"


def test_a_torchscript_checkpoint_exports_in_every_precision(tmp_path, capsys):
    import torch

    from tests.export.fragile import build

    checkpoint, manifest, folder = _fragile_setup(tmp_path)
    scripted = tmp_path / "fragile.ts"
    torch.jit.script(build()).save(str(scripted))
    out = tmp_path / "bundle"
    code = main(["export", str(scripted), "--manifest", str(manifest), "--precision", "fp32", "int8",
                 "--validation", str(folder), "--calibration", str(folder), "--out", str(out)])
    printed = capsys.readouterr()
    bundle = load_bundle(out)
    report = json.loads(bundle.read("gate.json"))
    assert bundle.manifest.provenance["checkpoint_format"] == "torchscript"
    assert report["calibration"]["images"] == len(EXAMPLES)
    assert bundle.manifest.provenance["calibration"]["sha256"] == report["calibration"]["sha256"]
    # INT8 keeps the head's final layer (the fragile Linear) in float, so it passes.
    assert code == 0, printed.out + printed.err
    assert set(bundle.manifest.precisions) == {"fp32", "int8"}
    assert bundle.manifest.precisions["int8"].gate["passed"] is True


def test_a_state_dict_without_recipe_or_factory_is_refused(tmp_path, capsys):
    checkpoint, manifest, folder = _fragile_setup(tmp_path)
    code = main(["export", str(checkpoint), "--manifest", str(manifest), "--validation", str(folder),
                 "--out", str(tmp_path / "bundle")])
    assert code == 7
    assert "--recipe NAME or --factory" in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()


def test_export_messages_escape_what_a_file_name_carries(tmp_path, capsys):
    # A checkpoint name with a terminal escape (clear screen) and a right-to-left override:
    # the refusal quotes the name, escaped, and nothing raw reaches the terminal.
    checkpoint = tmp_path / "model\x1b[2J\u202e.pt"
    code = main(["export", str(checkpoint), "--recipe", "bone-tumor", "--out", str(tmp_path / "bundle")])
    err = capsys.readouterr().err
    assert code == 7
    assert "\\x1b[2J\\u202e.pt" in err
    assert "\x1b" not in err and "\u202e" not in err


def test_int8_returns_the_layer_that_breaks_it_to_float(tmp_path):
    """conv1 makes a second channel of 1000 beside the image; conv2 reads both. One INT8 scale
    for conv2's input spans 0-1000, so the image rounds to 0 and the mask vanishes. The gate
    refuses that, the sensitivity search finds conv2, and INT8 with conv2 in float passes."""
    import torch

    from radedge.export.calibration import tensor_set
    from radedge.export.pipeline import export_bundle
    from radedge.spec import SegmentationDecode

    class Outlier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 2, 1)
            self.conv2 = torch.nn.Conv2d(2, 1, 1)
            self.head = torch.nn.Conv2d(1, 1, 1)
            with torch.no_grad():
                self.conv1.weight.copy_(torch.tensor([1.0, 0.0]).view(2, 1, 1, 1))
                self.conv1.bias.copy_(torch.tensor([0.0, 1000.0]))
                self.conv2.weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
                self.conv2.bias.zero_()
                self.head.weight.fill_(10.0)
                self.head.bias.fill_(-5.0)

        def forward(self, image):
            return self.head(self.conv2(self.conv1(image)))

    manifest = Manifest.create(
        model_id="outlier", model_version="0.0.1", description="an activation outlier",
        preprocess=PreprocessSpec(32, 32, resize="stretch"),
        heads=[HeadSpec("mask", "segmentation", ("region",), "sigmoid", SegmentationDecode(threshold=0.5))],
        scope=Scope(),
    )
    rng = np.random.default_rng(3)
    smooth = np.kron(rng.uniform(0, 1, (24, 1, 8, 8)), np.ones((4, 4))).astype(np.float32)
    report = export_bundle(Outlier().eval(), manifest, out=tmp_path / "bundle", precisions=("fp32", "int8"),
                           validation=tensor_set(smooth[:16], "validation"),
                           calibration=tensor_set(smooth[16:], "calibration"), progress=lambda _: None)
    assert report.written == ["fp32", "int8"], report.refused
    quantization = report.document["quantization"]
    assert list(quantization["returned_to_float"]) == ["/conv2/Conv"]
    assert report.verdicts["int8"].heads["mask"]["dice_mean"] >= 0.98


def test_export_signs_the_bundle_it_writes_and_checks_the_key_first(tmp_path, capsys):
    from radedge.bundle.signing import generate_key

    checkpoint, manifest, folder = _fragile_setup(tmp_path)
    generate_key(tmp_path / "release")
    out = tmp_path / "bundle"
    arguments = ["export", str(checkpoint), "--factory", "tests.export.fragile:build", "--manifest", str(manifest),
                 "--precision", "fp32", "--validation", str(folder), "--out", str(out)]
    assert main([*arguments, "--sign", str(tmp_path / "release.pub")]) == 3
    assert "private key" in capsys.readouterr().err.lower()
    assert not out.exists()
    assert main([*arguments, "--sign", str(tmp_path / "release")]) == 0
    bundle = load_bundle(out, trusted_keys=[tmp_path / "release.pub"])
    assert bundle.signature.state == "verified"
