"""Model bundles: loading, verifying and writing them (see ``loader``)."""

from __future__ import annotations

from .loader import (
    MANIFEST,
    Bundle,
    bundled_bundle_paths,
    bundled_models_path,
    default_bundle_path,
    load_bundle,
    pack_bundle,
    sha256_hex,
    write_bundle,
)

__all__ = [
    "MANIFEST",
    "Bundle",
    "bundled_bundle_paths",
    "bundled_models_path",
    "default_bundle_path",
    "load_bundle",
    "pack_bundle",
    "sha256_hex",
    "write_bundle",
]
