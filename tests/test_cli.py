"""The ``radedge`` command, run as a user runs it: a real subprocess on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from radedge.cli import main

from .models import tiny
from .synthetic import PATIENT_VALUES, blob_image, disc_image, dx_dataset, to_bytes

ROOT = Path(__file__).resolve().parents[1]
TINY = Path(__file__).parent / "models" / "tiny_bone_tumor"


def radedge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "radedge", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def run_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``radedge`` called as its entry point calls it, in this process: (exit status, stdout, stderr)."""
    try:
        status = main(list(args))
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def femur_bytes(**kwargs) -> bytes:
    return to_bytes(dx_dataset(disc_image(500, 400, (200, 250), 80, 3900, 1000), **kwargs))


def test_run_continues_past_bad_files_and_reports_them(tmp_path: Path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    good = to_bytes(dx_dataset(disc_image(500, 400, (200, 250), 80, 3900, 1000)))
    (folder / "a_good.dcm").write_bytes(good)
    (folder / "b_corrupt.dcm").write_bytes(b"\x00" * 128 + b"DICM" + np.random.default_rng(1).bytes(3000))
    (folder / "c_truncated.dcm").write_bytes(good[: len(good) // 2])
    (folder / "d_report.txt").write_text("not an image; skipped when walking a folder")
    (folder / "e_good.dcm").write_bytes(good)
    out = tmp_path / "out"

    result = radedge("run", str(folder), "--model", str(TINY), "--out", str(out))

    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(folder))]
    assert [Path(line.split()[0]).name for line in lines] == ["a_good.dcm", "e_good.dcm"]
    assert all(line.endswith(" ms") for line in lines)
    errors = result.stderr.splitlines()
    assert any("b_corrupt.dcm" in line and "ERROR" in line for line in errors)
    assert any("c_truncated.dcm" in line and "TruncatedPixelDataError" in line for line in errors)
    assert "4 image(s): " in result.stdout and "0 not analysed, 2 failed" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "a_good.json", "a_good.overlay.png", "e_good.json", "e_good.overlay.png"
    ]
    document = json.loads((out / "a_good.json").read_text())
    assert document["analysed"] and document["not_applied"] == {}
    assert document["models"]["tiny-bone-tumor"]["provenance"]["model_id"] == "tiny-bone-tumor"


