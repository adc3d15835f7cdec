"""The TID 1500 Measurement Report (radedge.dicom_out.sr): dciodvfy accepts it for every bundled
example and for an image no model analysed, and everything radedge concluded comes back from
the written bytes through highdicom's reader and template parser."""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import ComprehensiveSRStorage

from radedge.heads import ClassificationResult, DetectionResult, HeatmapResult, SegmentationResult

from .conftest import EXAMPLES, REPO
from .validate import dciodvfy, needs_dciodvfy

hd = pytest.importorskip("highdicom")

NOT_ANALYSED = REPO / "tests" / "data" / "hostile" / "femur_uniform.dcm"
KEYS = [str(path.relative_to(REPO / "examples")) for path in EXAMPLES]

#: What the source's patient and study are, which the SR must repeat exactly.
PATIENT_AND_STUDY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
    "AccessionNumber", "StudyID", "ReferringPhysicianName",
)


@pytest.fixture(scope="module")
def not_analysed(models):
    analysis = models.predict(NOT_ANALYSED)
    assert not analysis.analysed, "the uniform femur must stay an image no model analyses for this test to mean anything"
    return analysis


@pytest.fixture(scope="module")
def written(analyses, not_analysed):
    """``{key: (ImageAnalysis, the SR as written, the SR read back from its bytes)}``."""
    from radedge.dicom_out.sr import measurement_report

    every = dict(analyses, not_analysed=not_analysed)
    out = {}
    for key, analysis in every.items():
        document = measurement_report(analysis)
        out[key] = (analysis, document, _read_back(document))
    return out


def _read_back(document):
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    return hd.sr.srread(io.BytesIO(buffer.getvalue()))


def _report(document) -> hd.sr.MeasurementReport:
    report = document.content
    assert isinstance(report, hd.sr.MeasurementReport)
    return report


def _items(group, name):
    return [item for item in group[0].ContentSequence if item.name == name]


def _algorithm(group) -> tuple[str, str, dict[str, str]]:
    from pydicom.sr.codedict import codes

    (name,) = _items(group, codes.DCM.AlgorithmName)
    (version,) = _items(group, codes.DCM.AlgorithmVersion)
    parameters = dict(item.value.split("=", 1) for item in _items(group, codes.DCM.AlgorithmParameters))
    return name.value, version.value, parameters


def _groups_of(report, model: str) -> tuple[dict, dict]:
    """The model's TID 1501 and TID 1410 groups, by tracking identifier."""
    images = {g.tracking_identifier: g for g in report.get_image_measurement_groups() if _algorithm(g)[0] == model}
    regions = {g.tracking_identifier: g for g in report.get_planar_roi_measurement_groups() if _algorithm(g)[0] == model}
    return images, regions


def _value(group, name) -> float:
    (measurement,) = group.get_measurements(name=name)
    return measurement.value


def _unit(group, name) -> str:
    (measurement,) = group.get_measurements(name=name)
    return measurement.unit.value


def _evaluation(group, name):
    (evaluation,) = group.get_qualitative_evaluations(name=name)
    return evaluation.value


def _concept(prediction, head, label):
    from radedge.dicom_out.common import ModelOutput, concept

    return concept(ModelOutput(prediction._header, prediction, prediction._manifest), head, label)


def _names():
    from radedge.dicom_out.sr import Concepts

    return Concepts()


@needs_dciodvfy
@pytest.mark.parametrize("key", [*KEYS, "not_analysed"])
def test_dciodvfy_finds_no_error(written, key):
    _, document, _ = written[key]
    verdict = dciodvfy(document)
    assert verdict.errors == (), verdict.output
    # The only warnings: dciodvfy does not know radedge's private coding scheme, which the
    # document declares in its Coding Scheme Identification Sequence.
    assert all("Unrecognized defined term = <99RADEDGE>" in line for line in verdict.warnings), verdict.output


@pytest.mark.parametrize("key", [*KEYS, "not_analysed"])
def test_patient_and_study_are_the_sources_and_the_series_is_new(written, key):
    analysis, document, read = written[key]
    header = analysis._header
    for keyword in PATIENT_AND_STUDY:
        assert read.get(keyword) == header.get(keyword), keyword
    assert read.SOPClassUID == ComprehensiveSRStorage
    assert read.Modality == "SR"
    assert read.SeriesInstanceUID != header.SeriesInstanceUID
    assert read.SOPInstanceUID == document.SOPInstanceUID != header.SOPInstanceUID
    evidence = read.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == header.SOPInstanceUID


