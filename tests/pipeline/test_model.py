"""The pipeline end to end on the closed-form tiny model: DICOM in, flags and a mask out."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from radedge.errors import OutOfScopeError
from radedge.intensity import build_lut
from radedge.io import read_image
from radedge.pipeline import load_model
from radedge.ops.preprocess import preprocess

from ..synthetic import PATIENT_VALUES, disc_image, dx_dataset, to_bytes

TINY = Path(__file__).parents[1] / "models" / "tiny_bone_tumor"
ROWS, COLUMNS = 600, 900
CENTRE, RADIUS = (610.0, 250.0), 120.0


@pytest.fixture(scope="module")
def model():
    return load_model(TINY, threads=2)


def _disc_dataset(**kwargs):
    # Window 2048/4096 LINEAR maps stored v to about v / 4096: the disc (3900, 0.95) and
    # the background (2250, 0.55) straddle the tiny model's 0.75 lesion level
    # symmetrically, so resampling blur moves the decoded edge by no more than rounding.
    return dx_dataset(disc_image(ROWS, COLUMNS, CENTRE, RADIUS, 3900, 2250), **kwargs)


def test_mask_comes_back_at_source_geometry(model):
    prediction = model.predict(to_bytes(_disc_dataset()))
    result = prediction.segmentations["lesion"]
    assert result.mask.shape == (ROWS, COLUMNS)
    truth = disc_image(ROWS, COLUMNS, CENTRE, RADIUS, 1, 0).astype(bool)
    predicted = result.mask == 1
    iou = np.logical_and(truth, predicted).sum() / np.logical_or(truth, predicted).sum()
    assert iou > 0.97
    region = result.regions[0]
    assert abs(region.centroid[0] - CENTRE[0]) < 1.5 and abs(region.centroid[1] - CENTRE[1]) < 1.5
    x0, y0, x1, y1 = region.bbox
    assert abs(x0 - (CENTRE[0] - RADIUS)) <= 3 and abs(x1 - (CENTRE[0] + RADIUS)) <= 3
    assert abs(y0 - (CENTRE[1] - RADIUS)) <= 3 and abs(y1 - (CENTRE[1] + RADIUS)) <= 3
    assert region.area_mm2 == pytest.approx(region.pixel_count * 0.15 * 0.15)
    assert result.area_source == "ImagerPixelSpacing"


def test_classification_is_the_model_output_on_the_preprocessed_tensor(model):
    ds = _disc_dataset()
    prediction = model.predict(ds)
    image = read_image(ds)
    lut = build_lut(image)
    tensor, _ = preprocess(image.pixels, lut.table, lut.first_stored_value, model.manifest.preprocess)
    logits = tensor.mean() * np.array([0.0, 1.0, 2.0])
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    probabilities = prediction.classifications["tumor"].probabilities
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def _two_tones(rows: int, columns: int, left: int, right: int) -> np.ndarray:
    """uint16 [rows, columns]: ``left`` in the left half, ``right`` in the right; radedge does not
    analyse a uniform image."""
    stored = np.full((rows, columns), left, np.uint16)
    stored[:, columns // 2 :] = right
    return stored


def test_flag_follows_the_manifest_threshold(model):
    bright = model.predict(dx_dataset(_two_tones(400, 500, 4000, 3900)))
    dark = model.predict(dx_dataset(_two_tones(400, 500, 100, 200)))
    assert bright.classifications["tumor"].probability("malignant") >= 0.5
    # The whole bright image is "lesion", so its area flag rises too, in the manifest's order.
    assert [flag.code for flag in bright.flags] == ["LARGE_BONE_LESION", "SUSPECTED_MALIGNANT_BONE_LESION"]
    assert bright.flags[1].threshold == 0.5
    area = bright.segmentations["lesion"].region("lesion").area_mm2
    # Nearly all of it: source pixels at the letterbox edge interpolate with the padding.
    assert bright.flags[0].score == area and 0.97 * 400 * 500 * 0.15**2 < area <= 400 * 500 * 0.15**2
    assert dark.classifications["tumor"].probability("malignant") < 0.5
    assert dark.flags == ()


def test_monochrome1_gives_the_same_mask(model):
    stored = disc_image(ROWS, COLUMNS, CENTRE, RADIUS, 3900, 2250)
    direct = model.predict(dx_dataset(stored))
    inverted = model.predict(dx_dataset(4095 - stored, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(direct.segmentations["lesion"].mask, inverted.segmentations["lesion"].mask)


def test_for_processing_images_are_refused(model):
    with pytest.raises(OutOfScopeError, match="FOR PROCESSING"):
        model.predict(_disc_dataset(presentation_intent="FOR PROCESSING"))


def test_other_modalities_and_body_parts_are_refused_unless_asked(model):
    with pytest.raises(OutOfScopeError, match="modality is CT"):
        model.predict(_disc_dataset(modality="CT"))
    with pytest.raises(OutOfScopeError, match="CHEST"):
        model.predict(_disc_dataset(body_part="CHEST"))
    prediction = model.predict(_disc_dataset(body_part="CHEST"), check_scope=False)
    assert "model scope not checked (check_scope=False)" in prediction.image["notes"]


def test_missing_spacing_omits_mm_and_says_why(model):
    prediction = model.predict(_disc_dataset(imager_pixel_spacing=None))
    result = prediction.segmentations["lesion"]
    assert result.regions[0].area_mm2 is None
    assert result.regions[0].pixel_count > 0
    assert result.area_source.startswith("no mm figures")
    # The area flag cannot be decided: no flag, and a note saying why, never a guess.
    assert "LARGE_BONE_LESION" not in [flag.code for flag in prediction.flags]
    assert prediction.notes == ["flag LARGE_BONE_LESION not evaluated: the area of 'lesion' is unknown "
                                f"({result.area_source})"]


def test_area_flag_follows_the_lesion_size(model):
    big = model.predict(_disc_dataset())
    small = model.predict(dx_dataset(disc_image(ROWS, COLUMNS, CENTRE, 40.0, 3900, 2250)))
    assert big.segmentations["lesion"].region("lesion").area_mm2 > 500
    assert "LARGE_BONE_LESION" in [flag.code for flag in big.flags]
    assert 0 < small.segmentations["lesion"].region("lesion").area_mm2 < 500
    assert "LARGE_BONE_LESION" not in [flag.code for flag in small.flags] and small.notes == []


def test_json_and_overlay_hold_results_and_no_patient_data(model, tmp_path: Path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "in.dcm"
    path.write_bytes(to_bytes(_disc_dataset()))
    prediction = model.predict(path)
    written = prediction.save_json(tmp_path / "out" / "result.json")
    document = json.loads(written.read_text())
    assert document["source"] == str(path)
    assert set(document["timings_ms"]) == {"read", "lut", "preprocess", "inference", "decode", "flags", "total"}
    assert document["timings_ms"]["total"] >= document["timings_ms"]["inference"] > 0
    assert document["provenance"]["bundle_sha256"] == model.bundle.digest
    assert document["provenance"]["model_id"] == "tiny-bone-tumor"
    assert document["image"]["pixel_spacing_source"] == "ImagerPixelSpacing"
    assert document["segmentations"]["lesion"]["regions"][0]["pixel_count"] > 0
    overlay_path = prediction.save_overlay(tmp_path / "out" / "overlay.png", max_side=450)
    overlay = cv2.imread(str(overlay_path))
    assert overlay.shape == (300, 450, 3)
    # The lesion is drawn: reddish pixels at the disc centre in display coordinates.
    y, x = int(CENTRE[1] / 2), int(CENTRE[0] / 2)
    b, g, r = overlay[y, x].astype(int)
    assert r > b + 40
    everything = written.read_text() + repr(prediction) + caplog.text
    for secret in [*PATIENT_VALUES.values(), "Quenby"]:
        assert secret not in everything
    assert not list((tmp_path / "out").glob(".*tmp*"))


def test_predict_is_thread_safe(model):
    datasets = [_disc_dataset(), dx_dataset(_two_tones(300, 700, 3000, 2900))]
    expected = [model.predict(ds).segmentations["lesion"].mask for ds in datasets]

    def work(index: int) -> None:
        for _ in range(5):
            got = model.predict(datasets[index % 2]).segmentations["lesion"].mask
            np.testing.assert_array_equal(got, expected[index % 2])

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(work, index) for index in range(4)]
    # result() raises what the worker raised: a thread's exception alone is only a warning to pytest.
    for future in futures:
        future.result()


def test_png_input_runs_with_scope_unchecked(model, tmp_path: Path):
    path = tmp_path / "export.png"
    grey = disc_image(ROWS, COLUMNS, CENTRE, RADIUS, 250, 60).astype(np.uint8)
    cv2.imwrite(str(path), grey)
    prediction = model.predict(path)
    assert prediction.image["format"] == "png"
    assert any("scope not checked" in note for note in prediction.image["notes"])
    assert prediction.segmentations["lesion"].regions[0].area_mm2 is None
    assert prediction.segmentations["lesion"].regions[0].pixel_count > 0
