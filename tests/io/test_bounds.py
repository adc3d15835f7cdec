"""Inputs refused before work is spent on them: each bound is checked first, and cheaply.

Every test builds its bomb in the test (tests/io/dicom_factory.py), asserts the typed
error, and asserts the cost: seconds, and peak memory far below what the bomb declares
(tracemalloc for Python allocations; ``ru_maxrss`` of a child process for the native
decoders, whose allocations tracemalloc does not see).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from radedge.errors import (
    CodestreamMismatchError,
    CorruptPixelDataError,
    EncapsulationMismatchError,
    ImageTooLargeError,
    InputError,
    InputTooLargeError,
    NotRegularFileError,
    SequenceTooDeepError,
    TruncatedPixelDataError,
    UnsupportedImageError,
)
from radedge.io import limits, read_dicom, read_image, read_raster
from radedge.io.codestreams import jpeg_frame_header

from .dicom_factory import (
    compressed,
    deflated,
    encapsulated_under_native_syntax,
    first_fragment_offset,
    insert_before_pixel_data,
    make_dataset,
    PRIVATE_CREATOR,
    nested_sequences,
    pixel_data_offset,
    private_element,
    to_bytes,
)

GRADIENT = np.arange(48 * 64).reshape(48, 64) % 4096


@contextmanager
def cost(*, trace_memory: bool = True):
    """Measure wall time and the tracemalloc peak of the block: ``with cost() as spent``.

    Tracing slows Python code several times over; time a loop-bound refusal untraced.
    """
    spent = {}
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        yield spent
    finally:
        spent["seconds"] = time.perf_counter() - start
        if trace_memory:
            spent["peak_bytes"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()


def sparse_file(path: Path, head: bytes, size: int) -> Path:
    """A file of ``size`` bytes that starts with ``head`` and holds no disk blocks beyond it."""
    with open(path, "wb") as stream:
        stream.write(head)
        stream.truncate(size)
    return path


# --------------------------------------------------------------------------- not regular files


def test_fifo_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("this platform has no FIFOs")
    fifo = tmp_path / "image.dcm"
    os.mkfifo(fifo)
    outcomes = []

    def read_all():
        for reader in (read_image, read_dicom, read_raster):
            try:
                reader(fifo)
            except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
                outcomes.append(exc)

    thread = threading.Thread(target=read_all, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():
        # Release the reader blocked in open() or read() before failing.
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
        pytest.fail("reading a FIFO blocked instead of being refused")
    assert len(outcomes) == 3
    for exc in outcomes:
        assert isinstance(exc, NotRegularFileError), exc
        assert "a FIFO (named pipe)" in str(exc) and "regular file" in str(exc)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_device_is_refused_before_it_is_read(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    with cost() as spent:
        for reader in (read_image, read_dicom, read_raster):
            with pytest.raises(NotRegularFileError, match="a character device"):
                reader(device)
    assert spent["seconds"] < 1


def test_directory_is_refused(tmp_path):
    with pytest.raises(NotRegularFileError, match="a directory"):
        read_image(tmp_path)


def test_file_object_reading_a_fifo_is_refused(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("this platform has no FIFOs")
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    with os.fdopen(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK), "rb") as stream:
        with pytest.raises(NotRegularFileError, match="FIFO"):
            read_dicom(stream)


# --------------------------------------------------------------------------- file size


@pytest.mark.parametrize("head", [bytes(128) + b"DICM", b"\x89PNG\r\n\x1a\n"], ids=["dicom", "png"])
def test_file_beyond_the_size_limit_is_refused_before_reading(head, tmp_path):
    path = sparse_file(tmp_path / "huge", head, limits.MAX_FILE_BYTES + 1)
    with cost() as spent:
        with pytest.raises(InputTooLargeError) as caught:
            read_image(path)
    assert f"{limits.MAX_FILE_BYTES + 1} bytes long" in str(caught.value)
    assert "MAX_FILE_BYTES" in str(caught.value)
    assert spent["seconds"] < 1 and spent["peak_bytes"] < 2**20


def test_bytes_and_file_objects_beyond_the_size_limit(monkeypatch, tmp_path):
    encoded = to_bytes(make_dataset(GRADIENT, bits_stored=12))
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", len(encoded) - 1)
    path = tmp_path / "image.dcm"
    path.write_bytes(encoded)
    with open(path, "rb") as stream:
        for source in (encoded, path, stream):
            with pytest.raises(InputTooLargeError, match=f"{len(encoded)} bytes long"):
                read_dicom(source)
    with pytest.raises(InputTooLargeError):
        read_raster(encoded + b"\x00")
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", len(encoded))
    assert read_dicom(encoded).pixels.shape == GRADIENT.shape


# --------------------------------------------------------------------------- DICOM structure


@pytest.mark.parametrize("defined_length", [False, True], ids=["undefined-length", "defined-length"])
def test_deep_sequence_nesting_is_refused_before_parsing(defined_length):
    encoded = to_bytes(make_dataset(GRADIENT, bits_stored=12))
    at_limit = insert_before_pixel_data(
        encoded, nested_sequences(limits.MAX_SEQUENCE_DEPTH, defined_length=defined_length))
    np.testing.assert_array_equal(read_dicom(at_limit).pixels, GRADIENT)
    for depth in (limits.MAX_SEQUENCE_DEPTH + 1, 100_000):
        bomb = insert_before_pixel_data(encoded, nested_sequences(depth, defined_length=defined_length))
        with cost() as spent:
            with pytest.raises(SequenceTooDeepError) as caught:
                read_image(bomb)
        assert f"more than {limits.MAX_SEQUENCE_DEPTH} deep" in str(caught.value)
        assert spent["seconds"] < 1


def test_recursion_error_never_escapes(monkeypatch):
    # With the structure walk's limit lifted, pydicom itself recurses until Python stops it;
    # the reader's boundary still answers with the typed error.
    monkeypatch.setattr(limits, "MAX_SEQUENCE_DEPTH", 10**9)
    encoded = to_bytes(make_dataset(GRADIENT, bits_stored=12))
    bomb = insert_before_pixel_data(encoded, nested_sequences(sys.getrecursionlimit()))
    with pytest.raises(SequenceTooDeepError, match="recursion limit"):
        read_dicom(bomb)


def test_nesting_in_a_deflated_data_set_is_refused():
    nesting = nested_sequences(10_000)
    bomb = deflated(make_dataset(GRADIENT, bits_stored=12), elements_before_pixel_data=nesting)
    with cost() as spent:
        with pytest.raises(SequenceTooDeepError):
            read_dicom(bomb)
    assert spent["seconds"] < 1 and spent["peak_bytes"] < 4 * 2**20


def test_header_with_too_many_elements_is_refused_quickly():
    encoded = to_bytes(make_dataset(GRADIENT, bits_stored=12))
    empty = private_element(0x1011, "LO", b"")
    bomb = insert_before_pixel_data(encoded, empty * (2 * limits.MAX_HEADER_ELEMENTS))
    with cost(trace_memory=False) as spent:
        with pytest.raises(InputTooLargeError, match="MAX_HEADER_ELEMENTS"):
            read_dicom(bomb)
    assert spent["seconds"] < 1


def test_data_after_pixel_data_is_never_parsed():
    encoded = to_bytes(make_dataset(GRADIENT, bits_stored=12))
    # 10 MB of empty elements after Pixel Data: about 4 s when pydicom parsed them.
    bomb = encoded + struct.pack("<HH2sH", 0x7FE1, 0x1010, b"LO", 0) * (10 * 2**20 // 8)
    with cost() as spent:
        image = read_dicom(bomb)
    np.testing.assert_array_equal(image.pixels, GRADIENT)
    assert spent["seconds"] < 0.5 and spent["peak_bytes"] < 4 * 2**20


def test_pixel_data_length_beyond_rows_times_columns_is_not_read():
    ds = make_dataset(GRADIENT, bits_stored=12)
    encoded = bytearray(to_bytes(ds) + bytes(8 * 2**20))
    struct.pack_into("<I", encoded, pixel_data_offset(bytes(encoded)) + 8, len(ds.PixelData) + 8 * 2**20)
    bomb = bytes(encoded)
    with cost() as spent:
        image = read_dicom(bomb)
    np.testing.assert_array_equal(image.pixels, GRADIENT)
    assert spent["peak_bytes"] < 2**20


# --------------------------------------------------------------------------- deflate


def test_deflate_bomb_before_pixel_data_is_refused_at_the_header_allowance():
    bomb = deflated(make_dataset(GRADIENT, bits_stored=12), zeros_before_pixel_data=2**30)
    assert len(bomb) < 2**30 // 500  # a gigabyte of zeros in about a megabyte
    with cost() as spent:
        with pytest.raises(InputTooLargeError) as caught:
            read_dicom(bomb)
    assert f"more than {limits.MAX_INFLATED_HEADER_BYTES} bytes before its Pixel Data" in str(caught.value)
    assert spent["seconds"] < 1
    assert spent["peak_bytes"] < limits.MAX_INFLATED_HEADER_BYTES + 16 * 2**20  # not the gigabyte


def test_deflated_data_after_pixel_data_is_never_inflated():
    bomb = deflated(make_dataset(GRADIENT, bits_stored=12), zeros_after_pixel_data=2**32 - 2)
    with cost() as spent:
        image = read_dicom(bomb)
    np.testing.assert_array_equal(image.pixels, GRADIENT)
    assert image.source.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    assert spent["seconds"] < 0.5 and spent["peak_bytes"] < 2**20


# --------------------------------------------------------------------------- encapsulation


def _encapsulated_under_native_syntax() -> bytes:
    return encapsulated_under_native_syntax(make_dataset(GRADIENT, bits_stored=12))


def test_encapsulated_pixel_data_under_a_native_syntax_is_refused():
    encoded = _encapsulated_under_native_syntax()
    for source in (encoded, pydicom.dcmread(pydicom.filebase.DicomBytesIO(encoded))):
        with pytest.raises(EncapsulationMismatchError) as caught:
            read_dicom(source)
        assert "Explicit VR Little Endian" in str(caught.value)
        assert "undefined length" in str(caught.value)
        assert isinstance(caught.value, CorruptPixelDataError)


def test_compressed_syntax_with_defined_length_pixel_data_is_refused():
    native = to_bytes(make_dataset(GRADIENT, bits_stored=12))
    # Explicit VR Little Endian (1.2.840.10008.1.2.1) relabelled RLE Lossless (...1.2.5).
    relabelled = native.replace(b"1.2.840.10008.1.2.1\x00", RLELossless.encode() + b"\x00", 1)
    assert relabelled != native
    with pytest.raises(EncapsulationMismatchError, match="defined length instead of encapsulated"):
        read_dicom(relabelled)


# --------------------------------------------------------------------------- codestream headers


def _patch(encoded: bytes, offset: int, fmt: str, *values) -> bytes:
    patched = bytearray(encoded)
    struct.pack_into(fmt, patched, offset, *values)
    return bytes(patched)


def _replace_frame(encoded: bytes, frame: bytes) -> bytes:
    """The file with its one fragment replaced (item length updated, padded to even)."""
    start = first_fragment_offset(encoded)
    (length,) = struct.unpack_from("<I", encoded, start - 4)
    frame += b"\x00" * (len(frame) % 2)
    return encoded[:start - 4] + struct.pack("<I", len(frame)) + frame + encoded[start + length:]


def _siz(encoded: bytes) -> int:
    """Offset of the SIZ marker segment's Lsiz field in a JPEG 2000 file made here."""
    start = first_fragment_offset(encoded)
    assert encoded[start:start + 4] == b"\xff\x4f\xff\x51"
    return start + 4


