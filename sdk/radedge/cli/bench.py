"""``radedge bench``: latency on this machine, from DICOM bytes to flags and outputs."""

from __future__ import annotations

import argparse
import shlex

from ..bench import DEFAULT_ROUNDS, QUICK_ROUNDS
from .._terminal import ExitStatus
from ..errors import RadedgeError
from ..spec.precision import PRECISIONS
from ._common import Console, OutputError, add_common_options, output_folder


def add_parser(commands) -> None:
    bench = commands.add_parser(
        "bench", help="latency on this machine: cold start, each stage from DICOM bytes to flags and outputs, "
                      "concurrency, against the pydicom + OpenCV + ONNX Runtime pipeline",
        description="Measure the models on this machine and write DIR/bench.json (every figure, raw samples "
                    "included) and DIR/bench.html (tables and charts, self-contained); print a summary.",
    )
    bench.add_argument("--model", action="append", default=None, metavar="BUNDLE",
                       help="bundle directory or .radedge file; repeat for several (default: every bundled model)")
    bench.add_argument("--inputs", nargs="+", action="extend", default=None, metavar="PATH",
                       help="DICOM files or folders of them (default: examples/ of a source checkout, the images "
                            "make demo runs)")
    bench.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                       help="where the models run (default cpu); cuda exits 4 saying why where it cannot run")
    bench.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="which of each bundle's models to run (default: the bundle's default, fp32)")
    bench.add_argument("--rounds", type=int, default=None, metavar="N",
                       help=f"warm rounds per input after one warm-up round (default {DEFAULT_ROUNDS}; "
                            f"{QUICK_ROUNDS} with --quick); p90 needs 10, p99 100, p99.9 1000")
    bench.add_argument("--concurrency", type=int, default=1, metavar="K",
                       help="also run 2, 4... up to K threads calling predict at once (default 1)")
    bench.add_argument("--threads", type=int, default=0, help="CPU threads per model (0: all cores)")
    bench.add_argument("--baseline", action="store_true",
                       help="time the research pipeline (pydicom, numpy, OpenCV, ONNX Runtime on the same ONNX files) "
                            "in the same rounds and print the ratios")
    bench.add_argument("--out", default="radedge-bench", metavar="DIR",
                       help="where bench.json and bench.html go (default ./radedge-bench; created if missing)")
    bench.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds: check that it runs (tests, CI)")
    add_common_options(bench)
    bench.set_defaults(func=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    from ..bench.baseline import OPENCV_HINT, opencv_missing
    from ..bench.command import BenchUsageError, cuda_refusal, input_paths, options_from, run_bench

    console = Console(args)
    try:
        # Everything that can refuse the command line comes before the output folder is made.
        options = options_from(args)
        paths = input_paths(args.inputs)
    except BenchUsageError as exc:
        console.error(f"radedge: {exc}")
        return ExitStatus.USAGE
    why = cuda_refusal() if args.device == "cuda" else None
    if why is not None:
        console.error(f"radedge: --device cuda cannot run here: {why}. Benchmark on the CPU with --device cpu")
        return ExitStatus.DEPENDENCY
    if args.baseline and opencv_missing():
        console.error(f"radedge: --baseline runs the research pipeline on OpenCV, and no cv2 module is installed: "
                      f"{OPENCV_HINT}. radedge bench without --baseline needs no OpenCV")
        return ExitStatus.DEPENDENCY
    try:
        out = output_folder(args.out)
    except OutputError as exc:
        console.error(f"radedge: {exc}")
        return ExitStatus.OUTPUT
    try:
        return run_bench(options, paths, out, shlex.join(["radedge", *args.argv]), show_progress=not args.quiet)
    except RadedgeError as exc:
        return console.fail(exc, "cannot load the model: ")
