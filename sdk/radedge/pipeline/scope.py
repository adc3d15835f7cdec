"""Scope checks: is this image one the model was made for (the manifest's ``scope``)?"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OutOfScopeError
from ..io.image import Image
from ..spec.manifest import Manifest

# SOP classes whose pixels are "For Processing" (raw detector data, not meant for
# display or for models trained on presentation images), PS3.4 B.5.
FOR_PROCESSING_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "Digital Mammography X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "Digital Intra-Oral X-Ray Image Storage - For Processing",
}


@dataclass(frozen=True)
class Refusal:
    """Why a model's scope refuses an image: ``reason`` in a line (what a routing result
    records), ``advice`` on what to send instead (what an error for one model adds). Both
    name only DICOM codes (modality, body part, intent, SOP class), never patient data."""

    reason: str
    advice: str = ""

    def __str__(self) -> str:
        return f"{self.reason}. {self.advice}" if self.advice else self.reason


def _listed(values) -> str:
    values = sorted(values)
    return ", ".join(values) if len(values) <= 4 else f"{', '.join(values[:3])} and {len(values) - 3} more"


def scope_refusal(manifest: Manifest, image: Image) -> tuple[Refusal | None, list[str]]:
    """(why the model's scope refuses ``image``, or None; notes on what could not be checked)."""
    scope = manifest.scope
    source = image.source
    notes: list[str] = []
    model = f"{manifest.model_id} {manifest.model_version}"
    if source.format != "dicom":
        notes.append(f"{source.format.upper()} input carries no DICOM metadata: model scope not checked")
        return None, notes
    if scope.sop_classes:
        if source.sop_class_uid and source.sop_class_uid not in scope.sop_classes:
            return Refusal(
                f"SOP Class UID {source.sop_class_uid} is not one {model} accepts ({_listed(scope.sop_classes)})",
                "Send an image of a SOP class in the model's scope.",
            ), notes
        if not source.sop_class_uid:
            notes.append("SOP Class UID absent: SOP class not checked")
    intents = {value.upper() for value in scope.presentation_intents}
    if intents:
        processing_class = FOR_PROCESSING_SOP_CLASSES.get(source.sop_class_uid or "")
        intent = (source.presentation_intent or "").upper()
        if processing_class and "FOR PROCESSING" not in intents:
            intent = "FOR PROCESSING"
        if intent and intent not in intents:
            return Refusal(
                f"this image is {intent} (PresentationIntentType / SOP class) but {model} was trained on "
                f"{' / '.join(sorted(intents))} images",
                "Send the modality's presentation image (the processed one the console displays), not the raw "
                "detector image.",
            ), notes
        if not intent:
            notes.append("PresentationIntentType absent: presentation intent not checked")
    modalities = {value.upper() for value in scope.modalities}
    if modalities and source.modality and source.modality.upper() not in modalities:
        return Refusal(f"this image's modality is {source.modality}; {model} is intended for {_listed(modalities)}"), notes
    body_parts = {value.upper() for value in scope.body_parts}
    if body_parts:
        if source.body_part and source.body_part.upper() not in body_parts:
            return Refusal(
                f"this image's BodyPartExamined is {source.body_part}; {model} is intended for {_listed(body_parts)}",
                "Route other body parts to a model made for them.",
            ), notes
        if not source.body_part:
            notes.append("BodyPartExamined absent: body part not checked")
    return None, notes


def check_scope(manifest: Manifest, image: Image) -> list[str]:
    """Raise ``OutOfScopeError`` for an image outside the manifest's intended scope; return
    notes on what could not be checked."""
    refusal, notes = scope_refusal(manifest, image)
    if refusal is not None:
        raise OutOfScopeError(str(refusal))
    return notes