def test_run_output_holds_no_patient_data(tmp_path: Path):
    path = tmp_path / "study.dcm"
    path.write_bytes(to_bytes(dx_dataset(np.full((300, 300), 2000, np.uint16))))
    result = radedge("run", str(path), "--model", str(TINY), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = "".join(p.read_text() for p in (tmp_path / "out").glob("*.json"))
    for secret in PATIENT_VALUES.values():
        assert secret not in result.stdout + result.stderr + written


def _mixed_folder(folder: Path) -> None:
    """A long bone, a lumbar spine, a CT slice and a chest radiograph, as a console receives them."""
    folder.mkdir()
    femur = disc_image(600, 900, (610, 250), 120, 3900, 2250)
    spine = blob_image(640, 640, 400, [(320, 105, 25, 2460), (300, 320, 25, 2460), (280, 535, 25, 2460),
                                       (450, 330, 25, 3990)])
    spine[400:480, 160:320] = 3400  # two "lesion" cells for the detector, too dim for a fracture
    ct = np.full((400, 400), 2048, np.uint16)
    ct[100:160, 100:160], ct[250:310, 100:160] = 4050, 200
    images = {
        "femur.dcm": dx_dataset(femur),
        "spine.dcm": dx_dataset(spine, body_part="LSPINE"),
        "ct.dcm": dx_dataset(ct, modality="CT", body_part=None),
        "chest.dcm": dx_dataset(femur, body_part="CHEST"),
    }
    for name, dataset in images.items():
        (folder / name).write_bytes(to_bytes(dataset))


TINY_BUNDLES = ["tiny_bone_tumor", "tiny_tumor_cls", "tiny_detector", "tiny_spine", "tiny_bone_quality"]


def test_run_routes_a_mixed_folder_to_every_model_that_applies(tmp_path: Path):
    folder, out = tmp_path / "incoming", tmp_path / "out"
    _mixed_folder(folder)
    models = [argument for name in TINY_BUNDLES for argument in ("--model", str(tiny(name)))]

    result = radedge("run", str(folder), *models, "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\nmodel ") + result.stdout.startswith("model ") == 5
    printed = {Path(line.split()[0]).name: line for line in result.stdout.splitlines() if line.startswith(str(folder))}
    assert "not analysed: no loaded model applies" in printed["chest.dcm"]
    assert "4 image(s): 3 flagged, 1 not analysed, 0 failed" in result.stdout
    documents = {name: json.loads((out / f"{Path(name).stem}.json").read_text()) for name in printed}
    routed = {name: sorted(document["models"]) for name, document in documents.items()}
    assert routed == {
        "femur.dcm": ["tiny-bone-tumor", "tiny-tumor-cls"],
        "spine.dcm": ["tiny-detector", "tiny-spine"],
        "ct.dcm": ["tiny-bone-quality"],
        "chest.dcm": [],
    }
    assert documents["chest.dcm"]["analysed"] is False and "CHEST" in documents["chest.dcm"]["reason"]
    assert set(documents["ct.dcm"]["not_applied"]) == set(TINY_BUNDLES_IDS) - {"tiny-bone-quality"}
    # A flag from every head kind that raises flags, each named after its model.
    flags = {name: {(flag["model"], flag["code"]) for flag in document["flags"]} for name, document in documents.items()}
    assert flags["femur.dcm"] == {("tiny-bone-tumor", "LARGE_BONE_LESION"), ("tiny-tumor-cls", "MALIGNANT_REGION")}
    assert flags["spine.dcm"] == {("tiny-detector", "SPINE_LESION"), ("tiny-spine", "POSSIBLE_COMPRESSION_FRACTURE")}
    assert flags["ct.dcm"] == {("tiny-bone-quality", "MIXED_METASTASIS")}
    spine = documents["spine.dcm"]
    fracture = next(flag for flag in spine["flags"] if flag["code"] == "POSSIBLE_COMPRESSION_FRACTURE")
    assert fracture["where"] == "L2" and fracture["title"] == "Possible compression fracture at L2"
    assert "[tiny-spine]" in printed["spine.dcm"] and "; quality: mixed" in printed["ct.dcm"]
    assert documents["ct.dcm"]["models"]["tiny-bone-quality"]["verdict"] == "mixed"
    assert documents["femur.dcm"]["models"]["tiny-tumor-cls"]["cams"]["tumor_cam"]["label"] == "malignant"
    # The two femur models window the image alike: one table, built by the first.
    femur = documents["femur.dcm"]["models"]
    assert "lut" in femur["tiny-bone-tumor"]["timings_ms"] and "lut" not in femur["tiny-tumor-cls"]["timings_ms"]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"{Path(n).stem}.overlay.png" for n in printed)


TINY_BUNDLES_IDS = {"tiny-bone-tumor", "tiny-tumor-cls", "tiny-detector", "tiny-spine", "tiny-bone-quality"}


def _ground_truth(folder: Path, name: str = "ground_truth.json") -> dict[str, dict]:
    return {entry["file"]: entry for entry in json.loads((folder / name).read_text())["items"]}


