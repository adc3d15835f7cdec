"""Make the hostile-input corpus: one small file per kind of input radedge once mishandled,
and index.json, which says for each what it reproduces and what ``radedge run`` must answer.

    python tests/data/hostile/make_hostile.py [output-directory]

``radedge run tests/data/hostile`` shows every refusal; tests/test_hostile_corpus.py runs it
and checks each answer against index.json. Outcomes in index.json:

- ``{"error": "<radedge.errors class>"}``: refused with that typed error, no result written;
- ``{"not_analysed": "<part of the reason>"}``: decoded, but not analysed, with the reason;
- ``{"analysed": true, "flag": "<code>", "note": "<part of a note>"}``: analysed (``flag``
  and ``note`` when given: a flag it raises, a note or spacing problem in its JSON image).

The femur_* files are the malignant femur of examples/radiographs, downscaled 8-fold (2400 x
2000 -> 300 x 250, OpenCV area interpolation, Imager Pixel Spacing scaled to match) and
written Explicit VR Little Endian, its other attributes kept. ``femur_control.dcm`` is that
image unchanged, and radedge flags it malignant; every other femur file differs from it in
the one change its name gives (and its SOP Instance UID), so a refusal is that change's
doing, not the downscale's. The bombs of structure and encoding carry a 48 x 64 gradient.

Everything is built from fixed inputs (no clock, no randomness); the encoders (pydicom,
pylibjpeg-openjpeg, pyjpegls, zlib, OpenCV) produce the same bytes for the same versions.
"""

from __future__ import annotations

import json
import struct
import sys
import warnings
import zlib
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    generate_uid,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from tests.io.dicom_factory import (  # noqa: E402 - the repository root is on the path only now
    compressed,
    deflated,
    encapsulated_under_native_syntax,
    first_fragment_offset,
    insert_before_pixel_data,
    lut_item,
    make_dataset,
    nested_sequences,
    to_bytes,
)

PHANTOM = ROOT / "examples" / "radiographs" / "femur_malignant.dcm"
DOWNSCALE = 8
GRADIENT = np.arange(48 * 64).reshape(48, 64) % 4096


# --------------------------------------------------------------------------- the femur


