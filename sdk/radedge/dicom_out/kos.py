"""Key Object Selection Document (PS3.3 A.35.4, TID 2010): the flagged image, selected for a
worklist's "AI flagged" filter, with the objects radedge made for it.

The document title is (113000, DCM, "Of Interest") of CID 7010: the general title for images
singled out for attention, the one a viewer's key-image filter shows and IHE Key Image Note
uses by default. The other CID 7010 titles name an audience or a purpose ("For Referring
Provider", "For Peer Review", "For Surgery", "For Physician Review" of the RT workflow group)
that an unreviewed finding by a model has not earned; the Key Object Description says why the
image is of interest, and the device observer says who selected it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset

from .common import MANUFACTURER, SERIES_NUMBER, equipment, long_string, model_outputs, new_uid, source_header


def key_objects(result: Any, references: Sequence[Dataset] = ()):
    """``highdicom.ko.KeyObjectSelectionDocument`` selecting ``result``'s source image when a
    model flagged it (an ``ImageAnalysis`` or a ``Prediction``), else None.

    ``references``: further objects of the same study to select with it, e.g. the SEG, SR and
    presentation state made for the image (data sets with SOP Class, SOP Instance, Series and
    Study Instance UIDs). The Key Object Description names every flag, with its model and
    score. New series and instance UIDs; patient and study are the source's. Raises
    ``NotDicomSourceError`` for a result whose input was not DICOM, and ValueError for a
    reference to another study.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    header = source_header(result)
    if not result.flagged:
        return None
    outputs = model_outputs(result)
    study = header.StudyInstanceUID
    for reference in references:
        if reference.get("StudyInstanceUID") != study:
            raise ValueError(
                f"key_objects: reference {reference.get('SOPInstanceUID')} belongs to study "
                f"{reference.get('StudyInstanceUID')}, not the flagged image's {study}; a key object selection "
                "radedge writes selects objects of the image's own study only"
            )
    models = ", ".join(output.model_id for output in outputs)
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_device_uid(outputs), name="radedge", manufacturer_name=MANUFACTURER, model_name=long_string(models),
        ),
    )
    flags = "; ".join(f"{flag.title} ({flag.model}, score {flag.score:.2f})" for flag in result.flags)
    content = hd.ko.KeyObjectSelection(
        document_title=codes.DCM.OfInterest,
        referenced_objects=[header, *references],
        observer_device_context=device,
        description=f"Flagged by radedge for review: {flags}",
    )
    return hd.ko.KeyObjectSelectionDocument(
        evidence=[header, *references],
        content=content,
        series_instance_uid=new_uid(),
        series_number=SERIES_NUMBER["kos"],
        sop_instance_uid=new_uid(),
        instance_number=1,
        **equipment(outputs),
        series_description="radedge: flagged for review",
    )


def _device_uid(outputs) -> str:
    """Device Observer UID: the same for the same models with the same weights, so a worklist
    can tell the selections of one configuration apart from another's."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["radedge", *(f"{o.model_id}:{o.bundle_digest}" for o in outputs)]))
