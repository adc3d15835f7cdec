"""``IsolatedReader``: ``read_image`` in a worker process, with a time budget per file and a
memory cap, so one poisoned file costs at most its budget and the files after it are read.

The bounds in ``radedge.io.limits`` refuse what a header declares before work is spent on
it; what they cannot bound is a native decoder running away inside a codestream whose
headers are plausible. That is stopped here, from outside: the worker is killed when the
budget runs out, and the next file gets a new one.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from .._isolation import IsolatedWorker
from ..errors import MemoryBudgetExceededError, TimeBudgetExceededError, WorkerCrashedError
from .image import Image
from .limits import DECODE_MEMORY_BYTES, TIME_BUDGET_S
from .reader import read_image


def _ready_to_read() -> None:
    """Runs in each new worker before its first read: unpickling this function imported the
    reader (pydicom, the codecs, about 0.3 s), which must not count against a file's budget;
    listing the decoders loads their plugins; a small JPEG 2000 decode gives the decoding
    threads their memory arenas before the address space is capped (``j2k_plugin.warm_up``)."""
    from .codecs import decodable_syntaxes
    from .j2k_plugin import warm_up

    decodable_syntaxes()
    warm_up()


class IsolatedReader:
    """Reads images like ``read_image``, in a worker process.

    ``time_budget_s``: seconds one read may take (``TimeBudgetExceededError`` past it);
    ``memory_limit_bytes``: memory the worker may allocate for one read
    (``MemoryBudgetExceededError``); a worker that crashes gives ``WorkerCrashedError``. All
    three are ``InputError``s naming the input, like any other refusal. ``max_pixels`` as
    in ``read_image``.

    One read at a time; the worker stays up between reads (starting one costs about half a
    second) and is replaced after a kill. Use as a context manager, or call ``close``.
    """

    def __init__(
        self,
        *,
        time_budget_s: float = TIME_BUDGET_S,
        memory_limit_bytes: int | None = DECODE_MEMORY_BYTES,
        max_pixels: int | None = None,
    ):
        if not time_budget_s > 0:
            raise ValueError(f"time_budget_s must be positive, not {time_budget_s!r}")
        self.time_budget_s = float(time_budget_s)
        self._read = functools.partial(read_image, max_pixels=max_pixels)
        self._worker = IsolatedWorker(memory_limit_bytes=memory_limit_bytes, initializer=_ready_to_read)

    def start(self) -> None:
        """Start the worker now, so the first read does not wait for it."""
        self._worker.start()

    def read(self, source: Any) -> Image:
        """``read_image(source)`` in the worker: a path or bytes (a pydicom Dataset is read here)."""
        if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
            return self._read(source)
        if isinstance(source, memoryview):
            source = bytes(source)
        where = f"'{os.fspath(source)}'" if isinstance(source, (str, os.PathLike)) else "the input"
        try:
            return self._worker.call(self._read, source, time_limit_s=self.time_budget_s).value
        except TimeBudgetExceededError as exc:
            raise TimeBudgetExceededError(
                f"reading {where} took longer than the time budget of {self.time_budget_s:g} s per file and was "
                f"stopped: its compressed data keeps the decoder busy far longer than any radiograph needs "
                f"(damaged or hostile). Ask the sender for the image again; raise the budget only for an "
                f"image known to be genuine",
                limit=exc.limit) from None
        except MemoryBudgetExceededError as exc:
            raise MemoryBudgetExceededError(
                f"reading {where} {exc}: decoding it needs more memory than any image within the size limits "
                f"(damaged or hostile). Ask the sender for the image again",
                limit=exc.limit) from None
        except WorkerCrashedError as exc:
            raise WorkerCrashedError(
                f"reading {where} stopped: {exc} (a decoder crashed on its data). The image is refused; "
                f"ask the sender for it again",
                exit_code=exc.exit_code) from None

    def close(self) -> None:
        self._worker.close()

    def __enter__(self) -> IsolatedReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
