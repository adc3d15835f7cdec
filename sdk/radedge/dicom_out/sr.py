"""The Structured Report of a result: PS3.16 TID 1500 Measurement Report, in a Comprehensive SR
document (PS3.3 A.35.3), made through highdicom.

Why Comprehensive SR: the regions are SCOORD (2D image coordinates), which Basic Text SR
cannot hold; a radiograph has no patient frame of reference, so SCOORD3D, and with it
Comprehensive 3D SR, has nothing to point into. Enhanced SR would hold this tree too
(dciodvfy accepts it in both), but only by-value relationships, ever; Comprehensive SR is the
more general 2D class, the one a reader of TID 1500 documents is likeliest to accept.

The content tree (``measurement_report``): the language, the observation context (radedge as
the device observer, TID 1004), the procedure reported (the source's Procedure Code Sequence,
else the modality's "unspecified body region" procedure from CID 100), an image library
entry for the source image, then Imaging Measurements holding, per model, measurement groups
that each carry the model's algorithm identification (TID 4019: name, version, and as
parameters the bundle sha256 and precision) and reference the source image:

- a classification head: one TID 1501 group; each label's probability as a TID 300
  measurement named by the label's concept, unit ``{probability}``, and, for heads of
  several labels, the top label as a qualitative evaluation;
- a detection box: one TID 1410 group, its region a closed POLYLINE (5 points, the first
  repeated) in source pixels, the label's concept as the finding, the score as
  "Certainty of Finding" (unit ``{score}``);
- a heatmap point: one TID 1410 group, its region a POINT, likewise; a finding site where
  the manifest locates the head with a landmark head (``locate_with``: the nearest
  vertebral level), and for the landmark head's own points their label;
- a segmentation region that holds pixels: one TID 1501 group, the label's concept as the
  finding; where the image gives a usable pixel spacing, its area (SCT Area, unit ``mm2``)
  and a qualitative evaluation "Pixel spacing source" naming the attribute it came from,
  and no area otherwise;
- a raised flag: one TID 1501 group, the flagged label's concept as the finding, the flag
  code (meaning: the title shown) as a qualitative evaluation, the score ("Certainty of
  Finding", or SCT Area for an area rule), the threshold (DCM Threshold Value) in the same
  unit, the operating point's sensitivity and specificity where the manifest gives them, and
  the finding sites of the locations the flag names;
- a model that found nothing it could analyse, and an image no model analysed: a TID 1501
  group "Not analysed" with the reason as text; the report is written all the same.

Units: probabilities are written in ``{probability}``, UCUM's unity with an annotation,
rather than ``1``: both mean a dimensionless number (a UCUM reader converts them alike), but
only the annotated unit tells a reader of the number alone that 0.93 is a probability and not
a ratio or a fraction of an area. Detection and heatmap scores are not calibrated
probabilities, so they are ``{score}``; the operating point's sensitivity and specificity are
proportions, ``1``.

Coordinates: SCOORD image coordinates (PS3.3 C.18.6.1.1) put the top left corner of the top
left pixel at (0, 0) and a pixel's centre at +0.5, which is how radedge gives boxes and
points (column, row order, source-image pixels): they are written unchanged, as float32 (FL).

Concepts radedge has no code for are in the private scheme ``99RADEDGE`` (``common.concept``),
declared in the Coding Scheme Identification Sequence. Patient and study attributes are
copied from the source by highdicom; nothing here reads, prints or logs them.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..heads import ClassificationResult, DetectionResult, HeatmapResult, SegmentationResult
from .common import (
    MANUFACTURER,
    PRIVATE_SCHEME,
    SERIES_NUMBER,
    ModelOutput,
    algorithm_identification,
    concept,
    equipment,
    long_string,
    model_outputs,
    new_uid,
    private_scheme,
    source_header,
)


SERIES_DESCRIPTION = "radedge measurement report"

#: Attributes highdicom reads from the source by name to fill the SR's Patient and General
#: Study modules, where all are Type 2 (present, possibly empty). A source lacking one gets it
#: empty in the copy highdicom reads, so the SR holds it empty as the IOD asks; no value the
#: source has is changed.
_REFERENCE_ATTRIBUTES = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def _private(value: str, meaning: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=PRIVATE_SCHEME, meaning=long_string(meaning))


def _ucum(value: str, meaning: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator="UCUM", meaning=meaning)


class Concepts:
    """The concepts the report names its items with, standard where one fits (made per report:
    highdicom and pydicom's code dictionary are imported lazily)."""

    def __init__(self) -> None:
        from pydicom.sr.codedict import codes

        self.probability_unit = _ucum("{probability}", "probability")
        self.score_unit = _ucum("{score}", "score")
        self.proportion_unit = codes.UCUM.NoUnits
        self.square_mm = codes.UCUM.SquareMillimeter
        self.area = codes.SCT.Area
        self.certainty = codes.DCM.CertaintyOfFinding
        self.threshold = codes.DCM.ThresholdValue
        self.flag = _private("flag", "radedge flag")
        self.sensitivity = _private("operating_point.sensitivity", "Sensitivity at the flag's operating point")
        self.specificity = _private("operating_point.specificity", "Specificity at the flag's operating point")
        self.spacing_source = _private("pixel_spacing_source", "Pixel spacing source")
        self.analysis = _private("analysis", "Analysis")
        self.not_analysed = _private("not_analysed", "Not analysed")
        self.reason = _private("not_analysed_reason", "Reason not analysed")
        self.top_label = _private("top_label", "Label of highest probability")


def measurement_report(result: Any):
    """The TID 1500 Measurement Report of ``result`` (an ``ImageAnalysis``: every model that
    analysed the image; or one model's ``Prediction``) as a ``highdicom.sr.ComprehensiveSR``
    in a new series, in the source's study. Raises ``NotDicomSourceError`` for a result on an
    image not read from DICOM. See the module docstring for the content tree."""
    import highdicom as hd

    header = source_header(result)
    missing = [keyword for keyword in _REFERENCE_ATTRIBUTES if keyword not in header]
    if missing:
        raise ValueError(
            f"{result.source} has no {', '.join(missing)}, which an SR needs to reference it and its study; "
            "write the JSON result for it instead"
        )
    names = Concepts()
    outputs = model_outputs(result)
    groups = []
    for output in outputs:
        groups.extend(_model_groups(output, names))
    not_analysable = dict(getattr(result, "not_analysable", {}))
    if outputs:
        for model, reason in not_analysable.items():
            groups.append(_not_analysed_group(header, names, f"{model}: {reason}"))
    else:
        groups.append(_not_analysed_group(header, names, result.reason or "no model analysed the image"))

    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=_device_observer(outputs)),
        procedure_reported=_procedures_reported(header),
        imaging_measurements=groups,
        referenced_images=[header],
    )
    return hd.sr.ComprehensiveSR(
        evidence=[header],
        content=report[0],
        series_instance_uid=new_uid(),
        series_number=SERIES_NUMBER["sr"],
        sop_instance_uid=new_uid(),
        instance_number=1,
        series_description=SERIES_DESCRIPTION,
        is_complete=True,
        # An unverified machine reading: a radiologist's report is the definitive one.
        is_final=False,
        coding_schemes=[private_scheme()],
        **equipment(outputs),
    )


