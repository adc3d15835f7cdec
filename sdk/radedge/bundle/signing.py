"""Ed25519 signatures over a bundle's manifest.

``manifest.sig`` sits beside ``manifest.json``: ``{"algorithm": "Ed25519", "key_id": ...,
"signature": <base64>}``. The signed message is the exact bytes of ``manifest.json``, which
holds the sha256 of every other file, so one signature covers every byte of the bundle. It is
not listed in the manifest's ``files``: it signs the manifest, so it cannot be inside it.

A checksum only proves a bundle is whole: anyone can edit a flag threshold and reseal the
manifest. A signature proves who sealed it: a loader given trusted public keys refuses an
unsigned bundle, one signed by another key, and one whose manifest changed after signing.

A key id is the first 16 hex digits of the sha256 of the raw 32-byte public key.
``cryptography`` is imported only when a key is made, a bundle signed or a signature checked,
so a loader without trusted keys does not need it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, Union

from .._files import write_atomically
from ..errors import BundleSignatureError, InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE = "manifest.sig"
ALGORITHM = "Ed25519"
#: A signature file is under 200 bytes and a PEM key under 200; anything far larger is not one.
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_KEY_BYTES = 64 * 1024
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_SIGNATURE_BYTES = 64

TrustedKey = Union[str, os.PathLike, "Ed25519PublicKey"]


@dataclass(frozen=True)
class BundleSignature:
    """What is known of who sealed a bundle.

    ``state``: ``"unsigned"`` (no ``manifest.sig``), ``"verified"`` (signed by ``key_id``, one
    of the trusted keys given, and the signature matches the manifest) or ``"not checked"``
    (signed, but no trusted keys were given; ``key_id`` is what the signature file claims, or
    None when it cannot be read).
    """

    state: Literal["unsigned", "verified", "not checked"]
    key_id: str | None = None

    def describe(self) -> str:
        if self.state == "unsigned":
            return "unsigned"
        signer = f"signed by key {self.key_id}" if self.key_id else f"signed (its {SIGNATURE} is unreadable)"
        if self.state == "verified":
            return f"{signer}, verified"
        return f"{signer}, not checked: no trusted keys given"

    def to_document(self) -> dict[str, Any]:
        return {"state": self.state, "key_id": self.key_id}


UNSIGNED = BundleSignature("unsigned")


def _crypto() -> SimpleNamespace:
    try:
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise MissingDependencyError("cryptography", "Signing bundles and checking their signatures") from None
    return SimpleNamespace(
        serialization=serialization, ed25519=ed25519, InvalidSignature=InvalidSignature,
        UnsupportedAlgorithm=UnsupportedAlgorithm,
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the sha256 of the raw 32-byte public key."""
    serialization = _crypto().serialization
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(path: str | os.PathLike) -> str:
    """Make an Ed25519 key pair; return its key id.

    The private key goes to ``path`` (PEM PKCS8, unencrypted, mode 0600), the public key to
    ``path + ".pub"`` (PEM SubjectPublicKeyInfo). Refuses (``FileExistsError``) when either
    file exists: overwriting a signing key would orphan every bundle it signed.
    """
    crypto = _crypto()
    serialization = crypto.serialization
    private_path, public_path = Path(path), Path(f"{path}.pub")
    for existing in (private_path, public_path):
        if os.path.lexists(existing):
            raise FileExistsError(
                f"{existing} already exists; generate_key never overwrites a key. Choose another path, "
                "or delete the old pair once no bundle you deploy is signed with it"
            )
    private_key = crypto.ed25519.Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    _write_new_secret(
        private_path,
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    public_pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomically(public_path, public_pem)
    return key_id(public_key)


def _write_new_secret(path: Path, data: bytes) -> None:
    """Write ``data`` whole, readable by its owner only, and never over an existing file.

    The temporary file is created 0600 (so the key is never readable by others, not even for a
    moment) and hard-linked into place, which fails instead of replacing a file made meanwhile.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            # The umask may only have narrowed 0600; make the mode exactly that.
            os.fchmod(out.fileno(), 0o600)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file written by ``generate_key`` (``radedge keygen``)."""
    crypto = _crypto()
    data = _read_key_file(path)
    try:
        key = crypto.serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, crypto.UnsupportedAlgorithm) as exc:
        hint = " (that is a public key; sign with the private key beside it)" if b"PUBLIC KEY" in data else ""
        raise BundleSignatureError(
            f"{path} is not an unencrypted PEM private key{hint}: {exc}. Make a key pair with "
            "radedge.bundle.signing.generate_key"
        ) from None
    if not isinstance(key, crypto.ed25519.Ed25519PrivateKey):
        raise BundleSignatureError(
            f"{path} holds a {type(key).__name__}; bundles are signed with Ed25519 keys. "
            "Make one with radedge.bundle.signing.generate_key"
        )
    return key


