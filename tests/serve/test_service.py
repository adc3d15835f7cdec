"""``radedge serve`` as a console runs it: its own process, dcmtk's storescu as the modality,
Orthanc as the PACS, and the counts that matter: nothing lost, nothing analysed twice,
every result forwarded, no patient data in any log."""

from __future__ import annotations

import io
import json
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from pydicom import dcmread

from .dicomtools import (
    OUTPUT_SOP_CLASSES,
    PLANTED_PHI,
    StoreCounter,
    dcmtk_missing_reason,
    find_phi,
    parse_store_statuses,
    storescu,
    unique_copies,
)
from .orthanc import Orthanc, orthanc_missing_reason
from .service import ServeProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
SYNTAXES = ROOT / "tests" / "data" / "transfer_syntaxes"
ARTIFACTS = ROOT / "out" / "test-artifacts"

pytestmark = pytest.mark.skipif(dcmtk_missing_reason() is not None, reason=str(dcmtk_missing_reason()))

needs_orthanc = pytest.mark.skipif(orthanc_missing_reason() is not None, reason=str(orthanc_missing_reason()))


def _phantoms(folder: Path, copies_each: int, *, plant_phi: bool = True) -> list[Path]:
    """``copies_each`` copies of every transfer-syntax phantom storescu sends, each with its own
    UIDs: the 20 that are not HTJ2K. dcmtk learnt the HTJ2K syntaxes in 3.6.8, and Debian 12's
    storescu (3.6.7) fails to send such a file ("unable to convert dataset")."""
    files = []
    sendable = [path for path in sorted(SYNTAXES.glob("*.dcm")) if not path.name.startswith("htj2k_")]
    for number, source in enumerate(sendable):
        files += unique_copies(source, folder / source.stem, copies_each, prefix_uid=f"1.2.826.0.1.3680043.10.{number}.",
                               plant_phi=PLANTED_PHI if plant_phi else None)
    return files


def _send(service: ServeProcess, files: list[Path]) -> list:
    result = storescu("127.0.0.1", service.port, files, called_aet=service.ae_title, calling_aet="MODALITY",
                      timeout_s=300)
    return parse_store_statuses(result.stderr)


def _assert_no_phi(service: ServeProcess, *more: Path) -> None:
    logs = [service.log, service.state / "audit.jsonl", service.state / "journal.sqlite", *more]
    hits = find_phi([path for path in logs if path.exists()])
    assert hits == [], f"patient data found in a log: {hits[:5]}"


def test_every_transfer_syntax_storescu_sends_is_received_and_analysed(tmp_path):
    files = _phantoms(tmp_path / "send", 1)
    with ServeProcess(tmp_path, page=False) as service:
        statuses = _send(service, files)
        assert [status.status for status in statuses] == [0x0000] * len(files), statuses
        service.wait_finished(len(files), timeout_s=120)
        rows = service.query("SELECT state, reason, modality FROM instances")
        assert len(rows) == len(files)
        assert {row["state"] for row in rows} == {"done"}, [dict(row) for row in rows if row["state"] != "done"]
        assert len(service.audit_lines()) == len(files)
        _assert_no_phi(service)


def test_eight_senders_at_once_lose_nothing_and_nothing_is_analysed_twice(tmp_path):
    files = _phantoms(tmp_path / "send", 20)  # 20 x 20 phantoms = 400 images
    random.Random(0).shuffle(files)
    senders = [files[number::8] for number in range(8)]
    statuses: list = []
    errors: list[BaseException] = []

    def send(batch: list[Path]) -> None:
        try:
            statuses.extend(_send(service, batch))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    with ServeProcess(tmp_path, page=False, settings="[analysis]\ndicom_outputs = false\n") as service:
        threads = [threading.Thread(target=send, args=(batch,)) for batch in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not errors, errors
        assert len(statuses) == 400 and {status.status for status in statuses} == {0x0000}
        service.wait_finished(400, timeout_s=300)
        # The same images again, from one sender: acknowledged, not analysed again.
        again = _send(service, files[:40])
        assert {status.status for status in again} == {0x0000}
        time.sleep(1.0)
        rows = service.query("SELECT key, state, duplicates, summary FROM instances")
        assert len(rows) == 400 and {row["state"] for row in rows} == {"done"}
        assert sum(row["duplicates"] for row in rows) == 40
        audit = service.audit_lines()
        assert sorted(line["instance"] for line in audit) == sorted(row["key"] for row in rows)
        latencies = sorted(json.loads(row["summary"])["timings_ms"]["receive_to_flag"] for row in rows)
        _assert_no_phi(service)
    figures = {"images": 400, "senders": 8, "receive_to_flag_ms": {
        "p50": round(statistics.median(latencies), 1), "p99": round(latencies[int(0.99 * len(latencies)) - 1], 1),
        "max": round(latencies[-1], 1)}}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "serve-load.json").write_text(json.dumps(figures, indent=2))
    print(f"\n8 senders x 50 images, receive -> flag: {figures['receive_to_flag_ms']}")


