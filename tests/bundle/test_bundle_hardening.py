"""A bundle is untrusted input: whatever it holds, loading ends quickly in a typed error that says
what to do, without following links, waiting on a FIFO or inflating more than the manifest declares."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import threading
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from radedge.bundle import MAX_FILE_BYTES, MAX_MANIFEST_BYTES, load_bundle, pack_bundle, write_bundle
from radedge.errors import BundleError, BundleIntegrityError

from ..models.make_tiny import manifest, tiny_model

MIB = 1024 * 1024


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", manifest(), {"model.onnx": tiny_model()})


def _reseal(directory: Path, edit: Callable[[dict], None] | None = None, text: str | None = None) -> None:
    """Rewrite manifest.json (``edit`` its document, or replace its ``text``) and seal it again by the
    documented rule, so that only the check under test can refuse it."""
    path = directory / "manifest.json"
    if text is None:
        document = json.loads(path.read_text())
        edit(document)
        document["manifest_sha256"] = "0" * 64
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = text.replace(json.loads(path.read_text())["manifest_sha256"], "0" * 64)
    path.write_text(text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest()))


def _raw_zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip written field by field, so its headers can say what a real writer would not:
    each member is (name, stored bytes, compression method, crc32, declared inflated size)."""
    local, central = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        offset, encoded = len(local), name.encode()
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(encoded), 0)
        local += encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    return bytes(local + central + end)


def _deflated_zeros(mebibytes: int) -> bytes:
    """A raw deflate stream of ``mebibytes`` MiB of zeros, about 1 KiB per MiB, made without
    compressing them all: after a full flush the compressor starts afresh, so every MiB
    compresses to the same bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return one * mebibytes + compressor.flush()


def test_the_deflate_stream_is_what_it_claims():
    inflated = zlib.decompress(_deflated_zeros(3), -15)
    assert inflated == bytes(3 * MIB)


def _bomb(tmp_path: Path, bundle_dir: Path, declared: int | None, mebibytes: int = 2048) -> Path:
    """A .radedge whose model.onnx member inflates to ``mebibytes`` MiB, its header declaring
    ``declared`` bytes (None: the truth)."""
    raw_manifest = (bundle_dir / "manifest.json").read_bytes()
    stream = _deflated_zeros(mebibytes)
    archive = tmp_path / "bomb.radedge"
    archive.write_bytes(_raw_zip([
        ("manifest.json", raw_manifest, 0, zlib.crc32(raw_manifest), len(raw_manifest)),
        ("model.onnx", stream, 8, 0, mebibytes * MIB if declared is None else declared),
    ]))
    assert archive.stat().st_size < 3 * MIB
    return archive


def _refused_quickly(path: Path, match: str) -> tuple[float, int]:
    """Load ``path``, expecting a refusal; return (seconds, peak bytes allocated meanwhile)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(BundleIntegrityError, match=match):
            load_bundle(path)
        return time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "mebibytes, refusal",
    [(2048, f"model.onnx is {2048 * MIB} bytes, over the {MAX_FILE_BYTES} bytes"),
     (512, rf"model.onnx is {512 * MIB} bytes, but manifest.json says \d+")],
)
def test_a_member_declaring_gigabytes_is_refused_before_inflating(
    tmp_path: Path, bundle_dir: Path, mebibytes: int, refusal: str
):
    archive = _bomb(tmp_path, bundle_dir, declared=None, mebibytes=mebibytes)
    seconds, peak = _refused_quickly(archive, refusal)
    # Inflating it takes seconds and 2 GiB; the refusal takes neither.
    assert seconds < 2.0 and peak < 16 * MIB, (seconds, peak)


def test_a_member_whose_header_understates_it_stops_at_the_declared_size(tmp_path: Path, bundle_dir: Path):
    declared = len(tiny_model())
    archive = _bomb(tmp_path, bundle_dir, declared=declared)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("model.onnx").file_size == declared  # the lie a header can tell
    seconds, peak = _refused_quickly(archive, "model.onnx (cannot be inflated|holds more than)")
    assert seconds < 2.0 and peak < 16 * MIB, (seconds, peak)


def test_a_manifest_member_too_large_to_be_one_is_refused_unread(tmp_path: Path):
    stream = _deflated_zeros(64)
    archive = tmp_path / "big-manifest.radedge"
    archive.write_bytes(_raw_zip([("manifest.json", stream, 8, 0, 64 * MIB)]))
    seconds, peak = _refused_quickly(archive, f"manifest.json is {64 * MIB} bytes, over the {MAX_MANIFEST_BYTES}")
    assert peak < 8 * MIB


