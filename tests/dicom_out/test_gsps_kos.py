"""The presentation state and the key object selection of every bundled example: dciodvfy finds
no error, and what was written reads back (pydicom, highdicom) as what the models found."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pydicom
import pytest
from radedge.dicom_out.gsps import (
    MAX_OUTLINE_POINTS,
    outlines,
    presentation_state,
    window_in_description,
)
from radedge.dicom_out.kos import key_objects
from radedge.errors import NotDicomSourceError
from radedge.heads import DetectionResult, HeatmapResult, SegmentationResult
from radedge.intensity import Percentile, build_lut
from radedge.io import read_image

from .conftest import EXAMPLES, REPO
from .validate import dciodvfy, needs_dciodvfy

NAMES = [str(path.relative_to(REPO / "examples")) for path in EXAMPLES]
PATIENT_AND_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
                     "AccessionNumber", "StudyDate", "StudyTime")
# The only dciodvfy warning a presentation state may draw: a Body Part Examined copied from the
# source that the validator's list of defined terms lacks (tibia_benign.dcm says TIBIA).
TOLERATED_WARNING = "BodyPartExamined(0018,0015)[1]> - Unrecognized defined term"


def _round_trip(dataset) -> pydicom.Dataset:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.fixture(scope="module")
def states(analyses):
    """``{example: (ImageAnalysis, presentation state as written and read back)}``."""
    return {name: (analysis, _round_trip(presentation_state(analysis))) for name, analysis in analyses.items()}


def _layer_of(state, model_id: str, version: str) -> tuple[list, list]:
    """The graphic and text objects of the model's layer."""
    (layer,) = [item.GraphicLayer for item in state.GraphicLayerSequence
                if item.GraphicLayerDescription == f"{model_id} {version}".strip()]
    (annotation,) = [item for item in state.GraphicAnnotationSequence if item.GraphicLayer == layer]
    return list(annotation.get("GraphicObjectSequence", [])), list(annotation.get("TextObjectSequence", []))


def _points(graphic) -> np.ndarray:
    return np.asarray(graphic.GraphicData, dtype=np.float32).reshape(-1, 2)


def _on_boundary(region: np.ndarray, points: np.ndarray) -> bool:
    """Every point is the centre of a region pixel with a 4-neighbour outside the region (or the image)."""
    padded = np.pad(region, 1)
    for x, y in points:
        column, row = math.floor(x), math.floor(y)
        if (x - column, y - row) != (0.5, 0.5) or not region[row, column]:
            return False
        r, c = row + 1, column + 1
        if padded[r - 1, c] and padded[r + 1, c] and padded[r, c - 1] and padded[r, c + 1]:
            return False
    return True


@needs_dciodvfy
@pytest.mark.parametrize("name", NAMES)
def test_presentation_state_passes_dciodvfy(states, name):
    verdict = dciodvfy(states[name][1])
    assert verdict.errors == (), verdict.output
    assert all(TOLERATED_WARNING in warning for warning in verdict.warnings), verdict.output


