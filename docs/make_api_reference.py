"""Write docs/api.md, the Python API reference, from radedge's own docstrings and signatures.

    python docs/make_api_reference.py           # rewrite docs/api.md
    python docs/make_api_reference.py --check   # exit 1 when docs/api.md is not what the code says

What it covers is what ``import radedge`` exports (``radedge.__all__``): the functions, the
classes with their public methods and properties (inherited ones included), and every error
class with its base and code. tests/test_docs.py runs ``--check``, so the reference cannot fall
behind the code.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

import radedge

ROOT = Path(__file__).resolve().parent
OUTPUT = ROOT / "api.md"

HEADER = """# radedge Python API reference

Generated from the docstrings by `python docs/make_api_reference.py`; do not edit by hand.
Everything here is importable from `radedge` itself (`radedge.load_model`, `radedge.Prediction`,
`radedge.InputError`...). What is not listed here is internal and may change without notice
(see the versioning policy in CHANGELOG.md). How to use it in an application: docs/embedding.md.
"""


def _signature(obj) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    # Annotations are strings (from __future__ import annotations): print them unquoted.
    parameters = [parameter.replace(annotation=_unquoted(parameter.annotation))
                  for parameter in signature.parameters.values()]
    text = str(signature.replace(parameters=parameters,
                                 return_annotation=_unquoted(signature.return_annotation)))
    # A default that is an object prints its address, which changes with every run.
    return re.sub(r" at 0x[0-9a-f]+", "", text)


class _Annotation(str):
    def __repr__(self) -> str:
        return str(self)


def _unquoted(annotation):
    return _Annotation(annotation) if isinstance(annotation, str) else annotation


def _doc(obj) -> str:
    return inspect.getdoc(obj) or "(undocumented)"


def _first_paragraph(obj) -> str:
    return " ".join(_doc(obj).split("\n\n")[0].split())


def _members(cls) -> list[tuple[str, object]]:
    """Public methods and properties in definition order, the class's own after its bases'."""
    seen: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass.__module__ == "builtins":
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") and name not in ("__init__", "__call__"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property) or inspect.isfunction(member):
                seen[name] = member
    seen.pop("__init__", None)
    return list(seen.items())


def _class_section(name: str, cls) -> list[str]:
    lines = [f"### `radedge.{name}`", ""]
    init = vars(cls).get("__init__")
    if inspect.isfunction(init) or hasattr(cls, "__dataclass_fields__"):
        lines += ["```python", f"{name}{_signature(cls)}", "```", ""]
    lines += [_doc(cls), ""]
    for member_name, member in _members(cls):
        if isinstance(member, property):
            lines += [f"#### `.{member_name}` (property)", "", _doc(member.fget), ""]
        else:
            lines += [f"#### `.{member_name}{_signature(member)}`", "", _doc(member), ""]
    return lines


def _is_error(obj) -> bool:
    return inspect.isclass(obj) and issubclass(obj, BaseException)


def render() -> str:
    names = [name for name in radedge.__all__ if not name.startswith("__")]
    exported = {name: getattr(radedge, name) for name in names}
    functions = sorted(name for name, obj in exported.items() if inspect.isfunction(obj))
    classes = sorted(name for name, obj in exported.items() if inspect.isclass(obj) and not _is_error(obj))
    errors = sorted((name for name, obj in exported.items() if _is_error(obj)),
                    key=lambda name: ([klass.__name__ for klass in reversed(exported[name].__mro__)], name))
    lines = [HEADER, "## Functions", ""]
    for name in functions:
        lines += [f"### `radedge.{name}`", "", "```python", f"{name}{_signature(exported[name])}", "```", "",
                  _doc(exported[name]), ""]
    lines += ["## Classes", ""]
    for name in classes:
        lines += _class_section(name, exported[name])
    lines += ["## Errors", "",
              "Every error radedge raises on purpose is a `RadedgeError`; catch a subclass to handle one case.",
              "", "| error | base | code | raised when |", "| --- | --- | --- | --- |"]
    for name in errors:
        error = exported[name]
        base = next((klass.__name__ for klass in error.__mro__[1:] if klass.__name__ in exported), "Exception")
        code = getattr(error, "code", None)
        code_text = f"`{code}`" if isinstance(code, str) else ""
        lines.append(f"| `{name}` | `{base}` | {code_text} | {_first_paragraph(error).replace('|', '/')} |")
    lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUTPUT.is_file() and OUTPUT.read_text() == text:
            return 0
        print(f"{OUTPUT} is not what the code says: run python docs/make_api_reference.py", file=sys.stderr)
        return 1
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
