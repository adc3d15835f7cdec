"""Every input the fuzz harness has found radedge mishandling, kept as found
(``tests/data/fuzz_found``, listed in its ``index.json``), replayed under the harness's limits:
each now gets the answer its entry names (a typed refusal, or an analysis whose DICOM objects
are refused typed), in time and memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzz.runner import Limits, replay

FOUND = Path(__file__).resolve().parents[1] / "data" / "fuzz_found"
INDEX = json.loads((FOUND / "index.json").read_text())


def test_every_found_file_is_listed():
    listed = {entry["file"] for entry in INDEX["files"]}
    assert listed == {path.name for path in FOUND.iterdir() if path.name != "index.json"}


@pytest.fixture(scope="module")
def reports():
    entries = INDEX["files"]
    found = replay([FOUND / entry["file"] for entry in entries], Limits(time_limit_s=10.0))
    return {entry["file"]: report for entry, report in zip(entries, found)}


@pytest.mark.parametrize("entry", INDEX["files"], ids=[entry["file"] for entry in INDEX["files"]])
def test_found_file_gets_its_answer(reports, entry):
    report = reports[entry["file"]]
    expected = entry["expected"]
    if "error" in expected:
        assert (report.outcome, report.detail) == ("refused", expected["error"])
    else:
        assert (report.outcome, report.detail) == ("analysed", expected["analysed"])
    assert report.seconds < 5
