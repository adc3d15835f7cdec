"""The manifest's VOI choice, percentile windows included, from bundle to prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import load_bundle, write_bundle
from radedge.errors import BundleError
from radedge.intensity import build_lut
from radedge.io import Percentile, read_image
from radedge.pipeline import load_model
from radedge.ops.preprocess import preprocess

from ..models.make_tiny import manifest, tiny_model
from ..synthetic import disc_image, dx_dataset, to_bytes


def _bundle(tmp_path: Path, voi) -> Path:
    body = manifest()
    body["preprocessing"]["voi"] = voi
    return write_bundle(tmp_path / "bundle", body, {"model.onnx": tiny_model()})


def test_percentile_voi_is_parsed(tmp_path: Path):
    bundle = load_bundle(_bundle(tmp_path, {"percentile": [0.5, 99.5]}))
    assert bundle.manifest.intensity.voi == Percentile(0.5, 99.5)


@pytest.mark.parametrize(
    "voi, message",
    [
        ({"percentile": [99.5, 0.5]}, "Percentile needs 0 <= low < high <= 100"),
        ({"percentile": [1, 2, 3]}, r"percentile must be \[low, high\]"),
        ({"percentile": 5}, r"percentile must be \[low, high\]"),
        ({"median": [1, 2]}, r'voi as an object must be \{"percentile": \[low, high\]\}'),
        ("auto", r'voi must be "file", "none" or \{"percentile"'),
    ],
)
def test_bad_voi_is_refused(tmp_path: Path, voi, message):
    with pytest.raises(BundleError, match=message):
        load_bundle(_bundle(tmp_path, voi))


def test_pipeline_uses_the_percentile_window(tmp_path: Path):
    model = load_model(_bundle(tmp_path, {"percentile": [1, 99]}), threads=2)
    stored = disc_image(300, 400, (200.0, 150.0), 60.0, 3000, 1200)
    stored[:, :40] = 0  # collimator edge, declared as padding
    ds = dx_dataset(stored)
    ds.PixelPaddingValue = 0
    prediction = model.predict(to_bytes(ds))
    assert "percentile window 1%-99% (nearest rank) of 108000 pixels outside the pixel padding: modality " \
           "[1200, 3000]" in prediction.image["intensity"]
    # The model saw the tensor that window gives: disc at 1, background at 0, padding at 0.
    image = read_image(to_bytes(ds))
    lut = build_lut(image, voi=Percentile(1, 99))
    tensor, _ = preprocess(image.pixels, lut.table, lut.first_stored_value, model.manifest.preprocess)
    assert model.plan.context().input.tobytes() == tensor.tobytes()
    assert np.isclose(lut.table[3000], 1.0) and lut.table[1200] == 0.0 and lut.table[0] == 0.0


@pytest.mark.parametrize(
    "window, message",
    [
        ({"center": 100, "width": 0, "function": "LINEAR_EXACT"}, "Window Width 0 with VOI LUT Function LINEAR_EXACT"),
        ({"center": 100, "width": -5, "function": "SIGMOID"}, "Window Width -5 with VOI LUT Function SIGMOID"),
        ({"center": 100, "width": 0.5}, "Window Width 0.5 with VOI LUT Function LINEAR"),
        ({"center": "nan", "width": 10}, "both must be finite"),
    ],
)
def test_manifest_window_that_cannot_apply_is_refused_at_load(tmp_path: Path, window, message):
    body = manifest()
    body["preprocessing"]["window"] = window
    with pytest.raises(BundleError, match=message):
        load_bundle(write_bundle(tmp_path / "bundle", body, {"model.onnx": tiny_model()}))


def test_manifest_window_that_applies_is_kept(tmp_path: Path):
    body = manifest()
    body["preprocessing"]["window"] = {"center": 2048, "width": 4096, "function": "LINEAR_EXACT"}
    intensity = load_bundle(write_bundle(tmp_path / "bundle", body, {"model.onnx": tiny_model()})).manifest.intensity
    assert (intensity.window.center, intensity.window.width, intensity.window.function) == (2048, 4096, "LINEAR_EXACT")
