"""Shared test set-up: marks that skip with a reason where the hardware or a tool is missing."""

from __future__ import annotations

import importlib.util
import shutil

import pytest


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
