"""Pixel spacings no detector has give no mm figures, with the reason, and the JSON of a result is
strict: it never holds NaN or Infinity, which JSON readers other than Python's refuse."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from radedge.heads import DecodeContext
from radedge.io import PixelSpacing, read_image
from radedge.io.image import USABLE_SPACING_MM
from radedge.pipeline import load_model
from radedge.spec.geometry import ResizeGeometry

from ..helpers import strict_json
from ..models import tiny
from ..synthetic import disc_image, dx_dataset, to_bytes

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DS")


@pytest.fixture(scope="module")
def model():
    return load_model(tiny("tiny_bone_tumor"), threads=2)


@pytest.mark.parametrize("attributes, problem", [
    ({"imager_pixel_spacing": ("1e308", "1e308")}, "ImagerPixelSpacing gives 1e+308 x 1e+308 mm per pixel"),
    ({"imager_pixel_spacing": (0.1, 2000)}, "gives 0.1 x 2000 mm per pixel"),
    ({"PixelSpacing": ["1e-5", "1e-5"]}, "PixelSpacing gives 1e-05 x 1e-05 mm per pixel"),
])
def test_a_spacing_no_detector_has_gives_no_mm_figures(model, attributes, problem):
    spacing = {"imager_pixel_spacing": attributes.pop("imager_pixel_spacing", (0.1, 0.1))}
    prediction = model.predict(dx_dataset(disc_image(600, 900, (610, 250), 120, 3900, 2250), **spacing, **attributes))
    assert problem in prediction.image["pixel_spacing_problem"]
    assert prediction.image["pixel_spacing_mm"] is None
    region = prediction.segmentations["lesion"].region("lesion")
    assert region.pixel_count > 0 and region.area_mm2 is None
    assert problem in prediction.segmentations["lesion"].area_source
    # The area flag is not decided on a made-up area: a note says why.
    assert "LARGE_BONE_LESION" not in [flag.code for flag in prediction.flags]
    assert any(note.startswith("flag LARGE_BONE_LESION not evaluated") and problem in note
               for note in prediction.notes)
    document = strict_json(prediction.to_json())
    assert document["segmentations"]["lesion"]["regions"][0]["area_mm2"] is None


@pytest.mark.parametrize("factor", ["NaN", "1e-308", "inf", "1e308"])
def test_an_absurd_magnification_factor_leaves_the_detector_spacing(model, factor):
    # The reader ignores it, with a note, and the detector-plane spacing stays usable:
    # the mm figures are the detector's, never ones divided by a damaged factor.
    prediction = model.predict(dx_dataset(disc_image(600, 900, (610, 250), 120, 3900, 2250),
                                          imager_pixel_spacing=(0.1, 0.1),
                                          EstimatedRadiographicMagnificationFactor=factor))
    image = strict_json(prediction.to_json())["image"]
    assert image["pixel_spacing_mm"] == [0.1, 0.1] and image["pixel_spacing_source"] == "ImagerPixelSpacing"
    assert image["pixel_spacing_problem"] is None
    assert any(note.startswith(f"Estimated Radiographic Magnification Factor is {float(factor):g}, not between 1 and 10")
               for note in image["notes"])
    region = prediction.segmentations["lesion"].region("lesion")
    assert region.area_mm2 == pytest.approx(region.pixel_count * 0.01)


def test_the_spacing_rule_holds_for_any_image_and_any_decode():
    low, high = USABLE_SPACING_MM
    image = read_image(to_bytes(dx_dataset(np.eye(16, dtype=np.uint16) * 3000)))
    for row_mm, usable in [(low, True), (high, True), (low / 2, False), (high * 2, False), (float("nan"), False),
                           (float("inf"), False), (-0.1, False)]:
        spacing = PixelSpacing(row_mm, 0.1, "PixelSpacing")
        rebuilt = replace(image, spacing=spacing)
        assert (rebuilt.spacing is not None) is usable
        assert (rebuilt.spacing_problem is None) is usable
        context = DecodeContext(ResizeGeometry(16, 16, 16, 16, 0, 0, 1.0, 1.0), spacing)
        assert (context.spacing_mm is not None) is usable
        assert context.spacing_source == ("PixelSpacing" if usable else f"no mm figures: {rebuilt.spacing_problem}")


def test_json_refuses_a_figure_that_is_not_finite(model):
    prediction = model.predict(dx_dataset(disc_image(300, 400, (200, 150), 60, 3900, 2250)))
    strict_json(prediction.to_json())
    prediction.image["leaked"] = float("inf")
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        prediction.to_json()