def _sof(encoded: bytes, marker: bytes) -> int:
    """Offset of the frame header's Lf field (T.81 B.2.2) in a JPEG / JPEG-LS file made here."""
    start = first_fragment_offset(encoded)
    return encoded.index(marker, start) + 2


def _jpeg_2000() -> bytes:
    return to_bytes(compressed(GRADIENT, JPEG2000Lossless, bits_stored=12))


def _jpeg_ls() -> bytes:
    return to_bytes(compressed(GRADIENT, JPEGLSLossless, bits_stored=12))


def _jpeg() -> bytes:
    return to_bytes(compressed(GRADIENT % 256, JPEGBaseline8Bit, bits_stored=8))


def _rle() -> bytes:
    return to_bytes(compressed(GRADIENT, RLELossless, bits_stored=12))


def _jpeg_with_components(encoded: bytes, components: int) -> bytes:
    start = first_fragment_offset(encoded)
    (length,) = struct.unpack_from("<I", encoded, start - 4)
    frame = encoded[start:start + length]
    sof = frame.index(b"\xff\xc0")
    precision, rows, columns, _ = struct.unpack_from(">BHHB", frame, sof + 4)
    header = struct.pack(">HBHHB", 8 + 3 * components, precision, rows, columns, components)
    header += b"".join(struct.pack(">BBB", index + 1, 0x11, 0) for index in range(components))
    old_length = struct.unpack_from(">H", frame, sof + 2)[0]
    return _replace_frame(encoded, frame[:sof + 2] + header + frame[sof + 2 + old_length:])


