"""``import radedge`` stays cheap: no torch, no tensorrt, no ONNX Runtime until a model loads, no
cryptography until a signature is made or checked."""

from __future__ import annotations

import subprocess
import sys


def test_import_radedge_loads_no_heavy_runtime():
    code = (
        "import sys, radedge, radedge.bundle, radedge.pipeline, radedge.cli\n"
        "heavy = [m for m in ('torch', 'tensorrt', 'onnxruntime', 'pycuda', 'cupy', 'cryptography')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
