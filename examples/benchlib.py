"""What the benchmark scripts share: interleaved timing, the CPU's name, radedge's thread count, and
loading another build of the native module to time beside this one (``--baseline``).

Imported by the scripts in this folder (`python examples/bench_*.py` puts the folder on the path).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import time
from types import ModuleType

import numpy as np
from radedge._native import kernels
from radedge.bench.machine import cpu_model  # noqa: F401  (re-exported for the scripts here)


def measure(variants: dict, seconds: float, rounds: int = 8, warmup: int = 3, min_runs: int = 10) -> dict:
    """Wall times in ms (float64[n] per variant) of each variant's `run()`, about `seconds`
    each and at least `min_runs` runs.

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
            while time.perf_counter() < deadline or len(times[name]) < (round_index + 1) * min_runs // rounds:
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: np.asarray(t) for name, t in times.items()}


def resolved_threads(threads: int) -> int:
    """The count radedge uses for `threads` (0: RADEDGE_NUM_THREADS, else all hardware threads)."""
    if threads > 0:
        return threads
    env = os.environ.get("RADEDGE_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return int(kernels().build_info()["hardware_threads"]) or 1


def load_build(path: str) -> ModuleType:
    """Another build of radedge._kernels (e.g. of an earlier commit), loaded beside the installed one.

    Both register the same pybind11 classes (radedge.cuda's), which one process refuses unless the
    other build has a pybind11 registry of its own: build it with
    ``-DCMAKE_CXX_FLAGS='-DPYBIND11_STDLIB=\\"_radedge_baseline\\"'`` (docs/performance.md).
    """
    loader = importlib.machinery.ExtensionFileLoader("_kernels", path)
    spec = importlib.util.spec_from_loader("_kernels", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