def test_two_reports_of_one_image_are_two_series(analyses):
    from radedge.dicom_out.sr import measurement_report

    analysis = analyses[KEYS[0]]
    first, second = measurement_report(analysis), measurement_report(analysis)
    assert first.SeriesInstanceUID != second.SeriesInstanceUID and first.SOPInstanceUID != second.SOPInstanceUID


@pytest.mark.parametrize("key", KEYS)
def test_every_model_is_identified_with_its_bundle(written, key):
    analysis, _, read = written[key]
    report = _report(read)
    groups = report.get_image_measurement_groups() + report.get_planar_roi_measurement_groups()
    identified = {_algorithm(group)[0]: _algorithm(group) for group in groups}
    assert set(identified) == set(analysis.predictions)
    for model, prediction in analysis.predictions.items():
        _, version, parameters = identified[model]
        assert version == prediction.provenance["model_version"]
        assert parameters == {"bundle_sha256": prediction.provenance["bundle_sha256"],
                              "precision": prediction.provenance["precision"]}
    # every group names its model: none is left without algorithm identification
    assert all(_algorithm(group)[0] in analysis.predictions for group in groups)


@pytest.mark.parametrize("key", KEYS)
def test_every_probability_comes_back(written, key):
    analysis, _, read = written[key]
    names = _names()
    checked = 0
    for model, prediction in analysis.predictions.items():
        images, _ = _groups_of(_report(read), model)
        for head, result in prediction.heads.items():
            if not isinstance(result, ClassificationResult):
                continue
            group = images[f"{model} {head}"]
            for label, probability in zip(result.labels, result.probabilities.tolist()):
                assert _value(group, _concept(prediction, head, label)) == probability
                assert _unit(group, _concept(prediction, head, label)) == "{probability}"
                checked += 1
            top = group.get_qualitative_evaluations(name=names.top_label)
            if len(result.labels) > 1:
                assert top[0].value == _concept(prediction, head, result.top_label)
            else:
                assert top == []
    assert checked > 0


@pytest.mark.parametrize("key", KEYS)
def test_every_box_and_point_comes_back_to_the_coordinate(written, key):
    analysis, _, read = written[key]
    names = _names()
    for model, prediction in analysis.predictions.items():
        _, regions = _groups_of(_report(read), model)
        expected = set()
        for head, result in prediction.heads.items():
            if isinstance(result, DetectionResult):
                for index, box in enumerate(result.boxes, 1):
                    tracking = f"{model} {head} box {index} {box.label}"
                    group = regions[tracking]
                    x1, y1, x2, y2 = box.xyxy
                    rectangle = np.float32([(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)])
                    assert group.roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
                    np.testing.assert_array_equal(group.roi.value, rectangle)
                    assert group.finding_type == _concept(prediction, head, box.label)
                    assert _value(group, names.certainty) == box.score
                    expected.add(tracking)
            elif isinstance(result, HeatmapResult):
                for index, point in enumerate(result.points, 1):
                    tracking = f"{model} {head} point {index} {point.label}"
                    group = regions[tracking]
                    assert group.roi.graphic_type == hd.sr.GraphicTypeValues.POINT
                    np.testing.assert_array_equal(group.roi.value, np.float32([[point.x, point.y]]))
                    assert group.finding_type == _concept(prediction, head, point.label)
                    assert _value(group, names.certainty) == point.score
                    expected.add(tracking)
        assert set(regions) == expected


def test_a_fracture_point_names_its_vertebral_level(written, analyses):
    analysis, _, read = written["spine/lumbar_spine_fracture.dcm"]
    prediction = analysis.predictions["vcf"]
    (point,) = prediction.heatmaps["fracture"].points
    level = prediction.heatmaps["levels"].nearest(point.x, point.y).label
    _, regions = _groups_of(_report(read), "vcf")
    group = regions[f"vcf fracture point 1 {point.label}"]
    assert [site.value for site in group.finding_sites] == [_concept(prediction, "levels", level)]
    # and each level's own landmark is its site
    for index, landmark in enumerate(prediction.heatmaps["levels"].points, 1):
        sites = regions[f"vcf levels point {index} {landmark.label}"].finding_sites
        assert [site.value for site in sites] == [_concept(prediction, "levels", landmark.label)]


