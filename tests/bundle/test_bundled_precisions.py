"""Every bundled model carries FP32, FP16 and INT8, each with the gate figures it passed, and
each precision runs end to end on the examples with the flags FP32 raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radedge.bundle import bundled_bundle_paths, load_bundle
from radedge.pipeline import load_models
from radedge.spec import PRECISION_FILES, PRECISIONS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUNDLES = bundled_bundle_paths()


@pytest.mark.parametrize("path", BUNDLES, ids=[path.name for path in BUNDLES])
def test_every_precision_is_there_with_the_gate_it_passed(path):
    bundle = load_bundle(path)
    manifest = bundle.manifest
    assert tuple(manifest.precisions) == PRECISIONS
    report = json.loads(bundle.read("gate.json"))
    assert report["thresholds"] == manifest.gate.to_document()
    for name, precision in manifest.precisions.items():
        assert precision.file == PRECISION_FILES[name] and precision.file in manifest.files
        assert precision.gate["passed"] is True
        assert precision.gate["reference"] == ("pytorch" if name == "fp32" else "fp32")
        assert precision.gate["flag_changes"] <= manifest.gate.flag_changes
        assert report["precisions"][name]["written"] is True and not report["precisions"][name]["failures"]
        assert set(precision.gate["heads"]) == {head.name for head in manifest.heads}
    assert report["calibration"]["images"] > 0 and len(manifest.provenance["calibration"]["sha256"]) == 64


@pytest.fixture(scope="module")
def fp32_flags():
    return _flags("fp32")


def _flags(precision: str) -> dict[str, list[str]]:
    models = load_models(precision=precision, threads=2)
    return {
        str(path.relative_to(EXAMPLES)): sorted(flag.code for flag in models.predict(path).flags)
        for path in sorted(EXAMPLES.rglob("*.dcm"))
    }


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_each_precision_raises_the_flags_fp32_raises_on_the_examples(precision, fp32_flags):
    assert sum(map(len, fp32_flags.values())) > 0
    assert _flags(precision) == fp32_flags
