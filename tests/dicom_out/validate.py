"""An independent IOD validator for the DICOM objects radedge writes: dicom3tools' ``dciodvfy``
(Debian package dicom3tools). Tests that need it skip, saying so, where it is not installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

DCIODVFY = shutil.which("dciodvfy")

needs_dciodvfy = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (apt-get install dicom3tools)"
)


@dataclass(frozen=True)
class Verdict:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    output: str


def dciodvfy(dataset_or_path: Dataset | str | Path) -> Verdict:
    """Run ``dciodvfy`` on a data set (written to a temporary file, with its file meta) or a
    file; its ``Error`` and ``Warning`` lines."""
    with tempfile.TemporaryDirectory() as folder:
        if isinstance(dataset_or_path, Dataset):
            path = Path(folder) / "object.dcm"
            dataset_or_path.save_as(path, enforce_file_format=True)
        else:
            path = Path(dataset_or_path)
        done = subprocess.run([DCIODVFY, "-new", str(path)], capture_output=True, text=True, timeout=120)
    lines = (done.stdout + done.stderr).splitlines()
    return Verdict(
        errors=tuple(line for line in lines if line.startswith("Error")),
        warnings=tuple(line for line in lines if line.startswith("Warning")),
        output=done.stdout + done.stderr,
    )
