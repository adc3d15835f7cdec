"""Signed bundles: a key pair signs the manifest; a loader given trusted keys refuses anything
one of them did not sign, a resealed manifest included; without keys it loads and says so."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from radedge.bundle import (
    SIGNATURE,
    generate_key,
    key_id,
    load_bundle,
    load_public_key,
    pack_bundle,
    sign_bundle,
    write_bundle,
)
from radedge.errors import BundleIntegrityError, BundleSignatureError
from radedge.pipeline import load_model

from ..models.make_tiny import manifest, tiny_model
from ..synthetic import disc_image, dx_dataset, to_bytes


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two key pairs: ``signer`` signs, ``stranger`` is someone else."""
    folder = tmp_path_factory.mktemp("keys")
    generate_key(folder / "signer")
    generate_key(folder / "stranger")
    return {"signer": folder / "signer", "stranger": folder / "stranger"}


def _pub(key: Path) -> Path:
    return Path(f"{key}.pub")


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", manifest(), {"model.onnx": tiny_model()})


def test_generate_key_writes_an_owner_only_private_key_and_its_public_key(tmp_path: Path):
    path = tmp_path / "keys" / "release"
    identifier = generate_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    public_pem = _pub(path).read_bytes()
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert identifier == hashlib.sha256(raw).hexdigest()[:16] == key_id(load_public_key(_pub(path)))
    assert not [name for name in os.listdir(path.parent) if name.startswith(".")]  # no temporary left behind


def test_generate_key_never_overwrites(tmp_path: Path):
    path = tmp_path / "release"
    generate_key(path)
    private, public = path.read_bytes(), _pub(path).read_bytes()
    with pytest.raises(FileExistsError, match="never overwrites a key"):
        generate_key(path)
    _pub(path).unlink()
    with pytest.raises(FileExistsError):
        generate_key(path)  # the private key alone is enough to refuse
    assert path.read_bytes() == private
    other_public = tmp_path / "lone"
    Path(f"{other_public}.pub").write_bytes(public)
    with pytest.raises(FileExistsError):
        generate_key(other_public)  # and so is the public key alone
    assert not other_public.exists()


def test_a_signed_directory_verifies_with_its_key(bundle_dir: Path, keys):
    digest = load_bundle(bundle_dir).digest
    identifier = sign_bundle(bundle_dir, keys["signer"])
    document = json.loads((bundle_dir / SIGNATURE).read_text())
    assert document["algorithm"] == "Ed25519" and document["key_id"] == identifier
    assert len(base64.b64decode(document["signature"])) == 64

    bundle = load_bundle(bundle_dir, trusted_keys=[_pub(keys["signer"]), _pub(keys["stranger"])])
    assert (bundle.signature.state, bundle.signature.key_id) == ("verified", identifier)
    assert bundle.signature.describe() == f"signed by key {identifier}, verified"
    assert bundle.digest == digest  # signing leaves the manifest as it was
    assert SIGNATURE not in bundle.manifest.files

    unchecked = load_bundle(bundle_dir)
    assert (unchecked.signature.state, unchecked.signature.key_id) == ("not checked", identifier)
    assert unchecked.signature.describe() == f"signed by key {identifier}, not checked: no trusted keys given"


def test_a_key_object_is_a_trusted_key_too(bundle_dir: Path, keys):
    sign_bundle(bundle_dir, keys["signer"])
    public = serialization.load_pem_public_key(_pub(keys["signer"]).read_bytes())
    assert load_bundle(bundle_dir, trusted_keys=[public]).signature.state == "verified"


def test_a_signed_zip_verifies_and_packing_carries_the_signature(tmp_path: Path, bundle_dir: Path, keys):
    archive = pack_bundle(bundle_dir, tmp_path / "tiny.radedge")
    assert load_bundle(archive).signature.state == "unsigned"
    identifier = sign_bundle(archive, keys["signer"])
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "manifest.sig", "model.onnx"]
    bundle = load_bundle(archive, trusted_keys=[_pub(keys["signer"])])
    assert (bundle.signature.state, bundle.signature.key_id) == ("verified", identifier)
    assert bundle.read("model.onnx") == tiny_model()

    sign_bundle(bundle_dir, keys["signer"])
    packed = pack_bundle(bundle_dir, tmp_path / "packed.radedge")
    assert load_bundle(packed, trusted_keys=[_pub(keys["signer"])]).signature.state == "verified"


def test_an_unsigned_bundle_is_refused_when_keys_are_trusted(bundle_dir: Path, keys):
    with pytest.raises(BundleSignatureError, match=r"is unsigned.*sign_bundle"):
        load_bundle(bundle_dir, trusted_keys=[_pub(keys["signer"])])


def test_a_bundle_signed_by_another_key_is_refused(bundle_dir: Path, keys):
    stranger = sign_bundle(bundle_dir, keys["stranger"])
    signer = key_id(load_public_key(_pub(keys["signer"])))
    with pytest.raises(BundleSignatureError, match=f"signed by key {stranger}, which is not trusted here .*{signer}"):
        load_bundle(bundle_dir, trusted_keys=[_pub(keys["signer"])])


