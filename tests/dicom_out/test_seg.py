"""DICOM Segmentations of every bundled example (radedge.dicom_out.seg), judged by dciodvfy and
read back through highdicom; and the coded concepts of every bundled model's labels."""

from __future__ import annotations

import dataclasses
import io

import cv2
import numpy as np
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, SegmentationStorage

from radedge.bundle import bundled_bundle_paths, load_bundle
from radedge.dicom_out.common import PRIVATE_SCHEME, concept, model_outputs
from radedge.dicom_out.common import SERIES_NUMBER
from radedge.dicom_out.seg import segment_category, segmentations
from radedge.errors import NotDicomSourceError

from .conftest import EXAMPLES, REPO
from .validate import dciodvfy, needs_dciodvfy

EXAMPLE_NAMES = [str(path.relative_to(REPO / "examples")) for path in EXAMPLES]
# What the SEG must carry over from its source exactly (Patient and General Study modules).
PATIENT_AND_STUDY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
)
# Labels no standard concept matches without changing their meaning (export/recipes/codes.py).
PRIVATE_LABELS = {
    ("spine-lesions", "lesions", "disc space narrowing"),
    ("spine-lesions", "lesions", "foraminal stenosis"),
    ("spine-lesions", "lesions", "vertebral collapse"),
    ("bone-quality", "blastic", "blastic"),
    ("bone-quality", "lytic", "lytic"),
    ("bone-quality", "quality", "blastic"),
    ("bone-quality", "quality", "lytic"),
    ("bone-quality", "quality", "mixed"),
    ("vcf", "fracture", "genant_1"),
    ("vcf", "fracture", "genant_2"),
    ("vcf", "fracture", "genant_3"),
}


@pytest.fixture(scope="module")
def written(analyses):
    """``{example: [(ModelOutput, head, SegmentationResult, Segmentation)]}``, each made once."""
    made = {}
    for name, analysis in analyses.items():
        made[name] = []
        for output in model_outputs(analysis):
            heads = [spec.name for spec in output.manifest.heads if spec.kind == "segmentation"]
            for head, segmentation in zip(heads, segmentations(output), strict=True):
                made[name].append((output, head, output.prediction.heads[head], segmentation))
    return made


def _round_trip(segmentation):
    import highdicom as hd

    buffer = io.BytesIO()
    segmentation.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return hd.seg.segread(buffer)


def test_the_examples_include_segmentations_with_and_without_a_region(written):
    masks = [result.mask for made in written.values() for _, _, result, _ in made]
    assert any(mask.any() for mask in masks)
    assert any(not mask.any() for mask in masks)  # femur_no_tumour: the empty segment is tested too


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_one_segmentation_per_segmentation_head_and_none_without(analyses, example):
    for output in model_outputs(analyses[example]):
        heads = [spec.name for spec in output.manifest.heads if spec.kind == "segmentation"]
        made = segmentations(output)
        assert len(made) == len(heads)
        assert [segmentation.InstanceNumber for segmentation in made] == list(range(1, len(heads) + 1))
        assert len({segmentation.SeriesInstanceUID for segmentation in made}) <= 1