def _corrupt_body(source: Path, target: Path) -> Path:
    """A JPEG-LS file whose headers are intact and whose scan data is noise: it passes every
    check before decoding and fails in the decoder."""
    from pydicom.encaps import encapsulate, generate_frames

    dataset = dcmread(source)
    frame = bytearray(next(generate_frames(dataset.PixelData, number_of_frames=1)))
    scan = frame.index(b"\xff\xda")  # start of scan; its header's length follows the marker
    body = scan + 2 + int.from_bytes(frame[scan + 2:scan + 4], "big")
    noise = random.Random(1).randbytes(len(frame) - body - 2)
    frame[body:-2] = bytes(byte if byte != 0xFF else 0x00 for byte in noise)
    dataset.PixelData = encapsulate([bytes(frame)])
    dataset.SOPInstanceUID = "1.2.826.0.1.3680043.10.99.1"
    dataset.save_as(target)
    return target


def test_a_poisoned_file_fails_alone_and_the_service_goes_on(tmp_path):
    good = _phantoms(tmp_path / "send", 1, plant_phi=False)[:4]
    poisoned = _corrupt_body(SYNTAXES / "jpeg_ls_lossless_mono2.dcm", tmp_path / "poisoned.dcm")
    with ServeProcess(tmp_path, page=False) as service:
        _send(service, [good[0], poisoned, *good[1:]])
        service.wait_finished(5, timeout_s=120)
        assert service.alive()
        states = {row["key"]: (row["state"], row["reason"]) for row in
                  service.query("SELECT key, state, reason FROM instances")}
        failed = [value for value in states.values() if value[0] == "failed"]
        assert len(failed) == 1 and "could not be decoded" in failed[0][1]
        assert sum(value[0] == "done" for value in states.values()) == 4


def _outbox(service: ServeProcess) -> list:
    return service.query("SELECT kind, sop_instance_uid, state FROM outbox")


@needs_orthanc
def test_results_wait_for_a_pacs_that_is_down_and_all_arrive_when_it_is_back(tmp_path):
    files = [*_phantoms(tmp_path / "send", 1)[:3], ROOT / "examples" / "radiographs" / "femur_malignant.dcm"]
    pacs = Orthanc(tmp_path / "orthanc", aet="PACS")
    with pacs:
        pass  # started once to fix its ports and storage, then down
    with ServeProcess(tmp_path, forward=("127.0.0.1", pacs.dicom_port), page=False) as service:
        _send(service, files)
        service.wait_finished(len(files), timeout_s=120)
        wait_until(lambda: "forwarding waits" in service.log_text(), 30, "the forwarder to find the PACS down")
        expected = {row["sop_instance_uid"] for row in _outbox(service)}
        assert len(expected) >= 3 * len(files) and {row["state"] for row in _outbox(service)} == {"pending"}
        with pacs:
            pacs.wait_for_count(len(expected), timeout_s=60)
            wait_until(lambda: {row["state"] for row in _outbox(service)} == {"sent"}, 30, "the outbox to empty")
            assert set(pacs.sop_instance_uids()) == expected
            kinds = set()
            for instance_id in pacs.instances():
                stored = dcmread(io.BytesIO(pacs.instance_file(instance_id)))
                kinds.add(str(stored.Modality))
                assert stored.SOPInstanceUID in expected
            assert {"SR", "SEG", "PR", "KO"} <= kinds
        _assert_no_phi(service)


