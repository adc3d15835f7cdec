"""The version of a radedge build: the release in ``sdk/radedge/__init__.py`` plus a local label
that names what the native module was built with, ``+cpu`` or ``+cu<CUDA major>`` (``0.1.0+cpu``,
``0.1.0+cu13``), so the CPU and the CUDA wheel of one release never share a file name.

scikit-build-core asks this module for the version before CMake runs, so the label is a
prediction: ``RADEDGE_WHEEL_VARIANT`` (``cpu``, ``cu13``) when set; else ``cpu`` when CUDA is
turned off (``RADEDGE_CUDA=OFF`` in ``SKBUILD_CMAKE_DEFINE``, ``SKBUILD_CMAKE_ARGS`` or
``CMAKE_ARGS``) or no ``nvcc`` is found (``CUDACXX``, then ``PATH``); else the major version that
``nvcc --version`` reports. CMakeLists.txt reads the label back and refuses to build a module
that does not match it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_RELEASE = re.compile(r'^__version__ = "(?P<release>[0-9]+(?:\.[0-9]+)*)"$', re.MULTILINE)
_VARIANT = re.compile(r"^(cpu|cu[0-9]+)$")
_CUDA_OFF = re.compile(r"(?:^|[;\s])(?:-D)?RADEDGE_CUDA(?::BOOL)?=(?:OFF|0|FALSE|NO)(?:$|[;\s])", re.IGNORECASE)


def release(root: Path) -> str:
    """The release number written once, as ``__version__`` in ``sdk/radedge/__init__.py``."""
    source = root / "sdk" / "radedge" / "__init__.py"
    found = _RELEASE.search(source.read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError(f'{source} has no line __version__ = "X.Y.Z"; the wheel version is read from it')
    return found["release"]


def variant(environ: Mapping[str, str]) -> str:
    """``cpu`` or ``cu<major>``: what the native module of this build will be compiled with."""
    chosen = environ.get("RADEDGE_WHEEL_VARIANT", "").strip()
    if chosen:
        if not _VARIANT.match(chosen):
            raise RuntimeError(f"RADEDGE_WHEEL_VARIANT={chosen!r}: expected 'cpu' or 'cu' and a CUDA major version, e.g. 'cu13'")
        return chosen
    if any(_CUDA_OFF.search(environ.get(name, "")) for name in ("SKBUILD_CMAKE_DEFINE", "SKBUILD_CMAKE_ARGS", "CMAKE_ARGS")):
        return "cpu"
    nvcc = environ.get("CUDACXX") or shutil.which("nvcc", path=environ.get("PATH"))
    if not nvcc:
        return "cpu"
    try:
        reported = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"{nvcc} --version failed ({exc}); fix the CUDA install or set RADEDGE_WHEEL_VARIANT=cpu") from exc
    major = re.search(r"release ([0-9]+)\.", reported)
    if major is None:
        raise RuntimeError(f"{nvcc} --version names no release; set RADEDGE_WHEEL_VARIANT (cpu, cu13) explicitly")
    return f"cu{major[1]}"


def dynamic_metadata(field: str, settings: Mapping[str, Any] | None = None) -> str:
    """scikit-build-core's metadata provider hook: the ``version`` field."""
    if field != "version":
        raise RuntimeError(f"radedge_version provides only the version, not {field!r}")
    if settings:
        raise RuntimeError(f"radedge_version takes no settings, got {sorted(settings)}")
    return f"{release(Path.cwd())}+{variant(os.environ)}"