def _device_observer(outputs: list[ModelOutput]):
    """TID 1002 / 1004: radedge is the observer. Its UID is the same for every report of this
    radedge version (made from the version, not random), so reports by one version group."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    models = ", ".join(f"{o.model_id} {o.model_version}".strip() for o in outputs) or "no model analysed the image"
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=[MANUFACTURER, __version__]),
            name=f"radedge {__version__}",
            manufacturer_name=MANUFACTURER,
            model_name=long_string(models),
        ),
    )


def _procedures_reported(header) -> list:
    """The source's Procedure Code Sequence, else the modality's CID 100 procedure."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    procedures = []
    for item in header.get("ProcedureCodeSequence", []):
        try:
            procedures.append(hd.sr.CodedConcept.from_dataset(item))
        except (AttributeError, TypeError, ValueError):
            continue  # a malformed code says nothing; the modality's procedure stands in
    if procedures:
        return procedures
    by_modality = {
        "CT": codes.LN.CTUnspecifiedBodyRegion,
        "MR": codes.LN.MRIUnspecifiedBodyRegion,
        "DX": codes.LN.XRUnspecifiedBodyRegion,
        "CR": codes.LN.XRUnspecifiedBodyRegion,
        "RG": codes.LN.XRUnspecifiedBodyRegion,
    }
    return [by_modality.get(str(header.get("Modality", "")), codes.SCT.ImagingProcedure)]


