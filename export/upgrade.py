"""Upgrade a bundle's manifest to the current schema and seal it again, its model files unchanged.

A schema 1 manifest named each head by its ONNX output (``tumor_logits``); schema 2 names it by
what it means (``tumor``) and keeps the output in ``tensor`` (see ``radedge.spec.manifest``).
``upgrade_bundle`` rewrites ``manifest.json`` by ``radedge.spec.upgrade_document``, renames the
heads of the gate report (``gate.json``) alike, optionally adds the model's ``license``, and
seals the result with ``radedge.bundle.write_bundle``, as an export does: every checksum is
recomputed, the models' bytes are those the old manifest verified.

    python -m radedge.export.upgrade BUNDLE [--license-id Apache-2.0 --license-terms TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from radedge.bundle import load_bundle, write_bundle
from radedge.bundle.signing import SIGNATURE
from radedge.spec import ModelLicense, upgrade_document
from radedge.spec.manifest import rename_gate_heads

from .loaders import ExportError
from .pipeline import GATE_REPORT


def upgrade_bundle(directory: str | os.PathLike, license: ModelLicense | None = None) -> Path:
    """Upgrade the bundle directory ``directory`` in place (see the module); returns it.

    Refuses a signed bundle (``ExportError``): its signature covers the old manifest, so
    upgrade an unsigned copy and sign it again (``radedge sign``)."""
    directory = Path(directory)
    bundle = load_bundle(directory)
    if bundle.signature_bytes is not None or (directory / SIGNATURE).exists():
        raise ExportError(
            f"{directory} is signed; upgrading rewrites its manifest, so the signature would no longer hold. "
            f"Upgrade a copy without {SIGNATURE}, then sign it again with radedge sign."
        )
    old = bundle.manifest.raw
    document = upgrade_document(old)
    renamed = {
        before["name"]: after["name"] for before, after in zip(old.get("outputs", ()), document["outputs"])
    }
    if license is not None:
        document["license"] = license.to_document()
    body = {key: value for key, value in document.items() if key not in ("files", "manifest_sha256", "schema_version")}
    files = {name: bundle.read(name) for name in bundle.manifest.files}
    if GATE_REPORT in files:
        report = rename_gate_heads(json.loads(files[GATE_REPORT]), renamed)
        files[GATE_REPORT] = (json.dumps(report, indent=2) + "\n").encode()
    write_bundle(directory, body, files)
    load_bundle(directory)  # the sealed result verifies and parses, or this raises
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m radedge.export.upgrade", description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", help="bundle directories, upgraded in place")
    parser.add_argument("--license-id", help="SPDX identifier of the model's licence, e.g. Apache-2.0")
    parser.add_argument("--license-terms", help="what a user must know about the model's use")
    args = parser.parse_args(argv)
    if (args.license_id is None) != (args.license_terms is None):
        parser.error("give --license-id and --license-terms together")
    license = ModelLicense(args.license_id, args.license_terms) if args.license_id else None
    for bundle in args.bundles:
        print(upgrade_bundle(bundle, license))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