def _jpeg_hierarchical(encoded: bytes, rows: int, columns: int) -> bytes:
    """The JPEG with a DHP segment (T.81 B.3.2) after SOI declaring the whole image's size."""
    start = first_fragment_offset(encoded)
    (length,) = struct.unpack_from("<I", encoded, start - 4)
    frame = encoded[start:start + length]
    dhp = b"\xff\xde" + struct.pack(">HBHHB", 11, 8, rows, columns, 1) + b"\x01\x11\x00"
    return _replace_frame(encoded, frame[:2] + dhp + frame[2:])


def _patched(make, locate, fields) -> bytes:
    """``make()``'s file with ``fields`` ((offset from ``locate(file)``, struct format,
    value), ...) written into it."""
    encoded = make()
    base = locate(encoded)
    for delta, fmt, value in fields:
        encoded = _patch(encoded, base + delta, fmt, value)
    return encoded


def _jpeg_sof(encoded: bytes) -> int:
    return _sof(encoded, b"\xff\xc0")


def _jpeg_ls_sof(encoded: bytes) -> int:
    return _sof(encoded, b"\xff\xf7")


# (bomb builder, DICOM attribute named, DICOM value, codestream value). Offsets from the
# SIZ's Lsiz (T.800 A.5.1): Xsiz +4, Ysiz +8, YTsiz +24, Ssiz of component 0 +38; from the
# frame header's Lf (T.81 B.2.2): P +2, Y +3, X +5.
MISMATCHES = {
    "j2k-rows": (lambda: _patched(_jpeg_2000, _siz, [(8, ">I", 4800)]), "Rows", 48, 4800),
    "j2k-rows-one-tile": (lambda: _patched(_jpeg_2000, _siz, [(8, ">I", 4194604), (24, ">I", 4194604)]),
                          "Rows", 48, 4194604),
    "j2k-columns": (lambda: _patched(_jpeg_2000, _siz, [(4, ">I", 30000)]), "Columns", 64, 30000),
    "j2k-precision": (lambda: _patched(_jpeg_2000, _siz, [(38, ">B", 0x1F)]), "Bits Allocated", 16, 32),
    "jpeg-ls-rows-columns": (lambda: _patched(_jpeg_ls, _jpeg_ls_sof, [(3, ">H", 20000), (5, ">H", 20000)]),
                             "Rows", 48, 20000),
    "jpeg-rows-columns": (lambda: _patched(_jpeg, _jpeg_sof, [(3, ">H", 30000), (5, ">H", 30000)]),
                          "Rows", 48, 30000),
    "jpeg-columns": (lambda: _patched(_jpeg, _jpeg_sof, [(5, ">H", 65535)]), "Columns", 64, 65535),
    "jpeg-precision": (lambda: _patched(_jpeg, _jpeg_sof, [(2, ">B", 12)]), "Bits Allocated", 8, 12),
    "jpeg-components": (lambda: _jpeg_with_components(_jpeg(), 3), "Samples per Pixel", 1, 3),
    "jpeg-hierarchical": (lambda: _jpeg_hierarchical(_jpeg(), 30000, 30000), "Rows", 48, 30000),
    "rle-segments": (lambda: _patched(_rle, first_fragment_offset, [(0, "<I", 15)]), "Bits Allocated", 2, 15),
}


