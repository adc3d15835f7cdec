"""What every DICOM output of radedge shares: the source it describes, the algorithm that made
it, the equipment, coded concepts for the model's labels, and new UIDs.

A result becomes DICOM only from a DICOM source: its header (``Image.header``) gives the
patient, study and frame the outputs belong to. Patient and study attributes are copied from
it by highdicom exactly as the IODs require and never written anywhere else.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from .. import __version__
from ..errors import NotDicomSourceError

#: Coding scheme of concepts radedge makes up for a label the manifest gives no code for:
#: "99" marks a private scheme (PS3.16 8.2); the value is "<model id>.<head>.<label>".
PRIVATE_SCHEME = "99RADEDGE"

MANUFACTURER = "radedge"

#: Series Number of each kind of object (PS3.3 C.7.3.1; a new series per object): fixed, past
#: the numbers consoles give acquired series, so a viewer lists them after the images.
SERIES_NUMBER = {"seg": 9101, "sr": 9102, "gsps": 9103, "kos": 9104}

#: Type 2 patient and study attributes highdicom copies from the source by attribute access
#: (PS3.3 C.7.1.1, C.7.2.1): a source may lack them (they may be empty, not absent).
_TYPE2_COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "ReferringPhysicianName",
)


@dataclass(frozen=True)
class ModelOutput:
    """One model's result on one DICOM image, as the builders read it.

    ``header``: the source image's data set without Pixel Data. ``prediction``: the model's
    ``radedge.results.Prediction`` (``heads``, ``flags``, ``provenance``). ``manifest``: its
    ``radedge.spec.Manifest`` (labels, codes, flag rules and operating points).
    """

    header: Dataset
    prediction: Any
    manifest: Any

    @property
    def model_id(self) -> str:
        return str(self.prediction.provenance.get("model_id", self.prediction.model_id))

    @property
    def model_version(self) -> str:
        return str(self.prediction.provenance.get("model_version", ""))

    @property
    def bundle_digest(self) -> str:
        return str(self.prediction.provenance.get("bundle_sha256", ""))

    @property
    def precision(self) -> str:
        return str(self.prediction.provenance.get("precision", "fp32"))


def source_header(result: Any) -> Dataset:
    """The DICOM header a result's outputs reference (``copy_source``: absent Type 2 patient
    and study attributes present and empty), or ``NotDicomSourceError``."""
    header = getattr(result, "_header", None)
    if header is None:
        raise NotDicomSourceError(
            f"{result.source} was not read from DICOM, so its results cannot be written as DICOM "
            "objects (they reference the source's patient, study and instance); use the JSON result"
        )
    return copy_source(header)


def model_outputs(result: Any) -> list[ModelOutput]:
    """The ``ModelOutput`` of each model that analysed the image: one for a ``Prediction``,
    one per analysing model for an ``ImageAnalysis``."""
    header = source_header(result)
    predictions = result.predictions.values() if hasattr(result, "predictions") else [result]
    return [ModelOutput(header, prediction, prediction._manifest) for prediction in predictions]


def algorithm_identification(output: ModelOutput):
    """PS3.3 C.8.20.2 / TID 4019: the model (name, version), the family (artificial
    intelligence) and, as parameters, the bundle digest and precision that identify exactly
    which weights ran."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.AlgorithmIdentificationSequence(
        name=output.model_id,
        family=codes.cid7162.ArtificialIntelligence,
        version=output.model_version or "unversioned",
        source=f"radedge {__version__}",
        parameters={"bundle_sha256": output.bundle_digest, "precision": output.precision},
    )


def concept(output: ModelOutput, head: str, label: str):
    """The coded concept of ``label`` of ``head``: the manifest's code for it (``HeadSpec.codes``:
    ``{"value", "scheme", "meaning"}``), else a private one (``PRIVATE_SCHEME``) whose meaning
    is the label."""
    import highdicom as hd

    spec = next((spec for spec in output.manifest.heads if spec.name == head), None)
    code = dict(spec.codes.get(label, {})) if spec is not None else {}
    if code:
        return hd.sr.CodedConcept(value=str(code["value"]), scheme_designator=str(code["scheme"]),
                                  meaning=str(code["meaning"]), scheme_version=code.get("version"))
    return hd.sr.CodedConcept(value=f"{output.model_id}.{head}.{label}", scheme_designator=PRIVATE_SCHEME,
                              meaning=label.replace("_", " "))


def equipment(outputs: ModelOutput | Sequence[ModelOutput]) -> dict[str, Any]:
    """General Equipment attributes of an output (PS3.3 C.7.5.1): who made it. For one model,
    the device serial number is its bundle digest's first 16 hex digits (the exact weights);
    for several, radedge with each model's version and digest."""
    outputs = [outputs] if isinstance(outputs, ModelOutput) else list(outputs)
    each = [{
        "manufacturer_model_name": output.model_id,
        "software_versions": f"radedge {__version__}; {output.model_id} {output.model_version}".strip(),
        "device_serial_number": output.bundle_digest[:16] or "unknown",
    } for output in outputs]
    if len(each) == 1:
        return {"manufacturer": MANUFACTURER, **each[0]}
    return {
        "manufacturer": MANUFACTURER,
        "manufacturer_model_name": long_string(", ".join(o.model_id for o in outputs) or MANUFACTURER),
        "software_versions": [long_string(e["software_versions"]) for e in each] or f"radedge {__version__}",
        "device_serial_number": long_string("/".join(e["device_serial_number"] for e in each) or "none"),
    }


def long_string(text: str) -> str:
    """``text`` as a Long String (LO, at most 64 characters, no backslash)."""
    text = text.replace("\\", "/")
    return text if len(text) <= 64 else text[:61] + "..."


def private_scheme():
    """The Coding Scheme Identification item declaring ``PRIVATE_SCHEME`` (PS3.3 C.12.1.1.3),
    for an object that uses one of its concepts."""
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    return CodingSchemeIdentificationItem(
        designator=PRIVATE_SCHEME, name="radedge model labels and results", responsible_organization=MANUFACTURER
    )


def copy_source(header: Dataset) -> Dataset:
    """The source as highdicom reads it to copy patient and study: absent Type 2 attributes
    present and empty, every other value as the source has it (the source is not changed)."""
    absent = [keyword for keyword in _TYPE2_COPIED if keyword not in header]
    if not absent:
        return header
    source = copy.deepcopy(header)
    for keyword in absent:
        setattr(source, keyword, None)
    return source


# highdicom logs at INFO each attribute it copies from the source, UIDs included; radedge
# never logs header values. Its loggers inherit this level unless the application set one.
if logging.getLogger("highdicom").level == logging.NOTSET:
    logging.getLogger("highdicom").setLevel(logging.WARNING)


def new_uid() -> str:
    """A new UID for a series or an instance, under pydicom's root."""
    from pydicom.uid import generate_uid

    return str(generate_uid())
