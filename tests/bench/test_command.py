"""``radedge bench`` as a user runs it: a real subprocess on real files, its exit status, the
table it prints, bench.json and bench.html; and the command lines it refuses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pytest

from radedge.bench import QUICK_ROUNDS
from radedge.bench import command as bench_command
from radedge.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "tests/data/transfer_syntaxes/explicit_vr_le_mono2.dcm"
RADIOGRAPH = ROOT / "examples/radiographs/femur_malignant.dcm"
# A file name that must reach the page and the terminal as text, never as markup.
ODD_NAME = 'odd <i>name & "x".dcm'
SECTIONS = {"summary", "stages", "tail", "transfer-syntaxes", "cold-start", "concurrency", "baseline", "warnings",
            "machine", "method"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``radedge bench --baseline --quick --concurrency 2`` over the small native phantom
    (under an odd name, in a folder) and a JPEG-LS example radiograph."""
    folder = tmp_path_factory.mktemp("inputs")
    shutil.copy(SMALL, folder / ODD_NAME)
    out = tmp_path_factory.mktemp("bench") / "report"
    result = subprocess.run(
        [sys.executable, "-m", "radedge", "bench", "--baseline", "--quick", "--concurrency", "2",
         "--inputs", str(folder), str(RADIOGRAPH), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    return result, out


def test_quick_run_exits_0_and_writes_both_files(quick_run):
    result, out = quick_run
    assert result.returncode == 0, result.stderr
    assert (out / "bench.json").is_file() and (out / "bench.html").is_file()
    assert f"wrote {out / 'bench.json'}, {out / 'bench.html'}" in result.stdout


def test_the_printed_table(quick_run):
    result, _ = quick_run
    out = result.stdout
    for heading in ("warm: DICOM bytes in memory -> flags", "stages to flag, medians", "per transfer syntax",
                    "cold start: a new process", "concurrency: threads calling predict", "baseline: pydicom"):
        assert heading in out
    assert "Explicit VR Little Endian" in out and "JPEG-LS Lossless Image Compression" in out
    assert "2/2 agree" in out
    assert f"n/a ({QUICK_ROUNDS})" in out  # p90 of 3 rounds is not made up
    assert "[quick]" in out and "[few-samples]" in out
    assert ODD_NAME in out


def test_progress_on_stderr_one_line_per_phase_without_a_terminal(quick_run):
    result, _ = quick_run
    phases = [line for line in result.stderr.splitlines() if line.startswith("radedge bench: ")]
    assert [re.sub(r" \(\d+ steps?\)$", "", line.split(": ", 1)[1]) for line in phases] == [
        "machine: load before the start", "loading models", "warm-up, one round per input",
        "cold start, a new process per input", f"warm rounds ({QUICK_ROUNDS} per input) with baseline",
        "concurrency 1, 2 thread(s)"]
    assert "\r" not in result.stderr


def test_the_json_holds_every_raw_sample(quick_run):
    _, out = quick_run
    document = json.loads((out / "bench.json").read_text())
    assert document["format"] == "radedge-bench/1"
    assert {"date", "command", "machine", "load_at_start", "settings", "models", "inputs", "transfer_syntaxes",
            "concurrency", "baseline_overall", "warnings", "errors"} <= set(document)
    # What the warm-up left alive is kept out of the timed rounds' collections (radedge._heap).
    assert document["objects_settled_after_warm_up"] > 10_000
    assert document["command"].startswith("radedge bench --baseline --quick")
    machine = document["machine"]
    assert {"cpu", "logical_cores", "usable_cores", "memory_gib", "gpu", "os", "python", "versions"} <= set(machine)
    assert {"radedge", "onnxruntime", "numpy", "pydicom", "opencv (cv2)", "imagecodecs"} <= set(machine["versions"])
    assert document["settings"]["rounds"] == QUICK_ROUNDS
    assert {model["id"] for model in document["models"]} == {"bone-quality", "bone-tumor", "spine-lesions",
                                                             "tumor-cls", "vcf"}
    assert [item["name"] for item in document["inputs"]] == [ODD_NAME, str(RADIOGRAPH)]
    for item in document["inputs"]:
        warm = item["warm"]
        assert warm["rounds"] == QUICK_ROUNDS
        assert set(warm["stages"]) == {"read", "lut", "preprocess", "inference", "decode", "flags", "total", "json",
                                       "overlay", "dicom", "outputs", "to_outputs"}
        for figures in warm["stages"].values():
            assert len(figures["samples"]) == QUICK_ROUNDS == figures["summary"]["count"]
        for model in warm["models"].values():
            assert all(len(figures["samples"]) == QUICK_ROUNDS for figures in model.values())
        stages = warm["stages"]
        for number in range(QUICK_ROUNDS):
            assert stages["to_outputs"]["samples"][number] == pytest.approx(
                stages["total"]["samples"][number] + stages["outputs"]["samples"][number], abs=1e-3)
        cold = item["cold_start"]
        assert cold["to_first_flag_ms"] >= cold["to_models_loaded_ms"] > 0
        assert cold["flags"] == item["flags"]
        baseline = item["baseline"]
        assert baseline["decision"]["agree"] is True
        for stage in ("read", "preprocess", "inference", "postprocess", "total"):
            assert len(baseline["stages"][stage]["samples"]) == QUICK_ROUNDS
            medians = [sorted(figures[stage]["samples"])[QUICK_ROUNDS // 2]
                       for figures in (baseline["stages"], baseline["radedge_stages"])]
            assert baseline["ratios"][stage] == pytest.approx(medians[0] / medians[1], rel=1e-3)  # samples kept to 0.1 us
    assert item["models_applied"] == ["bone-tumor", "tumor-cls"]
    assert [level["threads"] for level in document["concurrency"]] == [1, 2]
    assert [level["calls"] for level in document["concurrency"]] == [QUICK_ROUNDS, 2 * QUICK_ROUNDS]
    assert {group["name"] for group in document["transfer_syntaxes"]} == {
        "Explicit VR Little Endian", "JPEG-LS Lossless Image Compression"}
    assert all({"kind", "subject", "message"} == set(warning) for warning in document["warnings"])


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sections, self.text = [], set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "section":
            self.sections.add(dict(attrs).get("id"))

    def handle_data(self, data):
        self.text.append(data)


def test_the_page_has_each_section_and_well_formed_charts_and_fetches_nothing(quick_run):
    _, out = quick_run
    page = (out / "bench.html").read_text()
    parser = _Page()
    parser.feed(page)
    assert SECTIONS <= parser.sections
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert not re.search(r"https?://|src=|url\(|@import", page)
    charts = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    # a stage chart per input, the tail, the throughput
    assert len(charts) == 2 + 2
    for chart in charts:
        ElementTree.fromstring(chart)
    # The odd file name is text on the page, never markup.
    assert "i" not in parser.tags
    assert any(ODD_NAME in text for text in parser.text)


def test_cuda_without_a_cuda_backend_exits_4_and_says_why(tmp_path, capsys):
    out = tmp_path / "report"
    status = main(["bench", "--device", "cuda", "--inputs", str(SMALL), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 4
    assert "--device cuda cannot run here" in err
    assert "no inference backend of this radedge runs models on CUDA (onnxruntime runs on cpu" in err
    assert "--device cpu" in err
    assert not out.exists()  # refused before anything was made


@pytest.mark.parametrize(("arguments", "message"), [
    (["--rounds", "0"], "--rounds 0: give at least 1"),
    (["--concurrency", "0"], "--concurrency 0: give at least 1"),
    (["--inputs", "no/such/file.dcm"], "--inputs no/such/file.dcm: no such file or folder"),
])
def test_command_lines_it_refuses_with_exit_2(tmp_path, capsys, arguments, message):
    arguments = arguments if "--inputs" in arguments else [*arguments, "--inputs", str(SMALL)]
    assert main(["bench", *arguments, "--out", str(tmp_path / "report")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("arguments", [["--rounds", "x"], ["--device", "tpu"], ["--precision", "int4"]])
def test_parse_errors_exit_2(arguments, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", *arguments])
    assert exit_.value.code == 2


def test_without_examples_it_asks_for_inputs(monkeypatch):
    monkeypatch.setattr(bench_command, "examples_folder", lambda: None)
    with pytest.raises(bench_command.BenchUsageError, match="--inputs PATH"):
        bench_command.input_paths(None)


def test_from_a_checkout_the_default_inputs_are_the_examples():
    assert bench_command.input_paths(None) == [str(ROOT / "examples")]
