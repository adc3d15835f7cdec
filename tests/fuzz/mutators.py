"""Structure-aware mutations of the fuzz seeds: ``generate(seeds, master_seed, case)`` makes one case.

A case picks a seed by weight and stacks one to three mutations. Each mutation is described
as ``"<family> <what it did>"`` (``family()`` reads the family back); the families are:

- DICOM data set, edited through pydicom with every value written as raw bytes, so values
  pydicom would refuse to encode are in reach: ``header`` (Image Pixel module), ``lut``
  (Modality and VOI LUT Sequences, PS3.3 C.11.1 / C.11.2), ``window`` (Window Center / Width,
  VOI LUT Function), ``rescale``, ``padding`` (Pixel Padding Value / Range Limit),
  ``spacing`` (Pixel Spacing, Imager Pixel Spacing, magnification), ``identity`` (SOP Class,
  Modality, Body Part, character set).
- DICOM bytes: ``syntax`` (File Meta group: Transfer Syntax UID, group length), ``nesting``
  (sequences nested up to 2000 deep, items never closed), ``elements`` (up to 100 001
  elements or items), ``fragments`` (encapsulated Pixel Data items and the Basic Offset
  Table, PS3.5 A.4), ``codestream`` (JPEG 2000 SIZ / COD / SOT, JPEG SOFn / DHT / DQT / SOS,
  JPEG-LS SOF55 / LSE, the RLE header), ``deflate`` (deflated data sets that inflate about
  1000:1).
- PNG, JPEG and TIFF: ``raster`` (IHDR and chunks, SOFn / DHT / DQT / SOS, IFD entries).
- Any input: ``truncate``, ``trailing`` (bytes after the end), ``bytes`` (flips, insertions,
  deletions).

A mutation that cannot be made (pydicom cannot read or write the data set, the input has
no such structure) is replaced by a ``bytes`` mutation that says why:
``"bytes flip 3 at 17,80,912 (fallback: fragments: no encapsulated Pixel Data)"``.
``generate`` never raises, and is a pure function of its arguments: the same bytes in
every process.
"""

from __future__ import annotations

import functools
import random
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

from .seeds import Seed

#: Largest case generated, in bytes; a case that would be longer is cut to this length.
MAX_CASE_BYTES = 4 << 20

#: Most bytes appended by one ``trailing`` mutation.
MAX_TRAILING_BYTES = 2 << 20

#: A deflated data set is inflated at most this far to be mutated.
MAX_INFLATE_BYTES = 64 << 20

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

#: Odd (private) group just below Pixel Data (7FE0): elements spliced in here sort last
#: before Pixel Data, as a writer would have put them.
PRIVATE_GROUP = 0x7FDF
PRIVATE_CREATOR = b"RADEDGE FUZZ"

_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_ITEM, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD
_UNDEFINED = 0xFFFFFFFF


@dataclass(frozen=True)
class Case:
    """One generated input: ``data`` is ``seed`` (a ``Seed.name``) after ``mutations``,
    in the order they were applied."""

    case: int
    seed: str
    mutations: tuple[str, ...]
    data: bytes


class NotApplicable(Exception):
    """The mutation needs a structure the input does not have; the message says which."""


def family(mutation: str) -> str:
    """The family of a mutation description: its first word."""
    return mutation.split(" ", 1)[0]


def generate(seeds: list[Seed], master_seed: int, case: int) -> Case:
    """Case number ``case`` of the campaign ``master_seed``: a seed picked by weight and
    1-3 mutations, all drawn from ``random.Random(f"{master_seed}:{case}")``."""
    rng = random.Random(f"{master_seed}:{case}")
    seed = rng.choices(seeds, weights=[s.weight for s in seeds])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data, mutations = _mutate(rng, seed)
        except Exception as error:  # noqa: BLE001 - generate never raises; the fallback says why
            data, mutation = _fallback(rng, seed.data, seed.kind, "generate", error)
            mutations = [mutation]
    if len(data) > MAX_CASE_BYTES:
        mutations.append(f"truncate at {MAX_CASE_BYTES} of {len(data)} (size cap)")
        data = data[:MAX_CASE_BYTES]
    return Case(case, seed.name, tuple(mutations), data)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Family:
    phase: int  # 0: data set through pydicom; 1: bytes, structure-aware; 2: raw bytes
    weight: float
    applies: Callable[[str, bytes], bool]


def _is_dicom(kind: str, data: bytes) -> bool:
    return kind == "dicom"


def _is_raster(kind: str, data: bytes) -> bool:
    return kind in ("png", "jpeg", "tiff")


def _is_encapsulated(kind: str, data: bytes) -> bool:
    return kind == "dicom" and _encapsulated_header(data) is not None


def _is_deflatable(kind: str, data: bytes) -> bool:
    if kind != "dicom":
        return False
    layout = _layout(data)
    return layout.meta_end > 0 and layout.transfer_syntax in (DEFLATED_LE, EXPLICIT_VR_LE)


def _anything(kind: str, data: bytes) -> bool:
    return True


_FAMILIES: dict[str, _Family] = {
    "header": _Family(0, 4, _is_dicom),
    "lut": _Family(0, 3, _is_dicom),
    "window": _Family(0, 3, _is_dicom),
    "rescale": _Family(0, 2, _is_dicom),
    "padding": _Family(0, 1.5, _is_dicom),
    "spacing": _Family(0, 2, _is_dicom),
    "identity": _Family(0, 1, _is_dicom),
    "nesting": _Family(1, 2, _is_dicom),
    "elements": _Family(1, 1, _is_dicom),
    "deflate": _Family(1, 2, _is_deflatable),
    "syntax": _Family(1, 3, _is_dicom),
    "fragments": _Family(1, 3, _is_encapsulated),
    "codestream": _Family(1, 4, _is_encapsulated),
    "raster": _Family(1, 8, _is_raster),
    "truncate": _Family(2, 2.5, _anything),
    "trailing": _Family(2, 1.5, _anything),
    "bytes": _Family(2, 2.5, _anything),
}

#: Every family name, in the order they are applied when stacked.
FAMILIES = tuple(_FAMILIES)

#: The families that edit the data set through pydicom (read once, written once per case).
DATASET_FAMILIES = tuple(name for name, spec in _FAMILIES.items() if spec.phase == 0)


def _mutate(rng: random.Random, seed: Seed) -> tuple[bytes, list[str]]:
    names = [name for name, spec in _FAMILIES.items() if spec.applies(seed.kind, seed.data)]
    count = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
    chosen = rng.choices(names, weights=[_FAMILIES[name].weight for name in names], k=count)
    chosen.sort(key=lambda name: (_FAMILIES[name].phase, FAMILIES.index(name)))
    data = seed.data
    mutations: list[str] = []
    in_dataset = [name for name in chosen if _FAMILIES[name].phase == 0]
    if in_dataset:
        data, done = _mutate_dataset(rng, data, in_dataset)
        mutations.extend(done)
    for name in chosen[len(in_dataset):]:
        try:
            data, mutation = _BYTE_MUTATORS[name](rng, data, seed.kind)
        except Exception as error:  # noqa: BLE001 - any failure falls back to a byte mutation
            data, mutation = _fallback(rng, data, seed.kind, name, error)
        mutations.append(mutation)
    return data, mutations


def _fallback(rng: random.Random, data: bytes, kind: str, name: str, error: BaseException) -> tuple[bytes, str]:
    why = str(error) if isinstance(error, NotApplicable) else f"{type(error).__name__}: {error}"
    why = " ".join((why.splitlines() or [""])[0].split())[:100]
    data, mutation = _bytes(rng, data, kind)
    return data, f"{mutation} (fallback: {name}: {why})"


# --------------------------------------------------------------------------- DICOM byte layout


@dataclass(frozen=True)
class _Layout:
    """Where a DICOM file's data set starts and how it is encoded, read from its bytes."""

    meta_end: int  # 0 without a preamble and File Meta group
    transfer_syntax: str | None
    implicit_vr: bool
    little_endian: bool

    @property
    def deflated(self) -> bool:
        return self.transfer_syntax == DEFLATED_LE


def _meta_elements(data: bytes) -> tuple[list[tuple[int, str, bytes]], int] | None:
    """The File Meta elements (tag, VR, value) after the preamble and ``DICM``, and where
    they end; None without ``DICM`` at byte 128."""
    if data[128:132] != b"DICM":
        return None
    elements = []
    position = 132
    while position + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, position)
        if group != 0x0002:
            break
        vr = data[position + 4:position + 6].decode("latin-1")
        if vr in _LONG_VRS:
            if position + 12 > len(data):
                break
            (length,) = struct.unpack_from("<I", data, position + 8)
            value_at = position + 12
        else:
            (length,) = struct.unpack_from("<H", data, position + 6)
            value_at = position + 8
        elements.append(((group << 16) | element, vr, data[value_at:value_at + length]))
        position = min(value_at + length, len(data))
    return elements, position


def _encode_meta(preamble: bytes, elements: list[tuple[int, str, bytes]]) -> bytes:
    """Preamble, ``DICM`` and the elements, (0002,0000) recomputed when present."""
    body = b"".join(_element(tag, vr, value, False, True) for tag, vr, value in elements if tag != 0x00020000)
    if any(tag == 0x00020000 for tag, _, _ in elements):
        body = _element(0x00020000, "UL", struct.pack("<I", len(body)), False, True) + body
    return preamble + b"DICM" + body


def _uid_text(value: bytes) -> str:
    return value.rstrip(b"\x00 ").decode("latin-1")


def _layout(data: bytes) -> _Layout:
    meta = _meta_elements(data)
    if meta is None:
        # pydicom's guesses for a data set without File Meta: the VR bytes of the first element
        # (filereader._is_implicit_vr), the byte order from its group number.
        implicit = len(data) < 6 or not (0x40 < data[4] < 0x5B and 0x40 < data[5] < 0x5B)
        little = not (len(data) >= 2 and data[0] == 0 and data[1] != 0)
        return _Layout(0, None, implicit, little)
    elements, end = meta
    syntax = next((_uid_text(value) for tag, _, value in elements if tag == 0x00020010), None)
    return _Layout(end, syntax, syntax == IMPLICIT_VR_LE, syntax != EXPLICIT_VR_BE)