def test_demo_flags_every_example_with_every_model_that_applies(tmp_path: Path):
    """``make demo``: every bundled model on examples/ (long bones, lumbar spines, CT slices)."""
    examples = ROOT / "examples"
    result = radedge("run", str(examples), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    files = sorted(p for p in examples.rglob("*.dcm"))
    printed = [line for line in result.stdout.splitlines() if line.startswith(str(examples))]
    assert [Path(line.split()[0]) for line in printed] == files
    assert f"{len(files)} image(s): " in result.stdout and "0 not analysed, 0 failed" in result.stdout

    def analysis(path: Path) -> dict:
        stem = str(path.relative_to(examples).with_suffix("")).replace("/", "__")
        assert (tmp_path / f"{stem}.overlay.png").stat().st_size > 10_000
        return json.loads((tmp_path / f"{stem}.json").read_text())

    def codes(document: dict, model: str) -> set[str]:
        return {flag["code"] for flag in document["models"][model]["flags"]}

    long_bones = _ground_truth(examples / "radiographs")
    for name, truth in long_bones.items():
        document = analysis(examples / "radiographs" / name)
        malignant = truth["label"] == "malignant"
        assert ("SUSPECTED_MALIGNANT_BONE_LESION" in codes(document, "bone-tumor")) == malignant, name
        assert {"vcf", "spine-lesions", "bone-quality"} <= set(document["not_applied"]), name
        if truth["label"] == "no_tumour":
            assert "tumor-cls" in document["not_applied"], name  # bone-tumor found no lesion region
        else:
            assert document["models"]["tumor-cls"]["verdict"] == truth["label"], name
            assert ("MALIGNANT_REGION" in codes(document, "tumor-cls")) == malignant, name

    spines = {**_ground_truth(examples / "spine"), **_ground_truth(examples / "spine", "lesions_ground_truth.json")}
    for name, truth in spines.items():
        document = analysis(examples / "spine" / name)
        assert set(document["models"]) == {"vcf", "spine-lesions"}, name
        fractured = {v["level"]: v["genant_grade"] for v in truth["vertebrae"] if v.get("fractured")}
        titles = sorted(flag["title"] for flag in document["models"]["vcf"]["flags"])
        assert titles == sorted(f"Possible compression fracture at {level} (Genant grade {grade})"
                                for level, grade in fractured.items()), name
        if truth.get("findings"):
            assert "SPINE_RADIOGRAPH_ABNORMAL" in codes(document, "spine-lesions"), name

    for name, truth in _ground_truth(examples / "ct").items():
        document = analysis(examples / "ct" / name)
        assert set(document["models"]) == {"bone-quality"}, name
        assert document["models"]["bone-quality"]["verdict"] == truth["label"], name
        assert bool(document["flags"]) == (truth["label"] != "normal"), name


def test_inspect_and_doctor():
    inspected = radedge("inspect", str(TINY))
    assert inspected.returncode == 0
    assert "tiny-bone-tumor 1.0.0" in inspected.stdout and "checksums verified" in inspected.stdout
    assert "SUSPECTED_MALIGNANT_BONE_LESION when p(malignant) >= 0.5" in inspected.stdout
    doctor = radedge("doctor")
    assert doctor.returncode == 0
    assert "native module" in doctor.stdout and "JPEG 2000" in doctor.stdout


def test_missing_model_is_a_clear_error(tmp_path: Path):
    result = radedge("run", str(tmp_path), "--model", str(tmp_path / "nope"))
    assert result.returncode == 3
    assert "no model bundle at" in result.stderr


def test_models_lists_every_bundled_model_with_heads_flags_and_scope():
    from radedge.bundle import bundled_bundle_paths, load_bundle

    bundles = [load_bundle(path) for path in bundled_bundle_paths()]
    listed = radedge("models", "--json")
    assert listed.returncode == 0, listed.stderr
    records = {record["id"]: record for record in json.loads(listed.stdout)}
    assert set(records) == {bundle.manifest.model_id for bundle in bundles}
    for bundle in bundles:
        record = records[bundle.manifest.model_id]
        assert record["sha256"] == bundle.digest
        assert [head["name"] for head in record["heads"]] == [head.name for head in bundle.manifest.heads]
        codes = [flag["code"] for head in record["heads"] for flag in head["flags"]]
        assert codes == [rule.code for rule in bundle.manifest.flag_rules]
        assert record["scope"]["modalities"] == list(bundle.manifest.scope.modalities)
    text = radedge("models")
    assert text.returncode == 0
    for bundle in bundles:
        assert f"{bundle.manifest.model_id} {bundle.manifest.model_version}" in text.stdout
        for rule in bundle.manifest.flag_rules:
            assert rule.code in text.stdout


def test_models_names_a_broken_bundle_and_lists_the_rest(tmp_path: Path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny("tiny_spine"), broken)
    (broken / "model.onnx").write_bytes(b"changed")
    result = radedge("models", "--model", str(tiny("tiny_detector")), "--model", str(broken))
    assert result.returncode == 3
    assert "tiny-detector 1.0.0" in result.stdout and "SPINE_LESION when a lesion box scores >= 0.9" in result.stdout
    assert "tiny-spine" not in result.stdout and str(broken) in result.stderr


def test_control_characters_from_file_names_and_headers_are_printed_escaped(tmp_path: Path, capsys):
    named = tmp_path / "knee\x1b[2J\u202eevil.dcm"
    named.write_bytes(femur_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom warns of the ESC in a CS value, and writes it
        header = tmp_path / "header.dcm"
        header.write_bytes(femur_bytes(body_part="KNEE\x1b]0;owned\x07\x9b31m"))
    out = tmp_path / "out"

    status, printed, errors = run_in_process(capsys, "run", str(named), str(header), "--model", str(TINY),
                                             "--out", str(out))

    assert status == 0, errors
    shown = printed + errors
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in shown
    assert "knee\\x1b[2J\\u202eevil.dcm  " in printed
    assert "BodyPartExamined is KNEE\\x1b]0;owned\\x07\\x9b31m;" in printed
    # JSON escapes control characters itself: the file holds none, and reads back to the real name.
    written = (out / "knee\x1b[2J\u202eevil.json").read_text()
    assert "\x1b" not in written and "\u202e" not in written
    assert json.loads(written)["source"] == str(named)


def test_command_line_mistakes_are_printed_escaped(capsys):
    status, printed, errors = run_in_process(capsys, "run", "x.dcm", "--bogus\x1b[2J")
    assert status == 2
    assert "unrecognized arguments: --bogus\\x1b[2J" in errors and "\x1b" not in errors + printed


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_an_out_that_cannot_be_a_folder_is_refused_before_any_image(tmp_path: Path, capsys, where: str):
    image = tmp_path / "a.dcm"
    image.write_bytes(femur_bytes())
    taken = tmp_path / "results"
    taken.write_text("a file where the results folder was meant to go")
    out = taken if where == "file" else taken / "run1"

    status, printed, errors = run_in_process(capsys, "run", str(image), "--model", str(TINY), "--out", str(out))

    assert status == 5
    assert printed == ""  # not one image read, not even the model loaded
    assert errors.count("\n") == 1 and errors.startswith(f"radedge: --out {out} ") and "Traceback" not in errors
    expected = "is a file, not a folder" if where == "file" else "does not exist and cannot be created (Not a directory)"
    assert expected in errors
    assert taken.read_text() == "a file where the results folder was meant to go"


def test_an_out_folder_this_user_cannot_write_in_is_refused_before_any_image(tmp_path: Path, capsys):
    image = tmp_path / "a.dcm"
    image.write_bytes(femur_bytes())
    out = tmp_path / "out"
    out.mkdir(mode=0o500)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("this user (root?) may write in a 0o500 folder, so there is nothing to refuse")
        status, printed, errors = run_in_process(capsys, "run", str(image), "--model", str(TINY), "--out", str(out))
    finally:
        out.chmod(0o700)

    assert status == 5 and printed == ""
    assert errors == f"radedge: --out {out} is a folder radedge cannot write in (Permission denied); " \
                     "make it writable for this user or name another folder\n"
    assert list(out.iterdir()) == []


def test_a_result_that_cannot_be_written_is_reported_and_the_run_goes_on(tmp_path: Path, capsys):
    for name in ("a.dcm", "b.dcm", "c.dcm"):
        (tmp_path / name).write_bytes(femur_bytes())
    out = tmp_path / "out"
    (out / "b.json").mkdir(parents=True)  # a real write failure on any file system, and whoever runs the test

    status, printed, errors = run_in_process(
        capsys, "run", *(str(tmp_path / name) for name in ("a.dcm", "b.dcm", "c.dcm")), "--model", str(TINY),
        "--out", str(out),
    )

    assert status == 5
    assert [line.split()[0] for line in printed.splitlines()[1:4]] == [str(tmp_path / n) for n in ("a.dcm", "b.dcm", "c.dcm")]
    assert errors.count("\n") == 1
    assert errors.startswith(f"{tmp_path / 'b.dcm'}  ERROR cannot write {out / 'b.json'} (Is a directory); ")
    assert "3 image(s): " in printed and "0 failed, 1 not saved;" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.overlay.png", "b.json", "c.json", "c.overlay.png"]
    assert (out / "b.json").is_dir() and json.loads((out / "c.json").read_text())["source"] == str(tmp_path / "c.dcm")


def test_inputs_that_would_share_a_name_get_their_own_results(tmp_path: Path, capsys):
    inputs = [tmp_path / "a" / "x.dcm", tmp_path / "b" / "x.dcm", tmp_path / "c" / "X.dcm"]
    walked = tmp_path / "walked"
    for number, path in enumerate([*inputs, walked / "x.dcm", walked / "sub" / "x.dcm"]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(femur_bytes(StudyDescription=f"image {number}"))  # distinct bytes for distinct inputs
    out = tmp_path / "out"

    status, printed, errors = run_in_process(capsys, "run", *map(str, inputs), str(walked), "--model", str(TINY),
                                             "--out", str(out))

    assert status == 0, errors
    lines = printed.splitlines()[1:6]
    assert [line.split()[0] for line in lines] == [*map(str, inputs), str(walked / "sub" / "x.dcm"), str(walked / "x.dcm")]
    assert [line.partition(" ms")[2] for line in lines] == [
        "", "  (results named x-2: an earlier input of this run has x)",
        "  (results named X-3: an earlier input of this run has x)", "", "  (results named x-4: an earlier input of this run has x)",
    ]
    sources = {path.stem: json.loads(path.read_text())["source"] for path in out.glob("*.json")}
    assert sources == {"x": str(inputs[0]), "x-2": str(inputs[1]), "X-3": str(inputs[2]),
                       "sub__x": str(walked / "sub" / "x.dcm"), "x-4": str(walked / "x.dcm")}
    overlays = [path.name for path in out.glob("*.overlay.png")]
    assert len(overlays) == 5 and len({name.casefold() for name in overlays}) == 5


def test_label_by_hash_keeps_file_names_out_of_everything_written(tmp_path: Path, capsys):
    import hashlib

    folder = tmp_path / "Doe_Jane_19610412"
    folder.mkdir()
    image = femur_bytes()
    (folder / "Doe_Jane_chest.dcm").write_bytes(image)
    (folder / "Doe_Jane_copy.dcm").write_bytes(image)
    (folder / "Doe_Jane_broken.dcm").write_bytes(image[: len(image) // 2])
    digest = hashlib.sha256(image).hexdigest()[:16]
    broken_digest = hashlib.sha256(image[: len(image) // 2]).hexdigest()[:16]
    out = tmp_path / "out"

    status, printed, errors = run_in_process(
        capsys, "run", str(folder), str(tmp_path / "Doe_Jane_missing.dcm"), "--label-by", "hash",
        "--model", str(TINY), "--out", str(out),
    )

    assert status == 1
    assert [line.split()[0] for line in printed.splitlines()[1:3]] == [digest, digest]
    assert f"(results named {digest}-2: an earlier input of this run has {digest})" in printed
    assert errors.splitlines()[0].startswith(f"{broken_digest}  ERROR TruncatedPixelDataError: the input ")
    assert errors.splitlines()[1] == "input 4  ERROR FileNotFoundError: cannot read the file (No such file or directory)"
    assert sorted(path.name for path in out.iterdir()) == [
        f"{digest}-2.json", f"{digest}-2.overlay.png", f"{digest}.json", f"{digest}.overlay.png"
    ]
    written = "".join(path.read_text() for path in out.glob("*.json"))
    assert json.loads((out / f"{digest}.json").read_text())["source"] == digest
    for secret in ["Doe", "Jane", "19610412", *PATIENT_VALUES.values()]:
        assert secret not in printed + errors + written


@pytest.mark.parametrize("command", [["export", "model.pt", "--recipe", "vcf", "--out", "bundle"], ["triton", "bundle", "repo"]])
def test_export_commands_without_the_export_stage_say_what_to_install(tmp_path: Path, command: list[str]):
    """The runtime wheel leaves radedge.export to the radedge-export distribution; where it is
    not installed (here: taken out of the import system of a fresh interpreter) the commands
    that need it stop with the typed error, naming the distribution and release to install."""
    from radedge import __version__

    script = ("import sys; sys.modules['radedge.export'] = None; from radedge.cli import main; "
              f"sys.exit(main({command!r}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr  # a missing dependency (docs/cli.md)
    assert f"needs the optional package 'radedge-export=={__version__}'" in done.stderr
    assert f"pip install radedge-export=={__version__}" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())
