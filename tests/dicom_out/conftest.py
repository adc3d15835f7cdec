"""Results on every bundled example, made once for the DICOM output tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").rglob("*.dcm"))


@pytest.fixture(scope="session")
def models():
    from radedge.pipeline import load_models

    return load_models(None, threads=2)


@pytest.fixture(scope="session")
def analyses(models):
    """``{example path relative to examples/: ImageAnalysis}`` for every bundled example."""
    return {str(path.relative_to(REPO / "examples")): models.predict(path) for path in EXAMPLES}
