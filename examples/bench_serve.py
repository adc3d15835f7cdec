"""Receive-to-flag at the console: ``radedge serve`` in its own process, images sent one at a
time over DICOM as a modality sends them, against the analysis alone in this process.

    .venv/bin/python examples/bench_serve.py [--images N]

For each example image (new UIDs per send, so each is analysed), a pynetdicom client
C-STOREs it to a running ``radedge serve`` (its own state folder, no page, no forwarding,
the DICOM objects made) and waits until the journal shows the result. Two clocks: the
service's receive-to-flag (file flushed and journaled -> flags published) and the sender's
send-to-result (C-STORE request -> result committed, so it includes the transfer, the
flushes and the DICOM objects). The baseline, measured in this process on the same files
between the sends: ``ModelSet.predict`` on the file (read, lookup table, every model), what
``radedge run`` does per image. Prints the hardware, the percentiles and the ratios, and a
Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import cpu_model
from pydicom import dcmread
from pydicom.uid import generate_uid

EXAMPLES = Path(__file__).resolve().parent
IMAGES = sorted((EXAMPLES / "radiographs").glob("*.dcm")) + sorted((EXAMPLES / "spine").glob("*.dcm"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=56, help="images to send (cycling through the examples)")
    args = parser.parse_args()

    import radedge
    from pynetdicom import AE

    folder = Path(tempfile.mkdtemp(prefix="radedge-bench-serve-"))
    port = _free_port()
    (folder / "serve.toml").write_text(f"[receiver]\nport = {port}\n[page]\nenabled = false\n")
    log = open(folder / "serve.log", "wb")
    service = subprocess.Popen([sys.executable, "-m", "radedge", "serve", "--config", str(folder / "serve.toml"),
                                "--state", str(folder / "state")], stdout=log, stderr=subprocess.STDOUT)
    models = radedge.load_models()
    try:
        deadline = time.monotonic() + 120
        while b"ready:" not in (folder / "serve.log").read_bytes():
            if service.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"radedge serve did not start:\n{(folder / 'serve.log').read_text()}")
            time.sleep(0.1)
        ae = AE(ae_title="BENCH")
        datasets = [dcmread(path) for path in IMAGES]
        for dataset in datasets:
            ae.add_requested_context(dataset.SOPClassUID, [dataset.file_meta.TransferSyntaxUID])
        assoc = ae.associate("127.0.0.1", port, ae_title="RADEDGE")
        journal = sqlite3.connect(f"file:{folder / 'state' / 'journal.sqlite'}?mode=ro", uri=True)
        service_ms, sender_ms, baseline_ms = [], [], []
        for number in range(args.images):
            dataset = datasets[number % len(datasets)]
            dataset.SOPInstanceUID = generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            started = time.perf_counter()
            if assoc.send_c_store(dataset).Status != 0:
                raise SystemExit("the service refused an image")
            while True:
                row = journal.execute("SELECT summary FROM instances WHERE seq = ? AND summary IS NOT NULL",
                                      (number + 1,)).fetchone()
                if row:
                    break
                time.sleep(0.002)
            sender_ms.append((time.perf_counter() - started) * 1000)
            service_ms.append(json.loads(row[0])["timings_ms"]["receive_to_flag"])
            # The baseline on the same file, taking turns with the service.
            started = time.perf_counter()
            models.predict(IMAGES[number % len(IMAGES)])
            baseline_ms.append((time.perf_counter() - started) * 1000)
        assoc.release()
    finally:
        service.terminate()
        service.wait(60)
    service_p, sender_p, baseline_p = (_percentiles(v) for v in (service_ms, sender_ms, baseline_ms))
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.images} images "
          f"({len(IMAGES)} examples, 2000-2400 px, JPEG-LS / RLE / JPEG 2000), one at a time")
    print("| measured | p50 ms | p90 ms | p99 ms | max ms | p50 / baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, figures in (("radedge serve: receive -> flags published", service_p),
                          ("sender: C-STORE sent -> result committed (objects made)", sender_p),
                          ("baseline: ModelSet.predict on the file, in process", baseline_p)):
        print(f"| {name} | {figures['p50']:.0f} | {figures['p90']:.0f} | {figures['p99']:.0f} | "
              f"{figures['max']:.0f} | {figures['p50'] / baseline_p['p50']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
