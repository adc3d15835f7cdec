"""Functions the isolation tests run in a worker process (importable by name there)."""

from __future__ import annotations

import ctypes
import os
import signal
import time

import numpy as np

from radedge.errors import CodestreamMismatchError


def echo(value):
    return value


def array(rows: int, columns: int) -> np.ndarray:
    return np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns)


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "awake"


def spin() -> None:
    while True:  # a decoder that never returns, holding the CPU
        pass


def allocate(megabytes: int) -> int:
    block = np.ones(megabytes << 20, dtype=np.uint8)
    return int(block.sum())


def segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a crashing native decoder would


def killed_by(signal_number: int) -> None:
    os.kill(os.getpid(), signal_number)
    time.sleep(5)


def exits() -> None:
    os._exit(3)


def raises_value_error() -> None:
    raise ValueError("a plain ValueError from the worker")


def raises_typed() -> None:
    raise CodestreamMismatchError("SIZ disagrees", attribute="Rows", dicom_value=512, codestream_value=4194604)


class _Unpicklable(Exception):
    def __init__(self, message, handle):
        super().__init__(message)
        self.handle = handle

    def __reduce__(self):
        raise TypeError("cannot pickle this error")


def raises_unpicklable() -> None:
    raise _Unpicklable("carries a lock", handle=None)


def failing_initializer() -> None:
    raise RuntimeError("the initializer failed")


SIGTERM = int(signal.SIGTERM)
