"""PNG, JPEG and TIFF ingestion through imagecodecs (libpng, libjpeg-turbo, libtiff).

These files hold *display values* written by whatever software exported them: any
rescale, window or inversion was applied before export and is not recorded. So the
``Image`` says so (``Intensity.meaning``), carries no modality or VOI information, and
has no pixel spacing (PNG pHYs, JFIF density and TIFF X/YResolution are print
resolutions, not distances in the patient).

A path must name a regular file of at most ``limits.MAX_FILE_BYTES`` (``files``). Before
the rest of the file is read, the header is parsed here from the bytes it occupies (PNG
IHDR, JPEG SOFn, TIFF IFD 0 ImageWidth/ImageLength) and the declared size checked against
the limits, and so are the samples per pixel and bits per sample. Before a codec decodes
anything, the file is checked for completeness (PNG chunks up to IEND, a JPEG EOI after
the last scan, TIFF strips or tiles inside the file): libpng and libjpeg decode a cut-off
file into an image with a grey or black band rather than failing.

Colour: a file whose colour channels are all equal (a grey image saved as RGB) gives that
channel unchanged. A true colour file is converted to grey with ITU-R BT.601 luma
weights in 15-bit fixed point (the same integers as OpenCV's ``cvtColor``), and a note says
so with the largest channel difference: exported radiographs are often RGB only because of
coloured annotations, and refusing them would stop the run where the note lets the reader
judge. An alpha channel (a PNG tRNS chunk included) is dropped with a note. A palette TIFF,
and a TIFF of 1, 2 or 4 bits or of another photometric interpretation than grey or RGB, is
read through libtiff's RGBA interface (8 bits per sample).

The pixels are those OpenCV's ``imdecode(..., IMREAD_UNCHANGED)`` gives (the same libraries
underneath; ``tests/io/test_raster_codecs.py`` compares them where OpenCV is installed),
except that a WhiteIsZero TIFF of 8 bits is returned as stored and marked MONOCHROME1 where
OpenCV inverts it, that 12-bit and lossless JPEG decode, and that a CMYK JPEG is refused.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import (
    CorruptPixelDataError,
    MissingDependencyError,
    TruncatedPixelDataError,
    UnsupportedImageError,
)
from . import limits
from .codestreams import JPEG_DHP, JPEG_SOF_MARKERS, JpegHeaderError, jpeg_frame_header
from .files import open_regular_file
from .image import Image, Intensity, Source
from .limits import check_declared_size
from .sniff import HEAD_SIZE, describe_bytes, detect_format

log = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Where a JPEG's frame header is looked for before the whole file is read: the segments
# before it (JFIF, EXIF, ICC profile, tables) take a few tens of kilobytes.
_JPEG_HEAD_BYTES = 1 << 20
_RESOLUTION_NOTE = {
    "png": "its pHYs chunk, if any, is a print resolution",
    "jpeg": "its JFIF/EXIF density is a print resolution",
    "tiff": "its XResolution/YResolution are a print resolution",
}


@dataclass
class RasterHeader:
    """What a PNG/JPEG/TIFF header declares, read without decoding pixels."""

    format: str
    width: int
    height: int
    bits_per_sample: int
    samples: int
    white_is_zero: bool = False
    tiff_photometric: int = 1
    tiff_separate_planes: bool = False
    data_end: int = 0  # TIFF: the end of the last strip or tile, to find a cut-off file
    notes: list[str] = field(default_factory=list)


def read_raster(path_or_bytes, *, max_pixels: int | None = None) -> Image:
    """Read a PNG (8/16-bit), JPEG (8/12-bit, lossless included) or TIFF (8/16-bit) file
    into an ``Image`` of display values.

    ``path_or_bytes``: ``str`` / ``os.PathLike`` or ``bytes``-like. The format is taken
    from the content. Returns ``pixels`` ``uint8`` or ``uint16`` ``[rows, columns]``,
    ``intensity.bits_stored`` the bits the file declares per sample, ``spacing`` None.

    Raises ``UnsupportedImageError`` (not PNG/JPEG/TIFF, float or signed samples),
    ``ImageTooLargeError`` (declared size, before decoding), ``TruncatedPixelDataError``
    or ``CorruptPixelDataError``.
    """
    if isinstance(path_or_bytes, (str, os.PathLike)):
        path = os.fspath(path_or_bytes)
        where = f"'{path}'"
        with open_regular_file(path) as stream:
            size = os.fstat(stream.fileno()).st_size

            def read_at(offset: int, length: int) -> bytes:
                # Offsets and lengths come from the header (a TIFF IFD offset may be 2**64 - 1):
                # none past the file is sought or asked for.
                if not 0 <= offset < size:
                    return b""
                stream.seek(offset)
                return stream.read(max(0, min(length, size - offset)))

            header = _parse_header(read_at, size, where)
            _check_declared(header, max_pixels, where)
            stream.seek(0)
            data = stream.read(size)  # what fstat measured, should the file grow meanwhile
    elif isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        path, where = None, "the input"
        limits.check_input_size(memoryview(path_or_bytes).nbytes, where)
        data = bytes(path_or_bytes)
        header = parse_header(data, where)
        _check_declared(header, max_pixels, where)
    else:
        raise TypeError(f"read_raster expects a path or bytes, not {type(path_or_bytes).__name__}")
    _check_complete(data, header, where)

    decoded, read_through_rgba = _decode(data, header, where)

    notes = list(header.notes)
    pixels = _to_grey(decoded, notes)
    if pixels.shape != (header.height, header.width):
        raise CorruptPixelDataError(
            f"{where}: the header declares {header.width} x {header.height} pixels but the codec "
            f"decoded {pixels.shape[1]} x {pixels.shape[0]}; the file is inconsistent."
        )
    if pixels.dtype not in (np.uint8, np.uint16):
        raise UnsupportedImageError(
            f"{where} holds {pixels.dtype} samples; radedge reads 8- and 16-bit unsigned "
            "display values from PNG/JPEG/TIFF. Export the image as 8- or 16-bit greyscale."
        )
    pixels = np.ascontiguousarray(pixels)
    container_bits = pixels.dtype.itemsize * 8
    bits = header.bits_per_sample if 8 <= header.bits_per_sample <= container_bits else container_bits
    if bits < container_bits and int(pixels.max(initial=0)) >= 1 << bits:
        notes.append(f"the header declares {bits} bits per sample but values reach "
                     f"{int(pixels.max())}; read as {container_bits}-bit")
        bits = container_bits

    photometric = "MONOCHROME2"
    if header.white_is_zero and not read_through_rgba:
        photometric = "MONOCHROME1"
        notes.append("TIFF PhotometricInterpretation WhiteIsZero: stored as read, inverted by "
                     "the intensity table (MONOCHROME1)")
    elif header.white_is_zero:
        notes.append("TIFF PhotometricInterpretation WhiteIsZero: libtiff inverted the values to "
                     "min-is-black while decoding")

    kind = header.format.upper()
    intensity = Intensity(
        bits_allocated=container_bits,
        bits_stored=bits,
        signed=False,
        photometric_interpretation=photometric,
        meaning=(
            f"Display values ({bits}-bit) as written by the software that exported this {kind} "
            "file: any rescale, window or inversion was applied before export and is not "
            "recorded, so there is no modality or VOI information. The pixel spacing is unknown."
        ),
    )
    log.debug("read %s: %d x %d, %d bits", kind, header.width, header.height, bits)
    return Image(
        pixels=pixels,
        intensity=intensity,
        source=Source(path=path, format=header.format),
        spacing=None,
        spacing_problem=(
            f"{kind} files carry no patient-plane pixel spacing ({_RESOLUTION_NOTE[header.format]}); "
            "distances in mm cannot be given"
        ),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- headers


def parse_header(data: bytes, where: str = "the input") -> RasterHeader:
    """Read width, height, bits and samples from a PNG/JPEG/TIFF header without decoding."""
    data = memoryview(data)
    return _parse_header(lambda offset, length: bytes(data[offset:offset + max(0, length)]),
                         len(data), where)


def _parse_header(read_at, size: int, where: str) -> RasterHeader:
    """``parse_header`` reading only the bytes the header occupies: ``read_at(offset, length)``
    returns them (fewer at the end of the ``size``-byte file)."""
    head = read_at(0, HEAD_SIZE)
    kind = detect_format(head)
    if kind == "png":
        return _png_header(head, where)
    if kind == "jpeg":
        try:
            return _jpeg_header(read_at(0, _JPEG_HEAD_BYTES), where)
        except TruncatedPixelDataError:
            if size <= _JPEG_HEAD_BYTES:
                raise
        return _jpeg_header(read_at(0, size), where)
    if kind == "tiff":
        return _tiff_header(read_at, where)
    dicom = (" It is DICOM: read it with radedge.io.read_image or read_dicom."
             if kind in ("dicom", "dicom-raw") else "")
    raise UnsupportedImageError(
        f"{where} is not a PNG, JPEG or TIFF file: {describe_bytes(head)}.{dicom}"
    )


def _check_declared(header: RasterHeader, max_pixels: int | None, where: str) -> None:
    """Refuse, before decoding, a size beyond the limits or samples radedge does not read."""
    kind = header.format.upper()
    check_declared_size(header.height, header.width, max_pixels, f"{where} ({kind} header)")
    if not 1 <= header.samples <= 4 or header.bits_per_sample > 16:
        raise UnsupportedImageError(
            f"{where}: the {kind} header declares {header.samples} sample(s) of "
            f"{header.bits_per_sample} bits per pixel; radedge reads grey, grey + alpha, RGB "
            "or RGBA images of 8 or 16 bits per sample. Export the image as 8- or 16-bit "
            "greyscale."
        )


def _cut_header(where: str, kind: str) -> TruncatedPixelDataError:
    return TruncatedPixelDataError(
        f"{where} ends inside its {kind} header: the file was cut off. Send it again."
    )


def _png_header(data: bytes, where: str) -> RasterHeader:
    # PNG spec 11.2.2: the first chunk is IHDR, 13 bytes.
    if len(data) < 33:
        raise _cut_header(where, "PNG")
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise CorruptPixelDataError(f"{where}: the PNG does not start with an IHDR chunk; it is damaged.")
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", data[16:26])
    samples = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour_type)
    if samples is None or width == 0 or height == 0:
        raise CorruptPixelDataError(
            f"{where}: PNG IHDR declares {width} x {height}, colour type {colour_type}; invalid."
        )
    return RasterHeader("png", width, height, bit_depth if colour_type != 3 else 8, samples)


def _jpeg_header(data: bytes, where: str) -> RasterHeader:
    """The first frame header (ITU-T T.81 B.2.2) of a JPEG file."""
    try:
        marker, frame = jpeg_frame_header(data)
    except JpegHeaderError as exc:
        if exc.cut:
            raise _cut_header(where, "JPEG") from None
        raise CorruptPixelDataError(f"{where}: the JPEG is damaged: {exc}.") from None
    if marker not in JPEG_SOF_MARKERS and marker != JPEG_DHP:
        raise UnsupportedImageError(
            f"{where} is a JPEG-LS file (ITU-T T.87), which radedge reads only inside DICOM. "
            "Export the image as an 8- or 16-bit greyscale PNG."
        )
    if frame.rows == 0:
        raise UnsupportedImageError(
            f"{where}: the JPEG frame header gives height 0 (defined later by a DNL "
            "marker), which radedge does not read. Export the image again."
        )
    if frame.columns == 0:
        raise CorruptPixelDataError(f"{where}: the JPEG frame header gives width 0; it is damaged.")
    if frame.components == 4:
        raise UnsupportedImageError(
            f"{where} is a four-component (CMYK) JPEG, which radedge does not read. Export the "
            "image as an 8- or 16-bit greyscale PNG."
        )
    return RasterHeader("jpeg", frame.columns, frame.rows, frame.precision, frame.components)


def _tiff_header(read_at, where: str) -> RasterHeader:
    """TIFF 6.0 section 2 (and BigTIFF): image file directory 0 of the file.

    ``read_at(offset, length)``: the file's bytes; only the header, IFD 0 and the values it
    points to are read, wherever in the file they are (writers often put IFD 0 last).
    """
    head = read_at(0, 16)
    order = "<" if head[:2] == b"II" else ">"
    try:
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        if big:
            (first_ifd,) = struct.unpack(order + "Q", head[8:16])
        else:
            (first_ifd,) = struct.unpack(order + "I", head[4:8])
        tags, next_ifd = _tiff_ifd(read_at, first_ifd, order, big)
    except struct.error:
        raise _cut_header(where, "TIFF") from None
    width, height = tags.get(256, [0])[0], tags.get(257, [0])[0]
    if width == 0 or height == 0:
        raise CorruptPixelDataError(
            f"{where}: TIFF ImageWidth/ImageLength are {width} x {height}; the file is damaged."
        )
    samples = tags.get(277, [1])[0]
    bits = max(tags.get(258, [1]))
    sample_format = tags.get(339, [1])[0]
    if sample_format != 1:
        raise UnsupportedImageError(
            f"{where}: the TIFF holds {'signed integer' if sample_format == 2 else 'floating-point'} "
            "samples (SampleFormat "
            f"{sample_format}); radedge reads unsigned 8- and 16-bit display values. Export the "
            "image as 8- or 16-bit unsigned greyscale."
        )
    photometric = tags.get(262, [1])[0]
    header = RasterHeader("tiff", width, height, bits, samples,
                          white_is_zero=photometric == 0 and samples == 1, tiff_photometric=photometric,
                          tiff_separate_planes=tags.get(284, [1])[0] == 2)
    offsets, counts = tags.get(273) or tags.get(324), tags.get(279) or tags.get(325)
    if offsets and counts:
        header.data_end = max(offset + count for offset, count in zip(offsets, counts))
    if next_ifd:
        header.notes.append("multi-page TIFF: the first page is used")
    return header


_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q", 6: "b", 8: "h", 9: "i", 17: "q"}


def _tiff_ifd(read_at, offset: int, order: str, big: bool) -> tuple[dict[int, list[int]], int]:
    """Integer-valued entries of one IFD ({tag: values}) and the next IFD's offset.

    Raises ``struct.error`` where the file ends inside them.
    """
    count_format, entry_size, inline = ("Q", 20, 8) if big else ("H", 12, 4)
    count_size = struct.calcsize(count_format)
    (count,) = struct.unpack(order + count_format, read_at(offset, count_size))
    entries = read_at(offset + count_size, min(count, 4096) * entry_size)
    pointer = order + ("Q" if big else "I")
    tags: dict[int, list[int]] = {}
    for position in range(0, min(count, 4096) * entry_size, entry_size):
        if big:
            tag, kind, n = struct.unpack_from(order + "HHQ", entries, position)
        else:
            tag, kind, n = struct.unpack_from(order + "HHI", entries, position)
        code = _TIFF_TYPES.get(kind)
        if code is None or n == 0 or n > 1 << 24:
            continue
        size = struct.calcsize(code) * n
        value = entries[position + entry_size - inline:position + entry_size]
        if size > inline:
            (value_at,) = struct.unpack(pointer, value)
            value = read_at(value_at, size)
        tags[tag] = list(struct.unpack_from(f"{order}{n}{code}", value))
    next_at = offset + count_size + count * entry_size
    (next_ifd,) = struct.unpack(pointer, read_at(next_at, struct.calcsize(pointer)))
    return tags, next_ifd


def _check_complete(data: bytes, header: RasterHeader, where: str) -> None:
    if header.format == "png":
        # PNG spec 5.3: length, type, data, CRC per chunk; the last chunk is IEND.
        position = 8
        while True:
            if position + 8 > len(data):
                break
            length, chunk_type = struct.unpack(">I4s", data[position:position + 8])
            position += 12 + length
            if position > len(data):
                break
            if chunk_type == b"IEND":
                return
        raise TruncatedPixelDataError(
            f"{where}: the PNG ends before its IEND chunk: the file was cut off. Send it again."
        )
    if header.format == "jpeg":
        # 0xFF inside entropy-coded data is always followed by 00 or RSTn (T.81 B.1.1.5),
        # so an FF D9 after the last SOS marker can only be the EOI.
        last_scan = data.rfind(b"\xff\xda")
        if last_scan < 0 or data.find(b"\xff\xd9", last_scan) < 0:
            raise TruncatedPixelDataError(
                f"{where}: the JPEG has no end-of-image marker after its last scan: the file "
                "was cut off. Send it again."
            )
    if header.format == "tiff" and header.data_end > len(data):
        raise TruncatedPixelDataError(
            f"{where}: the TIFF's image data runs to byte {header.data_end} but the file has "
            f"{len(data)} bytes: it was cut off. Send it again."
        )


# --------------------------------------------------------------------------- pixels


def _decode(data: bytes, header: RasterHeader, where: str) -> tuple[np.ndarray, bool]:
    """The decoded samples ([rows, columns] or [rows, columns, samples], colour in RGB order)
    and whether they came through libtiff's RGBA interface (8-bit, WhiteIsZero inverted)."""
    try:
        # Imported here: DICOM reading needs no raster codec, and radedge.io imports this module.
        import imagecodecs
    except ImportError:
        raise MissingDependencyError("imagecodecs", "Reading PNG, JPEG and TIFF files") from None
    through_rgba = False
    try:
        if header.format == "png":
            decoded = imagecodecs.png_decode(data)
        elif header.format == "jpeg":
            decoded = imagecodecs.jpeg8_decode(data)
        else:
            # Grey and RGB of 8 or 16 bits are read as stored; palette, YCbCr, CMYK, CIELab and
            # 1/2/4-bit samples need libtiff's conversion.
            through_rgba = header.tiff_photometric not in (0, 1, 2) or header.bits_per_sample not in (8, 16)
            decoded = imagecodecs.tiff_decode(data, index=0, asrgb=through_rgba)
    except MemoryError:
        raise
    except Exception as exc:  # each codec raises its own error type (PngError, Jpeg8Error, TiffError)
        reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
        raise CorruptPixelDataError(
            f"{where}: imagecodecs could not decode the {header.format.upper()} data ({reason}). The "
            "file is damaged or uses a coding radedge does not read; export it again as an 8- or "
            "16-bit greyscale PNG."
        ) from None
    if header.format == "tiff":
        if header.tiff_separate_planes and decoded.ndim == 3 and not through_rgba:
            decoded = np.moveaxis(decoded, 0, -1)
        if through_rgba:
            # RGBA with an opaque alpha: one channel for grey, three for palette and colour.
            decoded = decoded[..., 0] if header.samples < 3 and header.tiff_photometric != 3 else decoded[..., :3]
    return decoded, through_rgba


