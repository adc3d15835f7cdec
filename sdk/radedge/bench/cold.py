"""Cold start: a fresh process, from the moment it is started to its models loaded and to the
first image's flags, as a console sees it after a reboot or an update.

``cold_start`` starts ``python -m radedge.bench.cold`` with the time it started it; the child
measures each step itself and prints one JSON line:

- ``process_start_ms``: from the parent starting the child to the child's first line of
  benchmark code (the interpreter starting, ``import radedge``), on the wall clock, the one
  clock both processes share;
- ``import_ms``: importing the pipeline;
- ``load_ms``: ``load_models``: bundles read and verified, one ONNX Runtime session per model
  created, each warmed up on a blank input as radedge does by default;
- ``first_flag_ms``: the first image, read from its file, through every model that applies;
- ``to_models_loaded_ms`` and ``to_first_flag_ms``: from the start of the process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cold_start(path: Path, *, models: Sequence[str] | None, precision: str | None, threads: int,
               timeout_s: float = 300.0) -> dict[str, Any]:
    """Start a fresh process that loads ``models`` (None: the bundled ones) and flags ``path``;
    its figures (module docstring), or ``{"error": why}``."""
    command = [sys.executable, "-m", "radedge.bench.cold", "--threads", str(threads)]
    for model in models or ():
        command += ["--model", str(model)]
    if precision is not None:
        command += ["--precision", precision]
    started = time.time()
    command += ["--started-at", repr(started), str(path)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"the cold-start process did not flag the image within {timeout_s:g} s"}
    wall_ms = (time.time() - started) * 1e3
    lines = result.stdout.strip().splitlines()
    try:
        figures = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        figures = {}
    if result.returncode != 0 or "error" in figures or not figures:
        why = figures.get("error") or (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the cold-start process exited {result.returncode}: {why}"}
    figures["process_wall_ms"] = wall_ms
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    entered = time.time()
    clock = time.perf_counter()
    parser = argparse.ArgumentParser(prog="python -m radedge.bench.cold")
    parser.add_argument("path")
    parser.add_argument("--started-at", type=float, required=True, help="time.time() when the parent started us")
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    process_start_ms = (entered - args.started_at) * 1e3
    try:
        from radedge.errors import RadedgeError
        from radedge.pipeline import load_models

        imported = time.perf_counter()
        models = load_models(args.model, precision=args.precision, threads=args.threads)
        loaded = time.perf_counter()
        analysis = models.predict(Path(args.path))
        flagged = time.perf_counter()
    except (RadedgeError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    import_ms = (imported - clock) * 1e3
    load_ms = (loaded - imported) * 1e3
    first_flag_ms = (flagged - loaded) * 1e3
    print(json.dumps({
        "process_start_ms": process_start_ms,
        "import_ms": import_ms,
        "load_ms": load_ms,
        "first_flag_ms": first_flag_ms,
        "to_models_loaded_ms": process_start_ms + import_ms + load_ms,
        "to_first_flag_ms": process_start_ms + import_ms + load_ms + first_flag_ms,
        "models": [model.model_id for model in models],
        "flags": [flag.code for flag in analysis.flags],
        "timings_ms": analysis.timings_ms,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
