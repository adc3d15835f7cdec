"""The package layout follows the data flow, and every import points down it (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[1] / "sdk" / "radedge"

# The stages in order; a module may import from its own stage and from earlier ones only.
LAYERS = [
    {"errors", "_files", "_native", "_kernels", "_isolation", "_terminal", "_heap", "__init__"},
    {"spec"},
    {"io"},
    {"cuda"},
    {"ops"},
    {"intensity"},
    {"bundle"},
    {"backends"},
    {"heads"},
    {"dicom_out"},  # below results: Prediction.to_dicom calls it, it reads results by their fields
    {"results"},
    {"pipeline"},
    {"export"},  # the export stage (export/ in the tree): the CLI loads it lazily for `radedge export`
    {"serve"},  # the console service runs the pipeline; `radedge serve` starts it from the CLI
    {"bench"},  # the latency benchmark runs the pipeline and the outputs; `radedge bench` starts it from the CLI
    {"cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _stage(module: str) -> str:
    """``radedge.ops.preprocess`` -> ``ops``; ``radedge`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    relative = path.relative_to(SDK.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every radedge import in the file, lazy ones included."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "radedge":
                continue
            if target == "radedge" or (node.level and not node.module):
                # ``from . import cuda``: the names may be modules; ``from .. import __version__`` is not.
                for alias in node.names:
                    folder = SDK.parent.joinpath(*target.split("."))
                    is_module = (folder / alias.name).is_dir() or (folder / f"{alias.name}.py").is_file()
                    found.append((node.lineno, f"{target}.{alias.name}" if is_module else target))
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names if alias.name.startswith("radedge"))
    return found


SOURCES = sorted(p for p in SDK.rglob("*.py") if "models" not in p.relative_to(SDK).parts)


def test_every_stage_has_a_rank():
    stages = {_stage(_module_name(path)) for path in SOURCES}
    assert stages <= set(RANK), sorted(stages - set(RANK))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SDK)))
def test_imports_point_down_the_flow(path: Path):
    stage = _stage(_module_name(path))
    if stage == "__init__":
        return  # the top-level package loads its public names lazily, from any stage
    upward = [
        f"line {line}: {target}"
        for line, target in _imports(path)
        if RANK[_stage(target)] > RANK[stage]
    ]
    assert not upward, f"{path.relative_to(SDK)} ({stage}) imports from later stages: {upward}"


def _loaded_after(code: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_spec_loads_no_op_no_opencv_no_backend():
    loaded = _loaded_after("import radedge.spec")
    assert not {"cv2", "onnxruntime", "pydicom", "radedge._kernels", "radedge.ops"} & loaded


def test_results_load_no_backend():
    loaded = _loaded_after("import radedge.results")
    assert not {"onnxruntime", "radedge.backends", "radedge.pipeline"} & loaded
