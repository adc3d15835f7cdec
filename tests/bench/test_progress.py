"""The progress bar: redrawn in place on a terminal, one line per phase in a log."""

from __future__ import annotations

import io

from radedge.bench.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_phase_and_no_carriage_return():
    stream = io.StringIO()
    progress = Progress(stream)
    progress.phase("warm rounds", 3)
    for _ in range(3):
        progress.step()
    progress.phase("concurrency", 2)
    progress.step(2)
    progress.done()
    assert stream.getvalue().splitlines() == ["radedge bench: warm rounds (3 steps)", "radedge bench: concurrency (2 steps)"]
    assert "\r" not in stream.getvalue()


def test_a_terminal_gets_a_bar_redrawn_with_carriage_returns():
    stream = _Terminal()
    progress = Progress(stream)
    progress.phase("warm rounds", 4)
    progress.step(4)
    progress.done()
    text = stream.getvalue()
    assert text.count("\r") >= 2 and text.endswith("\n")
    assert "[" + "#" * Progress.WIDTH + "] 4/4" in text


def test_a_phase_name_cannot_act_on_the_terminal():
    stream = io.StringIO()
    Progress(stream).phase("input \x1b[2Jname", 1)
    assert "\x1b" not in stream.getvalue() and "\\x1b" in stream.getvalue()
