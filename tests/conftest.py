"""Shared test set-up: marks that skip with a reason where the hardware or a tool is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def _load_kernels_override() -> None:
    """RADEDGE_TEST_KERNELS: run the suite against another build of the native module (see
    tests/kernels_override/sitecustomize.py)."""
    if not os.environ.get("RADEDGE_TEST_KERNELS"):
        return
    spec = importlib.util.spec_from_file_location(
        "radedge_tests_kernels_override", os.path.join(os.path.dirname(__file__), "kernels_override", "sitecustomize.py")
    )
    override = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(override)  # loads the module as radedge._kernels


_load_kernels_override()


def _cuda_unavailable_reason() -> str | None:
    from radedge._native import kernels

    count, why = kernels().cuda_device_count()
    return None if count > 0 else f"no CUDA device: {why}"


def pytest_collection_modifyitems(config, items):
    cuda_reason = None
    cuda_checked = False
    for item in items:
        if "needs_cuda" in item.keywords:
            if not cuda_checked:
                cuda_reason = _cuda_unavailable_reason()
                cuda_checked = True
            if cuda_reason:
                item.add_marker(pytest.mark.skip(reason=cuda_reason))
        if "needs_torch" in item.keywords and importlib.util.find_spec("torch") is None:
            item.add_marker(pytest.mark.skip(reason="PyTorch is not installed (pip install radedge[export])"))
        if "needs_dcmtk" in item.keywords and shutil.which("dcmdump") is None:
            item.add_marker(pytest.mark.skip(reason="dcmtk is not installed (apt-get install dcmtk)"))


def pytest_configure(config):
    # An exception in a thread a test started is only a warning to pytest, so a test whose
    # workers all fail would pass; as an error it fails the test that started the thread.
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")
