"""Small post-processing benchmark: radedge's heatmap peaks and CAM overlay ops against the
numpy + OpenCV code they replace.

    .venv/bin/python examples/bench_postprocess_small.py [--threads N] [--seconds S]

Heatmap peaks, the vcf model's levels head: a [1, 5, 256, 256] float32 heatmap (L1-L5, one
Gaussian landmark per channel plus weaker blobs and noise) over a 512 x 512 model input that
holds a 3000 x 2400 lateral spine letterboxed. Variants:

1. peaks (numpy + OpenCV)  per channel cv2.dilate 3 x 3, equality with the dilated map, the
                           threshold and the content mask, np.nonzero, a sort by score,
                           the 3-point sub-pixel fit and the inverse placement, in numpy;
2. peaks (radedge)         radedge.ops.heatmap_peaks.find_peaks, k = 4;
3. argmax (numpy)          per channel np.argmax over the content cells, the fit and the
                           placement in numpy;
4. argmax (radedge)        radedge.ops.heatmap_peaks.find_argmax.

CAM overlay, the tumor-cls model's map: a 16 x 16 and a 32 x 32 float32 CAM over a
256 x 256 model input (a 2048 x 2048 source), blended onto a 1024 x 1024 grey display.
Variants:

1. OpenCV, new arrays      cv2.resize INTER_LINEAR to the display, cv2.normalize to uint8,
                           cv2.applyColorMap TURBO, cv2.cvtColor GRAY2BGR, cv2.addWeighted,
                           each returning a new array, as such code is usually written;
2. OpenCV, preallocated    the same steps writing into arrays allocated once (dst=);
3. radedge, new array      radedge.ops.cam_overlay.overlay_cam, which allocates its output;
4. radedge, into out       the same writing into a preallocated array.

OpenCV runs with as many threads as radedge. The variants take turns, so background load
on a shared machine lands on all of them. The
script checks that the numpy and radedge peaks agree, and counts the pixels where the
overlays differ with the jet map (OpenCV's table, then radedge's given to OpenCV); it prints
the hardware, medians, 95th percentiles, ratios and Markdown for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np

from benchlib import cpu_model, measure, resolved_threads
from radedge._native import kernels
from radedge.ops.cam_overlay import colormap_table, overlay_cam
from radedge.ops.heatmap_peaks import find_argmax, find_peaks
from radedge.ops.preprocess import PreprocessSpec, resize_geometry

PEAKS_SPEC = PreprocessSpec(512, 512, resize="letterbox")
PEAKS_SOURCE = (3000, 2400)
GRID = 256
THRESHOLD, K = 0.3, 4
CAM_SPEC = PreprocessSpec(256, 256, resize="letterbox")
CAM_SOURCE = (2048, 2048)
DISPLAY = (1024, 1024)
ALPHA = 0.4


def heatmaps(seed: int = 20261122) -> np.ndarray:
    """float32 [1, 5, 256, 256]: per channel one landmark (height 0.9) and two weaker blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:GRID, 0:GRID].astype(np.float32) + 0.5
    maps = np.zeros((1, 5, GRID, GRID), np.float32)
    for c in range(5):
        cy = 50 + 35 * c + rng.uniform(-3, 3)  # L1 .. L5 down the spine
        cx = 128 + rng.uniform(-10, 10)
        maps[0, c] += 0.9 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 4.0**2))
        for _ in range(2):
            by, bx = rng.uniform(40, 216), rng.uniform(60, 196)
            maps[0, c] += 0.4 * np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * 3.0**2))
    maps += rng.normal(0, 0.02, maps.shape).astype(np.float32)
    return maps


def content_cells(geometry, input_size: int, grid: int) -> tuple[slice, slice]:
    """Rows and columns of the cells whose centres lie in the content, as slices."""
    centres = (np.arange(grid) + 0.5) * input_size / grid
    rows = np.nonzero((centres >= geometry.offset_y) & (centres < geometry.offset_y + geometry.content_height))[0]
    columns = np.nonzero((centres >= geometry.offset_x) & (centres < geometry.offset_x + geometry.content_width))[0]
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)


def fit(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, rows: slice, columns: slice):
    """The parabola offsets (dx, dy) at cells (ys, xs), 0 at the content's edge or when flat."""
    offsets = []
    for axis, (position, first, last) in enumerate(((xs, columns.start, columns.stop), (ys, rows.start, rows.stop))):
        inside = (position - 1 >= first) & (position + 1 < last)
        step = np.array([0, 1]) if axis == 0 else np.array([1, 0])
        before = values[np.clip(ys - step[0], 0, None), np.clip(xs - step[1], 0, None)]
        after = values[np.minimum(ys + step[0], values.shape[0] - 1), np.minimum(xs + step[1], values.shape[1] - 1)]
        centre = values[ys, xs]
        curvature = 2 * centre - before - after
        with np.errstate(divide="ignore", invalid="ignore"):
            offset = np.where(inside & (curvature > 0), (after - before) / (2 * curvature), 0.0)
        offsets.append(np.clip(offset, -0.5, 0.5))
    return offsets


