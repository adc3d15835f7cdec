"""What ``read_image`` and ``predict`` accept as an image, and the typed error for each thing
they do not: a missing path, a directory, a file without read permission, a text-mode file
object, an object of another type."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

from radedge.errors import (
    InputNotFoundError,
    InputNotReadableError,
    InputTypeError,
    InvalidArgumentError,
    NotRegularFileError,
    RadedgeError,
)
from radedge.io import IsolatedReader, read_dicom, read_image
from radedge.pipeline import load_model

PHANTOM = Path(__file__).resolve().parents[1] / "data" / "transfer_syntaxes" / "jpeg_ls_lossless_mono2.dcm"
TINY = Path(__file__).resolve().parents[1] / "models" / "tiny_bone_tumor"
PNG = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def expected() -> np.ndarray:
    return read_image(PHANTOM).pixels


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, io.BytesIO], ids=lambda wrap: wrap.__name__)
def test_bytes_like_and_in_memory_streams_read_as_the_file(wrap, expected):
    image = read_image(wrap(PHANTOM.read_bytes()))
    assert np.array_equal(image.pixels, expected)


def test_an_open_binary_file_reads_from_its_position_and_names_its_path(expected, tmp_path):
    with open(PHANTOM, "rb") as stream:
        image = read_image(stream)
    assert np.array_equal(image.pixels, expected)
    assert image.source.path == str(PHANTOM)
    padded = tmp_path / "after_junk.bin"
    padded.write_bytes(b"junk" + PHANTOM.read_bytes())
    with open(padded, "rb") as stream:
        stream.seek(4)
        assert np.array_equal(read_image(stream).pixels, expected)


def test_predict_takes_an_open_file():
    model = load_model(TINY, threads=1)
    with open(PHANTOM, "rb") as stream:
        from_stream = model.predict(stream, check_scope=False)
    from_path = model.predict(PHANTOM, check_scope=False)
    assert [flag.code for flag in from_stream.flags] == [flag.code for flag in from_path.flags]
    for head, result in from_path.classifications.items():
        assert np.array_equal(from_stream.classifications[head].probabilities, result.probabilities)


def test_a_text_mode_file_is_refused_with_its_type(tmp_path):
    with open(PHANTOM, encoding="latin-1") as stream:
        with pytest.raises(InputTypeError) as caught:
            read_image(stream)
    assert caught.value.code == "input.invalid_type"
    assert caught.value.received == "text file object"
    assert "open(path, 'rb')" in str(caught.value)
    with pytest.raises(InputTypeError):
        read_image(io.StringIO("DICM"))
    with pytest.raises(InputTypeError):
        read_dicom(io.StringIO("DICM"))


@pytest.mark.parametrize("source", [42, 3.5, None, ["a.dcm"], np.zeros((4, 4), np.uint16)],
                         ids=["int", "float", "None", "list", "array"])
def test_other_types_are_refused_by_name(source):
    with pytest.raises(InputTypeError) as caught:
        read_image(source)
    assert caught.value.received == type(source).__name__
    assert isinstance(caught.value, TypeError)  # as before, for callers that caught TypeError


def test_a_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "image.dcm"
    with pytest.raises(InputNotFoundError) as caught:
        read_image(missing)
    assert caught.value.path == str(missing) and caught.value.code == "input.not_found"
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(InputNotFoundError):
        read_dicom(str(missing))
    with pytest.raises(InputNotFoundError):
        load_model(TINY, threads=1).predict(missing)


def test_a_path_through_a_file(tmp_path):
    with pytest.raises(InputNotFoundError):
        read_image(PHANTOM / "inside.dcm")


def test_a_directory(tmp_path):
    with pytest.raises(NotRegularFileError) as caught:
        read_image(tmp_path)
    assert caught.value.received == "a directory" and caught.value.path == str(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission(tmp_path):
    locked = tmp_path / "locked.dcm"
    locked.write_bytes(PHANTOM.read_bytes())
    locked.chmod(0)
    try:
        with pytest.raises(InputNotReadableError) as caught:
            read_image(locked)
    finally:
        locked.chmod(0o600)
    assert caught.value.errno_name == "EACCES" and caught.value.path == str(locked)
    assert isinstance(caught.value, PermissionError)


def test_the_isolated_reader_takes_a_binary_file_and_refuses_a_text_one(expected):
    with IsolatedReader(time_budget_s=30) as reader:
        with open(PHANTOM, "rb") as stream:
            assert np.array_equal(reader.read(stream).pixels, expected)
        with pytest.raises(InputNotFoundError) as caught:
            reader.read(PHANTOM.parent / "missing.dcm")
        assert caught.value.path == str(PHANTOM.parent / "missing.dcm")  # crossed the process boundary whole
        with open(PHANTOM, encoding="latin-1") as stream, pytest.raises(InputTypeError):
            reader.read(stream)


@pytest.mark.parametrize("arguments, argument", [
    ({"time_budget_s": 0}, "time_budget_s"),
    ({"time_budget_s": -1.0}, "time_budget_s"),
    ({"time_budget_s": float("nan")}, "time_budget_s"),
    ({"memory_limit_bytes": 0}, "memory_limit_bytes"),
    ({"max_pixels": -5}, "max_pixels"),
])
def test_the_isolated_reader_checks_its_arguments(arguments, argument):
    with pytest.raises(InvalidArgumentError) as caught:
        IsolatedReader(**arguments)
    assert caught.value.argument == argument
    assert isinstance(caught.value, ValueError)


def test_read_image_checks_max_pixels():
    with pytest.raises(InvalidArgumentError) as caught:
        read_image(PHANTOM, max_pixels=0)
    assert caught.value.argument == "max_pixels"
    assert isinstance(caught.value, RadedgeError)


def test_what_the_system_says_becomes_the_typed_error():
    # As root the test above cannot provoke EACCES; the translation of the OSError open() raises is the same.
    import errno

    from radedge.io.files import unreadable

    denied = unreadable("/x.dcm", PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/x.dcm"))
    assert isinstance(denied, InputNotReadableError) and denied.errno_name == "EACCES"
    assert denied.reason == os.strerror(errno.EACCES) and "read permission" in str(denied)
    looping = unreadable("/x.dcm", OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/x.dcm"))
    assert isinstance(looping, InputNotReadableError) and looping.errno_name == "ELOOP"


def test_a_compressed_stream_whose_mode_is_not_text(tmp_path, expected):
    import gzip

    packed = tmp_path / "image.dcm.gz"
    packed.write_bytes(gzip.compress(PHANTOM.read_bytes()))
    with gzip.open(packed, "rb") as stream:  # its mode is an int
        assert np.array_equal(read_image(stream).pixels, expected)
