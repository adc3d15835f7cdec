"""The one table of reference DICOM files every decoder test walks.

Each row: where the file is, its transfer syntax, the dtype and shape radedge must return,
spot-checked stored values at (row, column), and the smallest and largest stored value.
Values were read with pydicom 3.0.2 and its plugins; the tests also compare each whole
array with pydicom's ``pixel_array``.

Sources: pydicom's wheel (``pydicom.data.get_testdata_file``), the shared IHE MESA files
(/work/shared/data/dicom, see its README.md), the JPEG Lossless files made by
tests/data/io/make_io_fixtures.py and radedge's transfer-syntax phantoms
(tests/data/transfer_syntaxes, index.json there lists them all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import uid
from pydicom.data import get_testdata_file

SHARED_DICOM = Path(os.environ.get("RADEDGE_SHARED_DICOM", "/work/shared/data/dicom"))
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "io"
PHANTOMS = Path(__file__).resolve().parents[1] / "data" / "transfer_syntaxes"


@dataclass(frozen=True)
class ReferenceFile:
    name: str
    origin: str  # "pydicom", "shared", "fixture" or "phantom"
    transfer_syntax: str
    dtype: str
    shape: tuple[int, int]
    spot_values: dict[tuple[int, int], int]
    value_range: tuple[int, int]
    # Files in one group hold the same image in different (lossless) encodings.
    lossless_group: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def path(self) -> str:
        if self.origin == "pydicom":
            return get_testdata_file(self.name)
        if self.origin == "shared":
            return str(SHARED_DICOM / self.name)
        if self.origin == "phantom":
            return str(PHANTOMS / self.name)
        return str(FIXTURES / self.name)

    @property
    def available(self) -> bool:
        return self.origin != "shared" or Path(self.path).is_file()


_MR = {(0, 0): 905, (32, 21): 200, (63, 63): 862}
_CR1 = {(0, 0): 1994, (8, 5): 2569, (15, 15): 2418}
_FEMUR2 = {(0, 0): 1964, (192, 160): 2669, (383, 319): 3185}
_FEMUR1 = {(0, 0): 2131, (192, 160): 1426, (383, 319): 910}

REFERENCE_FILES = [
    # MR_small: 64 x 64, 16-bit signed MONOCHROME2, in every lossless encoding.
    ReferenceFile("MR_small.dcm", "pydicom", uid.ExplicitVRLittleEndian, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_implicit.dcm", "pydicom", uid.ImplicitVRLittleEndian, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_bigendian.dcm", "pydicom", uid.ExplicitVRBigEndian, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_expb.dcm", "pydicom", uid.ExplicitVRBigEndian, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_RLE.dcm", "pydicom", uid.RLELossless, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_jpeg_ls_lossless.dcm", "pydicom", uid.JPEGLSLossless, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_jp2klossless.dcm", "pydicom", uid.JPEG2000Lossless, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_padded.dcm", "pydicom", uid.ExplicitVRLittleEndian, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_jpeg_lossless_sv1.dcm", "fixture", uid.JPEGLosslessSV1, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    ReferenceFile("MR_small_jpeg_lossless_p14_sv6.dcm", "fixture", uid.JPEGLossless, "int16", (64, 64), _MR, (127, 2145), "MR_small"),
    # CR: 16 x 16 excerpts, 12-bit unsigned MONOCHROME1 with Rescale Slope 0.684.
    ReferenceFile("dicomdirtests/77654033/CR1/6154", "pydicom", uid.ExplicitVRLittleEndian, "uint16", (16, 16), _CR1, (1994, 2802), "CR1", ("monochrome1",)),
    ReferenceFile("CR1_6154_jpeg_lossless_sv1.dcm", "fixture", uid.JPEGLosslessSV1, "uint16", (16, 16), _CR1, (1994, 2802), "CR1", ("monochrome1",)),
    ReferenceFile("dicomdirtests/77654033/CR2/6247", "pydicom", uid.ExplicitVRLittleEndian, "uint16", (16, 16), {(0, 0): 1488, (8, 5): 1639, (15, 15): 1477}, (1201, 1868), tags=("monochrome1",)),
    ReferenceFile("dicomdirtests/77654033/CR3/6278", "pydicom", uid.ExplicitVRLittleEndian, "uint16", (16, 16), {(0, 0): 2551, (8, 5): 2154, (15, 15): 2265}, (2079, 2836), tags=("monochrome1",)),
    # The femur phantom crop: 12-bit unsigned, MONOCHROME2 and MONOCHROME1, uncompressed, JPEG
    # 2000 and HTJ2K (its codestream declaring 16-bit samples).
    ReferenceFile("explicit_vr_le_mono2.dcm", "phantom", uid.ExplicitVRLittleEndian, "uint16", (384, 320), _FEMUR2, (1504, 3579), "femur2"),
    ReferenceFile("j2k_lossless_mono2.dcm", "phantom", uid.JPEG2000Lossless, "uint16", (384, 320), _FEMUR2, (1504, 3579), "femur2"),
    ReferenceFile("htj2k_lossless_mono2.dcm", "phantom", uid.HTJ2KLossless, "uint16", (384, 320), _FEMUR2, (1504, 3579), "femur2"),
    ReferenceFile("htj2k_lossless_rpcl_mono2.dcm", "phantom", uid.HTJ2KLosslessRPCL, "uint16", (384, 320), _FEMUR2, (1504, 3579), "femur2"),
    ReferenceFile("explicit_vr_le_mono1.dcm", "phantom", uid.ExplicitVRLittleEndian, "uint16", (384, 320), _FEMUR1, (516, 2591), "femur1", ("monochrome1",)),
    ReferenceFile("htj2k_lossless_mono1.dcm", "phantom", uid.HTJ2KLossless, "uint16", (384, 320), _FEMUR1, (516, 2591), "femur1", ("monochrome1",)),
    ReferenceFile("htj2k_lossless_rpcl_mono1.dcm", "phantom", uid.HTJ2KLosslessRPCL, "uint16", (384, 320), _FEMUR1, (516, 2591), "femur1", ("monochrome1",)),
    # CT with rescale to HU.
    ReferenceFile("CT_small.dcm", "pydicom", uid.ExplicitVRLittleEndian, "int16", (128, 128), {(0, 0): 175, (64, 42): 1642, (127, 127): 909}, (128, 2191)),
    # JPEG 2000: lossy 14-bit signed CT, lossy 16-bit signed NM, lossless with a
    # J2K/Pixel Representation mismatch pydicom corrects.
    ReferenceFile("693_J2KI.dcm", "pydicom", uid.JPEG2000, "int16", (512, 512), {(0, 0): -2016, (256, 170): 1037, (511, 511): -2016}, (-2971, 2836)),
    ReferenceFile("JPEG2000.dcm", "pydicom", uid.JPEG2000, "int16", (1024, 256), {(0, 0): 0, (512, 85): 26, (1023, 255): 0}, (-30, 245)),
    ReferenceFile("J2K_pixelrep_mismatch.dcm", "pydicom", uid.JPEG2000Lossless, "int16", (512, 512), {(0, 0): -2000, (256, 170): 91, (511, 511): -2000}, (-2000, 1896)),
    # JPEG-LS near-lossless, 8 and 16 bits.
    ReferenceFile("JPEGLSNearLossless_08.dcm", "pydicom", uid.JPEGLSNearLossless, "uint8", (45, 10), {(0, 0): 255, (22, 3): 15, (44, 9): 0}, (0, 255)),
    ReferenceFile("JPEGLSNearLossless_16.dcm", "pydicom", uid.JPEGLSNearLossless, "uint16", (50, 10), {(0, 0): 65535, (25, 3): 255, (49, 9): 0}, (0, 65535)),
    # JPEG Extended, 12-bit.
    ReferenceFile("JPGExtended.dcm", "pydicom", uid.JPEGExtended12Bit, "uint16", (1024, 256), {(0, 0): 1, (512, 85): 28, (1023, 255): 1}, (0, 264)),
    # Deflated Explicit VR Little Endian, 8-bit.
    ReferenceFile("image_dfl.dcm", "pydicom", uid.DeflatedExplicitVRLittleEndian, "uint8", (512, 512), {(0, 0): 213, (256, 170): 138, (511, 511): 188}, (0, 255)),
    # 12 of 16 bits, two windows with explanations.
    ReferenceFile("examples_overlay.dcm", "pydicom", uid.ExplicitVRLittleEndian, "uint16", (300, 484), {(0, 0): 0, (150, 161): 292, (299, 483): 6}, (0, 1123)),
    # IHE MESA: Modality LUT Sequence (12-bit signed) and VOI LUT Sequence (8-bit).
    ReferenceFile("mlut_18.dcm", "shared", uid.ExplicitVRLittleEndian, "int16", (512, 512), {(0, 0): -1, (256, 170): 1023, (511, 511): 2047}, (-2048, 2047)),
    ReferenceFile("vlut_04.dcm", "shared", uid.ExplicitVRLittleEndian, "uint8", (512, 512), {(0, 0): 127, (256, 170): 191, (511, 511): 255}, (0, 255)),
]


def reference_id(reference: ReferenceFile) -> str:
    return reference.name.replace("dicomdirtests/77654033/", "")
