"""What ``radedge export`` runs: intake, the image sets, the export, the final table.

The command line itself (arguments, help) is ``radedge.cli``'s, so ``radedge export --help``
works where torch is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from radedge._terminal import terminal_print
from radedge.errors import MissingDependencyError
from radedge.spec import Manifest
from radedge.spec.manifest import SCHEMA_VERSION

from .calibration import folder_set, print_progress
from .loaders import ExportError
from .pipeline import CALIBRATION_PHANTOMS, export_bundle, recipe_manifest, recipe_sets


def run_export(args: argparse.Namespace) -> bool:
    """``radedge export``: print the gate's table and what was written; True when every
    requested precision was written, False when the gate refused one (the others are written).
    Raises ``RadedgeError`` or ``OSError`` when nothing could be exported: the command line
    turns each into its exit status."""
    report = _export(args)
    for line in report.table().splitlines():
        terminal_print(line)
    terminal_print(f"bundle {report.bundle}: {', '.join(report.written)}"
                   + (f"; refused {', '.join(report.refused)}" if report.refused else ""))
    return report.complete


def _export(args: argparse.Namespace):
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "radedge export") from None
    from .intake import load_checkpoint
    from .recipes import recipe

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.recipe and args.manifest:
        raise ExportError("--recipe builds the manifest itself; drop --manifest (or --recipe)")
    if not args.recipe and not args.manifest:
        raise ExportError(
            "a checkpoint without --recipe needs --manifest: a manifest.json (or a bundle folder) that "
            "describes the model's input, preprocessing, heads and flags"
        )
    if not args.recipe and not args.validation:
        raise ExportError("give --validation DIR: a folder of DICOM files the precisions are judged on")
    try:
        model_recipe = recipe(args.recipe) if args.recipe else None
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    # -q: the table and the bundle line only.
    progress = (lambda _: None) if getattr(args, "quiet", False) else print_progress
    progress(f"reading {args.checkpoint}")
    checkpoint = load_checkpoint(args.checkpoint, recipe=model_recipe, factory=args.factory)
    provenance = {"checkpoint_sha256": checkpoint.sha256, "checkpoint_format": checkpoint.format}
    if isinstance(checkpoint.metadata.get("training"), dict):
        provenance["training"] = checkpoint.metadata["training"]
    precisions = tuple(dict.fromkeys(args.precision))
    if model_recipe is not None:
        progress(f"{model_recipe.model_id}: validation and calibration phantoms")
        val_data, validation, calibration = recipe_sets(
            model_recipe, validation_count=args.validation_count or model_recipe.plan.val,
            calibration_count=args.calibration_count or CALIBRATION_PHANTOMS, workers=max(1, os.cpu_count() or 1),
        )
        manifest = recipe_manifest(model_recipe, checkpoint.module, val_data, provenance)
        if args.validation:
            validation = folder_set(args.validation, manifest, progress=progress)
        if args.calibration:
            calibration = folder_set(args.calibration, manifest, progress=progress)
        return export_bundle(checkpoint.module, manifest, out=args.out, validation=validation,
                             calibration=calibration, precisions=precisions, output_names=model_recipe.output_names,
                             sign_key=args.sign, progress=progress)
    manifest = read_manifest(args.manifest)
    validation = folder_set(args.validation, manifest, progress=progress)
    calibration = folder_set(args.calibration, manifest, progress=progress) if args.calibration else None
    outputs = args.outputs.split(",") if args.outputs else None
    return export_bundle(checkpoint.module, manifest, out=args.out, validation=validation, calibration=calibration,
                         precisions=precisions, output_names=outputs, provenance=provenance, sign_key=args.sign,
                         progress=progress)


def read_manifest(path: str | os.PathLike) -> Manifest:
    """A manifest to export with: a bundle folder's ``manifest.json``, or a manifest
    document (what ``Manifest.to_document`` writes; ``files`` and digests are ignored)."""
    location = Path(path)
    if location.is_dir():
        location = location / "manifest.json"
    try:
        document = json.loads(location.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"cannot read the manifest {location}: {exc}") from None
    if not isinstance(document, dict):
        raise ExportError(f"{location} must hold a JSON object (a radedge manifest)")
    for generated in ("files", "manifest_sha256", "precisions"):
        document.pop(generated, None)
    try:
        # A schema 1 document (an older bundle's manifest) is upgraded; one without a version is the current schema.
        return Manifest.from_document({**document, "schema_version": document.get("schema_version", SCHEMA_VERSION)})
    except KeyError as exc:
        raise ExportError(f"{location} lacks the field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ExportError(f"{location} has a malformed field: {exc}") from None