def to_source(geometry, xs, ys, dx, dy, input_size: int, grid: int):
    cell = input_size / grid
    x = ((xs + 0.5 + dx) * cell - geometry.offset_x) / geometry.scale_x
    y = ((ys + 0.5 + dy) * cell - geometry.offset_y) / geometry.scale_y
    return x, y


def numpy_peaks(maps: np.ndarray, geometry, mask: np.ndarray, rows: slice, columns: slice):
    """[(x, y, score) per channel]: the usual numpy + OpenCV local-maximum decoding."""
    kernel = np.ones((3, 3), np.uint8)
    result = []
    for values in maps[0]:
        dilated = cv2.dilate(values, kernel)
        ys, xs = np.nonzero((values == dilated) & (values >= THRESHOLD) & mask)
        scores = values[ys, xs]
        order = np.lexsort((ys * GRID + xs, -scores))[:K]
        ys, xs, scores = ys[order], xs[order], scores[order]
        dx, dy = fit(values.astype(np.float64), ys, xs, rows, columns)
        x, y = to_source(geometry, xs, ys, dx, dy, PEAKS_SPEC.width, GRID)
        result.append(np.stack([x, y, scores], axis=1))
    return result


def numpy_argmax(maps: np.ndarray, geometry, rows: slice, columns: slice):
    result = []
    for values in maps[0]:
        content = values[rows, columns]
        y, x = np.unravel_index(np.argmax(content), content.shape)
        ys, xs = np.array([y + rows.start]), np.array([x + columns.start])
        dx, dy = fit(values.astype(np.float64), ys, xs, rows, columns)
        px, py = to_source(geometry, xs, ys, dx, dy, PEAKS_SPEC.width, GRID)
        result.append(np.stack([px, py, values[ys, xs]], axis=1))
    return result


def opencv_overlay(cam: np.ndarray, display: np.ndarray, colormap: int = cv2.COLORMAP_TURBO,
                   buffers: dict | None = None) -> np.ndarray:
    """uint8 [H, W, 3] BGR: the usual OpenCV CAM overlay (the content fills this input, so a
    plain resize maps the CAM onto the display). With `buffers` (from opencv_buffers) every
    step writes into arrays allocated once."""
    b = buffers or {}
    resized = cv2.resize(cam, DISPLAY[::-1], dst=b.get("resized"), interpolation=cv2.INTER_LINEAR)
    levels = cv2.normalize(resized, b.get("levels"), 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)
    colours = cv2.applyColorMap(levels, colormap, dst=b.get("colours"))
    grey = cv2.cvtColor(display, cv2.COLOR_GRAY2BGR, dst=b.get("grey"))
    return cv2.addWeighted(colours, ALPHA, grey, 1.0 - ALPHA, 0.0, dst=b.get("out"))


def opencv_buffers() -> dict:
    return {
        "resized": np.empty(DISPLAY, np.float32),
        "levels": np.empty(DISPLAY, np.uint8),
        "colours": np.empty((*DISPLAY, 3), np.uint8),
        "grey": np.empty((*DISPLAY, 3), np.uint8),
        "out": np.empty((*DISPLAY, 3), np.uint8),
    }








