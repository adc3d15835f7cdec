"""Walk a DICOM data set's element headers, without reading values, before pydicom parses it.

pydicom parses a sequence of undefined length (PS3.5 7.5.2) eagerly and recursively, about
five Python frames per level, so a few hundred nested sequences raise ``RecursionError``;
and it parses every element up to Pixel Data at about 3 microseconds each, so a file of
millions of empty elements takes minutes. ``walk_to_pixel_data`` walks the same structure
iteratively, counting elements and nesting depth against ``limits.MAX_HEADER_ELEMENTS``
and ``limits.MAX_SEQUENCE_DEPTH``, and reports where the top-level Pixel Data element
starts (which a deflated data set needs, to know how far to inflate).

It reads as pydicom 3 reads (``filereader.data_element_generator``, ``read_sequence``,
``_is_implicit_vr``), so what it bounds is what pydicom would parse: explicit or implicit
VR as the first element of each data set shows, an explicit element whose VR bytes are not
letters read as implicit, UN of undefined length read as a sequence (PS3.5 6.2.2). It
never refuses a structure it does not understand: it stops walking and lets pydicom's
own parsing say what is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

from ..errors import InputTooLargeError, SequenceTooDeepError
from . import limits

PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_KNOWN_VRS = frozenset(vr.value.encode() for vr in STANDARD_VR)
_LONG_VRS = frozenset(vr.value.encode() for vr in EXPLICIT_VR_LENGTH_32)
_SCAN_CHUNK = 1 << 16

#: ``read_at(offset, size)``: up to ``size`` bytes from ``offset``; fewer only at the end.
ReadAt = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Walk:
    """Where the walk ended.

    ``pixel_data_offset``: the offset of the top-level (7FE0,0010), (7FE0,0008) or
    (7FE0,0009) element header, or ``None`` when the data set ended without one.
    ``understood``: False when the walk stopped at bytes it could not read as elements
    (pydicom then decides what they are).
    """

    pixel_data_offset: int | None
    understood: bool


@dataclass
class _Container:
    is_sequence: bool
    end: int | None  # None: undefined length, ended by a delimitation item
    implicit_vr: bool
    detect_vr: bool = False  # look at this data set's first element to learn its VR encoding
    top_level: bool = False


def first_element_is_implicit(first_bytes: bytes) -> bool:
    """Whether an element header is implicit VR: its bytes 4-5 are not two capital letters.

    pydicom's own test (``filereader._is_implicit_vr``).
    """
    return not (0x40 < first_bytes[4] < 0x5B and 0x40 < first_bytes[5] < 0x5B)


def walk_to_pixel_data(read_at: ReadAt, start: int, *, implicit_vr: bool, little_endian: bool,
                       where: str) -> Walk:
    """Walk the data set at ``start`` up to its top-level Pixel Data element.

    ``implicit_vr`` / ``little_endian``: the encoding the transfer syntax declares; the
    first element may overrule the VR encoding, as in pydicom. ``read_at`` may produce
    its bytes as they are asked for (a deflated data set inflating).

    Raises ``SequenceTooDeepError`` past ``limits.MAX_SEQUENCE_DEPTH`` nested sequences and
    ``InputTooLargeError`` past ``limits.MAX_HEADER_ELEMENTS`` elements; ``where`` names the
    input in their messages.
    """
    order = "<" if little_endian else ">"
    tag_length = struct.Struct(order + "HHI")
    short_length = struct.Struct(order + "H")
    long_length = struct.Struct(order + "I")
    max_depth, max_elements = limits.MAX_SEQUENCE_DEPTH, limits.MAX_HEADER_ELEMENTS

    def read(offset: int, size: int) -> bytes | None:
        data = read_at(offset, size)
        return data if len(data) == size else None

    stack = [_Container(False, None, implicit_vr, detect_vr=True, top_level=True)]
    depth = elements = 0
    position = start
    while stack:
        container = stack[-1]
        if container.end is not None and position >= container.end:
            stack.pop()
            depth -= container.is_sequence
            continue
        header = read(position, 8)
        if header is None:
            ended_cleanly = container.top_level and not read_at(position, 1)
            return Walk(None, ended_cleanly)
        group, element, length = tag_length.unpack(header)
        tag = group << 16 | element

        elements += 1
        if elements > max_elements:
            raise too_many_elements(where, max_elements)

        if container.is_sequence:
            # PS3.5 7.5: a sequence holds items, each a data set, and (undefined length)
            # ends with a Sequence Delimitation Item.
            position += 8
            if tag == _ITEM:
                end = None if length == _UNDEFINED else position + length
                stack.append(_Container(False, end, container.implicit_vr,
                                        detect_vr=not container.implicit_vr))
            elif tag == _SEQUENCE_DELIMITER:
                stack.pop()
                depth -= 1
            else:
                return Walk(None, False)
            continue

        if tag == _ITEM_DELIMITER:
            position += 8
            if container.top_level:
                return Walk(None, False)
            stack.pop()
            continue
        if container.detect_vr:
            container.detect_vr = False
            first = read(position, 6)
            if first is not None:
                container.implicit_vr = first_element_is_implicit(first)

        vr: bytes | None = None
        value_at = position + 8
        if not container.implicit_vr:
            vr = header[4:6]
            if vr in _LONG_VRS:
                extension = read(position + 8, 4)
                if extension is None:
                    return Walk(None, False)
                (length,) = long_length.unpack(extension)
                value_at = position + 12
            elif vr in _KNOWN_VRS or b"AA" <= vr <= b"ZZ":
                (length,) = short_length.unpack(header[6:8])
            else:
                # pydicom reads an element whose VR bytes are not letters as implicit VR
                # (config.assume_implicit_vr_switch): some writers switch inside sequences.
                vr = None
        if container.top_level and tag in PIXEL_DATA_TAGS:
            return Walk(position, True)

        if _is_sequence(tag, vr, length, read_at, value_at, order):
            depth += 1
            if depth > max_depth:
                raise SequenceTooDeepError(
                    f"{where} nests sequences more than {max_depth} deep (element "
                    f"({group:04X},{element:04X}) at byte {position}); radedge reads headers "
                    f"nested at most {max_depth} deep (radedge.io.limits.MAX_SEQUENCE_DEPTH), "
                    "and radiograph headers nest 3 or 4 deep. Refused before parsing. The file "
                    "is damaged or was made to exhaust the reader; ask the sender for the image "
                    "again.",
                    limit=max_depth,
                )
            end = None if length == _UNDEFINED else value_at + length
            stack.append(_Container(True, end, container.implicit_vr))
            position = value_at
        elif length == _UNDEFINED:
            # A value of undefined length that is not a sequence runs to a Sequence
            # Delimitation Item (PS3.5 7.1.3), as encapsulated Pixel Data does.
            delimiter = _find_delimiter(read_at, value_at, order)
            if delimiter is None:
                return Walk(None, False)
            position = delimiter + 8
        else:
            position = value_at + length
    return Walk(None, True)


def too_many_elements(where: str, max_elements: int) -> InputTooLargeError:
    return InputTooLargeError(
        f"{where} has more than {max_elements} data elements and sequence items before its "
        "Pixel Data (radedge.io.limits.MAX_HEADER_ELEMENTS); a radiograph's header has a few "
        "hundred. Refused before parsing the rest. The file is damaged or was made to exhaust "
        "the reader; ask the sender for the image again."
    )


def _is_sequence(tag: int, vr: bytes | None, length: int, read_at: ReadAt, value_at: int,
                 order: str) -> bool:
    """Whether pydicom reads this element as a sequence (``data_element_generator``).

    Explicit SQ; UN of undefined length (PS3.5 6.2.2); implicit VR, or UN of defined length
    (pydicom's ``replace_un_with_known_vr``), when the data dictionary says SQ; implicit VR
    of undefined length unknown to the dictionary when its value starts with an Item tag.
    """
    if vr == b"SQ":
        return True
    if vr == b"UN" and length == _UNDEFINED:
        return True
    if vr is not None and vr != b"UN":
        return False
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        if vr is None and length == _UNDEFINED:
            next_tag = read_at(value_at, 4)
            if len(next_tag) == 4:
                group, element = struct.unpack(order + "HH", next_tag)
                return group << 16 | element == _ITEM
        return False


def _find_delimiter(read_at: ReadAt, start: int, order: str) -> int | None:
    """Offset of the next Sequence Delimitation Item tag at or after ``start``, or None."""
    marker = struct.pack(order + "HH", 0xFFFE, 0xE0DD)
    position = start
    while True:
        chunk = read_at(position, _SCAN_CHUNK + 3)
        found = chunk.find(marker)
        if found >= 0:
            return position + found
        if len(chunk) < _SCAN_CHUNK + 3:
            return None
        position += _SCAN_CHUNK


def declared_encoding(transfer_syntax_uid: str | None, first_bytes: bytes) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a data set, as pydicom 3 decides before parsing it.

    From the Transfer Syntax UID: Implicit VR Little Endian, Explicit VR Big Endian, and
    Explicit VR Little Endian for every other syntax (PS3.5 A.4: encapsulated syntaxes are
    explicit little endian). Without one (a raw data set), from its first element: a VR
    makes it explicit, and a group of 1024 or more read little endian means big endian
    (``filereader.read_partial``).
    """
    if transfer_syntax_uid is None:
        if len(first_bytes) < 6 or first_bytes[4:6] not in _KNOWN_VRS:
            return True, True
        (group,) = struct.unpack("<H", first_bytes[:2])
        return False, group < 1024
    if transfer_syntax_uid == "1.2.840.10008.1.2":
        return True, True
    if transfer_syntax_uid == "1.2.840.10008.1.2.2":
        return False, False
    return False, True
