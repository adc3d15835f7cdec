"""Run a function where it can be stopped: a child process with a time limit per call and a
memory cap.

Decoders are native code. A hostile or corrupt codestream can make one loop for minutes,
allocate gigabytes or crash the process, and a thread running native code cannot be
interrupted. A child process can: ``IsolatedWorker`` keeps one, sends it calls one at a
time, kills it when a call outlives its time limit, caps its address space, and starts a
new one for the next call. The caller gets the function's result or exception as if it had
run in process, or a typed error saying which limit was hit.

The child is a fresh interpreter (``sys.executable``): it shares no threads or locks with
the caller, which may be running ONNX Runtime or CUDA, and it imports only what the called
function needs. POSIX only (the pipe to it is a socket pair passed by descriptor).
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from typing import Any

from .errors import MemoryBudgetExceededError, TimeBudgetExceededError, WorkerCrashedError

#: How long a new child may take to import and run its initializer before it counts as broken.
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CallResult:
    """What one call returned and what it cost in the child: wall seconds, and the child's
    peak resident memory during the call (bytes; 0 where the system cannot say)."""

    value: Any
    seconds: float
    peak_rss_bytes: int


class IsolatedWorker:
    """One child process that runs calls one at a time.

    ``memory_limit_bytes``: address space the child may add to what it holds after its
    initializer (``RLIMIT_AS``; Linux only, elsewhere only the time limit holds); an
    allocation past it fails inside the child and the call raises
    ``MemoryBudgetExceededError``. ``initializer(*initargs)`` runs
    once in every child before its first call (load a model, warm a decoder). ``quiet``
    sends what the child prints (decoder warnings) to ``/dev/null`` instead of the caller's
    output.

    Functions and arguments cross to the child by pickle, so a function must be importable
    by name (defined at module level). Use as a context manager, or call ``close``.
    """

    def __init__(
        self,
        *,
        memory_limit_bytes: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple = (),
        quiet: bool = False,
    ):
        self._quiet = quiet
        self._memory_limit = memory_limit_bytes
        self._initializer = initializer
        self._initargs = initargs
        self._process = None
        self._channel: _Channel | None = None
        self._ready = False

    def start(self) -> None:
        """Start the child now (it loads in the background) rather than at the first call."""
        if self._process is not None and self._process.poll() is None:
            return
        self._discard()
        parent_end, child_end = socket.socketpair()
        # A fresh interpreter running this module, not multiprocessing's spawn: spawn
        # re-imports the caller's main script in the child, which an application embedding
        # radedge may not guard with ``if __name__ == "__main__"``.
        process = subprocess.Popen(
            [sys.executable, "-c", f"import {__name__} as m; m._child_main({child_end.fileno()})"],
            pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
            stdout=subprocess.DEVNULL if self._quiet else None, stderr=subprocess.DEVNULL if self._quiet else None,
        )
        child_end.close()
        channel = _Channel(Connection(parent_end.detach()))
        channel.send(list(sys.path))  # first, so the child can unpickle what follows
        channel.send((self._memory_limit, self._initializer, self._initargs))
        self._process, self._channel, self._ready = process, channel, False

    def call(self, function: Callable[..., Any], *args: Any, time_limit_s: float | None = None) -> CallResult:
        """Run ``function(*args)`` in the child; return its value, raise what it raised.

        Raises ``TimeBudgetExceededError`` when the call has not returned after
        ``time_limit_s`` seconds (the child is killed), ``MemoryBudgetExceededError`` when
        it ran out of its memory cap, ``WorkerCrashedError`` when the child died (a signal
        or an exit from native code). The next call starts a new child.
        """
        self.start()
        self._await_ready()
        try:
            self._channel.send((function, args))
        except OSError:  # the child died while idle (killed from outside)
            raise self._crashed() from None
        if not self._channel.connection.poll(time_limit_s):
            self._kill()
            raise TimeBudgetExceededError(f"did not finish within {time_limit_s:g} s; stopped", limit=time_limit_s)
        try:
            status, payload, seconds, peak = self._channel.receive()
        except (EOFError, OSError):
            raise self._crashed() from None
        if status == "ok":
            return CallResult(payload, seconds, peak)
        if status == "memory":
            self._kill()  # a child that ran out of memory may hold half-built state
            raise MemoryBudgetExceededError(
                f"needed more than its memory cap of {self._memory_limit / 2**30:.1f} GiB; stopped",
                limit=self._memory_limit)
        raise payload

    def close(self) -> None:
        """Stop the child (politely, then by force)."""
        if self._channel is not None and self._process is not None and self._process.poll() is None:
            try:
                self._channel.send(None)
                self._process.wait(2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self) -> IsolatedWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _await_ready(self) -> None:
        if self._ready:
            return
        if not self._channel.connection.poll(START_TIMEOUT_S):
            self._kill()
            raise WorkerCrashedError(f"the worker process did not start within {START_TIMEOUT_S:g} s")
        try:
            status, payload, _, _ = self._channel.receive()
        except (EOFError, OSError):
            raise self._crashed() from None
        if status != "ready":
            self._kill()
            raise payload
        self._ready = True

    def _crashed(self) -> WorkerCrashedError:
        try:
            code = self._process.wait(5.0)
        except subprocess.TimeoutExpired:
            code = None
        self._kill()
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return WorkerCrashedError(f"the worker process was killed by {name}", exit_code=code)
        return WorkerCrashedError(f"the worker process exited with status {code}", exit_code=code)

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._discard()

    def _discard(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._process, self._channel, self._ready = None, None, False


def _child_main(descriptor: int) -> None:
    """The child's entry: the caller's import path, its initializer, the memory cap, then
    one call at a time until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    channel = _Channel(Connection(descriptor))
    try:
        sys.path[:] = channel.receive()
        memory_limit, initializer, initargs = channel.receive()
    except Exception as exc:  # noqa: BLE001 - an initializer this interpreter cannot import
        channel.send(("failed", _sendable(exc), 0.0, 0))
        return
    _serve(channel, memory_limit, initializer, initargs)