def _algorithm(output: ModelOutput):
    """TID 4019 from the algorithm identification every radedge object shares: name, version,
    and the parameters (bundle_sha256, precision) as "key=value" texts."""
    import highdicom as hd

    item = algorithm_identification(output)[0]
    parameters = [p for p in str(item.get("AlgorithmParameters", "")).split(",") if p]
    return hd.sr.AlgorithmIdentification(
        name=item.AlgorithmName, version=item.AlgorithmVersion, parameters=parameters or None,
        family=hd.sr.CodedConcept.from_dataset(item.AlgorithmFamilyCodeSequence[0]),
        manufacturer=MANUFACTURER,
    )


def _tracking(text: str):
    import highdicom as hd

    return hd.sr.TrackingIdentifier(uid=new_uid(), identifier=text)


def _measurement(name, value: float, unit):
    import highdicom as hd

    return hd.sr.Measurement(name=name, value=float(value), unit=unit)


def _model_groups(output: ModelOutput, names: Concepts) -> list:
    """Every measurement group of one model, heads in the manifest's order, then its flags."""
    algorithm = _algorithm(output)
    prediction = output.prediction
    groups = []
    for head, result in prediction.heads.items():
        if isinstance(result, ClassificationResult):
            groups.append(_classification_group(output, names, algorithm, result))
        elif isinstance(result, SegmentationResult):
            groups.extend(_segmentation_groups(output, names, algorithm, result))
        elif isinstance(result, DetectionResult):
            groups.extend(_detection_groups(output, names, algorithm, result))
        elif isinstance(result, HeatmapResult):
            groups.extend(_heatmap_groups(output, names, algorithm, result))
        # A class activation map explains a classification; it is drawn, not measured.
    for flag in prediction.flags:
        groups.append(_flag_group(output, names, algorithm, flag))
    return groups


def _source_for_group(header):
    import highdicom as hd

    return [hd.sr.SourceImageForMeasurementGroup.from_source_image(header)]


def _classification_group(output: ModelOutput, names: Concepts, algorithm, result: ClassificationResult):
    import highdicom as hd

    measurements = [
        _measurement(concept(output, result.head, label), probability, names.probability_unit)
        for label, probability in zip(result.labels, result.probabilities.tolist())
    ]
    # One label's head (a sigmoid "blastic?") has that label on top whatever its probability.
    evaluations = None
    if len(result.labels) > 1:
        evaluations = [hd.sr.QualitativeEvaluation(names.top_label, concept(output, result.head, result.top_label))]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(f"{output.model_id} {result.head}"),
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations,
        source_images=_source_for_group(output.header),
    )


def _segmentation_groups(output: ModelOutput, names: Concepts, algorithm, result: SegmentationResult) -> list:
    import highdicom as hd

    groups = []
    # One group per label, over all its pixels; the SEG holds each region's outline.
    for region in result.labels_summary:
        if region.pixel_count == 0:
            continue  # the head found no such region: nothing to report
        measurements, evaluations = None, None
        if region.area_mm2 is not None:
            measurements = [_measurement(names.area, region.area_mm2, names.square_mm)]
            evaluations = [hd.sr.QualitativeEvaluation(
                names.spacing_source, _private(f"spacing.{result.area_source}", result.area_source)
            )]
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"{output.model_id} {result.head} {region.label}"),
            algorithm_id=algorithm,
            finding_type=concept(output, result.head, region.label),
            measurements=measurements,
            qualitative_evaluations=evaluations,
            source_images=_source_for_group(output.header),
        ))
    return groups


def _region(output: ModelOutput, graphic_type: str, points: list[tuple[float, float]]):
    import highdicom as hd
    import numpy as np

    return hd.sr.ImageRegion(
        graphic_type=graphic_type,
        graphic_data=np.asarray(points, dtype=np.float32),
        source_image=hd.sr.SourceImageForRegion.from_source_image(output.header),
    )


