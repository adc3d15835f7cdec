"""The wheels `make wheels` puts in dist/, as a vendor receives them (docs/wheels.md).

Each x86_64 radedge wheel is installed into a fresh virtual environment outside the source
tree and runs the bundled models on example radiographs from a working directory outside the
repository, so nothing from the source tree can be imported; its results must match the
development install's. Every wheel's contents, glibc symbol versions and auditwheel verdict
are checked; the aarch64 wheel (which cannot run here) only by those.

Skipped unless dist/ holds a radedge wheel or RADEDGE_TEST_WHEELS names the folder to test
(``make test-wheels`` builds the wheels and sets it, and then a missing wheel fails).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import radedge

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("RADEDGE_TEST_WHEELS") or ROOT / "dist")
if not DIST.is_absolute():
    DIST = ROOT / DIST
EXAMPLES = [ROOT / "examples" / "radiographs" / name for name in ("femur_malignant.dcm", "femur_no_tumour.dcm")]
# RHEL 8's glibc: the oldest the manylinux wheels promise to load on.
GLIBC_FLOOR = (2, 28)

RUNTIME_WHEELS = sorted(DIST.glob("radedge-*.whl"))
EXPORT_WHEELS = sorted(DIST.glob("radedge_export-*.whl"))

pytestmark = [
    pytest.mark.wheels,
    pytest.mark.skipif(
        not os.environ.get("RADEDGE_TEST_WHEELS") and not RUNTIME_WHEELS,
        reason="no wheels in dist/: run `make wheels` (or `make test-wheels`)",
    ),
]


def _x86_64(wheel: Path) -> bool:
    return wheel.name.endswith("x86_64.whl")


def _release() -> str:
    return radedge.__version__


def _tool(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _glibc_versions(library: Path) -> set[tuple[int, ...]]:
    """The GLIBC_x.y symbol versions ``library`` needs (readelf reads any architecture's ELF)."""
    needed = _tool("readelf", "--version-info", "--wide", str(library))
    return {tuple(int(part) for part in found.split(".")) for found in re.findall(r"Name: GLIBC_([0-9.]+)", needed)}


@pytest.fixture(scope="module")
def wheels() -> list[Path]:
    """The radedge wheels in DIST: at least the two CPU ones, the CUDA one where nvcc is found."""
    names = [wheel.name for wheel in RUNTIME_WHEELS]
    expected = [f"radedge-{_release()}+cpu-*manylinux_2_28_x86_64.whl", f"radedge-{_release()}+cpu-cp310-*manylinux_2_28_aarch64.whl"]
    for pattern in expected:
        assert any(Path(name).match(pattern) for name in names), f"no {pattern} in {DIST} (has {names})"
    if shutil.which("nvcc"):
        assert any("+cu" in name for name in names), f"nvcc is on PATH but {DIST} holds no +cuNN wheel: {names}"
    assert len(EXPORT_WHEELS) == 1, f"expected one radedge_export wheel in {DIST}, found {EXPORT_WHEELS}"
    return RUNTIME_WHEELS


@pytest.fixture(scope="module")
def development_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """What the development install (this interpreter's radedge) makes of the examples."""
    out = tmp_path_factory.mktemp("development")
    _tool(sys.executable, "-m", "radedge", "run", *map(str, EXAMPLES), "--out", str(out))
    return {example.stem: json.loads((out / f"{example.stem}.json").read_text()) for example in EXAMPLES}


def _summary(result: dict) -> dict:
    """The decisions and the numbers behind them: flags, class probabilities, lesion areas."""
    return {
        "flags": [(flag["model"], flag["code"], flag["score"]) for flag in result["flags"]],
        "probabilities": {
            (model, head): classification["probabilities"]
            for model, prediction in result["models"].items()
            for head, classification in prediction["classifications"].items()
        },
        "pixels": {
            (model, head, region["label"]): region["pixel_count"]
            for model, prediction in result["models"].items()
            for head, segmentation in prediction["segmentations"].items()
            for region in segmentation["regions"]
        },
    }


@pytest.mark.parametrize("index", range(4))
def test_wheel_contents(wheels: list[Path], index: int) -> None:
    """Runtime only: the native module, the bundled models and the licence; no export stage, no
    PyTorch checkpoint; the local label matches the module (a +cpu module has no CUDA code)."""
    if index >= len(wheels):
        pytest.skip(f"{DIST} holds {len(wheels)} radedge wheels")
    wheel = wheels[index]
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if name.endswith((".pt", ".pth", ".ckpt"))], f"{wheel.name} carries checkpoints"
    assert not [name for name in names if name.startswith("radedge/export/")], f"{wheel.name} carries the export stage"
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), f"{wheel.name} has no LICENSE"
    assert "radedge/models/bone-tumor/manifest.json" in names
    (module,) = [name for name in names if name.startswith("radedge/_kernels.")]
    arch = "aarch64" if wheel.name.endswith("aarch64.whl") else "x86_64"
    assert module.endswith(f"-{arch}-linux-gnu.so"), module
    with zipfile.ZipFile(wheel) as archive:
        binary = archive.read(module)
        licence = next(archive.read(name) for name in names if name.endswith("licenses/LICENSE"))
    assert b"Apache License" in licence and b"Version 2.0" in licence
    cuda_code = b"__cudaRegisterFatBinary" in binary
    assert cuda_code == ("+cu" in wheel.name), f"{wheel.name}: CUDA code in the module: {cuda_code}"