@cache
def femur_pixels() -> np.ndarray:
    """uint16 [300, 250]: the phantom's stored values, area-averaged 8 x 8."""
    ds = pydicom.dcmread(PHANTOM)
    return cv2.resize(ds.pixel_array, (ds.Columns // DOWNSCALE, ds.Rows // DOWNSCALE), interpolation=cv2.INTER_AREA)


def femur() -> Dataset:
    """The malignant femur phantom, 300 x 250, Explicit VR Little Endian, attributes kept but
    the size, the Imager Pixel Spacing (the same anatomy on 8-fold fewer pixels) and what
    says it is derived."""
    ds = pydicom.dcmread(PHANTOM, stop_before_pixels=True)
    small = femur_pixels()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = small.shape
    ds.ImagerPixelSpacing = [f"{float(value) * DOWNSCALE:g}" for value in ds.ImagerPixelSpacing]
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.DerivationDescription = (f"{PHANTOM.name} downscaled {DOWNSCALE}-fold (OpenCV INTER_AREA) "
                                "by tests/data/hostile/make_hostile.py")
    ds.PixelData = small.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    ds["PixelData"].is_undefined_length = False
    return ds


def femur_with(name: str, *, window: bool = True, pixels: np.ndarray | None = None, **attributes) -> Dataset:
    """The femur with ``attributes`` set (keywords), its window removed when ``window`` is False,
    and its pixels replaced by ``pixels``; a SOP Instance UID of its own, derived from ``name``."""
    ds = femur()
    if not window:
        for keyword in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction"):
            delattr(ds, keyword)
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    uid = generate_uid(entropy_srcs=["radedge hostile corpus", name])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    return ds


def femur_bytes(name: str, **kwargs) -> bytes:
    return to_bytes(femur_with(name, **kwargs))


def padded_everywhere(name: str) -> bytes:
    ds = femur_with(name)
    stored = np.frombuffer(ds.PixelData, dtype="<u2")
    ds.add(DataElement(0x00280120, "US", int(stored.min())))  # Pixel Padding Value
    ds.add(DataElement(0x00280121, "US", int(stored.max())))  # Pixel Padding Range Limit
    return to_bytes(ds)


def slope_nan_with_voi_lut(name: str) -> bytes:
    ds = femur_with(name, window=False, RescaleSlope="NaN")
    ds.VOILUTSequence = [lut_item(0, 16, np.arange(4096) * 16)]
    return to_bytes(ds)


def data_after_pixel_data(name: str, count: int = 8_192) -> bytes:
    # Empty private elements (7FE1,1010) LO: ``count`` x 8 bytes that pydicom once parsed one
    # by one, 0.4 s a megabyte.
    return femur_bytes(name) + struct.pack("<HH2sH", 0x7FE1, 0x1010, b"LO", 0) * count


# --------------------------------------------------------------------------- structure and encoding


def gradient_bytes() -> bytes:
    return to_bytes(make_dataset(GRADIENT, bits_stored=12))


def nested(name: str, depth: int = 500) -> bytes:
    return insert_before_pixel_data(gradient_bytes(), nested_sequences(depth))


def _patched(encoded: bytes, offset: int, fields) -> bytes:
    """``encoded`` with ``fields`` ((offset from ``offset``, struct format, value), ...) written."""
    patched = bytearray(encoded)
    for delta, fmt, value in fields:
        struct.pack_into(fmt, patched, offset + delta, value)
    return bytes(patched)


def j2k_rows(name: str) -> bytes:
    # SIZ (T.800 A.5.1) from its Lsiz field: Ysiz +8 and YTsiz +24, one tile of 4 194 604 rows.
    encoded = to_bytes(compressed(GRADIENT, JPEG2000Lossless, bits_stored=12))
    siz = first_fragment_offset(encoded)
    assert encoded[siz:siz + 4] == b"\xff\x4f\xff\x51"
    return _patched(encoded, siz + 4, [(8, ">I", 4_194_604), (24, ">I", 4_194_604)])


def jpeg_ls_size(name: str) -> bytes:
    # SOF55 (T.87 / T.81 B.2.2) from its Lf field: Y +3, X +5.
    encoded = to_bytes(compressed(GRADIENT, JPEGLSLossless, bits_stored=12))
    sof55 = encoded.index(b"\xff\xf7", first_fragment_offset(encoded)) + 2
    return _patched(encoded, sof55, [(3, ">H", 20_000), (5, ">H", 20_000)])


def jpeg_ls_cut(name: str, keep: int = 40) -> bytes:
    # The frame cut after ``keep`` bytes of codestream, its fragment length and the sequence
    # delimiter written to match: a well-formed file whose JPEG-LS stream simply stops.
    encoded = to_bytes(compressed(GRADIENT, JPEGLSLossless, bits_stored=12))
    start = first_fragment_offset(encoded)
    return (encoded[:start - 4] + struct.pack("<I", keep) + encoded[start:start + keep]
            + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))


def deflate_bomb(name: str, zeros: int = 128 << 20) -> bytes:
    # Twice the header allowance (limits.MAX_INFLATED_HEADER_BYTES, 64 MiB); deflate's 1032:1 at
    # most makes a gigabyte a megabyte, too big for this folder.
    return deflated(make_dataset(GRADIENT, bits_stored=12), zeros_before_pixel_data=zeros)


def encapsulated_under_native(name: str) -> bytes:
    return encapsulated_under_native_syntax(make_dataset(GRADIENT, bits_stored=12))


def png_huge(name: str) -> bytes:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(bytes(4096), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(idat)) + b"IDAT" + idat
            + struct.pack(">I", zlib.crc32(b"IDAT" + idat)) + struct.pack(">I", 0) + b"IEND"
            + struct.pack(">I", zlib.crc32(b"IEND")))


