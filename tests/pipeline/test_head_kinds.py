"""Every head kind end to end through ``Model.predict``, on the tiny closed-form bundles:
detection, heatmaps with a located flag, classification heads combined, and a second-stage
classifier with a class activation map."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from radedge.errors import InputError
from radedge.heads import sigmoid, softmax
from radedge.intensity import build_lut
from radedge.io import read_image
from radedge.ops.preprocess import preprocess
from radedge.pipeline import load_model, load_models

from ..models import tiny
from ..synthetic import blob_image, disc_image, dx_dataset, to_bytes

SIDE = 640  # square sources: the 64 x 64 input holds them at exactly 1/10, no padding
BACKGROUND, BRIGHT, DARK = 2250, 3900, 200
SPACING = 0.15


def _x(stored: int) -> float:
    """The normalised model input x = (v - 0.5) / 0.25 for a uniform region of ``stored``."""
    image = read_image(to_bytes(dx_dataset(np.full((4, 4), stored, np.uint16))))
    return (float(build_lut(image).table[stored]) - 0.5) / 0.25


# --- detection -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector():
    return load_model(tiny("tiny_detector"), threads=2)


def _spine_image(**kwargs) -> np.ndarray:
    stored = np.full((SIDE, SIDE), BACKGROUND, np.uint16)
    stored[320:480, 160:320] = BRIGHT  # input cells x 2..3, y 4..5: four "lesion" cells
    stored[0:80, 480:560] = DARK  # cell x 6, y 0: one "implant" cell
    return stored


def test_detection_boxes_are_the_cells_in_source_pixels_with_mm(detector):
    prediction = detector.predict(to_bytes(dx_dataset(_spine_image(), body_part="LSPINE")))
    result = prediction.detections["findings"]
    lesions = sorted(result.of("lesion"), key=lambda box: box.xyxy)
    assert [box.xyxy for box in lesions] == [
        (160.0, 320.0, 240.0, 400.0), (160.0, 400.0, 240.0, 480.0),
        (240.0, 320.0, 320.0, 400.0), (240.0, 400.0, 320.0, 480.0),
    ]
    expected = float(sigmoid(np.float32(8 * (_x(BRIGHT) - 1))))
    assert all(box.score == pytest.approx(expected, abs=1e-5) for box in lesions)
    assert all(box.size_mm == pytest.approx((80 * SPACING, 80 * SPACING)) for box in lesions)
    (implant,) = result.of("implant")
    assert implant.xyxy == (480.0, 0.0, 560.0, 80.0) and implant.class_index == 1
    assert result.size_source == "ImagerPixelSpacing"
    document = prediction.to_dict()["detections"]["findings"]
    assert len(document["boxes"]) == 5 and document["boxes"][0]["size_mm"] == [12.0, 12.0]


def test_detection_flag_names_the_class_and_where(detector):
    prediction = detector.predict(to_bytes(dx_dataset(_spine_image(), body_part="LSPINE")))
    (flag,) = prediction.flags
    assert (flag.code, flag.title, flag.label, flag.model) == ("SPINE_LESION", "Suspected spine lesion", "lesion",
                                                               "tiny-detector")
    assert sorted(flag.locations) == sorted(box.xyxy for box in prediction.detections["findings"].of("lesion"))
    # Two tones, both far from the lesion and implant levels: radedge does not analyse a uniform image.
    stored = np.full((SIDE, SIDE), BACKGROUND, np.uint16)
    stored[:, SIDE // 2 :] = BACKGROUND + 100
    quiet = detector.predict(to_bytes(dx_dataset(stored, body_part="LSPINE")))
    assert quiet.flags == () and quiet.detections["findings"].boxes == ()


def test_detection_overlay_draws_the_boxes(detector, tmp_path):
    prediction = detector.predict(to_bytes(dx_dataset(_spine_image(), body_part="LSPINE")))
    overlay = cv2.cvtColor(cv2.imread(str(prediction.save_overlay(tmp_path / "boxes.png"))), cv2.COLOR_BGR2RGB)
    assert overlay.shape == (SIDE, SIDE, 3)
    # The box outline is coloured; the grey image inside the box is not.
    edge, inside = overlay[440, 160].astype(int), overlay[440, 200].astype(int)
    assert np.ptp(edge) > 100 and np.ptp(inside) < 5


# --- heatmaps --------------------------------------------------------------------------------

LEVEL_MARK, FRACTURE_MARK = 2460, 3990
LEVELS = {"L1": (320.0, 105.0), "L2": (300.0, 320.0), "L3": (280.0, 535.0)}


@pytest.fixture(scope="module")
def spine():
    return load_model(tiny("tiny_spine"), threads=2)


def _vertebrae(fractures: list[tuple[float, float, int]]) -> bytes:
    blobs = [(x, y, 25.0, LEVEL_MARK) for x, y in LEVELS.values()]
    blobs += [(x, y, 25.0, peak) for x, y, peak in fractures]
    return to_bytes(dx_dataset(blob_image(SIDE, SIDE, 400, blobs), body_part="LSPINE"))


def test_heatmap_peaks_land_on_the_landmarks_in_source_pixels(spine):
    prediction = spine.predict(_vertebrae([]))
    levels = prediction.heatmaps["levels"]
    assert [point.label for point in levels.points] == ["L1", "L2", "L3"]
    for point in levels.points:
        assert np.hypot(point.x - LEVELS[point.label][0], point.y - LEVELS[point.label][1]) < 5, point
    assert prediction.heatmaps["fracture"].points == () and prediction.flags == ()


def test_fracture_flag_names_the_nearest_vertebral_level(spine):
    # Far enough from the level marks that the blobs do not add up.
    fracture = (450.0, 330.0, FRACTURE_MARK)
    weaker = (120.0, 560.0, FRACTURE_MARK - 200)
    prediction = spine.predict(_vertebrae([fracture, weaker]))
    points = prediction.heatmaps["fracture"].points
    assert len(points) == 2 and points[0].score > points[1].score
    assert np.hypot(points[0].x - 450, points[0].y - 330) < 5 and np.hypot(points[1].x - 120, points[1].y - 560) < 5
    (flag,) = prediction.flags
    assert flag.where == "L2, L3"
    assert flag.title == "Possible compression fracture at L2, L3"
    assert flag.score == pytest.approx(points[0].score)
    assert flag.locations == ((points[0].x, points[0].y), (points[1].x, points[1].y))
    assert prediction.to_dict()["flags"][0]["where"] == "L2, L3"


def test_heatmap_overlay_draws_labelled_points_and_the_flag(spine, tmp_path):
    prediction = spine.predict(_vertebrae([(450.0, 330.0, FRACTURE_MARK)]))
    overlay = cv2.cvtColor(cv2.imread(str(prediction.save_overlay(tmp_path / "points.png"))), cv2.COLOR_BGR2RGB)
    plain = cv2.cvtColor(prediction._display.grey(SIDE, SIDE), cv2.COLOR_GRAY2RGB)
    for point in prediction.heatmaps["levels"].points + prediction.heatmaps["fracture"].points:
        x, y = int(point.x), int(point.y)
        assert np.ptp(overlay[y, x].astype(int)) > 100, point  # a coloured dot on a grey image
    assert np.ptp(plain[330, 450].astype(int)) == 0
    assert prediction.banner() == [f"Possible compression fracture at L2 ({prediction.flags[0].score:.2f})"]


# --- classification heads combined -----------------------------------------------------------


@pytest.fixture(scope="module")
def bone_quality():
    return load_model(tiny("tiny_bone_quality"), threads=2)


@pytest.mark.parametrize(
    "spots, verdict",
    [([], "normal"), ([BRIGHT + 150], "blastic"), ([DARK], "lytic"), ([BRIGHT + 150, DARK], "mixed")],
)
def test_combined_classification_heads_and_the_head_the_console_shows(bone_quality, spots, verdict):
    stored = np.full((400, 400), 2048, np.uint16)
    # A faint step, so that even the image without spots is not uniform (radedge refuses that).
    stored[:, 200:] = 2148
    for index, value in enumerate(spots):
        stored[100 + 150 * index : 160 + 150 * index, 100:160] = value
    prediction = bone_quality.predict(to_bytes(dx_dataset(stored, modality="CT", body_part=None)))
    tensor = bone_quality.plan.context().input
    b, l = 10 * (tensor.max() - 1.2), 10 * (-tensor.min() - 1.2)
    assert prediction.classifications["blastic"].probability("blastic") == pytest.approx(sigmoid(b), abs=1e-5)
    assert prediction.classifications["lytic"].probability("lytic") == pytest.approx(sigmoid(l), abs=1e-5)
    np.testing.assert_allclose(prediction.classifications["quality"].probabilities,
                               softmax(np.array([-b - l, b - l, l - b, b + l])), atol=1e-5)
    assert prediction.display_head == "quality" and prediction.verdict == verdict
    assert prediction.banner()[-1].startswith(f"quality: {verdict} (")
    assert [flag.code for flag in prediction.flags] == (["MIXED_METASTASIS"] if verdict == "mixed" else [])


# --- a second stage with a class activation map -------------------------------------------------

ROWS, COLUMNS = 600, 900
CENTRE, RADIUS = (610.0, 250.0), 120.0


@pytest.fixture(scope="module")
def tumour_models():
    return load_models([tiny("tiny_tumor_cls"), tiny("tiny_bone_tumor")], threads=2)


def _femur(inside: int = 3900) -> bytes:
    return to_bytes(dx_dataset(disc_image(ROWS, COLUMNS, CENTRE, RADIUS, inside, 2250)))


def test_second_stage_classifies_the_region_the_first_stage_found(tumour_models):
    assert [model.model_id for model in tumour_models] == ["tiny-bone-tumor", "tiny-tumor-cls"]
    analysis = tumour_models.predict(_femur())
    lesion = analysis.predictions["tiny-bone-tumor"].segmentations["lesion"].region("lesion")
    x0, y0, x1, y1 = lesion.bbox
    margin_x, margin_y = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    crop = (int(np.floor(x0 - margin_x)), int(np.floor(y0 - margin_y)))
    crop += (int(np.ceil(x1 + margin_x)) - crop[0], int(np.ceil(y1 + margin_y)) - crop[1])
    second = analysis.predictions["tiny-tumor-cls"]
    assert second.geometry.crop == crop
    # The classifier saw exactly that region, letterboxed: mean(x) of its input decides.
    image = read_image(_femur())
    lut = build_lut(image)
    tensor, _ = preprocess(image.pixels, lut.table, lut.first_stored_value,
                           tumour_models["tiny-tumor-cls"].manifest.preprocess, crop=crop)
    expected = softmax(np.array([0.0, 4.0 * float(tensor.mean())]))
    np.testing.assert_allclose(second.classifications["tumor"].probabilities, expected, atol=1e-5)
    assert second.verdict == "malignant" and "MALIGNANT_REGION" in [flag.code for flag in second.flags]
    cam = second.cams["tumor_cam"]
    assert cam.label == "malignant" and cam.explains == "tumor"
    # The map's peak lies inside the disc, in whole-image source pixels.
    assert np.hypot(cam.peak_xy[0] - CENTRE[0], cam.peak_xy[1] - CENTRE[1]) < RADIUS


def test_second_stage_is_not_applied_when_nothing_was_found(tumour_models):
    # A disc too faint to reach the lesion level.
    analysis = tumour_models.predict(_femur(inside=2500))
    assert list(analysis.predictions) == ["tiny-bone-tumor"]
    assert "found no lesion" in analysis.not_applied["tiny-tumor-cls"]
    assert analysis.analysed and analysis.reason is None


def test_cam_is_drawn_in_colour_over_the_region_only(tumour_models, tmp_path):
    analysis = tumour_models.predict(_femur())
    overlay = cv2.cvtColor(cv2.imread(str(analysis.save_overlay(tmp_path / "cam.png", max_side=900))),
                           cv2.COLOR_BGR2RGB).astype(int)
    crop = analysis.predictions["tiny-tumor-cls"].geometry.crop
    # Colour (turbo, floor 0) everywhere in the analysed region; grey far outside it.
    assert np.ptp(overlay[crop.y + 5, crop.x + 5]) > 30
    assert np.ptp(overlay[ROWS - 5, 5]) < 5


def test_second_stage_alone_is_refused_with_what_to_do():
    with pytest.raises(Exception, match="tiny-bone-tumor is not loaded"):
        load_models([tiny("tiny_tumor_cls")])
    model = load_model(tiny("tiny_tumor_cls"))
    with pytest.raises(InputError, match="second-stage model"):
        model.predict(_femur())
    direct = model.predict(_femur(), region=(400, 50, 400, 400))
    assert direct.geometry.crop == (400, 50, 400, 400)
