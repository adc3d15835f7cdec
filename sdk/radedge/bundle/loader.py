"""Model bundles: ``model.onnx`` + ``manifest.json`` that describes and checksums it.

A bundle is a directory or a ``.radedge`` zip of one. ``manifest.json`` records the
model's input, how intensities were windowed in training, every output head with its
labels, activation, decode parameters and flag rules, the intended input scope, the
provenance, and the sha256 of every other file. It also carries ``manifest_sha256``:
the sha256 of manifest.json itself with that value replaced by 64 zeros, so a change to
any byte of any file of the bundle is detected at load. ``manifest.sig``, when present,
signs manifest.json (see ``radedge.bundle.signing``).

A bundle is untrusted input until it is verified, so loading proceeds in an order that never
spends memory or trust on it early: the manifest is read (capped) and its own checksum,
signature (when trusted keys are given) and schema are checked before any file it lists is
opened; each listed file must be a regular file inside the bundle whose size, known before a
byte is read (``fstat``, the zip directory), equals what the manifest declares; a zip member
is inflated in bounded chunks that stop past its declared size, since zip headers can lie.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import posixpath
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._files import write_atomically
from ..errors import BundleError, BundleIntegrityError, BundleNotFoundError, invalid_argument
from ..spec.manifest import SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS, Manifest
from .signing import MAX_SIGNATURE_BYTES, SIGNATURE, UNSIGNED, BundleSignature, TrustedKey, check_signature

MANIFEST = "manifest.json"
#: A manifest is a few KiB of JSON; one far larger is not a radedge manifest.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: The largest file of a bundle radedge loads: every file is held in memory, and this is
#: well above any model an acquisition console runs.
MAX_FILE_BYTES = 1024 * 1024 * 1024
#: All listed files together (FP32, FP16 and INT8 models of a large network fit).
MAX_BUNDLE_BYTES = 4 * 1024 * 1024 * 1024
_INFLATE_CHUNK = 1024 * 1024
_ZERO_DIGEST = "0" * 64
_DIGEST_FIELD = re.compile(rb'"manifest_sha256"\s*:\s*"([0-9a-f]{64})"')
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RESERVED = (MANIFEST, SIGNATURE)
# What zipfile and zlib raise for a damaged, truncated or unusual archive; each becomes a BundleError.
_ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
    OSError, UnicodeDecodeError, ValueError, struct.error,
)
_ZIP_COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


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
    """A loaded, verified bundle. ``digest`` (sha256 of manifest.json) identifies it;
    ``signature`` says whether it is signed and whether the signature was checked."""

    location: str
    manifest: Manifest
    digest: str
    _files: dict[str, bytes] = field(repr=False)
    signature: BundleSignature = UNSIGNED
    manifest_bytes: bytes = field(default=b"", repr=False)
    signature_bytes: bytes | None = field(default=None, repr=False)

    def read(self, name: str) -> bytes:
        try:
            return self._files[name]
        except KeyError:
            raise BundleError(f"bundle {self.location} has no file {name!r}; it has {sorted(self._files)}") from None

    def check_signature(self, trusted_keys: Sequence[TrustedKey] | TrustedKey) -> Bundle:
        """This bundle, its signature checked against ``trusted_keys`` as ``load_bundle`` checks it;
        raises ``BundleSignatureError`` unless one of them signed this manifest."""
        return replace(
            self, signature=check_signature(self.manifest_bytes, self.signature_bytes, trusted_keys, self.location)
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_bundle(
    path: str | os.PathLike | None = None, trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None
) -> Bundle:
    """Read and verify a bundle directory or ``.radedge`` zip (``None``: the demo model).

    ``trusted_keys``: public key files (PEM, as ``radedge keygen`` writes ``KEY.pub``) or
    ``Ed25519PublicKey`` objects. Given, the bundle loads only when one of them signed its
    manifest (``BundleSignatureError`` otherwise); None loads signed and unsigned bundles
    alike, and ``Bundle.signature`` says which it was.

    Raises ``BundleError`` when it is missing or malformed and ``BundleIntegrityError``
    when a checksum does not match (a changed byte anywhere, a truncated file) or the
    bundle holds something other than regular files where its manifest lists files.
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise invalid_argument("load_bundle", "path", path,
                               "a bundle directory or .radedge file (str or os.PathLike), or None for the demo model")
    location = Path(path) if path is not None else default_bundle_path()
    try:
        try:
            is_directory, is_file = location.is_dir(), location.is_file()
        except OSError as exc:
            raise BundleError(f"cannot look at {location}: {exc.strerror}; check the path and its permissions") from None
        if is_directory:
            source: _Source = _DirectorySource(location)
        elif is_file:
            source = _ZipSource(location)
        else:
            raise BundleNotFoundError(
                f"no model bundle at {location}: expected a directory holding {MANIFEST} and model.onnx, "
                "or a .radedge zip of one. Check the bundle's path."
            )
        try:
            return _load(source, str(location), trusted_keys)
        finally:
            source.close()
    except BundleError as exc:
        exc.fields.setdefault("location", str(location))
        raise


