"""Images that decode but hold nothing to analyse get "not analysed" with the reason, never a flag
decision, and one model alone raises the typed error; the JSON of each is strict.

The malignant femur of examples/ (a phantom both bundled femur models flag), rewritten with the
test factories so each header value can be broken in turn and the file carries the synthetic
patient identity that must never leave radedge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataelem import DataElement

from radedge.errors import InvalidWindowError, NotAnalysableError
from radedge.io import read_image
from radedge.pipeline import load_model, load_models
from radedge.pipeline.analysable import MAX_UPSCALE, MIN_SIDE, check_size

from ..io.dicom_factory import lut_item
from ..helpers import strict_json
from ..models import tiny
from ..models.make_tiny import manifest as tiny_manifest
from ..models.make_tiny import tiny_model
from ..synthetic import PATIENT_VALUES, disc_image, dx_dataset, to_bytes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "radiographs" / "femur_malignant.dcm"
WINDOW = (1901.6, 3577.9)  # the example's own window
FEMUR_MODELS = {"bone-tumor", "tumor-cls"}

# pydicom warns when it writes a DS that is not a decimal string ("NaN", "inf"): those files are
# what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DS")


@pytest.fixture(scope="module")
def femur_pixels() -> np.ndarray:
    return read_image(EXAMPLE).pixels


@pytest.fixture(scope="module")
def bundled():
    return load_models(threads=2)


def _femur(pixels: np.ndarray, *, window=WINDOW, **attributes) -> bytes:
    return to_bytes(dx_dataset(pixels, window=window, imager_pixel_spacing=(0.1, 0.1), **attributes))


def _padded_everywhere(pixels: np.ndarray) -> bytes:
    ds = dx_dataset(pixels, window=WINDOW, imager_pixel_spacing=(0.1, 0.1))
    ds.add(DataElement(0x00280120, "US", int(pixels.min())))
    ds.add(DataElement(0x00280121, "US", int(pixels.max())))
    return to_bytes(ds)


def _with_voi_lut(pixels: np.ndarray) -> bytes:
    ds = dx_dataset(pixels, window=None, imager_pixel_spacing=(0.1, 0.1), RescaleSlope="NaN")
    ds.VOILUTSequence = [lut_item(0, 16, np.arange(4096) * 16)]
    return to_bytes(ds)


# name -> (the file, made from the femur's pixels; what the reason says)
UNANALYSABLE = {
    "slope NaN, no window": (lambda p: _femur(p, window=None, RescaleSlope="NaN"),
                             "Rescale Slope (0028,1053) is nan, not a finite number"),
    "slope NaN with a VOI LUT": (_with_voi_lut, "Rescale Slope (0028,1053) is nan, not a finite number"),
    "slope denormal": (lambda p: _femur(p, RescaleSlope="5e-324"), "a denormal number"),
    "slope infinite": (lambda p: _femur(p, RescaleSlope="inf"), "Rescale Slope (0028,1053) is inf"),
    "intercept infinite": (lambda p: _femur(p, RescaleIntercept="-inf"), "Rescale Intercept (0028,1052) is -inf"),
    "slope overflowing": (lambda p: _femur(p, RescaleSlope="1e306"), "beyond the largest number a float64 holds"),
    "width 1e308": (lambda p: _femur(p, window=(1901.6, "1e308")), "Width 1e+308) is out of all proportion"),
    "centre 1e300": (lambda p: _femur(p, window=("1e300", 3577.9)), "Window Center 1e+300"),
    "window past every pixel": (lambda p: _femur(p, window=(60000, 100)), "the image is uniform"),
    "padding over every value": (_padded_everywhere, "every pixel is pixel padding"),
    "uniform": (lambda p: _femur(np.full_like(p, 3000)), "the image is uniform: its pixels hold stored value 3000"),
    "1 x 1": (lambda p: _femur(p[:1, :1]), "the image is 1 x 1 pixels, too few for bone-tumor"),
    "7 rows": (lambda p: _femur(p[1000:1007, :]), "the image is 7 x 2000 pixels, too few for bone-tumor"),
    "30 x 30": (lambda p: _femur(p[1000:1030, 1000:1030]), "needs at least 8 rows and 8 columns and at least 1024"),
}


def test_the_femur_is_flagged_as_it_is(bundled, femur_pixels):
    """The control: the unbroken file is analysed and flagged, so a missing flag below is the refusal's."""
    analysis = bundled.predict(_femur(femur_pixels))
    assert analysis.analysed and set(analysis.predictions) == FEMUR_MODELS
    assert {flag.code for flag in analysis.flags} == {"SUSPECTED_MALIGNANT_BONE_LESION", "MALIGNANT_REGION"}
    assert analysis.not_analysable == {} and strict_json(analysis.to_json())["not_analysable"] == {}


