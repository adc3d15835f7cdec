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

from pydicom.dataset import Dataset

from .._isolation import IsolatedWorker
from ..errors import (
    MemoryBudgetExceededError,
    TimeBudgetExceededError,
    WorkerCrashedError,
    check_count,
    invalid_argument,
)
from .image import Image
from .limits import DECODE_MEMORY_BYTES, TIME_BUDGET_S
from .reader import read_file_object, read_image


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
        if isinstance(time_budget_s, bool) or not isinstance(time_budget_s, (int, float)) or not (
                0 < time_budget_s < float("inf")):
            raise invalid_argument("IsolatedReader", "time_budget_s", time_budget_s,
                                   "a positive number of seconds (read in this process with read_image "
                                   "for no budget)")
        check_count("IsolatedReader", "memory_limit_bytes", memory_limit_bytes, minimum=1, none=True,
                    meaning="bytes; None: no cap")
        check_count("IsolatedReader", "max_pixels", max_pixels, minimum=1, none=True, meaning="pixels")
        self.time_budget_s = float(time_budget_s)
        self._read = functools.partial(read_image, max_pixels=max_pixels)
        self._worker = IsolatedWorker(memory_limit_bytes=memory_limit_bytes, initializer=_ready_to_read)

    def start(self) -> None:
        """Start the worker now, so the first read does not wait for it."""
        self._worker.start()

    def read(self, source: Any, *, transfer_syntax_uid: str | None = None) -> Image:
        """``read_image(source)`` in the worker: a path, bytes or a binary file object (read here,
        decoded there). A pydicom Dataset is read in this process (it is already parsed, and
        ``transfer_syntax_uid`` applies to it as in ``read_image``); any other type is refused
        with ``InputTypeError``."""
        if transfer_syntax_uid is not None or not isinstance(source, (str, os.PathLike, bytes, bytearray,
                                                                        memoryview)):
            if isinstance(source, Dataset) or transfer_syntax_uid is not None or not hasattr(source, "read"):
                return self._read(source, transfer_syntax_uid=transfer_syntax_uid)
            source, _ = read_file_object(source)
        if isinstance(source, memoryview):
            source = bytes(source)
        path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
        where = f"'{path}'" if path is not None else "the input"
        try:
            return self._worker.call(self._read, source, time_limit_s=self.time_budget_s).value
        except TimeBudgetExceededError as exc:
            raise TimeBudgetExceededError(
                f"reading {where} took longer than the time budget of {self.time_budget_s:g} s per file and was "
                f"stopped: its compressed data keeps the decoder busy far longer than any radiograph needs "
                f"(damaged or hostile). Ask the sender for the image again; raise the budget only for an "
                f"image known to be genuine",
                limit=exc.limit, path=path) from None
        except MemoryBudgetExceededError as exc:
            raise MemoryBudgetExceededError(
                f"reading {where} {exc}: decoding it needs more memory than any image within the size limits "
                f"(damaged or hostile). Ask the sender for the image again",
                limit=exc.limit, path=path) from None
        except WorkerCrashedError as exc:
            raise WorkerCrashedError(
                f"reading {where} stopped: {exc} (a decoder crashed on its data). The image is refused; "
                f"ask the sender for it again",
                exit_code=exc.exit_code, path=path) from None

    def close(self) -> None:
        """Stop the worker process; the reader starts a new one if ``read`` is called again."""
        self._worker.close()

    def __enter__(self) -> IsolatedReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
