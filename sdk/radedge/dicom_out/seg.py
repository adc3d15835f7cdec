"""DICOM Segmentation (PS3.3 A.51 Segmentation IOD) of a model's segmentation heads.

One Segmentation instance per segmentation head, BINARY (PS3.3 C.8.20.2), one segment per label
of the head, each segment one frame of the source's rows x columns lying pixel for pixel on the
source image. A projection radiograph (DX, CR) has no Frame of Reference and no plane position:
highdicom then takes the single source frame as the segmentation's only plane, and the frames
reference the source instance (Derivation Image / Source Image Sequences). A source with a
Frame of Reference (CT) gives its plane position, orientation and pixel measures. The
segmentations of one model on one image share a new series. Patient and study attributes are
copied from the source header by highdicom, as the Patient and General Study modules require.

An empty mask (the model found no region of the label) still gives its segment, as one all-zero
frame, not an omitted object: that the model looked and found nothing is a result, which a
reader must be able to tell from an image the model never analysed. The IOD does not require a
segment to cover a pixel (dciodvfy accepts it), and highdicom would otherwise keep one empty
frame anyway when all are empty. Every segment therefore has exactly one frame.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .common import (
    PRIVATE_SCHEME,
    SERIES_NUMBER,
    ModelOutput,
    algorithm_identification,
    concept,
    equipment,
    long_string,
    new_uid,
    private_scheme,
)

# PS3.16 CID 7150 Segmentation Property Category, and the context group of the property types
# each category admits (CID 7191-7198; CID 7151 is their union). Morphologically abnormal
# structure comes first: a model's regions are findings, and a type listed under two categories
# (Normal is under both 7194 and 7196) belongs to the finding's.
_CATEGORY_GROUPS = (
    ("MorphologicallyAbnormalStructure", 7194),
    ("AnatomicalStructure", 7192),
    ("Tissue", 7191),
    ("PhysicalObject", 7193),
    ("BodySubstance", 7197),
    ("Substance", 7198),
    ("Function", 7195),
    ("SpatialAndRelationalConcept", 7196),
)
_CONTENT_LABEL = re.compile(r"[^A-Z0-9_ ]")


def segmentations(output: ModelOutput) -> list:
    """One ``highdicom.seg.Segmentation`` per segmentation head of ``output``'s model, in
    manifest order; an empty list for a model without one. Each is BINARY, Explicit VR Little
    Endian, with segment ``i + 1`` for ``labels[i]`` of its head (``SegmentationResult.mask ==
    i + 1``), and references the source instance."""
    results = output.prediction.segmentations
    heads = [spec for spec in output.manifest.heads if spec.kind == "segmentation" and spec.name in results]
    if not heads:
        return []
    series_uid = new_uid()
    return [
        _segmentation(output, spec.name, results[spec.name], series_uid, instance_number)
        for instance_number, spec in enumerate(heads, start=1)
    ]


def segment_category(property_type: Any):
    """The Segmented Property Category (CID 7150) of a property type: the category whose
    context group (CID 7191-7198) lists it, else Morphologically abnormal structure, since a
    model's regions are findings (a private code is in no group)."""
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    code = Code(property_type.value, property_type.scheme_designator, property_type.meaning)
    for keyword, group in _CATEGORY_GROUPS:
        if code in getattr(codes, f"cid{group}"):
            return getattr(codes.cid7150, keyword)
    return codes.cid7150.MorphologicallyAbnormalStructure


def _segmentation(output: ModelOutput, head: str, result: Any, series_uid: str, instance_number: int):
    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian

    header = output.header
    mask = np.asarray(result.mask)
    if mask.shape != (header.Rows, header.Columns):
        raise ValueError(
            f"the {head} mask is {mask.shape[0]} x {mask.shape[1]} pixels but the source image is "
            f"{header.Rows} x {header.Columns}; a Segmentation must be at the source's geometry"
        )
    algorithm = algorithm_identification(output)
    descriptions = []
    for number, label in enumerate(result.labels, start=1):
        property_type = concept(output, head, label)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=long_string(label),
                segmented_property_category=segment_category(property_type),
                segmented_property_type=property_type,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
    # Stacked segments, uint8[1, rows, columns, labels]: segment i + 1 is where the mask is i + 1.
    stacked = mask[None, :, :, None] == np.arange(1, len(result.labels) + 1, dtype=mask.dtype)
    identity = f"{output.model_id} {output.model_version}".strip()
    private = any(item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == PRIVATE_SCHEME
                  for item in descriptions)
    segmentation = hd.seg.Segmentation(
        source_images=[header],
        pixel_array=stacked.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid,
        series_number=SERIES_NUMBER["seg"],
        sop_instance_uid=new_uid(),
        instance_number=instance_number,
        **equipment(output),
        content_label=_content_label(output.model_id),
        content_description=long_string(f"radedge {identity}: {head}"),
        series_description=long_string(f"radedge {output.model_id} segmentation"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        omit_empty_frames=False,
        # PS3.3 C.12.1.1.2: a private coding scheme in use is identified in the instance.
        coding_schemes=[private_scheme()] if private else None,
    )
    shared = segmentation.SharedFunctionalGroupsSequence[0]
    if "FrameOfReferenceUID" not in segmentation:
        # PS3.3 C.7.6.1 (General Image): without a plane orientation (a projection radiograph
        # has no Frame of Reference) Patient Orientation is Type 2; the segmentation lies
        # pixel for pixel on the source, so the source's row and column directions are its own.
        segmentation.PatientOrientation = header.get("PatientOrientation", "")
        # A calibrated radiograph's Pixel Spacing becomes a Pixel Measures item without Slice
        # Thickness, which the standard allows without a Frame of Reference (PS3.3
        # C.7.6.16.2.1) but highdicom's reader refuses (0.28: PixelMeasuresSequence.from_sequence
        # requires both). The macro is optional there, and the spacing stays on the source,
        # which the segmentation lies on pixel for pixel.
        if "PixelMeasuresSequence" in shared and "SliceThickness" not in shared.PixelMeasuresSequence[0]:
            del shared.PixelMeasuresSequence
    return segmentation


def _content_label(model_id: str) -> str:
    """Content Label (CS, PS3.5 6.2: upper case, digits, space, underscore, 16 characters) of
    a model: its id, upper case, other characters as underscores."""
    return _CONTENT_LABEL.sub("_", model_id.upper())[:16] or "RADEDGE"
