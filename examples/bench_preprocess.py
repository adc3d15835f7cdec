"""Preprocess benchmark: radedge's fused op against the numpy + OpenCV chain it replaces.

    .venv/bin/python examples/bench_preprocess.py [--threads N] [--seconds S]

One 3000 x 3000 12-bit MONOCHROME1 radiograph-like phantom goes to a 512 x 512 float32
model input (letterbox, normalised) four ways, timed in this process:

1. copy      np.copyto of the stored pixels into a preallocated array: the floor for any
             op that reads the image once;
2. chain     pydicom apply_modality_lut + apply_voi_lut (window LINEAR) + MONOCHROME1
             inversion + scaling to [0, 1], then cv2.resize INTER_AREA and normalisation:
             what a preprocessing script usually does;
3. numpy LUT the same intensity chain applied once to every stored value (np.arange), then
             per image lut[pixels], cv2.resize INTER_AREA and normalisation;
4. fused     radedge.preprocess.preprocess_into with that LUT: gather, resize, normalise
             and write in one pass over the pixels, on CPU threads.

Building the LUT is timed separately: it happens once per series (per window), not per
image. In the SDK, radedge.intensity.build_lut builds it from an Image. The script checks
that the fused output matches the chain's to 1e-3, prints the hardware, medians and
95th percentiles, the ratios, and a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from radedge._native import kernels
from radedge.preprocess import PreprocessSpec, preprocess_into

ROWS = COLUMNS = 3000
BITS_STORED = 12
MEAN, STD = 0.5, 0.25
SPEC = PreprocessSpec(512, 512, resize="letterbox", mean=(MEAN,), std=(STD,), dtype="float32")


def phantom(rows: int = ROWS, columns: int = COLUMNS, seed: int = 20261122) -> np.ndarray:
    """uint16 [rows, columns] stored values in [0, 4095]: a body ellipse, two bones with
    cortex, soft blobs and a background gradient, plus detector noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:750, 0:750].astype(np.float32) / 750.0
    body = ((x - 0.5) / 0.38) ** 2 + ((y - 0.5) / 0.46) ** 2 < 1.0
    image = 600.0 + 300.0 * y + 1400.0 * body
    for cx in (0.40, 0.60):  # long bones: marrow inside a brighter cortex
        radius = np.abs(x - cx)
        image += 900.0 * (radius < 0.05) + 500.0 * ((radius > 0.035) & (radius < 0.05))
    for _ in range(12):
        cx, cy, sigma, amplitude = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.02, 0.1), rng.uniform(-300, 300)
        image += amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    image = cv2.GaussianBlur(image, (0, 0), 2.0)
    image = cv2.resize(image, (columns, rows), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0.0, 25.0, (rows, columns)).astype(np.float32)
    return np.clip(np.rint(image), 0, 2**BITS_STORED - 1).astype(np.uint16)


def dataset(rows: int = ROWS, columns: int = COLUMNS) -> Dataset:
    """The header that goes with the phantom: 12 bits stored, rescaled, windowed, MONOCHROME1."""
    ds = Dataset()
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, BITS_STORED, BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1.5, -100.0, "US"
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 2600.0, 3400.0, "LINEAR"
    return ds


