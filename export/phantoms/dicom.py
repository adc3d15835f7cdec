"""Phantoms as DX Image Storage objects (PS3.3 A.26 Digital X-Ray Image IOD), and CT
vertebra slices as CT Image Storage objects (PS3.3 A.3 CT Image IOD).

``to_dataset`` builds the uncompressed data set; ``write_dicom`` writes it in any of the
transfer syntaxes radedge must read: the uncompressed ones and RLE, JPEG-LS and
JPEG 2000 through pydicom's encoders, JPEG Lossless SV1 and JPEG Extended (12-bit)
through dcmtk's ``dcmcjpeg`` (pydicom has no encoder for those), lossless HTJ2K through
imagecodecs' OpenJPH encoder (neither has pydicom).

UIDs are derived from the phantom's kind and seed (``pydicom.uid.generate_uid`` with
``entropy_srcs``), so a phantom written twice gets the same UIDs. The ground truth is
never stored in the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)
from radedge.errors import RadedgeError

from .phantom import GENERATOR_VERSION, Phantom

DX_FOR_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.1")
DX_FOR_PROCESSING = UID("1.2.840.10008.5.1.4.1.1.1.1.1")
_SOP_CLASS = {"FOR PRESENTATION": DX_FOR_PRESENTATION, "FOR PROCESSING": DX_FOR_PROCESSING}
CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")

# SNOMED CT codes for Anatomic Region Sequence (PS3.16 CID 4009 / 4031).
_ANATOMY_CODES = {
    "FEMUR": ("71341001", "Femur"),
    "TIBIA": ("12611008", "Tibia"),
    "HUMERUS": ("85050009", "Humerus"),
    "LSPINE": ("122496007", "Lumbar spine"),
}

# SNOMED CT codes for View Code Sequence (PS3.16 CID 4010).
_VIEW_CODES = {
    "AP": ("399348003", "antero-posterior"),
    "LL": ("399173006", "left lateral"),
    "RL": ("399198007", "right lateral"),
}

# JPEG-LS near-lossless: largest allowed error per pixel, in stored-value units.
JPEG_LS_NEAR_LOSSLESS_ERROR = 2
# JPEG 2000 lossy: target compression ratio.
JPEG_2000_LOSSY_RATIO = 12.0
# JPEG Extended (process 2/4): IJG quality.
JPEG_EXTENDED_QUALITY = 90


class DcmtkNotFoundError(RadedgeError):
    """A transfer syntax needs a dcmtk command-line tool that is not on PATH."""


@dataclass(frozen=True)
class TransferSyntax:
    """How radedge's phantoms write one transfer syntax."""

    uid: UID
    short_name: str  # used in file names
    lossless: bool
    encoder: str  # "pydicom" (native/plugins), "dcmtk" or "imagecodecs"


TRANSFER_SYNTAXES: dict[str, TransferSyntax] = {
    ts.uid: ts
    for ts in (
        TransferSyntax(ExplicitVRLittleEndian, "explicit_vr_le", True, "pydicom"),
        TransferSyntax(ImplicitVRLittleEndian, "implicit_vr_le", True, "pydicom"),
        TransferSyntax(DeflatedExplicitVRLittleEndian, "deflated_le", True, "pydicom"),
        TransferSyntax(RLELossless, "rle", True, "pydicom"),
        TransferSyntax(JPEGLSLossless, "jpeg_ls_lossless", True, "pydicom"),
        TransferSyntax(JPEGLSNearLossless, "jpeg_ls_near_lossless", False, "pydicom"),
        TransferSyntax(JPEG2000Lossless, "j2k_lossless", True, "pydicom"),
        TransferSyntax(JPEG2000, "j2k_lossy", False, "pydicom"),
        TransferSyntax(JPEGLosslessSV1, "jpeg_lossless_sv1", True, "dcmtk"),
        TransferSyntax(JPEGExtended12Bit, "jpeg_extended_12bit", False, "dcmtk"),
        TransferSyntax(HTJ2KLossless, "htj2k_lossless", True, "imagecodecs"),
        TransferSyntax(HTJ2KLosslessRPCL, "htj2k_lossless_rpcl", True, "imagecodecs"),
    )
}