def _data_set(data: bytes, layout: _Layout) -> bytes:
    """The data set's bytes, inflated if the file is deflated."""
    body = data[layout.meta_end:]
    if not layout.deflated:
        return body
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, MAX_INFLATE_BYTES)
    except zlib.error as error:
        raise NotApplicable(f"the deflated data set does not inflate ({error})") from None
    if inflater.unconsumed_tail:
        raise NotApplicable(f"the deflated data set inflates past {MAX_INFLATE_BYTES} bytes")
    return inflated


def _with_data_set(data: bytes, layout: _Layout, body: bytes) -> bytes:
    if layout.deflated:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = compressor.compress(body) + compressor.flush()
    return data[:layout.meta_end] + body


def _element(tag: int, vr: str, value: bytes, implicit: bool, little: bool, length: int | None = None) -> bytes:
    """One data element, header and value (PS3.5 7.1); ``length`` overrides the length field."""
    order = "<" if little else ">"
    length = len(value) if length is None else length
    group, element = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack(order + "HHI", group, element, length) + value
    if vr in _LONG_VRS:
        return struct.pack(order + "HH2sHI", group, element, vr.encode(), 0, length) + value
    return struct.pack(order + "HH2sH", group, element, vr.encode(), length & 0xFFFF) + value


def _item(value: bytes, little: bool, length: int | None = None) -> bytes:
    order = "<" if little else ">"
    return struct.pack(order + "HHI", 0xFFFE, _ITEM, len(value) if length is None else length) + value


def _delimiter(element: int, little: bool) -> bytes:
    return struct.pack("<HHI" if little else ">HHI", 0xFFFE, element, 0)


def _pixel_data_at(body: bytes, implicit: bool, little: bool) -> int | None:
    """Offset of the top-level Pixel Data element in a data set's bytes: the first
    (7FE0,0010) tag whose VR (explicit) or length (implicit) fits one."""
    tag = b"\xe0\x7f\x10\x00" if little else b"\x7f\xe0\x00\x10"
    order = "<" if little else ">"
    at = body.find(tag)
    while at >= 0:
        if implicit:
            if at + 8 <= len(body):
                (length,) = struct.unpack_from(order + "I", body, at + 4)
                if length == _UNDEFINED or at + 8 + length <= len(body):
                    return at
        elif body[at + 4:at + 6] in (b"OB", b"OW", b"UN"):
            return at
        at = body.find(tag, at + 1)
    return None


def insert_before_pixel_data(data: bytes, make: Callable[[bool, bool], bytes]) -> bytes:
    """The file with ``make(implicit, little)`` spliced in before Pixel Data (at the end of
    the data set if it has none), inside the deflated stream for a deflated file."""
    layout = _layout(data)
    body = _data_set(data, layout)
    at = _pixel_data_at(body, layout.implicit_vr, layout.little_endian)
    at = len(body) if at is None else at
    body = body[:at] + make(layout.implicit_vr, layout.little_endian) + body[at:]
    return _with_data_set(data, layout, body)


# --------------------------------------------------------------------------- data set (pydicom)


def _pack(vr: str, value, little: bool) -> bytes:
    """``value`` encoded as ``vr``: integers (or lists) as US / SS / UL, text as given,
    padded to even length (UI with NUL, other text with a space)."""
    order = "<" if little else ">"
    if vr in ("US", "SS", "UL", "SL"):
        code = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}[vr]
        values = value if isinstance(value, (list, tuple)) else [value]
        bits = 16 if vr in ("US", "SS") else 32
        masked = [int(v) & ((1 << bits) - 1) for v in values]
        return struct.pack(order + code.upper() * len(masked), *masked)
    raw = value if isinstance(value, bytes) else str(value).encode("latin-1")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def _current_int(ds, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword)
        return default if value is None else int(value)
    except Exception:  # noqa: BLE001 - a seed's own value may already be garbage
        return default


def _different(rng: random.Random, candidates, current):
    """A candidate other than ``current`` when there is one."""
    others = [value for value in candidates if value != current]
    return rng.choice(others or list(candidates))


_Edit = tuple[int, str | None, bytes | None]  # tag, VR, value; VR None deletes the element


def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


def _header_values(keyword: str, ds) -> tuple[str, list]:
    bits_allocated = _current_int(ds, "BitsAllocated", 16)
    bits_stored = _current_int(ds, "BitsStored", 12)
    if keyword in ("Rows", "Columns"):
        current = _current_int(ds, keyword, 256)
        return "US", [0, 1, 2, 65535, 32769, current + 1, max(current - 1, 0)]
    return {
        "BitsAllocated": ("US", [0, 1, 7, 8, 12, 16, 32, 64]),
        "BitsStored": ("US", [0, 1, 8, 12, 16, bits_allocated + 1, 17, 33, 255]),
        "HighBit": ("US", [0, bits_stored, max(bits_stored - 2, 0), bits_allocated, 15, 31, 255]),
        "PixelRepresentation": ("US", [0, 1, 2, 65535]),
        "SamplesPerPixel": ("US", [0, 1, 2, 3, 4]),
        "PhotometricInterpretation": ("CS", ["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL",
                                             "YBR_FULL_422", "YBR_RCT", "GARBAGE", "", "monochrome2",
                                             "MONOCHROME2\\MONOCHROME1"]),
        "PlanarConfiguration": ("US", [0, 1, 2, 65535]),
        "NumberOfFrames": ("IS", ["0", "2", "-1", "2147483647", "99999999999", "1.5", "", "abc"]),
    }[keyword]


_HEADER_KEYWORDS = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames")


def _header(rng: random.Random, ds, little: bool) -> tuple[list[_Edit], str]:
    keywords = rng.sample(_HEADER_KEYWORDS, rng.choices((1, 2, 3), weights=(6, 2, 1))[0])
    edits, said = [], []
    for keyword in keywords:
        if rng.random() < 0.08:
            edits.append((_tag(keyword), None, None))
            said.append(f"del {keyword}")
            continue
        vr, candidates = _header_values(keyword, ds)
        current = _current_int(ds, keyword, -1) if vr == "US" else str(ds.get(keyword, ""))
        value = _different(rng, candidates, current)
        edits.append((_tag(keyword), vr, _pack(vr, value, little)))
        said.append(f"{keyword}={value}")
    return edits, "header " + " ".join(said)


def _text_edits(rng: random.Random, ds, little: bool, choices: dict[str, tuple[str, list[str]]],
                name: str) -> tuple[list[_Edit], str]:
    """Set 1 to 3 of ``choices`` (keyword -> (VR, candidate values)) to one of their values."""
    keywords = rng.sample(list(choices), min(len(choices), rng.choices((1, 2, 3), weights=(4, 3, 1))[0]))
    edits, said = [], []
    for keyword in sorted(keywords, key=list(choices).index):
        vr, candidates = choices[keyword]
        value = _different(rng, candidates, str(ds.get(keyword, "")))
        edits.append((_tag(keyword), vr, _pack(vr, value, little)))
        shown = f"{value[:16]}... ({len(value)} characters)" if len(value) > 40 else value
        said.append(f"{keyword}={shown!r}" if value == "" or value != value.strip() else f"{keyword}={shown}")
    return edits, f"{name} " + " ".join(said)


_DS_NUMBERS = ["0", "1", "-1", "0.5", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e-308", "5e-324", "1e400",
               "abc", "", "65536"]
_WINDOW = {
    "WindowCenter": ("DS", _DS_NUMBERS + ["-4096", "2048", "40\\400", "1\\2\\3"]),
    "WindowWidth": ("DS", _DS_NUMBERS + ["4096", "-4096", "400\\1", "1\\2\\3"]),
    "VOILUTFunction": ("CS", ["LINEAR", "LINEAR_EXACT", "SIGMOID", "GARBAGE", "", "sigmoid"]),
    "WindowCenterWidthExplanation": ("LO", ["A\\B\\C", "", "SOFT"]),
}
_RESCALE = {
    "RescaleSlope": ("DS", ["0", "nan", "inf", "-inf", "5e-324", "1e308", "-1", "x", "", "-1e308", "1e-308",
                            "65536", "1\\2", "-0", "0.0000001"]),
    "RescaleIntercept": ("DS", ["0", "nan", "inf", "-inf", "1e308", "-1e308", "-1024", "x", "", "5e-324", "1\\2",
                                "2147483648"]),
    "RescaleType": ("LO", ["HU", "US", "OD", "", "GARBAGE", "MGML"]),
}
_SPACING_PAIRS = ["0\\0", "-0.1\\0.1", "nan\\nan", "inf\\0.1", "1e308\\1e308", "1e-308\\1e-308", "0.1",
                  "0.1\\0.1\\0.1", "a\\b", "", "0.1\\0", "5e-324\\5e-324", "0.143\\0.143"]
_SPACING = {
    "PixelSpacing": ("DS", _SPACING_PAIRS),
    "ImagerPixelSpacing": ("DS", _SPACING_PAIRS),
    "NominalScannedPixelSpacing": ("DS", _SPACING_PAIRS),
    "EstimatedRadiographicMagnificationFactor": ("DS", ["0", "nan", "inf", "1e-308", "-1", "1e308", "abc", "",
                                                        "1\\2"]),
    "PixelSpacingCalibrationType": ("CS", ["GEOMETRY", "FIDUCIAL", "GARBAGE", ""]),
}
_IDENTITY = {
    "SOPClassUID": ("UI", ["", "1.2.3", "NOT.A.UID", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.104.1",
                           "1." * 40 + "1", "\xff\xfe"]),
    "Modality": ("CS", ["", "CT", "MR", "XX", "DX\\CR", "\x00\x00"]),
    "BodyPartExamined": ("CS", ["", "SKULL", "GARBAGE", "\xc4\xd6", "X" * 10000]),
    "SpecificCharacterSet": ("CS", ["ISO_IR 999", "ISO_IR 192", "\\ISO 2022 IR 87", "GARBAGE", ""]),
    "PresentationIntentType": ("CS", ["FOR PROCESSING", "FOR PRESENTATION", "", "GARBAGE"]),
    "ViewPosition": ("CS", ["", "AP", "LL", "GARBAGE"]),
}