def display(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    """float64 display intensities in [0, 1] (0 = black) for stored values of any shape:
    modality LUT, VOI window, scaling by the window's output range, MONOCHROME1 inversion."""
    windowed = apply_voi_lut(apply_modality_lut(stored, ds), ds)
    # apply_windowing's output range for an unsigned, rescaled image (pydicom 3).
    y_min = 0 * ds.RescaleSlope + ds.RescaleIntercept
    y_max = (2**ds.BitsStored - 1) * ds.RescaleSlope + ds.RescaleIntercept
    scaled = (windowed - y_min) / (y_max - y_min)
    return 1.0 - scaled if ds.PhotometricInterpretation == "MONOCHROME1" else scaled


def chain(pixels: np.ndarray, ds: Dataset) -> np.ndarray:
    """float32 [512, 512], the usual way: every step a full-image numpy pass, then OpenCV."""
    values = display(pixels, ds).astype(np.float32)
    resized = cv2.resize(values, (SPEC.width, SPEC.height), interpolation=cv2.INTER_AREA)
    return (resized - MEAN) / STD


def build_lut(ds: Dataset) -> np.ndarray:
    """float32 [2**BitsStored]: the chain's pointwise steps applied once to every stored value."""
    return display(np.arange(2**ds.BitsStored, dtype=np.uint16), ds).astype(np.float32)


def numpy_lut(pixels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    resized = cv2.resize(lut[pixels], (SPEC.width, SPEC.height), interpolation=cv2.INTER_AREA)
    return (resized - MEAN) / STD


def measure(variants: dict, seconds: float, rounds: int = 8, warmup: int = 3) -> dict:
    """Wall times in ms of each variant's `run()`, about `seconds` each (at least 10 runs).

    The variants take turns in `rounds` rounds, so a burst of background load on a shared
    machine lands on all of them instead of skewing one ratio.
    """
    for run in variants.values():
        for _ in range(warmup):
            run()
    times: dict = {name: [] for name in variants}
    for round_index in range(rounds):
        for name, run in variants.items():
            deadline = time.perf_counter() + seconds / rounds
            while time.perf_counter() < deadline or len(times[name]) < (round_index + 1) * 10 // rounds:
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: np.asarray(t) for name, t in times.items()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolved_threads(threads: int) -> int:
    """The count radedge uses for `threads` (0: RADEDGE_NUM_THREADS, else all hardware threads)."""
    if threads > 0:
        return threads
    env = os.environ.get("RADEDGE_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return int(kernels().build_info()["hardware_threads"]) or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the fused op (0: default)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds spent measuring each variant")
    args = parser.parse_args()

    pixels = phantom()
    ds = dataset()
    threads = resolved_threads(args.threads)
    print(f"CPU      {cpu_model()}")
    print(f"cores    {os.cpu_count()} logical; radedge threads {threads}; OpenCV threads {cv2.getNumThreads()}")
    print(f"software numpy {np.__version__}, OpenCV {cv2.__version__}, radedge._kernels {kernels().build_info()['version']}")
    print(f"input    {ROWS} x {COLUMNS} uint16 ({BITS_STORED} bits stored, MONOCHROME1) -> "
          f"[1, 1, {SPEC.height}, {SPEC.width}] float32, {SPEC.resize}")
    print()

    copy_target = np.empty_like(pixels)
    out = np.empty((1, *SPEC.shape), dtype=SPEC.dtype)
    lut = build_lut(ds)

    results = measure(
        {
            "copy": lambda: np.copyto(copy_target, pixels),
            "chain": lambda: chain(pixels, ds),
            "numpy LUT": lambda: numpy_lut(pixels, lut),
            "fused": lambda: preprocess_into(pixels, lut, 0, out, 0, SPEC, threads=threads),
            "LUT build": lambda: build_lut(ds),
        },
        args.seconds,
    )
    median = {name: float(np.median(t)) for name, t in results.items()}
    p95 = {name: float(np.percentile(t, 95)) for name, t in results.items()}

    reference = chain(pixels, ds)
    preprocess_into(pixels, lut, 0, out, 0, SPEC, threads=threads)
    difference = float(np.abs(out[0, 0] - reference).max())

    labels = {
        "copy": "copy the input once (np.copyto)",
        "chain": "numpy + OpenCV chain (pydicom LUTs, inversion, scaling, INTER_AREA, normalise)",
        "numpy LUT": "numpy LUT (lut[pixels], INTER_AREA, normalise)",
        "fused": f"radedge fused op ({threads} threads)",
        "LUT build": "building the LUT (once per series)",
    }
    for name, label in labels.items():
        print(f"{label:<82} median {median[name]:8.2f} ms   p95 {p95[name]:8.2f} ms   (n={len(results[name])})")
    print()
    chain_ratio = median["chain"] / median["fused"]
    lut_ratio = median["numpy LUT"] / median["fused"]
    copy_ratio = median["fused"] / median["copy"]
    print(f"chain / fused      {chain_ratio:6.1f}x   goal >= 15x: {'met' if chain_ratio >= 15 else 'NOT met'}")
    print(f"numpy LUT / fused  {lut_ratio:6.1f}x   goal > 1x:   {'met' if lut_ratio > 1 else 'NOT met'}")
    print(f"fused / copy       {copy_ratio:6.1f}x")
    print(f"max |fused - chain| = {difference:.2e} (normalised units)   within 1e-3: {'yes' if difference <= 1e-3 else 'NO'}")

    print("\nMarkdown for docs/performance.md:\n")
    print("| variant | median (ms) | p95 (ms) | vs fused |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in labels.items():
        ratio = "" if name in ("fused", "LUT build") else f"{median[name] / median['fused']:.2f}x"
        print(f"| {label} | {median[name]:.2f} | {p95[name]:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
