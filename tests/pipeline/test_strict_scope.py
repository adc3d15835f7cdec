"""``scope="strict"``: an image lacking an attribute the model's scope names is refused, with
the attribute named, where the default analyses it with a note (docs/errors.md)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from radedge.errors import OutOfScopeError, ScopeMetadataMissingError
from radedge.pipeline import load_model, load_models

from ..synthetic import disc_image, dx_dataset, to_bytes

TINY = Path(__file__).parents[1] / "models" / "tiny_bone_tumor"


def _image(**kwargs):
    return dx_dataset(disc_image(96, 96, (48.0, 48.0), 20.0, 3900, 2250), **kwargs)


@pytest.fixture(scope="module")
def lenient():
    return load_model(TINY, threads=1)


@pytest.fixture(scope="module")
def strict():
    return load_model(TINY, threads=1, scope="strict")


def test_default_is_unchanged_a_missing_body_part_is_a_note(lenient):
    prediction = lenient.predict(_image(body_part=None))
    assert "BodyPartExamined absent: body part not checked" in prediction.image["notes"]
    assert lenient.scope == "lenient"


def test_strict_refuses_a_missing_body_part_by_name(strict):
    with pytest.raises(ScopeMetadataMissingError) as caught:
        strict.predict(_image(body_part=None))
    error = caught.value
    assert isinstance(error, OutOfScopeError)
    assert error.attribute == "Body Part Examined" and error.model_id == "tiny-bone-tumor"
    assert error.expected == ["FEMUR", "HUMERUS", "TIBIA"]
    assert error.code == "input.scope_metadata_missing"
    assert "scope='lenient'" in str(error)


def test_strict_refuses_a_missing_modality(strict):
    image = _image()
    del image.Modality
    with pytest.raises(ScopeMetadataMissingError) as caught:
        strict.predict(image)
    assert caught.value.attribute == "Modality"


def test_strict_takes_the_intent_of_a_dx_image_from_its_sop_class(strict, lenient):
    # DX For Presentation fixes the intent (PS3.3 A.26): nothing is missing.
    prediction = strict.predict(_image(presentation_intent=None))
    assert not any("PresentationIntentType" in note for note in prediction.image["notes"])
    assert "PresentationIntentType absent: presentation intent not checked" in lenient.predict(
        _image(presentation_intent=None)).image["notes"]


def test_strict_refuses_an_intent_no_sop_class_vouches_for(strict):
    image = _image(presentation_intent=None)
    del image.SOPClassUID
    with pytest.raises(ScopeMetadataMissingError) as caught:
        strict.predict(image)
    assert caught.value.attribute == "Presentation Intent Type"


def test_strict_analyses_an_image_with_everything_in_scope(strict, lenient):
    image = to_bytes(_image())
    assert strict.predict(image).flags == lenient.predict(image).flags


def test_a_value_out_of_scope_names_the_attribute_in_either_mode(strict):
    with pytest.raises(OutOfScopeError) as caught:
        strict.predict(_image(body_part="CHEST"))
    error = caught.value
    assert type(error) is OutOfScopeError
    assert (error.attribute, error.received) == ("Body Part Examined", "CHEST")


def test_strict_refuses_an_image_without_dicom_metadata(strict, lenient):
    ok, png = cv2.imencode(".png", (disc_image(96, 96, (48.0, 48.0), 20.0, 255, 100)).astype(np.uint8))
    assert ok
    with pytest.raises(ScopeMetadataMissingError):
        strict.predict(png.tobytes())
    assert lenient.predict(png.tobytes()).heads


def test_a_strict_model_set_lists_the_model_as_not_applied_with_the_reason():
    models = load_models([TINY], threads=1, scope="strict")
    analysis = models.predict(_image(body_part=None))
    assert not analysis.analysed
    assert "Body Part Examined is absent" in analysis.not_applied["tiny-bone-tumor"]
    assert models.predict(_image(body_part=None), check_scope=False).analysed