@needs_dciodvfy
@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_dciodvfy_finds_no_error_and_no_warning(written, example):
    for _, head, _, segmentation in written[example]:
        verdict = dciodvfy(segmentation)
        assert verdict.errors == (), verdict.output
        assert verdict.warnings == (), verdict.output


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_round_trip_keeps_the_mask_bit_exact(written, example):
    for output, _, result, segmentation in written[example]:
        read = _round_trip(segmentation)
        header = output.header
        assert read.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert read.SOPClassUID == SegmentationStorage and read.SegmentationType == "BINARY"
        assert (read.Rows, read.Columns) == (header.Rows, header.Columns) == result.mask.shape
        # One frame per segment, empty ones included.
        assert read.NumberOfFrames == len(result.labels)
        labels = read.get_pixels_by_source_instance(
            source_sop_instance_uids=[header.SOPInstanceUID], combine_segments=True
        )
        assert labels.shape == (1, *result.mask.shape)
        np.testing.assert_array_equal(labels[0], result.mask)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_segments_are_labelled_and_coded_as_the_manifest_says(written, example):
    for output, head, result, segmentation in written[example]:
        read = _round_trip(segmentation)
        assert list(read.get_segment_numbers()) == list(range(1, len(result.labels) + 1))
        for number, label in enumerate(result.labels, start=1):
            description = read.get_segment_description(number)
            expected = concept(output, head, label)
            assert description.segment_label == label
            assert description.segmented_property_type == expected
            assert description.segmented_property_type.meaning == expected.meaning
            assert description.segmented_property_category == segment_category(expected)
            assert description.algorithm_type.value == "AUTOMATIC"
            algorithm = description.algorithm_identification[0]
            assert algorithm.AlgorithmName == output.model_id
            assert algorithm.AlgorithmVersion == output.model_version


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_references_the_source_and_copies_patient_and_study_exactly(written, example):
    for output, _, _, segmentation in written[example]:
        read = _round_trip(segmentation)
        header = output.header
        referenced = read.ReferencedSeriesSequence[0]
        assert referenced.SeriesInstanceUID == header.SeriesInstanceUID
        assert [(item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID)
                for item in referenced.ReferencedInstanceSequence] == [(header.SOPClassUID, header.SOPInstanceUID)]
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "AccessionNumber"):
            assert keyword in header  # the examples carry them: the comparison below is not vacuous
        for keyword in PATIENT_AND_STUDY:
            if keyword in header:
                assert read[keyword].value == header[keyword].value, keyword
        assert read.SOPInstanceUID != header.SOPInstanceUID
        assert read.SeriesInstanceUID != header.SeriesInstanceUID
        assert read.SeriesNumber == SERIES_NUMBER["seg"] and read.Modality == "SEG"
        assert read.Manufacturer == "radedge" and read.ManufacturerModelName == output.model_id
        assert output.model_id in read.ContentDescription and "radedge" in read.ContentDescription


def test_every_call_makes_new_series_and_instance_uids(analyses):
    output = next(output for output in model_outputs(analyses["radiographs/femur_malignant.dcm"])
                  if output.model_id == "bone-tumor")
    first, second = segmentations(output)[0], segmentations(output)[0]
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.SeriesInstanceUID != second.SeriesInstanceUID


def test_a_mask_off_the_source_geometry_is_refused(analyses):
    output = next(output for output in model_outputs(analyses["radiographs/femur_malignant.dcm"])
                  if output.model_id == "bone-tumor")
    result = output.prediction.heads["lesion"]
    cropped = dataclasses.replace(result, mask=result.mask[:-1])
    prediction = dataclasses.replace(output.prediction, heads={**output.prediction.heads, "lesion": cropped})
    with pytest.raises(ValueError, match="source's geometry"):
        segmentations(dataclasses.replace(output, prediction=prediction))


def test_a_png_source_has_no_dicom_outputs(models):
    rows, columns = np.mgrid[0:512, 0:384]
    png = cv2.imencode(".png", ((rows + columns) % 256).astype(np.uint8))[1].tobytes()
    analysis = models.predict(png, label="radiograph.png")
    assert analysis.predictions  # the models did analyse it: only the DICOM outputs are refused
    with pytest.raises(NotDicomSourceError, match="not read from DICOM"):
        model_outputs(analysis)
    for prediction in analysis.predictions.values():
        with pytest.raises(NotDicomSourceError):
            model_outputs(prediction)


@pytest.mark.parametrize(
    "property_type, category",
    [
        (codes.SCT.Lesion, codes.cid7150.MorphologicallyAbnormalStructure),
        (codes.SCT.Normal, codes.cid7150.MorphologicallyAbnormalStructure),
        (codes.SCT.L3Vertebra, codes.cid7150.AnatomicalStructure),
        (codes.SCT.Implant, codes.cid7150.PhysicalObject),
        (codes.SCT.SoftTissue, codes.cid7150.Tissue),
    ],
)
def test_the_segment_category_is_the_one_whose_context_group_lists_the_type(property_type, category):
    assert segment_category(property_type) == category


def test_a_private_type_is_a_morphologically_abnormal_structure():
    from pydicom.sr.coding import Code

    private = Code("bone-tumor.lesion.lesion", PRIVATE_SCHEME, "lesion")
    assert segment_category(private) == codes.cid7150.MorphologicallyAbnormalStructure


