"""Head names and schema versions: a schema 2 manifest names each head by what it means and
the ONNX output it reads apart; a schema 1 manifest (the output's name was the head's) still
loads, upgraded by the documented rule, and so does a bundle sealed with one."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from radedge.bundle import bundled_bundle_paths, load_bundle, write_bundle
from radedge.errors import BundleError
from radedge.pipeline import load_model
from radedge.spec import SCHEMA_VERSION, Manifest, ModelLicense, head_name_for_output, upgrade_document

from ..models.make_tiny import bundles, manifest, tiny_model
from ..synthetic import disc_image, dx_dataset


def _schema_1(document: dict) -> dict:
    """The tiny bone-tumour manifest as schema 1 wrote it: each head named by its output."""
    old = copy.deepcopy(document)
    for out in old["outputs"]:
        out["name"] = out.pop("tensor")
    old["display_head"] = "tumor_logits"
    old["outputs"][1]["flags"][0]["requires"] = [{"head": "lesion_logits", "label": "lesion", "threshold": 1.0}]
    old["precisions"] = {"fp32": {"file": "model.onnx", "gate": {"heads": {"lesion_logits": {"dice": 1.0},
                                                                         "tumor_logits": {"auc_drop": 0.0}}}}}
    old["provenance"] = {"validation": {"labelled_heads": ["tumor_logits"]},
                         "onnx_vs_torch_max_abs_difference": {"tumor_logits": 0.001}}
    old["schema_version"] = 1
    return old


def test_a_schema_1_manifest_is_upgraded_by_the_documented_rule():
    old = _schema_1(manifest())
    parsed = Manifest.from_document(old)
    assert parsed.schema_version == 1 and parsed.raw["outputs"][0]["name"] == "lesion_logits"
    assert [(head.name, head.tensors) for head in parsed.heads] == [("lesion", ("lesion_logits",)),
                                                                    ("tumor", ("tumor_logits",))]
    assert parsed.display_head == "tumor"
    assert parsed.flag_rules[1].requires[0].head == "lesion"
    assert set(parsed.precisions["fp32"].gate["heads"]) == {"lesion", "tumor"}
    assert parsed.provenance["validation"]["labelled_heads"] == ["tumor"]
    # Figures keyed by ONNX output keep their keys.
    assert parsed.provenance["onnx_vs_torch_max_abs_difference"] == {"tumor_logits": 0.001}
    upgraded = upgrade_document(old)
    assert upgraded["schema_version"] == SCHEMA_VERSION == 2
    assert Manifest.from_document(upgraded).heads == parsed.heads


def test_the_rule_keeps_a_name_that_would_collide_or_vanish():
    assert head_name_for_output("tumor_logits") == "tumor"
    assert head_name_for_output("levels") == "levels"
    assert head_name_for_output("_logits") == "_logits"
    assert head_name_for_output("tumor_logits", taken=["tumor"]) == "tumor_logits"
    old = _schema_1(manifest())
    old["outputs"][0]["name"] = "tumor"  # a segmentation head already called tumor
    old["outputs"][1]["flags"][0]["requires"][0]["head"] = "tumor"
    parsed = Manifest.from_document(old)
    assert [head.name for head in parsed.heads] == ["tumor", "tumor_logits"]
    assert parsed.display_head == "tumor_logits"


def test_a_schema_1_cam_and_second_stage_follow_the_rename():
    document, _ = bundles()["tiny_tumor_cls"]
    old = copy.deepcopy(document)
    old["outputs"][0]["name"] = "tumor_logits"
    old["outputs"][1]["decode"]["explains"] = "tumor_logits"
    old["display_head"] = "tumor_logits"
    old["input_region"]["head"] = "lesion_logits"  # bone-tumour's head, as schema 1 named it
    old["schema_version"] = 1
    parsed = Manifest.from_document(old)
    assert parsed.head("tumor_cam").decode.explains == "tumor"
    assert parsed.input_region.head == "lesion" and parsed.display_head == "tumor"


def test_schema_2_wants_snake_case_head_names():
    document = manifest()
    document["outputs"][1]["name"] = "Tumor-Class"
    document["display_head"] = None
    document["outputs"][1]["flags"] = []
    with pytest.raises(ValueError, match="snake_case"):
        Manifest.from_document({**document, "schema_version": SCHEMA_VERSION})
    # Schema 1 names came from ONNX and are taken as they are.
    assert Manifest.from_document({**document, "schema_version": 1}).heads[1].name == "Tumor-Class"


def _reseal_as_schema_1(directory: Path, document: dict) -> None:
    """Rewrite a bundle's manifest as schema 1, sealed by the documented rule (sha256 with the digest zeroed)."""
    path = directory / "manifest.json"
    body = json.loads(path.read_text())
    body.update({key: value for key, value in document.items() if key != "schema_version"})
    body["schema_version"] = 1
    body["manifest_sha256"] = "0" * 64
    text = json.dumps(body, indent=2) + "\n"
    path.write_text(text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest()))


