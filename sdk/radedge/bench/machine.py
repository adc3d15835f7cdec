"""What a benchmark ran on, and how busy the machine was when it started."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions shape the figures, as pip names them.
PACKAGES = ("radedge", "onnxruntime", "numpy", "pydicom", "opencv-python-headless", "opencv-python",
            "pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "pyjpegls", "imagecodecs", "highdicom")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else every logical core."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def versions() -> dict[str, str | None]:
    """Each of ``PACKAGES``' installed version, None where it is not installed."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    try:
        import cv2

        found["opencv (cv2)"] = cv2.__version__
    except ImportError:
        found["opencv (cv2)"] = None
    return found


def gpus() -> dict[str, Any]:
    """What radedge's native module says about CUDA, and nvidia-smi's GPUs and driver where it is installed."""
    from .._native import kernels

    native = kernels()
    count, why = native.cuda_device_count()
    info = native.build_info()
    found: dict[str, Any] = {
        "native_built_with_cuda": bool(info["cuda"]),
        "cuda_devices": count,
        "cuda_why_none": why if count == 0 else None,
        "nvidia_smi": None,
    }
    if shutil.which("nvidia-smi"):
        try:
            result = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20,
            )
            found["nvidia_smi"] = [line.strip() for line in result.stdout.splitlines() if line.strip()] or \
                [f"nvidia-smi exited {result.returncode}: {result.stderr.strip()[:200]}"]
        except (OSError, subprocess.SubprocessError) as exc:
            found["nvidia_smi"] = [f"nvidia-smi did not answer ({type(exc).__name__})"]
    return found


def describe_machine() -> dict[str, Any]:
    """The hardware and software a benchmark ran on."""
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": memory_gib(),
        "gpu": gpus(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions(),
    }


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, None where there is none."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(value) for value in fields]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    # Fields 9 and 10 (guest, guest_nice) are counted in user and nice already.
    total = sum(values[:8])
    return total - idle, total


def load_at_start(sample_s: float = 0.5) -> dict[str, Any]:
    """How busy the machine is before the benchmark does anything: the load averages
    (/proc/loadavg) and the share of all cores other processes keep busy over ``sample_s``
    seconds (/proc/stat, this process sleeping meanwhile). None where the system has neither."""
    try:
        one, five, fifteen = (float(value) for value in Path("/proc/loadavg").read_text().split()[:3])
        averages = {"1min": one, "5min": five, "15min": fifteen}
    except (OSError, ValueError):
        averages = None
    before = _cpu_times()
    busy = None
    if before is not None:
        time.sleep(sample_s)
        after = _cpu_times()
        if after is not None and after[1] > before[1]:
            busy = round((after[0] - before[0]) / (after[1] - before[1]), 3)
    return {"loadavg": averages, "busy_fraction": busy, "sampled_s": sample_s if busy is not None else None,
            "cores": usable_cores()}