@pytest.mark.parametrize("name", MISMATCHES)
def test_codestream_header_disagreeing_with_the_dicom_header_is_refused(name):
    build, attribute, dicom_value, codestream_value = MISMATCHES[name]
    with pytest.raises(CodestreamMismatchError) as caught:
        read_dicom(build())
    error = caught.value
    assert error.attribute.startswith(attribute)
    assert (error.dicom_value, error.codestream_value) == (dicom_value, codestream_value)
    assert f"{codestream_value} " in str(error) and f"is {dicom_value}" in str(error)


@pytest.mark.parametrize("encoded", [_jpeg_2000, _jpeg_ls, _jpeg, _rle], ids=["j2k", "jpeg-ls", "jpeg", "rle"])
def test_codestreams_made_here_decode(encoded):
    image = read_dicom(encoded())
    if encoded is _jpeg:
        assert np.abs(image.pixels.astype(int) - GRADIENT % 256).max() <= 16
    else:
        np.testing.assert_array_equal(image.pixels, GRADIENT)


def _with_empty_fragments(encoded: bytes, count: int) -> bytes:
    """The file with ``count`` empty fragments before its one fragment (all one frame)."""
    start = first_fragment_offset(encoded) - 8
    return encoded[:start] + struct.pack("<HHI", 0xFFFE, 0xE000, 0) * count + encoded[start:]