def test_a_bundle_sealed_with_a_schema_1_manifest_loads_and_predicts_by_head_name(tmp_path):
    written = write_bundle(tmp_path / "old", manifest(), {"model.onnx": tiny_model()})
    old = _schema_1(manifest())
    del old["precisions"]
    _reseal_as_schema_1(written, old)
    bundle = load_bundle(written)
    assert bundle.manifest.schema_version == 1
    model = load_model(written)
    prediction = model.predict(dx_dataset(disc_image(400, 500, (250, 200), 120, 4000, 300)))
    assert set(prediction.heads) == {"lesion", "tumor"} and prediction.display_head == "tumor"
    assert prediction.segmentations["lesion"].region("lesion").pixel_count > 0
    assert all(flag.head in {"lesion", "tumor"} for flag in prediction.flags)


def test_a_schema_the_loader_does_not_know_is_refused(tmp_path):
    written = write_bundle(tmp_path / "future", manifest(), {"model.onnx": tiny_model()})
    _reseal_as_schema_1(written, manifest())
    path = written / "manifest.json"
    body = json.loads(path.read_text())
    body["schema_version"], body["manifest_sha256"] = 3, "0" * 64
    text = json.dumps(body, indent=2) + "\n"
    path.write_text(text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest()))
    with pytest.raises(BundleError, match="schema_version 3 is not supported by this radedge .supports 1, 2"):
        load_bundle(written)


@pytest.mark.parametrize("path", bundled_bundle_paths(), ids=lambda path: path.name)
def test_every_bundled_manifest_is_schema_2_with_its_terms(path):
    bundle = load_bundle(path)
    manifest = bundle.manifest
    assert manifest.schema_version == SCHEMA_VERSION
    for head, written in zip(manifest.heads, manifest.raw["outputs"]):
        assert not head.name.endswith("_logits"), head.name
        if head.kind != "detection":
            assert written["tensor"] == head.tensors[0]
    assert manifest.license == ModelLicense(
        "Apache-2.0",
        "A demonstration model of the radedge SDK, trained on synthetic phantoms only; not for clinical use.",
    )
    report = json.loads(bundle.read("gate.json"))
    for entry in report["precisions"].values():
        if "heads" in entry:
            assert set(entry["heads"]) <= {head.name for head in manifest.heads}


def test_a_malformed_license_is_refused():
    document = manifest()
    document["license"] = {"id": "Apache-2.0"}
    with pytest.raises(ValueError, match="license must be"):
        Manifest.from_document({**document, "schema_version": SCHEMA_VERSION})


def test_radedge_inspect_shows_the_terms():
    import subprocess
    import sys

    shown = subprocess.run([sys.executable, "-m", "radedge", "inspect"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "  terms      Apache-2.0: A demonstration model of the radedge SDK, trained on synthetic phantoms only; " \
           "not for clinical use." in shown.stdout.splitlines()
    tiny = subprocess.run([sys.executable, "-m", "radedge", "inspect", str(Path(__file__).parents[1] / "models" /
                                                                            "tiny_bone_tumor")],
                          capture_output=True, text=True, timeout=120)
    assert "  terms      none given" in tiny.stdout.splitlines()
