"""RADEDGE_TEST_KERNELS=path/to/_kernels*.so makes this Python process use that build of
radedge's native module instead of the installed one.

`make test-cuda-emulated` puts this directory on PYTHONPATH, so that the test process and every
Python subprocess a test starts (the examples, the CLI) load the build whose CUDA ops run on the
CPU emulator (kernels/emulation); tests/conftest.py applies it too when only the variable is set.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def load_kernels_override() -> str | None:
    """Put the module named by RADEDGE_TEST_KERNELS in sys.modules as radedge._kernels; returns
    its path, or None when the variable is unset."""
    path = os.environ.get("RADEDGE_TEST_KERNELS")
    if not path:
        return None
    loaded = sys.modules.get("radedge._kernels")
    if loaded is not None and os.path.samefile(getattr(loaded, "__file__", ""), path):
        return path
    spec = importlib.util.spec_from_file_location("radedge._kernels", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"RADEDGE_TEST_KERNELS={path} is not a loadable extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["radedge._kernels"] = module
    return path


load_kernels_override()
