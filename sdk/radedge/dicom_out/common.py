"""What every DICOM output of radedge shares: the source it describes, the algorithm that made
it, the equipment, coded concepts for the model's labels, and new UIDs.

A result becomes DICOM only from a DICOM source: its header (``Image.header``) gives the
patient, study and frame the outputs belong to. Patient and study attributes are copied from
it by highdicom exactly as the IODs require and never written anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from .. import __version__
from ..errors import NotDicomSourceError

#: Coding scheme of concepts radedge makes up for a label the manifest gives no code for:
#: "99" marks a private scheme (PS3.16 8.2); the value is "<model id>.<head>.<label>".
PRIVATE_SCHEME = "99RADEDGE"

MANUFACTURER = "radedge"


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
    """The DICOM header a result's outputs reference, or ``NotDicomSourceError``."""
    header = getattr(result, "_header", None)
    if header is None:
        raise NotDicomSourceError(
            f"{result.source} was not read from DICOM, so its results cannot be written as DICOM "
            "objects (they reference the source's patient, study and instance); use the JSON result"
        )
    return header


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


def equipment(output: ModelOutput) -> dict[str, str]:
    """General Equipment attributes of an output (PS3.3 C.7.5.1): who made it. The device
    serial number is the bundle digest's first 16 hex digits: the exact weights."""
    return {
        "manufacturer": MANUFACTURER,
        "manufacturer_model_name": output.model_id,
        "software_versions": f"radedge {__version__}; {output.model_id} {output.model_version}".strip(),
        "device_serial_number": output.bundle_digest[:16] or "unknown",
    }


def new_uid() -> str:
    """A new UID for a series or an instance, under pydicom's root."""
    from pydicom.uid import generate_uid

    return str(generate_uid())
