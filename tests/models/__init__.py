"""Tiny closed-form test bundles (made by make_tiny.py): ``tiny("tiny_spine")`` is one's path."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def tiny(name: str) -> Path:
    return HERE / name