@pytest.mark.parametrize("name", NAMES)
def test_presentation_state_draws_every_finding(states, name):
    analysis, state = states[name]
    header = analysis._header
    rows, columns = int(header.Rows), int(header.Columns)
    assert state.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.1"
    assert state.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID == \
        header.SOPInstanceUID
    assert len(state.GraphicLayerSequence) == len(analysis.predictions)
    for model_id, prediction in analysis.predictions.items():
        graphics, texts = _layer_of(state, model_id, prediction.provenance.get("model_version", ""))
        assert {g.GraphicAnnotationUnits for g in graphics} <= {"PIXEL"}
        polylines = [_points(g) for g in graphics if g.GraphicType == "POLYLINE"]
        circles = [_points(g) for g in graphics if g.GraphicType == "CIRCLE"]
        captions = [t.UnformattedTextValue for t in texts]
        boxes = [box for result in prediction.heads.values() if isinstance(result, DetectionResult)
                 for box in result.boxes]
        box_corners = []
        for box in boxes:
            x1, y1, x2, y2 = np.float32(box.xyxy)
            box_corners.append(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]], dtype=np.float32))
            assert any(np.array_equal(box_corners[-1], polyline) for polyline in polylines), box
            assert f"{box.label} {box.score:.2f}" in captions
        points = [point for result in prediction.heads.values() if isinstance(result, HeatmapResult)
                  for point in result.points]
        assert len(circles) == len(points)
        for point in points:
            assert any(np.array_equal(np.float32([point.x, point.y]), circle[0]) for circle in circles), point
            assert point.label in captions
        drawn_outlines = [p for p in polylines if not any(np.array_equal(p, corners) for corners in box_corners)]
        assert len(drawn_outlines) == len(polylines) - len(boxes)
        for result in prediction.heads.values():
            if not isinstance(result, SegmentationResult):
                continue
            for value, label in enumerate(result.labels, start=1):
                region = result.mask == value
                count, _ = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
                mine = [outline for outline in drawn_outlines if _on_boundary(region, outline[:-1])]
                assert len(mine) == count - 1
                for outline in mine:
                    assert np.array_equal(outline[0], outline[-1]) and len(outline) <= MAX_OUTLINE_POINTS
                assert (label in captions) == (count > 1)
        for flag in prediction.flags:
            assert f"{model_id}: {flag.title} ({flag.score:.2f})" in captions
        anchored = [t for t in texts if t.BoundingBoxAnnotationUnits == "PIXEL"]
        for text in anchored:
            left, top = text.BoundingBoxTopLeftHandCorner
            right, bottom = text.BoundingBoxBottomRightHandCorner
            assert 0 <= left < right <= columns and 0 <= top < bottom <= rows


def test_the_examples_draw_outlines_boxes_and_points(states):
    """The per-example test above has something to check of every kind."""
    kinds = {g.GraphicType for _, state in states.values() for annotation in state.GraphicAnnotationSequence
             for g in annotation.get("GraphicObjectSequence", [])}
    assert kinds == {"POLYLINE", "CIRCLE"}
    assert any(isinstance(r, DetectionResult) and r.boxes for a, _ in states.values()
               for p in a.predictions.values() for r in p.heads.values())
    assert any(isinstance(r, SegmentationResult) and r.mask.any() for a, _ in states.values()
               for p in a.predictions.values() for r in p.heads.values())


@pytest.mark.parametrize("name", NAMES)
def test_presentation_state_shows_the_window_the_model_used(states, name):
    analysis, state = states[name]
    header = analysis._header
    prediction = next(iter(analysis.predictions.values()))
    spec = prediction._manifest.intensity
    if spec.window is not None:
        center, width, function = spec.window.center, spec.window.width, spec.window.function
    else:
        assert spec.voi == "file"
        centers = np.atleast_1d(np.asarray(header.WindowCenter, dtype=float))
        widths = np.atleast_1d(np.asarray(header.WindowWidth, dtype=float))
        center, width = centers[spec.voi_index], widths[spec.voi_index]
        function = header.get("VOILUTFunction", "LINEAR")
    (voi,) = state.SoftcopyVOILUTSequence
    assert (float(voi.WindowCenter), float(voi.WindowWidth), voi.VOILUTFunction) == (center, width, function)
    assert f"C={center:g} W={width:g} {function}" in prediction.image["intensity"]


def test_presentation_lut_shape_is_inverse_exactly_for_monochrome1(states):
    inverse = {name for name, (_, state) in states.items() if state.PresentationLUTShape == "INVERSE"}
    monochrome1 = {name for name, (a, _) in states.items() if a._header.PhotometricInterpretation == "MONOCHROME1"}
    assert inverse == monochrome1 and len(monochrome1) == 2
    assert {state.PresentationLUTShape for name, (_, state) in states.items() if name not in inverse} == {"IDENTITY"}