def test_a_resealed_manifest_keeps_its_checksums_but_loses_its_signature(bundle_dir: Path, keys):
    sign_bundle(bundle_dir, keys["signer"])
    body = manifest()
    body["outputs"][1]["flags"][0]["threshold"] = 1.01  # a flag that can never be raised
    write_bundle(bundle_dir, body, {"model.onnx": tiny_model()})  # reseals; manifest.sig is left as it was

    resealed = load_bundle(bundle_dir)  # every checksum holds: only the signature can tell
    assert resealed.manifest.head("tumor").flags[0].threshold == 1.01
    assert resealed.signature.state == "not checked"
    with pytest.raises(BundleSignatureError, match="the manifest was changed or resealed after signing"):
        load_bundle(bundle_dir, trusted_keys=[_pub(keys["signer"])])


@pytest.mark.parametrize("position", [0, 0.5, -1])
def test_a_changed_model_byte_in_a_signed_bundle_is_refused(bundle_dir: Path, keys, position):
    sign_bundle(bundle_dir, keys["signer"])
    model = bundle_dir / "model.onnx"
    data = bytearray(model.read_bytes())
    data[int(len(data) * position) if isinstance(position, float) else position] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="model.onnx does not match the sha256"):
        load_bundle(bundle_dir, trusted_keys=[_pub(keys["signer"])])


def _forged(keys) -> dict[str, object]:
    """manifest.sig documents that are not a valid signature by ``signer``."""
    signer = key_id(load_public_key(_pub(keys["signer"])))
    return {
        "not json": b"\xff\xfe not json",
        "a list": b"[]",
        "another algorithm": {"algorithm": "RSA", "key_id": signer, "signature": base64.b64encode(bytes(64)).decode()},
        "a bad key id": {"algorithm": "Ed25519", "key_id": "ZZ", "signature": base64.b64encode(bytes(64)).decode()},
        "not base64": {"algorithm": "Ed25519", "key_id": signer, "signature": "!!!"},
        "too short": {"algorithm": "Ed25519", "key_id": signer, "signature": base64.b64encode(bytes(32)).decode()},
        "zeros in the signer's name": {"algorithm": "Ed25519", "key_id": signer,
                                       "signature": base64.b64encode(bytes(64)).decode()},
    }


@pytest.mark.parametrize("case", ["not json", "a list", "another algorithm", "a bad key id", "not base64",
                                  "too short", "zeros in the signer's name"])
def test_a_malformed_or_forged_signature_is_refused(bundle_dir: Path, keys, case: str):
    document = _forged(keys)[case]
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    (bundle_dir / SIGNATURE).write_bytes(raw)
    with pytest.raises(BundleSignatureError, match="malformed|does not match"):
        load_bundle(bundle_dir, trusted_keys=[_pub(keys["signer"])])
    assert load_bundle(bundle_dir).signature.state == "not checked"  # without keys it is only reported


def test_the_signature_is_settled_before_any_listed_file_is_opened(bundle_dir: Path, keys):
    sign_bundle(bundle_dir, keys["stranger"])
    (bundle_dir / "model.onnx").unlink()
    os.mkfifo(bundle_dir / "model.onnx")
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_bundle(bundle_dir, trusted_keys=[_pub(keys["signer"])])
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread, which asserts on it
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert isinstance(outcome[0], BundleSignatureError)  # not the FIFO: it was never reached


def test_a_private_key_or_a_missing_file_is_no_trusted_key(bundle_dir: Path, keys, tmp_path: Path):
    with pytest.raises(BundleSignatureError, match=r"is a private key; trust its public key"):
        load_bundle(bundle_dir, trusted_keys=[keys["signer"]])
    with pytest.raises(BundleSignatureError, match="does not exist"):
        load_bundle(bundle_dir, trusted_keys=[tmp_path / "nowhere.pub"])
    with pytest.raises(BundleSignatureError, match="public key; sign with the private key"):
        sign_bundle(bundle_dir, _pub(keys["signer"]))
    with pytest.raises(ValueError, match="trusted_keys is empty"):
        load_bundle(bundle_dir, trusted_keys=[])


def test_predictions_say_who_signed_the_bundle(bundle_dir: Path, keys):
    image = to_bytes(dx_dataset(disc_image(300, 300, (150, 150), 60, 3900, 2250)))
    unsigned = load_model(bundle_dir, threads=1).predict(image)
    assert unsigned.provenance["signature"] == {"state": "unsigned", "key_id": None}

    identifier = sign_bundle(bundle_dir, keys["signer"])
    verified = load_model(bundle_dir, trusted_keys=[_pub(keys["signer"])], threads=1).predict(image)
    assert verified.provenance["signature"] == {"state": "verified", "key_id": identifier}
    assert json.loads(verified.to_json())["provenance"]["signature"]["state"] == "verified"


def test_load_model_checks_a_loaded_bundle_against_trusted_keys(bundle_dir: Path, keys):
    bundle = load_bundle(bundle_dir)
    with pytest.raises(BundleSignatureError, match="is unsigned"):
        load_model(bundle, trusted_keys=[_pub(keys["signer"])], warm_up=False)
    sign_bundle(bundle_dir, keys["signer"])
    model = load_model(load_bundle(bundle_dir), trusted_keys=[_pub(keys["signer"])], warm_up=False)
    assert model.bundle.signature.state == "verified"