def test_a_manifest_declaring_a_file_over_the_cap_is_refused(tmp_path: Path, bundle_dir: Path):
    _reseal(bundle_dir, lambda document: document["files"]["model.onnx"].update(bytes=MAX_FILE_BYTES + 1))
    with pytest.raises(BundleError, match=f"radedge loads files of up to {MAX_FILE_BYTES} bytes"):
        load_bundle(bundle_dir)


def _deflate_offset(archive: Path, name: str) -> tuple[int, int]:
    """Where member ``name``'s compressed bytes start in ``archive``, and how many there are."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
    data = archive.read_bytes()
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


def test_every_flipped_deflate_byte_is_a_typed_error_or_changes_nothing(tmp_path: Path, bundle_dir: Path):
    archive = pack_bundle(bundle_dir, tmp_path / "tiny.radedge")
    original = archive.read_bytes()
    start, length = _deflate_offset(archive, "model.onnx")
    refused = 0
    for index in range(start, start + length):
        data = bytearray(original)
        data[index] ^= 0xFF
        archive.write_bytes(bytes(data))
        try:
            loaded = load_bundle(archive)
        except BundleIntegrityError as exc:
            assert "model.onnx" in str(exc)
            refused += 1
        else:
            # Inflation stops at the declared size, so bits past the last byte of the model are
            # never decoded; whatever loads is the sealed model, byte for byte.
            assert loaded.read("model.onnx") == tiny_model(), index
    assert refused >= length - 2


def test_the_zlib_error_itself_is_named_in_the_refusal(tmp_path: Path, bundle_dir: Path):
    archive = pack_bundle(bundle_dir, tmp_path / "tiny.radedge")
    start, _ = _deflate_offset(archive, "model.onnx")
    data = bytearray(archive.read_bytes())
    data[start] |= 0b110
    archive.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"cannot be inflated \(error: .*invalid block type.*bundle again"):
        load_bundle(archive)


@pytest.mark.parametrize(
    "name, problem",
    [
        (".", "not a plain relative path"),
        ("", "an empty name"),
        ("./model.onnx", "not a plain relative path"),
        ("weights//model.onnx", "not a plain relative path"),
        ("weights/", "not a plain relative path"),
        ("/etc/passwd", "outside the bundle"),
        ("weights/../../model.onnx", "outside the bundle"),
        ("weights\\model.onnx", "backslash"),
        ("model\n.onnx", "control character"),
        ("manifest.json", "cannot be listed"),
        ("manifest.sig", "cannot be listed"),
        ("MODEL.onnx", "one file on some file systems"),
    ],
)
def test_names_in_files_must_be_plain_relative_paths(bundle_dir: Path, name: str, problem: str):
    entry = json.loads((bundle_dir / "manifest.json").read_text())["files"]["model.onnx"]
    _reseal(bundle_dir, lambda document: document["files"].update({name: entry}))
    with pytest.raises(BundleIntegrityError, match=problem):
        load_bundle(bundle_dir)


def test_write_bundle_refuses_the_names_the_loader_refuses(tmp_path: Path):
    with pytest.raises(BundleError, match="outside the bundle"):
        write_bundle(tmp_path / "bundle", manifest(), {"model.onnx": tiny_model(), "../escape.bin": b"x"})
    assert not (tmp_path / "escape.bin").exists()


def test_a_repeated_key_in_the_manifest_is_refused(bundle_dir: Path):
    text = (bundle_dir / "manifest.json").read_text()
    # json.loads would keep the second "model" silently; a reviewer reading the file sees the first.
    _reseal(bundle_dir, text=text.replace('  "model": {', '  "model": {"id": "decoy"},\n  "model": {', 1))
    with pytest.raises(BundleIntegrityError, match="'model' appears twice"):
        load_bundle(bundle_dir)


def test_a_fifo_in_place_of_the_model_is_refused_without_waiting(bundle_dir: Path):
    (bundle_dir / "model.onnx").unlink()
    os.mkfifo(bundle_dir / "model.onnx")
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_bundle(bundle_dir)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread, which asserts on it
            outcome.append(exc)

    # A daemon thread: if the open blocks, the test fails instead of the suite hanging.
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "loading a bundle with a FIFO for model.onnx blocked"
    assert isinstance(outcome[0], BundleIntegrityError)
    assert "model.onnx is a FIFO, not a regular file" in str(outcome[0])


def test_a_symlink_out_of_the_bundle_is_refused_even_to_the_right_bytes(tmp_path: Path, bundle_dir: Path):
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes(tiny_model())  # same bytes: following the link would pass every checksum
    (bundle_dir / "model.onnx").unlink()
    (bundle_dir / "model.onnx").symlink_to(outside)
    with pytest.raises(BundleIntegrityError, match="model.onnx is, or lies under, a symbolic link"):
        load_bundle(bundle_dir)


def test_a_folder_that_is_a_symlink_out_of_the_bundle_is_refused(tmp_path: Path):
    bundle = write_bundle(tmp_path / "bundle", manifest(),
                          {"model.onnx": tiny_model(), "weights/extra.bin": b"calibration"})
    load_bundle(bundle)
    shutil.move(bundle / "weights", tmp_path / "weights-elsewhere")
    (bundle / "weights").symlink_to(tmp_path / "weights-elsewhere", target_is_directory=True)
    with pytest.raises(BundleIntegrityError, match="weights/extra.bin is, or lies under, a symbolic link"):
        load_bundle(bundle)


def test_a_directory_in_place_of_a_file_is_refused(bundle_dir: Path):
    (bundle_dir / "model.onnx").unlink()
    (bundle_dir / "model.onnx").mkdir()
    with pytest.raises(BundleIntegrityError, match="model.onnx is a directory, not a regular file"):
        load_bundle(bundle_dir)


def test_a_manifest_too_large_to_be_one_is_refused_unread(bundle_dir: Path):
    path = bundle_dir / "manifest.json"
    path.write_bytes(path.read_bytes() + b" " * MAX_MANIFEST_BYTES)
    with pytest.raises(BundleIntegrityError, match=f"over the {MAX_MANIFEST_BYTES} bytes"):
        load_bundle(bundle_dir)


def test_a_file_longer_than_declared_is_refused(bundle_dir: Path):
    with (bundle_dir / "model.onnx").open("ab") as model:
        model.write(b"\0")
    with pytest.raises(BundleIntegrityError, match=r"model.onnx is \d+ bytes, but manifest.json says \d+"):
        load_bundle(bundle_dir)


def _zip_of(bundle_dir: Path, archive: Path, extra: Callable[[zipfile.ZipFile], None]) -> Path:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ("manifest.json", "model.onnx"):
            zf.writestr(name, (bundle_dir / name).read_bytes())
        extra(zf)
    return archive


def test_a_zip_with_a_repeated_member_is_refused(tmp_path: Path, bundle_dir: Path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = _zip_of(bundle_dir, tmp_path / "twice.radedge", lambda zf: zf.writestr("model.onnx", b"decoy"))
    with pytest.raises(BundleIntegrityError, match="holds 'model.onnx' as two members"):
        load_bundle(archive)
    archive = _zip_of(bundle_dir, tmp_path / "case.radedge", lambda zf: zf.writestr("Model.ONNX", b"decoy"))
    with pytest.raises(BundleIntegrityError, match="holds 'model.onnx' and 'Model.ONNX' as two members"):
        load_bundle(archive)


def test_a_zip_with_a_symlink_member_is_refused(tmp_path: Path, bundle_dir: Path):
    def link(zf: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("weights")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc")

    archive = _zip_of(bundle_dir, tmp_path / "link.radedge", link)
    with pytest.raises(BundleIntegrityError, match="member 'weights' is a symbolic link"):
        load_bundle(archive)


def test_an_encrypted_member_is_refused_before_reading(tmp_path: Path, bundle_dir: Path):
    archive = pack_bundle(bundle_dir, tmp_path / "tiny.radedge")
    data = bytearray(archive.read_bytes())
    # The general-purpose flags of model.onnx's central directory entry: bit 0 means encrypted.
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46: entry + 46 + len(b"model.onnx")] != b"model.onnx":
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 8] |= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="model.onnx is encrypted"):
        load_bundle(archive)


def test_an_unsupported_compression_is_refused(tmp_path: Path, bundle_dir: Path):
    archive = tmp_path / "bzip2.radedge"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_BZIP2) as zf:
        for name in ("manifest.json", "model.onnx"):
            zf.writestr(name, (bundle_dir / name).read_bytes())
    with pytest.raises(BundleError, match="compression method 12; radedge reads stored and deflate"):
        load_bundle(archive)


def test_a_precision_naming_an_unlisted_file_is_refused(tmp_path: Path):
    body = {**manifest(), "precisions": {"fp32": {"file": "model.onnx"}, "int8": {"file": "model.int8.onnx"}}}
    bundle = write_bundle(tmp_path / "bundle", body, {"model.onnx": tiny_model()})
    with pytest.raises(BundleError, match="its int8 model is 'model.int8.onnx', which is not among the files"):
        load_bundle(bundle)