@pytest.mark.parametrize("name", NAMES)
def test_presentation_state_belongs_to_the_source_patient_and_study(states, name):
    analysis, state = states[name]
    header = analysis._header
    for keyword in PATIENT_AND_STUDY:
        assert state.get(keyword) == header.get(keyword), keyword
    assert state.SeriesInstanceUID != header.SeriesInstanceUID and state.SOPInstanceUID != header.SOPInstanceUID
    assert state.ContentLabel == "RADEDGE"
    assert all(model_id in state.ContentDescription for model_id in analysis.predictions)


def test_each_presentation_state_is_a_new_instance(analyses):
    analysis = analyses["radiographs/femur_malignant.dcm"]
    first, second = presentation_state(analysis), presentation_state(analysis)
    assert first.SOPInstanceUID != second.SOPInstanceUID and first.SeriesInstanceUID != second.SeriesInstanceUID


@needs_dciodvfy
def test_presentation_state_of_one_prediction(analyses):
    analysis = analyses["spine/lumbar_spine_monochrome1.dcm"]
    state = presentation_state(analysis.predictions["vcf"])
    assert [layer.GraphicLayer for layer in state.GraphicLayerSequence] == ["VCF"]
    assert state.PresentationLUTShape == "INVERSE"
    assert dciodvfy(state).errors == ()


@needs_dciodvfy
def test_presentation_state_of_an_image_no_model_analysed(models):
    dataset = pydicom.dcmread(REPO / "examples" / "ct" / "ct_vertebra_normal.dcm")
    dataset.Modality = "MR"
    analysis = models.predict(dataset)
    assert not analysis.analysed
    state = presentation_state(analysis)
    (annotation,) = state.GraphicAnnotationSequence
    assert annotation.TextObjectSequence[0].UnformattedTextValue.startswith("radedge: not analysed: ")
    assert dciodvfy(state).errors == ()
    assert key_objects(analysis) is None


def test_outlines_one_per_region_on_its_boundary():
    region = np.zeros((120, 160), dtype=bool)
    yy, xx = np.mgrid[:120, :160]
    region[(yy - 60) ** 2 + (xx - 50) ** 2 < 30**2] = True
    region[(yy - 60) ** 2 + (xx - 50) ** 2 < 10**2] = False  # a hole: not outlined
    region[10:14, 120:150] = True
    region[5, 100] = True  # one pixel
    region[0:40, 159] = True  # along the image's edge
    # A comb: a boundary of hundreds of corners, more than the cap.
    region[80:118, 100:150] = True
    region[80:110, 100:150:2] = False
    drawn = outlines(region, max_points=64)
    assert len(drawn) == 5
    areas = [cv2.contourArea((outline[:-1] - 0.5).astype(np.float32)) for outline in drawn]
    assert areas == sorted(areas, reverse=True)
    for outline in drawn:
        assert np.array_equal(outline[0], outline[-1]) and 2 <= len(outline) <= 64
        assert _on_boundary(region, outline[:-1])
    assert len(outlines(region, max_outlines=2)) == 2
    assert outlines(np.zeros((8, 8), dtype=bool)) == []


@pytest.mark.parametrize("voi", [Percentile(1, 99), "none"], ids=["percentile", "min-max"])
def test_window_read_off_the_image_comes_back_from_the_table_description(voi):
    """A percentile or min-max window, which only the table's description records, is the
    window that reproduces the table."""
    image = read_image(REPO / "examples" / "radiographs" / "femur_malignant.dcm")
    lut = build_lut(image, voi=voi)
    window = window_in_description(lut.description)
    assert window is not None and window.function == "LINEAR_EXACT"
    stored = np.arange(lut.first_stored_value, lut.last_stored_value + 1, dtype=np.float64)
    modality = stored * image.intensity.rescale.slope + image.intensity.rescale.intercept
    ramp = np.clip((modality - (window.center - window.width / 2)) / window.width, 0, 1)
    assert np.abs(ramp - lut.table).max() < 1e-4
    assert window_in_description("VOI LUT Sequence item 0 (4096 entries from 0, output / 4095) -> [0,1]") is None


