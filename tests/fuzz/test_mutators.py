"""The fuzz inputs: seeds of every kind, deterministic generation, diverse mutations, and a
few mutators checked to make exactly the structure they name (read back by pydicom, OpenCV
and radedge)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import subprocess
import sys
from collections import Counter
from io import BytesIO

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_fragments

from radedge.errors import (
    CodestreamMismatchError,
    ImageTooLargeError,
    InputTooLargeError,
    RadedgeError,
    SequenceTooDeepError,
    UnsupportedTransferSyntaxError,
)
from radedge.io import read_image

from . import mutators
from .mutators import FAMILIES, MAX_CASE_BYTES, Case, family, generate
from .seeds import REPO, Seed, load_seeds

CASES = 300


@pytest.fixture(scope="module")
def seeds():
    return load_seeds()


@pytest.fixture(scope="module")
def by_name(seeds):
    return {seed.name: seed for seed in seeds}


@pytest.fixture(scope="module")
def cases(seeds):
    return [generate(seeds, 20240607, case) for case in range(CASES)]


def pixel_data_fragments(data: bytes) -> list[bytes]:
    """The fragments of the file's encapsulated Pixel Data, as pydicom parses them."""
    ds = pydicom.dcmread(BytesIO(data))
    return list(generate_fragments(ds.PixelData))[1:]  # the first item is the Basic Offset Table


# --------------------------------------------------------------------------- seeds