def test_each_wheel_needs_no_newer_glibc_than_its_tag(wheels: list[Path], tmp_path: Path) -> None:
    """auditwheel's verdict and the module's GLIBC_ symbol versions fit each wheel's manylinux
    tag; the CPU wheels' tag is manylinux_2_28 (RHEL 8); the aarch64 module is an AArch64 ELF."""
    for wheel in wheels:
        tagged = re.search(r"manylinux_(\d+)_(\d+)_(x86_64|aarch64)\.whl$", wheel.name)
        assert tagged, f"{wheel.name} has no manylinux tag"
        promised = (int(tagged[1]), int(tagged[2]))
        if "+cpu" in wheel.name:
            assert promised == GLIBC_FLOOR, wheel.name
        verdict = _tool(sys.executable, "-m", "auditwheel", "show", str(wheel))
        fits = re.search(r'following\s+platform\s+tag:\s+"manylinux_(\d+)_(\d+)_' + tagged[3] + '"', verdict)
        assert fits, verdict
        assert (int(fits[1]), int(fits[2])) <= promised, f"{wheel.name}: auditwheel says {fits[0]}"
        unpacked = tmp_path / wheel.stem
        zipfile.ZipFile(wheel).extractall(unpacked)
        (module,) = unpacked.glob("radedge/_kernels.*.so")
        assert max(_glibc_versions(module)) <= promised, f"{wheel.name}: {sorted(_glibc_versions(module))}"
        header = _tool("readelf", "--file-header", str(module))
        assert ("AArch64" if tagged[3] == "aarch64" else "X86-64") in header, header
        if "+cpu" in wheel.name:
            # zig's libc++ is linked in; none of its symbols may be exported.
            exported = _tool("readelf", "--dyn-syms", "--wide", str(module))
            assert "_ZNSt3__1" not in exported and "PyInit__kernels" in exported


