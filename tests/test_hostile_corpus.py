"""``radedge run tests/data/hostile`` as a user runs it: every file of the hostile-input corpus
gets the answer its index.json entry says (a typed error, "not analysed" with the reason, or
an analysis with its flag and note), each result's JSON is strict, and the run reports the
failures with exit status 1 and no traceback. The corpus is made by
tests/data/hostile/make_hostile.py."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import pytest
import radedge.errors
from radedge.cli import main

from .helpers import strict_json

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path("tests") / "data" / "hostile"
INDEX = json.loads((ROOT / CORPUS / "index.json").read_text())
ENTRIES = {entry["file"]: entry for entry in INDEX["files"]}
NOT_CORPUS = {"make_hostile.py", "index.json"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The command run once over the corpus from the repository root, as README shows it:
    exit status, stdout, stderr, the line printed for each file, the results folder, seconds."""
    out = tmp_path_factory.mktemp("hostile") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        start = time.perf_counter()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = main(["run", str(CORPUS), "--out", str(out)])
        seconds = time.perf_counter() - start
    lines: dict[str, list[str]] = {}
    for line in stdout.getvalue().splitlines() + stderr.getvalue().splitlines():
        label, _, rest = line.partition("  ")
        if label.startswith(f"{CORPUS}/"):
            lines.setdefault(Path(label).name, []).append(rest)
    return {"status": status, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "lines": lines,
            "out": out, "seconds": seconds}


def test_every_file_has_an_entry_and_every_entry_a_file():
    files = {path.name for path in (ROOT / CORPUS).iterdir() if path.is_file()} - NOT_CORPUS
    assert files == set(ENTRIES)
    assert len(INDEX["files"]) == len(ENTRIES)  # no file listed twice


def test_the_corpus_is_small():
    sizes = {path.name: path.stat().st_size for path in (ROOT / CORPUS).iterdir()}
    assert max(sizes.values()) < 300_000, sizes
    assert sum(sizes.values()) < 2_000_000


def test_the_run_reports_failures_without_a_traceback(run):
    assert run["status"] == 1  # some files are refused with a typed error
    assert "Traceback" not in run["stdout"] + run["stderr"]
    errors = sum("error" in entry["expected"] for entry in ENTRIES.values())
    not_analysed = sum("not_analysed" in entry["expected"] for entry in ENTRIES.values())
    flagged = sum("flag" in entry["expected"] for entry in ENTRIES.values())
    assert (f"{len(ENTRIES)} image(s): {flagged} flagged, {not_analysed} not analysed, {errors} failed"
            in run["stdout"])
    # Not asserted: the time depends on the machine. Each file once took up to 17 s.
    print(f"\nradedge run over {len(ENTRIES)} hostile files: {run['seconds']:.2f} s, models loaded included")
    for name, printed in sorted(run["lines"].items()):
        print(f"  {name}: {printed[0].rsplit('  ', 1)[-1] if printed[0].endswith(' ms') else 'refused'}")


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_each_file_gets_its_answer(run, name):
    expected = ENTRIES[name]["expected"]
    assert run["lines"].get(name) is not None and len(run["lines"][name]) == 1, run["lines"].get(name)
    printed = run["lines"][name][0]
    result = run["out"] / f"{Path(name).stem}.json"
    if "error" in expected:
        error = expected["error"]
        assert issubclass(getattr(radedge.errors, error), radedge.errors.RadedgeError)
        assert printed.startswith(f"ERROR {error}: "), printed
        assert f"{CORPUS}/{name}  ERROR {error}: " in run["stderr"]
        assert not result.exists()  # refused: nothing is written for it
        return
    document = strict_json(result.read_text())
    assert f"{CORPUS}/{name}  {printed}" in run["stdout"]
    assert printed.endswith(" ms") and "ERROR" not in printed
    if "not_analysed" in expected:
        assert printed.startswith("not analysed: ") and expected["not_analysed"] in printed, printed
        assert document["analysed"] is False and document["flags"] == [] and document["models"] == {}
        assert expected["not_analysed"] in document["reason"]
        return
    assert expected["analysed"] is True
    assert not printed.startswith("not analysed") and document["analysed"] is True and document["reason"] is None
    if "flag" in expected:
        assert expected["flag"] in printed
        assert expected["flag"] in [flag["code"] for flag in document["flags"]]
    if "note" in expected:
        image = document["image"]
        said = [*image["notes"], image["pixel_spacing_problem"] or ""]
        assert any(expected["note"] in text for text in said), said

