"""``load_model`` / ``load_models`` / ``predict`` check their arguments when called: a bad value
is an ``InvalidArgumentError`` naming the argument at load time, never a raw error at the first
prediction."""

from __future__ import annotations

from pathlib import Path

import pytest

from radedge.errors import (
    BundleNotFoundError,
    InvalidArgumentError,
    PrecisionNotInBundleError,
)
from radedge.pipeline import load_model, load_models

from ..synthetic import disc_image, dx_dataset

TINY = Path(__file__).parents[1] / "models" / "tiny_bone_tumor"


@pytest.mark.parametrize("arguments, argument, received", [
    ({"threads": -3}, "threads", -3),
    ({"threads": 2.5}, "threads", 2.5),
    ({"threads": True}, "threads", True),
    ({"threads": 10**9}, "threads", 10**9),
    ({"precision": "fp64"}, "precision", "fp64"),
    ({"backend": "tensorflow"}, "backend", "tensorflow"),
    ({"warm_up": "yes"}, "warm_up", "yes"),
    ({"scope": "loose"}, "scope", "loose"),
])
@pytest.mark.parametrize("loader", ["load_model", "load_models"])
def test_a_bad_load_argument_is_refused_at_load_by_name(loader, arguments, argument, received):
    with pytest.raises(InvalidArgumentError) as caught:
        if loader == "load_model":
            load_model(TINY, **arguments)
        else:
            load_models([TINY], **arguments)
    error = caught.value
    assert error.argument == argument and error.received == received
    assert error.code == "argument.invalid" and error.expected
    assert f"{argument}=" in str(error) and loader in str(error)


def test_threads_at_the_bounds_load_and_predict():
    model = load_model(TINY, threads=0, warm_up=False)
    prediction = model.predict(dx_dataset(disc_image(64, 64, (32.0, 32.0), 10.0, 3900, 2250)))
    assert prediction.heads


@pytest.mark.parametrize("bundle", [42, b"/bytes/path", ["a", "b"]], ids=["int", "bytes", "list"])
def test_a_bundle_of_another_type(bundle):
    with pytest.raises(InvalidArgumentError) as caught:
        load_model(bundle)
    assert caught.value.argument == "bundle"


def test_load_models_wants_a_list_not_a_single_path():
    with pytest.raises(InvalidArgumentError, match="a list or tuple") as caught:
        load_models(str(TINY))
    assert caught.value.argument == "bundles"
    with pytest.raises(InvalidArgumentError) as empty:
        load_models([])
    assert empty.value.argument == "bundles" and empty.value.received == "list"
    with pytest.raises(InvalidArgumentError):
        load_models([TINY, 7])


def test_a_missing_bundle(tmp_path):
    with pytest.raises(BundleNotFoundError) as caught:
        load_model(tmp_path / "no-bundle")
    assert caught.value.code == "bundle.not_found"
    assert caught.value.location == str(tmp_path / "no-bundle")
    assert "--model" not in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)


def test_a_precision_the_bundle_lacks():
    with pytest.raises(PrecisionNotInBundleError) as caught:
        load_model(TINY, precision="int8")
    error = caught.value
    assert (error.argument, error.received, error.expected) == ("precision", "int8", ["fp32"])
    assert isinstance(error, InvalidArgumentError)


@pytest.fixture(scope="module")
def model():
    return load_model(TINY, threads=1)


@pytest.mark.parametrize("arguments, argument", [
    ({"label": 5}, "label"),
    ({"check_scope": "no"}, "check_scope"),
    ({"region": (0, 0, -4, 10)}, "region"),
    ({"region": (0, 0, 10)}, "region"),
    ({"region": "everywhere"}, "region"),
    ({"region": (0, 0, float("nan"), 10)}, "region"),
    ({"region": (0.0, 0.0, 10.0, 10.0)}, "region"),
    ({"region": (50, 50, 100, 100)}, "region"),  # past the 64 x 64 image
])
def test_a_bad_predict_argument_is_refused_by_name(model, arguments, argument):
    with pytest.raises(InvalidArgumentError) as caught:
        model.predict(dx_dataset(disc_image(64, 64, (32.0, 32.0), 10.0, 3900, 2250)), **arguments)
    assert caught.value.argument == argument


def test_model_set_predict_checks_its_arguments():
    models = load_models([TINY], threads=1)
    image = dx_dataset(disc_image(64, 64, (32.0, 32.0), 10.0, 3900, 2250))
    for arguments, argument in [({"reader": "read_image"}, "reader"), ({"read_ms": -1.0}, "read_ms"),
                                ({"label": object()}, "label")]:
        with pytest.raises(InvalidArgumentError) as caught:
            models.predict(image, **arguments)
        assert caught.value.argument == argument