def _load(source: _Source, location: str, trusted_keys: Sequence[TrustedKey] | TrustedKey | None) -> Bundle:
    raw_manifest = source.read(MANIFEST, expected=None, limit=MAX_MANIFEST_BYTES)
    if raw_manifest is None:
        raise source.missing(MANIFEST)
    recorded = _check_seal(raw_manifest, location)
    # Trust is settled on the manifest alone, before anything it names is opened.
    raw_signature = source.read(SIGNATURE, expected=None, limit=MAX_SIGNATURE_BYTES)
    signature = check_signature(raw_manifest, raw_signature, trusted_keys, location)
    document = _parse_json(raw_manifest, location)
    if document.get("manifest_sha256") != recorded:
        raise BundleIntegrityError(
            f"{location}: {MANIFEST} carries more than one manifest_sha256; re-export the bundle"
        )
    schema = document.get("schema_version")
    if schema not in SUPPORTED_SCHEMA_VERSIONS or isinstance(schema, bool):
        raise BundleError(
            f"{location}: manifest schema_version {schema!r} is not supported by this radedge "
            f"(supports {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}); upgrade radedge or re-export the bundle"
        )
    entries = _file_entries(document, location)
    manifest = _parse_manifest(document, location)
    for precision in manifest.precisions.values():
        if precision.file not in entries:
            raise BundleError(
                f"{location}: its {precision.name} model is {precision.file!r}, which is not among the files "
                f"{MANIFEST} lists ({', '.join(sorted(entries)) or 'none'}); re-export the bundle"
            )
    files = {}
    for name, (digest, size) in entries.items():
        data = source.read(name, expected=size, limit=MAX_FILE_BYTES)
        if data is None:
            raise source.missing(name)
        if len(data) != size or sha256_hex(data) != digest:
            raise BundleIntegrityError(
                f"{location}: {name} does not match the sha256 in {MANIFEST} "
                f"({len(data)} bytes, expected {size}); the file is truncated or was modified. "
                "Re-copy or re-export the bundle."
            )
        files[name] = data
    return Bundle(
        location=location, manifest=manifest, digest=sha256_hex(raw_manifest), _files=files, signature=signature,
        manifest_bytes=raw_manifest, signature_bytes=raw_signature,
    )


def write_bundle(directory: str | os.PathLike, manifest: dict[str, Any], files: dict[str, bytes]) -> Path:
    """Write ``files`` and a manifest that checksums them into ``directory``; return it.

    ``manifest`` is everything but ``files`` and ``manifest_sha256``, which this fills
    in. Files are written to temporary names and renamed, manifest last, so a reader
    never sees a half-written bundle as valid.
    """
    for name in files:
        problem = _name_problem(name)
        if problem is not None:
            raise BundleError(f"cannot write {name!r} into a bundle: it is {problem}")
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
    """Zip a verified bundle directory, with its signature when it has one, into one ``.radedge`` file."""
    bundle = load_bundle(directory)
    return write_atomically(archive, archive_bytes(bundle, bundle.signature_bytes))


