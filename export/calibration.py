"""The image sets an export is calibrated and judged on, as the network sees them at the console.

A folder of DICOM files goes through radedge's own path (``read_image`` -> the manifest's
lookup table -> the native preprocess op), never a different preprocessing, so INT8 scales
are fitted to the tensors the device will feed. A recipe's phantoms are made through that
same path by the recipe. Every set carries a sha256 that the bundle's provenance records:
of the files (names and bytes) for a folder, of the tensors for phantoms.

A folder may hold ``labels.json``, ``{"relative/path.dcm": {"head": "label", ...}}``, the
true class of classification heads; the gate then measures each head's AUC drop.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radedge._terminal import terminal_print
from radedge.errors import RadedgeError
from radedge.io import image_files
from radedge.spec import Manifest

from .loaders import ExportError
from .recipes.base import model_input

LABELS_FILE = "labels.json"


@dataclass(frozen=True)
class ImageSet:
    """Network inputs and where they came from.

    ``images``: float32[N, C, H, W], the model input of each image. ``labels``: head name ->
    bool[N, L], True where image n is of the head's label l (only heads with labels).
    ``source``: what the set is, for the report. ``sha256``: identifies the set.
    ``skipped``: files of a folder that could not be read, with the reason (no patient data).
    """

    images: np.ndarray
    source: str
    sha256: str
    labels: Mapping[str, np.ndarray] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "images": len(self), "sha256": self.sha256,
                "labelled_heads": sorted(self.labels), "skipped": len(self.skipped)}

    def head(self, count: int) -> ImageSet:
        """The first ``count`` images (same source and hash: a numeric check, not a new set)."""
        return ImageSet(self.images[:count], self.source, self.sha256,
                        {name: values[:count] for name, values in self.labels.items()})


def folder_set(directory: str | Path, manifest: Manifest, *, progress: Callable[[str], None] | None = None,
               limit: int | None = None) -> ImageSet:
    """Every image file under ``directory`` (sorted, hidden files and notes skipped) as the
    model ``manifest`` describes sees it. Unreadable files are skipped and listed; a folder
    with no readable image raises ``ExportError``."""
    root = Path(directory)
    if not root.is_dir():
        raise ExportError(f"{root} is not a folder; give a folder of DICOM files")
    files = image_files(root)
    if limit is not None:
        files = files[:limit]
    intensity = manifest.intensity
    voi = intensity.window if intensity.window is not None else intensity.voi
    digest = hashlib.sha256()
    tensors, names, skipped = [], [], []
    for index, path in enumerate(files):
        name = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
            tensors.append(model_input(data, manifest.preprocess, voi=voi, voi_index=intensity.voi_index)[0])
        except (RadedgeError, OSError, ValueError) as exc:
            # The type only: a message may quote header values.
            skipped.append(f"{name}: {type(exc).__name__}")
            continue
        names.append(name)
        digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
        if progress is not None and (index + 1) % max(1, len(files) // 10) == 0:
            progress(f"read {index + 1}/{len(files)} files of {root}")
    if not tensors:
        raise ExportError(f"no readable image in {root} ({len(files)} file(s); {len(skipped)} could not be read)")
    labels = _folder_labels(root, names, manifest)
    return ImageSet(np.stack(tensors).astype(np.float32), str(root), digest.hexdigest(), labels, tuple(skipped))


def tensor_set(images: np.ndarray, source: str, labels: Mapping[str, np.ndarray] | None = None) -> ImageSet:
    """Tensors made elsewhere (a recipe's phantoms), hashed by their bytes."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    digest = hashlib.sha256(f"{images.shape}".encode())
    digest.update(images.tobytes())
    return ImageSet(images, source, digest.hexdigest(), dict(labels or {}))


def _folder_labels(root: Path, names: list[str], manifest: Manifest) -> dict[str, np.ndarray]:
    path = root / LABELS_FILE
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} is not readable JSON ({exc}); it should map file -> {{head: label}}") from None
    if not isinstance(document, dict):
        raise ExportError(f"{path} must hold an object mapping file -> {{head: label}}")
    classification = {head.name: head for head in manifest.heads if head.kind == "classification"}
    labels: dict[str, np.ndarray] = {}
    for name, index in zip(names, range(len(names))):
        for head_name, label in (document.get(name) or {}).items():
            head = classification.get(head_name)
            if head is None or label not in head.labels:
                raise ExportError(
                    f"{path}: {name} gives {head_name}={label!r}, but the classification heads are "
                    f"{ {h.name: list(h.labels) for h in classification.values()} }"
                )
            table = labels.setdefault(head_name, np.zeros((len(names), len(head.labels)), dtype=bool))
            table[index, head.labels.index(label)] = True
    for head_name, table in labels.items():
        unlabelled = int((~table.any(axis=1)).sum())
        if unlabelled:
            raise ExportError(f"{path} labels {head_name} for some images but not {unlabelled} of them; label all or none")
    return labels


def print_progress(message: str) -> None:
    """One progress line on stderr; it may quote a file name, so it is escaped like every line radedge prints."""
    terminal_print(f"  {message}", file=sys.stderr, flush=True)