def test_fragments_of_one_frame_are_joined_and_counted(monkeypatch):
    np.testing.assert_array_equal(read_dicom(_with_empty_fragments(_rle(), 20)).pixels, GRADIENT)
    bomb = _with_empty_fragments(_rle(), 10 * limits.MAX_FRAGMENTS)
    with cost(trace_memory=False) as spent:
        with pytest.raises(InputTooLargeError, match="MAX_FRAGMENTS"):
            read_dicom(bomb)
    assert spent["seconds"] < 1
    monkeypatch.setattr(limits, "MAX_FRAGMENTS", 22)
    read_dicom(_with_empty_fragments(_rle(), 20))  # 22 items: the Basic Offset Table, 21 fragments
    with pytest.raises(InputTooLargeError, match="more than 22 items"):
        read_dicom(_with_empty_fragments(_rle(), 21))


def test_rle_offsets_outside_the_frame_are_corrupt():
    encoded = _rle()
    start = first_fragment_offset(encoded)
    bomb = _patch(encoded, start + 8, "<I", 0x7FFFFFF0)
    with pytest.raises(CorruptPixelDataError, match=r"segment offsets \[64, 2147483632\]"):
        read_dicom(bomb)


def test_jpeg_ls_oversize_dimensions_are_read():
    # T.87 C.2.4.1.4: SOF55 with height and width 0, an LSE segment (ID 4) giving them.
    sof55 = b"\xff\xf7" + struct.pack(">HBHHB", 11, 16, 0, 0, 1) + b"\x01\x11\x00"
    lse = b"\xff\xf8" + struct.pack(">HBB", 12, 4, 4) + struct.pack(">II", 70000, 3)
    marker, header = jpeg_frame_header(b"\xff\xd8" + sof55 + lse + b"\xff\xda\x00\x08" + bytes(6))
    assert marker == 0xF7 and (header.rows, header.columns, header.precision) == (70000, 3, 16)


CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import radedge.io
warm, bombs = json.loads(sys.argv[1])
for path in warm:  # load every decoder plugin before measuring
    radedge.io.read_image(path)
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = []
for path in bombs:
    start = time.perf_counter()
    try:
        radedge.io.read_image(path)
        outcome = "decoded"
    except Exception as exc:
        outcome = type(exc).__name__
    seconds = time.perf_counter() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline
    report.append([outcome, seconds, grown * 1024])
print(json.dumps(report))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kilobytes on Linux only")
def test_codestream_bombs_cost_no_decoder_memory(tmp_path):
    """Bombs measured inside the decoders before their headers were checked first: 0.4 s /
    600 MB (JPEG 2000 SIZ), 1 s / 1.5 GB (JPEG-LS SOF55), 17 s / 5 GB (JPEG SOF1 of
    pydicom's JPGExtended.dcm) and 0.6 s / 860 MB (a DHP segment)."""
    warm, bombs = [], []
    for index, make in enumerate((_jpeg_2000, _jpeg_ls, _jpeg, _rle)):
        path = tmp_path / f"valid{index}.dcm"
        path.write_bytes(make())
        warm.append(str(path))
    for name in ("j2k-rows-one-tile", "jpeg-ls-rows-columns", "jpeg-rows-columns", "jpeg-hierarchical",
                 "rle-segments"):
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(MISMATCHES[name][0]())
        bombs.append(str(path))
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps([warm, bombs])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for path, (outcome, seconds, grown_bytes) in zip(bombs, json.loads(result.stdout)):
        assert outcome == "CodestreamMismatchError", path
        assert seconds < 1, (path, seconds)
        assert grown_bytes < 32 * 2**20, (path, grown_bytes)


# --------------------------------------------------------------------------- raster headers


