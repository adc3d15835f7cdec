"""Small DICOM data sets built in the test, with exactly the attributes a test needs."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"

# Values a test can search for in logs and outputs: none may ever appear there.
PATIENT_NAME = "DOE^JANE^Q"
PATIENT_ID = "PID-7731-XYZ"
PATIENT_BIRTH_DATE = "19510317"
STUDY_DATE = "20260704"


def dx_dataset(
    stored: np.ndarray,
    *,
    bits_stored: int = 12,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = (2048.0, 4096.0),
    imager_pixel_spacing: tuple[float, float] | None = (0.15, 0.15),
    body_part: str | None = "FEMUR",
    presentation_intent: str | None = "FOR PRESENTATION",
    modality: str = "DX",
) -> Dataset:
    """A single-frame DX data set around ``stored`` (uint16 [rows, columns])."""
    stored = np.ascontiguousarray(stored, dtype=np.uint16)
    sop_class = DX_FOR_PROCESSING if presentation_intent == "FOR PROCESSING" else DX_FOR_PRESENTATION
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = PATIENT_BIRTH_DATE
    ds.StudyDate = STUDY_DATE
    ds.Modality = modality
    if body_part:
        ds.BodyPartExamined = body_part
    if presentation_intent:
        ds.PresentationIntentType = presentation_intent
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if imager_pixel_spacing:
        ds.ImagerPixelSpacing = list(imager_pixel_spacing)
    ds.PixelData = stored.tobytes()
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def disc_image(rows: int, columns: int, centre: tuple[float, float], radius: float, inside: int, outside: int) -> np.ndarray:
    """uint16 [rows, columns]: ``inside`` within a disc (centre x, y; radius in pixels), ``outside`` elsewhere."""
    y, x = np.mgrid[0:rows, 0:columns]
    disc = (x + 0.5 - centre[0]) ** 2 + (y + 0.5 - centre[1]) ** 2 <= radius**2
    return np.where(disc, inside, outside).astype(np.uint16)
