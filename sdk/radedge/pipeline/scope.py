"""Scope checks: is this image one the model was made for (the manifest's ``scope``)?"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OutOfScopeError, ScopeMetadataMissingError
from ..io.image import Image
from ..spec.manifest import Manifest

# SOP classes whose pixels are "For Processing" (raw detector data, not meant for
# display or for models trained on presentation images), PS3.4 B.5.
FOR_PROCESSING_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "Digital Mammography X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "Digital Intra-Oral X-Ray Image Storage - For Processing",
}


#: SOP classes whose IOD fixes the Presentation Intent Type (PS3.3 A.26-A.28: DX, MG and IO,
#: each "For Presentation" and "For Processing").
PRESENTATION_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.2": "Digital Mammography X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.3": "Digital Intra-Oral X-Ray Image Storage - For Presentation",
}

#: How scope checks treat an attribute the scope names but the image lacks: ``"lenient"``
#: analyses the image with a note, ``"strict"`` refuses it.
SCOPE_MODES = ("lenient", "strict")


@dataclass(frozen=True)
class Refusal:
    """Why a model's scope refuses an image: ``reason`` in a line (what a routing result
    records), ``advice`` on what to send instead (what an error for one model adds). Both
    name only DICOM codes (modality, body part, intent, SOP class), never patient data.
    ``attribute``: the DICOM attribute that decided, ``received`` its value (None: absent,
    ``missing`` then) and ``expected`` the values the scope accepts."""

    reason: str
    advice: str = ""
    attribute: str = ""
    received: str | None = None
    expected: tuple[str, ...] = ()
    missing: bool = False

    def __str__(self) -> str:
        return f"{self.reason}. {self.advice}" if self.advice else self.reason


def _listed(values) -> str:
    values = sorted(values)
    return ", ".join(values) if len(values) <= 4 else f"{', '.join(values[:3])} and {len(values) - 3} more"


def _missing(model: str, attribute: str, expected) -> Refusal:
    return Refusal(
        f"{attribute} is absent, and {model}'s scope needs it ({_listed(expected)}); strict scope checking "
        "refuses what it cannot check",
        "Send the image with the attribute set, or load the model with scope='lenient' to analyse it with a note.",
        attribute=attribute, expected=tuple(sorted(expected)), missing=True,
    )


def scope_refusal(manifest: Manifest, image: Image, *, mode: str = "lenient") -> tuple[Refusal | None, list[str]]:
    """(why the model's scope refuses ``image``, or None; notes on what could not be checked).

    ``mode``: ``"lenient"`` (an attribute the scope names but the image lacks is a note) or
    ``"strict"`` (it refuses, ``Refusal.missing``). A PNG, JPEG or TIFF image carries no
    DICOM metadata: lenient notes it, strict refuses it when the scope names anything."""
    scope = manifest.scope
    source = image.source
    strict = mode == "strict"
    notes: list[str] = []
    model = f"{manifest.model_id} {manifest.model_version}"
    if source.format != "dicom":
        named = [(name, values) for name, values in (
            ("Modality", scope.modalities), ("SOP Class UID", scope.sop_classes),
            ("Presentation Intent Type", scope.presentation_intents), ("Body Part Examined", scope.body_parts),
        ) if values]
        if strict and named:
            name, values = named[0]
            return Refusal(
                f"{source.format.upper()} input carries no DICOM metadata, and {model}'s scope needs "
                f"{name} ({_listed(values)}); strict scope checking refuses what it cannot check",
                "Send the DICOM image, or load the model with scope='lenient'.",
                attribute=name, expected=tuple(sorted(values)), missing=True,
            ), notes
        notes.append(f"{source.format.upper()} input carries no DICOM metadata: model scope not checked")
        return None, notes
    if scope.sop_classes:
        if source.sop_class_uid and source.sop_class_uid not in scope.sop_classes:
            return Refusal(
                f"SOP Class UID {source.sop_class_uid} is not one {model} accepts ({_listed(scope.sop_classes)})",
                "Send an image of a SOP class in the model's scope.",
                attribute="SOP Class UID", received=source.sop_class_uid, expected=tuple(sorted(scope.sop_classes)),
            ), notes
        if not source.sop_class_uid:
            if strict:
                return _missing(model, "SOP Class UID", scope.sop_classes), notes
            notes.append("SOP Class UID absent: SOP class not checked")
    intents = {value.upper() for value in scope.presentation_intents}
    if intents:
        processing_class = FOR_PROCESSING_SOP_CLASSES.get(source.sop_class_uid or "")
        intent = (source.presentation_intent or "").upper()
        if processing_class and "FOR PROCESSING" not in intents:
            intent = "FOR PROCESSING"
        if strict and not intent and source.sop_class_uid in PRESENTATION_SOP_CLASSES:
            intent = "FOR PRESENTATION"
        if intent and intent not in intents:
            return Refusal(
                f"this image is {intent} (PresentationIntentType / SOP class) but {model} was trained on "
                f"{' / '.join(sorted(intents))} images",
                "Send the modality's presentation image (the processed one the console displays), not the raw "
                "detector image.",
                attribute="Presentation Intent Type", received=intent, expected=tuple(sorted(intents)),
            ), notes
        if not intent:
            # Strict refuses only an image whose SOP class is unknown: the DX, MG and IO classes fix
            # the intent above, and other IODs (CR, CT) have no Presentation Intent Type to miss.
            if strict and not source.sop_class_uid:
                return _missing(model, "Presentation Intent Type", intents), notes
            notes.append("PresentationIntentType absent: presentation intent not checked")
    modalities = {value.upper() for value in scope.modalities}
    if modalities:
        if source.modality and source.modality.upper() not in modalities:
            return Refusal(f"this image's modality is {source.modality}; {model} is intended for {_listed(modalities)}",
                           attribute="Modality", received=source.modality,
                           expected=tuple(sorted(modalities))), notes
        if not source.modality and strict:
            return _missing(model, "Modality", modalities), notes
    body_parts = {value.upper() for value in scope.body_parts}
    if body_parts:
        if source.body_part and source.body_part.upper() not in body_parts:
            return Refusal(
                f"this image's BodyPartExamined is {source.body_part}; {model} is intended for {_listed(body_parts)}",
                "Route other body parts to a model made for them.",
                attribute="Body Part Examined", received=source.body_part, expected=tuple(sorted(body_parts)),
            ), notes
        if not source.body_part:
            if strict:
                return _missing(model, "Body Part Examined", body_parts), notes
            notes.append("BodyPartExamined absent: body part not checked")
    return None, notes


def check_scope(manifest: Manifest, image: Image, *, mode: str = "lenient") -> list[str]:
    """Raise ``OutOfScopeError`` for an image outside the manifest's intended scope
    (``ScopeMetadataMissingError`` when ``mode="strict"`` and the image lacks an attribute the
    scope names); return notes on what could not be checked."""
    refusal, notes = scope_refusal(manifest, image, mode=mode)
    if refusal is not None:
        error = ScopeMetadataMissingError if refusal.missing else OutOfScopeError
        fields = {"received": refusal.received} if not refusal.missing else {}
        raise error(str(refusal), model_id=manifest.model_id, attribute=refusal.attribute,
                    expected=list(refusal.expected), path=image.source.path, **fields)
    return notes
