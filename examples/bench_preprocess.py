"""Preprocess benchmark: radedge's fused op against the numpy + OpenCV chain it replaces.

    .venv/bin/python examples/bench_preprocess.py [--threads N] [--seconds S] [--baseline PATH]

One 3000 x 3000 12-bit MONOCHROME1 radiograph-like phantom goes to a 512 x 512 float32
model input (letterbox, normalised) four ways, timed in this process:

1. copy      np.copyto of the stored pixels into a preallocated array: the floor for any
             op that reads the image once;
2. chain     pydicom apply_modality_lut + apply_voi_lut (window LINEAR) + MONOCHROME1
             inversion + scaling to [0, 1], then cv2.resize INTER_AREA and normalisation:
             what a preprocessing script usually does;
3. numpy LUT the same intensity chain applied once to every stored value (np.arange), then
             per image lut[pixels], cv2.resize INTER_AREA and normalisation;
4. fused     radedge.ops.preprocess.preprocess_into with that LUT: gather, resize, normalise
             and write in one pass over the pixels, on CPU threads.

and the extensions of the fused op, on the same image:

5. crop      the fused op on the central 90 % (center_crop(fraction=0.9)) of each side;
6. batch     preprocess_batch of four such images into one [4, 1, 512, 512] tensor, per
             image, and the same four images by four preprocess_into calls (four
             different images miss the caches more than one image timed over and over);
7. histogram radedge.ops.histogram.histogram of the stored values over the 12-bit range;
8. percentile LUT  radedge.intensity.build_lut(voi=Percentile(0.5, 99.5)): the histogram,
             nearest-rank percentiles of the modality values and the table.

With --baseline PATH (another build of radedge/_kernels*.so, e.g. of an earlier commit),
that build's fused op is timed in the same rounds, and so is this build's called the same
way (``preprocess_cpu`` directly, without preprocess_into's Python), so a change to the op
can be checked for speed and for bit-identical output under the same machine load.

Building a fixed-window LUT is timed separately: it happens once per series (per window),
not per image; a percentile LUT is per image. The script checks that the fused output
matches the chain's to 1e-3, prints the hardware, medians and 95th percentiles, the
ratios against the goals, and a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from benchlib import cpu_model, load_build, measure, resolved_threads
from radedge._native import kernels
from radedge.ops.histogram import histogram
from radedge.intensity import Percentile
from radedge.intensity import build_lut as build_image_lut
from radedge.io import Image, Intensity, Rescale, Source
from radedge.ops.preprocess import PreprocessSpec, center_crop, preprocess_batch, preprocess_into

ROWS = COLUMNS = 3000
BITS_STORED = 12
MEAN, STD = 0.5, 0.25
SPEC = PreprocessSpec(512, 512, resize="letterbox", mean=(MEAN,), std=(STD,), dtype="float32")
BATCH = 4
# The product spec's goals for the fused op on the CPU.
GOAL_CHAIN_RATIO = 50.0  # at least this many times faster than the numpy + OpenCV chain
GOAL_COPY_RATIO = 5.0  # at most this many times the time of copying the input once


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


def radedge_image(pixels: np.ndarray, ds: Dataset) -> Image:
    """The phantom as radedge.io would read it from a file with the dataset's header."""
    intensity = Intensity(
        bits_allocated=16,
        bits_stored=ds.BitsStored,
        signed=False,
        photometric_interpretation=ds.PhotometricInterpretation,
        rescale=Rescale(float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.RescaleType),
    )
    return Image(pixels=pixels, intensity=intensity, source=Source(path=None, format="dicom"))


