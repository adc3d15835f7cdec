"""A transfer syntax whose decoder is not installed: the error names the pip package.

No mocks: the test runs a real Python process whose import path is this environment's
site-packages minus the JPEG 2000 decoders: pylibjpeg-openjpeg (its ``openjpeg`` package,
its extension module and its dist-info, which is where pylibjpeg discovers the plugin's
entry points) and Pillow (installed for highdicom; pydicom decodes JPEG 2000 with it too).
In that process neither is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pydicom
import pytest

import radedge
from radedge.io import read_image

SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
SDK = Path(radedge.__file__).resolve().parents[1]

CHILD = r"""
import json, sys
sys.path[:0] = [SDK, OVERLAY]
import radedge.io
from radedge.errors import UnsupportedTransferSyntaxError
try:
    radedge.io.read_image(PATH)
except UnsupportedTransferSyntaxError as exc:
    print(json.dumps({"message": str(exc), "missing": list(exc.missing_packages),
                      "uid": exc.transfer_syntax_uid}))
else:
    print(json.dumps({"message": "decoded"}))
"""


def _without_openjpeg(overlay: Path) -> None:
    """Link every site-packages entry into ``overlay`` except pylibjpeg-openjpeg's and Pillow's."""
    overlay.mkdir()
    for entry in SITE_PACKAGES.iterdir():
        name = entry.name
        if name in ("openjpeg", "PIL", "pillow.libs") or name.endswith(".pth") \
                or name.startswith(("_openjpeg.", "pylibjpeg_openjpeg-", "pillow-")):
            continue
        (overlay / name).symlink_to(entry)


def test_missing_jpeg2000_plugin_names_pylibjpeg_openjpeg(tmp_path):
    overlay = tmp_path / "site-packages"
    _without_openjpeg(overlay)
    path = pydicom.data.get_testdata_file("MR_small_jp2klossless.dcm")
    code = CHILD.replace("SDK", repr(str(SDK))).replace("OVERLAY", repr(str(overlay))).replace("PATH", repr(path))
    # -S: no site module, so this environment's site-packages (and .pth files) stay out.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    completed = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                               env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["message"] != "decoded", "openjpeg was importable in the child process"
    assert result["missing"] == ["pylibjpeg-openjpeg"]
    assert result["uid"] == pydicom.uid.JPEG2000Lossless
    assert "pip install pylibjpeg-openjpeg" in result["message"]
    assert "JPEG 2000 Image Compression (Lossless Only)" in result["message"]
    # pydicom's own account of the plugins it tried is passed on.
    assert "pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-openjpeg>=2.0" in result["message"]


def test_the_same_file_decodes_here():
    # The control: with the plugin installed the file reads, so the child's error is the
    # missing package and nothing else.
    if not (SITE_PACKAGES / "openjpeg").is_dir():
        pytest.skip("pylibjpeg-openjpeg is not installed in this environment")
    image = read_image(pydicom.data.get_testdata_file("MR_small_jp2klossless.dcm"))
    assert image.pixels.shape == (64, 64)
