"""The whole intensity + preprocess path against the slow chain it replaces.

radedge: ``read_image`` -> ``build_lut`` -> fused native op. Reference: pydicom's
``apply_modality_lut`` / ``apply_voi_lut`` + explicit MONOCHROME1 inversion + OpenCV
``resize`` (``tests.reference_chain``). Within 1e-3 in float32 on phantoms, pydicom's own
files and the shared LUT files, across VOI functions and transfer syntaxes; lossless
encodings of one image give identical tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from pydicom.pixels import apply_modality_lut

from radedge.intensity import build_lut
from radedge.io import Percentile, read_image
from radedge.ops.preprocess import PreprocessSpec, center_crop, preprocess

from ..io.dicom_factory import make_dataset, to_bytes
from ..io.reference_files import REFERENCE_FILES, reference_id
from ..reference_chain import pydicom_display, reference_tensor

ROOT = Path(__file__).resolve().parents[2]
TRANSFER_SYNTAXES = ROOT / "tests" / "data" / "transfer_syntaxes"
EXAMPLES = ROOT / "examples" / "radiographs"
TOLERANCE = 1e-3
SPECS = [
    PreprocessSpec(256, 256, resize="letterbox", mean=(0.5,), std=(0.25,)),
    PreprocessSpec(96, 160, resize="stretch"),
]


def _radedge_tensor(source, spec: PreprocessSpec, voi_index: int = 0) -> np.ndarray:
    image = read_image(source)
    lut = build_lut(image, voi_index=voi_index)
    tensor, _ = preprocess(image.pixels, lut.table, lut.first_stored_value, spec)
    return tensor[0, 0]


def _reference(ds: pydicom.Dataset, spec: PreprocessSpec, voi_index: int = 0) -> np.ndarray:
    display = pydicom_display(ds, ds.pixel_array, voi_index)
    return reference_tensor(
        display, spec.height, spec.width, letterbox=spec.resize == "letterbox",
        pad_value=spec.pad_value, mean=spec.mean[0], std=spec.std[0],
    )


def _check(path_or_bytes, ds: pydicom.Dataset, voi_index: int = 0) -> None:
    for spec in SPECS:
        got = _radedge_tensor(path_or_bytes, spec, voi_index)
        expected = _reference(ds, spec, voi_index)
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def _transfer_syntax_files():
    index = json.loads((TRANSFER_SYNTAXES / "index.json").read_text())
    return [pytest.param(entry, id=entry["file"]) for entry in index["files"]]


@pytest.mark.parametrize("entry", _transfer_syntax_files())
def test_phantom_in_every_transfer_syntax_matches_the_chain(entry):
    path = TRANSFER_SYNTAXES / entry["file"]
    _check(path, pydicom.dcmread(path))


def test_lossless_transfer_syntaxes_give_identical_tensors():
    index = json.loads((TRANSFER_SYNTAXES / "index.json").read_text())
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        entries = [e for e in index["files"] if e["lossless"] and e["photometric"] == photometric]
        assert len(entries) >= 7, [e["file"] for e in entries]
        for spec in SPECS:
            tensors = {e["file"]: _radedge_tensor(TRANSFER_SYNTAXES / e["file"], spec) for e in entries}
            first = next(iter(tensors.values()))
            for name, tensor in tensors.items():
                assert np.array_equal(tensor, first), name


def test_monochrome1_and_monochrome2_versions_give_the_same_tensor():
    # The phantom's MONOCHROME1 file stores 4095 - v with the window reflected. LINEAR
    # windowing (PS3.3 C.11.2.1.2.1) maps [c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2], which
    # is not symmetric under that reflection: the two differ by at most 1 / (w - 1) in display.
    spec = PreprocessSpec(256, 256, resize="letterbox")
    path1, path2 = TRANSFER_SYNTAXES / "explicit_vr_le_mono1.dcm", TRANSFER_SYNTAXES / "explicit_vr_le_mono2.dcm"
    width = float(pydicom.dcmread(path2, stop_before_pixels=True).WindowWidth)
    mono1, mono2 = _radedge_tensor(path1, spec), _radedge_tensor(path2, spec)
    difference = np.abs(mono1 - mono2)
    assert difference.max() <= 1 / (width - 1) + 1e-6
    assert np.corrcoef(mono1.ravel(), mono2.ravel())[0, 1] > 0.9999


@pytest.mark.parametrize("reference", [r for r in REFERENCE_FILES if r.available], ids=reference_id)
def test_reference_files_match_the_chain(reference):
    ds = pydicom.dcmread(reference.path)
    windows = ds.get("WindowCenter")
    count = len(windows) if isinstance(windows, pydicom.multival.MultiValue) else 1
    for index in range(count):
        _check(reference.path, ds, index)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.dcm")), ids=lambda p: p.name)
def test_bundled_examples_match_the_chain(path):
    _check(path, pydicom.dcmread(path))


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_voi_functions_match_the_chain(function, photometric):
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:700, 0:500]
    stored = (1800 + 900 * np.sin(x / 60.0) * np.cos(y / 45.0) + rng.normal(0, 40, x.shape)).clip(0, 4095)
    ds = make_dataset(
        stored.astype(np.uint16), bits_stored=12, photometric=photometric,
        RescaleSlope="1.5", RescaleIntercept="-300", WindowCenter=["2400", "2000"], WindowWidth=["1800", "3000"],
        VOILUTFunction=function,
    )
    encoded = to_bytes(ds)
    for index in (0, 1):
        _check(encoded, pydicom.dcmread(pydicom.filebase.DicomBytesIO(encoded)), index)


@pytest.mark.parametrize("name", ["explicit_vr_le_mono1.dcm", "explicit_vr_le_mono2.dcm"])
@pytest.mark.parametrize("percentile", [Percentile(), Percentile(5, 95)])
def test_percentile_window_and_centre_crop_match_the_numpy_chain(name, percentile):
    """Percentiles of the modality values by numpy (nearest rank), the window ramp, then the
    centre crop cut out and resized by OpenCV: what radedge does in build_lut + the op."""
    path = TRANSFER_SYNTAXES / name
    ds = pydicom.dcmread(path)
    modality = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    low, high = np.percentile(modality, [percentile.low, percentile.high], method="inverted_cdf")
    display = np.clip((modality - low) / (high - low), 0, 1)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        display = 1.0 - display
    image = read_image(path)
    lut = build_lut(image, voi=percentile)
    crop = center_crop(image.rows, image.columns, aspect=1.0, fraction=0.9)
    for spec in SPECS:
        tensor, geometry = preprocess(image.pixels, lut.table, lut.first_stored_value, spec, crop=crop)
        cut = display[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width]
        expected = reference_tensor(cut, spec.height, spec.width, letterbox=spec.resize == "letterbox",
                                    pad_value=spec.pad_value, mean=spec.mean[0], std=spec.std[0])
        np.testing.assert_allclose(tensor[0, 0], expected, atol=TOLERANCE, rtol=0)
        assert geometry.crop == crop
