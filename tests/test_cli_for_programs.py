"""The ``radedge`` command as programs use it: JSON on stdout and nothing else, one exit status
per kind of failure, ``-q`` / ``-v``, one line and no traceback for each refused command line.
Real subprocesses (or the entry point in this process) on real files and bundles."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from radedge._terminal import EXIT_MEANINGS, ExitStatus
from radedge.cli._common import FAILURES, advice, exit_status
from radedge.errors import BundleError, BundleSignatureError, MissingDependencyError, RadedgeError
from radedge.io import image_files

from .models import tiny
from .synthetic import PATIENT_VALUES, dx_dataset, to_bytes
from .test_cli import ROOT, TINY, TINY_BUNDLES, _mixed_folder, femur_bytes, radedge, run_in_process

MODELS = [argument for name in TINY_BUNDLES for argument in ("--model", str(tiny(name)))]


def _console_folder(folder: Path) -> None:
    """What a console's folder holds: images for every model, one no model applies to (a
    chest), a file that is not DICOM, one cut short, and a report that is not an image."""
    _mixed_folder(folder)
    good = (folder / "femur.dcm").read_bytes()
    (folder / "corrupt.dcm").write_bytes(b"\x00" * 128 + b"DICM" + np.random.default_rng(1).bytes(3000))
    (folder / "truncated.dcm").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("not an image; skipped when walking a folder")


@pytest.fixture(scope="module")
def jsonl_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console") / "incoming"
    _console_folder(folder)
    out = folder.parent / "out"
    result = radedge("run", str(folder), *MODELS, "--out", str(out), "--jsonl")
    return result, folder, out


def test_jsonl_prints_one_json_object_per_input_in_input_order_and_nothing_else(jsonl_run):
    result, folder, _ = jsonl_run
    assert result.returncode == ExitStatus.REFUSED, result.stderr  # two inputs are refused
    lines = result.stdout.splitlines()
    records = [json.loads(line) for line in lines]  # every line of stdout is one JSON document
    inputs = list(image_files(folder))
    assert len(records) == len(inputs) == 6
    assert [record["input"] for record in records] == list(range(1, 7))
    assert [record["source"] for record in records] == [str(path) for path in inputs]
    assert all("\n" not in line for line in lines) and result.stdout.endswith("\n")
    # The text a person reads went to stderr.
    assert "6 image(s): 3 flagged, 1 not analysed, 2 failed" in result.stderr
    assert result.stderr.count("model tiny-") == len(TINY_BUNDLES)


def test_jsonl_records_carry_the_result_the_files_written_and_the_refusals(jsonl_run):
    result, folder, out = jsonl_run
    records = {Path(record["source"]).name: record for record in map(json.loads, result.stdout.splitlines())}
    femur = records["femur.dcm"]
    assert femur["status"] == "analysed" and femur["error"] is None
    saved = json.loads((out / "femur.json").read_text())
    # The line is the saved result, plus what the command line adds.
    assert {key: femur[key] for key in saved} == saved
    assert set(femur) - set(saved) == {"input", "status", "outputs", "error"}
    assert femur["outputs"] == [str(out / "femur.json"), str(out / "femur.overlay.png")]
    assert all(Path(path).is_file() for record in records.values() for path in record["outputs"])
    chest = records["chest.dcm"]
    assert chest["status"] == "not_analysed" and chest["analysed"] is False and "CHEST" in chest["reason"]
    for name, error in (("corrupt.dcm", None), ("truncated.dcm", "TruncatedPixelDataError")):
        refused = records[name]
        assert refused["status"] == "refused" and refused["outputs"] == [] and "flags" not in refused
        assert set(refused["error"]) == {"code", "class", "message", "fields", "advice"}
        assert refused["error"]["message"] and (error is None or refused["error"]["class"] == error)
        assert f"{folder / name}  ERROR {refused['error']['class']}: " in result.stderr
    assert not (out / "truncated.json").exists()


def test_jsonl_quiet_keeps_the_records_and_drops_the_text(tmp_path: Path):
    folder = tmp_path / "incoming"
    _console_folder(folder)
    result = radedge("run", str(folder), "--model", str(TINY), "--jsonl", "-q", "--label-by", "hash")
    assert result.returncode == ExitStatus.REFUSED
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6 and all(re.fullmatch(r"[0-9a-f]{16}", record["source"]) for record in records)
    assert str(folder) not in result.stdout  # --label-by hash keeps the paths out of the records too
    # Only the two refusals are left on stderr: no model lines, no summary.
    assert len(result.stderr.splitlines()) == 2 and all("  ERROR " in line for line in result.stderr.splitlines())
    assert "image(s)" not in result.stderr and "model tiny-" not in result.stderr


def test_quiet_text_run_prints_only_result_lines(tmp_path: Path, capsys):
    image = tmp_path / "a.dcm"
    image.write_bytes(femur_bytes())
    status, printed, errors = run_in_process(capsys, "run", str(image), "--model", str(TINY), "-q")
    assert status == ExitStatus.OK, errors
    assert printed.splitlines() == [line for line in printed.splitlines() if line.startswith(f"{image}  ")]
    assert len(printed.splitlines()) == 1 and errors == ""


def test_quiet_keygen_prints_the_key_id_alone(tmp_path: Path):
    loud, quiet = radedge("keygen", "--out", str(tmp_path / "a")), radedge("keygen", "--out", str(tmp_path / "b"), "-q")
    assert loud.returncode == quiet.returncode == ExitStatus.OK
    assert len(loud.stdout.splitlines()) == 3 and quiet.stdout.splitlines() == [quiet.stdout.strip()]
    assert re.fullmatch(r"key [0-9a-f]{16}\n", quiet.stdout) and quiet.stderr == ""


def test_verbose_logs_each_step_on_stderr_and_never_patient_data(tmp_path: Path):
    image = tmp_path / "a.dcm"
    image.write_bytes(femur_bytes())
    result = radedge("run", str(image), "--model", str(TINY), "-v", "--out", str(tmp_path / "out"))
    assert result.returncode == ExitStatus.OK, result.stderr
    assert "radedge: models loaded in " in result.stderr
    assert "radedge: input 1: " in result.stderr and " read in " in result.stderr
    assert "radedge: input 1: analysed by tiny-bone-tumor in " in result.stderr
    assert f"radedge: wrote {tmp_path / 'out' / 'a.json'}" in result.stderr
    for secret in PATIENT_VALUES.values():
        assert secret not in result.stdout + result.stderr
    assert "-v" in radedge("doctor", "--help").stdout and "-q" in radedge("serve", "--help").stdout


@pytest.mark.parametrize("command", [
    ["inspect", str(TINY), "--json"],
    ["inspect", "--json"],
    ["models", "--json"],
    ["models", "--model", str(TINY), "--json", "-v"],
    ["doctor", "--json"],
])
def test_json_commands_print_one_json_document_only(command):
    result = radedge(*command)
    assert result.returncode == ExitStatus.OK, result.stderr
    json.loads(result.stdout)


def test_inspect_json_describes_the_bundle_with_its_provenance():
    from radedge.bundle import load_bundle

    bundle = load_bundle(TINY)
    record = json.loads(radedge("inspect", str(TINY), "--json").stdout)
    assert record["id"] == "tiny-bone-tumor" and record["sha256"] == bundle.digest
    assert record["checksums_verified"] is True
    assert record["provenance"] == bundle.manifest.provenance
    assert record["input"]["shape"] == list(bundle.manifest.input_shape)
    assert set(record["gates"]) == set(bundle.manifest.precisions)


def test_doctor_json_matches_its_text():
    document = json.loads(radedge("doctor", "--json").stdout)
    text = radedge("doctor").stdout
    assert document["problems"] == [] and document["exit_status"] == 0
    for decoder in document["decoders"]:
        assert f"  decodes         {decoder['name']}: {'yes' if decoder['available'] else 'NO'}" in text
    assert f"  CPU threads     {document['native']['hardware_threads']}" in text


def test_doctor_exits_non_zero_for_what_is_named_and_unusable(tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(TINY, broken)
    (broken / "model.onnx").write_bytes(b"changed")
    model = radedge("doctor", "--model", str(TINY), "--model", str(broken), "--json")
    assert model.returncode == ExitStatus.MODEL
    document = json.loads(model.stdout)
    assert [record["verified"] for record in document["models"]] == [True, False]
    assert document["models"][1]["error"]["class"] == "BundleIntegrityError"
    assert document["exit_status"] == ExitStatus.MODEL
    text = radedge("doctor", "--model", str(broken))
    assert text.returncode == ExitStatus.MODEL
    assert f"  model           {broken}: NO: BundleIntegrityError" in text.stdout
    assert text.stderr.startswith(f"radedge: {broken}: ") and "check --model" in text.stderr

    usable = radedge("doctor", "--model", str(TINY), "--device", "cpu", "--decode", "JPEG2000Lossless",
                     "--decode", "1.2.840.10008.1.2.4.80")
    assert usable.returncode == ExitStatus.OK, usable.stderr
    assert "  device cpu      usable" in usable.stdout and usable.stderr == ""

    unknown = radedge("doctor", "--decode", "jpeg3000")
    assert unknown.returncode == ExitStatus.USAGE and unknown.stderr.count("\n") == 1
    assert "--decode jpeg3000: not a compressed transfer syntax" in unknown.stderr


def test_doctor_device_cuda_exits_4_where_cuda_cannot_run():
    from radedge.bench.command import cuda_refusal

    why = cuda_refusal()
    result = radedge("doctor", "--device", "cuda", "--json")
    document = json.loads(result.stdout)
    if why is None:
        assert result.returncode == ExitStatus.OK and document["device"]["usable"] is True
        return
    assert result.returncode == ExitStatus.DEPENDENCY
    assert document["device"] == {"asked": "cuda", "usable": False, "why_not": why}
    assert document["problems"][0]["exit_status"] == ExitStatus.DEPENDENCY


@pytest.mark.parametrize(("arguments", "status", "message"), [
    (["run", "{image}", "--threads", "-3"], ExitStatus.USAGE, "radedge: --threads -3 is negative"),
    (["run", "{image}", "--out", "{file}"], ExitStatus.OUTPUT, "radedge: --out {file} is a file, not a folder"),
    (["run", "{image}", "--dicom-out", "{file}"], ExitStatus.OUTPUT, "radedge: --dicom-out {file} is a file"),
    (["run", "{image}", "--out", "/proc/radedge-results"], ExitStatus.OUTPUT,
     "radedge: --out /proc/radedge-results does not exist and cannot be created"),
    (["run", "{image}", "--model", "{file}"], ExitStatus.MODEL, "radedge: cannot load the model: "),
    (["run", "{empty}"], ExitStatus.USAGE, "radedge: no input files found"),
    (["bench", "--threads", "-3", "--inputs", "{image}"], ExitStatus.USAGE, "radedge: --threads -3"),
    (["bench", "--inputs", "{image}", "--out", "{file}"], ExitStatus.OUTPUT, "radedge: --out {file} is a file"),
    (["export", "{image}", "--recipe", "bone-tumor", "--threads", "-3", "--out", "{empty}/b"], ExitStatus.USAGE,
     "radedge: --threads -3 is negative"),
    (["keygen", "--out", "{file}"], ExitStatus.OUTPUT, "never overwrites a key"),
    (["inspect", "{empty}"], ExitStatus.MODEL, "radedge: "),
])
def test_each_refused_command_line_says_why_in_one_line_with_its_status(tmp_path: Path, capsys, arguments, status,
                                                                       message):
    if "/proc/" in " ".join(arguments) and not Path("/proc/self").exists():
        pytest.skip("no /proc here to stand for a folder nobody can create")
    places = {"image": tmp_path / "a.dcm", "file": tmp_path / "taken", "empty": tmp_path / "empty"}
    places["image"].write_bytes(femur_bytes())
    places["file"].write_text("a file where a folder is expected")
    places["empty"].mkdir()
    given = [argument.format(**places) for argument in arguments]

    code, printed, errors = run_in_process(capsys, *given)

    assert code == status, errors
    assert "Traceback" not in printed + errors
    line = [line for line in errors.splitlines() if line.startswith("radedge: ") or "never" in line]
    assert len(line) == 1 and message.format(**places) in line[0], errors


def test_the_advice_is_keyed_by_error_class():
    missing = MissingDependencyError("onnx", "Writing a Triton model repository")
    assert "pip install onnx" in str(missing) and advice(missing) is None  # said once, by the message
    assert "check --trust" in advice(BundleSignatureError("unsigned"))
    assert "check --model" in advice(BundleError("no bundle"))
    assert exit_status(BundleSignatureError("unsigned")) == ExitStatus.MODEL
    assert exit_status(MissingDependencyError("torch", "radedge export")) == ExitStatus.DEPENDENCY
    assert all(issubclass(cls, RadedgeError) for cls in FAILURES)


def test_a_missing_bundle_gets_its_advice_from_the_command_line(tmp_path: Path):
    result = radedge("run", str(tmp_path), "--model", str(tmp_path / "nope"))
    assert result.returncode == ExitStatus.MODEL
    assert result.stderr.count("\n") == 1 and "; check --model: " in result.stderr


def test_the_exit_statuses_are_documented_once_in_the_help_and_in_docs():
    shown = radedge("--help").stdout
    documented = (ROOT / "docs" / "cli.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| `(\w+)` \|", documented, flags=re.M))
    assert {int(code): name for code, name in table.items()} == {int(status): status.name for status in ExitStatus}
    for status in ExitStatus:
        assert re.search(rf"^\s+{int(status)}  ", shown, flags=re.M), status
        assert set(EXIT_MEANINGS) == set(ExitStatus)


def test_a_refused_input_gets_status_1_and_results_not_saved_status_5(tmp_path: Path, capsys):
    (tmp_path / "good.dcm").write_bytes(femur_bytes())
    (tmp_path / "cut.dcm").write_bytes(femur_bytes()[:3000])
    out = tmp_path / "out"
    code, _, _ = run_in_process(capsys, "run", str(tmp_path / "good.dcm"), str(tmp_path / "cut.dcm"),
                                "--model", str(TINY), "--out", str(out))
    assert code == ExitStatus.REFUSED
    (out / "good.json").unlink()
    (out / "good.json").mkdir()  # now the good result cannot be written: the higher status wins
    code, printed, errors = run_in_process(capsys, "run", str(tmp_path / "good.dcm"), str(tmp_path / "cut.dcm"),
                                           "--model", str(TINY), "--out", str(out), "--jsonl")
    assert code == ExitStatus.OUTPUT
    records = [json.loads(line) for line in printed.splitlines()]
    assert records[0]["status"] == "analysed" and records[0]["outputs"] == []
    assert records[0]["error"]["class"] == "IsADirectoryError"
    assert records[1]["status"] == "refused"


def test_python_dash_m_radedge_still_works():
    result = radedge("--version")
    assert result.returncode == 0 and result.stdout.startswith("radedge ")


def test_a_dataset_made_for_these_tests_holds_the_patient_values():
    # The secrets the tests above look for are really in the files they run on.
    written = to_bytes(dx_dataset(np.full((8, 8), 100, np.uint16)))
    assert all(secret.encode() in written for secret in PATIENT_VALUES.values())
