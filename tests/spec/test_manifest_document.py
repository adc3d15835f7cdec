"""``Manifest.create`` / ``to_document``: an exporter builds a manifest from the spec classes,
and what it writes parses back to the same manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from radedge.bundle import bundled_bundle_paths, load_bundle
from radedge.spec import (
    SCHEMA_VERSION,
    CamDecode,
    Condition,
    DenseLevel,
    DetectionDecode,
    FlagRule,
    HeadSpec,
    HeatmapDecode,
    InputRegion,
    IntensitySpec,
    Manifest,
    Percentile,
    PreprocessSpec,
    Scope,
    Window,
)

TINY = sorted((Path(__file__).resolve().parents[1] / "models").glob("tiny_*"))


def _same(a: Manifest, b: Manifest) -> None:
    for name in ("model_id", "model_version", "description", "input_name", "input_shape", "preprocess",
                 "intensity", "heads", "scope", "display_head", "input_region", "provenance"):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("path", [*TINY, *bundled_bundle_paths()], ids=lambda p: p.name)
def test_every_committed_manifest_survives_a_round_trip(path: Path):
    manifest = load_bundle(path).manifest
    _same(Manifest.from_document({**manifest.to_document(), "schema_version": SCHEMA_VERSION}), manifest)


def test_create_writes_every_kind_of_field_and_reads_it_back():
    heads = (
        HeadSpec("boxes", "detection", ("a", "b"), "sigmoid",
                 DetectionDecode(levels=(DenseLevel("cls", "reg", 8, centerness="ctr"),), score_threshold=0.3),
                 flags=(FlagRule("BOX_A", "A at {where}", "boxes", "a", 0.6, locate_with="levels"),)),
        HeadSpec("levels", "heatmap", ("L1", "L2"), "none", HeatmapDecode(mode="argmax", threshold=0.0)),
        HeadSpec("grade", "classification", ("low", "high"), "softmax",
                 flags=(FlagRule("HIGH", "High", "grade", "high", 0.7,
                                 requires=(Condition("boxes", "b", 0.4),),
                                 operating_point={"sensitivity": 0.9}),),
                 codes={"high": {"scheme": "SCT", "value": "1", "meaning": "High"}}),
        HeadSpec("grade_cam", "cam", ("low", "high"), "none", CamDecode(explains="grade", floor=0.1)),
    )
    manifest = Manifest.create(
        model_id="made", model_version="2.0", description="every field",
        preprocess=PreprocessSpec(96, 128, resize="stretch", mean=(0.4,), std=(0.2,), channels=3),
        heads=heads,
        scope=Scope(modalities=("CT",), sop_classes=("1.2.840.10008.5.1.4.1.1.2",)),
        intensity=IntensitySpec(voi=Percentile(1, 99), window=Window(400, 1800)),
        display_head="grade",
        input_region=InputRegion("first", "mask", label="lesion", margin=0.2),
        provenance={"made_by": "a test"},
    )
    assert manifest.input_shape == (1, 3, 96, 128)
    document = manifest.to_document()
    assert document["outputs"][0]["decode"]["levels"] == [{"scores": "cls", "distances": "reg", "stride": 8.0,
                                                           "centerness": "ctr"}]
    assert document["outputs"][2]["flags"][0]["requires"] == [{"head": "boxes", "label": "b", "threshold": 0.4}]
    assert document["preprocessing"]["voi"] == {"percentile": [1.0, 99.0]}
    _same(Manifest.from_document({**document, "schema_version": SCHEMA_VERSION}), manifest)


def test_create_checks_like_loading_does():
    with pytest.raises(ValueError, match="display_head"):
        Manifest.create(
            model_id="m", model_version="1", description="", preprocess=PreprocessSpec(8, 8),
            heads=(HeadSpec("c", "classification", ("x",), "sigmoid"),), scope=Scope(), display_head="missing",
        )
    with pytest.raises(ValueError, match="not a heatmap head"):
        Manifest.create(
            model_id="m", model_version="1", description="", preprocess=PreprocessSpec(8, 8),
            heads=(HeadSpec("c", "classification", ("x",), "sigmoid",
                            flags=(FlagRule("X", "x", "c", "x", 0.5, locate_with="c"),)),),
            scope=Scope(),
        )
