"""Synthetic radiograph phantoms with exact ground truth, written as real DICOM.

No clinical images can be shipped or trained on here, so radedge's reference models,
tests and demo use phantoms: digital radiographs of long bones with a bone lesion
(no tumour / benign / malignant, exact mask) and lateral lumbar spines with graded
vertebral compression fractures, and axial CT slices through a vertebra with blastic,
lytic or mixed metastases (exact lesion masks). Everything is deterministic in the seed.

    >>> from radedge.export.phantoms import long_bone_radiograph, write_dicom
    >>> phantom = long_bone_radiograph(42, label="malignant")
    >>> write_dicom(phantom, "femur.dcm", transfer_syntax="1.2.840.10008.1.2.4.80")

Command line: ``python -m radedge.export.phantoms --help``.
"""

from .ct_vertebra import CTVertebraSlice, ct_vertebra_slice
from .dicom import TRANSFER_SYNTAXES, DcmtkNotFoundError, to_dataset, write_dicom
from .long_bone import long_bone_radiograph
from .phantom import GENERATOR_VERSION, LABELS, Phantom
from .sets import write_examples, write_set, write_transfer_syntax_set
from .spine import GENANT_REDUCTION, LUMBAR_LEVELS, genant_grade, lumbar_spine_radiograph

__all__ = [
    "GENERATOR_VERSION",
    "GENANT_REDUCTION",
    "LABELS",
    "LUMBAR_LEVELS",
    "TRANSFER_SYNTAXES",
    "CTVertebraSlice",
    "DcmtkNotFoundError",
    "Phantom",
    "ct_vertebra_slice",
    "genant_grade",
    "long_bone_radiograph",
    "lumbar_spine_radiograph",
    "to_dataset",
    "write_dicom",
    "write_examples",
    "write_set",
    "write_transfer_syntax_set",
]
