"""Keeping the garbage collector's full passes short in a process that runs radedge for long.

Once models are loaded and a first image has gone all the way through (pydicom's dictionaries,
highdicom's module tables, ONNX Runtime's Python objects), the process holds about 300 000
container objects that live as long as it does. CPython's cyclic collector walks every one of
them in each full (generation 2) pass, tens of milliseconds, and the pass runs inside whichever
call happens to allocate at that moment: for an uncompressed radiograph, whose DICOM -> flag
takes about 20 ms, that pass was the slow tail. ``settle()`` collects once and moves what
survives to the permanent generation (``gc.freeze``); later full passes walk only what was
allocated since. It changes no object and frees nothing that would otherwise be freed: the
frozen objects were alive and stay alive.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect, then exclude every object alive now from later collections; returns how many.

    Call it once, after loading models and analysing a first image (with its outputs), in a
    process that then serves images for long: ``radedge serve`` and ``radedge bench`` do."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
