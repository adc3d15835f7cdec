"""``tumor-cls``: the ResNet50 topology and its CAM, backbone weight loading, the training crop
against the SDK's region, training and export as a second stage, the committed bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import bundled_models_path, load_bundle
from radedge.pipeline import load_model, load_models

pytestmark = pytest.mark.needs_torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "radiographs"


def _bottlenecks(model) -> list[int]:
    from radedge.export.models.tumor_cls import Bottleneck

    return [sum(isinstance(block, Bottleneck) for block in stage)
            for stage in (model.layer1, model.layer2, model.layer3, model.layer4)]


@pytest.mark.parametrize("width", [1.0, 0.125])
def test_topology_is_resnet50_bottlenecks_3_4_6_3(width: float):
    from radedge.export.models.tumor_cls import TumorClsNet

    model = TumorClsNet(width=width)
    assert _bottlenecks(model) == [3, 4, 6, 3]
    block = model.layer2[0]
    assert block.conv2.stride == (2, 2) and block.conv1.kernel_size == (1, 1) and block.conv3.kernel_size == (1, 1)
    assert block.conv3.out_channels == 4 * block.conv1.out_channels  # expansion 4
    assert model.features == round(2048 * width)
    if width == 1.0:
        # torchvision's resnet50 has 23,508,032 parameters before its 1000-class fc (2048 x 1000 + 1000):
        # with one grey input channel instead of three, 64 x 2 x 7 x 7 fewer, and a 2-class 1 x 1 head.
        parameters = sum(p.numel() for p in model.parameters())
        assert parameters == 23_508_032 - 64 * 2 * 49 + 2048 * 2 + 2


def test_options_configure_the_architecture_the_recipe_builds():
    from radedge.export.recipes import recipe

    tumor_cls = recipe("tumor-cls")
    assert tumor_cls.build_model().conv1.out_channels == 8  # the committed width, 1/8 of ResNet50's 64
    assert tumor_cls.with_options({"width": "1"}).build_model().features == 2048
    assert tumor_cls.with_options({"pretrain": "0"}).choices.pretrain is False
    with pytest.raises(ValueError, match="width must be in"):
        tumor_cls.with_options({"width": "2"})
    with pytest.raises(ValueError, match="add --set width=1"):
        tumor_cls.with_options({"backbone_weights": __file__})
    bone_tumor = recipe("bone-tumor")
    assert bone_tumor.with_options({}) is bone_tumor  # recipes without architecture options are unchanged


def test_logits_are_the_average_of_the_class_activation_maps():
    import torch

    from radedge.export.models.tumor_cls import TumorClsNet

    torch.manual_seed(0)
    model = TumorClsNet(width=0.125)
    for module in model.modules():  # leave the zero-initialised residual branches, so the maps vary
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    model.eval()
    image = torch.randn(2, 1, 160, 160)
    with torch.no_grad():
        logits, cam = model(image)
        pooled = model.classifier.weight[:, :, 0, 0] @ model.backbone(image).mean(dim=(2, 3)).T
    assert cam.shape == (2, 2, 5, 5)
    assert float(cam.std(dim=(2, 3)).min()) > 1e-3  # a map, not a constant
    torch.testing.assert_close(logits, cam.mean(dim=(2, 3)))
    # ... which is global average pooling followed by the linear classifier, ResNet50's own head.
    torch.testing.assert_close(logits, pooled.T + model.classifier.bias, rtol=1e-4, atol=1e-5)


def test_backbone_weights_load_from_torchvision_names_and_refuse_a_mismatch(tmp_path: Path):
    import torch

    from radedge.export.models.tumor_cls import TumorClsNet, load_backbone

    torch.manual_seed(1)
    vendor = TumorClsNet(width=1.0, in_channels=3)
    state = {key: value for key, value in vendor.state_dict().items() if not key.startswith("classifier.")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)  # torchvision's own head
    assert "layer1.0.conv1.weight" in state and "layer4.2.bn3.running_var" in state and "conv1.weight" in state
    path = tmp_path / "resnet50.pt"
    torch.save(state, path)

    model = TumorClsNet(width=1.0)
    loaded = load_backbone(model, torch.load(path, weights_only=True))
    assert "classifier.weight" not in loaded and "fc.weight" not in loaded
    assert torch.equal(model.layer3[5].conv2.weight, vendor.layer3[5].conv2.weight)
    assert torch.equal(model.layer4[2].bn3.running_var, vendor.layer4[2].bn3.running_var)
    # RGB filters summed: the grey image in all three channels.
    torch.testing.assert_close(model.conv1.weight, vendor.conv1.weight.sum(dim=1, keepdim=True))

    with pytest.raises(ValueError, match="width 0.125; vendor weights need the full-width ResNet50"):
        load_backbone(TumorClsNet(width=0.125), state)
    wrong = dict(state)
    wrong["layer2.1.conv2.weight"] = torch.zeros(128, 128, 1, 1)
    with pytest.raises(ValueError, match=r"layer2.1.conv2.weight \(128, 128, 1, 1\)"):
        load_backbone(TumorClsNet(width=1.0), wrong)
    with pytest.raises(ValueError, match="lack 5 of"):  # a ResNet50 cut short: layer4.2's conv3 + bn3
        load_backbone(TumorClsNet(width=1.0),
                      {k: v for k, v in state.items() if not k.startswith(("layer4.2.conv3", "layer4.2.bn3"))})


def test_training_crop_is_the_region_the_sdk_analyses_for_the_same_box():
    from radedge.export import phantoms
    from radedge.export.recipes.base import dicom_bytes
    from radedge.export.recipes.tumor_cls import RECIPE, lesion_box, region
    from radedge.spec import grow_box

    bundle = load_bundle(bundled_models_path() / "tumor-cls")
    margin = bundle.manifest.input_region.margin
    seed = 11
    sample = RECIPE.sample(seed)
    phantom = phantoms.long_bone_radiograph(seed, label="malignant")
    box = lesion_box(phantom)
    assert phantom.lesion_mask[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])].sum() == phantom.lesion_mask.sum()
    crop = region(box, phantom.rows, phantom.columns)
    assert crop == grow_box(box, margin, phantom.rows, phantom.columns)
    assert crop.width > (box[2] - box[0]) * (1 + margin)  # grown on both sides

    model = load_model(bundle, threads=1)
    prediction = model.predict(dicom_bytes(phantom), region=crop)
    assert prediction.geometry.crop == crop
    np.testing.assert_array_equal(model.plan.context().input[0], sample["image"])


def test_committed_bundle_on_the_examples_runs_after_bone_tumor_and_shows_its_cam():
    truth = {item["file"]: item for item in json.loads((EXAMPLES / "ground_truth.json").read_text())["items"]}
    models = load_models(threads=1)
    loaded = [m.model_id for m in models]
    assert loaded.index("bone-tumor") < loaded.index("tumor-cls")  # the first stage runs first
    verdicts = {}
    for name, item in truth.items():
        if item["kind"] != "long_bone":
            continue
        analysis = models.predict(EXAMPLES / name)
        prediction = analysis.predictions.get("tumor-cls")
        if item["label"] == "no_tumour" and prediction is None:
            assert "found no lesion" in analysis.not_applied["tumor-cls"]
            verdicts[name] = None
            continue
        assert prediction is not None, analysis.not_applied
        cam = prediction.heads["malignancy_cam"]
        assert cam.values.shape == (5, 5) and cam.label == prediction.classifications["malignancy"].top_label
        x, y = cam.peak_xy
        crop = prediction.geometry.crop
        assert crop.x <= x <= crop.x + crop.width and crop.y <= y <= crop.y + crop.height
        verdicts[name] = prediction.classifications["malignancy"].top_label
    lesions = {name: verdict for name, verdict in verdicts.items() if truth[name]["label"] != "no_tumour"}
    assert lesions == {name: truth[name]["label"] for name in lesions}


@pytest.mark.slow
@pytest.mark.parametrize("pretrain", ["1", "0"])
def test_one_tiny_epoch_makes_a_second_stage_bundle_the_sdk_runs(tmp_path: Path, pretrain: str):
    import torch

    from radedge.export import train
    from radedge.export.recipes import recipe
    from radedge.export.recipes.base import HELD_OUT_SEED

    out = tmp_path / "bundle"
    assert train.main([
        "tumor-cls", "--train", "4", "--val", "4", "--epochs", "1", "--batch", "4", "--workers", "1",
        "--threads", "1", "--out", str(out), "--checkpoint", str(tmp_path / "tumor-cls.pt"), "--precision", "fp32",
        "--set", f"pretrain={pretrain}", "--set", "width=0.0625",
    ]) == 0
    bundle = load_bundle(out)
    manifest = bundle.manifest
    assert manifest.input_region.model == "bone-tumor" and manifest.input_region.head == "lesion"
    assert manifest.head("malignancy_cam").decode.explains == "malignancy"
    training = manifest.provenance["training"]
    assert training["width"] == 0.0625
    state = torch.load(tmp_path / "tumor-cls.pt", weights_only=True)["state_dict"]
    assert state["conv1.weight"].shape == (4, 1, 7, 7) and state["classifier.weight"].shape == (2, 128, 1, 1)
    if pretrain == "1":
        assert training["backbone"]["regions"] == 4 * 4
    else:
        assert training["backbone"].startswith("random initialisation")
    report = recipe("tumor-cls").evaluate(str(out), count=2, seed=HELD_OUT_SEED, threads=1)
    assert report["phantoms"] == 2 and report["bundle_sha256"] == bundle.digest
    assert report["given_region"]["shift 25 %"]["boxes"] == 2 * 4
    assert report["second_stage"]["analysed"] + report["second_stage"]["not_analysed_no_lesion_found"] == 2


@pytest.mark.slow
def test_full_width_resnet50_exports_and_matches_in_onnx_runtime():
    import torch

    from radedge.export.loaders import OnnxFromTorch, check_onnx_against_torch
    from radedge.export.models.tumor_cls import TumorClsNet
    from radedge.export.pipeline import ONNX_ATOL, ONNX_RTOL

    torch.manual_seed(0)
    model = TumorClsNet(width=1.0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    model.eval()
    names = ("malignancy", "malignancy_cam")
    onnx_bytes = OnnxFromTorch(model, (1, 1, 160, 160), "image", names)()
    assert len(onnx_bytes) > 90_000_000  # 23.5 M float32 parameters
    samples = np.random.default_rng(0).normal(size=(2, 1, 160, 160)).astype(np.float32)
    report = check_onnx_against_torch(model, onnx_bytes, samples, "image", names)
    assert report.within(atol=ONNX_ATOL, rtol=ONNX_RTOL), report.max_abs_difference
    assert report.max_abs_reference["malignancy_cam"] > 1e-2
