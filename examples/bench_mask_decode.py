"""Mask decode benchmark: radedge's op against the numpy + OpenCV chains it replaces.

    .venv/bin/python examples/bench_mask_decode.py [--threads N] [--seconds S] [--baseline PATH]

One float32 [1, 1, 512, 512] segmentation logit map (a 512 x 512 model input holding a
3000 x 3000 radiograph) becomes a uint8 3000 x 3000 lesion mask, several ways, timed in
this process:

1. memset       filling a preallocated 3000 x 3000 uint8 array: the floor for any op that
                writes the mask once;
2. chain        cv2.resize(logits, INTER_LINEAR) to 3000 x 3000, sigmoid, >= 0.5: what a
                post-processing script usually does;
3. resize+thr   cv2.resize(logits, INTER_LINEAR), then compare the logits with
                logit(0.5) (no sigmoid);
4. warpAffine   the path radedge used before this op: cv2.warpAffine through the inverse
                letterbox map, then the logit threshold;
5. radedge      radedge.ops.mask_decode.decode_mask into a preallocated mask, with per-label
                statistics (pixel count, bounding box, centroid, area); and the same with
                run-length encoding, and allocating a new mask each call; and to a 1 x 1
                mask, which leaves only the op's pass over the logits (NaN check and the
                label of each logit), a cost that does not depend on the output size.

With --baseline PATH (another build of radedge/_kernels*.so, e.g. of an earlier commit), that
build's op and this build's are called directly (``mask_decode_cpu``, without decode_mask's
Python around them) in the same rounds, into preallocated masks with statistics as in 5., so a
change to the op can be checked for speed and for a bit-identical mask under the same machine load.

The chains give only the mask: statistics would cost them another full pass. The script
checks that the op's mask matches the chain's (pixels may differ only where the
interpolated logit is within rounding of the threshold), prints the hardware, medians and
95th percentiles, the ratios, and a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
from types import ModuleType

import cv2
import numpy as np

from benchlib import cpu_model, load_build, measure, resolved_threads
from radedge._native import kernels
from radedge.ops.mask_decode import decode_mask
from radedge.ops.preprocess import PreprocessSpec, ResizeGeometry, resize_geometry

SOURCE = 3000
INPUT = LOGITS = 512
THRESHOLD = 0.5
SPACING_MM = (0.143, 0.143)


def lesion_logits(seed: int = 20261122) -> np.ndarray:
    """float32 [1, 1, 512, 512]: a background near -6 and two lesion-like blobs whose
    logits reach +6, with some noise, as a segmentation head gives them."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:LOGITS, 0:LOGITS].astype(np.float32)
    plane = np.full((LOGITS, LOGITS), -6.0, np.float32)
    for cx, cy, rx, ry in ((180, 230, 60, 90), (350, 330, 35, 30)):
        r2 = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
        plane += 12.0 * np.exp(-0.7 * r2)
    plane += rng.normal(0.0, 0.4, plane.shape).astype(np.float32)
    return cv2.GaussianBlur(plane, (0, 0), 1.5)[None, None]


def geometry() -> ResizeGeometry:
    """A square 3000 x 3000 source letterboxed into the 512 x 512 input: content = input."""
    return resize_geometry(SOURCE, SOURCE, PreprocessSpec(INPUT, INPUT, "letterbox"))


def chain(logits: np.ndarray) -> np.ndarray:
    upsampled = cv2.resize(logits[0, 0], (SOURCE, SOURCE), interpolation=cv2.INTER_LINEAR)
    probability = 1.0 / (1.0 + np.exp(-upsampled))
    return (probability >= THRESHOLD).astype(np.uint8)


LOGIT_THRESHOLD = float(np.log(THRESHOLD / (1.0 - THRESHOLD)))


def resize_threshold(logits: np.ndarray) -> np.ndarray:
    upsampled = cv2.resize(logits[0, 0], (SOURCE, SOURCE), interpolation=cv2.INTER_LINEAR)
    return (upsampled >= LOGIT_THRESHOLD).astype(np.uint8)