def _window(rng: random.Random, ds, little: bool) -> tuple[list[_Edit], str]:
    return _text_edits(rng, ds, little, _WINDOW, "window")


def _rescale(rng: random.Random, ds, little: bool) -> tuple[list[_Edit], str]:
    return _text_edits(rng, ds, little, _RESCALE, "rescale")


def _spacing(rng: random.Random, ds, little: bool) -> tuple[list[_Edit], str]:
    return _text_edits(rng, ds, little, _SPACING, "spacing")


def _identity(rng: random.Random, ds, little: bool) -> tuple[list[_Edit], str]:
    return _text_edits(rng, ds, little, _IDENTITY, "identity")


def _padding(rng: random.Random, ds, little: bool) -> tuple[list[_Edit], str]:
    """Pixel Padding Value and Range Limit (PS3.3 C.7.5.1.1.2), as US or as SS whatever the
    Pixel Representation says, up to a range that covers every stored value."""
    vr = rng.choice(("US", "SS"))
    values = [0, 65535, 32767, 32768, 4095, 1] if vr == "US" else [0, -1, -32768, 32767, -2048, -1024]
    value_tag, limit_tag = _tag("PixelPaddingValue"), _tag("PixelPaddingRangeLimit")
    draw = rng.random()
    if draw < 0.25:
        low, high = (0, 65535) if vr == "US" else (-32768, 32767)
        return ([(value_tag, vr, _pack(vr, low, little)), (limit_tag, vr, _pack(vr, high, little))],
                f"padding PixelPaddingValue={vr} {low} PixelPaddingRangeLimit={vr} {high} (every value)")
    if draw < 0.35:
        pair = [rng.choice(values), rng.choice(values)]
        return [(value_tag, vr, _pack(vr, pair, little))], f"padding PixelPaddingValue={vr} {pair} (two values)"
    value = rng.choice(values)
    edits = [(value_tag, vr, _pack(vr, value, little))]
    said = f"padding PixelPaddingValue={vr} {value}"
    if draw < 0.7:
        limit = rng.choice(values)
        edits.append((limit_tag, vr, _pack(vr, limit, little)))
        said += f" PixelPaddingRangeLimit={vr} {limit}"
    return edits, said


def _existing_lut_data(ds, sequence_tag: int) -> bytes | None:
    """The LUT Data bytes of the first item of an existing LUT sequence, if any."""
    try:
        item = ds[sequence_tag].value[0]
        value = item[0x00283006].value
    except Exception:  # noqa: BLE001 - absent or unreadable: make a new table instead
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (list, tuple)):
        return struct.pack(f"<{len(value)}H", *(int(v) & 0xFFFF for v in value))
    return None