@pytest.mark.parametrize("case", UNANALYSABLE)
def test_an_image_with_nothing_to_analyse_is_not_analysed(bundled, femur_pixels, case):
    make, expected = UNANALYSABLE[case]
    encoded = make(femur_pixels)
    analysis = bundled.predict(encoded)
    assert not analysis.analysed and analysis.flags == () and not analysis.flagged and analysis.predictions == {}
    # Both femur models refused it (the second stage because the first did); the rest are out of scope.
    assert set(analysis.not_analysable) == FEMUR_MODELS
    assert expected in analysis.not_analysable["bone-tumor"]
    assert analysis.reason.startswith(analysis.not_analysable["bone-tumor"])
    assert analysis.reason.count(expected) == 1  # said once for the models that found the same
    document = strict_json(analysis.to_json())
    assert document["analysed"] is False and document["flags"] == [] and document["reason"] == analysis.reason
    assert all(secret not in analysis.to_json() for secret in PATIENT_VALUES.values())
    # One model alone raises the typed error the command line reports.
    with pytest.raises(NotAnalysableError) as refused:
        bundled["bone-tumor"].predict(encoded)
    assert str(refused.value) == analysis.not_analysable["bone-tumor"]


def test_a_non_finite_window_is_a_typed_error(bundled, femur_pixels):
    with pytest.raises(InvalidWindowError, match="both must be finite numbers"):
        bundled.predict(_femur(femur_pixels, window=("NaN", 3577.9)))


# --- which model refuses what ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pair():
    return load_models([tiny("tiny_bone_tumor"), tiny("tiny_tumor_cls")], threads=2)


def _tiny_variant(tmp_path: Path, model_id: str, **preprocessing) -> Path:
    from radedge.bundle import write_bundle

    document = tiny_manifest()
    document["model"]["id"] = model_id
    document["preprocessing"] = {**document["preprocessing"], **preprocessing}
    return write_bundle(tmp_path / model_id, document, {"model.onnx": tiny_model()})


def test_a_model_whose_own_window_leaves_the_image_blank_does_not_stop_the_others(tmp_path):
    blank = _tiny_variant(tmp_path, "tiny-far-window", window={"center": 1e6, "width": 10})
    models = load_models([tiny("tiny_bone_tumor"), blank], threads=2)
    analysis = models.predict(to_bytes(dx_dataset(disc_image(600, 900, (610, 250), 120, 3900, 2250))))
    assert analysis.analysed and list(analysis.predictions) == ["tiny-bone-tumor"]
    assert "the image is uniform" in analysis.not_analysable["tiny-far-window"]
    assert analysis.reason is None and [flag.code for flag in analysis.flags] == ["LARGE_BONE_LESION"]


def test_a_percentile_model_on_an_image_of_padding_is_not_analysed(tmp_path):
    percentile = load_model(_tiny_variant(tmp_path, "tiny-percentile", voi={"percentile": [1, 99]}))
    ds = dx_dataset(disc_image(300, 400, (200, 150), 60, 3900, 2250))
    ds.add(DataElement(0x00280120, "US", 0))
    ds.add(DataElement(0x00280121, "US", 4095))
    with pytest.raises(NotAnalysableError, match=r"every pixel is pixel padding \(stored values 0 to 4095"):
        percentile.predict(to_bytes(ds))


def test_a_table_is_judged_once_for_the_models_that_share_it(tiny_pair, monkeypatch):
    from radedge.pipeline import model as model_module

    calls = []
    original = model_module.check_contrast
    monkeypatch.setattr(model_module, "check_contrast", lambda *a, **k: calls.append(1) or original(*a, **k))
    analysis = tiny_pair.predict(to_bytes(dx_dataset(np.full((300, 400), 3000, np.uint16))))
    assert calls == [1] and set(analysis.not_analysable) == {"tiny-bone-tumor", "tiny-tumor-cls"}
    assert analysis.overlay().shape[:2] == (300, 400)  # still drawn, the reason in the banner


def test_a_second_stage_region_too_small_is_not_analysable(tiny_pair):
    # At the model input's own size, a lesion of 4 x 4 pixels: with the 10 % margin, rounded out,
    # the region is 6 x 6.
    stored = disc_image(64, 64, (32, 32), 2.0, 3900, 2250)
    analysis = tiny_pair.predict(to_bytes(dx_dataset(stored)))
    assert list(analysis.predictions) == ["tiny-bone-tumor"]
    assert analysis.not_analysable["tiny-tumor-cls"].startswith(
        "the region to analyse is 6 x 6 pixels, too few for tiny-tumor-cls")


@pytest.mark.parametrize("rows, columns, enough", [
    (32, 32, True), (31, 33, False), (MIN_SIDE, 128, True), (MIN_SIDE, 127, False),
    (MIN_SIDE - 1, 1000, False), (1000, MIN_SIDE - 1, False), (1, 1, False),
])
def test_the_size_rule(rows, columns, enough):
    # bone-tumor's input is 256 x 256: at least 256 * 256 / 64 = 1024 pixels.
    bone_tumor = load_model(warm_up=False).manifest
    assert 256 * 256 // MAX_UPSCALE == 1024
    if enough:
        check_size(bone_tumor, rows, columns)
    else:
        with pytest.raises(NotAnalysableError, match=f"the image is {rows} x {columns} pixels, too few"):
            check_size(bone_tumor, rows, columns)
