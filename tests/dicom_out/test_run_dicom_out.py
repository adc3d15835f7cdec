"""``radedge run --dicom-out``: every DICOM example gets its SR and GSPS, a SEG per segmentation
head and a KOS when flagged; every object passes dciodvfy; a PNG gets none, and says so."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import cv2
import pydicom
import pytest

from radedge.cli import main
from radedge.io import read_image

from .validate import dciodvfy, needs_dciodvfy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run over the examples and a PNG made from one of them."""
    folder = tmp_path_factory.mktemp("inputs")
    shutil.copytree(REPO / "examples", folder / "examples", ignore=shutil.ignore_patterns("*.py", "*.json"))
    pixels = read_image(REPO / "examples/radiographs/femur_malignant.dcm").pixels
    cv2.imwrite(str(folder / "femur.png"), (pixels >> 4).astype("uint8"))
    out = tmp_path_factory.mktemp("dicom")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", str(folder), "--dicom-out", str(out), "--time-budget", "0"])
    return code, stdout.getvalue(), stderr.getvalue(), out, folder


def test_every_dicom_example_gets_its_objects(run):
    code, stdout, stderr, out, _ = run
    assert code == 0, stderr
    written = {path.name for path in out.iterdir()}
    for example in sorted((REPO / "examples").rglob("*.dcm")):
        stem = "examples__" + "__".join(example.relative_to(REPO / "examples").with_suffix("").parts)
        assert f"{stem}.sr.dcm" in written and f"{stem}.gsps.dcm" in written, stem
    # The bone-tumor model segments lesions: each radiograph it analysed has a SEG.
    assert any(name.endswith(".seg.dcm") for name in written)
    assert "femur.png  no DICOM objects: the input is not DICOM" in stdout
    assert f"DICOM object(s) in {out}/" in stdout


def test_key_objects_exactly_for_flagged_images(run):
    _, stdout, _, out, folder = run
    lines = [line for line in stdout.splitlines() if line.startswith(str(folder)) and ".dcm  " in line]
    assert len(lines) == len(list((REPO / "examples").rglob("*.dcm")))
    for line in lines:
        stem = "__".join(Path(line.split("  ")[0]).relative_to(folder).with_suffix("").parts)
        flagged = not line.split("  ")[1].startswith(("no flags", "not analysed"))
        assert (out / f"{stem}.kos.dcm").exists() == flagged, line


@needs_dciodvfy
def test_every_object_passes_the_validator(run):
    _, _, _, out, _ = run
    objects = sorted(out.glob("*.dcm"))
    assert objects
    for path in objects:
        verdict = dciodvfy(path)
        assert not verdict.errors, f"{path.name}:\n" + "\n".join(verdict.errors)


def test_objects_are_explicit_vr_little_endian_and_new(run):
    _, _, _, out, _ = run
    sources = {pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in (REPO / "examples").rglob("*.dcm")}
    seen = set()
    for path in sorted(out.glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        assert dataset.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian, path.name
        assert dataset.SOPInstanceUID not in sources and dataset.SOPInstanceUID not in seen
        seen.add(dataset.SOPInstanceUID)


@needs_dciodvfy
def test_a_source_without_its_optional_patient_and_study_attributes(models):
    # Type 2 attributes a sender may leave out altogether: each object still copies them, empty.
    source = pydicom.dcmread(REPO / "examples/radiographs/femur_malignant.dcm")
    for keyword in ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "ReferringPhysicianName",
                    "StudyDate", "StudyTime"):
        if keyword in source:
            delattr(source, keyword)
    analysis = models.predict(source)
    objects = list(analysis.to_dicom())
    assert len(objects) == 4  # SEG, SR, GSPS, KOS: the femur is flagged
    for dataset in objects:
        assert dataset.PatientID == source.PatientID and "PatientBirthDate" in dataset and not dataset.PatientBirthDate
        verdict = dciodvfy(dataset)
        assert not verdict.errors, f"{dataset.Modality}:\n" + "\n".join(verdict.errors)


@pytest.mark.needs_dcmtk
def test_the_objects_are_accepted_by_a_dicom_receiver(models, tmp_path):
    # What the README tells a site to do: send the folder on with dcmtk's storescu. A real
    # storescp on loopback receives every object, byte for byte the same instances.
    import socket
    import subprocess
    import time

    objects = models.predict(REPO / "examples/radiographs/femur_malignant.dcm").to_dicom()
    sent = objects.save(tmp_path / "out", "femur")
    received = tmp_path / "received"
    received.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = subprocess.Popen(["storescp", "--aetitle", "PACS", "--output-directory", str(received),
                                 "--filename-extension", ".dcm", "+xa", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and receiver.poll() is None, "storescp did not start"
            time.sleep(0.1)
        # --required: propose the SOP classes of the files sent (storescu's default list has no SEG).
        done = subprocess.run(["storescu", "--required", "-aet", "RADEDGE", "-aec", "PACS", "127.0.0.1",
                               str(port), *map(str, sent)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        receiver.terminate()
        receiver.wait(10)
    uids = {pydicom.dcmread(path).SOPInstanceUID for path in received.iterdir()}
    assert uids == {dataset.SOPInstanceUID for dataset in objects} and len(uids) == 4


def test_nothing_from_the_header_is_printed_or_logged(models, capsys, caplog):
    source = pydicom.dcmread(REPO / "examples/radiographs/femur_malignant.dcm")
    source.PatientName, source.PatientID, source.AccessionNumber = "Quenby^Ottoline", "PID-80417-ZX", "ACC-55102-QR"
    source.PatientBirthDate = "19470613"
    with caplog.at_level("DEBUG"):
        objects = list(models.predict(source).to_dicom())
    assert objects and all(dataset.PatientID == "PID-80417-ZX" for dataset in objects)
    said = capsys.readouterr()
    text = said.out + said.err + caplog.text
    for value in ("Quenby", "PID-80417-ZX", "ACC-55102-QR", "19470613", source.SOPInstanceUID):
        assert value not in text
