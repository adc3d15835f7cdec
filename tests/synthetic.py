"""DX data sets for the pipeline and CLI tests, built on ``tests.io.dicom_factory``."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from .io.dicom_factory import PATIENT_VALUES, make_dataset, to_bytes, with_patient_data

DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"

__all__ = ["PATIENT_VALUES", "blob_image", "disc_image", "dx_dataset", "to_bytes"]


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
    **extra,
) -> Dataset:
    """A single-frame DX image around ``stored`` (uint16 [rows, columns]) carrying
    synthetic patient identity (``PATIENT_VALUES``) that must never leave radedge.
    ``extra``: further attributes by keyword (``SOPClassUID=...``)."""
    attributes = {
        "Modality": modality,
        "RescaleIntercept": 0,
        "RescaleSlope": 1,
        "PresentationLUTShape": "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY",
    }
    if body_part:
        attributes["BodyPartExamined"] = body_part
    if presentation_intent:
        attributes["PresentationIntentType"] = presentation_intent
    if presentation_intent == "FOR PROCESSING":
        attributes["SOPClassUID"] = DX_FOR_PROCESSING
    if window:
        attributes["WindowCenter"], attributes["WindowWidth"] = window
    if imager_pixel_spacing:
        attributes["ImagerPixelSpacing"] = list(imager_pixel_spacing)
    attributes.update(extra)
    ds = make_dataset(np.asarray(stored, dtype=np.uint16), bits_stored=bits_stored, photometric=photometric, **attributes)
    return with_patient_data(ds)


def disc_image(rows: int, columns: int, centre: tuple[float, float], radius: float, inside: int, outside: int) -> np.ndarray:
    """uint16 [rows, columns]: ``inside`` within a disc (centre x, y; radius in pixels), ``outside`` elsewhere."""
    y, x = np.mgrid[0:rows, 0:columns]
    disc = (x + 0.5 - centre[0]) ** 2 + (y + 0.5 - centre[1]) ** 2 <= radius**2
    return np.where(disc, inside, outside).astype(np.uint16)


def blob_image(rows: int, columns: int, background: int, blobs: list[tuple[float, float, float, int]]) -> np.ndarray:
    """uint16 [rows, columns]: ``background`` plus Gaussian blobs, each (centre x, centre y,
    sigma in pixels, peak stored value): smooth peaks whose maximum lies at the centre."""
    y, x = np.mgrid[0:rows, 0:columns] + 0.5
    image = np.full((rows, columns), float(background))
    for cx, cy, sigma, peak in blobs:
        image += (peak - background) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return np.clip(np.rint(image), 0, 4095).astype(np.uint16)
