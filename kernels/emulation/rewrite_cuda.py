"""Turn a kernels/cuda source into C++ that the CPU emulator (cuda_runtime.h here) compiles.

Two constructs are not C++ and are rewritten; nothing else changes, line numbers included:
  kernel<<<grid, block[, shared[, stream]]>>>(args)
      -> radedge_emulation::launch("kernel", ADDRESS, [](auto... a) { kernel(a...); },
                                   grid, block[, shared[, stream]])(args)
     where ADDRESS is the kernel's address, or nullptr for a template kernel whose arguments are
     deduced at the launch (the lambda lets the call deduce them, as nvcc does);
  extern __shared__ T name[];
      -> T* name = static_cast<T*>(radedge_emulation::dynamic_shared_memory());

usage: rewrite_cuda.py SOURCE.cu OUTPUT.cpp
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_TEMPLATE_KERNEL = re.compile(
    r"template\s*<[^;{]*?>\s*__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(?P<name>\w+)\s*\("
)
_EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+(?P<type>[\w:<>\s]+?)\s+(?P<name>\w+)\s*\[\s*\]\s*;")


def _kernel_start(text: str, end: int) -> int:
    """Index where the kernel expression ending at `end` (exclusive) begins: a name, possibly
    qualified, possibly with template arguments."""
    i = end
    if i > 0 and text[i - 1] == ">":
        depth = 0
        while i > 0:
            i -= 1
            if text[i] == ">":
                depth += 1
            elif text[i] == "<":
                depth -= 1
                if depth == 0:
                    break
        else:
            raise ValueError("unbalanced template arguments before <<<")
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:"):
        i -= 1
    return i


def rewrite(text: str) -> str:
    templates = {m["name"] for m in _TEMPLATE_KERNEL.finditer(text)}
    text = _EXTERN_SHARED.sub(
        lambda m: f"{m['type']}* {m['name']} = static_cast<{m['type']}*>(::radedge_emulation::dynamic_shared_memory());",
        text,
    )
    out = []
    position = 0
    while True:
        open_at = text.find("<<<", position)
        if open_at < 0:
            out.append(text[position:])
            break
        close_at = text.find(">>>", open_at)
        if close_at < 0:
            raise ValueError("<<< without >>>")
        start = _kernel_start(text, open_at)
        kernel = text[start:open_at]
        if not kernel or not (kernel[0].isalpha() or kernel[0] in "_:"):
            raise ValueError(f"cannot find the kernel before <<< at offset {open_at}")
        config = text[open_at + 3 : close_at]
        out.append(text[position:start])
        deduced = kernel in templates  # a template named without its arguments
        address = "nullptr" if deduced else f"reinterpret_cast<const void*>(&{kernel})"
        out.append(
            f'::radedge_emulation::launch("{kernel}", {address}, [](auto... a) {{ {kernel}(a...); }}, {config})'
        )
        position = close_at + 3
    return "".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, output = Path(argv[1]), Path(argv[2])
    text = rewrite(source.read_text())
    # Diagnostics point at the original file; the rewrite keeps every line where it was.
    header = f'#line 1 "{source.resolve()}"\n'
    output.parent.mkdir(parents=True, exist_ok=True)
    new = header + text
    if not output.exists() or output.read_text() != new:
        output.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
