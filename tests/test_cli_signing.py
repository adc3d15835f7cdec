"""``radedge keygen`` / ``sign`` and ``--trust`` / ``--precision``, run as an operator runs them:
real subprocesses on real files."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from radedge.bundle import write_bundle

from .models import tiny
from .models.make_tiny import manifest, tiny_model
from .synthetic import disc_image, dx_dataset, to_bytes

GATE = {"passed": True, "heads": {"tumor": {"auc_drop": 0.0012, "flag_changes": 0.0}}}


def radedge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radedge", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> dict[str, Path]:
    """A key pair made and a bundle (FP32 + FP16) signed through the CLI, and a stranger's key."""
    folder = tmp_path_factory.mktemp("cli-signing")
    made = radedge("keygen", "--out", str(folder / "release"))
    assert made.returncode == 0, made.stderr
    assert radedge("keygen", "--out", str(folder / "stranger")).returncode == 0
    body = {**manifest(), "precisions": {"fp32": {"file": "model.onnx"},
                                         "fp16": {"file": "model.fp16.onnx", "gate": GATE}}}
    bundle = write_bundle(folder / "bundle", body, {"model.onnx": tiny_model(), "model.fp16.onnx": tiny_model()})
    signing = radedge("sign", str(bundle), "--key", str(folder / "release"))
    assert signing.returncode == 0, signing.stderr
    key_id = made.stdout.split()[1]
    assert signing.stdout.strip() == f"signed {bundle} with key {key_id}"
    image = folder / "femur.dcm"
    image.write_bytes(to_bytes(dx_dataset(disc_image(300, 300, (150, 150), 60, 3900, 2250))))
    return {"folder": folder, "key": folder / "release", "pub": folder / "release.pub",
            "stranger": folder / "stranger.pub", "bundle": bundle, "image": image, "key_id": key_id}


def test_keygen_writes_an_owner_only_key_and_refuses_to_overwrite_it(signed):
    key = signed["key"]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert signed["pub"].read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = key.read_bytes()
    again = radedge("keygen", "--out", str(key))
    assert again.returncode == 5 and "never overwrites a key" in again.stderr
    assert key.read_bytes() == before


def test_inspect_shows_the_signature_and_each_precision_with_its_gate(signed):
    checked = radedge("inspect", str(signed["bundle"]), "--trust", str(signed["pub"]))
    assert checked.returncode == 0, checked.stderr
    assert f"  signature  signed by key {signed['key_id']}, verified\n" in checked.stdout
    lines = checked.stdout.splitlines()
    block = lines[lines.index("  precisions") + 1:]
    assert block[0].split() == ["fp32", "model.onnx"]
    assert block[1].split()[:2] == ["fp16", "model.fp16.onnx"]
    assert "gate passed; tumor: auc_drop 0.0012, flag_changes 0" in block[1]

    unchecked = radedge("inspect", str(signed["bundle"]))
    assert f"signed by key {signed['key_id']}, not checked: no trusted keys given" in unchecked.stdout

    unsigned = radedge("inspect", str(tiny("tiny_bone_tumor")))
    assert unsigned.returncode == 0
    assert "  signature  UNSIGNED: nothing proves who sealed this bundle" in unsigned.stdout

    stranger = radedge("inspect", str(signed["bundle"]), "--trust", str(signed["stranger"]))
    assert stranger.returncode == 3 and "which is not trusted here" in stranger.stderr


def test_run_with_trust_runs_a_signed_bundle_at_the_chosen_precision(signed, tmp_path: Path):
    result = radedge("run", str(signed["image"]), "--model", str(signed["bundle"]), "--trust", str(signed["stranger"]),
                     "--trust", str(signed["pub"]), "--precision", "fp16", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    model_line = result.stdout.splitlines()[0]
    assert model_line.startswith("model tiny-bone-tumor 1.0.0")
    assert f"fp16, signed by key {signed['key_id']}, verified" in model_line
    provenance = json.loads((tmp_path / "femur.json").read_text())["models"]["tiny-bone-tumor"]["provenance"]
    assert provenance["precision"] == "fp16" and provenance["gate"] == GATE
    assert provenance["signature"] == {"state": "verified", "key_id": signed["key_id"]}


def test_run_refuses_what_the_trusted_keys_did_not_sign(signed, tmp_path: Path):
    unsigned = radedge("run", str(signed["image"]), "--model", str(tiny("tiny_bone_tumor")),
                       "--trust", str(signed["pub"]))
    assert unsigned.returncode == 3
    assert "cannot load the model" in unsigned.stderr and "is unsigned" in unsigned.stderr

    resealed = tmp_path / "resealed"
    shutil.copytree(signed["bundle"], resealed)
    document = json.loads((resealed / "manifest.json").read_text())
    document["outputs"][1]["flags"][0]["threshold"] = 1.01
    write_bundle(resealed, {key: value for key, value in document.items()
                            if key not in ("files", "manifest_sha256", "schema_version")},
                 {name: (resealed / name).read_bytes() for name in document["files"]})
    refused = radedge("run", str(signed["image"]), "--model", str(resealed), "--trust", str(signed["pub"]))
    assert refused.returncode == 3 and "changed or resealed after signing" in refused.stderr

    lacking = radedge("run", str(signed["image"]), "--model", str(signed["bundle"]), "--precision", "int8")
    assert lacking.returncode == 3 and "has no int8 model; it carries fp32, fp16" in lacking.stderr

    unchecked = radedge("run", str(signed["image"]), "--model", str(tiny("tiny_bone_tumor")))
    assert unchecked.returncode == 0 and "(bundle " in unchecked.stdout and ", fp32, unsigned) on " in unchecked.stdout


def test_models_with_trust_lists_the_signed_and_names_the_refused(signed):
    result = radedge("models", "--model", str(signed["bundle"]), "--model", str(tiny("tiny_spine")),
                     "--trust", str(signed["pub"]), "--json")
    assert result.returncode == 3
    records = json.loads(result.stdout)
    assert [record["id"] for record in records] == ["tiny-bone-tumor"]
    assert records[0]["signature"] == {"state": "verified", "key_id": signed["key_id"]}
    assert records[0]["precisions"] == {"fp32": "model.onnx", "fp16": "model.fp16.onnx"}
    assert "tiny_spine" in result.stderr and "is unsigned" in result.stderr
