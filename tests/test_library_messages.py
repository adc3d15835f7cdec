"""Messages of the Python API give Python advice: a vendor embedding radedge has no command line
to pass flags to. The CLI (cli.py) and the service's configuration add their own advice."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SDK = Path(__file__).resolve().parents[1] / "sdk" / "radedge"
# The packages a vendor calls from Python; the CLI, the service and the benchmark command speak to operators.
API_PACKAGES = ["errors.py", "io", "pipeline", "bundle", "backends", "intensity", "ops", "spec", "heads", "results",
                "dicom_out", "cuda"]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
COMMAND = re.compile(r"\bradedge (run|models|inspect|export|keygen|sign|triton|doctor|serve|bench|build)\b")


def _sources() -> list[Path]:
    found = []
    for entry in API_PACKAGES:
        path = SDK / entry
        found.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return found


def _message_strings(tree: ast.AST):
    """String constants outside docstrings, f-string parts included."""
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_command_line_advice_in_library_messages():
    offending = []
    for path in _sources():
        for line, text in _message_strings(ast.parse(path.read_text())):
            flags = [flag for flag in FLAG.findall(text) if not re.search(rf"pip install {flag}", text)]
            if flags or COMMAND.search(text):
                offending.append(f"{path.relative_to(SDK)}:{line}: {text!r}")
    assert len(_sources()) > 50
    assert not offending, "\n".join(offending)


def test_the_checker_finds_what_it_looks_for():
    tree = ast.parse('def f():\n    """Run radedge run --model X."""\n    raise ValueError(f"pass --model {x} or radedge sign B")\n')
    assert [text for _, text in _message_strings(tree)] == ["pass --model ", " or radedge sign B"]
