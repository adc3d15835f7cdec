"""``radedge run`` on a folder where broken headers sit beside good images: it carries on, reports
each image it could not analyse with the reason (or the typed error), and writes strict JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataelem import DataElement

from radedge.io import read_image

from .helpers import strict_json
from .synthetic import PATIENT_VALUES, dx_dataset, to_bytes
from .test_cli import ROOT, radedge

EXAMPLE = ROOT / "examples" / "radiographs" / "femur_malignant.dcm"
WINDOW = (1901.6, 3577.9)
FLAGS = {"SUSPECTED_MALIGNANT_BONE_LESION", "MALIGNANT_REGION"}

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DS")


def _femur(pixels: np.ndarray, *, window=WINDOW, imager_pixel_spacing=(0.1, 0.1), **attributes):
    return dx_dataset(pixels, window=window, imager_pixel_spacing=imager_pixel_spacing, **attributes)


def _folder(folder: Path) -> None:
    pixels = read_image(EXAMPLE).pixels
    padded = _femur(pixels)
    padded.add(DataElement(0x00280120, "US", int(pixels.min())))
    padded.add(DataElement(0x00280121, "US", int(pixels.max())))
    datasets = {
        "a_good": _femur(pixels),
        "b_slope_nan": _femur(pixels, window=None, RescaleSlope="NaN"),
        "c_width_huge": _femur(pixels, window=(1901.6, "1e308")),
        "d_slope_denormal": _femur(pixels, RescaleSlope="5e-324"),
        "e_all_padding": padded,
        "f_one_pixel": _femur(pixels[:1, :1]),
        "g_uniform": _femur(np.full_like(pixels, 3000)),
        "h_spacing_huge": _femur(pixels, imager_pixel_spacing=("1e308", "1e308")),
        "i_magnification_tiny": _femur(pixels, EstimatedRadiographicMagnificationFactor="1e-308"),
        "j_window_nan": _femur(pixels, window=("NaN", 3577.9)),
        "k_good": _femur(pixels),
    }
    folder.mkdir()
    for name, dataset in datasets.items():
        (folder / f"{name}.dcm").write_bytes(to_bytes(dataset))


NOT_ANALYSED = {
    "b_slope_nan": "Rescale Slope (0028,1053) is nan",
    "c_width_huge": "Width 1e+308) is out of all proportion",
    "d_slope_denormal": "a denormal number",
    "e_all_padding": "every pixel is pixel padding",
    "f_one_pixel": "the image is 1 x 1 pixels, too few for bone-tumor",
    "g_uniform": "the image is uniform",
}


def test_run_reports_every_image_it_cannot_analyse_and_carries_on(tmp_path: Path):
    folder, out = tmp_path / "incoming", tmp_path / "out"
    _folder(folder)

    result = radedge("run", str(folder), "--out", str(out))

    # The window that is not a number is a typed error, so the run reports a failure.
    assert result.returncode == 1, result.stderr
    printed = {Path(line.split()[0]).stem: line for line in result.stdout.splitlines() if line.startswith(str(folder))}
    assert sorted(printed) == sorted(p.stem for p in folder.iterdir() if p.stem != "j_window_nan")
    assert any("j_window_nan.dcm  ERROR InvalidWindowError" in line for line in result.stderr.splitlines())
    for name, reason in NOT_ANALYSED.items():
        assert "  not analysed: " in printed[name] and reason in printed[name], printed[name]
    assert "11 image(s): 4 flagged, 6 not analysed, 1 failed" in result.stdout

    documents = {path.stem: strict_json(path.read_text()) for path in out.glob("*.json")}
    assert sorted(documents) == sorted(printed)
    for name in NOT_ANALYSED:
        document = documents[name]
        assert document["analysed"] is False and document["flags"] == [] and document["models"] == {}
        assert set(document["not_analysable"]) == {"bone-tumor", "tumor-cls"}
    for name in ("a_good", "k_good", "h_spacing_huge", "i_magnification_tiny"):
        assert {flag["code"] for flag in documents[name]["flags"]} == FLAGS, name
    problem = "ImagerPixelSpacing gives 1e+308 x 1e+308 mm per pixel"
    image = documents["h_spacing_huge"]["image"]
    assert image["pixel_spacing_mm"] is None and problem in image["pixel_spacing_problem"]
    segmentation = documents["h_spacing_huge"]["models"]["bone-tumor"]["segmentations"]["lesion"]
    assert segmentation["regions"][0]["area_mm2"] is None and problem in segmentation["area_source"]
    # The factor is ignored with a note: mm figures at the detector plane, never divided by it.
    image = documents["i_magnification_tiny"]["image"]
    assert image["pixel_spacing_mm"] == [0.1, 0.1] and image["pixel_spacing_problem"] is None
    assert any("Estimated Radiographic Magnification Factor is 1e-308, not between" in note for note in image["notes"])
    segmentation = documents["i_magnification_tiny"]["models"]["bone-tumor"]["segmentations"]["lesion"]
    assert segmentation["area_source"] == "ImagerPixelSpacing"
    assert segmentation["regions"][0]["area_mm2"] == pytest.approx(segmentation["regions"][0]["pixel_count"] * 0.01)
    written = result.stdout + result.stderr + "".join(path.read_text() for path in out.glob("*.json"))
    assert all(secret not in written for secret in PATIENT_VALUES.values())
