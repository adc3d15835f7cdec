"""Model bundles: ``model.onnx`` + ``manifest.json`` that describes and checksums it.

A bundle is a directory or a ``.radedge`` zip of one. ``manifest.json`` records the
model's input, how intensities were windowed in training, every output head with its
labels, activation, decode parameters and flag rules, the intended input scope, the
provenance, and the sha256 of every other file. It also carries ``manifest_sha256``:
the sha256 of manifest.json itself with that value replaced by 64 zeros, so a change to
any byte of any file of the bundle is detected at load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import write_atomically
from ..errors import BundleError, BundleIntegrityError
from ..spec.manifest import SCHEMA_VERSION, Manifest

MANIFEST = "manifest.json"
_ZERO_DIGEST = "0" * 64
_DIGEST_FIELD = re.compile(rb'"manifest_sha256"\s*:\s*"([0-9a-f]{64})"')


def bundled_models_path() -> Path:
    """The folder of the models shipped inside the package, one bundle directory each."""
    return Path(__file__).resolve().parent.parent / "models"


def default_bundle_path() -> Path:
    """The demo model shipped inside the package: ``bone-tumor`` trained on phantoms."""
    return bundled_models_path() / "bone-tumor"


def bundled_bundle_paths() -> list[Path]:
    """Every bundle shipped inside the package, in name order."""
    return sorted(path for path in bundled_models_path().iterdir() if (path / MANIFEST).is_file())


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle. ``digest`` (sha256 of manifest.json) identifies it."""

    location: str
    manifest: Manifest
    digest: str
    _files: dict[str, bytes] = field(repr=False)

    def read(self, name: str) -> bytes:
        try:
            return self._files[name]
        except KeyError:
            raise BundleError(f"bundle {self.location} has no file {name!r}; it has {sorted(self._files)}") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_bundle(path: str | os.PathLike | None = None) -> Bundle:
    """Read and verify a bundle directory or ``.radedge`` zip (``None``: the demo model).

    Raises ``BundleError`` when it is missing or malformed and ``BundleIntegrityError``
    when a checksum does not match (a changed byte anywhere, a truncated file).
    """
    location = Path(path) if path is not None else default_bundle_path()
    if location.is_dir():
        raw_manifest = _read_existing(location / MANIFEST, location)
        document = _parse_json(raw_manifest, location)
        files = {name: _read_existing(location / name, location) for name in _file_names(document, location)}
    elif location.is_file():
        raw_manifest, document, files = _read_zip(location)
    else:
        raise BundleError(
            f"no model bundle at {location}: expected a directory holding {MANIFEST} and model.onnx, "
            "or a .radedge zip of one. Pass --model with the bundle's path."
        )
    manifest = _verify(raw_manifest, document, files, str(location))
    return Bundle(location=str(location), manifest=manifest, digest=sha256_hex(raw_manifest), _files=files)


def write_bundle(directory: str | os.PathLike, manifest: dict[str, Any], files: dict[str, bytes]) -> Path:
    """Write ``files`` and a manifest that checksums them into ``directory``; return it.

    ``manifest`` is everything but ``files`` and ``manifest_sha256``, which this fills
    in. Files are written to temporary names and renamed, manifest last, so a reader
    never sees a half-written bundle as valid.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    body = dict(manifest)
    body["schema_version"] = SCHEMA_VERSION
    body["files"] = {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in sorted(files.items())}
    body["manifest_sha256"] = _ZERO_DIGEST
    text = (json.dumps(body, indent=2) + "\n").encode()
    if text.count(_ZERO_DIGEST.encode()) != 1:
        raise BundleError("the manifest contains a run of 64 zeros besides its digest placeholder; cannot seal it")
    text = text.replace(_ZERO_DIGEST.encode(), sha256_hex(text).encode())
    for name, data in files.items():
        write_atomically(directory / name, data)
    write_atomically(directory / MANIFEST, text)
    return directory


def pack_bundle(directory: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Zip a verified bundle directory into one ``.radedge`` file."""
    bundle = load_bundle(directory)
    archive = Path(archive)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, Path(directory, MANIFEST).read_bytes())
        for name in bundle.manifest.files:
            zf.writestr(name, bundle.read(name))
    write_atomically(archive, buffer.getvalue())
    return archive



def _read_existing(path: Path, bundle: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BundleIntegrityError(
            f"bundle {bundle} is incomplete: {path.name} is missing. Re-copy the whole bundle directory."
        ) from None


def _file_names(document: dict[str, Any], location: Path) -> list[str]:
    files = document.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{location / MANIFEST} has no 'files' table; it is not a radedge bundle manifest")
    for name in files:
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleIntegrityError(f"{location / MANIFEST} lists a file outside the bundle: {name!r}")
    return list(files)


def _read_zip(location: Path) -> tuple[bytes, dict[str, Any], dict[str, bytes]]:
    try:
        with zipfile.ZipFile(location) as zf:
            members = set(zf.namelist())
            if MANIFEST not in members:
                raise BundleError(f"{location} is a zip without {MANIFEST}; it is not a .radedge bundle")
            raw_manifest = zf.read(MANIFEST)
            document = _parse_json(raw_manifest, location)
            files = {}
            for name in _file_names(document, location):
                if name not in members:
                    raise BundleIntegrityError(f"bundle {location} is incomplete: {name} is missing from the archive")
                files[name] = zf.read(name)
    except zipfile.BadZipFile as exc:
        raise BundleIntegrityError(
            f"{location} is neither a bundle directory nor a readable .radedge zip ({exc}); "
            "it may be truncated or not a bundle at all"
        ) from None
    return raw_manifest, document, files


def _parse_json(raw: bytes, location: Path | str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleIntegrityError(
            f"{location}: {MANIFEST} is not valid JSON ({exc}); the bundle is damaged or was edited by hand"
        ) from None
    if not isinstance(document, dict):
        raise BundleError(f"{location}: {MANIFEST} must hold a JSON object")
    return document


def _verify(raw_manifest: bytes, document: dict[str, Any], files: dict[str, bytes], location: str) -> Manifest:
    match = _DIGEST_FIELD.search(raw_manifest)
    if match is None:
        raise BundleIntegrityError(f"{location}: {MANIFEST} has no manifest_sha256; it cannot be verified")
    recorded = match.group(1).decode()
    zeroed = raw_manifest[: match.start(1)] + _ZERO_DIGEST.encode() + raw_manifest[match.end(1) :]
    if sha256_hex(zeroed) != recorded:
        raise BundleIntegrityError(
            f"{location}: {MANIFEST} does not match its own checksum; it was changed after export. "
            "Re-export the bundle (or restore the original) instead of editing it."
        )
    schema = document.get("schema_version")
    if schema != SCHEMA_VERSION:
        raise BundleError(
            f"{location}: manifest schema_version {schema!r} is not supported by this radedge "
            f"(supports {SCHEMA_VERSION}); upgrade radedge or re-export the bundle"
        )
    for name, entry in document["files"].items():
        data = files[name]
        if len(data) != entry.get("bytes") or sha256_hex(data) != entry.get("sha256"):
            raise BundleIntegrityError(
                f"{location}: {name} does not match the sha256 in {MANIFEST} "
                f"({len(data)} bytes, expected {entry.get('bytes')}); the file is truncated or was modified. "
                "Re-copy or re-export the bundle."
            )
    try:
        return Manifest.from_document(document)
    except KeyError as exc:
        raise BundleError(f"{location}: {MANIFEST} lacks the field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{location}: {MANIFEST} has a malformed field: {exc}") from None