def warp_threshold(logits: np.ndarray) -> np.ndarray:
    # Source pixel centre -> logit plane, as radedge's decode did with warpAffine.
    scale = INPUT / SOURCE * LOGITS / INPUT
    to_plane = np.array([[scale, 0.0, 0.5 * scale - 0.5], [0.0, scale, 0.5 * scale - 0.5]])
    upsampled = cv2.warpAffine(
        logits[0, 0], to_plane, (SOURCE, SOURCE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return (upsampled >= LOGIT_THRESHOLD).astype(np.uint8)


def native_arguments(build: ModuleType, g: ResizeGeometry, threads: int) -> dict:
    """The keyword arguments of ``build.mask_decode_cpu`` for ``g``, as that build takes the geometry:
    one ``geometry`` argument, or (builds before the one geometry type) its fields without the
    scales and with the model input size as keywords of their own."""
    common = dict(activation="sigmoid", thresholds=[THRESHOLD], row_spacing_mm=SPACING_MM[0],
                  column_spacing_mm=SPACING_MM[1], threads=threads)
    if "geometry:" in build.mask_decode_cpu.__doc__.split("\n")[0]:
        return common | {"geometry": g}
    return common | {k: v for k, v in g.as_dict().items() if k not in ("scale_y", "scale_x")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the op (0: default)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds spent measuring each variant")
    parser.add_argument("--baseline", help="path of another build of radedge/_kernels*.so to time beside this one")
    args = parser.parse_args()

    threads = resolved_threads(args.threads)
    logits = lesion_logits()
    g = geometry()
    print(f"CPU      {cpu_model()}")
    print(f"cores    {os.cpu_count()} logical; radedge threads {threads}; OpenCV threads {cv2.getNumThreads()}")
    version = kernels().build_info()["version"]
    print(f"software numpy {np.__version__}, OpenCV {cv2.__version__}, radedge._kernels {version}")
    print(f"input    float32 [1, 1, {LOGITS}, {LOGITS}] logits -> uint8 {SOURCE} x {SOURCE} mask, "
          f"sigmoid >= {THRESHOLD}")
    print()

    floor_target = np.empty((SOURCE, SOURCE), np.uint8)
    out = np.empty((SOURCE, SOURCE), np.uint8)
    options = dict(activation="sigmoid", thresholds=THRESHOLD, spacing_mm=SPACING_MM, threads=threads)
    variants = {}
    if args.baseline:
        baseline = load_build(args.baseline)
        baseline_out, native_out = np.empty_like(out), np.empty_like(out)
        baseline_arguments = native_arguments(baseline, g, threads)
        arguments = native_arguments(kernels(), g, threads)
        variants["baseline"] = lambda: baseline.mask_decode_cpu(logits, 0, baseline_out, **baseline_arguments)
        variants["native"] = lambda: kernels().mask_decode_cpu(logits, 0, native_out, **arguments)
    results = measure(
        variants | {
            "memset": lambda: floor_target.fill(0),
            "chain": lambda: chain(logits),
            "resize+thr": lambda: resize_threshold(logits),
            "warpAffine": lambda: warp_threshold(logits),
            "radedge": lambda: decode_mask(logits, g, out=out, **options),
            "radedge rle": lambda: decode_mask(logits, g, out=out, rle=True, **options),
            "radedge alloc": lambda: decode_mask(logits, g, **options),
            "logit pass": lambda: decode_mask(logits, g, output_size=(1, 1), **options),
        },
        args.seconds,
    )
    median = {name: float(np.median(t)) for name, t in results.items()}
    p95 = {name: float(np.percentile(t, 95)) for name, t in results.items()}

    result = decode_mask(logits, g, rle=True, **options)
    expected = chain(logits)
    if args.baseline:
        ours = kernels().mask_decode_cpu(logits, 0, native_out, **arguments)
        theirs = baseline.mask_decode_cpu(logits, 0, baseline_out, **baseline_arguments)
        same_bits = ours == theirs and np.array_equal(baseline_out, native_out)
        same_bits = same_bits and np.array_equal(native_out, result.mask)
    differing = int((result.mask != expected).sum())
    lesion = result.labels[0]

    labels = {
        **({"baseline": f"mask_decode_cpu of the baseline build ({args.baseline}), called directly",
            "native": f"mask_decode_cpu of this build, called directly ({threads} threads)"} if args.baseline else {}),
        "memset": "memset of the 9 MB mask (floor)",
        "chain": "cv2.resize INTER_LINEAR + sigmoid + threshold (numpy)",
        "resize+thr": "cv2.resize INTER_LINEAR + logit threshold",
        "warpAffine": "cv2.warpAffine + logit threshold (radedge's previous decode)",
        "radedge": f"radedge decode_mask + stats, into a preallocated mask ({threads} threads)",
        "radedge rle": f"radedge decode_mask + stats + RLE, preallocated ({threads} threads)",
        "radedge alloc": f"radedge decode_mask + stats, new mask each call ({threads} threads)",
        "logit pass": f"radedge decode_mask to a 1 x 1 mask: the per-logit pass alone ({threads} threads)",
    }
    for name, label in labels.items():
        print(f"{label:<78} median {median[name]:8.2f} ms   p95 {p95[name]:8.2f} ms   (n={len(results[name])})")
    print()
    chain_ratio = median["chain"] / median["radedge"]
    resize_ratio = median["resize+thr"] / median["radedge"]
    print(f"chain / radedge          {chain_ratio:6.1f}x   goal >= 10x: {'met' if chain_ratio >= 10 else 'NOT met'}")
    print(f"resize+thr / radedge     {resize_ratio:6.1f}x   goal > 1x:   {'met' if resize_ratio > 1 else 'NOT met'}")
    print(f"warpAffine / radedge     {median['warpAffine'] / median['radedge']:6.1f}x")
    print(f"chain / radedge (alloc)  {median['chain'] / median['radedge alloc']:6.1f}x")
    print(f"radedge / memset         {median['radedge'] / median['memset']:6.1f}x")
    if args.baseline:
        print(f"native / baseline        {median['native'] / median['baseline']:6.2f}x   "
              f"mask and statistics bit for bit identical: {'yes' if same_bits else 'NO'}")
    print(f"mask: {lesion.pixel_count} lesion pixels, bbox {lesion.bbox}, {result.run_count} runs "
          f"({result.runs.nbytes} bytes of RLE for a {result.mask.nbytes}-byte mask)")
    print(f"pixels that differ from the chain's mask: {differing} of {expected.size}")
    qualifies = logits[0, 0] >= LOGIT_THRESHOLD
    corners = (qualifies[:-1, :-1].astype(int) + qualifies[1:, :-1] + qualifies[:-1, 1:] + qualifies[1:, 1:])
    boundary = int(((corners > 0) & (corners < 4)).sum())
    print(f"logit cells straddling the threshold (interpolated pixel by pixel): {boundary} of {corners.size}")

    print("\nMarkdown for docs/performance.md:\n")
    print("| variant | median (ms) | p95 (ms) | this / radedge |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in labels.items():
        ratio = "" if name == "radedge" else f"{median[name] / median['radedge']:.2f}x"
        print(f"| {label} | {median[name]:.2f} | {p95[name]:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
