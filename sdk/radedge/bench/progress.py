"""Progress of a benchmark on stderr: a bar redrawn in place on a terminal, one line per phase
in a log (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .._terminal import shown


class Progress:
    """``phase(name, total)`` starts a phase of ``total`` steps, ``step()`` counts one, ``done()``
    ends the phase. On a terminal the bar is one line rewritten with ``\\r`` (at most ten times a
    second); elsewhere each phase prints one line when it starts, so a log stays readable.
    ``enabled=False`` prints nothing."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self._name, self._total, self._done, self._drawn = "", 0, 0, 0.0

    def phase(self, name: str, total: int) -> None:
        self.done()
        self._name, self._total, self._done, self._drawn = shown(name), max(0, total), 0, 0.0
        if not self.enabled:
            return
        if self.tty:
            self._draw(force=True)
        else:
            print(f"radedge bench: {self._name} ({self._total} step{'' if self._total == 1 else 's'})",
                  file=self.stream, flush=True)

    def step(self, count: int = 1) -> None:
        self._done = min(self._total, self._done + count)
        if self.enabled and self.tty:
            self._draw(force=self._done == self._total)

    def done(self) -> None:
        if self.enabled and self.tty and self._name:
            self._draw(force=True)
            print(file=self.stream, flush=True)
        self._name = ""

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        filled = self.WIDTH * self._done // self._total if self._total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        print(f"\r{self._name:<28.28} [{bar}] {self._done}/{self._total}", end="", file=self.stream, flush=True)
