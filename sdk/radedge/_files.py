"""Writing outputs whole or not at all, into folders proven writable first."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place, so a
    reader (a PACS forwarder, a viewer polling the folder) never sees a partial file.

    ``durable``: also flush the file and then its folder to the disk before returning, so the
    file survives a power cut or a killed process from that moment on (what a service must
    know before it tells a sender the image is safe)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        sync_folder(path.parent)
    return path


def sync_folder(path: str | os.PathLike) -> None:
    """Flush a folder's entries (files created, renamed or removed in it) to the disk."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def writable_folder(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` if it is missing and prove that files can be written in it.

    Raises ``NotADirectoryError`` when ``path`` is something other than a folder, and the
    ``OSError`` of the failed attempt when it cannot be created or written in. The proof is
    a file created and removed, not ``os.access``, which judges by the real user and the mode
    bits and so misses ACLs, security modules and servers that refuse (NFS root squashing).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path))
    path.mkdir(parents=True, exist_ok=True)
    descriptor, probe = tempfile.mkstemp(dir=path, prefix=".radedge-write-check-")
    os.close(descriptor)
    os.unlink(probe)
    return path


def write_directory(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write`` on a new folder beside ``path``, then put that folder in ``path``'s place,
    so a reader never sees a half-written bundle or repository, nor a mix of the old and new.
    An existing ``path`` moves aside first and comes back if the swap fails; on any failure
    the new folder is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    # mkdtemp makes it private (0700); the result is as readable as any folder made here.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    try:
        write(staging)
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            os.replace(staging, path)
            return path
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
        os.replace(path, old / path.name)
        try:
            os.replace(staging, path)
        except OSError:
            os.replace(old / path.name, path)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
