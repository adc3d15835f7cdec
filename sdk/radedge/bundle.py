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
from typing import Any, Literal

from ._files import write_atomically
from .errors import BundleError, BundleIntegrityError
from .intensity import check_window
from .io.image import Percentile, Window
from .preprocess import PreprocessSpec

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
_ZERO_DIGEST = "0" * 64
_DIGEST_FIELD = re.compile(rb'"manifest_sha256"\s*:\s*"([0-9a-f]{64})"')

HeadKind = Literal["classification", "segmentation", "detection", "heatmap", "cam"]


def default_bundle_path() -> Path:
    """The demo model shipped inside the package: ``bone-tumor`` trained on phantoms."""
    return Path(__file__).resolve().parent / "models" / "bone-tumor"


@dataclass(frozen=True)
class FlagRule:
    """Raise flag ``code`` when the probability of ``label`` from head ``head`` is >= ``threshold``.

    ``operating_point`` records how the threshold was chosen (data set, sensitivity,
    specificity), so a vendor can see what the number means before moving it.
    """

    code: str
    title: str
    head: str
    label: str
    threshold: float
    operating_point: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputSpec:
    """One output tensor of the network and how to read it.

    ``kind`` is the head kind (DESIGN.md); ``activation`` is ``"softmax"`` or
    ``"sigmoid"``; ``decode`` holds kind-specific parameters (``threshold`` for a
    segmentation head, as a probability).
    """

    name: str
    kind: HeadKind
    labels: tuple[str, ...]
    activation: str
    decode: dict[str, Any] = field(default_factory=dict)
    flags: tuple[FlagRule, ...] = ()


@dataclass(frozen=True)
class IntensitySpec:
    """How stored values were turned into [0, 1] intensities in training.

    ``voi``: ``"file"`` uses the image's own VOI (VOI LUT Sequence, else its window at
    ``voi_index``), ``"none"`` uses the min-max of modality values, a ``Percentile``
    (manifest ``"voi": {"percentile": [0.5, 99.5]}``) the window between those
    percentiles of the image's own modality values, and an explicit ``window`` overrides
    them all.
    """

    voi: Literal["file", "none"] | Percentile = "file"
    voi_index: int = 0
    window: Window | None = None


@dataclass(frozen=True)
class Scope:
    """The inputs the model is intended for; anything else is refused (``OutOfScopeError``).

    Empty tuples mean "not restricted". Values compare case-insensitively.
    """

    modalities: tuple[str, ...] = ()
    presentation_intents: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    model_id: str
    model_version: str
    description: str
    input_name: str
    input_shape: tuple[int, int, int, int]  # N, C, H, W
    preprocess: PreprocessSpec
    intensity: IntensitySpec
    outputs: tuple[OutputSpec, ...]
    scope: Scope
    provenance: dict[str, Any]
    files: dict[str, dict[str, Any]]
    raw: dict[str, Any]

    def output(self, name: str) -> OutputSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise BundleError(f"the manifest has no output named {name!r}; it has {[o.name for o in self.outputs]}")


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
        return _manifest_from_document(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{location}: {MANIFEST} is missing or has a malformed field: {exc!r}") from None


def _voi(value: Any) -> str | Percentile:
    """The manifest's ``preprocessing.voi``: "file", "none" or {"percentile": [low, high]}."""
    if isinstance(value, dict):
        if set(value) != {"percentile"}:
            raise ValueError(f'preprocessing.voi as an object must be {{"percentile": [low, high]}}; got {value}')
        bounds = value["percentile"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ValueError(f"preprocessing.voi.percentile must be [low, high] percentages; got {bounds!r}")
        return Percentile(bounds[0], bounds[1])
    if value not in ("file", "none"):
        raise ValueError(f'preprocessing.voi must be "file", "none" or {{"percentile": [low, high]}}; got {value!r}')
    return value


def _manifest_from_document(doc: dict[str, Any]) -> Manifest:
    model = doc["model"]
    inp = doc["input"]
    pre = doc["preprocessing"]
    shape = tuple(int(v) for v in inp["shape"])
    if len(shape) != 4:
        raise ValueError(f"input.shape must be [N, C, H, W], got {inp['shape']}")
    preprocess = PreprocessSpec(
        height=shape[2],
        width=shape[3],
        resize=pre.get("resize", "letterbox"),
        pad_value=float(pre.get("pad_value", 0.0)),
        mean=tuple(float(v) for v in pre.get("mean", (0.0,))),
        std=tuple(float(v) for v in pre.get("std", (1.0,))),
        channels=shape[1],
        dtype=inp.get("dtype", "float32"),
    )
    window = pre.get("window")
    intensity = IntensitySpec(
        voi=_voi(pre.get("voi", "file")),
        voi_index=int(pre.get("voi_index", 0)),
        window=Window(float(window["center"]), float(window["width"]), window.get("function", "LINEAR")) if window else None,
    )
    if intensity.window is not None:
        # A window the VOI LUT Function does not allow (width <= 0, or < 1 for LINEAR) is
        # refused when the bundle loads, not on the first image.
        check_window(intensity.window)
    outputs = tuple(
        OutputSpec(
            name=out["name"],
            kind=out["kind"],
            labels=tuple(out["labels"]),
            activation=out["activation"],
            decode=dict(out.get("decode", {})),
            flags=tuple(
                FlagRule(
                    code=f["code"],
                    title=f["title"],
                    head=out["name"],
                    label=f["label"],
                    threshold=float(f["threshold"]),
                    operating_point=dict(f.get("operating_point", {})),
                )
                for f in out.get("flags", ())
            ),
        )
        for out in doc["outputs"]
    )
    for out in outputs:
        for rule in out.flags:
            if rule.label not in out.labels:
                raise ValueError(f"flag {rule.code} refers to label {rule.label!r}, not one of {out.labels}")
    scope = doc.get("scope", {})
    return Manifest(
        schema_version=int(doc["schema_version"]),
        model_id=model["id"],
        model_version=model["version"],
        description=model.get("description", ""),
        input_name=inp["name"],
        input_shape=shape,  # type: ignore[arg-type]
        preprocess=preprocess,
        intensity=intensity,
        outputs=outputs,
        scope=Scope(
            modalities=tuple(scope.get("modalities", ())),
            presentation_intents=tuple(scope.get("presentation_intents", ())),
            body_parts=tuple(scope.get("body_parts", ())),
        ),
        provenance=dict(doc.get("provenance", {})),
        files=dict(doc["files"]),
        raw=doc,
    )