@needs_dciodvfy
@pytest.mark.parametrize("name", NAMES)
def test_key_objects_select_exactly_the_flagged_images(states, name):
    analysis, state = states[name]
    document = key_objects(analysis, [state])
    assert (document is None) == (not analysis.flagged)
    if document is None:
        return
    header = analysis._header
    written = _round_trip(document)
    verdict = dciodvfy(written)
    assert verdict.errors == () and verdict.warnings == (), verdict.output
    for keyword in PATIENT_AND_STUDY:
        assert written.get(keyword) == header.get(keyword), keyword
    assert written.SOPInstanceUID not in (header.SOPInstanceUID, state.SOPInstanceUID)
    title = written.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("113000", "DCM")
    items = written.ContentSequence
    selected = {(i.ValueType, i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for i in items
                if "ReferencedSOPSequence" in i}
    assert selected == {("IMAGE", header.SOPInstanceUID), ("COMPOSITE", state.SOPInstanceUID)}
    evidence = {sop.ReferencedSOPInstanceUID for study in written.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for sop in series.ReferencedSOPSequence}
    assert evidence == {header.SOPInstanceUID, state.SOPInstanceUID}
    (description,) = [i.TextValue for i in items if i.ConceptNameCodeSequence[0].CodeValue == "113012"]
    assert all(flag.title in description for flag in analysis.flags)
    import highdicom as hd

    read = hd.ko.KeyObjectSelectionDocument.from_dataset(written)
    assert read.resolve_reference(header.SOPInstanceUID) == (header.StudyInstanceUID, header.SeriesInstanceUID,
                                                             header.SOPInstanceUID)


def test_key_objects_exist_for_some_examples_only(analyses):
    flagged = [name for name, analysis in analyses.items() if key_objects(analysis) is not None]
    assert 0 < len(flagged) < len(analyses)


def test_key_objects_refuse_a_reference_to_another_study(states):
    analysis, state = states["radiographs/femur_malignant.dcm"]
    other = pydicom.Dataset()
    other.update(state)
    other.StudyInstanceUID = "1.2.3.4"
    with pytest.raises(ValueError, match="study"):
        key_objects(analysis, [other])


def test_a_result_not_read_from_dicom_has_no_dicom_outputs(models, tmp_path):
    picture = np.zeros((128, 128), dtype=np.uint8)
    cv2.circle(picture, (64, 64), 30, 200, -1)
    path = tmp_path / "radiograph.png"
    cv2.imwrite(str(path), picture)
    analysis = models.predict(path, check_scope=False)
    assert analysis.predictions
    for result in (analysis, next(iter(analysis.predictions.values()))):
        with pytest.raises(NotDicomSourceError):
            presentation_state(result)
        with pytest.raises(NotDicomSourceError):
            key_objects(result)


@needs_dciodvfy
def test_presentation_state_carries_the_voi_lut_the_model_used(models):
    """A source with a VOI LUT Sequence: the model's table read its first item (``voi`` "file"),
    so the presentation state carries that item, not a window."""
    dataset = pydicom.dcmread(REPO / "examples" / "radiographs" / "femur_malignant.dcm")
    lut = pydicom.Dataset()
    lut.LUTDescriptor = [4096, 0, 12]
    lut.LUTExplanation = "GAMMA"
    lut.add_new("LUTData", "US", (np.sqrt(np.arange(4096) / 4095) * 4095).astype(np.uint16).tolist())
    dataset.VOILUTSequence = [lut]
    analysis = models.predict(dataset)
    assert "VOI LUT Sequence item 0" in analysis.predictions["bone-tumor"].image["intensity"]
    state = _round_trip(presentation_state(analysis))
    (voi,) = state.SoftcopyVOILUTSequence
    assert "WindowCenter" not in voi
    # 12-bit entries become 16-bit ones (a presentation state's VOI LUT has 8 or 16), each the same
    # fraction of the output range.
    assert voi.VOILUTSequence[0].LUTDescriptor == [4096, 0, 16]
    carried = np.asarray(voi.VOILUTSequence[0].LUTData, dtype=np.float64) / 65535
    assert np.abs(carried - np.asarray(lut.LUTData) / 4095).max() <= 0.5 / 65535
    assert dciodvfy(state).errors == ()
