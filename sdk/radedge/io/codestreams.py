"""The headers of compressed frames, read here before any decoder sees the frame.

A decoder allocates what the codestream declares, not what the DICOM header says: a
JPEG 2000 SIZ marker changed in four bytes to declare four million rows makes OpenJPEG
allocate gigabytes before it finds the data missing, and a JPEG frame header declaring
30000 x 30000 does the same to libjpeg. Each header is a few dozen bytes at a documented
place, so it is parsed here and compared with the Image Pixel module (PS3.3 C.7.6.3):

- JPEG 2000 and HTJ2K: the SIZ marker segment (ITU-T T.800 A.5.1), which follows SOC.
- JPEG (ITU-T T.81): the frame header of the first SOFn marker (T.81 B.2.2), or the DHP
  segment that precedes the frames of a hierarchical JPEG (T.81 B.3.2).
- JPEG-LS (ITU-T T.87): the SOF55 frame header (T.87 C.2.2, the T.81 layout) and any
  oversize-dimension LSE segment (T.87 C.2.4.1.4).
- RLE Lossless (PS3.5 G.5): the 64-byte header's segment count and offsets.

Every header must declare the DICOM Rows and Columns, Samples per Pixel components, and
a precision no wider than Bits Allocated; otherwise ``CodestreamMismatchError`` names
both values. A header that cannot be read at all is ``CorruptPixelDataError``. A JPEG,
JPEG-LS or JPEG 2000 codestream must also end with its end marker (FF D9), padding aside,
or it was cut off: ``TruncatedPixelDataError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom import uid as dicom_uid

from ..errors import (
    CodestreamMismatchError,
    CorruptPixelDataError,
    TruncatedPixelDataError,
    UnsupportedTransferSyntaxError,
)

_JPEG_SYNTAXES = frozenset({
    dicom_uid.JPEGBaseline8Bit, dicom_uid.JPEGExtended12Bit, dicom_uid.JPEGLossless,
    dicom_uid.JPEGLosslessSV1,
})
_JPEG_LS_SYNTAXES = frozenset({dicom_uid.JPEGLSLossless, dicom_uid.JPEGLSNearLossless})
_JPEG_2000_SYNTAXES = frozenset({
    dicom_uid.JPEG2000Lossless, dicom_uid.JPEG2000, dicom_uid.HTJ2KLossless,
    dicom_uid.HTJ2KLosslessRPCL, dicom_uid.HTJ2K,
})

# T.81 Table B.1: SOF0-SOF15 less DHT (C4), JPG (C8) and DAC (CC); T.87 adds SOF55 (F7).
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_LS_SOF = 0xF7
_JPEG_LS_LSE = 0xF8
# T.81 B.3.2: in hierarchical mode the DHP segment, before every frame, gives the size of
# the whole image (the frames may be smaller), in the frame header's layout.
JPEG_DHP = 0xDE
_SOS, _EOI = 0xDA, 0xD9
# T.81 B.1.1.3: markers that stand alone, with no length after them (TEM, RSTm, SOI, EOI).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_SOC_SIZ = b"\xff\x4f\xff\x51"


@dataclass(frozen=True)
class FrameHeader:
    """What a compressed frame's header declares. ``source`` names the header and its clause."""

    source: str
    rows: int
    columns: int
    components: int
    precision: int  # bits per sample, the largest over components


class JpegHeaderError(ValueError):
    """A JPEG marker sequence without a readable frame header; ``cut`` when it ends early."""

    def __init__(self, message: str, cut: bool = False):
        super().__init__(message)
        self.cut = cut