def jpeg_huge(name: str) -> bytes:
    # A JFIF header and a baseline frame header (SOF0) declaring 50 000 rows of 60 000 columns.
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 50_000, 60_000, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9) + sof0 + bytes(1024) + b"\xff\xd9"


def tiff_huge(name: str) -> bytes:
    # A little endian TIFF whose IFD declares 20 000 rows of 30 000 8-bit grey pixels in one strip.
    width, height = 30_000, 20_000
    entries = [(256, width), (257, height), (258, 8), (259, 1), (262, 1), (273, 8), (277, 1),
               (278, height), (279, width * height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", tag, 4, 1, value)
                                                     for tag, value in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8 + 1024) + bytes(1024) + ifd


# --------------------------------------------------------------------------- the corpus

FLAG = "SUSPECTED_MALIGNANT_BONE_LESION"
NAN_SLOPE = "Rescale Slope (0028,1053) is nan, not a finite number"

#: file -> (what it reproduces, the outcome radedge run must give, its maker)
CORPUS = {
    "femur_control.dcm": (
        ("The control: the downscaled malignant femur, unchanged and flagged; every other femur_* file "
         "differs from it in the one change its name gives."),
        {"analysed": True, "flag": FLAG}, lambda name: femur_bytes(name)),
    "femur_slope_nan.dcm": (
        "Rescale Slope NaN and no window: was analysed as if valid, exit 0 and no flags.",
        {"not_analysed": NAN_SLOPE}, lambda name: femur_bytes(name, window=False, RescaleSlope="NaN")),
    "femur_slope_nan_voi_lut.dcm": (
        "Rescale Slope NaN with a VOI LUT Sequence: was an IndexError while building the table.",
        {"not_analysed": NAN_SLOPE}, slope_nan_with_voi_lut),
    "femur_slope_denormal.dcm": (
        "Rescale Slope 5e-324, a denormal: was analysed as if valid, exit 0 and no flags.",
        {"not_analysed": "a denormal number"}, lambda name: femur_bytes(name, RescaleSlope="5e-324")),
    "femur_window_width_1e308.dcm": (
        "Window Width 1e308: was analysed as if valid, exit 0 and no flags.",
        {"not_analysed": "Width 1e+308) is out of all proportion"},
        lambda name: femur_bytes(name, WindowWidth="1e308")),
    "femur_padding_everywhere.dcm": (
        "Pixel Padding Value and Range Limit covering every stored value: was analysed, exit 0 and no flags.",
        {"not_analysed": "every pixel is pixel padding"}, padded_everywhere),
    "femur_one_pixel.dcm": (
        "A 1 x 1 image: was analysed, stretched over the whole model input.",
        {"not_analysed": "the image is 1 x 1 pixels, too few for bone-tumor"},
        lambda name: femur_bytes(name, pixels=femur_pixels()[:1, :1])),
    "femur_uniform.dcm": (
        "A uniform image (every pixel 3000): was analysed although it holds nothing to see.",
        {"not_analysed": "the image is uniform: its pixels hold stored value 3000"},
        lambda name: femur_bytes(name, pixels=np.full_like(femur_pixels(), 3000))),
    "femur_spacing_1e308.dcm": (
        ("Imager Pixel Spacing 1e308: wrote \"area_mm2\": Infinity, which is not JSON; now no mm "
         "figures, with the reason."),
        {"analysed": True, "flag": FLAG, "note": "ImagerPixelSpacing gives 1e+308 x 1e+308 mm per pixel"},
        lambda name: femur_bytes(name, ImagerPixelSpacing=["1e308", "1e308"])),
    "femur_magnification_1e-308.dcm": (
        ("Estimated Radiographic Magnification Factor 1e-308: divided the spacing to 1e307 mm and "
         "wrote \"area_mm2\": Infinity; now the factor is ignored with a note."),
        {"analysed": True, "flag": FLAG,
         "note": "Estimated Radiographic Magnification Factor is 1e-308, not between 1 and 10"},
        lambda name: femur_bytes(name, EstimatedRadiographicMagnificationFactor="1e-308")),
    "femur_data_after_pixel_data.dcm": (
        ("64 kB of empty elements after Pixel Data, which pydicom parsed at 0.4 s a megabyte "
         "(megabytes do not fit this folder): now never parsed, and analysed as the control is."),
        {"analysed": True, "flag": FLAG}, data_after_pixel_data),
    "sequences_nested_500.dcm": (
        "500 private sequences nested before Pixel Data: was a RecursionError.",
        {"error": "SequenceTooDeepError"}, nested),
    "j2k_siz_rows_4194604.dcm": (
        ("JPEG 2000 whose SIZ declares 4 194 604 rows in one tile against the header's 48: "
         "was 6.4 GB and 17 s in the decoder."),
        {"error": "CodestreamMismatchError"}, j2k_rows),
    "jpeg_ls_sof55_20000x20000.dcm": (
        "JPEG-LS whose SOF55 declares 20000 x 20000 against the header's 48 x 64: was 1.5 GB in the decoder.",
        {"error": "CodestreamMismatchError"}, jpeg_ls_size),
    "jpeg_ls_cut_after_40_bytes.dcm": (
        ("JPEG-LS whose codestream stops after 40 bytes, its fragment and sequence well formed: the "
         "decoder spent about 4 s on it (whatever the image size) before failing."),
        {"error": "TruncatedPixelDataError"}, jpeg_ls_cut),
    "deflate_bomb_128mib.dcm": (
        ("A Deflated file that inflates to 128 MiB of zeros before Pixel Data (the 1 GB original "
         "was 1 MB): refused at the inflated header allowance."),
        {"error": "InputTooLargeError"}, deflate_bomb),
    "encapsulated_under_native_syntax.dcm": (
        "Explicit VR Little Endian whose Pixel Data is encapsulated: was decoded 8 pixels off.",
        {"error": "EncapsulationMismatchError"}, encapsulated_under_native),
    "png_ihdr_100000x100000.png": (
        ("A PNG whose IHDR declares 100000 x 100000 pixels: refused from its header before decoding "
         "(what once cost time, a 512 MiB file read whole before its header, needs a file too big "
         "for this folder: tests/io/test_bounds.py makes one sparse)."),
        {"error": "ImageTooLargeError"}, png_huge),
    "jpeg_sof0_50000x60000.jpg": (
        ("A JPEG whose SOF0 declares 50000 x 60000 pixels: refused from its header before decoding "
         "(as for the PNG, the 512 MiB file is made sparse in tests/io/test_bounds.py)."),
        {"error": "ImageTooLargeError"}, jpeg_huge),
    "tiff_ifd_20000x30000.tif": (
        ("A TIFF whose IFD declares 20000 x 30000 pixels: refused from its header for its pixel count, "
         "before its strip is looked for."),
        {"error": "ImageTooLargeError"}, tiff_huge),
}


def make(output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    made, files = [], []
    with warnings.catch_warnings():
        # pydicom warns when it writes a DS that is not a decimal string ("NaN", "1e308"):
        # those values are what these files are for.
        warnings.simplefilter("ignore")
        for name, (reproduces, expected, maker) in CORPUS.items():
            target = output / name
            target.write_bytes(maker(name))
            made.append(target)
            files.append({"file": name, "reproduces": reproduces, "expected": expected})
    index = {
        "generated_by": "python tests/data/hostile/make_hostile.py",
        "femur": {"source": "examples/radiographs/femur_malignant.dcm", "downscale": DOWNSCALE,
                  "interpolation": "cv2.INTER_AREA", "transfer_syntax_uid": str(ExplicitVRLittleEndian)},
        "files": files,
    }
    target = output / "index.json"
    target.write_text(json.dumps(index, indent=1) + "\n")
    return [*made, target]


if __name__ == "__main__":
    for path in make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"{path.stat().st_size:>8}  {path}")