def _bundled_labels():
    for path in bundled_bundle_paths():
        manifest = load_bundle(path).manifest
        for head in manifest.heads:
            for label in head.labels:
                yield manifest.model_id, head, label


def test_every_bundled_label_has_a_standard_code_or_is_listed_private():
    known = {}
    for code in codes.SCT.concepts.values():
        known.setdefault(code.value, set()).add(code.meaning)
    private = set()
    for model_id, head, label in _bundled_labels():
        code = head.codes.get(label)
        assert code is not None, f"{model_id} {head.name} {label!r} has no code"
        if code["scheme"] == PRIVATE_SCHEME:
            assert code["value"] == f"{model_id}.{head.name}.{label}"
            private.add((model_id, head.name, label))
        else:
            assert code["scheme"] == "SCT", code
            # pydicom holds PS3.16's SNOMED CT codes: one it knows must have its meaning.
            if code["value"] in known:
                assert code["meaning"] in known[code["value"]], code
    assert private == PRIVATE_LABELS


def test_the_recipes_give_the_bundled_codes():
    """The codes survive a re-export: each recipe's manifest takes them from the same table."""
    from radedge.export.recipes.codes import LABEL_CODES

    bundled = {}
    for model_id, head, label in _bundled_labels():
        bundled.setdefault(model_id, {}).setdefault(head.name, {})[label] = dict(head.codes[label])
    assert bundled == LABEL_CODES


@needs_dciodvfy
def test_a_source_with_a_frame_of_reference_keeps_its_plane(analyses):
    """A CT slice has a Frame of Reference: the segmentation takes its plane position, orientation
    and pixel measures (with slice thickness) instead of a Patient Orientation."""
    from radedge.io import read_image

    header = read_image(REPO / "examples" / "ct" / "ct_vertebra_lytic.dcm").header
    output = next(output for output in model_outputs(analyses["radiographs/femur_malignant.dcm"])
                  if output.model_id == "bone-tumor")
    mask = np.zeros((header.Rows, header.Columns), dtype=np.uint8)
    mask[200:260, 180:300] = 1
    result = dataclasses.replace(output.prediction.heads["lesion"], mask=mask)
    prediction = dataclasses.replace(output.prediction, heads={**output.prediction.heads, "lesion": result})
    (segmentation,) = segmentations(dataclasses.replace(output, header=header, prediction=prediction))
    assert segmentation.FrameOfReferenceUID == header.FrameOfReferenceUID
    assert "PatientOrientation" not in segmentation
    verdict = dciodvfy(segmentation)
    assert verdict.errors == (), verdict.output
    read = _round_trip(segmentation)
    shared = read.SharedFunctionalGroupsSequence[0]
    assert shared.PixelMeasuresSequence[0].SliceThickness == header.SliceThickness
    labels = read.get_pixels_by_source_instance(source_sop_instance_uids=[header.SOPInstanceUID], combine_segments=True)
    np.testing.assert_array_equal(labels[0], mask)


@needs_dciodvfy
def test_a_label_without_a_code_gets_the_private_scheme_identified(analyses):
    output = next(output for output in model_outputs(analyses["radiographs/femur_malignant.dcm"])
                  if output.model_id == "bone-tumor")
    heads = tuple(dataclasses.replace(head, codes={}) for head in output.manifest.heads)
    uncoded = dataclasses.replace(output, manifest=dataclasses.replace(output.manifest, heads=heads))
    (segmentation,) = segmentations(uncoded)
    read = _round_trip(segmentation)
    property_type = read.get_segment_description(1).segmented_property_type
    assert (property_type.value, property_type.scheme_designator) == ("bone-tumor.lesion.lesion", PRIVATE_SCHEME)
    assert [item.CodingSchemeDesignator for item in read.CodingSchemeIdentificationSequence] == [PRIVATE_SCHEME]
    verdict = dciodvfy(segmentation)
    assert verdict.errors == (), verdict.output
    # dciodvfy knows the standard's scheme designators only: a private one is "unrecognized".
    assert verdict.warnings and all("Unrecognized defined term = <99RADEDGE>" in line for line in verdict.warnings)