def _lut(rng: random.Random, ds, little: bool) -> tuple[list[_Edit], str]:
    """A Modality or VOI LUT Sequence (PS3.3 C.11.1, C.11.2) of 0 to 3 items, each with a
    LUT Descriptor (entries, first mapped, bits; US or SS) and LUT Data that agree or not."""
    implicit = _encoding(ds)[0]
    name, sequence_tag = rng.choice((("ModalityLUTSequence", 0x00283000), ("VOILUTSequence", 0x00283010)))
    existing = _existing_lut_data(ds, sequence_tag)
    order = "<" if little else ">"
    items, said = [], []
    for _ in range(rng.choices((0, 1, 2, 3), weights=(1, 6, 2, 1))[0]):
        entries = rng.choice((0, 1, 2, 256, 4096, 65535, 4096))  # 0 means 65536 (PS3.3 C.11.1.1.1)
        first_mapped = rng.choice((0, -1, -32768, 32767, 65535, -1024, 0))
        bits = rng.choice((0, 1, 8, 16, 17, 64, 12, 16))
        descriptor_vr = rng.choice(("US", "SS", "US"))
        descriptor = [entries, first_mapped, bits]
        shape = rng.choice(("described", "described", "shorter", "longer", "empty", "odd", "two values"))
        count = entries or 65536
        if shape == "two values":
            descriptor = descriptor[:2]
        if existing is not None and rng.random() < 0.5:
            data = existing
            shape = "existing"
        else:
            count = {"shorter": count // 2, "longer": count + 7, "empty": 0}.get(shape, count)
            top = (1 << min(max(bits, 1), 16)) - 1
            ramp = rng.random() < 0.5
            values = [(i * top // max(count - 1, 1)) if ramp else rng.randrange(top + 1) for i in range(count)]
            data = struct.pack(f"{order}{count}H", *values)
            if shape == "odd":
                data = data[:-1] if data else b"\x00"
        data_vr = "OW" if len(data) > 65534 or rng.random() < 0.3 else "US"
        packed = _pack(descriptor_vr, descriptor, little)
        descriptor = list(struct.unpack(f"{order}{len(descriptor)}{'H' if descriptor_vr == 'US' else 'h'}", packed))
        elements = _element(0x00283002, descriptor_vr, packed, implicit, little)
        if sequence_tag == 0x00283000 and rng.random() < 0.5:
            elements += _element(0x00283004, "LO", _pack("LO", rng.choice(("HU", "OD", "", "GARBAGE")), little),
                                 implicit, little)
        elements += _element(0x00283006, data_vr, data, implicit, little)
        items.append(_item(elements, little))
        said.append(f"[{descriptor_vr} {descriptor} data={shape} {len(data)} bytes {data_vr}]")
    return [(sequence_tag, "SQ", b"".join(items))], f"lut {name} items={len(items)} " + " ".join(said)


_DATASET_MUTATORS: dict[str, Callable[[random.Random, object, bool], tuple[list[_Edit], str]]] = {
    "header": _header,
    "lut": _lut,
    "window": _window,
    "rescale": _rescale,
    "padding": _padding,
    "spacing": _spacing,
    "identity": _identity,
}


def dataset_with(data: bytes, edits: list[_Edit]) -> bytes:
    """The DICOM file ``data`` read by pydicom, with ``edits`` made (tag, VR, raw value
    bytes in the data set's encoding; VR None deletes), written back in its own encoding."""
    import pydicom

    ds = pydicom.dcmread(BytesIO(data), force=True)
    implicit, little = _encoding(ds)
    _apply(ds, edits, implicit, little)
    return _write(ds, implicit, little)


def _encoding(ds) -> tuple[bool, bool]:
    implicit, little = ds.original_encoding
    return implicit is True, little is not False


def _apply(ds, edits: list[_Edit], implicit: bool, little: bool) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    for tag, vr, value in edits:
        if vr is None:
            if tag in ds:
                del ds[tag]
        else:
            ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, implicit, little, True, False)


def _write(ds, implicit: bool, little: bool) -> bytes:
    import pydicom

    buffer = BytesIO()
    if "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
        pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    else:
        pydicom.dcmwrite(buffer, ds, enforce_file_format=False, implicit_vr=implicit, little_endian=little)
    return buffer.getvalue()


def _mutate_dataset(rng: random.Random, data: bytes, names: list[str]) -> tuple[bytes, list[str]]:
    """Read the data set once, make every mutation in ``names``, write it once. When
    pydicom cannot read or write it, each mutation falls back to a byte mutation."""
    import pydicom

    try:
        ds = pydicom.dcmread(BytesIO(data), force=True)
        implicit, little = _encoding(ds)
    except Exception as error:  # noqa: BLE001 - unreadable: every mutation falls back
        return _all_fall_back(rng, data, names, error)
    planned, failed = [], []
    for name in names:
        try:
            edits, mutation = _DATASET_MUTATORS[name](rng, ds, little)
            _apply(ds, edits, implicit, little)
            planned.append(mutation)
        except Exception as error:  # noqa: BLE001 - this mutation falls back alone
            failed.append((name, error))
    try:
        written = _write(ds, implicit, little) if planned else data
    except Exception as error:  # noqa: BLE001 - pydicom would not write it
        return _all_fall_back(rng, data, names, error)
    mutations = list(planned)
    for name, error in failed:
        written, mutation = _fallback(rng, written, "dicom", name, error)
        mutations.append(mutation)
    return written, mutations


def _all_fall_back(rng: random.Random, data: bytes, names: list[str], error: BaseException) -> tuple[bytes, list[str]]:
    mutations = []
    for name in names:
        data, mutation = _fallback(rng, data, "dicom", name, error)
        mutations.append(mutation)
    return data, mutations


# --------------------------------------------------------------------------- syntax (File Meta)

_NATIVE_SYNTAXES = (IMPLICIT_VR_LE, EXPLICIT_VR_LE, DEFLATED_LE, EXPLICIT_VR_BE)


@functools.cache
def _known_syntaxes() -> tuple[str, ...]:
    from pydicom.uid import AllTransferSyntaxes, PrivateTransferSyntaxes

    extra = ("1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.201",
             "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203", "1.2.3.4")
    return tuple(dict.fromkeys([*AllTransferSyntaxes, *PrivateTransferSyntaxes, *extra]))


def with_transfer_syntax(data: bytes, syntax: str) -> bytes:
    """The file with its (0002,0010) Transfer Syntax UID set to ``syntax`` (bytes of the
    data set unchanged); File Meta Information Group Length recomputed."""
    meta = _meta_elements(data)
    if meta is None:
        raise NotApplicable("no File Meta group")
    elements, end = meta
    value = _pack("UI", syntax, True)
    elements = [(tag, vr, value if tag == 0x00020010 else old) for tag, vr, old in elements]
    if all(tag != 0x00020010 for tag, _, _ in elements):
        elements.append((0x00020010, "UI", value))
    return _encode_meta(data[:128], elements) + data[end:]


def _syntax(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    meta = _meta_elements(data)
    if meta is None:
        syntax = rng.choice((IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, "1.2.3.4"))
        elements = [(0x00020000, "UL", b""), (0x00020001, "OB", b"\x00\x01"),
                    (0x00020002, "UI", _pack("UI", "1.2.840.10008.5.1.4.1.1.7", True)),
                    (0x00020003, "UI", _pack("UI", "1.2.3.4.5", True)), (0x00020010, "UI", _pack("UI", syntax, True))]
        return _encode_meta(bytes(128), elements) + data, f"syntax meta added {syntax}"
    elements, end = meta
    current = _layout(data).transfer_syntax
    draw = rng.random()
    if draw < 0.75:
        encapsulated = _encapsulated_header(data) is not None
        if rng.random() < 0.4:
            pool = _NATIVE_SYNTAXES if encapsulated else [s for s in _known_syntaxes() if s not in _NATIVE_SYNTAXES]
        else:
            pool = list(_known_syntaxes()) + ["", "abc", "1.2.840.10008.1.2.1\\1.2.840.10008.1.2", "9" * 70]
        syntax = _different(rng, pool, current)
        return with_transfer_syntax(data, syntax), f"syntax {current} -> {syntax or repr(syntax)}"
    if draw < 0.9:
        length = rng.choice((0, 1, 2, 0xFFFFFFFF, 0x7FFFFFFF, end - 144 + 2, end - 144 - 2))
        rest = [(tag, vr, value) for tag, vr, value in elements if tag != 0x00020000]
        body = b"".join(_element(tag, vr, value, False, True) for tag, vr, value in rest)
        header = _element(0x00020000, "UL", struct.pack("<I", length & 0xFFFFFFFF), False, True)
        return data[:128] + b"DICM" + header + body + data[end:], f"syntax meta group length {length & 0xFFFFFFFF}"
    if rng.random() < 0.5:
        rest = [(tag, vr, value) for tag, vr, value in elements if tag != 0x00020010]
        return _encode_meta(data[:128], rest) + data[end:], "syntax meta TransferSyntaxUID removed"
    return data[end:], "syntax meta removed (raw data set)"


# --------------------------------------------------------------------------- nesting, elements


def nested_sequences(depth: int, implicit: bool, little: bool, *, closed: bool = True,
                     defined_length: bool = False) -> bytes:
    """A private creator and a private sequence (7FDF,1010) nested ``depth`` deep, each
    level one item holding the next, the innermost an LO element.

    Undefined lengths closed by delimitation items (PS3.5 7.5.2); ``closed=False`` leaves
    every item and sequence open, so whatever follows is read into the innermost item;
    ``defined_length`` gives every sequence and item its length instead.
    """
    sequence_tag = (PRIVATE_GROUP << 16) | 0x1010
    creator = _element((PRIVATE_GROUP << 16) | 0x0010, "LO", PRIVATE_CREATOR, implicit, little)
    leaf = _element((PRIVATE_GROUP << 16) | 0x1011, "LO", b"leaf", implicit, little)
    if defined_length:
        level = len(_element(sequence_tag, "SQ", b"", implicit, little)) + 8
        parts = []
        for index in range(depth):
            item_length = len(leaf) + level * (depth - 1 - index)
            parts.append(_element(sequence_tag, "SQ", b"", implicit, little, length=item_length + 8)
                         + _item(b"", little, length=item_length))
        return creator + b"".join(parts) + leaf
    opening = _element(sequence_tag, "SQ", b"", implicit, little, length=_UNDEFINED) + _item(b"", little, _UNDEFINED)
    if not closed:
        return creator + opening * depth + leaf
    closing = _delimiter(_ITEM_END, little) + _delimiter(_SEQUENCE_END, little)
    return creator + opening * depth + leaf + closing * depth


def nest_sequences(data: bytes, depth: int, *, closed: bool = True, defined_length: bool = False) -> bytes:
    """The DICOM file with ``nested_sequences(depth, ...)`` spliced in before Pixel Data,
    in the file's own encoding (inside the deflated stream of a deflated file)."""
    return insert_before_pixel_data(
        data, lambda implicit, little: nested_sequences(depth, implicit, little, closed=closed,
                                                        defined_length=defined_length))


def _nesting(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    depth = rng.choice((1, 8, 33, 300, 2000))
    draw = rng.random()
    if draw < 0.2:
        return nest_sequences(data, depth, closed=False), f"nesting depth={depth} never closed"
    if draw < 0.35 and depth <= 300:
        return nest_sequences(data, depth, defined_length=True), f"nesting depth={depth} defined lengths"
    return nest_sequences(data, depth), f"nesting depth={depth} undefined lengths"


def many_elements(count: int, implicit: bool, little: bool) -> bytes:
    """``count`` empty private LO elements in ascending tag order, with the private
    creators that reserve their blocks, in groups 7FD9 to 7FDF."""
    parts = []
    left = count
    for group in (0x7FD9, 0x7FDB, 0x7FDD, 0x7FDF):
        if left <= 0:
            break
        blocks = min(0xF0, -(-left // 256))
        for block in range(blocks):
            parts.append(_element((group << 16) | (0x10 + block), "LO", PRIVATE_CREATOR, implicit, little))
        in_group = min(left, blocks * 256)
        header = _element(0, "LO", b"", implicit, little)
        order = "<" if little else ">"
        for index in range(in_group):
            parts.append(struct.pack(order + "HH", group, 0x1000 + index) + header[4:])
        left -= in_group
    return b"".join(parts)


def _elements(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    count = rng.choice((1000, 50000, 100001))
    if rng.random() < 0.6:
        return (insert_before_pixel_data(data, lambda implicit, little: many_elements(count, implicit, little)),
                f"elements {count} private elements")

    def sequence(implicit: bool, little: bool) -> bytes:
        creator = _element((PRIVATE_GROUP << 16) | 0x0010, "LO", PRIVATE_CREATOR, implicit, little)
        items = _item(b"", little) * count
        return creator + _element((PRIVATE_GROUP << 16) | 0x1010, "SQ", items, implicit, little)

    return insert_before_pixel_data(data, sequence), f"elements sequence of {count} empty items"


# --------------------------------------------------------------------------- deflate


@functools.cache
def _deflated_zeros_block() -> bytes:
    """1 MiB of zeros, raw-deflated and ended by a full flush: copies of it inflate to
    copies of the zeros, about 1000:1, whatever precedes them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)


def deflate_bomb(data: bytes, mebibytes: int, *, after_pixel_data: bool = False) -> bytes:
    """The file as Deflated Explicit VR Little Endian (PS3.5 A.5) with a private OB element
    of ``mebibytes`` MiB of zeros before Pixel Data, or a (7FE1,1010) one after it."""
    layout = _layout(data)
    if layout.meta_end == 0 or layout.transfer_syntax not in (DEFLATED_LE, EXPLICIT_VR_LE):
        raise NotApplicable(f"not explicit VR little endian or deflated ({layout.transfer_syntax})")
    body = _data_set(data, layout)
    if after_pixel_data:
        at, tag = len(body), 0x7FE11010
    else:
        found = _pixel_data_at(body, False, True)
        at, tag = (len(body) if found is None else found), (PRIVATE_GROUP << 16) | 0x1012
    size = mebibytes << 20
    opening = _element(tag, "OB", b"", False, True, length=size)
    if not after_pixel_data:
        opening = _element((PRIVATE_GROUP << 16) | 0x0010, "LO", PRIVATE_CREATOR, False, True) + opening
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = (compressor.compress(body[:at] + opening) + compressor.flush(zlib.Z_FULL_FLUSH)
              + _deflated_zeros_block() * mebibytes + compressor.compress(body[at:]) + compressor.flush())
    meta = data[:layout.meta_end]
    if layout.transfer_syntax != DEFLATED_LE:
        meta = with_transfer_syntax(meta, DEFLATED_LE)
    return meta + stream


def _deflate(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    layout = _layout(data)
    source = "" if layout.deflated else " (from explicit VR little endian)"
    draw = rng.random()
    if draw < 0.7:
        mebibytes = rng.choice((1, 60, 65, 512, 1600))
        after = rng.random() < 0.3
        mutated = deflate_bomb(data, mebibytes, after_pixel_data=after)
        where = "after Pixel Data" if after else "header"
        return mutated, f"deflate {where} bomb {mebibytes} MiB of zeros in {len(mutated) - len(data)} more bytes{source}"
    body = _data_set(data, layout)
    meta = data[:layout.meta_end]
    if not layout.deflated:
        meta = with_transfer_syntax(meta, DEFLATED_LE)
    if draw < 0.85:
        return meta + zlib.compress(body, 6), f"deflate zlib-wrapped stream instead of raw deflate{source}"
    level = rng.choice((0, 1, 9))
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = compressor.compress(body) + compressor.flush(zlib.Z_FULL_FLUSH)
    return meta + stream, f"deflate level {level} stream without a final block{source}"


# --------------------------------------------------------------------------- encapsulated Pixel Data


@dataclass(frozen=True)
class _Encapsulated:
    """Encapsulated Pixel Data as found in the bytes (PS3.5 A.4)."""

    element: int  # offset of the (7FE0,0010) element header
    items: tuple[bytes, ...]  # values: the Basic Offset Table, then the fragments
    item_offsets: tuple[int, ...]  # offset of each item's header
    after: int  # offset after the Sequence Delimitation Item, or after the last item read
    delimited: bool


def _encapsulated_header(data: bytes) -> int | None:
    found = [data.find(b"\xe0\x7f\x10\x00" + vr + b"\x00\x00\xff\xff\xff\xff") for vr in (b"OB", b"OW")]
    found = [at for at in found if at >= 0]
    return min(found) if found else None


def _encapsulated(data: bytes) -> _Encapsulated:
    element = _encapsulated_header(data)
    if element is None:
        raise NotApplicable("no encapsulated Pixel Data")
    position = element + 12
    items, offsets, delimited = [], [], False
    while position + 8 <= len(data) and len(items) < 400_000:
        group, tag, length = struct.unpack_from("<HHI", data, position)
        if group != 0xFFFE or (tag == _ITEM and length == _UNDEFINED):
            break
        if tag == _SEQUENCE_END:
            position += 8
            delimited = True
            break
        if tag != _ITEM:
            break
        offsets.append(position)
        items.append(data[position + 8:position + 8 + length])
        position = min(position + 8 + length, len(data))
    if not items:
        raise NotApplicable("encapsulated Pixel Data without items")
    return _Encapsulated(element, tuple(items), tuple(offsets), position, delimited)


def _with_items(data: bytes, found: _Encapsulated, items, *, delimited: bool | None = None) -> bytes:
    delimited = found.delimited if delimited is None else delimited
    return (data[:found.element + 12] + b"".join(_item(value, True) for value in items)
            + (_delimiter(_SEQUENCE_END, True) if delimited else b"") + data[found.after:])


def _fragments(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    found = _encapsulated(data)
    table, fragments = found.items[0], list(found.items[1:])
    operation = rng.choice(("split", "merge", "drop", "duplicate", "empty", "offset table", "offset table",
                            "item tag", "item length", "delimiter", "element length"))
    if operation == "merge" and len(fragments) < 2:
        operation = "split"
    if operation in ("split", "drop", "duplicate") and not fragments:
        operation = "empty"
    if operation == "split":
        index = rng.randrange(len(fragments))
        fragment = fragments[index]
        pieces = min(rng.choice((2, 3, 8, 64, 1000)), max(len(fragment), 1))
        cuts = sorted(rng.sample(range(1, len(fragment)), pieces - 1)) if len(fragment) > pieces else []
        bounds = [0, *cuts, len(fragment)]
        fragments[index:index + 1] = [fragment[a:b] for a, b in zip(bounds, bounds[1:])]
        said = f"fragments split fragment {index + 1} ({len(fragment)} bytes) into {len(bounds) - 1}"
    elif operation == "merge":
        said = f"fragments merge {len(fragments)} into 1"
        fragments = [b"".join(fragments)]
    elif operation == "drop":
        index = rng.randrange(len(fragments))
        del fragments[index]
        said = f"fragments drop fragment {index + 1} of {len(fragments) + 1}"
    elif operation == "duplicate":
        index = rng.randrange(len(fragments))
        fragments.insert(index, fragments[index])
        said = f"fragments duplicate fragment {index + 1}"
    elif operation == "empty":
        count = rng.choice((1, 16, 100001))
        index = rng.randrange(len(fragments) + 1)
        fragments[index:index] = [b""] * count
        said = f"fragments insert {count} empty at {index + 1}"
    elif operation == "offset table":
        end = len(data)
        choice = rng.choice(("past the end", "huge", "decreasing", "odd length", "many", "zeros"))
        offsets = {
            "past the end": [end + 1000], "huge": [0xFFFFFFFF], "decreasing": [max(len(fragments[0]) if fragments else 8, 8), 0],
            "many": list(range(0, 8 * 1000, 8)), "zeros": [0] * max(len(fragments), 3),
        }.get(choice, [0])
        table = struct.pack(f"<{len(offsets)}I", *offsets)
        if choice == "odd length":
            table = b"\x00\x00\x00"
        said = f"fragments Basic Offset Table {choice} ({len(table)} bytes)"
    elif operation == "item tag":
        index = rng.randrange(len(found.items))
        tag = rng.choice((0xE00D, 0xE0DD, 0x0000, 0xE001))
        group = rng.choice((0xFFFE, 0xFFFE, 0xFFFF, 0x0000))
        at = found.item_offsets[index]
        return (data[:at] + struct.pack("<HH", group, tag) + data[at + 4:],
                f"fragments item {index} tag ({group:04X},{tag:04X})")
    elif operation == "item length":
        index = rng.randrange(len(found.items))
        at = found.item_offsets[index]
        old = len(found.items[index])
        length = rng.choice((len(data) - at, len(data) + 1000, 0xFFFFFFFF, 0xFFFFFFF0, old + 1, max(old - 1, 0), 0))
        return (data[:at + 4] + struct.pack("<I", length) + data[at + 8:],
                f"fragments item {index} length {old} -> {length}")
    elif operation == "delimiter":
        if found.delimited and rng.random() < 0.6:
            return _with_items(data, found, found.items, delimited=False), "fragments sequence delimiter removed"
        at = found.after - 8 if found.delimited else found.after
        tail = data[found.after:] if found.delimited else data[at:]
        delimiter = struct.pack("<HHI", 0xFFFE, _SEQUENCE_END, rng.choice((4, 0xFFFFFFFF)))
        return data[:at] + delimiter + tail, "fragments sequence delimiter with a non-zero length"
    else:
        length = rng.choice((sum(8 + len(value) for value in found.items), 0, 0xFFFFFFFE, 12))
        at = found.element + 8
        return (data[:at] + struct.pack("<I", length) + data[at + 4:],
                f"fragments Pixel Data length undefined -> {length}")
    return _with_items(data, found, [table, *fragments]), said


# --------------------------------------------------------------------------- codestreams


def _read_be(stream: bytes, at: int, size: int) -> int:
    return int.from_bytes(stream[at:at + size], "big")


def _patch_be(stream: bytes, at: int, size: int, value: int) -> bytes:
    if at + size > len(stream):
        raise NotApplicable(f"field at {at} past the end of a {len(stream)}-byte codestream")
    return stream[:at] + (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big") + stream[at + size:]


def _mutate_field(rng: random.Random, stream: bytes, at: int,
                  fields: dict[str, tuple[int, int, tuple]]) -> tuple[bytes, str]:
    """One of ``fields`` (name -> offset from ``at``, bytes, curated values) of the big-endian
    segment at ``at`` set to an ``_interesting`` value: the stream and "name old -> new"."""
    field = rng.choice(list(fields))
    offset, size, curated = fields[field]
    current = _read_be(stream, at + offset, size)
    value = _interesting(rng, current, size, curated)
    return _patch_be(stream, at + offset, size, value), f"{field} {current} -> {value}"


def _interesting(rng: random.Random, current: int, size: int, curated=()) -> int:
    """A value for a ``size``-byte field now holding ``current``: a curated one, an edge of
    the field's range or a neighbour of the current value."""
    top = (1 << (8 * size)) - 1
    candidates = [*curated, 0, 1, current - 1, current + 1, current * 2, current // 2, top, top >> 1,
                  (top >> 1) + 1, rng.randrange(top + 1)]
    return _different(rng, [value & top for value in candidates], current)


#: JPEG 2000 main header fields (ISO/IEC 15444-1 A.5.1 SIZ, A.6.1 COD, A.4.2 SOT):
#: name -> (offset from the marker, bytes, curated values).
J2K_FIELDS = {
    0xFF51: {"Lsiz": (2, 2, (0, 1, 38, 41, 65535)), "Rsiz": (4, 2, (0x4000, 0x8000, 0xFFFF)),
             "Xsiz": (6, 4, (65535, 65536, 32769, 0x7FFFFFFF)), "Ysiz": (10, 4, (65535, 65536, 32769, 0x7FFFFFFF)),
             "XOsiz": (14, 4, ()), "YOsiz": (18, 4, ()), "XTsiz": (22, 4, (16, 0xFFFFFFFF)),
             "YTsiz": (26, 4, (16, 0xFFFFFFFF)), "XTOsiz": (30, 4, ()), "YTOsiz": (34, 4, ()),
             "Csiz": (38, 2, (0, 2, 3, 4, 16384)), "Ssiz": (40, 1, (0, 7, 11, 15, 16, 0x8F, 37, 38)),
             "XRsiz": (41, 1, (0, 2)), "YRsiz": (42, 1, (0, 2))},
    0xFF52: {"Scod": (4, 1, (0x07, 0xFF)), "progression": (5, 1, (2, 4, 5)), "layers": (6, 2, (0, 65535)),
             "MCT": (8, 1, (1, 2)), "levels": (9, 1, (0, 5, 32, 33)), "xcb": (10, 1, (0, 4, 8, 15)),
             "ycb": (11, 1, (0, 4, 8, 15)), "cbstyle": (12, 1, (0x40, 0xFF)), "transform": (13, 1, (0, 1, 2))},
    0xFF90: {"Isot": (4, 2, (1, 65535)), "Psot": (6, 4, (0, 14, 0xFFFFFFFF)), "TPsot": (10, 1, (1, 255)),
             "TNsot": (11, 1, (0, 2, 255))},
}
_J2K_MARKER_NAMES = {0xFF51: "SIZ", 0xFF52: "COD", 0xFF90: "SOT"}

#: JPEG (ITU T.81 B.2) and JPEG-LS (ITU T.87 C.2) segment fields: offset from the marker,
#: bytes, curated values. SOFn and SOF55 share a layout.
SOF_FIELDS = {"Lf": (2, 2, (0, 2, 8, 11, 255, 65535)), "P": (4, 1, (0, 1, 2, 7, 8, 12, 16, 17)),
              "Y": (5, 2, (0, 1, 65535, 32769)), "X": (7, 2, (0, 1, 65535, 32769)), "Nf": (9, 1, (0, 2, 3, 4)),
              "C1": (10, 1, (0, 2)), "H1V1": (11, 1, (0x00, 0x12, 0x21, 0x22, 0x44)), "Tq1": (12, 1, (1, 3, 4))}
_SOF_CODES = (0xFFC0, 0xFFC1, 0xFFC2, 0xFFC3, 0xFFC5, 0xFFC9, 0xFFCB, 0xFFF7)


def _j2k_markers(stream: bytes) -> dict[int, int]:
    """Offset of the first SIZ, COD and SOT marker of a J2K codestream (raw or in a JP2
    file), walked marker by marker from SOC up to SOD."""
    start = stream.find(b"\xff\x4f\xff\x51")
    if start < 0:
        return {}
    found: dict[int, int] = {}
    position = start + 2
    while position + 4 <= len(stream):
        code = _read_be(stream, position, 2)
        if code < 0xFF00 or code == 0xFF93:
            break
        found.setdefault(code, position)
        position += 2 + _read_be(stream, position + 2, 2)
    return found


def _jpeg_segments(stream: bytes) -> list[tuple[int, int, int]]:
    """(marker, offset, length field) of each segment from SOI through the first SOS."""
    if not stream.startswith(b"\xff\xd8"):
        return []
    segments = []
    position = 2
    while position + 4 <= len(stream):
        if stream[position] != 0xFF:
            break
        code = stream[position + 1]
        if code == 0xFF:
            position += 1
            continue
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            position += 2
            continue
        if code == 0xD9:
            break
        length = _read_be(stream, position + 2, 2)
        segments.append((0xFF00 | code, position, length))
        if code == 0xDA:
            break
        position += 2 + length
    return segments


def _codestream_kind(stream: bytes, syntax: str | None) -> str:
    if b"\xff\x4f\xff\x51" in stream[:4096]:
        return "j2k"
    if stream.startswith(b"\xff\xd8"):
        return "jpeg-ls" if any(code == 0xFFF7 for code, _, _ in _jpeg_segments(stream)) else "jpeg"
    if len(stream) >= 64 and (syntax == RLE_LOSSLESS or (struct.unpack_from("<I", stream, 4)[0] == 64
                                                           and 1 <= struct.unpack_from("<I", stream, 0)[0] <= 15)):
        return "rle"
    return "unknown"


def set_j2k_field(stream: bytes, marker: str, field: str, value: int) -> bytes:
    """The J2K codestream with ``field`` of its first ``marker`` (``"SIZ"``, ``"COD"``,
    ``"SOT"``) set to ``value`` (``J2K_FIELDS`` names the fields)."""
    code = next(code for code, name in _J2K_MARKER_NAMES.items() if name == marker)
    at = _j2k_markers(stream).get(code)
    if at is None:
        raise NotApplicable(f"no {marker} marker in the codestream")
    offset, size, _ = J2K_FIELDS[code][field]
    return _patch_be(stream, at + offset, size, value)


def _mutate_j2k(rng: random.Random, stream: bytes) -> tuple[bytes, str]:
    markers = _j2k_markers(stream)
    present = [code for code in (0xFF51, 0xFF51, 0xFF51, 0xFF52, 0xFF90) if code in markers]
    if not present:
        raise NotApplicable("no SIZ in the JPEG 2000 codestream")
    code = rng.choice(present)
    stream, change = _mutate_field(rng, stream, markers[code], J2K_FIELDS[code])
    return stream, f"{_J2K_MARKER_NAMES[code]} {change}"


def _sos_fields(stream: bytes, at: int) -> dict[str, tuple[int, int, tuple]]:
    components = stream[at + 4] if at + 4 < len(stream) else 1
    spectral = 5 + 2 * components
    return {"Ls": (2, 2, (0, 2, 65535)), "Ns": (4, 1, (0, 2, 4, 255)), "Cs1": (5, 1, (0, 2, 255)),
            "TdTa1": (6, 1, (0x11, 0x44, 0xFF)), "Ss/NEAR": (spectral, 1, (0, 1, 7, 8, 255)),
            "Se/ILV": (spectral + 1, 1, (0, 1, 2, 3, 63, 255)), "AhAl": (spectral + 2, 1, (0x01, 0x0F, 0xFF))}


def _mutate_jpeg(rng: random.Random, stream: bytes, *, lossless_ls: bool = False) -> tuple[bytes, str]:
    """A JPEG or JPEG-LS codestream with one segment field, marker or the EOI changed."""
    segments = _jpeg_segments(stream)
    if not segments:
        raise NotApplicable("no JPEG segments")
    frames = [segment for segment in segments if segment[0] in _SOF_CODES]
    operations = ["sof"] * 5 + ["sof type", "dht", "dqt", "sos", "sos", "drop", "length", "eoi"]
    if lossless_ls:
        operations += ["lse"] * 3
    operation = rng.choice(operations)
    by_code = {}
    for code, at, length in segments:
        by_code.setdefault(code, (at, length))
    if operation in ("sof", "sof type") and not frames:
        raise NotApplicable("no SOF segment")
    if operation == "sof":
        code, at, _ = frames[0]
        stream, change = _mutate_field(rng, stream, at, SOF_FIELDS)
        return stream, f"SOF{code - 0xFFC0} {change}"
    if operation == "sof type":
        code, at, _ = frames[0]
        new = _different(rng, _SOF_CODES, code)
        return _patch_be(stream, at, 2, new), f"SOF marker {code:04X} -> {new:04X}"
    if operation == "dht" and 0xFFC4 in by_code:
        at, _ = by_code[0xFFC4]
        if rng.random() < 0.5:
            current = stream[at + 4]
            value = _different(rng, (0x04, 0x14, 0x2F, 0xFF, 0x10, 0x00), current)
            return _patch_be(stream, at + 4, 1, value), f"DHT TcTh {current:#04x} -> {value:#04x}"
        counts = rng.choice((b"\xff" * 16, bytes(16), b"\x00" * 15 + b"\xff", b"\x02" + bytes(15)))
        return stream[:at + 5] + counts + stream[at + 21:], f"DHT code counts -> {counts.hex()}"
    if operation == "dqt" and 0xFFDB in by_code:
        at, length = by_code[0xFFDB]
        if rng.random() < 0.5:
            current = stream[at + 4]
            value = _different(rng, (0x10, 0x04, 0xFF, 0x13, 0x00), current)
            return _patch_be(stream, at + 4, 1, value), f"DQT PqTq {current:#04x} -> {value:#04x}"
        return stream[:at + 5] + bytes(max(length - 3, 0)) + stream[at + 2 + length:], "DQT all zero"
    if operation == "sos" and 0xFFDA in by_code:
        at, _ = by_code[0xFFDA]
        stream, change = _mutate_field(rng, stream, at, _sos_fields(stream, at))
        return stream, f"SOS {change}"
    if operation == "lse":
        return _mutate_lse(rng, stream, segments)
    if operation == "drop":
        code, at, length = rng.choice(segments)
        end = len(stream) if code == 0xFFDA else at + 2 + length
        return stream[:at] + stream[end:], f"drop segment {code:04X} ({end - at} bytes)"
    if operation == "length":
        code, at, length = rng.choice(segments)
        value = _interesting(rng, length, 2, (0, 1, 2))
        return _patch_be(stream, at + 2, 2, value), f"segment {code:04X} length {length} -> {value}"
    end = stream.rfind(b"\xff\xd9")
    if end < 0:
        raise NotApplicable("no EOI")
    return stream[:end], f"EOI removed ({len(stream) - end} bytes)"


def _mutate_lse(rng: random.Random, stream: bytes, segments) -> tuple[bytes, str]:
    """JPEG-LS preset parameters (ITU T.87 C.2.4.1): alter the LSE segment, or add one after
    SOF55 (coding parameters, or oversize image dimensions)."""
    present = [(at, length) for code, at, length in segments if code == 0xFFF8]
    if present and rng.random() < 0.5:
        at, _ = present[0]
        field, offset, curated = rng.choice((("id", 4, (0, 2, 3, 4, 5, 255)), ("MAXVAL", 5, (0, 1, 255, 65535)),
                                             ("T1", 7, (0, 65535)), ("T2", 9, (0, 1)), ("T3", 11, (0, 1)),
                                             ("RESET", 13, (0, 1, 65535))))
        size = 1 if field == "id" else 2
        current = _read_be(stream, at + offset, size)
        value = _interesting(rng, current, size, curated)
        return _patch_be(stream, at + offset, size, value), f"LSE {field} {current} -> {value}"
    frame = next(((at, length) for code, at, length in segments if code == 0xFFF7), None)
    if frame is None:
        raise NotApplicable("no SOF55")
    at = frame[0] + 2 + frame[1]
    if rng.random() < 0.7:
        maxval, t1, t2, t3, reset = (rng.choice(values) for values in
                                     ((0, 1, 255, 4095, 65535), (0, 3, 65535), (0, 7, 2), (0, 21, 1), (0, 1, 64, 65535)))
        segment = struct.pack(">HHBHHHHH", 0xFFF8, 13, 1, maxval, t1, t2, t3, reset)
        said = f"LSE added MAXVAL={maxval} T1={t1} T2={t2} T3={t3} RESET={reset}"
    else:
        rows, columns = rng.choice((0, 1, 0xFFFFFFFF, 70000)), rng.choice((0, 1, 0xFFFFFFFF, 70000))
        segment = struct.pack(">HHBBII", 0xFFF8, 12, 4, 4, rows, columns)
        said = f"LSE added oversize dimensions {rows} x {columns}"
    return stream[:at] + segment + stream[at:], said


def _mutate_rle(rng: random.Random, stream: bytes) -> tuple[bytes, str]:
    """The RLE header (PS3.5 G.3.1: segment count, 15 offsets) or a segment's first
    PackBits control byte."""
    count = struct.unpack_from("<I", stream, 0)[0]
    offsets = list(struct.unpack_from("<15I", stream, 4))
    draw = rng.random()
    if draw < 0.35:
        value = _different(rng, (0, 1, 2, 3, 15, 16, 64, 0xFFFFFFFF), count)
        return struct.pack("<I", value) + stream[4:], f"RLE segments {count} -> {value}"
    if draw < 0.8:
        index = rng.randrange(15)
        previous = offsets[index - 1] if index else 64
        value = _different(rng, (0, 63, len(stream), len(stream) + 1, 0xFFFFFFFF, max(previous - 1, 0), 65), offsets[index])
        offsets[index] = value
        return (stream[:4] + struct.pack("<15I", *offsets) + stream[64:],
                f"RLE offset {index + 1} {struct.unpack_from('<I', stream, 4 + 4 * index)[0]} -> {value}")
    segments = [offset for offset in offsets[:max(min(count, 15), 1)] if 64 <= offset < len(stream)]
    if not segments:
        raise NotApplicable("no RLE segment inside the fragment")
    at = rng.choice(segments)
    value = rng.choice((0x80, 0x81, 0x7F, 0x00))
    return stream[:at] + bytes([value]) + stream[at + 1:], f"RLE segment at {at} control byte -> {value:#04x}"


def _flip_codestream(rng: random.Random, stream: bytes) -> tuple[bytes, str]:
    if not stream:
        raise NotApplicable("empty fragment")
    mutable = bytearray(stream)
    window = len(stream) if rng.random() < 0.3 else min(len(stream), 512)
    positions = sorted(rng.randrange(window) for _ in range(rng.choice((1, 2, 4, 16))))
    for position in positions:
        mutable[position] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
    return bytes(mutable), f"flips {len(positions)} at {','.join(map(str, positions[:8]))} of {len(stream)}"


def mutate_codestream(rng: random.Random, stream: bytes, syntax: str | None = None) -> tuple[bytes, str]:
    """One structure-aware change to a compressed frame (J2K/JP2, JPEG, JPEG-LS or RLE,
    recognised by content), or byte flips in its header (one time in five)."""
    kind = _codestream_kind(stream, syntax)
    if kind == "unknown" or rng.random() < 0.2:
        mutated, said = _flip_codestream(rng, stream)
    elif kind == "j2k":
        mutated, said = _mutate_j2k(rng, stream)
    elif kind == "rle":
        mutated, said = _mutate_rle(rng, stream)
    else:
        mutated, said = _mutate_jpeg(rng, stream, lossless_ls=kind == "jpeg-ls")
    return mutated, f"{kind} {said}"


def fragments_of(data: bytes) -> list[bytes]:
    """The fragments of the DICOM file's encapsulated Pixel Data (Basic Offset Table left out)."""
    return list(_encapsulated(data).items[1:])


def with_fragments(data: bytes, fragments: list[bytes]) -> bytes:
    """The DICOM file with its Pixel Data fragments replaced by ``fragments`` (Basic Offset
    Table and Sequence Delimitation Item kept as they were)."""
    found = _encapsulated(data)
    return _with_items(data, found, [found.items[0], *fragments])


def with_first_fragment(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The DICOM file with its first Pixel Data fragment replaced by ``change(fragment)``."""
    fragments = fragments_of(data)
    if not fragments:
        raise NotApplicable("encapsulated Pixel Data without fragments")
    return with_fragments(data, [change(fragments[0]), *fragments[1:]])


def _codestream(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    syntax = _layout(data).transfer_syntax
    said = []

    def change(fragment: bytes) -> bytes:
        mutated, what = mutate_codestream(rng, fragment, syntax)
        said.append(what)
        return mutated

    mutated = with_first_fragment(data, change)
    return mutated, f"codestream {said[0]}"


# --------------------------------------------------------------------------- raster


def _png_chunks(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, length, type) of each PNG chunk, read until the data ends."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise NotApplicable("no PNG signature")
    chunks = []
    position = 8
    while position + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        chunks.append((position, length, data[position + 4:position + 8]))
        position += 12 + length
    return chunks


def _png_chunk(kind: bytes, value: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + value) if crc is None else crc
    return struct.pack(">I", len(value)) + kind + value + struct.pack(">I", crc & 0xFFFFFFFF)


_IHDR_FIELDS = {"width": (0, 4, (0, 1, 65535, 32769, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)),
                "height": (4, 4, (0, 1, 65535, 32769, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)),
                "bit depth": (8, 1, (0, 1, 2, 3, 4, 8, 16, 32)), "colour type": (9, 1, (0, 1, 2, 3, 4, 5, 6, 7)),
                "compression": (10, 1, (1, 255)), "filter": (11, 1, (1, 255)), "interlace": (12, 1, (1, 2, 255))}


def png_bomb(width: int, height: int, bit_depth: int = 8) -> bytes:
    """A greyscale PNG of ``width`` x ``height`` whose zero pixels deflate about 1000:1."""
    row = 1 + width * bit_depth // 8
    size = row * height
    blocks, rest = divmod(size, 1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = (b"\x78\xda" + _deflated_zeros_block() * blocks + compressor.compress(bytes(rest)) + compressor.flush()
              + struct.pack(">I", ((size % 65521) << 16) | 1))  # Adler-32 of zeros: a = 1, b = n
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", stream) + _png_chunk(b"IEND", b"")


def _mutate_png(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    chunks = _png_chunks(data)
    if not chunks:
        raise NotApplicable("no PNG chunks")
    recompute = rng.random() < 0.7
    crc_said = "CRC recomputed" if recompute else "CRC left stale"
    operation = rng.choice(("ihdr", "ihdr", "ihdr", "length", "crc", "idat truncated", "many", "drop",
                            "duplicate", "palette", "bomb"))
    by_kind = {}
    for position, length, kind in chunks:
        by_kind.setdefault(kind, (position, length))

    def rewrite(at: int, value: bytes, kind: bytes, old_length: int) -> bytes:
        stale = data[at + 8 + old_length:at + 12 + old_length]
        crc = int.from_bytes(stale, "big") if not recompute and len(stale) == 4 else None
        return data[:at] + _png_chunk(kind, value, crc) + data[at + 12 + old_length:]

    if operation == "ihdr" and b"IHDR" in by_kind:
        at, length = by_kind[b"IHDR"]
        field = rng.choice(list(_IHDR_FIELDS))
        offset, size, curated = _IHDR_FIELDS[field]
        value_bytes = data[at + 8:at + 8 + length]
        current = _read_be(value_bytes, offset, size)
        value = _interesting(rng, current, size, curated)
        return (rewrite(at, _patch_be(value_bytes, offset, size, value), b"IHDR", length),
                f"png IHDR {field} {current} -> {value} ({crc_said})")
    if operation == "length":
        at, length, kind = rng.choice(chunks)
        value = _interesting(rng, length, 4, (0, 0x7FFFFFFF, 0xFFFFFFFF))
        return data[:at] + struct.pack(">I", value) + data[at + 4:], f"png {kind.decode('latin-1')} length {length} -> {value}"
    if operation == "crc":
        at, length, kind = rng.choice(chunks)
        crc_at = at + 8 + length
        return (data[:crc_at] + bytes(b ^ 0xFF for b in data[crc_at:crc_at + 4]) + data[crc_at + 4:],
                f"png {kind.decode('latin-1')} CRC wrong")
    idats = [(at, length) for at, length, kind in chunks if kind == b"IDAT"]
    if operation == "idat truncated" and idats:
        at, length = rng.choice(idats)
        keep = rng.randrange(length) if length else 0
        return (rewrite(at, data[at + 8:at + 8 + keep], b"IDAT", length),
                f"png IDAT at {at} truncated to {keep} of {length} ({crc_said})")
    if operation == "many" and idats:
        at, length = idats[0]
        count = rng.choice((1000, 20000, 200000))
        if rng.random() < 0.5:
            value = data[at + 8:at + 8 + length]
            step = max(1, -(-len(value) // count))
            pieces = b"".join(_png_chunk(b"IDAT", value[i:i + step]) for i in range(0, len(value), step))
            return data[:at] + pieces + data[at + 12 + length:], f"png IDAT split into {-(-len(value) // step)} chunks"
        extra = _png_chunk(b"fuZz", b"") * count
        return data[:at] + extra + data[at:], f"png {count} empty ancillary chunks before IDAT"
    if operation == "drop":
        at, length, kind = rng.choice(chunks)
        return data[:at] + data[at + 12 + length:], f"png {kind.decode('latin-1')} chunk dropped"
    if operation == "duplicate" and b"IHDR" in by_kind:
        at, length = by_kind[b"IHDR"]
        chunk = data[at:at + 12 + length]
        place = rng.choice(chunks)[0]
        return data[:place] + chunk + data[place:], f"png IHDR duplicated at {place}"
    if operation == "palette" and idats:
        kind, value = rng.choice(((b"PLTE", bytes(range(256)) * 3), (b"PLTE", b"\x01\x02"), (b"sBIT", b"\x11"),
                                  (b"tRNS", b"\xff" * 300)))
        at = idats[0][0]
        return data[:at] + _png_chunk(kind, value) + data[at:], f"png {kind.decode()} of {len(value)} bytes added"
    if operation == "bomb":
        width, height, depth = rng.choice(((14000, 14000, 8), (10000, 10000, 16), (32768, 6000, 8), (40000, 100, 8)))
        return png_bomb(width, height, depth), f"png bomb {width}x{height} {depth}-bit of zeros"
    return _mutate_png(rng, data)


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 11: 4, 13: 4}
_TIFF_TAGS = {256: ("ImageWidth", (0, 1, 65535, 0x7FFFFFFF, 0xFFFFFFFF)),
              257: ("ImageLength", (0, 1, 65535, 0x7FFFFFFF, 0xFFFFFFFF)),
              258: ("BitsPerSample", (0, 1, 2, 4, 12, 24, 32, 64, 65535)),
              259: ("Compression", (1, 2, 5, 7, 8, 32773, 34712, 50000, 65535)),
              262: ("PhotometricInterpretation", (0, 1, 2, 3, 4, 5, 6, 32844, 65535)),
              273: ("StripOffsets", (0, 0xFFFFFFFF)), 277: ("SamplesPerPixel", (0, 2, 3, 4, 65535)),
              278: ("RowsPerStrip", (0, 1, 0xFFFFFFFF)), 279: ("StripByteCounts", (0, 0x7FFFFFFF, 0xFFFFFFFF)),
              284: ("PlanarConfiguration", (0, 2, 3)), 317: ("Predictor", (0, 2, 3, 255)),
              339: ("SampleFormat", (2, 3, 4, 255))}


def _tiff_layout(data: bytes) -> tuple[str, int, list[tuple[int, int, int, int]]]:
    """Byte order, first IFD offset and its entries (offset, tag, type, count) (TIFF 6.0 §2)."""
    if data[:4] == b"II*\x00":
        order = "<"
    elif data[:4] == b"MM\x00*":
        order = ">"
    else:
        raise NotApplicable("no TIFF header")
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > len(data):
        raise NotApplicable("first IFD past the end")
    (count,) = struct.unpack_from(order + "H", data, ifd)
    entries = []
    for index in range(count):
        at = ifd + 2 + 12 * index
        if at + 12 > len(data):
            break
        tag, kind, values = struct.unpack_from(order + "HHI", data, at)
        entries.append((at, tag, kind, values))
    return order, ifd, entries


def _mutate_tiff(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    order, ifd, entries = _tiff_layout(data)
    operation = rng.choice(("tag", "tag", "tag", "tag", "strips past the end", "entry count", "next ifd",
                            "first ifd", "entry type", "entry count field", "byte order", "reverse"))
    known = [entry for entry in entries if entry[1] in _TIFF_TAGS and _TIFF_TYPE_SIZES.get(entry[2]) in (1, 2, 4)]
    if operation in ("tag", "strips past the end") and known:
        if operation == "strips past the end":
            strips = [entry for entry in known if entry[1] in (273, 279)]
            known = strips or known
        at, tag, kind, count = rng.choice(known)
        size = _TIFF_TYPE_SIZES[kind]
        index = rng.randrange(count) if count else 0
        where = at + 8 + index * size if size * count <= 4 else struct.unpack_from(order + "I", data, at + 8)[0] + index * size
        if where + size > len(data):
            raise NotApplicable(f"TIFF tag {tag} value past the end")
        current = int.from_bytes(data[where:where + size], "little" if order == "<" else "big")
        name, curated = _TIFF_TAGS[tag]
        if operation == "strips past the end":
            curated = (len(data), len(data) + 1, len(data) * 4, 0xFFFFFFFF)
        value = _interesting(rng, current, size, curated)
        patched = value.to_bytes(size, "little" if order == "<" else "big")
        return (data[:where] + patched + data[where + size:],
                f"tiff {name}[{index}] {current} -> {value}")
    if operation == "entry count":
        value = _interesting(rng, len(entries), 2, (0, 1, 0xFFFF))
        return data[:ifd] + struct.pack(order + "H", value) + data[ifd + 2:], f"tiff IFD entry count {len(entries)} -> {value}"
    if operation == "next ifd":
        at = ifd + 2 + 12 * len(entries)
        value = rng.choice((ifd, 8, len(data) + 100, 0xFFFFFFFF, 1))
        return data[:at] + struct.pack(order + "I", value) + data[at + 4:], f"tiff next IFD offset -> {value}"
    if operation == "first ifd":
        value = _different(rng, (0, 1, 7, len(data), 0xFFFFFFFF), ifd)
        return data[:4] + struct.pack(order + "I", value) + data[8:], f"tiff first IFD offset {ifd} -> {value}"
    if operation in ("entry type", "entry count field") and entries:
        at, tag, kind, count = rng.choice(entries)
        if operation == "entry type":
            value = _different(rng, (0, 2, 5, 12, 13, 16, 0xFFFF), kind)
            return data[:at + 2] + struct.pack(order + "H", value) + data[at + 4:], f"tiff tag {tag} type {kind} -> {value}"
        value = _different(rng, (0, 2, 0x10000, 0x3FFFFFFF, 0xFFFFFFFF), count)
        return data[:at + 4] + struct.pack(order + "I", value) + data[at + 8:], f"tiff tag {tag} count {count} -> {value}"
    if operation == "reverse" and entries:
        table = data[ifd + 2:ifd + 2 + 12 * len(entries)]
        reordered = b"".join(table[i:i + 12] for i in range(len(table) - 12, -1, -12))
        return data[:ifd + 2] + reordered + data[ifd + 2 + len(reordered):], "tiff IFD entries in reverse order"
    flipped = b"MM\x00*" if order == "<" else b"II*\x00"
    return flipped + data[4:], "tiff byte order flipped (values left as they were)"


def _raster(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    if kind == "png":
        mutated, said = _mutate_png(rng, data)
    elif kind == "jpeg":
        mutated, said = _mutate_jpeg(rng, data)
        said = f"jpeg {said}"
    elif kind == "tiff":
        mutated, said = _mutate_tiff(rng, data)
    else:
        raise NotApplicable(f"not a raster image ({kind})")
    return mutated, f"raster {said}"


# --------------------------------------------------------------------------- any input


def _regions(data: bytes, kind: str) -> dict[str, tuple[int, int]]:
    """Named byte ranges of the input, for truncation: for DICOM the preamble, the header,
    Pixel Data and its first fragment, where they can be found."""
    regions = {"anywhere": (0, len(data))}
    if kind != "dicom":
        regions["header"] = (0, min(len(data), 1024))
        return regions
    layout = _layout(data)
    if layout.meta_end:
        regions["preamble"] = (0, 132)
    if layout.deflated:
        return regions
    at = _pixel_data_at(data, layout.implicit_vr, layout.little_endian)
    if at is not None:
        regions["header"] = (layout.meta_end, at)
        regions["pixel data"] = (at, len(data))
        try:
            found = _encapsulated(data)
            if len(found.items) > 1:
                start = found.item_offsets[1] + 8
                regions["fragment"] = (start, start + len(found.items[1]))
        except NotApplicable:
            pass
    return {name: bounds for name, bounds in regions.items() if bounds[1] > bounds[0]}


def _truncate(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    regions = _regions(data, kind)
    name = rng.choice(list(regions))
    start, end = regions[name]
    at = rng.randrange(start, end) if end > start else 0
    where = "anywhere" if name == "anywhere" else f"in {name}"
    return data[:at], f"truncate at {at} of {len(data)} ({where})"


def _trailing(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    room = max(0, min(MAX_TRAILING_BYTES, MAX_CASE_BYTES - len(data)))
    size = min(room, int(2 ** rng.uniform(0, 21)))
    choices = ["random", "zeros", "copy of the input"]
    if kind == "dicom":
        choices += ["header elements", "sequence delimiter", "item of huge length", "padding element"]
    what = rng.choice(choices)
    if what == "random":
        tail = rng.randbytes(size)
    elif what == "zeros":
        tail = bytes(size)
    elif what == "copy of the input":
        tail = data[:room]
    elif what == "header elements":
        layout = _layout(data)
        at = _pixel_data_at(data, layout.implicit_vr, layout.little_endian)
        tail = data[layout.meta_end:at if at is not None else len(data)][:room]
    elif what == "sequence delimiter":
        tail = _delimiter(_SEQUENCE_END, True) * max(1, size // 8)
    elif what == "item of huge length":
        tail = struct.pack("<HHI", 0xFFFE, _ITEM, 0xFFFFFFF0) + rng.randbytes(min(size, 64))
    else:
        tail = struct.pack("<HH2sHI", 0xFFFC, 0xFFFC, b"OB", 0, rng.choice((size, 0xFFFFFFFF))) + bytes(size)
    tail = tail[:room]
    return data + tail, f"trailing {what} {len(tail)} bytes"


def _bytes(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, str]:
    """Flips, insertions, deletions or an edge value written somewhere, most often in the
    first kilobytes where the headers are."""
    if not data:
        tail = rng.randbytes(rng.randint(1, 64))
        return tail, f"bytes insert {len(tail)} at 0"
    hot = len(data)
    if kind == "dicom":
        layout = _layout(data)
        at = None if layout.deflated else _pixel_data_at(data, layout.implicit_vr, layout.little_endian)
        hot = min(len(data), (at or 4096) + 64)
    elif len(data) > 1024:
        hot = 1024

    def position() -> int:
        return rng.randrange(hot) if rng.random() < 0.6 else rng.randrange(len(data))

    operation = rng.choice(("flip", "flip", "insert", "delete", "edge"))
    if operation == "flip":
        mutable = bytearray(data)
        positions = sorted(position() for _ in range(rng.choice((1, 2, 3, 8, 32))))
        for at in positions:
            mutable[at] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
        shown = ",".join(map(str, positions[:8])) + (",..." if len(positions) > 8 else "")
        return bytes(mutable), f"bytes flip {len(positions)} at {shown}"
    at = position()
    if operation == "insert":
        inserted = rng.randbytes(rng.choice((1, 2, 4, 8, 64, 1000)))
        return data[:at] + inserted + data[at:], f"bytes insert {len(inserted)} at {at}"
    if operation == "delete":
        count = rng.choice((1, 2, 4, 8, 64, 1000))
        return data[:at] + data[at + count:], f"bytes delete {min(count, len(data) - at)} at {at}"
    value = rng.choice((b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff", b"\x00\x00", b"\xff\xff\xff\xff",
                        b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80"))
    return data[:at] + value + data[at + len(value):], f"bytes set {value.hex()} at {at}"


_BYTE_MUTATORS: dict[str, Callable[[random.Random, bytes, str], tuple[bytes, str]]] = {
    "syntax": _syntax,
    "nesting": _nesting,
    "elements": _elements,
    "fragments": _fragments,
    "codestream": _codestream,
    "deflate": _deflate,
    "raster": _raster,
    "truncate": _truncate,
    "trailing": _trailing,
    "bytes": _bytes,
}