def jpeg_frame_header(data) -> tuple[int, FrameHeader]:
    """The first frame header (SOFn, DHP or SOF55) of a JPEG / JPEG-LS stream: (marker, header).

    Walks the marker segments from SOI (T.81 B.1.1.2: each marker is FF xx, fill bytes FF
    may precede it, every marker but the standalone ones carries a 16-bit length) up to
    the first SOFn. After SOF55 the walk goes on to the first scan (SOS): an LSE
    oversize-dimension segment (T.87 C.2.4.1.4, ID 4) there replaces a zero height or
    width, as JPEG-LS decoders apply it. Raises ``JpegHeaderError``.
    """
    data = memoryview(data)
    size = len(data)
    if size < 2 or data[0] != 0xFF or data[1] != 0xD8:
        raise JpegHeaderError("it does not start with an SOI marker (FF D8)")
    position = 2
    found: tuple[int, FrameHeader] | None = None
    oversize: tuple[int, int] | None = None
    while True:
        # Bytes between segments are an encoder's error that libjpeg skips with a
        # warning; skip them too, so the header read is the one the decoder reads.
        while position < size and data[position] != 0xFF:
            position += 1
        while position < size and data[position] == 0xFF:
            position += 1
        if position >= size:
            raise JpegHeaderError("it ends before its first scan", cut=True)
        marker = data[position]
        position += 1
        if marker in _STANDALONE:
            if marker == _EOI:
                break
            continue
        if position + 2 > size:
            raise JpegHeaderError("it ends inside a marker segment", cut=True)
        (length,) = struct.unpack_from(">H", data, position)
        if length < 2:
            raise JpegHeaderError(f"marker FF {marker:02X} has a segment length of {length}")
        if marker == _SOS:
            break
        if position + length > size:
            raise JpegHeaderError(f"it ends inside the FF {marker:02X} marker segment", cut=True)
        if found is None and (marker in JPEG_SOF_MARKERS or marker in (_JPEG_LS_SOF, JPEG_DHP)):
            # T.81 B.2.2 (and T.87 C.2.2): Lf, P, Y, X, Nf, then Nf component specifications.
            if length < 8:
                raise JpegHeaderError(f"its frame header (FF {marker:02X}) is {length} bytes, fewer than 8")
            precision, rows, columns, components = struct.unpack_from(">BHHB", data, position + 2)
            if length != 8 + 3 * components:
                raise JpegHeaderError(
                    f"its frame header (FF {marker:02X}) is {length} bytes long for {components} "
                    f"components; T.81 B.2.2 makes it 8 + 3 x {components} = {8 + 3 * components}"
                )
            found = marker, FrameHeader("JPEG frame header (ITU-T T.81 B.2.2)", rows, columns,
                                        components, precision)
            if marker != _JPEG_LS_SOF:
                return found
        elif marker == _JPEG_LS_LSE and length >= 4 and data[position + 2] == 4:
            # T.87 C.2.4.1.4: ID 4, Wxy bytes per dimension, then height and width.
            width_bytes = data[position + 3]
            if not 2 <= width_bytes <= 4 or length < 4 + 2 * width_bytes:
                raise JpegHeaderError("its oversize-dimension LSE segment is malformed")
            start = position + 4
            rows = int.from_bytes(data[start:start + width_bytes], "big")
            columns = int.from_bytes(data[start + width_bytes:start + 2 * width_bytes], "big")
            oversize = rows, columns
        position += length
    if found is None:
        raise JpegHeaderError("it has no frame header (SOFn) before its first scan")
    marker, header = found
    if oversize is not None:
        rows = header.rows or oversize[0]
        columns = header.columns or oversize[1]
        if (header.rows and header.rows != oversize[0]) or (header.columns and header.columns != oversize[1]):
            raise JpegHeaderError(
                f"its frame header declares {header.rows} x {header.columns} but its "
                f"oversize-dimension LSE segment {oversize[0]} x {oversize[1]}"
            )
        header = FrameHeader(header.source, rows, columns, header.components, header.precision)
    return marker, header