def test_seeds_are_of_every_kind_with_unique_names(seeds):
    assert Counter(seed.kind for seed in seeds).keys() == {"dicom", "png", "jpeg", "tiff"}
    assert len({seed.name for seed in seeds}) == len(seeds)
    raster = [seed for seed in seeds if seed.kind != "dicom"]
    assert len(raster) >= 10 and all(seed.name.startswith("raster/") for seed in raster)
    for seed in raster:
        decoded = cv2.imdecode(np.frombuffer(seed.data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded is not None and max(decoded.shape) <= 512, seed.name


def test_seeds_hold_every_transfer_syntax_of_the_phantoms(seeds):
    index = json.loads((REPO / "tests/data/transfer_syntaxes/index.json").read_text())
    expected = {entry["transfer_syntax_uid"] for entry in index["files"]}
    found = {str(pydicom.dcmread(BytesIO(seed.data), stop_before_pixels=True).file_meta.TransferSyntaxUID)
             for seed in seeds if seed.name.startswith("transfer_syntaxes/")}
    assert expected <= found
    compressed = {uid for uid in expected if pydicom.uid.UID(uid).is_compressed}
    assert len(compressed) >= 6  # RLE, JPEG extended and lossless, JPEG-LS x 2, JPEG 2000 x 2


def test_large_seeds_are_picked_less_often(seeds):
    large = [seed for seed in seeds if len(seed.data) >= 1 << 20]
    assert {seed.name.split("/")[0] for seed in large} == {"examples"}
    small_weight = next(seed.weight for seed in seeds if seed.name == "transfer_syntaxes/rle_mono2.dcm")
    assert all(seed.weight <= small_weight / 10 for seed in large)


# --------------------------------------------------------------------------- determinism

_SUBPROCESS = """
import hashlib, sys
from tests.fuzz.mutators import generate
from tests.fuzz.seeds import load_seeds
seeds = load_seeds()
print(hashlib.sha256(b"".join(seed.data for seed in seeds)).hexdigest())
for case in map(int, sys.argv[1:]):
    print(hashlib.sha256(generate(seeds, 77, case).data).hexdigest())
"""


def test_generate_is_a_pure_function_of_its_arguments(seeds):
    numbers = [0, 1, 5, 42, 99]
    first = [generate(seeds, 77, case) for case in numbers]
    assert first == [generate(seeds, 77, case) for case in numbers]
    assert first == [generate(load_seeds(), 77, case) for case in numbers]
    assert len({case.data for case in first}) == len(first)
    assert generate(seeds, 78, 0) != first[0]

    # In a fresh process: another hash seed, nothing cached.
    result = subprocess.run([sys.executable, "-c", _SUBPROCESS, *map(str, numbers)], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"})
    lines = result.stdout.split()
    assert lines[0] == hashlib.sha256(b"".join(seed.data for seed in seeds)).hexdigest()
    assert lines[1:] == [hashlib.sha256(case.data).hexdigest() for case in first]


# --------------------------------------------------------------------------- campaign


def test_cases_are_bounded_and_say_what_they_did(cases):
    assert all(isinstance(case, Case) for case in cases)
    assert [case.case for case in cases] == list(range(CASES))
    for case in cases:
        assert len(case.data) <= MAX_CASE_BYTES, case.mutations
        assert 1 <= len(case.mutations) <= 4, case.mutations  # 3 stacked, plus a size cap
        assert all(family(mutation) in FAMILIES for mutation in case.mutations), case.mutations


def test_cases_mutate_their_seed(cases, by_name):
    changed = sum(case.data != by_name[case.seed].data for case in cases)
    assert changed >= 0.95 * len(cases)
    fallbacks = sum("(fallback:" in mutation for case in cases for mutation in case.mutations)
    assert fallbacks <= 0.05 * sum(len(case.mutations) for case in cases)


def test_cases_cover_the_mutation_families(cases):
    seen = Counter(family(mutation) for case in cases for mutation in case.mutations)
    required = {"header", "lut", "window", "rescale", "spacing", "syntax", "nesting", "fragments", "codestream",
                "truncate", "trailing", "raster", "bytes"}
    assert required <= seen.keys(), sorted(required - seen.keys())
    assert len(seen) >= 14
    stacked = Counter(len(case.mutations) for case in cases)
    assert stacked[1] and stacked[2] and stacked[3]
    assert len({case.seed for case in cases}) >= 50


def test_raster_cases_mutate_each_format(cases):
    said = [mutation for case in cases for mutation in case.mutations if family(mutation) == "raster"]
    assert {mutation.split()[1] for mutation in said} == {"png", "jpeg", "tiff"}


# --------------------------------------------------------------------------- targeted mutators


@pytest.mark.parametrize("name", ["explicit_vr_le_mono2", "implicit_vr_le_mono2", "deflated_le_mono2"])
def test_nesting_300_deep_is_refused_and_8_deep_still_reads(by_name, name):
    data = by_name[f"transfer_syntaxes/{name}.dcm"].data
    deep = mutators.nest_sequences(data, 300)
    with pytest.raises(RecursionError):
        pydicom.dcmread(BytesIO(deep))
    with pytest.raises(SequenceTooDeepError):
        read_image(deep)

    shallow = mutators.nest_sequences(data, 8)
    ds = pydicom.dcmread(BytesIO(shallow))
    depth, item = 0, ds
    while (0x7FDF1010 in item) and item[0x7FDF1010].VR == "SQ":
        item = item[0x7FDF1010].value[0]
        depth += 1
    assert depth == 8
    np.testing.assert_array_equal(read_image(shallow).pixels, read_image(data).pixels)


def test_siz_mutator_changes_ysiz_and_radedge_refuses(by_name):
    data = by_name["transfer_syntaxes/j2k_lossless_mono2.dcm"].data
    mutated = mutators.with_first_fragment(data, lambda stream: mutators.set_j2k_field(stream, "SIZ", "Ysiz", 385))
    (before,), (after,) = pixel_data_fragments(data), pixel_data_fragments(mutated)
    siz = after.index(b"\xff\x51")
    assert struct.unpack_from(">I", after, siz + 10)[0] == 385
    assert struct.unpack_from(">I", before, siz + 10)[0] == 384
    assert after[:siz + 10] == before[:siz + 10] and after[siz + 14:] == before[siz + 14:]
    with pytest.raises(CodestreamMismatchError) as refused:
        read_image(mutated)
    assert isinstance(refused.value, RadedgeError)
    assert (refused.value.dicom_value, refused.value.codestream_value) == (384, 385)


@pytest.mark.parametrize("name, kind", [("j2k_lossless_mono2", "j2k"), ("jpeg_extended_12bit_mono2", "jpeg"),
                                        ("jpeg_ls_lossless_mono2", "jpeg-ls"), ("rle_mono2", "rle")])
def test_codestream_mutations_change_the_first_fragment(by_name, name, kind):
    data = by_name[f"transfer_syntaxes/{name}.dcm"].data
    (original,) = pixel_data_fragments(data)
    for draw in range(20):
        mutated, said = mutators._codestream(random.Random(draw), data, "dicom")
        assert said.split()[:2] == ["codestream", kind]
        (fragment,) = pixel_data_fragments(mutated)
        assert fragment != original, said


def test_fragment_split_keeps_the_frame(by_name):
    data = by_name["transfer_syntaxes/jpeg_ls_lossless_mono2.dcm"].data
    (original,) = pixel_data_fragments(data)
    assert mutators.fragments_of(data) == [original]
    pieces = [original[:100], original[100:101], original[101:]]
    split = mutators.with_fragments(data, pieces)
    assert pixel_data_fragments(split) == pieces
    np.testing.assert_array_equal(read_image(split).pixels, read_image(data).pixels)


def test_header_values_are_written_as_raw_bytes(by_name):
    data = by_name["transfer_syntaxes/explicit_vr_le_mono2.dcm"].data
    assert "WindowCenter" in pydicom.dcmread(BytesIO(data))
    mutated = mutators.dataset_with(data, [(0x00280010, "US", b"\xff\xff"), (0x00281053, "DS", b"abc "),
                                           (0x00281050, None, None)])
    ds = pydicom.dcmread(BytesIO(mutated))
    assert ds.Rows == 65535
    assert ds.get_item(0x00281053).value == b"abc "
    assert "WindowCenter" not in ds
    assert ds.PixelData == pydicom.dcmread(BytesIO(data)).PixelData
    with pytest.raises(ImageTooLargeError):
        read_image(mutated)


def test_transfer_syntax_swap_rewrites_the_file_meta_only(by_name):
    data = by_name["transfer_syntaxes/explicit_vr_le_mono2.dcm"].data
    mutated = mutators.with_transfer_syntax(data, "1.2.3.4")
    ds = pydicom.dcmread(BytesIO(mutated), stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == "1.2.3.4"
    assert ds.file_meta.FileMetaInformationGroupLength == len(mutated) - len(data) + struct.unpack_from(
        "<I", data, 140)[0]
    assert mutated.endswith(data[-100_000:])
    with pytest.raises(UnsupportedTransferSyntaxError):
        read_image(mutated)


def test_deflate_bomb_inflates_a_thousandfold(by_name):
    data = by_name["transfer_syntaxes/explicit_vr_le_mono2.dcm"].data
    small = mutators.deflate_bomb(data, 1)
    assert pydicom.dcmread(BytesIO(small)).file_meta.TransferSyntaxUID == mutators.DEFLATED_LE
    np.testing.assert_array_equal(read_image(small).pixels, read_image(data).pixels)

    bomb = mutators.deflate_bomb(data, 1600)
    assert len(bomb) < 2 << 20
    with pytest.raises(InputTooLargeError):
        read_image(bomb)


def test_many_elements_past_radedges_limit_are_refused(by_name):
    data = by_name["transfer_syntaxes/explicit_vr_le_mono2.dcm"].data
    few = mutators.insert_before_pixel_data(data, lambda implicit, little: mutators.many_elements(1000, implicit, little))
    ds = pydicom.dcmread(BytesIO(few))
    assert sum(1 for element in ds if element.tag.group in (0x7FD9, 0x7FDB, 0x7FDD, 0x7FDF)
               and element.tag.element >= 0x1000) == 1000
    many = mutators.insert_before_pixel_data(
        data, lambda implicit, little: mutators.many_elements(100_001, implicit, little))
    with pytest.raises(InputTooLargeError):
        read_image(many)


def test_png_bomb_is_a_valid_png_of_zeros():
    for depth, dtype in ((8, np.uint8), (16, np.uint16)):
        decoded = cv2.imdecode(np.frombuffer(mutators.png_bomb(300, 200, depth), np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == (200, 300) and decoded.dtype == dtype and not decoded.any()
    assert len(mutators.png_bomb(14000, 14000)) < 300_000


def test_a_mutation_without_its_structure_falls_back_to_bytes():
    not_a_png = Seed("raster/not_a.png", b"not a png at all", "png", 1.0)
    said = [mutation for case in range(10) for mutation in generate([not_a_png], 1, case).mutations]
    fallbacks = [mutation for mutation in said if mutation.endswith("(fallback: raster: no PNG signature)")]
    assert fallbacks and all(family(mutation) == "bytes" for mutation in fallbacks)


def test_a_data_set_pydicom_cannot_write_falls_back_to_bytes(by_name, monkeypatch):
    def refuse(*args):
        raise ValueError("cannot write")

    monkeypatch.setattr(mutators, "_write", refuse)
    seed = by_name["transfer_syntaxes/explicit_vr_le_mono2.dcm"]
    said = [mutation for case in range(20) for mutation in generate([seed], 3, case).mutations]
    assert not any(family(mutation) in mutators.DATASET_FAMILIES for mutation in said)
    fallbacks = [mutation for mutation in said if "(fallback: " in mutation]
    assert fallbacks and all("ValueError: cannot write" in mutation for mutation in fallbacks)