def report(title: str, results: dict, labels: dict, baseline: str, markdown: list) -> None:
    median = {name: float(np.median(t)) for name, t in results.items()}
    p95 = {name: float(np.percentile(t, 95)) for name, t in results.items()}
    print(title)
    for name, label in labels.items():
        ratio = median[baseline] / median[name]
        print(f"  {label:<60} median {median[name]:8.3f} ms   p95 {p95[name]:8.3f} ms   "
              f"{baseline} / this {ratio:6.1f}x   (n={len(results[name])})")
    markdown.append(f"\n{title}\n\n| variant | median (ms) | p95 (ms) | {baseline} / this |\n| --- | ---: | ---: | ---: |")
    for name, label in labels.items():
        markdown.append(f"| {label} | {median[name]:.3f} | {p95[name]:.3f} | {median[baseline] / median[name]:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the radedge ops (0: default)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds spent measuring each variant")
    args = parser.parse_args()
    threads = resolved_threads(args.threads)
    # The same thread count on both sides; on a loaded machine OpenCV's own thread pool,
    # left at its default, waits on busy cores and the comparison measures the load.
    cv2.setNumThreads(threads)
    print(f"CPU      {cpu_model()}")
    print(f"cores    {os.cpu_count()} logical; radedge threads {threads}; OpenCV threads {cv2.getNumThreads()}")
    print(f"software numpy {np.__version__}, OpenCV {cv2.__version__}, radedge._kernels {kernels().build_info()['version']}")
    print()
    markdown: list = []

    # --- heatmap peaks ---
    maps = heatmaps()
    geometry = resize_geometry(*PEAKS_SOURCE, PEAKS_SPEC)
    rows, columns = content_cells(geometry, PEAKS_SPEC.width, GRID)
    mask = np.zeros((GRID, GRID), bool)
    mask[rows, columns] = True
    common = dict(input_size=PEAKS_SPEC, threads=threads)
    results = measure(
        {
            "numpy": lambda: numpy_peaks(maps, geometry, mask, rows, columns),
            "radedge": lambda: find_peaks(maps, geometry, threshold=THRESHOLD, k=K, **common),
            "numpy argmax": lambda: numpy_argmax(maps, geometry, rows, columns),
            "radedge argmax": lambda: find_argmax(maps, geometry, **common),
        },
        args.seconds,
    )
    peaks = find_peaks(maps, geometry, threshold=THRESHOLD, k=K, **common)
    expected = numpy_peaks(maps, geometry, mask, rows, columns)
    difference = max(float(np.abs(peaks.points(0, c) - expected[c]).max()) for c in range(5))
    argmax = find_argmax(maps, geometry, **common)
    argmax_difference = max(float(np.abs(argmax.points(0, c) - e).max())
                            for c, e in enumerate(numpy_argmax(maps, geometry, rows, columns)))
    print(f"input    heatmaps [1, 5, {GRID}, {GRID}] float32 over a {PEAKS_SPEC.height} x {PEAKS_SPEC.width} input "
          f"({PEAKS_SOURCE[0]} x {PEAKS_SOURCE[1]} source, letterbox); peaks per channel: "
          f"{peaks.valid[0].tolist()} (k = {K}, threshold {THRESHOLD})")
    report(
        "Heatmap peaks, [1, 5, 256, 256] float32",
        {"numpy": results["numpy"], "radedge": results["radedge"]},
        {"numpy": "numpy + OpenCV (cv2.dilate, np.nonzero, sort, fit)", "radedge": f"radedge find_peaks ({threads} threads)"},
        "numpy",
        markdown,
    )
    report(
        "Heatmap argmax, [1, 5, 256, 256] float32",
        {"numpy": results["numpy argmax"], "radedge": results["radedge argmax"]},
        {"numpy": "numpy (np.argmax, fit)", "radedge": f"radedge find_argmax ({threads} threads)"},
        "numpy",
        markdown,
    )
    print(f"  largest difference from numpy: peaks {difference:.2e}, argmax {argmax_difference:.2e} "
          f"(source pixels or score)   within 1e-3: {'yes' if max(difference, argmax_difference) <= 1e-3 else 'NO'}")
    print()

    # --- CAM overlay ---
    rng = np.random.default_rng(7)
    display = cv2.GaussianBlur(rng.integers(0, 256, DISPLAY, dtype=np.uint8), (0, 0), 3)
    cam_geometry = resize_geometry(*CAM_SOURCE, CAM_SPEC)
    out = np.empty((*DISPLAY, 3), np.uint8)
    buffers = opencv_buffers()
    for size in (16, 32):
        yy, xx = np.mgrid[0:size, 0:size] + 0.5
        cam = (np.exp(-((xx - 0.6 * size) ** 2 + (yy - 0.4 * size) ** 2) / (2 * (size / 6) ** 2))
               + rng.normal(0, 0.05, (size, size))).astype(np.float32)
        arguments = dict(input_size=CAM_SPEC, alpha=ALPHA, threads=threads)
        results = measure(
            {
                "OpenCV new": lambda: opencv_overlay(cam, display),
                "OpenCV": lambda: opencv_overlay(cam, display, buffers=buffers),
                "new": lambda: overlay_cam(cam, display, cam_geometry, **arguments),
                "out": lambda: overlay_cam(cam, display, cam_geometry, out=out, **arguments),
            },
            args.seconds,
        )
        report(
            f"CAM overlay, {size} x {size} float32 CAM onto a {DISPLAY[0]} x {DISPLAY[1]} display",
            results,
            {
                "OpenCV new": "OpenCV chain, new arrays (resize, normalize, applyColorMap, cvtColor, addWeighted)",
                "OpenCV": "OpenCV chain, preallocated (dst=)",
                "new": f"radedge overlay_cam, new array ({threads} threads)",
                "out": f"radedge overlay_cam, into out ({threads} threads)",
            },
            "OpenCV",
            markdown,
        )
        assert np.array_equal(opencv_overlay(cam, display, buffers=buffers), opencv_overlay(cam, display))
        ours = overlay_cam(cam, display, cam_geometry, colormap="jet", **arguments)
        # OpenCV's jet table and radedge's differ by one level in 148 of their 256 entries;
        # OpenCV given radedge's table (as BGR) isolates what the two pipelines compute.
        radedge_jet = np.ascontiguousarray(colormap_table("jet")[:, ::-1].reshape(256, 1, 3))
        for name, table in (("OpenCV's jet", cv2.COLORMAP_JET), ("radedge's jet", radedge_jet)):
            levels = np.abs(ours.astype(int) - opencv_overlay(cam, display, table)[..., ::-1].astype(int))
            print(f"  |radedge - OpenCV chain| with {name} in cv2.applyColorMap: max {levels.max()} levels; "
                  f"pixels differing: {int((levels > 0).any(axis=2).sum())}, by more than 1: "
                  f"{int((levels > 1).any(axis=2).sum())} of {levels.shape[0] * levels.shape[1]}")
        print()

    print("Markdown for docs/performance.md:")
    print("\n".join(markdown))


if __name__ == "__main__":
    main()
