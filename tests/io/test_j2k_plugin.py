"""radedge's JPEG 2000 / HTJ2K plugin (``radedge.io.j2k_plugin``): the frames it returns are
those of pylibjpeg-openjpeg, byte for byte, on every JPEG 2000 file at hand and on encodings
made here for the cases those files miss; radedge uses it when imagecodecs is installed; it
decodes on the threads ``RADEDGE_DECODE_THREADS`` asks for; a codestream it cannot decode is
refused with radedge's typed error.

The fallback without imagecodecs is tested in test_missing_plugin.py.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filereader import read_file_meta_info
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    DigitalXRayImageStorageForPresentation,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
)

from radedge.errors import CorruptPixelDataError
from radedge.io import IsolatedReader, read_image
from radedge.io.codecs import PIP_DECODERS, decodable_syntax_uids, get_decoder, preferred_plugin
from radedge.io.j2k_plugin import DEFAULT_MAX_THREADS, PLUGIN_LABEL, SYNTAXES, decode_threads

imagecodecs = pytest.importorskip("imagecodecs")
pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg, the reference decoder, is not installed")

REPO = Path(__file__).resolve().parents[2]
PYDICOM_TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


def _transfer_syntax(path: Path) -> str:
    """From the file meta alone: some fuzz-found headers take pydicom seconds to parse."""
    try:
        return str(read_file_meta_info(path).get("TransferSyntaxUID", ""))
    except Exception:  # noqa: BLE001 - PNG, TIFF and fuzz-found bytes: not a JPEG 2000 file
        return ""


def _jpeg_2000_files() -> list[Path]:
    """Every JPEG 2000 / HTJ2K file in the repository's test data and examples and in pydicom's
    wheel, but the hostile one that declares 4 million rows (radedge refuses it before decoding;
    decoded directly, both decoders would allocate a gigabyte)."""
    folders = [REPO / "tests" / "data", REPO / "examples", PYDICOM_TEST_FILES]
    files = [path for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()
             and path.suffix in (".dcm", "") and path.name != "j2k_siz_rows_4194604.dcm"]
    return [path for path in files if _transfer_syntax(path) in SYNTAXES]


def _decoded(ds: Dataset, plugin: str, raw: bool):
    """pydicom's array and pixel description with one plugin, or the error's type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)  # pydicom logs each failing plugin's traceback
        try:
            pixels, description = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(
                ds, index=0, raw=raw, decoding_plugin=plugin)
        except Exception as exc:  # noqa: BLE001 - compared with what the other plugin raises
            return type(exc), None
        finally:
            logging.disable(logging.NOTSET)
    return pixels, description


def _assert_same_as_pylibjpeg(ds: Dataset) -> None:
    for raw in (True, False):
        expected, expected_description = _decoded(ds, "pylibjpeg", raw)
        got, description = _decoded(ds, PLUGIN_LABEL, raw)
        if not isinstance(expected, np.ndarray):
            # A file pylibjpeg-openjpeg refuses (pydicom's JPEG2000-embedded-sequence-delimiter):
            # refused here too.
            assert not isinstance(got, np.ndarray), "decoded what pylibjpeg-openjpeg refuses"
            continue
        assert isinstance(got, np.ndarray), got
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape)
        np.testing.assert_array_equal(got, expected)
        # What the plugins told pydicom about the frame (Bits Allocated, photometric
        # interpretation) shapes the array; it must be the same too.
        assert description == expected_description


JPEG_2000_FILES = _jpeg_2000_files()


def test_the_files_cover_both_families_and_both_signs():
    syntaxes = {_transfer_syntax(path) for path in JPEG_2000_FILES}
    assert {JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL} <= syntaxes
    representations = {pydicom.dcmread(path, stop_before_pixels=True).PixelRepresentation for path in JPEG_2000_FILES}
    assert representations == {0, 1}
    assert len(JPEG_2000_FILES) >= 18


@pytest.mark.parametrize("path", JPEG_2000_FILES, ids=lambda path: str(path.relative_to(path.parents[1])))
def test_file_decodes_as_pylibjpeg_openjpeg_decodes_it(path):
    _assert_same_as_pylibjpeg(pydicom.dcmread(path))


# --------------------------------------------------------------------------- made here


