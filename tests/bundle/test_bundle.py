"""Bundles: written, sealed, verified, and refused when any byte changes."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from radedge.bundle import default_bundle_path, load_bundle, pack_bundle, write_bundle
from radedge.errors import BundleError, BundleIntegrityError

from ..models.make_tiny import manifest, tiny_model

TINY = Path(__file__).parents[1] / "models" / "tiny_bone_tumor"


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", manifest(), {"model.onnx": tiny_model()})


def test_written_bundle_loads_with_its_manifest(bundle_dir: Path):
    bundle = load_bundle(bundle_dir)
    assert bundle.manifest.model_id == "tiny-bone-tumor"
    assert bundle.manifest.input_shape == (1, 1, 64, 64)
    assert bundle.manifest.preprocess.mean == (0.5,)
    rule = bundle.manifest.head("tumor").flags[0]
    assert (rule.code, rule.label, rule.threshold) == ("SUSPECTED_MALIGNANT_BONE_LESION", "malignant", 0.5)
    assert bundle.read("model.onnx") == tiny_model()
    assert len(bundle.digest) == 64


def test_committed_tiny_bundle_is_what_the_script_makes(tmp_path: Path):
    fresh = write_bundle(tmp_path / "fresh", manifest(), {"model.onnx": tiny_model()})
    assert load_bundle(TINY).digest == load_bundle(fresh).digest


def test_bundled_demo_model_verifies():
    bundle = load_bundle(None)
    assert bundle.location == str(default_bundle_path())
    assert bundle.manifest.model_id == "bone-tumor"
    assert {h.kind for h in bundle.manifest.heads} == {"segmentation", "classification"}
    assert bundle.manifest.provenance["checkpoint_sha256"]


@pytest.mark.parametrize("position", [0, 100, -1, "middle"])
def test_a_changed_byte_in_the_model_is_refused(bundle_dir: Path, position):
    model = bundle_dir / "model.onnx"
    data = bytearray(model.read_bytes())
    index = len(data) // 2 if position == "middle" else position
    data[index] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="model.onnx does not match the sha256"):
        load_bundle(bundle_dir)


def test_every_single_byte_of_the_manifest_is_covered(bundle_dir: Path):
    path = bundle_dir / "manifest.json"
    original = path.read_bytes()
    # Every position, including whitespace and the digest itself: each change must be refused.
    for index in range(0, len(original), 7):
        changed = bytearray(original)
        changed[index] = ord(" ") if changed[index] != ord(" ") else ord("\t")
        path.write_bytes(bytes(changed))
        with pytest.raises(BundleError):
            load_bundle(bundle_dir)
    path.write_bytes(original)
    load_bundle(bundle_dir)


def test_an_edited_threshold_is_refused(bundle_dir: Path):
    path = bundle_dir / "manifest.json"
    text = path.read_text().replace('"threshold": 0.5', '"threshold": 0.9', 1)
    assert text != path.read_text()
    path.write_text(text)
    with pytest.raises(BundleIntegrityError, match="changed after export"):
        load_bundle(bundle_dir)


def test_truncated_and_missing_files_are_refused(bundle_dir: Path):
    model = bundle_dir / "model.onnx"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleIntegrityError, match="truncated or was modified"):
        load_bundle(bundle_dir)
    model.unlink()
    with pytest.raises(BundleIntegrityError, match="model.onnx is missing"):
        load_bundle(bundle_dir)


def test_missing_bundle_says_what_a_bundle_is(tmp_path: Path):
    with pytest.raises(BundleError, match="expected a directory holding manifest.json"):
        load_bundle(tmp_path / "nowhere")


def test_unsupported_schema_and_bad_flag_label_are_refused(tmp_path: Path):
    body = manifest()
    body["outputs"][1]["flags"][0]["label"] = "aggressive"
    written = write_bundle(tmp_path / "badlabel", body, {"model.onnx": tiny_model()})
    with pytest.raises(BundleError, match="aggressive"):
        load_bundle(written)


    written = write_bundle(tmp_path / "schema", manifest(), {"model.onnx": tiny_model()})
    path = written / "manifest.json"
    text = path.read_text()
    digest = json.loads(text)["manifest_sha256"]
    # Reseal by the documented rule (sha256 with the digest zeroed), so only the schema check can refuse it.
    text = text.replace('"schema_version": 2', '"schema_version": 99').replace(digest, "0" * 64)
    path.write_text(text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest()))
    with pytest.raises(BundleError, match="schema_version 99 is not supported"):
        load_bundle(written)


def test_radedge_zip_round_trip_and_tamper(bundle_dir: Path, tmp_path: Path):
    archive = pack_bundle(bundle_dir, tmp_path / "tiny.radedge")
    loaded = load_bundle(archive)
    assert loaded.digest == load_bundle(bundle_dir).digest
    assert loaded.read("model.onnx") == tiny_model()

    tampered = tmp_path / "tampered.radedge"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            data = bytearray(source.read(name))
            if name == "model.onnx":
                data[-1] ^= 0xFF
            target.writestr(name, bytes(data))
    with pytest.raises(BundleIntegrityError):
        load_bundle(tampered)

    truncated = tmp_path / "truncated.radedge"
    truncated.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(BundleIntegrityError, match="truncated or not a bundle"):
        load_bundle(truncated)


def test_manifest_listing_a_path_outside_the_bundle_is_refused(bundle_dir: Path, tmp_path: Path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the bundle")
    copy = tmp_path / "escape"
    shutil.copytree(bundle_dir, copy)
    text = (copy / "manifest.json").read_text().replace('"model.onnx": {', '"../secret.txt": {', 1)
    digest = json.loads(text)["manifest_sha256"]
    # Resealed by the documented rule, so the name check, not the checksum, is what refuses it.
    text = text.replace(digest, "0" * 64)
    (copy / "manifest.json").write_text(text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest()))
    with pytest.raises(BundleIntegrityError, match="outside the bundle"):
        load_bundle(copy)
