"""Sets of phantoms on disk: training/test sets, the demo examples, the transfer-syntax fixtures.

Every writer also writes a JSON file next to the DICOM files with the ground truth (the
files themselves never carry it). Files are written under a temporary name and renamed,
so a set is never seen half-written file by file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from .ct_vertebra import ct_vertebra_slice
from .dicom import TRANSFER_SYNTAXES, write_dicom
from .long_bone import long_bone_radiograph
from .phantom import LABELS, Phantom
from .spine import lumbar_spine_radiograph

GROUND_TRUTH_FILE = "ground_truth.json"
KINDS = ("long_bone", "lumbar_spine")


def _write_json(path: Path, content: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=1) + "\n")
    os.replace(partial, path)


def _cycled(values: Sequence | None, index: int):
    return None if not values else values[index % len(values)]


def write_set(
    out_dir: str | Path,
    count: int,
    *,
    seed: int = 0,
    kind: str = "long_bone",
    labels: Sequence[str] | None = None,
    transfer_syntaxes: Sequence[str] | None = None,
) -> list[Path]:
    """Write ``count`` phantoms (seeds ``seed`` .. ``seed + count - 1``) and their ground truth.

    ``labels`` (long bones only) are cycled over the set, e.g. ``LABELS`` for a balanced
    set; ``None`` lets each seed draw its label. ``transfer_syntaxes`` (UIDs) are cycled
    likewise; ``None`` writes Explicit VR Little Endian. Files are named
    ``<kind>_<seed:06d>.dcm``; ``ground_truth.json`` lists, per file, the transfer
    syntax and :meth:`Phantom.ground_truth`. Returns the DICOM paths in seed order.

    Sets drawn from different base seeds overlap when their seed ranges do: keep
    training and test sets apart by at least ``count``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if labels is not None:
        if kind != "long_bone":
            raise ValueError("labels apply to long_bone phantoms only; lumbar spines have per-level ground truth")
        unknown = [label for label in labels if label not in LABELS]
        if unknown or not labels:
            raise ValueError(f"labels must be a non-empty sequence drawn from {LABELS}, got {list(labels)!r}")
    syntaxes = [UID(str(uid)) for uid in (transfer_syntaxes or [ExplicitVRLittleEndian])]
    unknown_syntaxes = [uid for uid in syntaxes if uid not in TRANSFER_SYNTAXES]
    if unknown_syntaxes:
        raise ValueError(f"unsupported transfer syntaxes {unknown_syntaxes}; choose from {sorted(TRANSFER_SYNTAXES)}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, items = [], []
    for index in range(count):
        phantom_seed = seed + index
        if kind == "long_bone":
            phantom = long_bone_radiograph(phantom_seed, label=_cycled(labels, index))
        else:
            phantom = lumbar_spine_radiograph(phantom_seed)
        syntax = _cycled(syntaxes, index)
        if syntax == JPEGExtended12Bit and phantom.bits_stored > 12:
            raise ValueError(
                f"seed {phantom_seed} has BitsStored {phantom.bits_stored}; JPEG Extended holds 12 bits at most. "
                "Leave JPEG Extended out of transfer_syntaxes for sets with drawn bit depths"
            )
        path = write_dicom(phantom, out / f"{kind}_{phantom_seed:06d}.dcm", transfer_syntax=syntax)
        paths.append(path)
        items.append({"file": path.name, "transfer_syntax_uid": str(syntax), **phantom.ground_truth()})
    _write_json(out / GROUND_TRUTH_FILE, {"generator": "radedge.export.phantoms", "kind": kind, "items": items})
    return paths


# The bundled demo images: (file name, kind, seed, fixed arguments, transfer syntax).
# Seeds were picked for textbook-looking lesions; the doses and bit depths keep the folder
# near 11 MB (lossless JPEG-LS/J2K cost ~5 bits per pixel at 12 bits, RLE ~8).
EXAMPLES = (
    (
        "femur_malignant.dcm",
        "long_bone",
        13,
        {
            "label": "malignant",
            "body_part": "FEMUR",
            "bits_stored": 12,
            "photometric": "MONOCHROME2",
            "detected_quanta": 20000.0,
            "rows": 2400,
            "columns": 2000,
        },
        JPEGLSLossless,
    ),
    (
        "tibia_benign.dcm",
        "long_bone",
        21,
        {
            "label": "benign",
            "body_part": "TIBIA",
            "bits_stored": 12,
            "photometric": "MONOCHROME2",
            "detected_quanta": 20000.0,
            "rows": 2400,
            "columns": 2000,
        },
        JPEG2000Lossless,
    ),
    (
        "femur_no_tumour.dcm",
        "long_bone",
        7,
        {
            "label": "no_tumour",
            "body_part": "FEMUR",
            "bits_stored": 10,
            "photometric": "MONOCHROME2",
            "detected_quanta": 20000.0,
            "rows": 2000,
            "columns": 2000,
        },
        RLELossless,
    ),
    (
        "humerus_malignant_monochrome1.dcm",
        "long_bone",
        31,
        {
            "label": "malignant",
            "body_part": "HUMERUS",
            "bits_stored": 14,
            "photometric": "MONOCHROME1",
            "detected_quanta": 30000.0,
            "rows": 2200,
            "columns": 2000,
        },
        JPEGLSLossless,
    ),
)
SPINE_EXAMPLES = (
    (
        "lumbar_spine_fracture.dcm",
        "lumbar_spine",
        4,
        {"bits_stored": 10, "photometric": "MONOCHROME2", "detected_quanta": 6000.0, "rows": 2400, "columns": 2000},
        JPEGLSLossless,
    ),
    (
        "lumbar_spine_monochrome1.dcm",
        "lumbar_spine",
        6,
        {"bits_stored": 10, "photometric": "MONOCHROME1", "detected_quanta": 6000.0, "rows": 2400, "columns": 2000},
        JPEG2000Lossless,
    ),
)


# The CT examples: (file name, seed, label, transfer syntax). Seeds from 2 000 000, away
# from every training, validation and held-out seed, picked for lesions of at least 5 mm
# (blastic) / 6 mm (lytic) with clear contrast and a noise level under 22 HU.
CT_EXAMPLES = (
    ("ct_vertebra_normal.dcm", 2_000_000, "normal", RLELossless),
    ("ct_vertebra_blastic.dcm", 2_000_012, "blastic", RLELossless),
    ("ct_vertebra_lytic.dcm", 2_000_003, "lytic", RLELossless),
    ("ct_vertebra_mixed.dcm", 2_000_046, "mixed", RLELossless),
)


def write_examples(out_dir: str | Path = "examples/radiographs", *, spine_dir: str | Path | None = None,
                   ct_dir: str | Path | None = None) -> list[Path]:
    """Write the demo radiographs (4 long bones), with ``spine_dir`` 2 lumbar spines, and
    with ``ct_dir`` 4 axial CT vertebra slices (normal, blastic, lytic, mixed).

    Deterministic: the same files and ``ground_truth.json`` every time. Returns the paths.
    """
    written = _write_listed(Path(out_dir), EXAMPLES)
    if spine_dir is not None:
        written += _write_listed(Path(spine_dir), SPINE_EXAMPLES)
    if ct_dir is not None:
        written += _write_ct_examples(Path(ct_dir))
    return written


def _write_ct_examples(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths, items = [], []
    for name, seed, label, syntax in CT_EXAMPLES:
        ct_slice = ct_vertebra_slice(seed, label=label)
        paths.append(write_dicom(ct_slice, out / name, transfer_syntax=syntax))
        items.append({"file": name, "transfer_syntax_uid": str(syntax), **ct_slice.ground_truth()})
    _write_json(out / GROUND_TRUTH_FILE, {"generator": "radedge.export.phantoms", "items": items})
    return paths


def _write_listed(out: Path, listing) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths, items = [], []
    for name, kind, seed, arguments, syntax in listing:
        make = long_bone_radiograph if kind == "long_bone" else lumbar_spine_radiograph
        phantom = make(seed, **arguments)
        path = write_dicom(phantom, out / name, transfer_syntax=syntax)
        paths.append(path)
        items.append({"file": name, "transfer_syntax_uid": str(syntax), **phantom.ground_truth()})
    _write_json(out / GROUND_TRUTH_FILE, {"generator": "radedge.export.phantoms", "items": items})
    return paths


# Transfer-syntax fixtures: one small crop of one phantom in every syntax.
TRANSFER_SYNTAX_SEED = 13
TRANSFER_SYNTAX_CROP = (384, 320)  # rows, columns
TRANSFER_SYNTAX_ORDER = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    JPEGLosslessSV1,
    JPEGExtended12Bit,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
)


def transfer_syntax_phantoms() -> dict[str, Phantom]:
    """The fixture phantom, 12-bit, cropped around its lesion: ``{"MONOCHROME2": ..., "MONOCHROME1": ...}``.

    Both come from the same seed, so the MONOCHROME1 pixels are exactly
    ``4095 - MONOCHROME2 pixels``.
    """
    phantoms = {}
    rows, columns = TRANSFER_SYNTAX_CROP
    for photometric in ("MONOCHROME2", "MONOCHROME1"):
        full = long_bone_radiograph(
            TRANSFER_SYNTAX_SEED,
            label="malignant",
            bits_stored=12,
            photometric=photometric,
            body_part="FEMUR",
            rows=2400,
            columns=2000,
        )
        x, y, width, height = full.lesion["bbox_xywh_px"]
        top = int(np.clip(y + height // 2 - rows // 2, 0, full.rows - rows))
        left = int(np.clip(x + width // 2 - columns // 2, 0, full.columns - columns))
        phantoms[photometric] = full.cropped(top, left, rows, columns)
    return phantoms


def _pixel_digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels, dtype="<u2").tobytes()).hexdigest()


def write_transfer_syntax_set(out_dir: str | Path = "tests/data/transfer_syntaxes",
                              syntaxes: Sequence[str] | None = None) -> list[Path]:
    """Write the fixture phantom in every supported transfer syntax, plus ``index.json``.

    ``index.json`` lists per file: transfer syntax UID and name, lossless yes/no,
    photometric interpretation, encoder, the SHA-256 of the decoded stored values
    (uint16 little-endian, row-major), a few (row, column, value) spot checks, the
    largest absolute difference from the original stored values (0 for lossless), and
    the SHA-256 of the original stored values, which every lossless decode must match.

    ``syntaxes``: only these (UIDs from ``TRANSFER_SYNTAX_ORDER``), their entries replacing or
    joining those of the ``index.json`` already there; the other files are left as they are.
    ``None``: all of them, and a new ``index.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = TRANSFER_SYNTAX_ORDER if syntaxes is None else tuple(UID(str(uid)) for uid in syntaxes)
    unknown = [uid for uid in chosen if uid not in TRANSFER_SYNTAX_ORDER]
    if unknown:
        raise ValueError(f"no transfer-syntax fixture is made in {unknown}; choose from {list(TRANSFER_SYNTAX_ORDER)}")
    paths, files = [], []
    rows, columns = TRANSFER_SYNTAX_CROP
    spots = [
        (0, 0),
        (rows // 2, columns // 2),
        (rows - 1, columns - 1),
        (rows // 3, 2 * columns // 3),
        (7, columns - 11),
    ]
    for photometric, phantom in transfer_syntax_phantoms().items():
        suffix = "mono1" if photometric == "MONOCHROME1" else "mono2"
        for uid in chosen:
            syntax = TRANSFER_SYNTAXES[uid]
            path = write_dicom(phantom, out / f"{syntax.short_name}_{suffix}.dcm", transfer_syntax=uid)
            decoded = pydicom.dcmread(path).pixel_array
            paths.append(path)
            files.append(
                {
                    "file": path.name,
                    "transfer_syntax_uid": str(uid),
                    "transfer_syntax_name": uid.name,
                    "lossless": syntax.lossless,
                    "photometric": photometric,
                    "encoder": syntax.encoder,
                    "bits_stored": phantom.bits_stored,
                    "shape": [rows, columns],
                    "dtype": "uint16",
                    "pixel_sha256": _pixel_digest(decoded),
                    "original_sha256": _pixel_digest(phantom.stored),
                    "max_abs_error": int(np.abs(decoded.astype(np.int32) - phantom.stored.astype(np.int32)).max()),
                    "spot_values": [[r, c, int(decoded[r, c])] for r, c in spots],
                }
            )
    if syntaxes is not None:
        written = {entry["file"] for entry in files}
        kept = [entry for entry in json.loads((out / "index.json").read_text())["files"] if entry["file"] not in written]
        # The order a full run writes: MONOCHROME2 first, then by TRANSFER_SYNTAX_ORDER.
        files = sorted(kept + files, key=lambda entry: (entry["photometric"] != "MONOCHROME2",
                                                        TRANSFER_SYNTAX_ORDER.index(entry["transfer_syntax_uid"])))
    _write_json(
        out / "index.json",
        {
            "generated_by": "python -m radedge.export.phantoms transfer-syntaxes --out tests/data/transfer_syntaxes",
            "phantom": {
                "kind": "long_bone",
                "seed": TRANSFER_SYNTAX_SEED,
                "label": "malignant",
                "crop_rows_columns": [rows, columns],
            },
            "files": files,
        },
    )
    return paths
