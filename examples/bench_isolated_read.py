"""What reading in a worker process costs: ``IsolatedReader.read`` against ``read_image`` in
this process, on the same files, taking turns.

    .venv/bin/python examples/bench_isolated_read.py [--seconds S]

``radedge run`` reads every file in a worker process with a time budget (README, "Command
line"), so that a decoder looping on a damaged codestream costs one file its budget. The
price is the image crossing back: pickled with its pixel buffer kept apart and copied through
a shared-memory file. Three inputs: a small native phantom (384 x 320), an uncompressed
3000 x 3000 16-bit radiograph (made here, 18 MB of pixels) and the JPEG 2000 tibia example
(2400 x 2000). Prints the hardware, medians and 95th percentiles, the added milliseconds and
the ratio, and a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from benchlib import cpu_model, measure
from radedge.io import IsolatedReader, read_image

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent


def uncompressed_radiograph(folder: Path) -> Path:
    rows = columns = 3000
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality, ds.Rows, ds.Columns = "DX", rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(rows * columns, dtype=np.uint32) % 4096).astype("<u2").tobytes()
    path = folder / "radiograph_3000.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per variant and input")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} hardware threads)")
    rows = []
    with tempfile.TemporaryDirectory() as folder, IsolatedReader() as reader:
        inputs = {
            "native 384 x 320": REPO / "tests/data/transfer_syntaxes/explicit_vr_le_mono2.dcm",
            "native 3000 x 3000": uncompressed_radiograph(Path(folder)),
            "JPEG 2000 2400 x 2000": EXAMPLES / "radiographs/tibia_benign.dcm",
        }
        for name, path in inputs.items():
            np.testing.assert_array_equal(reader.read(path).pixels, read_image(path).pixels)
            times = measure({"in process": lambda p=path: read_image(p),
                             "worker": lambda p=path: reader.read(p)}, args.seconds)
            here, there = (float(np.median(times[key])) for key in ("in process", "worker"))
            p95 = {key: float(np.percentile(value, 95)) for key, value in times.items()}
            rows.append((name, here, there, p95["in process"], p95["worker"]))
            print(f"{name:<22} in process {here:7.2f} ms (p95 {p95['in process']:7.2f})   worker {there:7.2f} ms "
                  f"(p95 {p95['worker']:7.2f})   +{there - here:5.2f} ms, x{there / here:.2f}")
    print("\n| input | in process (median / p95) | worker process | added | ratio |\n| --- | --- | --- | --- | --- |")
    for name, here, there, p95_here, p95_there in rows:
        print(f"| {name} | {here:.1f} / {p95_here:.1f} ms | {there:.1f} / {p95_there:.1f} ms | {there - here:+.1f} ms | "
              f"{there / here:.2f} |")


if __name__ == "__main__":
    main()