def _png_head(width: int, height: int) -> bytes:
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def _tiff_with_ifd_at(offset: int, width: int, height: int) -> tuple[bytes, bytes]:
    """A little endian TIFF header pointing at IFD 0 at ``offset``, and that IFD."""
    entries = [(256, width), (257, height), (258, 8), (259, 1), (262, 1), (273, 8), (277, 1),
               (278, height), (279, width * height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", tag, 4, 1, value)
                                                     for tag, value in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", offset), ifd


@pytest.mark.parametrize("kind", ["png", "jpeg", "tiff-ifd-last"])
def test_raster_header_is_checked_before_the_file_is_read(kind, tmp_path):
    size = 512 * 2**20
    path = tmp_path / "export"
    if kind == "png":
        sparse_file(path, _png_head(100_000, 100_000), size)
    elif kind == "jpeg":
        sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 50_000, 60_000, 1) + b"\x01\x11\x00"
        sparse_file(path, b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9) + sof0, size)
    else:
        head, ifd = _tiff_with_ifd_at(size - 200, 30_000, 20_000)
        sparse_file(path, head, size)
        with open(path, "r+b") as stream:
            stream.seek(size - 200)
            stream.write(ifd)
    with cost() as spent:
        with pytest.raises(ImageTooLargeError, match="header"):
            read_image(path)
    assert spent["seconds"] < 1 and spent["peak_bytes"] < 4 * 2**20  # not the 512 MiB file


def test_raster_with_more_samples_than_opencv_reads_is_refused_before_decoding(tmp_path):
    head, ifd = _tiff_with_ifd_at(8, 4, 4)
    content = bytearray(head + ifd)
    samples_entry = content.index(struct.pack("<HHI", 277, 4, 1))
    struct.pack_into("<I", content, samples_entry + 8, 200)
    with pytest.raises(UnsupportedImageError, match="200 sample"):
        read_raster(bytes(content) + bytes(16 * 200))


def test_every_refusal_here_is_an_input_error():
    for error in (NotRegularFileError, InputTooLargeError, SequenceTooDeepError,
                  CodestreamMismatchError, EncapsulationMismatchError):
        assert issubclass(error, InputError)
    assert issubclass(InputTooLargeError, ImageTooLargeError)
    assert issubclass(CodestreamMismatchError, CorruptPixelDataError)


def _frame(encoded: bytes) -> bytes:
    start = first_fragment_offset(encoded)
    (length,) = struct.unpack_from("<I", encoded, start - 4)
    return encoded[start:start + length]


@pytest.mark.parametrize("make", [_jpeg_2000, _jpeg_ls, _jpeg], ids=["jpeg2000", "jpeg-ls", "jpeg"])
def test_a_codestream_cut_short_is_refused_before_decoding(make):
    # Every file and fragment boundary intact; only the codestream stops early. CharLS spent
    # about 4 s on such a stream before failing, whatever the image size.
    encoded = make()
    frame = _frame(encoded).rstrip(b"\x00")
    for keep in (len(frame) // 2, len(frame) - 2):
        with cost() as spent:
            with pytest.raises(TruncatedPixelDataError, match="end-of-image marker"):
                read_image(_replace_frame(encoded, frame[:keep]))
        assert spent["seconds"] < 0.5


@pytest.mark.parametrize("padding", [b"", b"\x00", b"\xff", b"\x00" * 7])
@pytest.mark.parametrize("make", [_jpeg_2000, _jpeg_ls, _jpeg], ids=["jpeg2000", "jpeg-ls", "jpeg"])
def test_padding_after_the_end_marker_is_accepted(make, padding):
    encoded = make()
    frame = _frame(encoded).rstrip(b"\x00")
    assert frame.endswith(b"\xff\xd9")
    expected = read_image(encoded).pixels
    np.testing.assert_array_equal(read_image(_replace_frame(encoded, frame + padding)).pixels, expected)


def test_an_element_longer_than_the_file_costs_no_more_than_the_file(tmp_path):
    # A header element declaring 4 GiB - 16 bytes in a file of a few kilobytes: pydicom asks
    # the file for the declared length, which once allocated 4 GiB before finding less.
    encoded = to_bytes(make_dataset(GRADIENT, bits_stored=12))
    offset = pixel_data_offset(encoded)
    damaged = encoded[:offset] + PRIVATE_CREATOR + struct.pack("<HH2sHI", 0x0029, 0x1010, b"OB", 0, 0xFFFFFFF0)
    path = tmp_path / "long_element.dcm"
    path.write_bytes(damaged + encoded[offset:])
    with cost() as spent:
        with pytest.raises(InputError):
            read_image(path)
    assert spent["peak_bytes"] < 16 << 20