def load_public_key(key: TrustedKey) -> Ed25519PublicKey:
    """A trusted key: an ``Ed25519PublicKey``, or the path of a PEM public key file (``KEY.pub``)."""
    crypto = _crypto()
    if isinstance(key, crypto.ed25519.Ed25519PublicKey):
        return key
    if not isinstance(key, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"a trusted key is a public key file path or an Ed25519PublicKey, not a {type(key).__name__}",
            argument="trusted_keys", received=type(key).__name__,
            expected="public key file paths (str or os.PathLike) or Ed25519PublicKey objects")
    data = _read_key_file(key)
    if b"PRIVATE KEY" in data:
        raise BundleSignatureError(
            f"{key} is a private key; trust its public key ({key}.pub) instead, and keep the private key "
            "where bundles are signed, never on the console"
        )
    try:
        public = crypto.serialization.load_pem_public_key(data)
    except (ValueError, crypto.UnsupportedAlgorithm) as exc:
        raise BundleSignatureError(
            f"{key} is not a PEM public key ({exc}); pass the public key file (KEY.pub) that generate_key wrote"
        ) from None
    if not isinstance(public, crypto.ed25519.Ed25519PublicKey):
        raise BundleSignatureError(
            f"{key} holds a {type(public).__name__}; bundles are signed with Ed25519 keys (generate_key makes a pair)"
        )
    return public


