"""Per-stage wall time of one image."""

from __future__ import annotations

import time


class StageTimer:
    """``lap(stage)`` records the time since the previous lap (or the start) under ``stage``;
    ``timings`` holds the laps in milliseconds, ``finish()`` adds ``total``."""

    def __init__(self) -> None:
        self.start = self._mark = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        now = time.perf_counter()
        elapsed = (now - self._mark) * 1e3
        self.timings[stage] = self.timings.get(stage, 0.0) + elapsed
        self._mark = now
        return elapsed

    def restart(self) -> None:
        """Start the next lap now, leaving out the time since the last one."""
        self._mark = time.perf_counter()

    def finish(self) -> dict[str, float]:
        self.timings["total"] = (time.perf_counter() - self.start) * 1e3
        return self.timings