def _dataset(codestream: bytes, syntax: str, stored: np.ndarray, *, bits_stored: int, signed: bool = False,
             photometric: str | None = None) -> Dataset:
    """A one-frame data set whose Pixel Data is ``codestream``, described for ``stored``
    (``[rows, columns]`` or ``[rows, columns, 3]``)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Modality = "DX"
    ds.Rows, ds.Columns = stored.shape[:2]
    ds.SamplesPerPixel = stored.shape[2] if stored.ndim == 3 else 1
    ds.PhotometricInterpretation = photometric or ("RGB" if stored.ndim == 3 else "MONOCHROME2")
    if stored.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _radiograph(rows: int, columns: int, bits: int, signed: bool = False, seed: int = 0) -> np.ndarray:
    """Smooth ramps and noise filling ``bits`` bits, as ``[u]int8`` / ``[u]int16``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    levels = 1 << bits
    values = (levels * (0.5 + 0.4 * np.sin(x / 17.0) * np.cos(y / 23.0)) + rng.normal(0, levels / 50, (rows, columns)))
    values = np.clip(values, 0, levels - 1).astype(np.int64) - (levels // 2 if signed else 0)
    return values.astype(f"{'i' if signed else 'u'}{1 if bits <= 8 else 2}")


def _j2k(stored: np.ndarray, *, bits: int, reversible: bool = True, codecformat: str = "J2K") -> bytes:
    return bytes(imagecodecs.jpeg2k_encode(stored, level=0 if reversible else 30, codecformat=codecformat,
                                           reversible=reversible, bitspersample=bits))


def _ht(stored: np.ndarray, *, reversible: bool = True) -> bytes:
    return bytes(imagecodecs.htj2k_encode(stored, reversible=reversible))


_MADE = {
    # J2K: signed 16 and 13 bits (precision below the container), 8 bits, lossy signed, JP2
    # boxes around the codestream (which PS3.5 A.4.4 forbids and writers still produce).
    "j2k-int16": lambda: (_j2k(s := _radiograph(96, 80, 16, True), bits=16), JPEG2000Lossless, s, 16, True),
    "j2k-int13": lambda: (_j2k(s := _radiograph(96, 80, 13, True), bits=13), JPEG2000Lossless, s, 13, True),
    "j2k-uint8": lambda: (_j2k(s := _radiograph(96, 80, 8), bits=8), JPEG2000Lossless, s, 8, False),
    "j2k-lossy-int12": lambda: (_j2k(s := _radiograph(96, 80, 12, True), bits=12, reversible=False), JPEG2000, s, 12, True),
    "jp2-uint12": lambda: (_j2k(s := _radiograph(96, 80, 12), bits=12, codecformat="JP2"), JPEG2000Lossless, s, 12, False),
    # HTJ2K: OpenJPH's encoder writes the dtype's precision, so 8 and 16 bits.
    "htj2k-uint16": lambda: (_ht(s := _radiograph(96, 80, 16)), HTJ2KLossless, s, 16, False),
    "htj2k-int16": lambda: (_ht(s := _radiograph(96, 80, 16, True)), HTJ2KLosslessRPCL, s, 16, True),
    "htj2k-uint8": lambda: (_ht(s := _radiograph(96, 80, 8)), HTJ2KLossless, s, 8, False),
    "htj2k-lossy-uint16": lambda: (_ht(s := _radiograph(96, 80, 16), reversible=False), HTJ2K, s, 16, False),
    "htj2k-rgb": lambda: (_ht(s := np.stack([_radiograph(96, 80, 8, seed=k) for k in range(3)], -1)),
                          HTJ2KLossless, s, 8, False),
}


@pytest.mark.parametrize("case", _MADE)
def test_encoding_made_here_decodes_as_pylibjpeg_openjpeg_decodes_it(case):
    codestream, syntax, stored, bits, signed = _MADE[case]()
    ds = _dataset(codestream, syntax, stored, bits_stored=bits, signed=signed)
    _assert_same_as_pylibjpeg(ds)
    if syntax != JPEG2000 and syntax != HTJ2K:
        pixels, _ = _decoded(ds, PLUGIN_LABEL, raw=True)
        np.testing.assert_array_equal(pixels, stored)


@pytest.mark.parametrize("name", ["htj2k_lossless_mono2.dcm", "htj2k_lossless_rpcl_mono1.dcm"])
def test_htj2k_phantoms_read_to_the_uncompressed_stored_values(name):
    folder = REPO / "tests" / "data" / "transfer_syntaxes"
    uncompressed = read_image(folder / f"explicit_vr_le_{name.rsplit('_', 1)[1]}")
    image = read_image(folder / name)
    assert image.source.transfer_syntax_uid in (HTJ2KLossless, HTJ2KLosslessRPCL)
    np.testing.assert_array_equal(image.pixels, uncompressed.pixels)
    assert image.pixels.dtype == np.uint16 and image.intensity == uncompressed.intensity and image.notes == ()


# --------------------------------------------------------------------------- choice


def test_radedge_prefers_the_plugin_for_every_jpeg_2000_and_htj2k_syntax():
    for uid in SYNTAXES:
        assert PLUGIN_LABEL in get_decoder(uid).available_plugins
        assert preferred_plugin(uid) == PLUGIN_LABEL
        assert str(uid) in decodable_syntax_uids()
        assert PIP_DECODERS[uid][0] == ("imagecodecs",)
    # Another syntax keeps its own preference, or pydicom's order.
    assert preferred_plugin(pydicom.uid.JPEGLSLossless) == "pyjpegls"
    assert preferred_plugin(pydicom.uid.RLELossless) == ""


# --------------------------------------------------------------------------- threads


def test_decode_threads_follow_the_environment(monkeypatch, caplog):
    monkeypatch.delenv("RADEDGE_DECODE_THREADS", raising=False)
    monkeypatch.delenv("RADEDGE_NUM_THREADS", raising=False)
    assert decode_threads() == min(len(os.sched_getaffinity(0)), DEFAULT_MAX_THREADS)
    monkeypatch.setenv("RADEDGE_NUM_THREADS", "5")
    assert decode_threads() == 5
    monkeypatch.setenv("RADEDGE_DECODE_THREADS", "3")
    assert decode_threads() == 3
    monkeypatch.setenv("RADEDGE_DECODE_THREADS", "three")
    with caplog.at_level(logging.WARNING, logger="radedge.io.j2k_plugin"):
        assert decode_threads() == 5
        assert decode_threads() == 5
    assert [record.getMessage() for record in caplog.records] == [(
        "RADEDGE_DECODE_THREADS='three' is not a positive number of threads; ignored. Set it to, e.g., 1 "
        "to decode JPEG 2000 on one thread, or unset it to use every CPU.")]


def _threads_while(read, path: Path) -> tuple[np.ndarray, int]:
    """``read(path)``'s pixels, and how many threads appeared in this process while it ran
    (thread ids sampled from /proc/self/task; OpenJPEG decodes with the GIL released, so the
    sampler runs throughout)."""
    tasks = Path("/proc/self/task")
    seen: set[str] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.update(entry.name for entry in tasks.iterdir())

    before = {entry.name for entry in tasks.iterdir()}
    sampler = threading.Thread(target=sample)
    sampler.start()
    time.sleep(0.01)
    try:
        pixels = read(path)
    finally:
        done.set()
        sampler.join()
    return pixels, len(seen - before - {str(sampler.native_id)})


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in Linux's /proc")
@pytest.mark.parametrize("syntax", [JPEG2000Lossless, HTJ2KLossless])
def test_read_image_decodes_on_the_threads_asked_for(monkeypatch, tmp_path, syntax):
    # Large enough (1000 x 1000) that each decoding thread is seen by the sampler.
    stored = _radiograph(1000, 1000, 16)
    codestream = _j2k(stored, bits=16) if syntax == JPEG2000Lossless else _ht(stored)
    path = tmp_path / "radiograph.dcm"
    _dataset(codestream, syntax, stored, bits_stored=16).save_as(path)
    monkeypatch.setenv("RADEDGE_DECODE_THREADS", "1")
    one_thread, added = _threads_while(lambda path: read_image(path).pixels, path)
    assert added == 0  # OpenJPEG decodes on the calling thread
    monkeypatch.setenv("RADEDGE_DECODE_THREADS", "3")
    three_threads, added = _threads_while(lambda path: read_image(path).pixels, path)
    # OpenJPEG's pool of 3, on any machine: radedge's plugin decoding, since
    # pylibjpeg-openjpeg starts no thread...
    assert added == 3
    np.testing.assert_array_equal(three_threads, stored)
    np.testing.assert_array_equal(one_thread, stored)
    # ... as pydicom outside radedge shows: the plugin is added after pydicom's own, so a
    # pixel_array without a chosen plugin decodes with pylibjpeg-openjpeg as before.
    pydicom_pixels, added = _threads_while(lambda path: pydicom.dcmread(path).pixel_array, path)
    assert added == 0
    np.testing.assert_array_equal(pydicom_pixels, stored)


def test_a_worker_that_cannot_start_the_threads_decodes_on_one(monkeypatch):
    # 32 threads (OpenJPEG's most) need 256 MiB of stacks, more than the worker may add: the
    # pool cannot start, which is no fault of the file; before the fallback it was reported as
    # CorruptPixelDataError.
    monkeypatch.setenv("RADEDGE_DECODE_THREADS", "32")
    path = REPO / "examples" / "radiographs" / "tibia_benign.dcm"
    with IsolatedReader(memory_limit_bytes=160 << 20) as reader:
        np.testing.assert_array_equal(reader.read(path).pixels, read_image(path).pixels)


# --------------------------------------------------------------------------- damage


def test_a_codestream_cut_inside_its_tiles_is_refused_with_radedges_error():
    # The end-of-codestream marker is put back, so the check before decoding passes and the
    # decoder itself meets the missing data; imagecodecs' Jpeg2kError must not escape.
    path = REPO / "tests" / "data" / "transfer_syntaxes" / "htj2k_lossless_mono2.dcm"
    ds = pydicom.dcmread(path)
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    tiles = codestream.index(b"\xff\x90")
    ds.PixelData = encapsulate([codestream[:tiles + (len(codestream) - tiles) // 2] + b"\xff\xd9"])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(CorruptPixelDataError, match="High-Throughput JPEG 2000 .* could not be decoded"):
        read_image(buffer.getvalue())
