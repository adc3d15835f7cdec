"""``radedge bench``: from the command line's options to the figures, the files and the table."""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._terminal import terminal_print
from ..errors import RadedgeError
from .baseline import OPENCV_HINT, opencv_missing
from .checks import warnings_for
from .machine import describe_machine, load_at_start
from .progress import Progress
from .report import text_report, write_html, write_json
from . import DEFAULT_ROUNDS, QUICK_ROUNDS
from .runner import (
    Benchmark,
    BenchOptions,
    examples_folder,
    gather_inputs,
    model_records,
    settings,
)


class BenchUsageError(Exception):
    """A mistake in the command line or a device this radedge cannot run on: one line, exit status 2."""


def cuda_refusal() -> str | None:
    """Why ``--device cuda`` cannot run here, or None when it can: it needs an inference backend
    that runs on CUDA and a CUDA device the native ops can use."""
    from .._native import kernels
    from ..backends import BACKENDS, Backend

    devices = {}
    for name in BACKENDS:
        module = importlib.import_module(f"radedge.backends.{name}")
        classes = [value for value in vars(module).values()
                   if isinstance(value, type) and issubclass(value, Backend) and value.name == name]
        devices[name] = classes[0].device if classes else "unknown"
    reasons = []
    if "cuda" not in devices.values():
        listed = ", ".join(f"{name} runs on {device}" for name, device in devices.items())
        reasons.append(f"no inference backend of this radedge runs models on CUDA ({listed}; "
                       f"radedge.load_models(backend=...) accepts {', '.join(BACKENDS)})")
    count, why = kernels().cuda_device_count()
    if count == 0:
        reasons.append(f"no CUDA device is usable by radedge's native ops ({why})")
    return "; ".join(reasons) or None


def options_from(args: argparse.Namespace) -> BenchOptions:
    rounds = args.rounds if args.rounds is not None else (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    if rounds < 1:
        raise BenchUsageError(f"--rounds {rounds}: give at least 1 warm round per input")
    if args.concurrency < 1:
        raise BenchUsageError(f"--concurrency {args.concurrency}: give at least 1 thread")
    if args.threads < 0:
        raise BenchUsageError(f"--threads {args.threads}: give a thread count, or 0 for all cores")
    if args.baseline and opencv_missing():
        raise BenchUsageError("--baseline runs the research pipeline on OpenCV, and no cv2 module is "
                              f"installed: {OPENCV_HINT}. radedge bench without --baseline needs no OpenCV")
    if args.device == "cuda":
        why = cuda_refusal()
        if why is not None:
            raise BenchUsageError(f"--device cuda cannot run here: {why}. Benchmark on the CPU with --device cpu")
    return BenchOptions(models=args.model, precision=args.precision, device=args.device, rounds=rounds,
                        concurrency=args.concurrency, threads=args.threads, baseline=args.baseline,
                        quick=args.quick)


def input_paths(given: list[str] | None) -> list[str]:
    """The paths to benchmark: those given, else the examples of a source checkout."""
    if given:
        missing = [path for path in given if not Path(path).exists()]
        if missing:
            raise BenchUsageError(f"--inputs {missing[0]}: no such file or folder; name DICOM files or folders of them")
        return given
    examples = examples_folder()
    if examples is None:
        raise BenchUsageError("no inputs given, and this installation carries no examples (they come with a source "
                              "checkout of radedge, in examples/); name DICOM files or folders with --inputs PATH")
    return [str(examples)]


def run_bench(options: BenchOptions, paths: list[str], out: Path, command: str) -> int:
    """Measure ``paths`` as ``options`` say, write ``out/bench.json`` and ``out/bench.html``, print
    the table. Exit status 0; 1 when an input could not be measured; 2 when the inputs cannot
    be read or the models do not load."""
    from ..pipeline import load_models

    try:
        inputs = gather_inputs(paths)
    except OSError as exc:
        terminal_print(f"radedge: cannot read an input: {exc}", file=sys.stderr)
        return 2
    if not inputs:
        terminal_print(f"radedge: no image files under {', '.join(paths)}; name DICOM files or folders of them",
                       file=sys.stderr)
        return 2
    progress = Progress()
    progress.phase("machine: load before the start", 1)
    load = load_at_start()
    progress.step()
    progress.phase("loading models", 1)
    try:
        models = load_models(options.models, precision=options.precision, threads=options.threads)
    except RadedgeError as exc:
        progress.done()
        terminal_print(f"radedge: cannot load the model: {exc}", file=sys.stderr)
        return 2
    progress.step()
    document: dict[str, Any] = {
        "format": "radedge-bench/1",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": describe_machine(),
        "load_at_start": load,
        "settings": settings(options),
        "models": model_records(models),
    }
    document.update(Benchmark(models, inputs, options, progress).run())
    document["warnings"] = warnings_for(document)
    try:
        written = [write_json(document, out), write_html(document, out)]
    except OSError as exc:
        terminal_print(f"radedge: cannot write the report into {out}: {exc}", file=sys.stderr)
        return 2
    for line in text_report(document):
        terminal_print(line)
    terminal_print(f"wrote {', '.join(str(path) for path in written)}")
    return 1 if document["errors"] else 0