def load_trusted_keys(trusted_keys: Iterable[TrustedKey] | TrustedKey) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key for every trusted key (a lone path counts as one key)."""
    if isinstance(trusted_keys, (str, os.PathLike)) or not isinstance(trusted_keys, Iterable):
        trusted_keys = [trusted_keys]
    keys = {}
    for key in trusted_keys:
        public = load_public_key(key)
        keys[key_id(public)] = public
    if not keys:
        raise InvalidArgumentError(
            "trusted_keys is empty, so no bundle could be loaded; pass the public keys you trust, "
            "or None to load without checking signatures",
            argument="trusted_keys", received=[], expected="one or more public keys, or None",
        )
    return keys


def _read_key_file(path: str | os.PathLike) -> bytes:
    if not Path(path).is_file():
        raise BundleSignatureError(f"key file {path} does not exist or is not a file; check the path")
    try:
        with open(path, "rb") as source:
            data = source.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise BundleSignatureError(f"cannot read the key file {path}: {exc.strerror}; check its permissions") from None
    if len(data) > MAX_KEY_BYTES:
        raise BundleSignatureError(f"{path} is larger than any PEM key; pass the public key file generate_key wrote")
    return data


def sign_manifest(raw_manifest: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The ``manifest.sig`` document over the exact bytes of ``manifest.json``."""
    document = {
        "algorithm": ALGORITHM,
        "key_id": key_id(private_key.public_key()),
        "signature": base64.b64encode(private_key.sign(raw_manifest)).decode("ascii"),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def sign_bundle(bundle_path: str | os.PathLike, private_key_path: str | os.PathLike) -> str:
    """Verify the bundle's checksums, then sign its manifest; return the key id.

    A directory gets ``manifest.sig`` beside its manifest; a ``.radedge`` zip is rewritten with
    a ``manifest.sig`` member. Either appears whole or not at all. An earlier signature is
    replaced.
    """
    # Imported here: the loader imports this module to check signatures.
    from .loader import archive_bytes, load_bundle

    private_key = load_private_key(private_key_path)
    bundle = load_bundle(bundle_path)
    signature = sign_manifest(bundle.manifest_bytes, private_key)
    location = Path(bundle.location)
    if location.is_dir():
        write_atomically(location / SIGNATURE, signature)
    else:
        write_atomically(location, archive_bytes(bundle, signature))
    return key_id(private_key.public_key())


def parse_signature(raw: bytes) -> tuple[str, bytes]:
    """(key id, 64-byte signature) from a ``manifest.sig``; ValueError saying what is wrong."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"it is not JSON ({exc})") from None
    expected = {"algorithm", "key_id", "signature"}
    if not isinstance(document, dict) or set(document) != expected:
        raise ValueError('it must be {"algorithm": "Ed25519", "key_id": ..., "signature": ...}')
    if document["algorithm"] != ALGORITHM:
        raise ValueError(f"algorithm {document['algorithm']!r} is not {ALGORITHM}")
    signer = document["key_id"]
    if not isinstance(signer, str) or not _KEY_ID.fullmatch(signer):
        raise ValueError(f"key_id {signer!r} is not 16 lowercase hex digits")
    try:
        signature = base64.b64decode(document["signature"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError("signature is not base64") from None
    if len(signature) != _SIGNATURE_BYTES:
        raise ValueError(f"signature is {len(signature)} bytes; an Ed25519 signature is {_SIGNATURE_BYTES}")
    return signer, signature


def check_signature(
    raw_manifest: bytes,
    raw_signature: bytes | None,
    trusted_keys: Sequence[TrustedKey] | TrustedKey | None,
    location: str,
) -> BundleSignature:
    """Whether ``raw_signature`` (None: no ``manifest.sig``) proves ``raw_manifest`` was signed
    by one of ``trusted_keys``. Without trusted keys nothing is refused: the state says whether
    the bundle is signed, and by whom it claims. With them, anything short of a valid
    signature by one of them raises ``BundleSignatureError``."""
    if trusted_keys is None:
        if raw_signature is None:
            return UNSIGNED
        try:
            signer: str | None = parse_signature(raw_signature)[0]
        except ValueError:
            signer = None
        return BundleSignature("not checked", signer)
    keys = load_trusted_keys(trusted_keys)
    trusted = ", ".join(keys)
    if raw_signature is None:
        raise BundleSignatureError(
            f"{location} is unsigned, and only bundles signed by a trusted key ({trusted}) are loaded here. "
            "Sign it where it was exported (radedge.bundle.signing.sign_bundle) with a key trusted here"
        )
    try:
        signer, signature = parse_signature(raw_signature)
    except ValueError as exc:
        raise BundleSignatureError(
            f"{location}: {SIGNATURE} is malformed: {exc}. Re-sign the bundle (radedge.bundle.signing.sign_bundle) "
            "or restore it as it was delivered"
        ) from None
    key = keys.get(signer)
    if key is None:
        raise BundleSignatureError(
            f"{location} is signed by key {signer}, which is not trusted here (trusted: {trusted}). "
            "Trust that key's public key file if you know who holds it, or have the bundle signed with a trusted key"
        )
    try:
        key.verify(signature, raw_manifest)
    except _crypto().InvalidSignature:
        raise BundleSignatureError(
            f"{location}: the signature by key {signer} does not match manifest.json; the manifest was changed "
            "or resealed after signing. Restore the bundle as it was signed, or re-export and re-sign it"
        ) from None
    return BundleSignature("verified", signer)
