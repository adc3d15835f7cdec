"""A pydicom Dataset without File Meta Information, as a DICOM receiver hands one over: its
transfer syntax comes from an argument or is inferred from the Pixel Data, and the image reads
and predicts exactly as the file it came from (docs/errors.md)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file

from radedge import load_model, load_models
from radedge.errors import InvalidArgumentError, UnsupportedTransferSyntaxError
from radedge.io import IsolatedReader, read_image

PHANTOMS = Path(__file__).resolve().parents[1] / "data" / "transfer_syntaxes"
INDEX = json.loads((PHANTOMS / "index.json").read_text())["files"]
# Every transfer syntax of the phantom set, in both photometric interpretations.
PHANTOM_FILES = [entry["file"] for entry in INDEX]
# A syntax the phantoms lack.
PYDICOM_FILES = ["MR_small_bigendian.dcm", "JPEGLSNearLossless_08.dcm", "693_J2KI.dcm"]

#: Syntaxes read under a sibling UID when inferred; the same decoder reads both (docs/errors.md).
SIBLINGS = {
    uid.JPEG2000Lossless: uid.JPEG2000,
    uid.HTJ2KLossless: uid.HTJ2K,
    uid.HTJ2KLosslessRPCL: uid.HTJ2K,
    uid.DeflatedExplicitVRLittleEndian: uid.ExplicitVRLittleEndian,
}


def _path(name: str) -> str:
    return str(PHANTOMS / name) if (PHANTOMS / name).is_file() else get_testdata_file(name)


def _without_meta(path: str) -> pydicom.Dataset:
    dataset = pydicom.dcmread(path)
    del dataset.file_meta
    assert not hasattr(dataset, "file_meta") or not dataset.file_meta.get("TransferSyntaxUID")
    return dataset


def test_every_phantom_syntax_is_covered():
    syntaxes = {entry["transfer_syntax_uid"] for entry in INDEX}
    assert len(syntaxes) >= 12 and uid.RLELossless in syntaxes and uid.HTJ2KLosslessRPCL in syntaxes


@pytest.mark.parametrize("name", PHANTOM_FILES + PYDICOM_FILES)
def test_inferred_syntax_reads_the_pixels_of_the_file(name):
    from_file = read_image(_path(name))
    dataset = _without_meta(_path(name))
    inferred = read_image(dataset)
    assert np.array_equal(inferred.pixels, from_file.pixels)
    assert inferred.pixels.dtype == from_file.pixels.dtype
    declared = from_file.source.transfer_syntax_uid
    assert inferred.source.transfer_syntax_uid in (declared, SIBLINGS.get(declared))
    assert any(note.startswith("no Transfer Syntax UID (0002,0010)") for note in inferred.notes)
    assert not hasattr(dataset, "file_meta") or not dataset.file_meta.get("TransferSyntaxUID")  # caller's untouched


@pytest.mark.parametrize("name", PHANTOM_FILES + PYDICOM_FILES)
def test_a_transfer_syntax_argument_reads_the_pixels_of_the_file(name):
    from_file = read_image(_path(name))
    declared = from_file.source.transfer_syntax_uid
    if declared == uid.DeflatedExplicitVRLittleEndian:
        declared = uid.ExplicitVRLittleEndian  # a parsed data set holds inflated elements
    given = read_image(_without_meta(_path(name)), transfer_syntax_uid=declared)
    assert np.array_equal(given.pixels, from_file.pixels)
    assert given.source.transfer_syntax_uid == declared


@pytest.fixture(scope="module")
def bone_tumor():
    return load_model(threads=2)


@pytest.mark.parametrize("name", [name for name in PHANTOM_FILES if name.endswith("mono2.dcm")])
def test_same_prediction_as_from_the_file(bone_tumor, name):
    from_file = bone_tumor.predict(_path(name), check_scope=False)
    inferred = bone_tumor.predict(_without_meta(_path(name)), check_scope=False)
    assert [flag.code for flag in inferred.flags] == [flag.code for flag in from_file.flags]
    assert [flag.score for flag in inferred.flags] == [flag.score for flag in from_file.flags]
    for head, result in from_file.classifications.items():
        assert np.array_equal(inferred.classifications[head].probabilities, result.probabilities)
    for head, result in from_file.segmentations.items():
        assert np.array_equal(inferred.segmentations[head].mask, result.mask)


def _as_received(path: str, *, implicit: bool) -> pydicom.Dataset:
    """The data set as pynetdicom's C-STORE ``event.dataset`` gives it: encoded for the wire in the
    presentation context's encoding, then decoded by ``pynetdicom.dsutils.decode``, no file meta."""
    from pynetdicom.dsutils import decode, encode

    dataset = pydicom.dcmread(path)
    little = dataset.file_meta.TransferSyntaxUID != uid.ExplicitVRBigEndian
    del dataset.file_meta
    return decode(io.BytesIO(encode(dataset, implicit, little)), implicit, little)


@pytest.mark.parametrize("name", ["j2k_lossless_mono2.dcm", "jpeg_ls_lossless_mono1.dcm", "rle_mono2.dcm",
                                  "htj2k_lossless_mono2.dcm", "explicit_vr_le_mono2.dcm"])
def test_a_data_set_as_pynetdicom_decodes_it(bone_tumor, name):
    received = _as_received(_path(name), implicit=name.startswith("explicit"))
    assert "file_meta" not in received.__dict__ or not received.file_meta.get("TransferSyntaxUID")
    from_file = bone_tumor.predict(_path(name), check_scope=False)
    prediction = bone_tumor.predict(received, check_scope=False)
    assert [(flag.code, flag.score) for flag in prediction.flags] == [(flag.code, flag.score) for flag in from_file.flags]
    for head, result in from_file.classifications.items():
        assert np.array_equal(prediction.classifications[head].probabilities, result.probabilities)


def test_model_set_and_isolated_reader_take_the_transfer_syntax(tmp_path):
    name = "jpeg_ls_lossless_mono2.dcm"
    from_file = read_image(_path(name))
    with IsolatedReader(time_budget_s=30) as reader:
        image = reader.read(_without_meta(_path(name)), transfer_syntax_uid=uid.JPEGLSLossless)
    assert np.array_equal(image.pixels, from_file.pixels)
    models = load_models([Path(__file__).resolve().parents[1] / "models" / "tiny_bone_tumor"], threads=1)
    analysis = models.predict(_without_meta(_path(name)), transfer_syntax_uid=uid.JPEGLSLossless)
    assert analysis.image["transfer_syntax"] == "JPEG-LS Lossless Image Compression"


def test_a_wrong_transfer_syntax_argument_is_refused_by_name():
    dataset = _without_meta(_path("rle_mono2.dcm"))
    with pytest.raises(InvalidArgumentError) as caught:
        read_image(dataset, transfer_syntax_uid="RLE please")
    assert caught.value.argument == "transfer_syntax_uid"
    with pytest.raises(InvalidArgumentError, match="only a pydicom Dataset"):
        read_image(_path("rle_mono2.dcm"), transfer_syntax_uid=uid.RLELossless)
    with pytest.raises(UnsupportedTransferSyntaxError) as unknown:
        read_image(dataset, transfer_syntax_uid="1.2.3.4")
    assert unknown.value.transfer_syntax_uid == "1.2.3.4"