def _uid(phantom: Phantom, *parts: str) -> UID:
    sources = ["radedge-phantom", phantom.kind, str(phantom.seed), f"{phantom.rows}x{phantom.columns}", *parts]
    return generate_uid(entropy_srcs=sources)


def to_dataset(phantom: Phantom, *, presentation_intent: str = "FOR PRESENTATION") -> Dataset:
    """The phantom as an uncompressed (Explicit VR Little Endian) DX Image Storage data set.

    ``presentation_intent`` is "FOR PRESENTATION" (SOP Class
    1.2.840.10008.5.1.4.1.1.1.1) or "FOR PROCESSING" (1.2.840.10008.5.1.4.1.1.1.1.1);
    the pixels are the same, the header says how they are meant to be used, and only
    For Presentation images carry the VOI windows. A ``CTVertebraSlice`` (kind
    "ct_vertebra") becomes a CT Image Storage data set instead (``presentation_intent`` is
    not used).
    """
    if phantom.kind == "ct_vertebra":
        return _ct_dataset(phantom)
    if presentation_intent not in _SOP_CLASS:
        raise ValueError(
            f"presentation_intent must be 'FOR PRESENTATION' or 'FOR PROCESSING', got {presentation_intent!r}"
        )
    header = phantom.dicom_header
    ds = _new_dataset()

    # SOP Common, Patient, General Study (PS3.3 C.12.1, C.7.1.1, C.7.2.1)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = _SOP_CLASS[presentation_intent]
    ds.SOPInstanceUID = _uid(phantom, "instance", presentation_intent)
    ds.InstanceCreationDate = header["StudyDate"]
    ds.InstanceCreationTime = header["StudyTime"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = header["StudyDate"]
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = header["StudyTime"]
    ds.AccessionNumber = header["AccessionNumber"]
    ds.Modality = "DX"
    ds.PresentationIntentType = presentation_intent
    ds.Manufacturer = "radedge"
    ds.ManufacturerModelName = "synthetic phantom"
    ds.SoftwareVersions = f"radedge.export.phantoms {GENERATOR_VERSION}"
    ds.ReferringPhysicianName = ""
    body_part = phantom.body_part
    view = header.get("ViewPosition", "")
    ds.StudyDescription = f"SYNTHETIC {body_part} {view}".strip()
    ds.SeriesDescription = f"{body_part} {view} phantom".strip()
    ds.ImageComments = "Synthetic phantom generated by radedge; no patient was imaged."
    ds.PatientName = header["PatientName"]
    ds.PatientID = header["PatientID"]
    ds.PatientBirthDate = header["PatientBirthDate"]
    ds.PatientSex = header["PatientSex"]
    ds.PatientAge = header["PatientAge"]
    ds.StudyInstanceUID = _uid(phantom, "study")
    ds.SeriesInstanceUID = _uid(phantom, "series", presentation_intent)
    ds.StudyID = header["StudyID"]
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.AcquisitionNumber = 1

    # DX Anatomy Imaged, DX Positioning, X-Ray Acquisition Dose (PS3.3 C.8.11.2, C.8.11.5, C.8.7.8)
    ds.BodyPartExamined = body_part
    ds.ImageLaterality = header.get("ImageLaterality", "U")
    code, meaning = _ANATOMY_CODES[body_part]
    region = Dataset()
    region.CodeValue = code
    region.CodingSchemeDesignator = "SCT"
    region.CodeMeaning = meaning
    ds.AnatomicRegionSequence = Sequence([region])
    ds.ViewPosition = view
    if view in _VIEW_CODES:
        view_code = Dataset()
        view_code.CodeValue, view_code.CodeMeaning = _VIEW_CODES[view]
        view_code.CodingSchemeDesignator = "SCT"
        view_code.ViewModifierCodeSequence = Sequence()
        ds.ViewCodeSequence = Sequence([view_code])
    ds.PositionerType = "COLUMN"
    ds.PatientOrientation = list(header.get("PatientOrientation", ("", "")))
    ds.AcquisitionContextSequence = Sequence()
    ds.KVP = header["KVP"]
    ds.ExposureInuAs = header["ExposureInuAs"]
    ds.DistanceSourceToDetector = header["DistanceSourceToDetector"]
    ds.DistanceSourceToPatient = header["DistanceSourceToPatient"]

    # DX Detector (PS3.3 C.8.11.4): pixel spacing at the detector, and in the patient
    # plane where the "modality" calibrated it (PS3.3 10.7.1.3).
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorConfiguration = "AREA"
    ds.ImagerPixelSpacing = [f"{value:.6g}" for value in phantom.imager_pixel_spacing_mm]
    if "PixelSpacing" in header:
        ds.PixelSpacing = [f"{value:.6g}" for value in header["PixelSpacing"]]
        ds.PixelSpacingCalibrationType = "GEOMETRY"
        ds.PixelSpacingCalibrationDescription = "Imager Pixel Spacing corrected for geometric magnification"
    if "EstimatedRadiographicMagnificationFactor" in header:
        ds.EstimatedRadiographicMagnificationFactor = header["EstimatedRadiographicMagnificationFactor"]

    # Image Pixel and DX Image (PS3.3 C.7.6.3, C.8.11.3)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = phantom.photometric
    ds.Rows = phantom.rows
    ds.Columns = phantom.columns
    ds.BitsAllocated = 16
    ds.BitsStored = phantom.bits_stored
    ds.HighBit = phantom.bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LOG"
    # -1: higher stored values mean less X-ray intensity (MONOCHROME2 here); the
    # MONOCHROME1 phantoms store the inverse.
    ds.PixelIntensityRelationshipSign = -1 if phantom.photometric == "MONOCHROME2" else 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "INVERSE" if phantom.photometric == "MONOCHROME1" else "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"

    if presentation_intent == "FOR PRESENTATION":
        # VOI LUT (PS3.3 C.11.2): one or two windows in stored-value units. The DX IOD
        # allows them only in For Presentation images (PS3.3 C.8.11.3).
        centers = [f"{center:.1f}" for center, _ in phantom.windows]
        widths = [f"{width:.1f}" for _, width in phantom.windows]
        ds.WindowCenter = centers if len(centers) > 1 else centers[0]
        ds.WindowWidth = widths if len(widths) > 1 else widths[0]
        if phantom.window_explanations:
            explanations = list(phantom.window_explanations)
            ds.WindowCenterWidthExplanation = explanations if len(explanations) > 1 else explanations[0]
        ds.VOILUTFunction = phantom.voi_function

    stored = np.ascontiguousarray(phantom.stored, dtype="<u2")
    if stored.max(initial=0) > phantom.max_stored:
        raise ValueError(f"stored values exceed {phantom.bits_stored} bits; the phantom is inconsistent")
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"

    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _new_dataset() -> Dataset:
    """An empty data set with the file meta information every phantom file carries."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = "RADEDGE_PHANTOM"
    return ds


def _ct_dataset(ct_slice) -> Dataset:
    """A ``CTVertebraSlice`` as an uncompressed CT Image Storage data set (PS3.3 A.3):
    signed stored values (Pixel Representation 1), Rescale to HU, the bone and soft-tissue
    windows in HU, the padding outside the reconstruction circle as Pixel Padding Value."""
    header = ct_slice.dicom_header
    ds = _new_dataset()

    # SOP Common, Patient, General Study, General Series, Frame of Reference
    # (PS3.3 C.12.1, C.7.1.1, C.7.2.1, C.7.3.1, C.7.4.1)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = _uid(ct_slice, "instance")
    ds.InstanceCreationDate = header["StudyDate"]
    ds.InstanceCreationTime = header["StudyTime"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = header["StudyDate"]
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = header["StudyTime"]
    ds.AccessionNumber = header["AccessionNumber"]
    ds.Modality = "CT"
    ds.Manufacturer = "radedge"
    ds.ManufacturerModelName = "synthetic phantom"
    ds.SoftwareVersions = f"radedge.export.phantoms {GENERATOR_VERSION}"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "SYNTHETIC CT SPINE"
    ds.SeriesDescription = "SPINE AXIAL BONE phantom"
    ds.ImageComments = "Synthetic phantom generated by radedge; no patient was imaged."
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyID"):
        setattr(ds, keyword, header[keyword])
    ds.StudyInstanceUID = _uid(ct_slice, "study")
    ds.SeriesInstanceUID = _uid(ct_slice, "series")
    ds.FrameOfReferenceUID = _uid(ct_slice, "frame of reference")
    ds.PositionReferenceIndicator = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.AcquisitionNumber = 1
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = ct_slice.body_part

    # Image Plane (PS3.3 C.7.6.2): axial, rows towards posterior, columns towards the left.
    ds.PixelSpacing = [f"{value:.6g}" for value in ct_slice.pixel_spacing_mm]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [f"{value:.6g}" for value in header["ImagePositionPatient"]]
    ds.SliceThickness = header["SliceThickness"]
    ds.SliceLocation = header["SliceLocation"]

    # CT Image (PS3.3 C.8.2.1) and Image Pixel (C.7.6.3)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = header["KVP"]
    ds.XRayTubeCurrent = header["XRayTubeCurrent"]
    ds.ConvolutionKernel = header["ConvolutionKernel"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ct_slice.rows
    ds.Columns = ct_slice.columns
    ds.BitsAllocated = 16
    ds.BitsStored = ct_slice.bits_stored
    ds.HighBit = ct_slice.bits_stored - 1
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = f"{ct_slice.rescale_intercept:g}"
    ds.RescaleSlope = f"{ct_slice.rescale_slope:g}"
    ds.RescaleType = "HU"
    ds.PixelPaddingValue = ct_slice.pixel_padding_value
    ds["PixelPaddingValue"].VR = "SS"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"

    # VOI LUT (PS3.3 C.11.2): windows in HU, the output of the Modality LUT.
    ds.WindowCenter = [f"{center:g}" for center, _ in ct_slice.windows]
    ds.WindowWidth = [f"{width:g}" for _, width in ct_slice.windows]
    ds.WindowCenterWidthExplanation = list(ct_slice.window_explanations)

    stored = np.ascontiguousarray(ct_slice.stored, dtype="<i2")
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def write_dicom(
    phantom: Phantom,
    path: str | Path,
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    presentation_intent: str = "FOR PRESENTATION",
) -> Path:
    """Write the phantom as a DICOM Part 10 file in ``transfer_syntax``; returns the path.

    Lossy syntaxes (JPEG-LS near-lossless with error 2, JPEG 2000 at ratio 12, JPEG
    Extended at quality 90) get their own SOP Instance UID and Lossy Image Compression
    "01", as PS3.3 C.7.6.1.1.5 requires of a lossy derivative. JPEG Lossless SV1 and
    JPEG Extended are encoded by dcmtk's ``dcmcjpeg``, HTJ2K by imagecodecs
    (``encode_htj2k``).
    """
    uid = UID(str(transfer_syntax))
    if uid not in TRANSFER_SYNTAXES:
        known = ", ".join(f"{ts.uid} ({ts.uid.name})" for ts in TRANSFER_SYNTAXES.values())
        raise ValueError(f"phantoms cannot be written in transfer syntax {uid!r}; choose one of: {known}")
    syntax = TRANSFER_SYNTAXES[uid]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = to_dataset(phantom, presentation_intent=presentation_intent)
    if not syntax.lossless:
        ds.SOPInstanceUID = _uid(phantom, "instance", presentation_intent, "lossy", uid)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if uid == JPEGExtended12Bit and phantom.bits_stored > 12:
        raise ValueError(
            f"JPEG Extended (12-bit) holds at most 12 bits per sample; this phantom has "
            f"BitsStored {phantom.bits_stored}. Generate it with bits_stored=12 or choose a lossless syntax"
        )

    # Written next to the target and renamed into place: a reader never sees half a file.
    partial = path.with_name(f".{path.name}.partial")
    try:
        if syntax.encoder == "dcmtk":
            _write_with_dcmtk(ds, partial, uid)
        elif syntax.encoder == "imagecodecs":
            ds.PixelData = encapsulate([encode_htj2k(phantom.stored, uid)])
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = uid
            ds.save_as(partial, enforce_file_format=True)
        else:
            if uid in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
                ds.file_meta.TransferSyntaxUID = uid
            else:
                options = {}
                if uid == JPEGLSNearLossless:
                    options["jls_error"] = JPEG_LS_NEAR_LOSSLESS_ERROR
                elif uid == JPEG2000:
                    options["j2k_cr"] = [JPEG_2000_LOSSY_RATIO]
                ds.compress(uid, generate_instance_uid=False, **options)
                if not syntax.lossless:
                    _mark_lossy(ds, phantom, uid)
            ds.save_as(partial, enforce_file_format=True)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def encode_htj2k(stored: np.ndarray, transfer_syntax: str = HTJ2KLossless) -> bytes:
    """``stored`` (uint16[rows, columns]) as a lossless HTJ2K codestream (ITU-T T.814, PS3.5 A.4.6)
    by OpenJPH through imagecodecs: the reversible 5/3 wavelet, HT code-blocks only, RPCL
    progression (OpenJPH's default). For HTJ2K Lossless RPCL (.202) also a TLM marker segment
    and one tile-part per resolution, which that syntax adds so a reader can fetch the
    resolutions it needs. The codestream's precision is the dtype's (16 bits): the encoder
    takes no other, and readers accept a codestream precision up to Bits Allocated."""
    import imagecodecs

    options = {}
    if UID(str(transfer_syntax)) == HTJ2KLosslessRPCL:
        options = {"tlm": True, "tilepart": imagecodecs.HTJ2K.TILEPART.RESOLUTIONS}
    return bytes(imagecodecs.htj2k_encode(np.ascontiguousarray(stored), reversible=True, **options))


def _mark_lossy(ds: Dataset, phantom: Phantom, uid: UID) -> None:
    """Lossy Image Compression attributes (PS3.3 C.7.6.1.1.5)."""
    method = {JPEGLSNearLossless: "ISO_14495_1", JPEG2000: "ISO_15444_1"}[uid]
    ratio = phantom.rows * phantom.columns * 2 / max(len(ds.PixelData), 1)
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = f"{ratio:.2f}"
    ds.LossyImageCompressionMethod = method
    ds.ImageType = ["DERIVED", "PRIMARY"]


def _write_with_dcmtk(ds: Dataset, path: Path, uid: UID) -> None:
    tool = shutil.which("dcmcjpeg")
    if tool is None:
        raise DcmtkNotFoundError(
            f"writing {uid.name} ({uid}) needs dcmtk's dcmcjpeg, which is not on PATH; "
            "install dcmtk (apt-get install dcmtk, brew install dcmtk) or choose a syntax "
            "pydicom can encode (RLE, JPEG-LS, JPEG 2000)"
        )
    if uid == JPEGLosslessSV1:
        options = ["+e1"]
    else:
        # +sr: scale over the range BitsStored allows, i.e. keep the stored values; the
        # default (+sp) would shift them to start at the image minimum.
        options = ["+ee", "+q", str(JPEG_EXTENDED_QUALITY), "+sr"]
    with tempfile.TemporaryDirectory(prefix="radedge-phantom-") as scratch:
        source = Path(scratch) / "uncompressed.dcm"
        target = Path(scratch) / "compressed.dcm"
        ds.save_as(source, enforce_file_format=True)
        # +un keeps the SOP Instance UID chosen above (lossy derivatives already have a
        # new one); dcmtk records the lossy compression itself.
        command = [tool, *options, "+un", str(source), str(target)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RadedgeError(
                f"dcmcjpeg failed (exit {result.returncode}) writing {uid.name}: {result.stderr.strip()}"
            )
        shutil.move(str(target), path)