def numpy_lut(pixels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    resized = cv2.resize(lut[pixels], (SPEC.width, SPEC.height), interpolation=cv2.INTER_AREA)
    return (resized - MEAN) / STD


def native_arguments(threads: int) -> dict:
    """The keyword arguments of _kernels.preprocess_cpu for SPEC, as every build takes them."""
    return dict(height=SPEC.height, width=SPEC.width, channels=SPEC.channels, dtype=SPEC.dtype, resize=SPEC.resize,
                pad_value=SPEC.pad_value, mean=list(SPEC.mean), std=list(SPEC.std), threads=threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the fused op (0: default)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds spent measuring each variant")
    parser.add_argument("--baseline", help="path of another build of radedge/_kernels*.so to time beside this one")
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
    batch_out = np.empty((BATCH, *SPEC.shape), dtype=SPEC.dtype)
    lut = build_lut(ds)
    crop = center_crop(ROWS, COLUMNS, fraction=0.9)
    # Four distinct images, so the batch cannot profit from one image staying in cache.
    batch = [(phantom(seed=seed), lut, 0) for seed in range(BATCH)]
    image = radedge_image(pixels, ds)
    variants = {}
    if args.baseline:
        baseline = load_build(args.baseline)
        baseline_out, native_out = np.empty_like(out), np.empty_like(out)
        arguments = native_arguments(threads)
        variants["baseline"] = lambda: baseline.preprocess_cpu(pixels, lut, 0, baseline_out, 0, **arguments)
        variants["native"] = lambda: kernels().preprocess_cpu(pixels, lut, 0, native_out, 0, **arguments)

    results = measure(
        variants | {
            "copy": lambda: np.copyto(copy_target, pixels),
            "chain": lambda: chain(pixels, ds),
            "numpy LUT": lambda: numpy_lut(pixels, lut),
            "fused": lambda: preprocess_into(pixels, lut, 0, out, 0, SPEC, threads=threads),
            "crop": lambda: preprocess_into(pixels, lut, 0, out, 0, SPEC, threads=threads, crop=crop),
            "batch": lambda: preprocess_batch(batch, batch_out, SPEC, threads=threads),
            "singles": lambda: [preprocess_into(*image, batch_out, slot, SPEC, threads=threads)
                                for slot, image in enumerate(batch)],
            "LUT build": lambda: build_lut(ds),
            "histogram": lambda: histogram(pixels, 0, 2**BITS_STORED, threads=threads),
            "percentile LUT": lambda: build_image_lut(image, voi=Percentile(0.5, 99.5), threads=threads),
        },
        args.seconds,
    )
    # The batch call and the single calls write BATCH images: report their cost per image.
    results["batch"] = results["batch"] / BATCH
    results["singles"] = results["singles"] / BATCH
    median = {name: float(np.median(t)) for name, t in results.items()}
    p95 = {name: float(np.percentile(t, 95)) for name, t in results.items()}

    reference = chain(pixels, ds)
    preprocess_into(pixels, lut, 0, out, 0, SPEC, threads=threads)
    difference = float(np.abs(out[0, 0] - reference).max())
    if args.baseline:
        baseline.preprocess_cpu(pixels, lut, 0, baseline_out, 0, **arguments)
        kernels().preprocess_cpu(pixels, lut, 0, native_out, 0, **arguments)
        same_bits = np.array_equal(baseline_out.view(np.uint32), out.view(np.uint32))
        same_bits = same_bits and np.array_equal(native_out.view(np.uint32), out.view(np.uint32))

    labels = {
        **({"baseline": f"fused op of the baseline build ({args.baseline}), called directly",
            "native": "fused op of this build, called directly"} if args.baseline else {}),
        "copy": "copy the input once (np.copyto)",
        "chain": "numpy + OpenCV chain (pydicom LUTs, inversion, scaling, INTER_AREA, normalise)",
        "numpy LUT": "numpy LUT (lut[pixels], INTER_AREA, normalise)",
        "fused": f"radedge fused op ({threads} threads)",
        "crop": "fused op, centre crop of 90 % per side",
        "batch": f"fused op, batch of {BATCH} images, per image",
        "singles": f"fused op, the same {BATCH} images one call each, per image",
        "LUT build": "building the LUT (once per series)",
        "histogram": "histogram of the stored values (12-bit range)",
        "percentile LUT": "percentile LUT 0.5-99.5 % (histogram + table; per image)",
    }
    for name, label in labels.items():
        print(f"{label:<82} median {median[name]:8.2f} ms   p95 {p95[name]:8.2f} ms   (n={len(results[name])})")
    print()
    chain_ratio = median["chain"] / median["fused"]
    lut_ratio = median["numpy LUT"] / median["fused"]
    copy_ratio = median["fused"] / median["copy"]
    print(f"chain / fused      {chain_ratio:6.1f}x   goal >= {GOAL_CHAIN_RATIO:g}x: "
          f"{'met' if chain_ratio >= GOAL_CHAIN_RATIO else 'NOT met'}")
    print(f"numpy LUT / fused  {lut_ratio:6.1f}x   goal > 1x:   {'met' if lut_ratio > 1 else 'NOT met'}")
    print(f"fused / copy       {copy_ratio:6.1f}x   goal <= {GOAL_COPY_RATIO:g}x: "
          f"{'met' if copy_ratio <= GOAL_COPY_RATIO else 'NOT met'}")
    print(f"max |fused - chain| = {difference:.2e} (normalised units)   within 1e-3: {'yes' if difference <= 1e-3 else 'NO'}")
    if args.baseline:
        print(f"native / baseline  {median['native'] / median['baseline']:6.2f}x   (this build's op against the "
              "baseline's, both called directly)")
        print(f"fused / baseline   {median['fused'] / median['baseline']:6.2f}x   "
              f"outputs bit for bit identical: {'yes' if same_bits else 'NO'}")

    print("\nMarkdown for docs/performance.md:\n")
    print("| variant | median (ms) | p95 (ms) | chain / this |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in labels.items():
        timed_like_fused = ("chain", "numpy LUT", "fused", "crop", "batch", "singles", "baseline", "native")
        ratio = f"{median['chain'] / median[name]:.0f}x" if name in timed_like_fused else ""
        print(f"| {label} | {median[name]:.2f} | {p95[name]:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
