"""Several models on one console: routing by scope, a shared lookup table, threads."""

from __future__ import annotations

import threading

import pytest

from radedge.bundle import default_bundle_path, write_bundle
from radedge.errors import BundleError, OutOfScopeError
from radedge.pipeline import load_model, load_models

from ..models import tiny
from ..models.make_tiny import manifest, tiny_model
from ..synthetic import disc_image, dx_dataset, to_bytes

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


@pytest.fixture(scope="module")
def models():
    return load_models([tiny(name) for name in ("tiny_bone_tumor", "tiny_spine", "tiny_bone_quality")], threads=2)


def _femur(**kwargs):
    return to_bytes(dx_dataset(disc_image(300, 400, (200, 150), 60, 3900, 2250), **kwargs))


def test_each_image_goes_to_the_models_whose_scope_fits(models):
    femur = models.predict(_femur())
    assert list(femur.predictions) == ["tiny-bone-tumor"]
    assert set(femur.not_applied) == {"tiny-spine", "tiny-bone-quality"}
    assert "modality is DX" in femur.not_applied["tiny-bone-quality"]
    spine = models.predict(_femur(body_part="LSPINE"))
    assert list(spine.predictions) == ["tiny-spine"]
    nothing = models.predict(_femur(body_part="SKULL"))
    assert not nothing.analysed and nothing.flags == () and nothing.predictions == {}
    assert nothing.reason.startswith("no loaded model applies to this image (tiny-bone-tumor: ")
    assert nothing.to_dict()["analysed"] is False and nothing.drawable


def test_scope_checks_can_be_turned_off(models):
    everything = models.predict(_femur(body_part="SKULL"), check_scope=False)
    assert list(everything.predictions) == ["tiny-bone-tumor", "tiny-spine", "tiny-bone-quality"]
    assert "model scope not checked (check_scope=False)" in everything.image["notes"]


def test_one_table_serves_the_models_that_window_alike(models):
    analysis = models.predict(_femur(), check_scope=False)
    with_table = [model for model, prediction in analysis.predictions.items() if "lut" in prediction.timings_ms]
    assert with_table == ["tiny-bone-tumor"]
    assert analysis.timings_ms["total"] >= analysis.timings_ms["read"] + analysis.timings_ms["lut"]


def test_the_scope_can_name_sop_classes(tmp_path):
    document = manifest()
    document["scope"]["sop_classes"] = [DX_PRESENTATION]
    model = load_model(write_bundle(tmp_path / "bundle", document, {"model.onnx": tiny_model()}))
    assert model.predict(_femur(SOPClassUID=DX_PRESENTATION)).flags is not None
    with pytest.raises(OutOfScopeError, match=f"SOP Class UID {CR_STORAGE} is not one tiny-bone-tumor"):
        model.predict(_femur(SOPClassUID=CR_STORAGE))


def test_the_same_model_twice_is_refused():
    with pytest.raises(BundleError, match="two bundles are model 'tiny-bone-tumor'"):
        load_models([tiny("tiny_bone_tumor"), tiny("tiny_bone_tumor")], warm_up=False)


def test_by_default_every_bundled_model_is_loaded():
    loaded = load_models(warm_up=False)
    assert "bone-tumor" in [model.model_id for model in loaded]
    assert loaded["bone-tumor"].bundle.location == str(default_bundle_path())


def test_a_model_set_may_be_called_from_several_threads(models):
    ct = disc_image(200, 300, (150, 100), 40, 3000, 2000)
    inputs = [_femur(), _femur(body_part="LSPINE"), to_bytes(dx_dataset(ct, modality="CT", body_part=None))]
    def untimed(analysis) -> dict:
        document = analysis.to_dict()
        document.pop("timings_ms")
        for prediction in document["models"].values():
            prediction.pop("timings_ms")
        return document

    expected = [untimed(models.predict(data)) for data in inputs]
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for round_ in range(6):
                index = (offset + round_) % len(inputs)
                assert untimed(models.predict(inputs[index])) == expected[index]
        except BaseException as exc:  # noqa: BLE001 - any failure in a worker fails the test
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