@pytest.mark.parametrize("key", KEYS)
def test_every_area_comes_back_with_its_spacing_source(written, key):
    analysis, _, read = written[key]
    names = _names()
    for model, prediction in analysis.predictions.items():
        images, _ = _groups_of(_report(read), model)
        for head, result in prediction.heads.items():
            if not isinstance(result, SegmentationResult):
                continue
            for region in result.labels_summary:
                tracking = f"{model} {head} {region.label}"
                if region.pixel_count == 0:
                    assert tracking not in images
                    continue
                group = images[tracking]
                assert group.finding_type == _concept(prediction, head, region.label)
                assert _value(group, names.area) == region.area_mm2
                assert _unit(group, names.area) == "mm2"
                assert _evaluation(group, names.spacing_source).meaning == result.area_source


def test_no_area_without_a_usable_spacing(analyses):
    import dataclasses

    from radedge.dicom_out.sr import measurement_report

    analysis = analyses["radiographs/femur_malignant.dcm"]
    prediction = analysis.predictions["bone-tumor"]
    result = prediction.heads["lesion"]
    summary = tuple(dataclasses.replace(region, area_mm2=None) for region in result.labels_summary)
    without = dataclasses.replace(result, labels_summary=summary, regions=None, area_source="no mm figures: the image gives no pixel spacing")
    prediction = dataclasses.replace(prediction, heads={**prediction.heads, "lesion": without}, flags=())
    images, _ = _groups_of(_report(_read_back(measurement_report(prediction))), "bone-tumor")
    group = images["bone-tumor lesion lesion"]
    assert group.finding_type == _concept(prediction, "lesion", "lesion")
    assert group.get_measurements() == []
    assert group.get_qualitative_evaluations(name=_names().spacing_source) == []


@pytest.mark.parametrize("key", KEYS)
def test_every_flag_comes_back_with_its_operating_point(written, key):
    analysis, _, read = written[key]
    names = _names()
    for model, prediction in analysis.predictions.items():
        images, _ = _groups_of(_report(read), model)
        flagged = {tracking: group for tracking, group in images.items() if " flag " in tracking}
        assert {_evaluation(group, names.flag).value for group in flagged.values()} == {f.code for f in prediction.flags}
        for flag in prediction.flags:
            group = flagged[f"{model} flag {flag.code}"]
            assert _evaluation(group, names.flag).meaning == flag.title
            assert group.finding_type == _concept(prediction, flag.head, flag.label)
            score_name = names.area if flag.head in prediction.segmentations else names.certainty
            assert _value(group, score_name) == flag.score
            assert _value(group, names.threshold) == flag.threshold
            rule = next(r for r in prediction._manifest.flag_rules if r.code == flag.code)
            assert _value(group, names.sensitivity) == rule.operating_point["sensitivity"]
            assert _value(group, names.specificity) == rule.operating_point["specificity"]
            if flag.where and rule.locate_with:
                assert [site.value for site in group.finding_sites] == [
                    _concept(prediction, rule.locate_with, label) for label in flag.where.split(", ")
                ]


def test_the_examples_raise_located_and_unlocated_flags(analyses):
    # The flag test above means something only if the examples raise flags of both sorts.
    flags = [flag for analysis in analyses.values() for flag in analysis.flags]
    assert any(flag.where for flag in flags) and any(flag.where is None for flag in flags)


def test_an_image_no_model_analysed_says_so_and_why(written):
    analysis, _, read = written["not_analysed"]
    names = _names()
    (group,) = _report(read).get_image_measurement_groups()
    assert _evaluation(group, names.analysis) == names.not_analysed
    (reason,) = _items(group, names.reason)
    assert reason.value == analysis.reason
    assert group.source_images[0].referenced_sop_instance_uid == analysis._header.SOPInstanceUID


def test_a_prediction_reports_its_model_alone(analyses):
    from radedge.dicom_out.sr import measurement_report

    analysis = analyses["spine/lumbar_spine_fracture.dcm"]
    report = _report(_read_back(measurement_report(analysis.predictions["vcf"])))
    groups = report.get_image_measurement_groups() + report.get_planar_roi_measurement_groups()
    assert {_algorithm(group)[0] for group in groups} == {"vcf"}


