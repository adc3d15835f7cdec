"""``load_model(precision=...)`` runs the bundle's file for that precision and says so in every
result; the SDK picks files, it converts nothing (the FP16 file here is the FP32 bytes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radedge.bundle import write_bundle
from radedge.errors import BackendError, BundleError
from radedge.pipeline import load_model, load_models

from ..models.make_tiny import manifest, tiny_model
from ..synthetic import disc_image, dx_dataset, to_bytes

GATE = {"passed": True, "heads": {"tumor": {"auc_drop": 0.001, "flag_changes": 0.0},
                                  "lesion": {"dice": 0.995}}}


def _two_precisions(directory: Path, fp16_bytes: bytes) -> Path:
    body = {**manifest(), "precisions": {"fp32": {"file": "model.onnx"},
                                         "fp16": {"file": "model.fp16.onnx", "gate": GATE}}}
    return write_bundle(directory, body, {"model.onnx": tiny_model(), "model.fp16.onnx": fp16_bytes})


def test_fp16_loads_its_file_and_every_result_says_so(tmp_path: Path):
    bundle = _two_precisions(tmp_path / "bundle", tiny_model())
    image = to_bytes(dx_dataset(disc_image(300, 300, (150, 150), 60, 3900, 2250)))
    half = load_model(bundle, precision="fp16", threads=1).predict(image)
    full = load_model(bundle, threads=1).predict(image)
    assert (half.provenance["precision"], half.provenance["gate"]) == ("fp16", GATE)
    assert (full.provenance["precision"], full.provenance["gate"]) == ("fp32", {})
    np.testing.assert_array_equal(half.heads["tumor"].probabilities, full.heads["tumor"].probabilities)


def test_the_chosen_precision_is_the_file_the_backend_gets(tmp_path: Path):
    bundle = _two_precisions(tmp_path / "bundle", b"not an ONNX model")
    load_model(bundle, threads=1)  # FP32 never touches the FP16 file
    with pytest.raises(BackendError, match="could not load the model"):
        load_model(bundle, precision="fp16", threads=1)


def test_a_precision_the_bundle_lacks_names_the_ones_it_has(tmp_path: Path):
    bundle = _two_precisions(tmp_path / "bundle", tiny_model())
    with pytest.raises(BundleError, match=r"has no int8 model; it carries fp32, fp16\. Pick one of those"):
        load_model(bundle, precision="int8", warm_up=False)


def test_load_models_passes_the_precision_to_every_model(tmp_path: Path):
    bundle = _two_precisions(tmp_path / "bundle", tiny_model())
    models = load_models([bundle], precision="fp16", warm_up=False)
    assert [model.precision for model in models] == ["fp16"]
    only_fp32 = write_bundle(tmp_path / "fp32", {**manifest(), "model": {"id": "other", "version": "1"}},
                             {"model.onnx": tiny_model()})
    with pytest.raises(BundleError, match="other .* has no fp16 model; it carries fp32"):
        load_models([bundle, only_fp32], precision="fp16", warm_up=False)
