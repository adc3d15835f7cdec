"""``read_ahead``: read the next images while the current one is analysed.

Decoding a compressed radiograph takes as long as analysing it, or longer (a JPEG 2000
radiograph: about 300 ms to decode, 100 ms to analyse on 2 cores); reading one image ahead
in a thread overlaps the two, so a folder goes through in about the time of the slower
step per image instead of their sum. Each image's own latency is unchanged and reported as
it was: its read time plus its analysis.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")
Read = TypeVar("Read")

_END = object()


class ReadOutcome(Generic[Item, Read]):
    """One item and what reading it gave: ``value``, or the ``error`` it raised; ``read_ms``
    the time the read took."""

    __slots__ = ("item", "value", "error", "read_ms")

    def __init__(self, item: Item, value: Read | None, error: Exception | None, read_ms: float):
        self.item, self.value, self.error, self.read_ms = item, value, error, read_ms


def read_ahead(items: Iterable[Item], read: Callable[[Item], Read], *,
               depth: int = 1) -> Iterator[ReadOutcome[Item, Read]]:
    """Yield a ``ReadOutcome`` per item, in order, with ``read(item)`` run in a background
    thread up to ``depth`` items ahead of the one the caller holds. An ``Exception`` from
    ``read`` is handed over in the outcome (the caller decides what it means for that item)
    and the next items are still read; anything else (KeyboardInterrupt) ends the iteration
    and is raised to the caller. Closing the iterator early stops the thread after the read
    in progress. ``items`` is iterated in the thread too: a generator that opens files reads
    ahead as well."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stopping = threading.Event()

    def put(entry) -> bool:
        while not stopping.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                started = time.perf_counter()
                try:
                    outcome = ReadOutcome(item, read(item), None, 0.0)
                except Exception as exc:
                    outcome = ReadOutcome(item, None, exc, 0.0)
                outcome.read_ms = (time.perf_counter() - started) * 1000
                if not put(outcome):
                    return
            put(_END)
        except BaseException as exc:  # raised again in the caller's thread
            put(exc)

    thread = threading.Thread(target=produce, name="radedge-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            entry = handoff.get()
            if entry is _END:
                return
            if isinstance(entry, BaseException):
                raise entry
            yield entry
    finally:
        stopping.set()
        thread.join()
