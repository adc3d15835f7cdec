"""Result objects a console consumes: read back from JSON (from_dict), pickled small, printed
short. Every bundled model on every example image."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from radedge.errors import NoImageError, NotDicomSourceError
from radedge.heads import CamResult, ClassificationResult, SegmentationResult
from radedge.pipeline import load_models
from radedge.results import ImageAnalysis, Prediction

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGES = sorted(EXAMPLES.rglob("*.dcm"))


@pytest.fixture(scope="module")
def analyses() -> dict[str, ImageAnalysis]:
    models = load_models(threads=2)
    return {str(path.relative_to(EXAMPLES)): models.predict(path) for path in IMAGES}


def test_the_examples_reach_all_five_models_and_every_head_kind(analyses):
    models = {model for analysis in analyses.values() for model in analysis.predictions}
    assert models == {"bone-quality", "bone-tumor", "spine-lesions", "tumor-cls", "vcf"}
    kinds = {result.kind for analysis in analyses.values() for prediction in analysis.predictions.values()
             for result in prediction.heads.values()}
    assert kinds == {"classification", "segmentation", "detection", "heatmap", "cam"}


@pytest.mark.parametrize("name", [str(path.relative_to(EXAMPLES)) for path in IMAGES])
def test_from_dict_gives_back_everything_the_json_carries(analyses, name):
    analysis = analyses[name]
    document = json.loads(analysis.to_json())
    back = ImageAnalysis.from_dict(document)
    assert back.to_dict() == document
    assert back.source == analysis.source and back.not_applied == analysis.not_applied
    assert back.analysed == analysis.analysed and back.reason == analysis.reason
    for model, prediction in analysis.predictions.items():
        read = Prediction.from_dict(json.loads(prediction.to_json()))
        assert read == back.predictions[model]
        assert read.to_dict() == prediction.to_dict()
        assert list(read.heads) == list(prediction.heads)
        assert read.verdict == prediction.verdict and read.display_head == prediction.display_head
        assert read.geometry == prediction.geometry and read.provenance == prediction.provenance
        assert [(f.code, f.head, f.label, f.where, f.model) for f in read.flags] == \
               [(f.code, f.head, f.label, f.where, f.model) for f in prediction.flags]
        for flag_read, flag in zip(read.flags, prediction.flags):
            assert flag_read.score == pytest.approx(flag.score, abs=1e-6)
            assert np.allclose(flag_read.locations, flag.locations, atol=0.005) if flag.locations else True
        for head, result in prediction.heads.items():
            again = read.heads[head]
            assert type(again) is type(result) and again.labels == result.labels
            if isinstance(result, ClassificationResult):
                np.testing.assert_allclose(again.probabilities, result.probabilities, atol=5e-7)
                assert again.top_label == result.top_label
            elif isinstance(result, SegmentationResult):
                assert again.mask is None and again.mask_shape == result.mask.shape
                assert [(r.label, r.pixel_count, r.bbox) for r in again.regions] == \
                       [(r.label, r.pixel_count, r.bbox) for r in result.regions]
                assert again.labels_summary == tuple(
                    type(r).from_dict(r.to_dict()) for r in result.labels_summary
                )
            elif isinstance(result, CamResult):
                assert again.values is None and again.map_shape == result.values.shape
                assert again.explains == result.explains and again.label == result.label
            else:
                assert again == type(result).from_dict(head, result.to_dict())


def test_a_result_read_from_json_says_why_it_cannot_draw_or_make_dicom(analyses):
    analysis = analyses["radiographs/femur_malignant.dcm"]
    back = ImageAnalysis.from_dict(json.loads(analysis.to_json()))
    with pytest.raises(NoImageError, match="read back from JSON"):
        back.overlay()
    with pytest.raises(NoImageError, match="read back from JSON"):
        back.predictions["bone-tumor"].overlay()
    with pytest.raises(NotDicomSourceError):
        back.to_dicom()


def test_json_names_heads_by_meaning_and_lists_each_lesion(analyses):
    document = analyses["radiographs/femur_malignant.dcm"].to_dict()
    bone_tumor = document["models"]["bone-tumor"]
    assert bone_tumor["heads"] == {"lesion": "segmentation", "tumor": "classification"}
    assert bone_tumor["display_head"] == "tumor" and set(bone_tumor["classifications"]) == {"tumor"}
    lesion = bone_tumor["segmentations"]["lesion"]
    assert lesion["regions"] and lesion["regions_omitted"] == 0
    assert sum(region["pixel_count"] for region in lesion["regions"]) == lesion["labels_summary"][0]["pixel_count"]
    assert {flag["head"] for flag in document["flags"]} <= {"tumor", "malignancy"}
    assert not any(key.endswith("_logits") for model in document["models"].values() for key in model["heads"])


def test_a_pickled_analysis_is_small_and_equal_and_still_makes_dicom(analyses):
    analysis = analyses["radiographs/femur_malignant.dcm"]
    image_bytes = analysis._display.pixels.nbytes
    data = pickle.dumps(analysis)
    assert image_bytes > 5_000_000 and len(data) < 200_000
    back = pickle.loads(data)
    assert back == analysis and back.to_dict() == analysis.to_dict()
    lesion, unpickled = analysis.predictions["bone-tumor"].segmentations["lesion"], back.predictions["bone-tumor"]
    np.testing.assert_array_equal(unpickled.segmentations["lesion"].mask, lesion.mask)
    with pytest.raises(NoImageError, match="not pickled"):
        back.overlay()
    with pytest.raises(NoImageError, match="not pickled"):
        unpickled.save_overlay("never.png")
    # DICOM outputs need the header and the masks, both pickled; the SEG holds the same mask.
    before = {dataset.Modality: dataset for dataset in analysis.to_dicom()}
    after = {dataset.Modality: dataset for dataset in back.to_dicom()}
    assert sorted(after) == sorted(before)
    np.testing.assert_array_equal(after["SEG"].pixel_array, before["SEG"].pixel_array)
    # The original still draws.
    assert analysis.overlay(max_side=256).shape[2] == 3


def test_an_unanalysed_image_pickles_without_its_pixels():
    from ..synthetic import dx_dataset

    models = load_models(threads=2)
    analysis = models.predict(dx_dataset(np.full((600, 600), 1000, np.uint16), body_part="SKULL"))
    assert not analysis.analysed and analysis.drawable
    back = pickle.loads(pickle.dumps(analysis))
    assert back.reason == analysis.reason and len(pickle.dumps(analysis)) < 100_000
    with pytest.raises(NoImageError):
        back.overlay()


def test_the_repr_is_one_short_line_without_arrays(analyses):
    analysis = analyses["radiographs/femur_malignant.dcm"]
    prediction = analysis.predictions["bone-tumor"]
    text = repr(prediction)
    assert "\n" not in text and "array" not in text and len(text) < 200
    assert text.startswith("<Prediction bone-tumor on '") and "femur_malignant.dcm" in text
    flag = prediction.flags[0]
    assert f"{flag.code} {flag.score:.2f}" in text and "tumor: malignant" in text
    assert f"{prediction.timings_ms['total']:.1f} ms" in text
    whole = repr(analysis)
    assert "\n" not in whole and "array" not in whole and "bone-tumor:" in whole and "tumor-cls:" in whole
    unflagged = analyses["radiographs/femur_no_tumour.dcm"].predictions["bone-tumor"]
    assert "no flags" in repr(unflagged)