def test_procedure_and_observer(written):
    from pydicom.sr.codedict import codes

    _, _, read = written["spine/lumbar_spine_fracture.dcm"]
    report = _report(read)
    (procedure,) = [item for item in report[0].ContentSequence if item.name == codes.DCM.ProcedureReported]
    assert procedure.value == codes.LN.XRUnspecifiedBodyRegion
    (observer,) = report.get_observer_contexts(observer_type=codes.DCM.Device)
    assert observer.observer_identifying_attributes.manufacturer_name == "radedge"
    _, _, ct = written["ct/ct_vertebra_normal.dcm"]
    (procedure,) = [item for item in _report(ct)[0].ContentSequence if item.name == codes.DCM.ProcedureReported]
    assert procedure.value == codes.LN.CTUnspecifiedBodyRegion


def test_nothing_from_the_header_is_printed_or_logged(analyses, capfd, caplog):
    from radedge.dicom_out.sr import measurement_report

    analysis = analyses["spine/lumbar_spine_lesions.dcm"]
    with caplog.at_level(logging.DEBUG):
        measurement_report(analysis)
    said = "".join(capfd.readouterr()) + caplog.text
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
        value = str(analysis._header.get(keyword, ""))
        if value:
            assert value not in said, keyword


def test_a_result_on_a_png_is_not_dicom(models, tmp_path):
    import cv2

    from radedge.dicom_out.sr import measurement_report
    from radedge.errors import NotDicomSourceError
    from radedge.io import read_image

    pixels = read_image(REPO / "examples" / "radiographs" / "femur_malignant.dcm").pixels
    stretched = (pixels.astype(np.float64) - pixels.min()) / max(float(np.ptp(pixels)), 1.0)
    png = Path(tmp_path) / "femur.png"
    assert cv2.imwrite(str(png), (stretched * 255).astype(np.uint8))
    analysis = models.predict(png, check_scope=False)
    assert analysis.predictions, "with the scope unchecked, models analyse the PNG: the refusal is for its source"
    with pytest.raises(NotDicomSourceError, match="not read from DICOM"):
        measurement_report(analysis)
    with pytest.raises(NotDicomSourceError):
        measurement_report(next(iter(analysis.predictions.values())))


def test_a_model_that_found_nothing_to_analyse_is_reported_beside_the_others(analyses):
    import dataclasses

    from radedge.dicom_out.sr import measurement_report

    analysis = analyses["radiographs/tibia_benign.dcm"]
    partial = dataclasses.replace(analysis, not_analysable={"another-model": "the image is too small"})
    report = _report(_read_back(measurement_report(partial)))
    names = _names()
    (group,) = [g for g in report.get_image_measurement_groups() if g.tracking_identifier == "not analysed"]
    (reason,) = _items(group, names.reason)
    assert reason.value == "another-model: the image is too small"
    others = [g for g in report.get_image_measurement_groups() if g.tracking_identifier != "not analysed"]
    assert {_algorithm(g)[0] for g in others} == set(analysis.predictions)


def test_absent_type2_patient_attributes_stay_empty_and_the_source_is_untouched(analyses):
    import dataclasses

    from radedge.dicom_out.sr import measurement_report

    prediction = analyses["radiographs/tibia_benign.dcm"].predictions["bone-tumor"]
    header = copy.deepcopy(prediction._header)
    del header.PatientBirthDate, header.AccessionNumber
    read = _read_back(measurement_report(dataclasses.replace(prediction, _header=header)))
    assert read.PatientBirthDate == "" and read.AccessionNumber == ""
    assert read.PatientID == header.PatientID
    assert "PatientBirthDate" not in header and "AccessionNumber" not in header


def test_a_source_without_its_uids_is_refused_with_the_reason(analyses):
    import dataclasses

    from radedge.dicom_out.sr import measurement_report

    prediction = analyses["radiographs/tibia_benign.dcm"].predictions["bone-tumor"]
    header = copy.deepcopy(prediction._header)
    del header.StudyInstanceUID
    with pytest.raises(ValueError, match="has no StudyInstanceUID"):
        measurement_report(dataclasses.replace(prediction, _header=header))