def _roi_group(output: ModelOutput, names: Concepts, algorithm, head: str, label: str, score: float, region,
               sites: list, tracking: str):
    import highdicom as hd

    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(tracking),
        referenced_region=region,
        algorithm_id=algorithm,
        finding_type=concept(output, head, label),
        finding_sites=[hd.sr.FindingSite(site) for site in sites] or None,
        measurements=[_measurement(names.certainty, score, names.score_unit)],
    )


def _detection_groups(output: ModelOutput, names: Concepts, algorithm, result: DetectionResult) -> list:
    groups = []
    for index, box in enumerate(result.boxes, 1):
        x1, y1, x2, y2 = box.xyxy
        region = _region(output, "POLYLINE", [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)])
        sites = _sites_near(output, result.head, box.centre)
        groups.append(_roi_group(output, names, algorithm, result.head, box.label, box.score, region, sites,
                                 f"{output.model_id} {result.head} box {index} {box.label}"))
    return groups


def _heatmap_groups(output: ModelOutput, names: Concepts, algorithm, result: HeatmapResult) -> list:
    landmark = result.head in _locator_heads(output)
    groups = []
    for index, point in enumerate(result.points, 1):
        region = _region(output, "POINT", [(point.x, point.y)])
        if landmark:
            sites = [concept(output, result.head, point.label)]
        else:
            sites = _sites_near(output, result.head, (point.x, point.y))
        groups.append(_roi_group(output, names, algorithm, result.head, point.label, point.score, region, sites,
                                 f"{output.model_id} {result.head} point {index} {point.label}"))
    return groups


def _locator_heads(output: ModelOutput) -> set[str]:
    """Heads whose points name the places of other heads' findings (``locate_with``)."""
    return {rule.locate_with for rule in output.manifest.flag_rules if rule.locate_with}


def _locator_of(output: ModelOutput, head: str) -> HeatmapResult | None:
    for rule in output.manifest.flag_rules:
        if rule.head == head and rule.locate_with:
            locator = output.prediction.heads.get(rule.locate_with)
            if isinstance(locator, HeatmapResult):
                return locator
    return None


def _sites_near(output: ModelOutput, head: str, point: tuple[float, float]) -> list:
    """The finding site of a finding of ``head`` at ``point``: the nearest landmark of the
    head the manifest locates it with, as the flag rules place it; none without one."""
    locator = _locator_of(output, head)
    nearest = None if locator is None else locator.nearest(*point)
    return [] if nearest is None else [concept(output, locator.head, nearest.label)]


def _flag_group(output: ModelOutput, names: Concepts, algorithm, flag):
    import highdicom as hd

    kind = output.prediction.heads[flag.head].kind
    if kind == "segmentation":
        score_name, unit = names.area, names.square_mm
    elif kind == "classification":
        score_name, unit = names.certainty, names.probability_unit
    else:
        score_name, unit = names.certainty, names.score_unit
    measurements = [_measurement(score_name, flag.score, unit), _measurement(names.threshold, flag.threshold, unit)]
    rule = next((r for r in output.manifest.flag_rules if r.code == flag.code and r.head == flag.head), None)
    operating_point = rule.operating_point if rule is not None else {}
    for key, name in (("sensitivity", names.sensitivity), ("specificity", names.specificity)):
        if operating_point.get(key) is not None:
            measurements.append(_measurement(name, operating_point[key], names.proportion_unit))
    sites = []
    locator = _locator_of(output, flag.head)
    if locator is not None and flag.where:
        # ``where`` joins the located labels with ", " in the order of the findings.
        sites = [concept(output, locator.head, label) for label in flag.where.split(", ") if label in locator.labels]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(f"{output.model_id} flag {flag.code}"),
        algorithm_id=algorithm,
        finding_type=concept(output, flag.head, flag.label),
        finding_sites=[hd.sr.FindingSite(site) for site in sites] or None,
        measurements=measurements,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(names.flag, _private(flag.code, flag.title))],
        source_images=_source_for_group(output.header),
    )


def _not_analysed_group(header, names: Concepts, reason: str):
    """A TID 1501 group saying the image, or one model's part, was not analysed, and why
    (a TEXT qualitative evaluation)."""
    import highdicom as hd

    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("not analysed"),
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(names.analysis, names.not_analysed)],
        source_images=_source_for_group(header),
    )
    group[0].ContentSequence.append(
        hd.sr.TextContentItem(name=names.reason, value=reason, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    )
    return group
