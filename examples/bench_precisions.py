"""Inference latency of each bundled model in each precision it carries, on ONNX Runtime's CPU
provider, with FP32 as the baseline measured in the same run.

    python examples/bench_precisions.py [--seconds 3] [--threads 0]

Times ``backend.run`` alone (the network, no pre- or post-processing) on one preprocessed
example image per model, the precisions taking turns (``benchlib.measure``). On a CPU the
reduced precisions are expected to be no faster: ONNX Runtime upcasts FP16 nodes it has no
kernel for, and Q/DQ graphs run quantize/dequantize around its int8 kernels. They are there for
the GPU; this prints what they cost where they are only gated.
"""

from __future__ import annotations

import argparse

import numpy as np
from benchlib import cpu_model, measure, resolved_threads

from radedge.bundle import bundled_bundle_paths, load_bundle
from radedge.pipeline import load_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per model and precision")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    args = parser.parse_args(argv)
    threads = resolved_threads(args.threads)
    print(f"ONNX Runtime CPU provider, {threads} thread(s), {cpu_model()}")
    print(f"{'model':<15}{'precision':<10}{'median ms':>10}{'p95 ms':>9}{'vs fp32':>9}")
    rng = np.random.default_rng(0)
    for path in bundled_bundle_paths():
        manifest = load_bundle(path).manifest
        image = rng.normal(0.0, 1.0, size=manifest.input_shape).astype(np.float32)
        runs = {}
        for precision in manifest.precisions:
            backend = load_model(path, precision=precision, threads=args.threads, warm_up=False).backend
            runs[precision] = lambda backend=backend: backend.run({manifest.input_name: image})
        times = measure(runs, args.seconds)
        baseline = float(np.median(times["fp32"]))
        for precision, values in times.items():
            median = float(np.median(values))
            print(f"{manifest.model_id:<15}{precision:<10}{median:>10.2f}{np.percentile(values, 95):>9.2f}"
                  f"{median / baseline:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
