"""What the result objects cost: splitting a 3000 x 3000 lesion mask into connected regions,
and the size of a pickled result.

    .venv/bin/python examples/bench_results.py [--seconds S] [--threads N]

1. Regions. One float32 [1, 1, 512, 512] logit map of a 512 x 512 letterboxed input holding a
   3000 x 3000 radiograph, with three lesions, is decoded by the native mask decode op into a
   uint8 3000 x 3000 mask with per-label statistics (the peer, measured in the same rounds);
   ``radedge.heads.regions.connected_components`` then splits it into its lesions. Also timed:
   the same on a mask with 200 small lesions, and on uniform noise (every other pixel set:
   the worst case, millions of runs; no model's mask looks like it).
2. Sizes. Every example image through every bundled model (``load_models().predict``): the
   pickled ``ImageAnalysis`` and its JSON, beside the decoded image's bytes, which are no
   longer pickled.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path

import numpy as np
from benchlib import cpu_model, measure, resolved_threads

import radedge
from radedge.heads.regions import connected_components
from radedge.ops.mask_decode import decode_mask
from radedge.ops.preprocess import resize_geometry
from radedge.spec import PreprocessSpec

EXAMPLES = Path(__file__).resolve().parent


def _logits(lesions: list[tuple[float, float, float]], size: int = 512) -> np.ndarray:
    """Logits over the model input: positive inside discs (centre x, y and radius in input pixels)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    logits = np.full((size, size), -8.0, np.float32)
    for cx, cy, radius in lesions:
        logits = np.maximum(logits, 8.0 * (1.0 - np.hypot(xx - cx, yy - cy) / radius))
    return np.ascontiguousarray(logits[None, None], dtype=np.float32)


def regions(seconds: float, threads: int) -> None:
    geometry = resize_geometry(3000, 3000, PreprocessSpec(512, 512, resize="letterbox"))
    rng = np.random.default_rng(0)
    cases = {
        "3 lesions": _logits([(140, 150, 50), (340, 360, 85), (256, 70, 20)]),
        "200 small discs": _logits([(x, y, 5.0) for x, y in rng.uniform(20, 492, size=(200, 2))]),
    }
    print(f"\n1. Regions of a 3000 x 3000 mask ({seconds:.0f} s per variant)")
    print("| mask | regions | mask decode op (ms) | connected regions (ms) | / op |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, logits in cases.items():
        decoded = decode_mask(logits, geometry, activation="sigmoid", thresholds=0.5, threads=threads)
        mask = decoded.mask
        window = decoded.labels[0].bbox
        times = measure({
            "op": lambda: decode_mask(logits, geometry, activation="sigmoid", thresholds=0.5, threads=threads),
            "regions": lambda: connected_components(mask, window),
        }, seconds)
        found = len(connected_components(mask, window))
        op, split = np.median(times["op"]), np.median(times["regions"])
        print(f"| {name} | {found} | {op:.1f} | {split:.1f} | {split / op:.2f}x |")
    noise = np.zeros((3000, 3000), np.uint8)
    noise[:, ::2] = 1
    noise[1::2] = 1 - noise[1::2]  # a checkerboard: every pixel its own run, all joined diagonally
    times = measure({"regions": lambda: connected_components(noise)}, seconds, rounds=2, warmup=1, min_runs=2)
    print(f"| checkerboard (worst case) | {len(connected_components(noise))} | - | "
          f"{np.median(times['regions']):.1f} | - |")


def sizes(threads: int) -> None:
    models = radedge.load_models(threads=threads)
    print("\n2. Sizes of a result, every bundled model on each example")
    print("| image | decoded image (MB) | pickled ImageAnalysis (kB) | JSON (kB) |")
    print("| --- | ---: | ---: | ---: |")
    for path in sorted(EXAMPLES.rglob("*.dcm")):
        analysis = models.predict(path)
        display = analysis._display
        image_bytes = 0 if display is None else display.pixels.nbytes + display.table.nbytes
        pickled = len(pickle.dumps(analysis))
        document = len(analysis.to_json().encode())
        print(f"| {path.relative_to(EXAMPLES)} | {image_bytes / 1e6:.1f} | {pickled / 1e3:.1f} "
              f"| {document / 1e3:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    threads = resolved_threads(args.threads)
    print(f"CPU      {cpu_model()}")
    print(f"cores    {os.cpu_count()} logical; radedge threads {threads}; numpy {np.__version__}")
    regions(args.seconds, threads)
    sizes(threads)


if __name__ == "__main__":
    main()