def archive_bytes(bundle: Bundle, signature: bytes | None) -> bytes:
    """The ``.radedge`` zip of a loaded bundle: the manifest and files exactly as verified, and
    ``signature`` as ``manifest.sig`` when given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, bundle.manifest_bytes)
        if signature is not None:
            zf.writestr(SIGNATURE, signature)
        for name in bundle.manifest.files:
            zf.writestr(name, bundle.read(name))
    return buffer.getvalue()


class _Source(ABC):
    """Where a bundle's files come from. ``read`` returns None for a file that is absent and
    refuses one that is not a regular file, is larger than ``limit``, or whose size is not
    ``expected`` (when given), before reading a byte of it."""

    location: Path

    @abstractmethod
    def read(self, name: str, *, expected: int | None, limit: int) -> bytes | None: ...

    @abstractmethod
    def missing(self, name: str) -> BundleError:
        """The error for a file the manifest needs and the bundle lacks."""

    @abstractmethod
    def close(self) -> None: ...


class _DirectorySource(_Source):
    """A bundle directory, read through descriptors relative to it: every component of a name is
    opened without following symbolic links, so nothing outside the directory is ever read."""

    def __init__(self, location: Path):
        self.location = location
        try:
            self._root = os.open(location, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise BundleError(
                f"cannot open the bundle directory {location}: {exc.strerror}; check its permissions"
            ) from None

    def close(self) -> None:
        os.close(self._root)

    def missing(self, name: str) -> BundleError:
        return BundleIntegrityError(
            f"bundle {self.location} is incomplete: {name} is missing. Re-copy the whole bundle directory."
        )

    def read(self, name: str, *, expected: int | None, limit: int) -> bytes | None:
        *folders, base = name.split("/")
        parent, opened = self._root, []
        try:
            for folder in folders:
                parent = _open_folder(folder, parent)
                opened.append(parent)
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
            descriptor = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._refusal(name, exc) from None
        finally:
            for folder_descriptor in opened:
                os.close(folder_descriptor)
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise BundleIntegrityError(
                    f"{self.location}: {name} is {_file_kind(status.st_mode)}, not a regular file; a bundle holds "
                    "only regular files. Replace it with the file itself, or re-copy the bundle."
                )
            _check_size(self.location, name, status.st_size, expected, limit)
            # One read for the whole file: a regular file of a checked size needs no smaller steps.
            return _read_bounded(lambda size: os.read(descriptor, size), status.st_size, status.st_size + 1,
                                 self.location, name)
        except OSError as exc:
            raise self._refusal(name, exc) from None
        finally:
            os.close(descriptor)

    def _refusal(self, name: str, exc: OSError) -> BundleError:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            return BundleIntegrityError(
                f"{self.location}: {name} is, or lies under, a symbolic link; a bundle holds its own files and is "
                "never read through links. Copy it with links resolved (cp -rL) or re-export it."
            )
        if exc.errno == errno.ENOTDIR:
            return BundleIntegrityError(
                f"{self.location}: {name} is missing (a folder on its path is a file). Re-copy the whole bundle."
            )
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
            return BundleIntegrityError(
                f"{self.location}: {name} is not a regular file (a socket or device); a bundle holds only "
                "regular files. Re-copy the bundle."
            )
        if exc.errno in (errno.EACCES, errno.EPERM):
            return BundleError(f"{self.location}: cannot read {name}: permission denied. Make the bundle readable "
                               "by the user radedge runs as.")
        return BundleError(f"{self.location}: cannot read {name}: {exc.strerror or exc}. Re-copy the bundle.")


def _open_folder(name: str, parent: int) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except NotADirectoryError:
        # Linux reports a link opened with O_DIRECTORY | O_NOFOLLOW as "not a directory".
        if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from None
        raise


class _ZipSource(_Source):
    """A ``.radedge`` zip. Its directory is checked when it is opened (no repeated names, no links);
    a member is inflated only after its declared size is checked, in bounded chunks."""

    def __init__(self, location: Path):
        self.location = location
        try:
            descriptor = os.open(location, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise BundleError(f"cannot open {location}: {exc.strerror}; check the path and its permissions") from None
        self._file = os.fdopen(descriptor, "rb")
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise BundleError(f"{location} is not a regular file; pass a bundle directory or a .radedge file")
            self._zip = zipfile.ZipFile(self._file)
            members = self._zip.infolist()
        except _ZIP_ERRORS as exc:
            self._file.close()
            raise BundleIntegrityError(
                f"{location} is neither a bundle directory nor a readable .radedge zip ({_reason(exc)}); "
                "it may be truncated or not a bundle at all. Re-copy it, or pack the bundle again."
            ) from None
        except BaseException:
            self._file.close()
            raise
        self._members: dict[str, zipfile.ZipInfo] = {}
        seen: dict[str, str] = {}
        for info in members:
            key = _comparable(info.filename.replace("\\", "/"))
            if key in seen:
                self.close()
                twice = repr(info.filename) if seen[key] == info.filename else f"{seen[key]!r} and {info.filename!r}"
                raise BundleIntegrityError(
                    f"{location} holds {twice} as two members; tools disagree on which one such a zip holds, so it "
                    "is refused. Pack the bundle again (radedge.bundle.pack_bundle)."
                )
            seen[key] = info.filename
            if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
                self.close()
                raise BundleIntegrityError(
                    f"{location}: member {info.filename!r} is a symbolic link; a bundle holds only regular files. "
                    "Pack the bundle again (radedge.bundle.pack_bundle)."
                )
            self._members[info.filename] = info

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def missing(self, name: str) -> BundleError:
        if name == MANIFEST:
            return BundleError(f"{self.location} is a zip without {MANIFEST}; it is not a .radedge bundle")
        return BundleIntegrityError(f"bundle {self.location} is incomplete: {name} is missing from the archive")

    def read(self, name: str, *, expected: int | None, limit: int) -> bytes | None:
        info = self._members.get(name)
        if info is None:
            return None
        mode = info.external_attr >> 16
        # Writers that record no file type (zipfile's writestr among them) mean a regular file.
        if info.is_dir() or (info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG)):
            raise BundleIntegrityError(
                f"{self.location}: member {name} is {_file_kind(mode)}, not a regular file. Pack the bundle again."
            )
        if info.flag_bits & 0x1:
            raise BundleIntegrityError(
                f"{self.location}: member {name} is encrypted; radedge reads unencrypted bundles (a signature, "
                "not a password, protects them). Pack the bundle again without a password."
            )
        if info.compress_type not in _ZIP_COMPRESSIONS:
            raise BundleError(
                f"{self.location}: member {name} uses zip compression method {info.compress_type}; radedge reads "
                f"{' and '.join(_ZIP_COMPRESSIONS.values())} members. "
                "Pack the bundle again (radedge.bundle.pack_bundle)."
            )
        _check_size(self.location, name, info.file_size, expected, limit)
        try:
            with self._zip.open(info) as stream:
                return _read_bounded(stream.read, info.file_size, _INFLATE_CHUNK, self.location, name)
        except _ZIP_ERRORS as exc:
            raise BundleIntegrityError(
                f"{self.location}: member {name} cannot be inflated ({_reason(exc)}); the archive is damaged or was "
                "modified. Re-copy it, or pack the bundle again."
            ) from None


def _check_size(location: Path, name: str, size: int, expected: int | None, limit: int) -> None:
    """Refuse a file by the size its directory entry declares, before reading it."""
    if size > limit:
        raise BundleIntegrityError(
            f"{location}: {name} is {size} bytes, over the {limit} bytes radedge reads for it; it is not part of a "
            "bundle radedge wrote. Re-copy or re-export the bundle."
        )
    if expected is not None and size != expected:
        raise BundleIntegrityError(
            f"{location}: {name} is {size} bytes, but {MANIFEST} says {expected}; the file is truncated or was "
            "modified. Re-copy or re-export the bundle."
        )


def _read_bounded(read: Callable[[int], bytes], size: int, chunk: int, location: Path, name: str) -> bytes:
    """Read ``size`` bytes in steps of at most ``chunk``; refuse the file as soon as it yields more."""
    parts, total = [], 0
    while True:
        part = read(min(chunk, size + 1 - total))
        if not part:
            return b"".join(parts)
        parts.append(part)
        total += len(part)
        if total > size:
            raise BundleIntegrityError(
                f"{location}: {name} holds more than the {size} bytes declared for it; the bundle is damaged or "
                "was crafted. Re-copy or re-export it."
            )


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a directory" if stat.S_IFMT(mode) == 0 else "not a plain file"


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _comparable(name: str) -> str:
    """The form under which two names are the same file on some file system or to some zip tool."""
    return unicodedata.normalize("NFC", posixpath.normpath(name)).casefold()


def _name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a file of a bundle (None: it can): names are plain, normalised,
    relative POSIX paths."""
    if not isinstance(name, str) or not name:
        return "an empty name"
    if name.startswith("/") or ".." in name.split("/"):
        return "a path outside the bundle"
    if "\\" in name:
        return "a name with a backslash (bundle names are POSIX paths: folder/file)"
    if any(ord(character) < 0x20 or character == "\x7f" for character in name):
        return "a name with a control character"
    if any(part in ("", ".") for part in name.split("/")):
        return "not a plain relative path (an empty or '.' part)"
    if name in _RESERVED:
        return f"the bundle's own {name}, which cannot be listed in the manifest"
    return None