def test_a_busy_pacs_is_asked_again_each_result_is_stored_once_and_a_refused_one_is_given_up(tmp_path):
    files = _phantoms(tmp_path / "send", 1)[:3]
    busy_answers = {"left": 4}
    key_objects = OUTPUT_SOP_CLASSES["Key Object Selection Document Storage"]

    def answer(dataset) -> int:
        if busy_answers["left"] > 0:
            busy_answers["left"] -= 1
            return 0xA700
        return 0xA900 if dataset.SOPClassUID == key_objects else 0x0000

    with StoreCounter(ae_title="PACS", status=answer) as pacs, \
            ServeProcess(tmp_path, forward=("127.0.0.1", pacs.port), page=False,
                         settings="refusals_before_giving_up = 2\n") as service:
        _send(service, files + [ROOT / "examples" / "radiographs" / "femur_malignant.dcm"])
        service.wait_finished(4, timeout_s=120)
        wait_until(lambda: "pending" not in {row["state"] for row in _outbox(service)}, 60, "the outbox to settle")
        outbox = _outbox(service)
        stored = Counter(item.sop_instance_uid for item in pacs.received if item.status == 0)
        assert set(stored.values()) == {1}, "each result stored exactly once"
        assert set(stored) == {row["sop_instance_uid"] for row in outbox if row["kind"] != "kos"}
        gave_up = [row for row in outbox if row["state"] == "gave up"]
        assert gave_up and {row["kind"] for row in gave_up} == {"kos"}
        assert sum(item.status == 0xA700 for item in pacs.received) == 4
        assert "gave up forwarding kos" in service.log_text()
        pacs.check()


@needs_orthanc
def test_kill_9_at_any_point_loses_nothing_and_repeats_nothing(tmp_path):
    files = _phantoms(tmp_path / "send", 2)  # 40 images, one flagged example among them
    files.append(ROOT / "examples" / "radiographs" / "femur_malignant.dcm")
    rng = random.Random(7)
    kills = []
    with Orthanc(tmp_path / "orthanc", aet="PACS") as pacs:
        service = ServeProcess(tmp_path, forward=("127.0.0.1", pacs.dicom_port), page=False)
        def sent() -> int:
            return sum(row["state"] == "sent" for row in _outbox(service))

        # Each point asks for progress made by the run it kills, so every run gets somewhere.
        points = [
            ("while images arrive", lambda base: service.query("SELECT COUNT(*) FROM instances")[0][0] >= 8),
            ("while analysing", lambda base: service.counts().get("analysing", 0) > 0
             and service.finished() >= base["finished"] + 3),
            ("while forwarding", lambda base: sent() >= base["sent"] + 3
             and any(row["state"] == "pending" for row in _outbox(service))),
            ("at a random moment", None),
        ]
        for name, ready in points:
            service.start()
            base = {"finished": service.finished(), "sent": sent()}
            sender = threading.Thread(target=lambda: _send(service, files), daemon=True)
            sender.start()
            if ready is None:
                time.sleep(rng.uniform(0.5, 3.0))
            else:
                try:
                    wait_until(lambda: ready(base), 120, name, interval_s=0.02)
                except AssertionError:
                    pass  # the run got past that point first; kill it wherever it is
            service.kill()
            kills.append((name, service.finished(), sent()))
            sender.join(60)
        # A last start; the modality sends everything again, as it would for images it was
        # never told were stored.
        service.start()
        statuses = _send(service, files)
        assert {status.status for status in statuses} == {0x0000}
        service.wait_finished(len(files), timeout_s=240)
        wait_until(lambda: {row["state"] for row in _outbox(service)} == {"sent"}, 120, "every result forwarded")
        assert service.stop() == 0

        rows = service.query("SELECT key, state, attempts, summary FROM instances")
        assert len(rows) == len(files), kills
        assert {row["state"] for row in rows} == {"done"}, [dict(row) for row in rows if row["state"] != "done"]
        audit = service.audit_lines()
        assert sorted(line["instance"] for line in audit) == sorted(row["key"] for row in rows), "one line each"
        outbox = _outbox(service)
        assert len(outbox) == sum(json.loads(row["summary"])["objects"] for row in rows)
        expected = {row["sop_instance_uid"] for row in outbox}
        pacs.wait_for_count(len(expected), timeout_s=60)
        assert pacs.count() == len(expected) and set(pacs.sop_instance_uids()) == expected
        assert list((service.state / "inbox").iterdir()) == []
        _assert_no_phi(service)
    print(f"\nkill -9 points (name, analyses committed, objects forwarded): {kills}")


