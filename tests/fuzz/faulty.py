"""Case functions that fail the way radedge must never fail, to prove the runner sorts each
failure into its outcome (``test_runner``). Case number ``n`` picks the failure: see ``BEHAVIOUR``."""

from __future__ import annotations

import ctypes
import time

import numpy as np

from .runner import CaseReport

BEHAVIOUR = {0: "analysed", 1: "untyped", 2: "crash", 3: "hang", 4: "memory", 5: "refused", 6: "slow"}


def case(master_seed: int, number: int) -> CaseReport:
    behaviour = BEHAVIOUR[number % len(BEHAVIOUR)]
    if behaviour == "crash":
        ctypes.string_at(0)
    if behaviour == "hang":
        time.sleep(60)
    if behaviour == "memory":
        np.ones(4 << 30, dtype=np.uint8)
    if behaviour == "untyped":
        return CaseReport(number, "untyped", "IndexError: made up", "seed", ("m",), 10)
    if behaviour == "slow":  # finished, but took longer than the limit (as measured in the worker)
        return CaseReport(number, "analysed", "no flags", "seed", ("m",), 10, seconds=30.0)
    if behaviour == "refused":
        return CaseReport(number, "refused", "NotDicomError", "seed", ("m",), 10)
    return CaseReport(number, "analysed", "no flags", "seed", ("m",), 10)


def nothing_to_prepare() -> None:
    return None