@pytest.mark.parametrize("index", range(2))
def test_x86_64_wheel_runs_the_bundled_models(
    wheels: list[Path], development_results: dict[str, dict], tmp_path: Path, index: int
) -> None:
    """Installed with its ``cpu`` extra into a new virtual environment, run from outside the
    repository, the wheel gives the development install's flags, probabilities and lesion areas;
    `radedge export` says what to install, and does not once radedge-export is installed."""
    installable = [wheel for wheel in wheels if _x86_64(wheel)]
    if index >= len(installable):
        pytest.skip(f"{DIST} holds {len(installable)} x86_64 radedge wheels")
    wheel = installable[index]
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = str(environment / "bin" / "python")
    # As docs/embedding.md says to: the runtime with the ONNX Runtime flavour it runs on.
    _tool(python, "-m", "pip", "install", "--quiet", f"{wheel}[cpu]")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": "", "PYTHONSAFEPATH": "1"})

    where = run(python, "-c", "import radedge, importlib.metadata as m; print(radedge.__file__); print(m.version('radedge'))")
    assert where.returncode == 0, where.stderr
    location, version = where.stdout.split()
    assert Path(location).is_relative_to(environment) and not Path(location).is_relative_to(ROOT)
    assert wheel.name.startswith(f"radedge-{version}-")

    out = tmp_path / "out"
    done = run(str(environment / "bin" / "radedge"), "run", *map(str, EXAMPLES), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    for example in EXAMPLES:
        got = _summary(json.loads((out / f"{example.stem}.json").read_text()))
        want = _summary(development_results[example.stem])
        assert [flag[:2] for flag in got["flags"]] == [flag[:2] for flag in want["flags"]], example.name
        assert [flag[2] for flag in got["flags"]] == pytest.approx([flag[2] for flag in want["flags"]], abs=1e-4)
        assert got["probabilities"].keys() == want["probabilities"].keys()
        for key, probabilities in want["probabilities"].items():
            assert got["probabilities"][key] == pytest.approx(probabilities, abs=1e-4), (example.name, key)
        assert got["pixels"].keys() == want["pixels"].keys()
        for key, count in want["pixels"].items():
            assert got["pixels"][key] == pytest.approx(count, rel=1e-3), (example.name, key)
    assert any(flag[1] == "SUSPECTED_MALIGNANT_BONE_LESION" for flag in _summary(json.loads(
        (out / "femur_malignant.json").read_text()))["flags"])

    refused = run(str(environment / "bin" / "radedge"), "export", "model.pt", "--recipe", "vcf", "--out", str(out / "b"))
    assert refused.returncode == 4  # a missing dependency (docs/cli.md)
    assert refused.stderr.count(f"pip install radedge-export=={_release()}") == 1, refused.stderr
    assert "Traceback" not in refused.stderr

    # radedge-export alone (its torch, onnx and OpenCV dependencies are a separate, large download):
    # radedge.export is then found, and `radedge export` gets as far as asking for them.
    (export_wheel,) = EXPORT_WHEELS
    _tool(python, "-m", "pip", "install", "--quiet", "--no-deps", str(export_wheel))
    # Found, not imported: its phantoms need OpenCV, one of the dependencies --no-deps leaves out.
    found = run(python, "-c", "import importlib.util as u; print(u.find_spec('radedge.export.recipes').origin)")
    assert found.returncode == 0 and Path(found.stdout.strip()).is_relative_to(environment), found.stderr
    asked = run(str(environment / "bin" / "radedge"), "export", "model.pt", "--recipe", "vcf", "--out", str(out / "b"))
    assert asked.returncode == 4 and "radedge-export==" not in asked.stderr, asked.stderr


def test_export_wheel_is_the_export_stage_only() -> None:
    """radedge-export carries radedge.export (with the reference checkpoints and Triton models)
    and nothing of the runtime, and requires the runtime of its own release."""
    (wheel,) = EXPORT_WHEELS
    assert wheel.name == f"radedge_export-{_release()}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"radedge_export-{_release()}.dist-info/METADATA").decode()
    packaged = {name for name in names if ".dist-info/" not in name}
    assert packaged and all(name.startswith("radedge/export/") for name in packaged), sorted(packaged)[:5]
    sources = {f"radedge/export/{path.relative_to(ROOT / 'export').as_posix()}"
               for path in (ROOT / "export").rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert sources <= packaged, sorted(sources - packaged)
    assert f"Requires-Dist: radedge[export]=={_release()}" in metadata
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
