"""radedge inside a console application, as docs/embedding.md describes it.

    python examples/embed_in_console.py [FOLDER]

Loads every bundled model once, analyses the images of FOLDER (default: examples/) from bytes on
a pool of threads, branches on error codes instead of messages, analyses a data set the way a
DICOM receiver hands it over (no File Meta Information), and sends a result to another process
(pickled small) and back through JSON (``from_dict``). One line per image on stdout; the last
line counts them.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom

import radedge

# What the console shows for each refusal, in its own words, by stable code (docs/errors.md).
CONSOLE_WORDING = {
    "input.not_dicom": "Not an image radedge can read",
    "input.out_of_scope": "Not for these models",
    "input.truncated_pixel_data": "Image incomplete: send it again",
}


def analyse(models: radedge.ModelSet, path: Path) -> str:
    try:
        analysis = models.predict(path.read_bytes(), label=path.name)
    except radedge.RadedgeError as error:
        wording = CONSOLE_WORDING.get(error.code, "Not analysed")
        return f"{path.name}: {wording} [{error.code}]"
    if not analysis.analysed:
        return f"{path.name}: not analysed: {analysis.reason}"
    flags = ", ".join(f"{flag.code} {flag.score:.2f}" for flag in analysis.flags) or "no flags"
    return f"{path.name}: {flags}"


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)  # radedge logs under "radedge", never patient data
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in (".dcm", ".png", ".txt"))
    models = radedge.load_models(threads=2)  # once, at start-up; shared by every thread below
    with ThreadPoolExecutor(max_workers=2) as pool:
        for line in pool.map(lambda path: analyse(models, path), files):
            print(line)

    # A data set as a DICOM receiver hands it over: no file_meta; the association's transfer
    # syntax says how its Pixel Data is encoded.
    dicom_files = [path for path in files if path.suffix == ".dcm"]
    dataset = pydicom.dcmread(dicom_files[0])
    syntax = dataset.file_meta.TransferSyntaxUID
    del dataset.file_meta
    received = models.predict(dataset, transfer_syntax_uid=syntax, label="received")
    print(f"received data set ({syntax.name}): analysed={received.analysed}, "
          f"{len(received.flags)} flag(s)")

    # To another process and back: a pickle without the decoded image, and JSON read back.
    sent = pickle.dumps(received)
    back = radedge.ImageAnalysis.from_dict(json.loads(received.to_json()))
    print(f"pickled {len(sent) // 1024} KiB; from_dict gives the same flags: "
          f"{[flag.code for flag in back.flags] == [flag.code for flag in received.flags]}")
    print(f"{len(files)} file(s) analysed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