def test_the_drop_folder_feeds_the_same_analysis_and_a_png_gets_no_dicom_objects(tmp_path):
    import cv2
    import numpy as np

    drop = tmp_path / "drop"
    drop.mkdir()
    [dicom] = _phantoms(tmp_path / "send", 1)[:1]
    settings = f"[folder]\npath = '{drop}'\npoll_interval_s = 0.2\n"
    with ServeProcess(tmp_path, page=False, settings=settings) as service:
        shutil.copy(dicom, drop / "image.dcm")
        cv2.imwrite(str(drop / "image.png"), (np.arange(384 * 320) % 4000).reshape(384, 320).astype(np.uint16))
        (drop / "notes.txt").write_text("left alone")
        service.wait_finished(2, timeout_s=60)
        rows = service.query("SELECT via, file, state, summary FROM instances ORDER BY seq")
        assert len(rows) == 2 and {row["via"] for row in rows} == {"folder"}
        assert {row["state"] for row in rows} <= {"done", "not analysed"}
        png = next(row for row in rows if row["file"].endswith(".png"))
        assert "did not come as DICOM" in json.loads(png["summary"])["outputs_note"]
        assert sorted(path.name for path in drop.iterdir()) == ["notes.txt"]


def test_sigterm_finishes_cleanly_and_the_queue_survives_a_restart(tmp_path):
    files = _phantoms(tmp_path / "send", 1)[:6]
    service = ServeProcess(tmp_path, page=False)
    service.start()
    _send(service, files)
    assert service.stop() == 0
    assert "stopped" in service.log_text()
    service.start()
    service.wait_finished(len(files), timeout_s=120)
    assert service.stop() == 0
    assert len(service.audit_lines()) == len(files)


def test_the_page_shows_the_flag_seconds_after_the_image_is_sent(tmp_path):
    from .browser import Browser, unavailable_reason

    if unavailable_reason() is not None:
        pytest.skip(unavailable_reason())
    flagged = unique_copies(ROOT / "examples" / "radiographs" / "femur_malignant.dcm", tmp_path / "send", 1,
                            prefix_uid="1.2.826.0.1.3680043.10.50.", plant_phi=PLANTED_PHI)
    ct = unique_copies(ROOT / "examples" / "ct" / "ct_vertebra_normal.dcm", tmp_path / "send-ct", 1,
                       prefix_uid="1.2.826.0.1.3680043.10.51.", plant_phi=PLANTED_PHI)
    [out_of_scope] = unique_copies(SYNTAXES / "explicit_vr_le_mono2.dcm", tmp_path / "send-mg", 1,
                                   prefix_uid="1.2.826.0.1.3680043.10.52.", plant_phi=PLANTED_PHI)
    mammogram = dcmread(out_of_scope)
    mammogram.Modality = "MG"  # no bundled model reads mammograms
    mammogram.save_as(out_of_scope)
    with ServeProcess(tmp_path) as service, Browser() as browser:
        browser.navigate(service.url)
        browser.wait_for("document.body.innerText.includes('live')", 20)
        sent_at = time.monotonic()
        _send(service, flagged)
        key = browser.wait_for("(() => { const flag = document.querySelector('.card .flag');"
                               " return flag && flag.closest('.card').dataset.key; })()", 60)
        seconds = time.monotonic() - sent_at
        _send(service, [out_of_scope, *ct])
        browser.wait_for("document.querySelectorAll('.card').length >= 3", 60)
        service.wait_finished(3, timeout_s=60)
        browser.wait_for("!!document.querySelector('.card[data-state=\"not analysed\"]')", 30)
        browser.wait_for("document.querySelectorAll('.card img').length >= 1", 30)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(ARTIFACTS / "serve-page.png")
        text = browser.evaluate("document.body.innerText")
        assert browser.console_errors() == []
        [row] = service.query("SELECT key FROM instances WHERE modality = 'DX'")
        assert key == row["key"]
        assert "Suspected malignant bone lesion" in text
        assert "Not analysed: out of scope" in text
        assert find_phi(text) == []
        status = urllib.request.urlopen(service.url + "api/status", timeout=10).read()
        assert find_phi(status.decode()) == []
    print(f"\nflag on the page {seconds:.2f} s after storescu started sending")


def test_a_second_service_on_the_same_ports_says_which_is_taken_and_exits_6(tmp_path):
    (tmp_path / "first").mkdir()
    with ServeProcess(tmp_path / "first") as first:
        second = subprocess.run([sys.executable, "-m", "radedge", "serve", "--config", str(first.config), "--state",
                                 str(tmp_path / "second")], capture_output=True, text=True, timeout=120)
        assert second.returncode == 6
        assert f"the page cannot listen on 127.0.0.1:{first.page_port}" in second.stderr
        again = subprocess.run([sys.executable, "-m", "radedge", "serve", "--config", str(first.config), "--state",
                                str(first.state)], capture_output=True, text=True, timeout=120)
        assert again.returncode == 6 and "another radedge serve is running on the state folder" in again.stderr
        assert first.alive()
