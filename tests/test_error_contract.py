"""The error contract a vendor's console relies on: every class in radedge.errors has its own
stable code, carries its fields through pickling (errors cross from worker processes) and
gives them as JSON; docs/errors.md lists each class with its code."""

from __future__ import annotations

import inspect
import json
import pickle
import re
from pathlib import Path

import pytest

import radedge
from radedge import errors

CLASSES = sorted(
    (cls for cls in vars(errors).values() if inspect.isclass(cls) and issubclass(cls, errors.RadedgeError)),
    key=lambda cls: cls.__name__,
)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
#: Codes as released; a code, once here, never changes (a console maps them to its wording).
RELEASED = {
    "BackendError": "backend.failed",
    "BundleError": "bundle.invalid",
    "BundleIntegrityError": "bundle.integrity",
    "BundleNotFoundError": "bundle.not_found",
    "BundleSignatureError": "bundle.signature",
    "CodestreamMismatchError": "input.codestream_mismatch",
    "CorruptPixelDataError": "input.corrupt_pixel_data",
    "DicomOutputError": "output.dicom",
    "EncapsulationMismatchError": "input.encapsulation_mismatch",
    "ImageTooLargeError": "input.image_too_large",
    "InputError": "input.invalid",
    "InputNotFoundError": "input.not_found",
    "InputNotReadableError": "input.not_readable",
    "InputTooLargeError": "input.too_large",
    "InputTypeError": "input.invalid_type",
    "InvalidArgumentError": "argument.invalid",
    "InvalidWindowError": "input.invalid_window",
    "MemoryBudgetExceededError": "input.memory_budget_exceeded",
    "MissingDependencyError": "dependency.missing",
    "NativeOpError": "native.failed",
    "NoImageError": "output.no_image",
    "NoPixelDataError": "input.no_pixel_data",
    "NotAnalysableError": "input.not_analysable",
    "NotDicomError": "input.not_dicom",
    "NotDicomSourceError": "input.not_dicom_source",
    "NotRegularFileError": "input.not_regular_file",
    "OutOfScopeError": "input.out_of_scope",
    "PrecisionNotInBundleError": "bundle.precision_missing",
    "RadedgeError": "error",
    "ScopeMetadataMissingError": "input.scope_metadata_missing",
    "SequenceTooDeepError": "input.sequence_too_deep",
    "ServeConfigError": "serve.config",
    "TimeBudgetExceededError": "input.time_budget_exceeded",
    "TruncatedPixelDataError": "input.truncated_pixel_data",
    "UnsupportedImageError": "input.unsupported_image",
    "UnsupportedTransferSyntaxError": "input.unsupported_transfer_syntax",
    "WorkerCrashedError": "input.worker_crashed",
}


def _example(cls: type[errors.RadedgeError]) -> errors.RadedgeError:
    """An instance of ``cls`` with every documented field set to a value of its own."""
    values = {name: f"{name}-value" for name in cls.field_names}
    if "missing_packages" in values:
        values["missing_packages"] = ("pylibjpeg", "pylibjpeg-openjpeg")
    if "limit" in values:
        values["limit"] = 1.5
    if cls is errors.MissingDependencyError:
        return cls(values["package"], values["feature"])
    return cls("what arrived, what was expected, what to do", **values)


def test_every_class_has_a_code_of_its_own():
    codes = {}
    for cls in CLASSES:
        assert "code" in cls.__dict__, f"{cls.__name__} inherits its code; give it its own"
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)*", cls.code), cls.code
        assert cls.code not in codes, f"{cls.__name__} and {codes.get(cls.code)} share {cls.code}"
        codes[cls.code] = cls.__name__
    assert len(codes) == len(CLASSES) >= 35


def test_released_codes_never_change():
    for name, code in RELEASED.items():
        assert getattr(errors, name).code == code


def test_every_class_is_exported_from_radedge():
    for cls in CLASSES:
        assert getattr(radedge, cls.__name__) is cls
        assert cls.__name__ in radedge.__all__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_pickling_keeps_the_class_code_message_and_fields(cls):
    error = _example(cls)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls
    assert again.code == cls.code
    assert str(again) == str(error)
    assert again.fields == error.fields
    for name in cls.field_names:
        assert getattr(again, name) == error.fields[name]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_to_dict_is_json_with_the_code_message_and_fields(cls):
    error = _example(cls)
    document = error.to_dict()
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert document["code"] == cls.code and document["error"] == cls.__name__
    assert document["message"] == str(error)
    assert set(document["fields"]) == set(cls.field_names)
    if "missing_packages" in cls.field_names:
        assert document["fields"]["missing_packages"] == ["pylibjpeg", "pylibjpeg-openjpeg"]


def test_a_field_not_filled_reads_as_none_and_an_unknown_attribute_is_still_an_error():
    error = errors.TruncatedPixelDataError("cut short")
    assert error.expected is None and error.fields == {}
    with pytest.raises(AttributeError):
        error.no_such_field  # noqa: B018


def test_json_values_of_awkward_fields():
    import numpy as np

    error = errors.InputTooLargeError("too large", received=np.int64(7), limit=float("inf"), path=Path("/x/y.dcm"))
    assert error.to_dict()["fields"] == {"received": 7, "limit": "inf", "path": "/x/y.dcm"}


def test_to_dict_without_paths_keeps_a_file_name_out():
    with pytest.raises(errors.InputNotFoundError) as caught:
        radedge.read_image("/nonexistent/Doe_Jane_19610412.dcm")
    document = caught.value.to_dict(paths=False)
    assert "Doe" not in json.dumps(document)
    assert "path" not in document["fields"]
    assert caught.value.to_dict()["fields"]["path"] == "/nonexistent/Doe_Jane_19610412.dcm"


def test_compatible_bases_still_catch():
    assert issubclass(errors.InputNotFoundError, FileNotFoundError)
    assert issubclass(errors.InputNotReadableError, PermissionError)
    assert issubclass(errors.InputTypeError, TypeError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.PrecisionNotInBundleError, errors.BundleError)
    assert issubclass(errors.ScopeMetadataMissingError, errors.OutOfScopeError)


def test_docs_list_every_class_with_its_code_and_fields():
    text = DOCS.read_text()
    for cls in CLASSES:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{cls.__name__}`")), None)
        assert row is not None, f"docs/errors.md has no row for {cls.__name__}"
        assert f"`{cls.code}`" in row
        cells = [cell.strip() for cell in row.split("|")]
        assert cells[2] == ", ".join(f"`{base.__name__}`" for base in cls.__bases__), f"{cls.__name__}'s parent"
        for name in cls.field_names:
            assert f"`{name}`" in row, f"{cls.__name__}'s row does not name its field {name}"