def _serve(channel: _Channel, memory_limit: int | None, initializer, initargs) -> None:
    try:
        if initializer is not None:
            initializer(*initargs)
        if memory_limit is not None:
            _cap_address_space(memory_limit)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        channel.send(("failed", _sendable(exc), 0.0, 0))
        return
    channel.send(("ready", None, 0.0, 0))
    while True:
        try:
            request = channel.receive()
        except (EOFError, OSError):
            return
        if request is None:
            return
        function, args = request
        reset_peak_rss()
        start = time.perf_counter()
        try:
            reply = ("ok", function(*args))
        except MemoryError:
            reply = ("memory", None)
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the parent
            reply = ("raised", _sendable(exc))
        seconds = time.perf_counter() - start
        try:
            try:
                channel.send((*reply, seconds, peak_rss()))
            except MemoryError:
                channel.send(("memory", None, seconds, peak_rss()))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:  # an unpicklable value
                channel.send(("raised", _sendable(exc), seconds, peak_rss()))
        except OSError:  # the parent has gone (or killed this call): nothing to answer
            return


#: Buffers at least this large cross in shared memory instead of through the socket.
_SHARED_BUFFER_BYTES = 1 << 18


class _Channel:
    """One end of the socket to the other process. Messages are pickled with their large
    buffers (image arrays) kept apart: the sender copies them into a shared-memory file
    (a memfd, passed once by descriptor and reused while large enough), the receiver copies
    them out. An 8 MB array crosses in about 3.5 ms, against 12 through the socket and 8 with
    a new shared file per message (the kernel zeroes every new page); a whole 3000 x 3000
    image read in a worker costs 15 ms more than in process (examples/bench_isolated_read.py)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self._region: mmap.mmap | None = None

    def send(self, message: Any) -> None:
        buffers: list[pickle.PickleBuffer] = []
        header = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
        views = [buffer.raw() for buffer in buffers]
        shared = sum(view.nbytes for view in views if view.nbytes >= _SHARED_BUFFER_BYTES)
        grow = shared > 0 and (self._region is None or len(self._region) < shared)
        if grow:
            self._replace_region(shared)
        offset = 0  # the shared buffers are in place before the message that announces them
        for view in views:
            if view.nbytes >= _SHARED_BUFFER_BYTES:
                self._region[offset:offset + view.nbytes] = view
                offset += view.nbytes
        self.connection.send((header, [view.nbytes for view in views], grow and len(self._region)))
        if grow:
            send_handle(self.connection, self._region_descriptor, 0)
            os.close(self._region_descriptor)
        for view in views:
            if view.nbytes < _SHARED_BUFFER_BYTES:
                self.connection.send_bytes(view)

    def receive(self) -> Any:
        header, sizes, new_region = self.connection.recv()
        if new_region:
            descriptor = recv_handle(self.connection)
            if self._region is not None:
                self._region.close()
            try:
                self._region = mmap.mmap(descriptor, new_region)
            finally:
                os.close(descriptor)
        buffers, offset = [], 0
        for size in sizes:
            buffer = bytearray(size)  # writable, so arrays rebuilt on it are too
            if size < _SHARED_BUFFER_BYTES:
                self.connection.recv_bytes_into(buffer)
            else:
                buffer[:] = memoryview(self._region)[offset:offset + size]
                offset += size
            buffers.append(buffer)
        return pickle.loads(header, buffers=buffers)

    def _replace_region(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self._region) if self._region is not None else 0)
        if self._region is not None:
            self._region.close()
        self._region_descriptor = os.memfd_create("radedge-buffers", os.MFD_CLOEXEC)
        os.ftruncate(self._region_descriptor, capacity)
        self._region = mmap.mmap(self._region_descriptor, capacity)

    def close(self) -> None:
        if self._region is not None:
            self._region.close()
            self._region = None
        self.connection.close()


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it pickles, else a RuntimeError carrying its type and text."""
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` figure (VmSize, VmHWM) in bytes; 0 where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cap_address_space(extra_bytes: int) -> None:
    """Let the process map at most ``extra_bytes`` beyond what it maps now."""
    try:
        import resource
    except ImportError:  # Windows: no cap, the time limit still holds
        return
    current = _status_kib("VmSize")
    if current == 0:  # no /proc (macOS): what is mapped now is unknown, so no cap
        return
    resource.setrlimit(resource.RLIMIT_AS, (current + extra_bytes, resource.RLIM_INFINITY))


def reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, so each call reports its own peak.
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


def current_rss() -> int:
    """Resident memory now, in bytes (Linux; 0 elsewhere)."""
    return _status_kib("VmRSS")


def peak_rss() -> int:
    peak = _status_kib("VmHWM")
    if peak:
        return peak
    try:
        import resource
    except ImportError:
        return 0
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if os.uname().sysname == "Darwin" else usage * 1024
