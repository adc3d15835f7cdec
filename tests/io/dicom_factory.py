"""Build small synthetic DICOM images in memory for the io and intensity tests.

Each helper returns a pydicom ``Dataset`` with file meta, ready for ``dcmwrite``; tests
round-trip through bytes (``to_bytes``) so radedge and pydicom read the same encoded file.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from pydicom import dcmread, dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    UID,
)

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


# --------------------------------------------------------------------------- encoded files


def compressed(stored: np.ndarray, syntax: str, *, bits_stored: int) -> Dataset:
    """A ``make_dataset`` image compressed in ``syntax``: RLE Lossless, JPEG-LS, JPEG 2000
    (pydicom's encoders and plugins) or JPEG Baseline (OpenCV's libjpeg, ``bits_stored`` 8).
    """
    ds = make_dataset(stored, bits_stored=bits_stored)
    if syntax == JPEGBaseline8Bit:
        import cv2

        ok, jpeg = cv2.imencode(".jpg", np.asarray(stored, dtype=np.uint8))
        assert ok
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PixelData = encapsulate([jpeg.tobytes()])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        return ds
    ds.compress(syntax, encoding_plugin="pylibjpeg" if syntax == JPEG2000Lossless else "",
                generate_instance_uid=False)
    return ds


def pixel_data_offset(encoded: bytes) -> int:
    """Where the top-level Pixel Data element (explicit VR little endian) starts in a file
    made here: the first (7FE0,0010) tag followed by OB or OW (the same bytes may recur by
    chance inside its value or after it, never before it)."""
    found = [encoded.find(b"\xe0\x7f\x10\x00" + vr) for vr in (b"OB", b"OW")]
    offset = min(at for at in found if at >= 0)
    assert offset > 0
    return offset


def first_fragment_offset(encoded: bytes) -> int:
    """Where the first fragment's bytes (after the Basic Offset Table) start in an
    encapsulated file made here (PS3.5 A.4)."""
    item = pixel_data_offset(encoded) + 12
    (offset_table_length,) = struct.unpack_from("<I", encoded, item + 4)
    return item + 8 + offset_table_length + 8


def private_element(element: int, vr: str, value: bytes) -> bytes:
    """An explicit VR little endian element (0029,10xx) of a private block reserved by
    ``PRIVATE_CREATOR``; group 0029 sorts after the Image Pixel module (0028) and before
    Pixel Data, so it can be spliced in front of Pixel Data."""
    if vr in ("OB", "OW", "SQ", "UN", "UT"):
        return struct.pack("<HH2sHI", 0x0029, element, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0029, element, vr.encode(), len(value)) + value


#: The private creator element (0029,0010) reserving the block ``private_element`` writes.
PRIVATE_CREATOR = struct.pack("<HH2sH", 0x0029, 0x0010, b"LO", 12) + b"RADEDGE TEST"


def nested_sequences(depth: int, *, defined_length: bool = False) -> bytes:
    """Private sequences (0029,1010) nested ``depth`` deep, each holding one item that holds
    the next; undefined lengths with delimitation items (PS3.5 7.5.2), or defined lengths."""
    leaf = private_element(0x1011, "LO", b"leaf")
    if not defined_length:
        opening = (struct.pack("<HH2sHI", 0x0029, 0x1010, b"SQ", 0, 0xFFFFFFFF)
                   + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF))
        closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        return opening * depth + leaf + closing * depth
    # Each level adds a sequence header (12 bytes) and an item header (8 bytes).
    parts = []
    for level in range(depth):
        item_length = len(leaf) + 20 * (depth - 1 - level)
        parts.append(struct.pack("<HH2sHI", 0x0029, 0x1010, b"SQ", 0, item_length + 8)
                     + struct.pack("<HHI", 0xFFFE, 0xE000, item_length))
    return b"".join(parts) + leaf


def encapsulated_under_native_syntax(ds: Dataset) -> bytes:
    """``ds`` (native Explicit VR Little Endian) written with its Pixel Data encapsulated
    (undefined length, an empty Basic Offset Table and one fragment), its syntax left native:
    a file that contradicts itself (PS3.5 A.4)."""
    encoded = to_bytes(ds)
    offset = pixel_data_offset(encoded)
    value = bytes(ds.PixelData)
    items = (struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE000, len(value))
             + value + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    return encoded[:offset] + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, 0xFFFFFFFF) + items


def insert_before_pixel_data(encoded: bytes, elements: bytes) -> bytes:
    """The file with ``elements`` (and the private creator) spliced in before Pixel Data."""
    offset = pixel_data_offset(encoded)
    return encoded[:offset] + PRIVATE_CREATOR + elements + encoded[offset:]


def deflated(ds: Dataset, *, elements_before_pixel_data: bytes = b"", zeros_before_pixel_data: int = 0,
             zeros_after_pixel_data: int = 0) -> bytes:
    """``ds`` as a Deflated Explicit VR Little Endian file (PS3.5 A.5), optionally with
    ``elements_before_pixel_data`` (encoded explicit VR little endian, in the private block
    ``PRIVATE_CREATOR`` reserves), a private OB element of zeros before Pixel Data, and a
    (7FE1,1010) one after it.

    The zeros are deflated once, 16 MiB at a time, and the compressed block repeated: a
    full flush ends a block on a byte boundary with no reference to earlier data, so copies
    of it inflate to copies of the zeros. A gigabyte of zeros costs 16 kB and no time.
    """
    ds = ds.copy()
    ds.file_meta = ds.file_meta.copy()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    plain = to_bytes(ds)
    (group_length,) = struct.unpack_from("<I", plain, 140)
    data_set = 144 + group_length
    offset = pixel_data_offset(plain)
    meta = bytearray(plain[:data_set])
    syntax = b"1.2.840.10008.1.2.1\x00"
    at = meta.index(syntax)
    deflated_syntax = DeflatedExplicitVRLittleEndian.encode() + b"\x00" * (len(DeflatedExplicitVRLittleEndian) % 2)
    meta[at - 2:at + len(syntax)] = struct.pack("<H", len(deflated_syntax)) + deflated_syntax
    struct.pack_into("<I", meta, 140, len(meta) - 144)

    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = 16 << 20

    def zeros(count: int) -> bytes:
        out = compressor.flush(zlib.Z_FULL_FLUSH)
        blocks, rest = divmod(count, chunk)
        if blocks:
            out += (compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)) * blocks
        return out + compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FULL_FLUSH)

    stream = compressor.compress(plain[data_set:offset])
    if elements_before_pixel_data or zeros_before_pixel_data:
        stream += compressor.compress(PRIVATE_CREATOR + elements_before_pixel_data)
    if zeros_before_pixel_data:
        stream += compressor.compress(struct.pack("<HH2sHI", 0x0029, 0x1012, b"OB", 0, zeros_before_pixel_data))
        stream += zeros(zeros_before_pixel_data)
    stream += compressor.compress(plain[offset:])
    if zeros_after_pixel_data:
        stream += compressor.compress(struct.pack("<HH2sHI", 0x7FE1, 0x1010, b"OB", 0, zeros_after_pixel_data))
        stream += zeros(zeros_after_pixel_data)
    return bytes(meta) + stream + compressor.flush()
