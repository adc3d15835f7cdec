"""A transfer syntax whose decoder is not installed: the error names the pip package; and
without imagecodecs, JPEG 2000 still decodes through pylibjpeg-openjpeg, to the same pixels.

No mocks: each test runs a real Python process whose import path is this environment's
site-packages minus some decoders: imagecodecs (the package and its dist-info), pylibjpeg-openjpeg
(its ``openjpeg`` package, its extension module and its dist-info, which is where pylibjpeg
discovers the plugin's entry points) and Pillow (installed for highdicom; pydicom decodes JPEG
2000 with it too). In that process they are not installed.
"""

from __future__ import annotations

import hashlib
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
from radedge.io.codecs import preferred_plugin
from radedge.io.j2k_plugin import MINIMUM_IMAGECODECS, PLUGIN_LABEL

SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
SDK = Path(radedge.__file__).resolve().parents[1]
PHANTOMS = Path(__file__).resolve().parents[1] / "data" / "transfer_syntaxes"

CHILD = r"""
import hashlib, json, sys
sys.path[:0] = [SDK, OVERLAY]
import radedge.io
from radedge.errors import UnsupportedTransferSyntaxError
from radedge.io.codecs import preferred_plugin
try:
    image = radedge.io.read_image(PATH)
except UnsupportedTransferSyntaxError as exc:
    print(json.dumps({"message": str(exc), "missing": list(exc.missing_packages),
                      "uid": exc.transfer_syntax_uid}))
else:
    print(json.dumps({"message": "decoded", "plugin": preferred_plugin(image.source.transfer_syntax_uid),
                      "pixels": hashlib.sha256(image.pixels.tobytes()).hexdigest()}))
"""

IMAGECODECS = ("imagecodecs", "imagecodecs-")
OPENJPEG = ("openjpeg", "_openjpeg.", "pylibjpeg_openjpeg-")
PILLOW = ("PIL", "pillow.libs", "pillow-")


def _overlay_without(overlay: Path, *packages: tuple[str, ...]) -> Path:
    """Link every site-packages entry into ``overlay`` except those named or prefixed in
    ``packages`` (an entry equal to a name, or starting with one ending in '-' or '.')."""
    overlay.mkdir()
    for entry in SITE_PACKAGES.iterdir():
        name = entry.name
        excluded = any(name == prefix or (prefix[-1] in "-." and name.startswith(prefix))
                       for package in packages for prefix in package)
        if excluded or name.endswith(".pth"):
            continue
        (overlay / name).symlink_to(entry)
    return overlay


def _read_in_child(overlay: Path, path: str) -> dict:
    code = CHILD.replace("SDK", repr(str(SDK))).replace("OVERLAY", repr(str(overlay))).replace("PATH", repr(path))
    # -S: no site module, so this environment's site-packages (and .pth files) stay out.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    completed = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                               env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_missing_jpeg2000_decoders_name_imagecodecs(tmp_path):
    overlay = _overlay_without(tmp_path / "site-packages", IMAGECODECS, OPENJPEG, PILLOW)
    result = _read_in_child(overlay, pydicom.data.get_testdata_file("MR_small_jp2klossless.dcm"))
    assert result["message"] != "decoded", "a JPEG 2000 decoder was importable in the child process"
    # imagecodecs is radedge's first choice; pylibjpeg-openjpeg would do too (both one package away).
    assert result["missing"] == ["imagecodecs"]
    assert result["uid"] == pydicom.uid.JPEG2000Lossless
    assert "pip install imagecodecs" in result["message"]
    assert "JPEG 2000 Image Compression (Lossless Only)" in result["message"]
    # pydicom's own account of the plugins it tried is passed on, radedge's among them.
    assert "pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-openjpeg>=2.0" in result["message"]
    assert f"{PLUGIN_LABEL} - requires imagecodecs>={MINIMUM_IMAGECODECS}" in result["message"]


def test_missing_htj2k_decoders_name_imagecodecs(tmp_path):
    overlay = _overlay_without(tmp_path / "site-packages", IMAGECODECS, OPENJPEG)
    result = _read_in_child(overlay, str(PHANTOMS / "htj2k_lossless_mono2.dcm"))
    assert result["missing"] == ["imagecodecs"] and result["uid"] == pydicom.uid.HTJ2KLossless
    assert "High-Throughput JPEG 2000 Image Compression (Lossless Only)" in result["message"]


@pytest.mark.parametrize("name", ["j2k_lossless_mono2.dcm", "j2k_lossy_mono1.dcm", "htj2k_lossless_rpcl_mono1.dcm"])
def test_without_imagecodecs_pylibjpeg_decodes_the_same_pixels(tmp_path, name):
    if not (SITE_PACKAGES / "openjpeg").is_dir():
        pytest.skip("pylibjpeg-openjpeg is not installed in this environment")
    overlay = _overlay_without(tmp_path / "site-packages", IMAGECODECS)
    path = str(PHANTOMS / name)
    result = _read_in_child(overlay, path)
    # No preference available: pydicom's own order, in which pylibjpeg comes before Pillow.
    assert result == {"message": "decoded", "plugin": "",
                      "pixels": hashlib.sha256(read_image(path).pixels.tobytes()).hexdigest()}
    assert preferred_plugin(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID) == PLUGIN_LABEL


def test_the_same_file_decodes_here():
    # The control: with the plugins installed the file reads, so the child's error is the
    # missing packages and nothing else.
    if not (SITE_PACKAGES / "openjpeg").is_dir() and not (SITE_PACKAGES / "imagecodecs").is_dir():
        pytest.skip("no JPEG 2000 decoder is installed in this environment")
    image = read_image(pydicom.data.get_testdata_file("MR_small_jp2klossless.dcm"))
    assert image.pixels.shape == (64, 64)
