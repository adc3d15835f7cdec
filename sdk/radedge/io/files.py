"""Opening inputs: only regular files, and none longer than ``limits.MAX_FILE_BYTES``.

A watched folder or a command line can name anything: a FIFO, where ``open()`` waits
for a writer and ``read()`` for data, forever; a device such as ``/dev/zero``, which never
ends, or ``/dev/tty``, which waits for a key; a directory. The path is ``stat``-ed first so
a device is never opened, then opened with ``O_NONBLOCK`` (a FIFO swapped in meanwhile
opens at once instead of blocking) and ``fstat``-ed again: what is read is what was checked.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from typing import BinaryIO

from ..errors import InputNotFoundError, InputNotReadableError, NotRegularFileError
from . import limits

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# O_NONBLOCK and O_NOCTTY do not exist on Windows, where FIFOs and terminals are not
# files a path names either.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))


def open_regular_file(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file within ``limits.MAX_FILE_BYTES``.

    Returns a buffered binary stream positioned at byte 0. Raises ``NotRegularFileError``
    for anything but a regular file (symbolic links are followed), ``InputTooLargeError``
    for a file beyond the size limit, ``InputNotFoundError`` (a ``FileNotFoundError``) when
    there is nothing at ``path`` and ``InputNotReadableError`` (a ``PermissionError``) when
    the system refuses to open it.
    """
    path = os.fspath(path)
    where = f"'{path}'"
    try:
        _check_regular(os.stat(path), where, path)
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        status = os.fstat(descriptor)
        _check_regular(status, where, path)
        limits.check_input_size(status.st_size, where)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def unreadable(path: str | None, exc: OSError) -> InputNotFoundError | InputNotReadableError:
    """The radedge error for ``OSError`` ``exc`` met opening or reading the input at ``path``
    (None: a file object without a path)."""
    if path is None:
        reason = exc.strerror or type(exc).__name__
        return InputNotReadableError(f"the input cannot be read ({reason}).", reason=reason,
                                     errno_name=errno.errorcode.get(exc.errno or 0) if exc.errno else None)
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return InputNotFoundError(
            f"'{path}' does not exist (no such file, or a folder on its path is missing). Check the path; "
            "a relative path is taken from the current working directory.", path=path)
    if isinstance(exc, NotADirectoryError):
        return InputNotFoundError(
            f"'{path}' does not exist: a part of its path before the file name is a file, not a folder. "
            "Check the path.", path=path)
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        advice = ("this process may not read it. Give the user radedge runs as read permission on the file "
                  "(and search permission on its folders), or copy it somewhere readable.")
    else:
        advice = "the system refused to open it. Check the path and the storage it is on."
    return InputNotReadableError(f"'{path}' cannot be read ({reason}): {advice}", path=path, reason=reason,
                                 errno_name=name or None)


def check_stream(stream, where: str) -> None:
    """Refuse a caller's open file object that reads a FIFO, a device or an oversized file.

    Objects without a file descriptor (``io.BytesIO``) are only size-checked by the reader.
    """
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return
    status = os.fstat(descriptor)
    _check_regular(status, where, getattr(stream, "name", None))
    limits.check_input_size(status.st_size, where)


def _check_regular(status: os.stat_result, where: str, path=None) -> None:
    """``where``: the input as messages name it (a quoted path, or "the input"); ``path``: the
    path itself, when the input has one."""
    if stat.S_ISREG(status.st_mode):
        return
    kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a regular file")
    raise NotRegularFileError(
        f"{where} is {kind}; radedge reads images from regular files only, because reading "
        "a pipe, a device or a directory can block forever or never end. Copy the image into "
        "a regular file and pass that path.",
        path=path if isinstance(path, str) else None, received=kind,
    )


def text_mode(mode) -> bool:
    """Whether a file object's ``mode`` says it reads text: a str without "b" ("r", "r+").
    Other types say nothing (``gzip.GzipFile.mode`` is an int); what ``read`` returns decides."""
    return isinstance(mode, str) and "b" not in mode
