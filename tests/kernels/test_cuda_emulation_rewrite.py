"""The source rewrite that lets the CPU emulator (kernels/emulation) compile kernels/cuda as C++:
launches and dynamic shared memory change, nothing else does, and every line stays where it was so
that compiler errors and sanitizer reports point at the .cu file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


def _rewrite_module():
    spec = importlib.util.spec_from_file_location("rewrite_cuda", REPOSITORY / "kernels" / "emulation" / "rewrite_cuda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rewrite = _rewrite_module().rewrite


def test_plain_kernel_launch_takes_the_kernel_address():
    out = rewrite("__global__ void scale(float* x, int n) {}\nvoid f() { scale<<<4, 256, 0, stream>>>(x, n); }\n")
    assert (
        'radedge_emulation::launch("scale", reinterpret_cast<const void*>(&scale), '
        "[](auto... a) { scale(a...); }, 4, 256, 0, stream)(x, n);" in out
    )
    assert "<<<" not in out and ">>>" not in out


def test_template_kernel_with_deduced_arguments_gets_no_address():
    source = (
        "template <typename Source>\n__global__ void keys_kernel(Source s, int n) {}\n"
        "void f() { keys_kernel<<<blocks_for(n), kThreads, 0, stream>>>(source, n); }\n"
    )
    out = rewrite(source)
    assert 'launch("keys_kernel", nullptr, [](auto... a) { keys_kernel(a...); }, blocks_for(n), kThreads' in out


def test_template_kernel_with_explicit_arguments_keeps_them():
    source = (
        "template <typename T, bool kShared>\n__global__ void __launch_bounds__(256) h(const T* p) {}\n"
        "void f() { h<uint16_t, true><<<grid, block, bytes, stream>>>(p); }\n"
    )
    out = rewrite(source)
    assert "reinterpret_cast<const void*>(&h<uint16_t, true>)" in out
    assert "[](auto... a) { h<uint16_t, true>(a...); }, grid, block, bytes, stream)(p);" in out


def test_multi_line_launch_keeps_every_line():
    source = "void f() {\n  k<<<static_cast<unsigned>(n),\n      256, 0, stream>>>(\n      a, b);\n}\n"
    out = rewrite(source)
    assert out.count("\n") == source.count("\n")
    assert "static_cast<unsigned>(n),\n      256, 0, stream)(\n      a, b);" in out


def test_extern_shared_becomes_the_launch_buffer():
    out = rewrite("  extern __shared__ unsigned int block_counts[];\n")
    assert out == (
        "  unsigned int* block_counts = static_cast<unsigned int*>(::radedge_emulation::dynamic_shared_memory());\n"
    )


def test_a_launch_without_a_kernel_name_is_refused():
    with pytest.raises(ValueError, match="kernel before <<<"):
        rewrite("x = (<<<1, 1>>>());")
    with pytest.raises(ValueError, match="without >>>"):
        rewrite("k<<<1, 1(a);")


@pytest.mark.parametrize("source", sorted((REPOSITORY / "kernels" / "cuda").glob("*.cu")), ids=lambda p: p.name)
def test_every_cuda_source_rewrites_line_for_line(source):
    text = source.read_text()
    out = rewrite(text)
    assert out.count("\n") == text.count("\n")
    assert "<<<" not in out and "extern __shared__" not in out
    assert out.count("::radedge_emulation::launch(") == text.count("<<<")
