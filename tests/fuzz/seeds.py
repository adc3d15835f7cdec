"""The inputs the fuzz mutators start from: every DICOM file the repository and pydicom ship,
and PNG, JPEG and TIFF renderings of three of them.

``load_seeds`` gives the same seeds, in the same order and with the same bytes, in every
process: a case is named by its master seed and case number alone, and the runner
regenerates it in another process to save a reproducer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: DICOM files beside the repository (absent on CI, then skipped).
SHARED_DICOM = REPO.parent / "shared" / "data" / "dicom"

#: Seeds of at least this many bytes are picked with ``LARGE_SEED_WEIGHT`` against 1.0 for
#: the others: a mutated 3 MB example costs a hundred times a phantom to generate and to
#: decode, and finds little the phantoms do not.
LARGE_SEED_BYTES = 1 << 20
LARGE_SEED_WEIGHT = 0.05

#: pydicom test files of this size or more are left out.
MAX_PYDICOM_SEED_BYTES = 2 << 20

#: Weight of a pydicom test file: most are colour, RT or SR objects that radedge refuses
#: before a mutation deep in their pixels could matter, and they outnumber the greyscale
#: phantoms four to one.
PYDICOM_SEED_WEIGHT = 0.5

#: DICOM files rendered as PNG, JPEG and TIFF seeds: a 12-bit radiograph phantom, a signed
#: 16-bit CT slice and a small signed MR image.
RASTER_SOURCES = (
    "tests/data/transfer_syntaxes/explicit_vr_le_mono2.dcm",
    "examples/ct/ct_vertebra_lytic.dcm",
    "tests/data/io/MR_small_jpeg_lossless_sv1.dcm",
)

#: Longest side of a raster seed, in pixels.
MAX_RASTER_SIDE = 512


@dataclass(frozen=True)
class Seed:
    """One input to mutate.

    ``name``: stable and unique, ``<folder>/<file>`` (``transfer_syntaxes/rle_mono2.dcm``,
    ``pydicom/CT_small.dcm``, ``raster/ct_vertebra_lytic.16bit.png``). ``kind``: ``"dicom"``,
    ``"png"``, ``"jpeg"`` or ``"tiff"``. ``weight``: relative chance of being picked.
    """

    name: str
    data: bytes
    kind: str
    weight: float


def load_seeds() -> list[Seed]:
    """Every seed, in a fixed order: the repository's DICOM files (transfer syntax phantoms,
    io fixtures, examples), the shared DICOM files if present, pydicom's test files under
    2 MB, then the raster renderings. Read once per process."""
    return list(_load())


@functools.cache
def _load() -> tuple[Seed, ...]:
    dicom_files = [
        *(("transfer_syntaxes/" + path.name, path)
          for path in sorted((REPO / "tests/data/transfer_syntaxes").glob("*.dcm"))),
        *(("io/" + path.name, path) for path in sorted((REPO / "tests/data/io").glob("*.dcm"))),
        *((path.relative_to(REPO).as_posix(), path) for path in sorted((REPO / "examples").rglob("*.dcm"))),
        *(("shared/" + path.name, path) for path in sorted(SHARED_DICOM.glob("*.dcm"))),
        *(("pydicom/" + path.name, path) for path in _pydicom_test_files()),
    ]
    seeds = []
    for name, path in dicom_files:
        data = path.read_bytes()
        weight = _weight(data) * (PYDICOM_SEED_WEIGHT if name.startswith("pydicom/") else 1.0)
        seeds.append(Seed(name, data, "dicom", weight))
    for source in RASTER_SOURCES:
        seeds.extend(_raster_seeds(REPO / source))
    return tuple(seeds)


def _weight(data: bytes) -> float:
    return LARGE_SEED_WEIGHT if len(data) >= LARGE_SEED_BYTES else 1.0


def _pydicom_test_files() -> list[Path]:
    """pydicom's bundled ``*.dcm`` test files under ``MAX_PYDICOM_SEED_BYTES``.

    Listed from the package folder: ``pydicom.data.get_testdata_files`` would try to
    download the larger ones.
    """
    import pydicom.data

    folder = Path(pydicom.data.__file__).parent / "test_files"
    return [path for path in sorted(folder.glob("*.dcm"))
            if path.is_file() and path.stat().st_size < MAX_PYDICOM_SEED_BYTES]


def _raster_seeds(path: Path) -> list[Seed]:
    """``path``'s first frame as 8- and 16-bit PNG, 8-bit JPEG, LZW 8-bit and uncompressed
    16-bit TIFF, the values stretched from their minimum (8-bit: to 0..255)."""
    import cv2
    import numpy as np
    import pydicom

    stored = pydicom.dcmread(BytesIO(path.read_bytes())).pixel_array.astype(np.int64)
    if max(stored.shape) > MAX_RASTER_SIDE:
        scale = MAX_RASTER_SIDE / max(stored.shape)
        size = (round(stored.shape[1] * scale), round(stored.shape[0] * scale))
        stored = cv2.resize(stored.astype(np.float64), size, interpolation=cv2.INTER_AREA).round().astype(np.int64)
    shifted = stored - stored.min()
    eight_bit = (shifted * 255 // max(int(shifted.max()), 1)).astype(np.uint8)
    sixteen_bit = np.minimum(shifted, 65535).astype(np.uint16)
    encodings = (
        ("8bit.png", "png", ".png", eight_bit, []),
        ("16bit.png", "png", ".png", sixteen_bit, []),
        ("8bit.jpg", "jpeg", ".jpg", eight_bit, [cv2.IMWRITE_JPEG_QUALITY, 90]),
        ("8bit.tiff", "tiff", ".tiff", eight_bit, []),
        ("16bit.tiff", "tiff", ".tiff", sixteen_bit, [cv2.IMWRITE_TIFF_COMPRESSION, 1]),
    )
    seeds = []
    for suffix, kind, extension, pixels, params in encodings:
        ok, encoded = cv2.imencode(extension, pixels, params)
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {path.name} as {extension}")
        data = encoded.tobytes()
        seeds.append(Seed(f"raster/{path.stem}.{suffix}", data, kind, _weight(data)))
    return seeds
