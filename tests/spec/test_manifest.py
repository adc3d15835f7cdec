"""The manifest schema refuses what cannot work when the bundle loads, saying what to fix."""

from __future__ import annotations

import copy

import pytest

from radedge.bundle import load_bundle, write_bundle
from radedge.errors import BundleError
from radedge.pipeline import load_model
from radedge.spec import SCHEMA_VERSION, DetectionDecode, HeadSpec, HeatmapDecode, Manifest, Scope

from ..models.make_tiny import bundles, manifest

DOCUMENTS = {name: document for name, (document, _) in bundles().items()}


def _parse(document: dict) -> Manifest:
    return Manifest.from_document({**document, "schema_version": SCHEMA_VERSION})


def _edited(name: str, edit) -> dict:
    document = copy.deepcopy(DOCUMENTS[name])
    edit(document)
    return document


def test_every_tiny_manifest_parses_into_typed_heads():
    spine = _parse(DOCUMENTS["tiny_spine"])
    assert isinstance(spine.head("levels").decode, HeatmapDecode) and spine.head("levels").decode.mode == "argmax"
    assert spine.flag_rules[0].locate_with == "levels" and spine.flag_rules[0].needs_where
    detector = _parse(DOCUMENTS["tiny_detector"])
    decode = detector.head("findings").decode
    assert isinstance(decode, DetectionDecode) and decode.levels[0].stride == 8.0
    assert detector.tensors == ("cls", "reg")
    quality = _parse(DOCUMENTS["tiny_bone_quality"])
    assert quality.display_head == "quality" and quality.flag_rules[0].requires[0].head == "lytic"
    second = _parse(DOCUMENTS["tiny_tumor_cls"])
    assert second.input_region.model == "tiny-bone-tumor" and second.input_region.margin == 0.1


@pytest.mark.parametrize(
    "name, edit, message",
    [
        ("tiny_bone_tumor", lambda d: d["outputs"][0].update(kind="keypoints"), "kind 'keypoints' is not one of"),
        ("tiny_bone_tumor", lambda d: d["outputs"][1]["flags"][0].update(label="cancer"),
         "refers to label 'cancer'"),
        ("tiny_bone_tumor", lambda d: d["outputs"][1]["flags"][0].update(title="Lesion at {where}"),
         "give locate_with"),
        ("tiny_bone_tumor", lambda d: d["outputs"][1]["flags"][0].update(title="Lesion {size}"),
         "may hold {label} and {where} only"),
        ("tiny_bone_tumor", lambda d: d["outputs"][0].update(activation="tanh"), "activation must be"),
        ("tiny_bone_tumor", lambda d: d["outputs"][0].update(decode={"threshold": 0.5, "smooth": True}),
         "unknown smooth"),
        ("tiny_bone_tumor", lambda d: d.update(display_head="nowhere"), "display_head 'nowhere'"),
        ("tiny_bone_tumor", lambda d: d["scope"].update(ages=["adult"]), "scope has unknown ages"),
        ("tiny_detector", lambda d: d["outputs"][0]["decode"].update(levels=[]), "needs decode.levels"),
        ("tiny_detector", lambda d: d["outputs"][0]["decode"].update(iou_threshold=1.5), "iou_threshold"),
        ("tiny_spine", lambda d: d["outputs"][1]["flags"][0].update(locate_with="fracture_maps"),
         "locate_with 'fracture_maps' is not a heatmap head"),
        ("tiny_spine", lambda d: d["outputs"][0]["decode"].update(k=0), "k must be an integer from 1"),
        ("tiny_bone_quality", lambda d: d["outputs"][0]["flags"][0]["requires"][0].update(head="sclerotic"),
         "reads head 'sclerotic'"),
        ("tiny_tumor_cls", lambda d: d["outputs"][1]["decode"].update(explains="tumor_cam"),
         "not a classification head"),
        ("tiny_tumor_cls", lambda d: d["outputs"][1].update(labels=["a", "b"]), "a cam has one map per class"),
        ("tiny_tumor_cls", lambda d: d["input_region"].update(model="tiny-tumor-cls"), "names this model itself"),
        ("tiny_tumor_cls", lambda d: d["input_region"].update(box="lesion"), "input_region has unknown box"),
    ],
)
def test_malformed_manifests_are_refused_with_the_reason(tmp_path, name, edit, message):
    document, model = bundles()[name]
    broken = _edited(name, edit)
    with pytest.raises(ValueError, match=message.replace("{", "\\{").replace("}", "\\}").replace("(", "\\(")):
        _parse(broken)
    # The same manifest in a bundle is refused when the bundle loads.
    with pytest.raises(BundleError, match="manifest.json has a malformed field"):
        load_bundle(write_bundle(tmp_path / name, broken, {"model.onnx": model}))


def test_heads_that_read_missing_tensors_are_refused_at_load(tmp_path):
    document, model = bundles()["tiny_detector"]
    document["outputs"][0]["decode"]["levels"][0]["centerness"] = "ctr"
    with pytest.raises(BundleError, match=r"read outputs \['ctr'\] but the model produces"):
        load_model(write_bundle(tmp_path / "bundle", document, {"model.onnx": model}))


def test_the_old_single_tensor_form_still_parses():
    parsed = _parse(manifest())
    assert [head.tensors for head in parsed.heads] == [("lesion_logits",), ("tumor_logits",)]
    assert parsed.flag_rules[1].conditions[0].label == "malignant"


def test_spec_types_check_their_own_values():
    with pytest.raises(ValueError, match="scope.modalities must be a list"):
        Scope(modalities="DX")
    with pytest.raises(ValueError, match="repeats a label"):
        HeadSpec("h", "classification", ("a", "a"), "softmax")


@pytest.mark.parametrize(
    ("codes", "says"),
    [
        ({"c": {"value": "1", "scheme": "SCT", "meaning": "C"}}, "not one of"),
        ({"a": {"value": "52988006", "scheme": "SCT"}}, "value, scheme and meaning"),
        ({"a": {"value": "", "scheme": "SCT", "meaning": "Lesion"}}, "value, scheme and meaning"),
        ({"a": "SCT 52988006"}, "value, scheme and meaning"),
    ],
)
def test_label_codes_are_checked_when_the_manifest_is_read(codes, says):
    # DICOM outputs code each label from here; a code they could not write is refused at load.
    with pytest.raises(ValueError, match=says):
        HeadSpec("h", "classification", ("a", "b"), "softmax", codes=codes)
    assert HeadSpec("h", "classification", ("a", "b"), "softmax",
                    codes={"a": {"value": "52988006", "scheme": "SCT", "meaning": "Lesion"}}).codes
