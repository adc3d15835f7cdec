"""Model bundles: loading, verifying and writing them (see ``loader``), and signing them
(see ``signing``)."""

from __future__ import annotations

from .loader import (
    MANIFEST,
    MAX_BUNDLE_BYTES,
    MAX_FILE_BYTES,
    MAX_MANIFEST_BYTES,
    Bundle,
    bundled_bundle_paths,
    bundled_models_path,
    default_bundle_path,
    load_bundle,
    pack_bundle,
    sha256_hex,
    write_bundle,
)
from .signing import SIGNATURE, BundleSignature, generate_key, key_id, load_public_key, sign_bundle

__all__ = [
    "MANIFEST",
    "MAX_BUNDLE_BYTES",
    "MAX_FILE_BYTES",
    "MAX_MANIFEST_BYTES",
    "SIGNATURE",
    "Bundle",
    "BundleSignature",
    "bundled_bundle_paths",
    "bundled_models_path",
    "default_bundle_path",
    "generate_key",
    "key_id",
    "load_bundle",
    "load_public_key",
    "pack_bundle",
    "sha256_hex",
    "sign_bundle",
    "write_bundle",
]