def _file_entries(document: dict[str, Any], location: str) -> dict[str, tuple[str, int]]:
    """The manifest's ``files`` table as name -> (sha256, bytes), every name and size checked."""
    files = document.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{location}: {MANIFEST} has no 'files' table; it is not a radedge bundle manifest")
    entries: dict[str, tuple[str, int]] = {}
    seen: dict[str, str] = {}
    for name, entry in files.items():
        problem = _name_problem(name)
        if problem is not None:
            raise BundleIntegrityError(f"{location}: {MANIFEST} lists {name!r}, {problem}; re-export the bundle")
        key = _comparable(name)
        if key in seen:
            raise BundleIntegrityError(
                f"{location}: {MANIFEST} lists {seen[key]!r} and {name!r}, one file on some file systems; "
                "re-export the bundle with distinct names"
            )
        seen[key] = name
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest) or type(size) is not int or size < 0:
            raise BundleError(
                f'{location}: {MANIFEST} files[{name!r}] must be {{"sha256": <64 hex digits>, "bytes": <size>}}; '
                f"got {entry!r}. Re-export the bundle."
            )
        if size > MAX_FILE_BYTES:
            raise BundleError(
                f"{location}: {name} is declared {size} bytes; radedge loads files of up to {MAX_FILE_BYTES} bytes. "
                "Export a smaller model, or this is not a bundle radedge wrote."
            )
        entries[name] = (digest, size)
    total = sum(size for _, size in entries.values())
    if total > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"{location}: its files add up to {total} bytes; radedge loads bundles of up to {MAX_BUNDLE_BYTES} bytes. "
            "Ship fewer precisions in one bundle."
        )
    return entries


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            # json.loads would keep the last of a repeated key silently; another parser may keep the first.
            raise ValueError(f"the key {key!r} appears twice in one object")
        document[key] = value
    return document


def _parse_json(raw: bytes, location: Path | str) -> dict[str, Any]:
    try:
        document = json.loads(raw, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise BundleIntegrityError(
            f"{location}: {MANIFEST} is not valid JSON ({exc}); the bundle is damaged or was edited by hand"
        ) from None
    if not isinstance(document, dict):
        raise BundleError(f"{location}: {MANIFEST} must hold a JSON object")
    return document


def _check_seal(raw_manifest: bytes, location: str) -> str:
    """The manifest's own checksum, checked; returns it."""
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
    return recorded


def _parse_manifest(document: dict[str, Any], location: str) -> Manifest:
    try:
        return Manifest.from_document(document)
    except KeyError as exc:
        raise BundleError(f"{location}: {MANIFEST} lacks the field {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"{location}: {MANIFEST} has a malformed field: {exc}") from None
