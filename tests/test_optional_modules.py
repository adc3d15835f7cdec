"""radedge without OpenCV and without ONNX Runtime, in fresh processes where importing ``cv2`` or
``onnxruntime`` fails as on a machine without them (a ``sitecustomize`` on PYTHONPATH sets
``sys.modules[name] = None``, so the reading workers are blocked too).

Without OpenCV a PNG, a 16-bit TIFF and a DICOM radiograph go through ``radedge run``: predicted,
the overlays written and decodable, the DICOM outputs (SEG, SR, GSPS, KOS) written. Without ONNX
Runtime, loading a model raises ``MissingOnnxRuntimeError`` naming both extras and ``radedge run``
says so in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FEMUR = REPO / "examples" / "radiographs" / "femur_malignant.dcm"
MODEL = REPO / "sdk" / "radedge" / "models" / "bone-tumor"
SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "SEG",
    "1.2.840.10008.5.1.4.1.1.88.33": "SR",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34": "SR",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.11.1": "GSPS",
    "1.2.840.10008.5.1.4.1.1.88.59": "KOS",
}


def _blocked_environment(tmp_path: Path, *modules: str) -> dict[str, str]:
    site = tmp_path / "blocked_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environment.get("PYTHONPATH")]))
    return environment


def _python(environment: dict[str, str], code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=environment, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def _radedge(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return _python(environment, "import sys; from radedge.cli import main; sys.exit(main(sys.argv[1:]))", *args)


def _radiograph(dtype) -> np.ndarray:
    """A bright bone-like band with a dark lesion on a soft-tissue background."""
    top = np.iinfo(dtype).max
    yy, xx = np.mgrid[:512, :384]
    picture = np.full((512, 384), 0.25)
    picture[:, 130:260] = 0.8
    picture[np.hypot(yy - 250, xx - 195) < 40] = 0.45
    return (picture * top).astype(dtype)


def test_the_block_works(tmp_path):
    blocked = _python(_blocked_environment(tmp_path, "cv2", "onnxruntime"),
                      "import importlib\nfor name in ('cv2', 'onnxruntime'):\n"
                      "    try:\n        importlib.import_module(name)\n    except ImportError:\n        print(name)")
    assert blocked.stdout.split() == ["cv2", "onnxruntime"], blocked.stderr


def test_run_without_opencv_reads_writes_and_draws(tmp_path):
    png, tiff = tmp_path / "radiograph.png", tmp_path / "radiograph16.tif"
    Image.fromarray(_radiograph(np.uint8)).save(png)
    Image.fromarray(_radiograph(np.uint16)).save(tiff)  # mode I;16: a 16-bit grey TIFF
    out, dicom_out = tmp_path / "out", tmp_path / "dicom"
    done = _radedge(_blocked_environment(tmp_path, "cv2"), "run", str(png), str(tiff), str(FEMUR),
                    "--model", str(MODEL), "--no-scope-check", "--out", str(out), "--dicom-out", str(dicom_out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "3 image(s)" in done.stdout
    for stem, shape in [("radiograph", (512, 384)), ("radiograph16", (512, 384)), ("femur_malignant", None)]:
        document = json.loads((out / f"{stem}.json").read_text())
        lesion = document["models"]["bone-tumor"]["segmentations"]["lesion"]
        assert document["analysed"] and lesion["regions"], stem
        if shape is not None:
            assert tuple(lesion["mask_shape"]) == shape
        overlay = imagecodecs.png_decode((out / f"{stem}.overlay.png").read_bytes())
        assert overlay.dtype == np.uint8 and overlay.ndim == 3 and overlay.shape[2] == 3
        if shape is not None:
            assert overlay.shape[:2] == shape
        assert np.ptp(overlay[..., 0].astype(int) - overlay[..., 2]) > 50  # coloured drawings on grey
    kinds = sorted(SOP_CLASSES.get(pydicom.dcmread(path, stop_before_pixels=True).SOPClassUID, "?")
                   for path in dicom_out.glob("*.dcm"))
    assert kinds == ["GSPS", "KOS", "SEG", "SR"], kinds
    assert all(path.name.startswith("femur_malignant.") for path in dicom_out.glob("*.dcm"))


def test_read_image_without_opencv_gives_the_pixels(tmp_path):
    tiff = tmp_path / "radiograph16.tif"
    Image.fromarray(_radiograph(np.uint16)).save(tiff)
    code = ("import sys, numpy as np\nfrom radedge.io import read_image\nimage = read_image(sys.argv[1])\n"
            "print(image.pixels.dtype, image.pixels.shape, int(image.pixels.sum()), 'cv2' in sys.modules and "
            "sys.modules['cv2'] is not None)")
    done = _python(_blocked_environment(tmp_path, "cv2"), code, str(tiff))
    assert done.returncode == 0, done.stderr
    expected = _radiograph(np.uint16)
    assert done.stdout.split() == ["uint16", "(512,", "384)", str(int(expected.sum())), "False"]


def test_bench_baseline_without_opencv_says_what_to_install(tmp_path):
    done = _radedge(_blocked_environment(tmp_path, "cv2"), "bench", "--baseline", "--quick", "--out",
                    str(tmp_path / "bench"))
    assert done.returncode == 4  # a missing dependency (docs/cli.md)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "radedge[bench]" in done.stderr and "opencv-python-headless" in done.stderr
    assert not (tmp_path / "bench").exists()


def test_load_model_without_onnxruntime_raises_the_typed_error(tmp_path):
    code = """
import json, radedge
from radedge.backends import MissingOnnxRuntimeError, installed_onnxruntime
try:
    radedge.load_model()
except radedge.MissingDependencyError as exc:
    print(json.dumps({"type": type(exc).__name__, "message": str(exc), "package": exc.package,
                      "typed": isinstance(exc, MissingOnnxRuntimeError), "doctor": installed_onnxruntime().describe()}))
"""
    done = _python(_blocked_environment(tmp_path, "onnxruntime"), code)
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout)
    assert reported["type"] == "MissingOnnxRuntimeError" and reported["typed"] and reported["package"] == "onnxruntime"
    assert "pip install 'radedge[cpu]'" in reported["message"] and "pip install 'radedge[gpu]'" in reported["message"]
    assert "does not import" in reported["doctor"] or reported["doctor"].startswith("not installed")


def test_run_without_onnxruntime_exits_with_one_line(tmp_path):
    done = _radedge(_blocked_environment(tmp_path, "onnxruntime"), "run", str(FEMUR), "--model", str(MODEL))
    assert done.returncode == 4  # a missing dependency (docs/cli.md)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "radedge[cpu]" in lines[0] and "radedge[gpu]" in lines[0]


@pytest.mark.parametrize("packages, expected", [
    ((("onnxruntime", "1.20.0"),), "onnxruntime 1.20.0 (radedge[cpu])"),
    ((("onnxruntime-gpu", "1.20.0"),), "onnxruntime-gpu 1.20.0 (radedge[gpu])"),
    ((("onnxruntime", "1.20.0"), ("onnxruntime-gpu", "1.20.0")), "CLASH"),
])
def test_doctor_line_names_the_flavour_or_the_clash(packages, expected):
    from radedge.backends import OnnxRuntimeInstall

    install = OnnxRuntimeInstall(packages, "1.20.0", ("CPUExecutionProvider",), None)
    assert install.describe().startswith(expected)
    assert install.flavour == {1: {"onnxruntime": "cpu", "onnxruntime-gpu": "gpu"}[packages[0][0]]}.get(len(packages))
