"""PNG/JPEG decoding and overlay PNG encoding: radedge's imagecodecs path against OpenCV's.

    .venv/bin/python examples/bench_raster_codecs.py [--seconds S]

radedge reads PNG, JPEG and TIFF files and writes the overlay PNG through imagecodecs (libpng,
libjpeg-turbo), where it used OpenCV; this times both in this process, taking turns:

- decode: the femur example radiograph (2000 x 2400 pixels) windowed to 8 bits and saved as PNG and as
  JPEG (quality 90), and its 16 bits saved as PNG; ``imagecodecs.png_decode`` /
  ``jpeg8_decode`` (what ``radedge.io.read_raster`` calls) against ``cv2.imdecode(...,
  IMREAD_UNCHANGED)``, with a check that the pixels are the same;
- encode: that example's overlay as ``radedge run`` draws it (1024 x 853 RGB) through
  ``radedge.results.overlay.encode_png`` against ``cv2.imencode(".png")`` of the BGR image
  (OpenCV's defaults: zlib level 1, the Sub filter, the RLE strategy), with the file sizes.

It prints the hardware, medians and the ratio OpenCV / radedge (above 1: radedge is faster).
Needs OpenCV (pip install 'radedge[bench]').
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import cv2
import imagecodecs
import numpy as np

import radedge
from benchlib import cpu_model, measure
from radedge.results.overlay import encode_png

EXAMPLE = Path(__file__).resolve().parent / "radiographs" / "femur_malignant.dcm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per variant and case (default 2)")
    args = parser.parse_args()

    image = radedge.io.read_image(EXAMPLE)
    stored = image.pixels
    low, high = np.percentile(stored, [1, 99])
    eight = np.clip((stored - low) / (high - low) * 255 + 0.5, 0, 255).astype(np.uint8)
    sixteen = stored.astype(np.uint16)
    files = {
        "PNG 8-bit": cv2.imencode(".png", eight)[1].tobytes(),
        "PNG 16-bit": cv2.imencode(".png", sixteen)[1].tobytes(),
        "JPEG 8-bit q90": cv2.imencode(".jpg", eight, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(),
    }
    overlay = radedge.load_models().predict(EXAMPLE).overlay()  # what `radedge run --out` writes

    print(f"CPU: {cpu_model()} ({platform.machine()}); OpenCV {cv2.__version__}, imagecodecs {imagecodecs.__version__}")
    print(f"{'case':36s} {'radedge ms':>11s} {'OpenCV ms':>10s} {'OpenCV / radedge':>17s}")
    for name, data in files.items():
        ours = imagecodecs.png_decode if data[:4] == b"\x89PNG" else imagecodecs.jpeg8_decode
        buffer = np.frombuffer(data, np.uint8)
        if not np.array_equal(ours(data), cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)):
            raise SystemExit(f"{name}: the decoders disagree")
        times = measure({"radedge": lambda: ours(data),
                         "opencv": lambda: cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)}, args.seconds)
        _row(f"decode {name} ({eight.shape[1]} x {eight.shape[0]})", times)
    ours_png = encode_png(overlay)
    theirs_png = cv2.imencode(".png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))[1].tobytes()
    if not np.array_equal(imagecodecs.png_decode(ours_png), overlay):
        raise SystemExit("the overlay PNG does not decode to the overlay")
    times = measure({"radedge": lambda: encode_png(overlay),
                     "opencv": lambda: cv2.imencode(".png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))}, args.seconds)
    _row(f"encode overlay ({overlay.shape[1]} x {overlay.shape[0]})", times)
    print(f"overlay PNG size: radedge {len(ours_png) / 1e3:.0f} kB, OpenCV {len(theirs_png) / 1e3:.0f} kB")


def _row(name: str, times: dict) -> None:
    ours, theirs = float(np.median(times["radedge"])), float(np.median(times["opencv"]))
    print(f"{name:36s} {ours:11.1f} {theirs:10.1f} {theirs / ours:17.2f}")


if __name__ == "__main__":
    main()