def _to_grey(decoded: np.ndarray, notes: list[str]) -> np.ndarray:
    """One channel from grey, grey + alpha, RGB or RGBA samples."""
    if decoded.ndim == 2:
        return decoded
    channels = decoded.shape[2]
    if channels in (2, 4):
        alpha = decoded[..., -1]
        full = np.iinfo(decoded.dtype).max
        transparent = int(np.count_nonzero(alpha != full))
        notes.append("alpha channel ignored" + (
            f" ({transparent} pixels not fully opaque)" if transparent else ""))
        decoded = decoded[..., :-1]
        channels -= 1
    if channels == 1:
        return decoded[..., 0]
    red, green, blue = decoded[..., 0], decoded[..., 1], decoded[..., 2]
    if np.array_equal(blue, green) and np.array_equal(blue, red):
        notes.append("stored as colour with three equal channels; one channel used unchanged")
        return red
    difference = int(max(
        np.abs(red.astype(np.int32) - green).max(), np.abs(red.astype(np.int32) - blue).max()
    ))
    notes.append(
        "colour image converted to grey with ITU-R BT.601 weights (0.299 R + 0.587 G + "
        f"0.114 B); its channels differ by up to {difference} (coloured annotations or a "
        "colour rendering), so check that the grey image is the radiograph intended"
    )
    return _bt601_grey(decoded)


def _bt601_grey(rgb: np.ndarray) -> np.ndarray:
    """[rows, columns] of ``rgb``'s dtype (uint8 or uint16 [rows, columns, 3], RGB): ITU-R BT.601
    luma, 0.299 R + 0.587 G + 0.114 B in 15-bit fixed point, rounded half up; the weights sum to
    2^15, so a grey pixel keeps its value."""
    red, green, blue = (rgb[..., channel].astype(np.int64) for channel in range(3))
    luma = (red * 9798 + green * 19235 + blue * 3735 + (1 << 14)) >> 15
    return luma.astype(rgb.dtype)