def jpeg_2000_header(data) -> FrameHeader:
    """The image size of a JPEG 2000 codestream's SIZ marker segment (ITU-T T.800 A.5.1).

    A JP2 file (T.800 Annex I boxes), which some writers store although PS3.5 A.4.4 asks for
    the bare codestream, is read through its contiguous codestream box. Raises ``ValueError``
    saying what is wrong.
    """
    data = memoryview(data)
    if bytes(data[:12]) == _JP2_SIGNATURE:
        data = _jp2_codestream(data)
    if bytes(data[:4]) != _SOC_SIZ:
        raise ValueError("it does not start with the SOC and SIZ markers (FF 4F FF 51)")
    if len(data) < 4 + 38:
        raise ValueError("it ends inside its SIZ marker segment")
    (lsiz, _rsiz, xsiz, ysiz, xosiz, yosiz, xtsiz, ytsiz, xtosiz, ytosiz,
     csiz) = struct.unpack_from(">HHIIIIIIIIH", data, 4)
    if not 1 <= csiz <= 16384 or lsiz != 38 + 3 * csiz or len(data) < 4 + lsiz:
        raise ValueError(f"its SIZ marker segment is malformed (Lsiz {lsiz}, Csiz {csiz})")
    # A.5.1: the image area and the tile grid must be non-empty and the tiles must cover
    # the image origin; A.4.2: at most 65535 tiles (a tile index Isot is 0 to 65534).
    if xsiz <= xosiz or ysiz <= yosiz or xtsiz == 0 or ytsiz == 0:
        raise ValueError(f"its SIZ declares an empty image or tile ({xsiz} x {ysiz}, origin "
                         f"{xosiz}, {yosiz}, tiles {xtsiz} x {ytsiz})")
    if xtosiz > xosiz or ytosiz > yosiz or xtsiz + xtosiz <= xosiz or ytsiz + ytosiz <= yosiz:
        raise ValueError("its SIZ tile grid does not cover the image origin")
    tiles = -(-(xsiz - xtosiz) // xtsiz) * -(-(ysiz - ytosiz) // ytsiz)
    if tiles > 65535:
        raise ValueError(f"its SIZ declares {tiles} tiles; ITU-T T.800 allows at most 65535")
    components = [struct.unpack_from(">BBB", data, 42 + 3 * index) for index in range(csiz)]
    ssiz, xrsiz, yrsiz = components[0]
    if xrsiz == 0 or yrsiz == 0:
        raise ValueError("its SIZ gives component 0 a subsampling factor of 0")
    # B.2: a component spans ceil(Xsiz / XRsiz) - ceil(XOsiz / XRsiz) samples.
    columns = -(-xsiz // xrsiz) - -(-xosiz // xrsiz)
    rows = -(-ysiz // yrsiz) - -(-yosiz // yrsiz)
    precision = max((s & 0x7F) + 1 for s, _, _ in components)
    return FrameHeader("JPEG 2000 SIZ marker (ITU-T T.800 A.5.1)", rows, columns, csiz, precision)


def _jp2_codestream(data: memoryview) -> memoryview:
    """The content of the first contiguous codestream box ('jp2c', T.800 I.5.4)."""
    position = 0
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if length == 1:
            if position + 16 > len(data):
                break
            (length,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif length == 0:
            length = len(data) - position
        if length < header:
            break
        if kind == b"jp2c":
            return data[position + header:position + length]
        position += length
    raise ValueError("it is a JP2 file without a codestream box (jp2c)")


def rle_segment_offsets(frame, samples: int, bits_allocated: int, where: str) -> list[int]:
    """Check an RLE Lossless frame's header (PS3.5 G.5) and return its segment offsets.

    The header is 16 little endian 32-bit values: the number of segments (one per byte of
    each sample, most significant first: Samples per Pixel x Bits Allocated / 8), then each
    segment's offset from the start of the frame; the first is 64, the header's length.
    """
    frame = memoryview(frame)
    if len(frame) < 64:
        raise CorruptPixelDataError(
            f"{where}: the RLE Lossless frame is {len(frame)} bytes, shorter than its 64-byte "
            "header (PS3.5 G.5): the compressed data is damaged. Send the image again."
        )
    header = struct.unpack_from("<16I", frame)
    segments = header[0]
    expected_segments = samples * (bits_allocated // 8)
    if segments != expected_segments:
        raise CodestreamMismatchError(
            f"{where}: the RLE header (PS3.5 G.5) declares {segments} segments where the DICOM "
            f"header's Samples per Pixel ({samples}) x Bits Allocated ({bits_allocated}) / 8 "
            f"is {expected_segments} (one segment per byte of each sample). The compressed "
            "data and the header disagree, so the image is refused before decoding; ask the "
            "sender to export it again.",
            attribute="Bits Allocated (0028,0100)", dicom_value=expected_segments,
            codestream_value=segments,
        )
    offsets = list(header[1:1 + segments])
    bounds = [*offsets, len(frame)]
    if offsets[0] != 64 or any(bounds[i] >= bounds[i + 1] for i in range(segments)):
        raise CorruptPixelDataError(
            f"{where}: the RLE header (PS3.5 G.5) gives segment offsets {offsets} in a frame of "
            f"{len(frame)} bytes; they must start at 64, increase and stay inside the frame. "
            "The compressed data is damaged; send the image again."
        )
    return offsets


def check_frame(frame, transfer_syntax_uid: str, *, rows: int, columns: int, samples: int,
                bits_allocated: int, where: str) -> None:
    """Refuse a compressed frame whose own header disagrees with the DICOM header.

    ``frame``: the frame's bytes (its fragments joined). Raises ``CodestreamMismatchError``
    for a disagreement, ``CorruptPixelDataError`` for a header that cannot be read and
    ``UnsupportedTransferSyntaxError`` for an encapsulated syntax radedge has no header
    reader for (it is not decoded unchecked).
    """
    syntax = dicom_uid.UID(transfer_syntax_uid)
    if syntax == dicom_uid.RLELossless:
        rle_segment_offsets(frame, samples, bits_allocated, where)
        return
    if syntax in _JPEG_2000_SYNTAXES:
        kind = "JPEG 2000"
        try:
            header = jpeg_2000_header(frame)
        except (ValueError, struct.error) as exc:
            raise _unreadable(where, kind, str(exc)) from None
    elif syntax in _JPEG_SYNTAXES or syntax in _JPEG_LS_SYNTAXES:
        kind = "JPEG-LS" if syntax in _JPEG_LS_SYNTAXES else "JPEG"
        try:
            marker, header = jpeg_frame_header(frame)
        except JpegHeaderError as exc:
            raise _unreadable(where, kind, str(exc)) from None
        if marker == _JPEG_LS_SOF:
            source = "JPEG-LS SOF55 frame header (ITU-T T.87 C.2.2)"
        elif marker == JPEG_DHP:
            source = "JPEG DHP marker segment of a hierarchical JPEG (ITU-T T.81 B.3.2)"
        else:
            source = f"JPEG SOF{marker - 0xC0} frame header (ITU-T T.81 B.2.2)"
        header = FrameHeader(source, header.rows, header.columns, header.components, header.precision)
    else:
        raise UnsupportedTransferSyntaxError(
            f"{where}: Pixel Data is encoded as {syntax.name} ({syntax}), whose frame header "
            "radedge cannot check before decoding, so it is not decoded. Ask the sender to "
            "transmit the image as JPEG 2000, JPEG-LS, JPEG, RLE or uncompressed.",
            transfer_syntax_uid=str(syntax),
        )
    _compare(header, where, rows=rows, columns=columns, samples=samples, bits_allocated=bits_allocated)
    if bytes(frame[:2]) == b"\xff\x4f" or syntax not in _JPEG_2000_SYNTAXES:  # JP2 boxes may follow the codestream
        _check_end(frame, where, kind)


#: Bytes allowed after a codestream's end marker: DICOM pads a fragment to even length with
#: one 00 (PS3.5 A.4), some writers with FF; the test files of pydicom, dcmtk and GDCM add one.
_END_PADDING = 8


def _check_end(frame, where: str, kind: str) -> None:
    """Refuse a JPEG, JPEG-LS or JPEG 2000 codestream that does not end with its end marker
    (EOI, T.81 B.2.1; EOC, T.800 A.4.4; both FF D9), padding aside: it was cut off. Some
    decoders spend seconds on a cut stream before failing (CharLS about 4 s whatever the
    image size); the marker says in two bytes that the data is incomplete."""
    tail = bytes(frame[-(_END_PADDING + 2):])
    body = tail.rstrip(b"\x00\xff") if not tail.endswith(b"\xff\xd9") else tail
    if not body.endswith(b"\xff\xd9") or len(tail) - len(body) > _END_PADDING:
        raise TruncatedPixelDataError(
            f"{where}: the {kind} codestream does not end with its end-of-image marker (FF D9): the "
            f"compressed data is cut off. The image is refused before decoding; send it again."
        )


def _compare(header: FrameHeader, where: str, *, rows: int, columns: int, samples: int,
             bits_allocated: int) -> None:
    checks = (
        ("Rows (0028,0010)", rows, header.rows, "rows", header.rows == rows),
        ("Columns (0028,0011)", columns, header.columns, "columns", header.columns == columns),
        ("Samples per Pixel (0028,0002)", samples, header.components, "components",
         header.components == samples),
        ("Bits Allocated (0028,0100)", bits_allocated, header.precision, "bits per sample",
         header.precision <= bits_allocated),
    )
    for attribute, dicom_value, codestream_value, what, agrees in checks:
        if not agrees:
            relation = "at most " if attribute.startswith("Bits") else ""
            raise CodestreamMismatchError(
                f"{where}: the {header.source} declares {codestream_value} {what} where the "
                f"DICOM header's {attribute} is {dicom_value} (the codestream must declare "
                f"{relation}{dicom_value}). The compressed data and the header disagree, so "
                "the image is refused before decoding; ask the sender to export it again.",
                attribute=attribute, dicom_value=dicom_value, codestream_value=codestream_value,
            )


def _unreadable(where: str, kind: str, reason: str) -> CorruptPixelDataError:
    return CorruptPixelDataError(
        f"{where}: the {kind} Pixel Data's frame header cannot be read: {reason}. The "
        "compressed data is damaged; send the image again or uncompressed."
    )


# ITU-T T.800 A.2 / T.814 A.3: main-header markers read to tell the JPEG 2000 family apart.
_J2K_CAP, _J2K_COD, _J2K_SOT = 0x50, 0x52, 0x90
_JPEG_SOF_SYNTAXES = {
    0xC0: dicom_uid.JPEGBaseline8Bit,  # SOF0, baseline sequential (8-bit)
    0xC1: dicom_uid.JPEGExtended12Bit,  # SOF1, extended sequential (8 or 12-bit)
}
_JPEG_LOSSLESS_SOF = 0xC3  # SOF3, lossless sequential (T.81 Annex H)


def syntax_of_frame(frame) -> tuple[str, str]:
    """The transfer syntax a compressed frame's own codestream says it was written in, and
    what told: (UID, reason). For Pixel Data that arrives without its Transfer Syntax UID (a
    ``pydicom.Dataset`` without File Meta Information, as a DICOM network receiver hands one).

    - JPEG 2000 family (SOC + SIZ, FF 4F FF 51, or a JP2 file's codestream): HTJ2K (.203)
      when the main header holds a CAP marker segment (T.814 A.3, FF 50), else JPEG 2000
      (.91). Never a "Lossless Only" syntax: a reversible wavelet (COD, T.800 Table A.20) whose
      quality layers were discarded is lossy, and the codestream cannot say. The same decoder
      reads all five syntaxes, so the pixels are those of the file.
    - JPEG (SOI, FF D8) by its first frame header: SOF0 Baseline, SOF1 Extended, SOF3 Lossless
      (First-Order Prediction, Selection Value 1, when the first scan's predictor Ss is 1),
      SOF55 (FF F7) JPEG-LS, lossless when the first scan's NEAR is 0 (T.87 C.2.3).
    - RLE Lossless (PS3.5 G.5): a 64-byte header of 1 to 15 segments, the first at offset 64.

    Raises ``ValueError`` saying what the frame starts with when it is none of
    these.
    """
    data = memoryview(frame)
    start = bytes(data[:12])
    if start == _JP2_SIGNATURE:
        data = _jp2_codestream(data)
        start = bytes(data[:4])
    if start[:4] == _SOC_SIZ:
        return _j2k_syntax(data)
    if start[:2] == b"\xff\xd8":
        return _jpeg_syntax(data)
    if len(data) >= 64:
        segments, first = struct.unpack_from("<2I", data)
        offsets = struct.unpack_from(f"<{min(segments, 15)}I", data, 4) if 1 <= segments <= 15 else ()
        if offsets and first == 64 and list(offsets) == sorted(set(offsets)) and offsets[-1] < len(data):
            return str(dicom_uid.RLELossless), f"an RLE header of {segments} segment(s) (PS3.5 G.5)"
    raise ValueError(f"its first fragment starts with {bytes(data[:8]).hex(' ').upper() or 'nothing'}, the "
                     "start of no codestream radedge knows (JPEG FF D8, JPEG 2000 FF 4F FF 51, RLE header)")


def _j2k_syntax(data: memoryview) -> tuple[str, str]:
    # From SIZ (after the two-byte SOC) through the main header's marker segments to the first tile.
    position, cap, reversible = 2, False, None
    while position + 4 <= len(data):
        marker, length = data[position + 1], struct.unpack_from(">H", data, position + 2)[0]
        if data[position] != 0xFF or marker == _J2K_SOT or length < 2:
            break
        if marker == _J2K_CAP:
            cap = True
        elif marker == _J2K_COD and position + 4 + 10 <= len(data):
            # Lcod, Scod, SGcod (progression, layers x2, MCT), SPcod (levels, xcb, ycb, style, wavelet).
            reversible = data[position + 13] == 1
        position += 2 + length
    if reversible is None:
        raise ValueError("its JPEG 2000 main header has no COD marker segment before the first tile")
    wavelet = "5-3 reversible" if reversible else "9-7 irreversible"
    # The general syntax, never a "Lossless" one: a reversible wavelet with discarded layers is
    # lossy, and the codestream does not say whether layers were discarded.
    if cap:
        return str(dicom_uid.HTJ2K), f"an HTJ2K codestream (CAP marker) with the {wavelet} wavelet"
    return str(dicom_uid.JPEG2000), f"a JPEG 2000 codestream (SOC, SIZ) with the {wavelet} wavelet"


def _jpeg_syntax(data: memoryview) -> tuple[str, str]:
    """The syntax of a JPEG / JPEG-LS stream, from its first SOFn and first SOS (T.81 B.1.1.2)."""
    position, frame_marker = 2, None
    while position < len(data):
        while position < len(data) and data[position] != 0xFF:
            position += 1
        while position < len(data) and data[position] == 0xFF:
            position += 1
        if position + 3 > len(data):
            break
        marker = data[position]
        position += 1
        if marker in _STANDALONE:
            continue
        (length,) = struct.unpack_from(">H", data, position)
        if frame_marker is None and (marker in JPEG_SOF_MARKERS or marker == _JPEG_LS_SOF):
            frame_marker = marker
        if marker == _SOS:
            if frame_marker is None or position + length > len(data) or length < 6:
                break
            components = data[position + 2]
            first_parameter = data[position + 3 + 2 * components]  # Ss (T.81) or NEAR (T.87)
            if frame_marker == _JPEG_LS_SOF:
                if first_parameter == 0:
                    return str(dicom_uid.JPEGLSLossless), "a JPEG-LS frame (SOF55) with NEAR 0"
                return (str(dicom_uid.JPEGLSNearLossless),
                        f"a JPEG-LS frame (SOF55) with NEAR {first_parameter}")
            if frame_marker == _JPEG_LOSSLESS_SOF:
                if first_parameter == 1:
                    return str(dicom_uid.JPEGLosslessSV1), "a lossless JPEG frame (SOF3) with predictor 1"
                return str(dicom_uid.JPEGLossless), f"a lossless JPEG frame (SOF3) with predictor {first_parameter}"
            if frame_marker in _JPEG_SOF_SYNTAXES:
                return (str(_JPEG_SOF_SYNTAXES[frame_marker]),
                        f"a JPEG frame header SOF{frame_marker - 0xC0}")
            raise ValueError(f"it is a JPEG stream of frame type SOF{frame_marker - 0xC0}, which no DICOM "
                             "transfer syntax radedge decodes uses")
        position += length
    raise ValueError("it starts like a JPEG stream (FF D8) but has no frame header and scan radedge can read")
