"""CT vertebra phantoms: Hounsfield units as designed, exact lesion masks, and the CT Image
Storage file read back through radedge.io with signed values, rescale and the bone window."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

from radedge.intensity import build_lut
from radedge.io import read_image
from radedge.export.phantoms import ct_vertebra_slice, to_dataset, write_dicom
from radedge.export.phantoms.ct_vertebra import (
    BONE_WINDOW,
    PIXEL_PADDING_VALUE,
    QUALITY_LABELS,
    RESCALE_INTERCEPT,
    TISSUES,
)
from radedge.export.phantoms.dicom import CT_IMAGE_STORAGE

ROOT = Path(__file__).resolve().parents[2]


def _eroded(mask: np.ndarray, pixels: int = 3) -> np.ndarray:
    """The mask without a ``pixels`` border, where blur and partial volume do not reach."""
    import cv2

    return cv2.erode(mask.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)).astype(bool)


def _region_hu(ct_slice, name: str, pixels: int = 3) -> float:
    region = _eroded(ct_slice.tissue == TISSUES[name], pixels)
    assert region.sum() > 20, f"no core left in the {name} region"
    return float(np.median(ct_slice.stored[region].astype(np.float64) + RESCALE_INTERCEPT))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 6, 7])
def test_tissues_have_the_hounsfield_units_they_were_drawn_with(seed: int):
    ct_slice = ct_vertebra_slice(seed)
    design = ct_slice.design_hu
    # Trabecular bone keeps its drawn density (texture and noise average out in its core).
    assert abs(_region_hu(ct_slice, "trabecular") - design["trabecular"]) < 25
    assert 140 <= design["trabecular"] <= 300
    assert abs(_region_hu(ct_slice, "fat") - design["fat"]) < 15
    assert abs(_region_hu(ct_slice, "muscle") - design["muscle"]) < 15
    # The cortical shell is 1-1.6 mm thin: blurred by the scanner it reads lower than drawn
    # but far above cancellous bone.
    shell = ct_slice.tissue == TISSUES["cortical"]
    assert np.percentile(ct_slice.hu[shell], 90) > design["trabecular"] + 300
    assert design["cortical"] >= 800
    for lesion in ct_slice.lesions:
        core = _region_hu(ct_slice, lesion["kind"], pixels=2)
        if lesion["kind"] == "blastic":
            assert core > design["trabecular"] + 150
            assert abs(core - design["blastic"]) < 0.35 * (design["blastic"] - design["trabecular"])
        else:
            assert core < design["trabecular"] - 50
            assert abs(core - design["lytic"]) < 30


def test_labels_and_lesion_masks_agree():
    for seed in range(8):
        for label in QUALITY_LABELS:
            ct_slice = ct_vertebra_slice(seed, label=label)
            assert ct_slice.label == label
            assert (ct_slice.blastic_mask.sum() > 0) == (label in ("blastic", "mixed"))
            assert (ct_slice.lytic_mask.sum() > 0) == (label in ("lytic", "mixed"))
            # A mixed slice's two lesions never overlap.
            assert not np.logical_and(ct_slice.blastic_mask, ct_slice.lytic_mask).any()
    assert ct_vertebra_slice(5).label == ct_vertebra_slice(5).label  # drawn label deterministic
    assert {ct_vertebra_slice(seed).label for seed in range(16)} == set(QUALITY_LABELS)


def test_same_seed_same_slice_and_the_label_only_changes_the_lesions():
    first, again = ct_vertebra_slice(11, label="lytic"), ct_vertebra_slice(11, label="lytic")
    assert np.array_equal(first.stored, again.stored)
    normal = ct_vertebra_slice(11, label="normal")
    differs = first.stored != normal.stored
    # Outside the lytic lesion (and the scanner blur around it) the two slices are identical.
    import cv2

    near_lesion = cv2.dilate(first.lytic_mask, np.ones((15, 15), np.uint8)).astype(bool)
    assert differs.any() and not differs[~near_lesion].any()


def test_ct_file_reads_back_signed_rescaled_with_the_bone_window(tmp_path: Path):
    ct_slice = ct_vertebra_slice(3, label="mixed")
    path = write_dicom(ct_slice, tmp_path / "slice.dcm", transfer_syntax=RLELossless)
    dataset = pydicom.dcmread(path)
    assert dataset.SOPClassUID == CT_IMAGE_STORAGE == "1.2.840.10008.5.1.4.1.1.2"
    assert dataset.Modality == "CT" and dataset.PixelRepresentation == 1 and dataset.RescaleType == "HU"
    assert float(dataset.RescaleIntercept) == -1024 and float(dataset.RescaleSlope) == 1
    assert list(dataset.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert 0.3 <= float(dataset.PixelSpacing[0]) <= 0.8 and dataset.Rows == dataset.Columns == 512

    image = read_image(path)
    assert image.pixels.dtype == np.int16
    assert np.array_equal(image.pixels, ct_slice.stored)  # lossless, signed padding included
    assert image.pixels.min() == PIXEL_PADDING_VALUE < 0
    assert image.intensity.pixel_padding is not None

    lut = build_lut(image)  # the file's first window: bone
    def display(hu: float) -> float:
        return float(lut.table[int(hu - RESCALE_INTERCEPT) - lut.first_stored_value])
    center, width = BONE_WINDOW
    assert display(center - width / 2 - 10) == 0.0
    assert display(center + width / 2 + 10) == 1.0
    assert display(center) == pytest.approx(0.5, abs=0.01)
    # Pixel padding is black whatever the window says.
    assert float(lut.table[PIXEL_PADDING_VALUE - lut.first_stored_value]) == 0.0


def test_to_dataset_leaves_radiographs_as_they_were():
    from radedge.export.phantoms import long_bone_radiograph

    dataset = to_dataset(long_bone_radiograph(13, label="no_tumour", rows=512, columns=512))
    assert dataset.Modality == "DX" and dataset.PixelRepresentation == 0
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, to_dataset(ct_vertebra_slice(0)), enforce_file_format=True)
    assert pydicom.dcmread(io.BytesIO(buffer.getvalue())).Modality == "CT"


def test_committed_ct_examples_are_what_the_command_writes(tmp_path: Path):
    from radedge.export.phantoms.sets import _write_ct_examples

    committed = ROOT / "examples" / "ct"
    written = _write_ct_examples(tmp_path)
    assert len(written) == 4
    for path in written:
        assert read_image(committed / path.name).pixels.tobytes() == read_image(path).pixels.tobytes()
    truth = json.loads((committed / "ground_truth.json").read_text())
    assert [item["label"] for item in truth["items"]] == list(QUALITY_LABELS)
    assert truth == json.loads((tmp_path / "ground_truth.json").read_text())
