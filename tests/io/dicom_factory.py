"""Build small synthetic DICOM images in memory for the io and intensity tests.

Each helper returns a pydicom ``Dataset`` with file meta, ready for ``dcmwrite``; tests
round-trip through bytes (``to_bytes``) so radedge and pydicom read the same encoded file.
"""

from __future__ import annotations

import io

import numpy as np
from pydicom import dcmread, dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, UID

#: Values set by ``with_patient_data``; tests assert none of them ever leaves radedge.
PATIENT_VALUES = {
    "PatientName": "Quenby^Ottoline^Marguerite",
    "PatientID": "PID-80417-ZX",
    "PatientBirthDate": "19470613",
    "StudyDate": "20230917",
    "AccessionNumber": "ACC-55102-QR",
}


def make_dataset(
    stored: np.ndarray,
    *,
    bits_stored: int,
    signed: bool = False,
    bits_allocated: int | None = None,
    photometric: str = "MONOCHROME2",
    syntax: str = ExplicitVRLittleEndian,
    **attributes,
) -> Dataset:
    """A single-frame greyscale image whose Pixel Data holds ``stored`` (int [rows, cols]).

    ``attributes`` are set as data set keywords (``RescaleSlope="0.5"``, ...). Stored
    values are written in two's complement within ``bits_allocated`` (default 8 when
    ``bits_stored`` is 8, else 16), little or big endian as ``syntax`` says.
    """
    stored = np.atleast_2d(np.asarray(stored))
    bits_allocated = bits_allocated or (8 if bits_stored <= 8 else 16)
    syntax = UID(syntax)
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits_allocated // 8}")
    dtype = dtype.newbyteorder("<" if syntax.is_little_endian else ">")

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Modality = "DX"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    raw = stored.astype(np.int64).astype(dtype).tobytes()
    ds.PixelData = raw + (b"\x00" if len(raw) % 2 else b"")
    ds["PixelData"].VR = "OB" if bits_allocated == 8 else "OW"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def lut_item(first_mapped: int, bits: int, data, *, first_vr: str = "US", data_vr: str = "US",
             little_endian: bool = True, explanation: str | None = None) -> Dataset:
    """A Modality or VOI LUT item (PS3.3 C.11.1.1.1): descriptor and data with explicit VRs."""
    data = np.asarray(data, dtype=np.int64)
    item = Dataset()
    entries = data.size if data.size < 65536 else 0
    item.add(DataElement(0x00283002, first_vr, [entries, first_mapped, bits]))
    if data_vr == "OW":
        words = data.astype("<u2" if little_endian else ">u2").tobytes()
        item.add(DataElement(0x00283006, "OW", words))
    else:
        item.add(DataElement(0x00283006, "US", [int(v) for v in data]))
    if explanation is not None:
        item.LUTExplanation = explanation
    return item


def to_bytes(ds: Dataset) -> bytes:
    """The data set as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def round_trip(ds: Dataset) -> tuple[bytes, Dataset]:
    """Encode to a file and read it back, as a receiver would get it."""
    encoded = to_bytes(ds)
    return encoded, dcmread(io.BytesIO(encoded))


def with_patient_data(ds: Dataset) -> Dataset:
    for keyword, value in PATIENT_VALUES.items():
        setattr(ds, keyword, value)
    return ds


def every_stored_value(bits_stored: int, signed: bool) -> np.ndarray:
    """An image whose pixels are each representable stored value once: [n / 64, 64]."""
    if signed:
        values = np.arange(-(1 << (bits_stored - 1)), 1 << (bits_stored - 1))
    else:
        values = np.arange(0, 1 << bits_stored)
    return values.reshape(-1, 64)
