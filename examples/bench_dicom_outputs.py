"""What the DICOM outputs cost beside the analysis they describe: SEG, SR, GSPS and KOS made and
encoded for each example, against the analysis itself (decoded image to flags), taking turns in
this process.

    .venv/bin/python examples/bench_dicom_outputs.py [--seconds S]

The flags are on the console before any object is made (``radedge run`` prints the line
first); these figures say how much later the PACS copy is ready, and what a console service
spends per image on it. Prints the hardware, per example the medians of the analysis and of
each object kind, the total and its ratio to the analysis, and a Markdown table for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from benchlib import cpu_model, measure
from radedge.dicom_out import encode
from radedge.dicom_out.common import model_outputs
from radedge.dicom_out.gsps import presentation_state
from radedge.dicom_out.kos import key_objects
from radedge.dicom_out.seg import segmentations
from radedge.dicom_out.sr import measurement_report
from radedge.io import read_image
from radedge.pipeline import load_models

EXAMPLES = Path(__file__).resolve().parent


def _encoded(dataset):
    return None if dataset is None else encode(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per variant and example")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} hardware threads)")
    models = load_models(None, threads=0)
    rows = []
    for path in sorted(EXAMPLES.rglob("*.dcm")):
        image = read_image(path)
        analysis = models.predict(image)
        outputs = model_outputs(analysis)
        variants = {
            "analysis": lambda: models.predict(image),
            "SEG": lambda: [encode(s) for o in outputs for s in segmentations(o)],
            "SR": lambda: encode(measurement_report(analysis)),
            "GSPS": lambda: encode(presentation_state(analysis)),
            "KOS": lambda: _encoded(key_objects(analysis)),
        }
        times = {name: float(np.median(t)) for name, t in measure(variants, args.seconds, rounds=4).items()}
        objects = sum(times[kind] for kind in ("SEG", "SR", "GSPS", "KOS"))
        rows.append((path.relative_to(EXAMPLES), times, objects))
        print(f"{str(path.relative_to(EXAMPLES)):<42} analysis {times['analysis']:6.1f} ms  SEG {times['SEG']:6.1f}  "
              f"SR {times['SR']:6.1f}  GSPS {times['GSPS']:6.1f}  KOS {times['KOS']:5.1f}  objects {objects:6.1f} ms "
              f"(x{objects / times['analysis']:.1f} the analysis)")
    print("\n| example | analysis ms | SEG | SR | GSPS | KOS | all objects | vs analysis |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, times, objects in rows:
        print(f"| {name} | {times['analysis']:.1f} | {times['SEG']:.1f} | {times['SR']:.1f} | {times['GSPS']:.1f} | "
              f"{times['KOS']:.1f} | {objects:.1f} | {objects / times['analysis']:.1f}x |")


if __name__ == "__main__":
    main()
