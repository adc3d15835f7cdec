"""The coded concept of every label of the reference models' heads (``HeadSpec.codes``), which
the manifests carry into the DICOM outputs (``radedge.dicom_out.common.concept``).

SNOMED CT ("SCT") first, taken from pydicom's dictionary of PS3.16 codes wherever it holds the
concept, so value and meaning are DICOM's own; the two SNOMED CT concepts PS3.16 does not use
(osteophyte, spondylolisthesis) are written out, with their SNOMED CT International
descriptions. A label that no standard concept matches without changing its meaning keeps
radedge's private scheme (``PRIVATE_SCHEME``, value ``<model id>.<head>.<label>``, as
``concept()`` would make it) with a meaning that says what the label is: a private code is
better than a wrong standard one.
"""

from __future__ import annotations

from typing import Any

from pydicom.sr.codedict import codes

from radedge.dicom_out.common import PRIVATE_SCHEME


def _standard(code: Any) -> dict[str, str]:
    return {"value": code.value, "scheme": code.scheme_designator, "meaning": code.meaning}


def _private(model_id: str, head: str, label: str, meaning: str) -> dict[str, str]:
    return {"value": f"{model_id}.{head}.{label}", "scheme": PRIVATE_SCHEME, "meaning": meaning}


# CID 6063 (Benign, Malignant), CID 240 (Absent): a tumour's classification, as values.
BENIGN = _standard(codes.SCT.Benign)
MALIGNANT = _standard(codes.SCT.Malignant)
NO_TUMOUR = _standard(codes.SCT.Absent)
# CID 242 Normal / Abnormal.
NORMAL = _standard(codes.SCT.Normal)
ABNORMAL = _standard(codes.SCT.Abnormal)
# CID 7159 Lesion Segmentation Types (segmented property category: Morphologically abnormal
# structure).
LESION = _standard(codes.SCT.Lesion)
IMPLANT = _standard(codes.SCT.Implant)
OSTEOPHYTE = {"value": "88998003", "scheme": "SCT", "meaning": "Osteophyte"}
SPONDYLOLISTHESIS = {"value": "274152003", "scheme": "SCT", "meaning": "Spondylolisthesis"}


def _lumbar_vertebra(level: str) -> dict[str, str]:
    """CID 7603 Vertebra: ``"L1"`` ... ``"L5"``."""
    return _standard(getattr(codes.SCT, f"{level}Vertebra"))


#: Model id -> head -> label -> ``{"value", "scheme", "meaning"}``.
LABEL_CODES: dict[str, dict[str, dict[str, dict[str, str]]]] = {
    "bone-tumor": {
        "lesion": {"lesion": LESION},
        "tumor": {"no_tumour": NO_TUMOUR, "benign": BENIGN, "malignant": MALIGNANT},
    },
    "tumor-cls": {
        "malignancy": {"benign": BENIGN, "malignant": MALIGNANT},
        "malignancy_cam": {"benign": BENIGN, "malignant": MALIGNANT},
    },
    "spine-lesions": {
        "abnormal": {"normal": NORMAL, "abnormal": ABNORMAL},
        "lesions": {
            "osteophytes": OSTEOPHYTE,
            # No PS3.16 concept, and no SNOMED CT one verified, for these three radiographic signs.
            "disc space narrowing": _private("spine-lesions", "lesions", "disc space narrowing",
                                             "Intervertebral disc space narrowing"),
            "surgical implant": IMPLANT,
            "foraminal stenosis": _private("spine-lesions", "lesions", "foraminal stenosis",
                                           "Intervertebral foraminal stenosis"),
            "spondylolisthesis": SPONDYLOLISTHESIS,
            "vertebral collapse": _private("spine-lesions", "lesions", "vertebral collapse",
                                           "Vertebral collapse"),
            "other lesions": LESION,
        },
    },
    "bone-quality": {
        # Osteolytic / osteoblastic / mixed bone lesion: no PS3.16 concept, and no SNOMED CT one
        # verified (osteolysis and osteosclerosis are processes, not the lesion).
        "blastic": {"blastic": _private("bone-quality", "blastic", "blastic", "Osteoblastic (sclerotic) bone lesion")},
        "lytic": {"lytic": _private("bone-quality", "lytic", "lytic", "Osteolytic bone lesion")},
        "quality": {
            "normal": NORMAL,
            "blastic": _private("bone-quality", "quality", "blastic", "Osteoblastic (sclerotic) bone lesion"),
            "lytic": _private("bone-quality", "quality", "lytic", "Osteolytic bone lesion"),
            "mixed": _private("bone-quality", "quality", "mixed", "Mixed lytic and blastic bone lesion"),
        },
    },
    "vcf": {
        # Genant's semi-quantitative grades (Genant 1993): a vertebral fracture of 20-25 %
        # (mild), 25-40 % (moderate), over 40 % (severe) height loss. PS3.16 codes a severity
        # (CID 6130) apart from the finding it qualifies, and a label has one code.
        "fracture": {
            f"genant_{grade}": _private("vcf", "fracture", f"genant_{grade}",
                                        f"Vertebral fracture, Genant grade {grade} ({severity})")
            for grade, severity in ((1, "mild"), (2, "moderate"), (3, "severe"))
        },
        "levels": {level: _lumbar_vertebra(level) for level in ("L1", "L2", "L3", "L4", "L5")},
    },
}


def head_codes(model_id: str, head: str) -> dict[str, dict[str, str]]:
    """``HeadSpec.codes`` of ``head`` of ``model_id``: label -> code."""
    return {label: dict(code) for label, code in LABEL_CODES[model_id][head].items()}


__all__ = ["LABEL_CODES", "head_codes"]
