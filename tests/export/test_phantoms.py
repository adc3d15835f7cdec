"""Phantoms: determinism, ranges, exact lesion masks, spine ground truth, DICOM round trips, CLI."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pydicom.encaps import generate_frames
from radedge.export import phantoms
from radedge.export.phantoms import (
    LABELS,
    LUMBAR_LEVELS,
    TRANSFER_SYNTAXES,
    DcmtkNotFoundError,
    genant_grade,
    long_bone_radiograph,
    lumbar_spine_radiograph,
    to_dataset,
    write_dicom,
    write_set,
)
from radedge.export.phantoms._protocol import streams
from radedge.export.phantoms.sets import _pixel_digest, transfer_syntax_phantoms
from radedge.export.phantoms.spine import draw_spine

REPO = Path(__file__).resolve().parents[2]
TRANSFER_SYNTAX_DIR = REPO / "tests" / "data" / "transfer_syntaxes"
EXAMPLES_DIR = REPO / "examples" / "radiographs"
SPINE_EXAMPLES_DIR = REPO / "examples" / "spine"
LESION_SEEDS = (3, 8, 21)


@pytest.fixture(scope="module")
def lesion_pairs():
    """{(seed, label): (no_tumour phantom, phantom with the lesion)} from the same seeds."""
    pairs = {}
    for seed in LESION_SEEDS:
        plain = long_bone_radiograph(seed, label="no_tumour")
        for label in ("benign", "malignant"):
            pairs[seed, label] = (plain, long_bone_radiograph(seed, label=label))
    return pairs


@pytest.fixture(scope="module")
def small_phantom():
    """A 512 x 448 crop around a malignant lesion, 12-bit, for fast DICOM round trips."""
    full = long_bone_radiograph(
        13, label="malignant", bits_stored=12, photometric="MONOCHROME2", rows=2400, columns=2000
    )
    x, y, width, height = full.lesion["bbox_xywh_px"]
    top = int(np.clip(y + height // 2 - 256, 0, full.rows - 512))
    left = int(np.clip(x + width // 2 - 224, 0, full.columns - 448))
    return full.cropped(top, left, 512, 448)


# --- determinism and ranges ------------------------------------------------------------


def test_same_seed_gives_identical_phantom():
    first, second = long_bone_radiograph(5), long_bone_radiograph(5)
    assert np.array_equal(first.stored, second.stored)
    assert np.array_equal(first.lesion_mask, second.lesion_mask)
    assert first.ground_truth() == second.ground_truth()
    assert first.dicom_header == second.dicom_header
    spine_a, spine_b = lumbar_spine_radiograph(5), lumbar_spine_radiograph(5)
    assert np.array_equal(spine_a.stored, spine_b.stored)
    assert spine_a.ground_truth() == spine_b.ground_truth()


def test_different_seeds_give_different_phantoms():
    first = long_bone_radiograph(5, label="no_tumour", rows=2000, columns=2000)
    second = long_bone_radiograph(6, label="no_tumour", rows=2000, columns=2000)
    assert np.mean(first.stored != second.stored) > 0.5
    assert first.dicom_header["PatientID"] != second.dicom_header["PatientID"]


@pytest.mark.parametrize("seed", [0, 1, 2, 9])
def test_long_bone_values_and_sizes_in_range(seed):
    phantom = long_bone_radiograph(seed)
    assert phantom.stored.dtype == np.uint16
    assert 2000 <= phantom.rows <= 3000 and 2000 <= phantom.columns <= 3000
    assert 10 <= phantom.bits_stored <= 16
    assert int(phantom.stored.max()) <= (1 << phantom.bits_stored) - 1
    # The image uses its range: not a blank or a saturated frame.
    assert np.ptp(phantom.stored) > 0.5 * phantom.max_stored
    assert 0.1 <= phantom.imager_pixel_spacing_mm[0] <= 0.2
    assert phantom.body_part in ("FEMUR", "TIBIA", "HUMERUS")
    assert phantom.label in LABELS
    assert phantom.voi_function in ("LINEAR", "SIGMOID")
    for center, width in phantom.windows:
        assert 0 <= center <= phantom.max_stored and 0 < width <= 1.5 * phantom.max_stored
    json.dumps(phantom.ground_truth())


def test_drawn_protocol_varies_bits_and_photometric():
    drawn = [long_bone_radiograph(seed, label="no_tumour", rows=160, columns=128) for seed in range(24)]
    assert len({phantom.bits_stored for phantom in drawn}) >= 3
    assert {phantom.photometric for phantom in drawn} == {"MONOCHROME1", "MONOCHROME2"}
    assert any("PixelSpacing" in phantom.dicom_header for phantom in drawn)
    assert any("EstimatedRadiographicMagnificationFactor" in phantom.dicom_header for phantom in drawn)
    assert any(len(phantom.windows) == 2 for phantom in drawn)
    assert {phantom.voi_function for phantom in drawn} == {"LINEAR", "SIGMOID"}


def test_overrides_are_respected():
    phantom = long_bone_radiograph(
        4, label="benign", rows=2100, columns=2900, bits_stored=15, photometric="MONOCHROME1"
    )
    assert phantom.stored.shape == (2100, 2900)
    assert phantom.bits_stored == 15 and phantom.photometric == "MONOCHROME1" and phantom.label == "benign"
    assert int(phantom.stored.max()) < 1 << 15


@pytest.mark.parametrize("arguments", [{"label": "tumour"}, {"bits_stored": 17}, {"photometric": "RGB"}, {"rows": 10}])
def test_bad_arguments_are_refused_with_a_reason(arguments):
    with pytest.raises(ValueError, match="must be"):
        long_bone_radiograph(1, **arguments)


def test_largest_size_renders_with_its_lesion():
    # Generation speed is a figure for docs/performance.md, not a timed test.
    phantom = long_bone_radiograph(11, label="malignant", rows=3000, columns=3000)
    assert phantom.stored.shape == (3000, 3000) and phantom.lesion_mask.shape == (3000, 3000)
    assert phantom.lesion_mask.any() and phantom.stored.max() < 2**phantom.bits_stored


# --- lesions ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", LESION_SEEDS)
@pytest.mark.parametrize("label", ["benign", "malignant"])
def test_mask_is_exactly_where_the_lesion_changed_pixels(lesion_pairs, seed, label):
    plain, lesion = lesion_pairs[seed, label]
    assert plain.label == "no_tumour" and not plain.lesion_mask.any() and plain.lesion is None
    assert lesion.label == label and lesion.lesion_mask.dtype == np.uint8
    assert set(np.unique(lesion.lesion_mask)) == {0, 1}
    changed = plain.stored != lesion.stored
    assert np.array_equal(changed, lesion.lesion_mask.astype(bool))
    # Everything but the lesion is the same phantom.
    assert plain.windows == lesion.windows and plain.dicom_header == lesion.dicom_header
    x, y, width, height = lesion.lesion["bbox_xywh_px"]
    rows, columns = np.nonzero(lesion.lesion_mask)
    assert (x, y, width, height) == (columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1)
    assert lesion.lesion["area_px"] == int(lesion.lesion_mask.sum())
    centre_x, centre_y = lesion.lesion["centre_xy_px"]
    assert lesion.lesion_mask[int(round(centre_y)), int(round(centre_x))] == 1
    assert min(width, height) >= 0.03 * min(lesion.rows, lesion.columns)


def _display(phantom, long_side=256):
    """Area-downscaled MONOCHROME2 image in [0, 1] through the first window (float32)."""
    center, width = phantom.windows[0]
    if phantom.photometric == "MONOCHROME1":
        center = phantom.max_stored - center
    values = np.clip((phantom.monochrome2().astype(np.float32) - (center - width / 2)) / width, 0, 1)
    scale = long_side / max(values.shape)
    size = (round(values.shape[1] * scale), round(values.shape[0] * scale))
    return cv2.resize(values, size, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("label", ["benign", "malignant"])
def test_lesion_survives_downscaling_to_256_px(lesion_pairs, label):
    for seed in LESION_SEEDS:
        plain, lesion = lesion_pairs[seed, label]
        difference = np.abs(_display(plain) - _display(lesion))
        # At 256 px the lesion still changes several pixels by a clearly visible amount.
        assert np.count_nonzero(difference > 0.06) >= 6, f"seed {seed}"


def test_classes_carry_their_radiographic_features(lesion_pairs):
    benign = [lesion_pairs[seed, "benign"][1] for seed in LESION_SEEDS]
    malignant = [lesion_pairs[seed, "malignant"][1] for seed in LESION_SEEDS]
    for phantom in benign:
        assert phantom.lesion["margin"] == "well-defined" and phantom.lesion["cortex"] == "intact"
        assert phantom.lesion["periosteal_reaction"] == "none" and not phantom.lesion["soft_tissue_mass"]
        assert phantom.lesion["pattern"] == "geographic"
        assert phantom.lesion["sclerotic_rim"] == (phantom.lesion["type"] == "lytic")
    for phantom in malignant:
        assert phantom.lesion["margin"] == "ill-defined" and phantom.lesion["cortex"] == "destroyed"
        assert phantom.lesion["periosteal_reaction"].startswith("codman") and phantom.lesion["soft_tissue_mass"]
        assert phantom.lesion["pattern"] in ("moth-eaten", "permeative")

    # Relative to the image, malignant lesions (with their masses) are larger.
    def relative_area(phantom):
        return phantom.lesion["area_px"] / (phantom.rows * phantom.columns)

    assert np.median([relative_area(p) for p in malignant]) > 2 * np.median([relative_area(p) for p in benign])


def test_monochrome1_stores_the_inverse_of_monochrome2():
    mono2 = long_bone_radiograph(7, label="benign", photometric="MONOCHROME2", rows=2000, columns=2000)
    mono1 = long_bone_radiograph(7, label="benign", photometric="MONOCHROME1", rows=2000, columns=2000)
    assert np.array_equal(mono1.stored.astype(np.int32), mono2.max_stored - mono2.stored.astype(np.int32))
    assert np.array_equal(mono1.monochrome2(), mono2.stored)
    assert np.array_equal(mono1.lesion_mask, mono2.lesion_mask)
    for (center1, width1), (center2, width2) in zip(mono1.windows, mono2.windows):
        assert width1 == width2 and abs(center1 - (mono2.max_stored - center2)) <= 0.11
    assert to_dataset(mono1).PresentationLUTShape == "INVERSE"
    assert to_dataset(mono2).PresentationLUTShape == "IDENTITY"


# --- lumbar spine ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [4, 6, 7, 8])
def test_spine_ground_truth_matches_geometry_and_image(seed):
    phantom = lumbar_spine_radiograph(seed)
    assert phantom.kind == "lumbar_spine" and phantom.body_part == "LSPINE" and phantom.lesion_mask is None
    assert 2000 <= min(phantom.rows, phantom.columns) and max(phantom.rows, phantom.columns) <= 3000
    levels = phantom.vertebrae
    assert [level["level"] for level in levels] == list(LUMBAR_LEVELS)
    centres_y = [level["centre_xy_px"][1] for level in levels]
    assert centres_y == sorted(centres_y), "levels must run top to bottom"
    mono2 = phantom.monochrome2().astype(np.float64)
    for level in levels:
        corners = {name: np.array(point) for name, point in level["corners_xy_px"].items()}
        assert np.allclose(np.mean(list(corners.values()), axis=0), level["centre_xy_px"])
        anterior = np.linalg.norm(corners["anterior_superior"] - corners["anterior_inferior"])
        posterior = np.linalg.norm(corners["posterior_superior"] - corners["posterior_inferior"])
        assert anterior == pytest.approx(level["heights_px"]["anterior"], rel=1e-3)
        assert posterior == pytest.approx(level["heights_px"]["posterior"], rel=1e-3)
        assert corners["anterior_superior"][1] < corners["anterior_inferior"][1]
        ratio = level["anterior_height_ratio"]
        assert ratio == pytest.approx(level["heights_px"]["anterior"] / level["heights_px"]["posterior"], rel=1e-3)
        assert level["fractured"] == (level["genant_grade"] > 0)
        assert level["genant_grade"] == genant_grade(1.0 - ratio)
        if not level["fractured"]:
            assert ratio > 0.85 and level["middle_height_ratio"] > 0.85
    # The ground truth sits on the image: a body is brighter (denser) than the disc below it.
    for upper, lower in zip(levels, levels[1:]):
        body = np.array(upper["centre_xy_px"])
        disc = 0.25 * sum(
            np.array(point)
            for point in (
                upper["corners_xy_px"]["anterior_inferior"],
                upper["corners_xy_px"]["posterior_inferior"],
                lower["corners_xy_px"]["anterior_superior"],
                lower["corners_xy_px"]["posterior_superior"],
            )
        )

        def mean_around(point):
            x, y = int(round(point[0])), int(round(point[1]))
            return mono2[y - 3 : y + 4, x - 3 : x + 4].mean()

        assert mean_around(body) > mean_around(disc)


def test_spine_fractures_cover_every_grade():
    grades = set()
    for seed in range(40):
        rng = streams(seed, "lumbar_spine")["anatomy"]
        scene = draw_spine(rng, 330.0, 280.0)
        grades.update(scene.fractures.values())
        for level, grade in scene.fractures.items():
            low, high = phantoms.GENANT_REDUCTION[grade]
            assert low <= scene.reductions[level] < high
    assert grades == {1, 2, 3}


# --- DICOM -----------------------------------------------------------------------------

_DCMTK = pytest.mark.needs_dcmtk
_SYNTAX_CASES = [
    pytest.param(ExplicitVRLittleEndian, id="explicit"),
    pytest.param(ImplicitVRLittleEndian, id="implicit"),
    pytest.param(DeflatedExplicitVRLittleEndian, id="deflated"),
    pytest.param(RLELossless, id="rle"),
    pytest.param(JPEGLSLossless, id="jpeg-ls"),
    pytest.param(JPEGLSNearLossless, id="jpeg-ls-near"),
    pytest.param(JPEG2000Lossless, id="j2k-lossless"),
    pytest.param(JPEG2000, id="j2k-lossy"),
    pytest.param(JPEGLosslessSV1, id="jpeg-sv1", marks=_DCMTK),
    pytest.param(JPEGExtended12Bit, id="jpeg-extended", marks=_DCMTK),
    pytest.param(HTJ2KLossless, id="htj2k-lossless"),
    pytest.param(HTJ2KLosslessRPCL, id="htj2k-lossless-rpcl"),
]


@pytest.mark.parametrize("syntax", _SYNTAX_CASES)
def test_written_file_reads_back_with_the_right_attributes(small_phantom, tmp_path, syntax):
    phantom = small_phantom
    path = write_dicom(phantom, tmp_path / "phantom.dcm", transfer_syntax=syntax)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1" and ds.PresentationIntentType == "FOR PRESENTATION"
    assert ds.Modality == "DX" and ds.BodyPartExamined == phantom.body_part
    assert (ds.Rows, ds.Columns) == phantom.stored.shape
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.RescaleType) == (1.0, 0.0, "US")
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.PresentationLUTShape == "IDENTITY"
    assert [float(value) for value in ds.ImagerPixelSpacing] == pytest.approx(phantom.imager_pixel_spacing_mm)
    assert str(ds.PatientName).startswith("PHANTOM^LONGBONE^") and ds.PatientID and ds.PatientBirthDate
    assert ds.StudyDate and ds.AccessionNumber
    center = ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter
    assert float(center) == pytest.approx(phantom.windows[0][0], abs=0.06)
    pixels = ds.pixel_array
    assert pixels.dtype == np.uint16 and pixels.shape == phantom.stored.shape
    error = np.abs(pixels.astype(np.int32) - phantom.stored.astype(np.int32))
    if TRANSFER_SYNTAXES[syntax].lossless:
        assert error.max() == 0
        assert ds.LossyImageCompression == "00" and ds.SOPInstanceUID == to_dataset(phantom).SOPInstanceUID
    else:
        assert ds.LossyImageCompression == "01" and ds.SOPInstanceUID != to_dataset(phantom).SOPInstanceUID
        limit = 2 if syntax == JPEGLSNearLossless else 0.1 * phantom.max_stored
        assert 0 < error.max() <= limit
        assert error.mean() < 0.01 * phantom.max_stored


def _main_header_and_tile_parts(codestream: bytes) -> tuple[dict[int, bytes], int]:
    """The main header's marker segments (ITU-T T.800 A.5-A.9, T.814 A.3) by marker code, up
    to the first SOT, and the number of tile-parts (SOT markers, each found by its Psot)."""
    segments, position = {}, 2
    while codestream[position:position + 2] != b"\xff\x90":
        marker, length = struct.unpack_from(">HH", codestream, position)
        segments[marker] = codestream[position + 4:position + 2 + length]
        position += 2 + length
    tile_parts = 0
    while codestream[position:position + 2] == b"\xff\x90":
        psot = struct.unpack_from(">I", codestream, position + 6)[0]
        tile_parts, position = tile_parts + 1, position + psot
    assert codestream[position:] == b"\xff\xd9"
    return segments, tile_parts


@pytest.mark.parametrize("syntax", [HTJ2KLossless, HTJ2KLosslessRPCL])
def test_htj2k_codestreams_are_reversible_ht_in_rpcl_order(small_phantom, tmp_path, syntax):
    ds = pydicom.dcmread(write_dicom(small_phantom, tmp_path / "phantom.dcm", transfer_syntax=syntax))
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    segments, tile_parts = _main_header_and_tile_parts(codestream)
    rsiz = struct.unpack_from(">H", segments[0xFF51])[0]
    assert rsiz & 0x4000  # T.814 A.2: HT code-blocks
    pcap, ccap15 = struct.unpack_from(">IH", segments[0xFF50])
    assert pcap == 1 << 17 and ccap15 >> 14 == 0  # Part 15 only, HTONLY
    cod = segments[0xFF52]
    progression, levels, transform = cod[1], cod[5], cod[9]
    assert (progression, transform) == (2, 1)  # RPCL; the reversible 5/3 wavelet
    if syntax == HTJ2KLosslessRPCL:
        # What .202 adds: a TLM marker segment and one tile-part per resolution.
        assert 0xFF55 in segments and tile_parts == levels + 1
    else:
        assert 0xFF55 not in segments and tile_parts == 1


def test_for_processing_changes_the_sop_class_and_drops_windows(small_phantom):
    ds = to_dataset(small_phantom, presentation_intent="FOR PROCESSING")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1.1" and ds.PresentationIntentType == "FOR PROCESSING"
    assert "WindowCenter" not in ds and "VOILUTFunction" not in ds
    assert ds.SOPInstanceUID != to_dataset(small_phantom).SOPInstanceUID
    with pytest.raises(ValueError, match="presentation_intent"):
        to_dataset(small_phantom, presentation_intent="FOR SCREENING")


def test_uids_are_deterministic_and_distinct():
    first, again, other = (
        to_dataset(long_bone_radiograph(2)),
        to_dataset(long_bone_radiograph(2)),
        to_dataset(long_bone_radiograph(3)),
    )
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert first[keyword].value == again[keyword].value != other[keyword].value
    assert len({first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID}) == 3


def test_ground_truth_is_not_in_the_file(small_phantom, tmp_path):
    raw = write_dicom(small_phantom, tmp_path / "phantom.dcm").read_bytes()
    for word in (b"malignant", b"benign", b"lesion", b"tumour"):
        assert word not in raw


def test_jpeg_extended_refuses_more_than_12_bits(tmp_path):
    phantom = long_bone_radiograph(1, label="no_tumour", bits_stored=14, rows=256, columns=256)
    with pytest.raises(ValueError, match="12 bits"):
        write_dicom(phantom, tmp_path / "x.dcm", transfer_syntax=JPEGExtended12Bit)
    assert not (tmp_path / "x.dcm").exists()


def test_missing_dcmtk_is_named_in_the_error(small_phantom, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DcmtkNotFoundError, match="dcmtk"):
        write_dicom(small_phantom, tmp_path / "x.dcm", transfer_syntax=JPEGLosslessSV1)
    assert list(tmp_path.iterdir()) == []


# --- sets, fixtures, examples, CLI -----------------------------------------------------


def test_write_set_writes_files_and_ground_truth(tmp_path):
    paths = write_set(
        tmp_path, 3, seed=40, labels=["benign", "malignant"], transfer_syntaxes=[JPEGLSLossless, RLELossless]
    )
    assert [path.name for path in paths] == ["long_bone_000040.dcm", "long_bone_000041.dcm", "long_bone_000042.dcm"]
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert [item["label"] for item in truth["items"]] == ["benign", "malignant", "benign"]
    assert [item["transfer_syntax_uid"] for item in truth["items"]] == [JPEGLSLossless, RLELossless, JPEGLSLossless]
    for path, item in zip(paths, truth["items"]):
        expected = long_bone_radiograph(item["seed"], label=item["label"])
        assert item == {
            "file": path.name,
            "transfer_syntax_uid": item["transfer_syntax_uid"],
            **json.loads(json.dumps(expected.ground_truth())),
        }
        assert np.array_equal(pydicom.dcmread(path).pixel_array, expected.stored)
    with pytest.raises(ValueError, match="labels apply to long_bone"):
        write_set(tmp_path, 1, kind="lumbar_spine", labels=["benign"])


def _run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "radedge.export.phantoms", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def test_cli_writes_a_spine_set(tmp_path):
    result = _run_cli("set", "--out", str(tmp_path), "--count", "2", "--seed", "3", "--kind", "lumbar_spine")
    assert result.returncode == 0, result.stderr
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert [item["file"] for item in truth["items"]] == ["lumbar_spine_000003.dcm", "lumbar_spine_000004.dcm"]
    assert all(len(item["vertebrae"]) == 5 for item in truth["items"])
    assert pydicom.dcmread(tmp_path / "lumbar_spine_000003.dcm").BodyPartExamined == "LSPINE"


def test_cli_refuses_bad_input_with_a_message(tmp_path):
    result = _run_cli("set", "--out", str(tmp_path), "--count", "1", "--labels", "tumour")
    assert result.returncode == 2 and "labels must be" in result.stderr
    assert not any(tmp_path.iterdir())


def test_transfer_syntax_fixtures_match_their_index():
    index = json.loads((TRANSFER_SYNTAX_DIR / "index.json").read_text())
    syntaxes = {entry["transfer_syntax_uid"] for entry in index["files"]}
    assert set(TRANSFER_SYNTAXES) <= syntaxes
    assert {entry["photometric"] for entry in index["files"]} == {"MONOCHROME1", "MONOCHROME2"}
    for entry in index["files"]:
        path = TRANSFER_SYNTAX_DIR / entry["file"]
        assert path.stat().st_size < 300_000
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == entry["transfer_syntax_uid"]
        assert ds.PhotometricInterpretation == entry["photometric"]
        pixels = ds.pixel_array
        assert list(pixels.shape) == entry["shape"] and _pixel_digest(pixels) == entry["pixel_sha256"]
        for row, column, value in entry["spot_values"]:
            assert pixels[row, column] == value
        assert (entry["pixel_sha256"] == entry["original_sha256"]) == entry["lossless"]


def test_transfer_syntax_fixtures_regenerate_identically():
    index = json.loads((TRANSFER_SYNTAX_DIR / "index.json").read_text())
    originals = {entry["photometric"]: entry["original_sha256"] for entry in index["files"]}
    for photometric, phantom in transfer_syntax_phantoms().items():
        assert _pixel_digest(phantom.stored) == originals[photometric]


def test_bundled_examples_are_complete_and_reproducible(tmp_path):
    truth = json.loads((EXAMPLES_DIR / "ground_truth.json").read_text())
    items = truth["items"]
    assert sorted(item["label"] for item in items) == ["benign", "malignant", "malignant", "no_tumour"]
    assert any(item["label"] == "malignant" and item["photometric"] == "MONOCHROME1" for item in items)
    assert len({item["transfer_syntax_uid"] for item in items}) >= 3
    total = sum(path.stat().st_size for path in EXAMPLES_DIR.iterdir())
    assert total < 12.5e6, f"examples/radiographs is {total / 1e6:.1f} MB"
    regenerated = phantoms.write_examples(tmp_path / "radiographs", spine_dir=tmp_path / "spine")
    assert json.loads((tmp_path / "radiographs" / "ground_truth.json").read_text()) == truth
    assert json.loads((tmp_path / "spine" / "ground_truth.json").read_text()) == json.loads(
        (SPINE_EXAMPLES_DIR / "ground_truth.json").read_text()
    )
    for path in regenerated:
        committed = (EXAMPLES_DIR if path.parent.name == "radiographs" else SPINE_EXAMPLES_DIR) / path.name
        ds = pydicom.dcmread(committed)
        assert 2000 <= min(ds.Rows, ds.Columns) and max(ds.Rows, ds.Columns) <= 3000
        assert np.array_equal(ds.pixel_array, pydicom.dcmread(path).pixel_array), path.name
