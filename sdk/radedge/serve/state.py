"""``StateFolder``: where ``radedge serve`` keeps what must outlive the process.

    <state>/journal.sqlite     the journal (and its -wal / -shm files)
    <state>/inbox/             images received, each flushed to disk before the sender hears Success
    <state>/outputs/<key>/     per image: overlay.png, result.json, and the DICOM objects until forwarded
    <state>/rejected/          files from the watched folder that are not images radedge reads
    <state>/salt               the secret behind every key (readable by the service alone)
    <state>/audit.jsonl        the audit log (unless [audit] path says otherwise)
    <state>/lock               held while a service runs on this folder

An image's ``key`` is an HMAC of its SOP Instance UID under the salt: stable for the folder's
life, so the same instance always finds its row and files, and worthless to anyone without
the salt, so it can appear in file names, logs, the page and the audit log.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .._files import sync_folder, write_atomically


class StateFolderInUseError(RuntimeError):
    """Another ``radedge serve`` holds this state folder."""


class StateFolder:
    """The folder at ``path``, created with its subfolders if missing."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self.inbox = self.path / "inbox"
        self.outputs = self.path / "outputs"
        self.rejected = self.path / "rejected"
        for folder in (self.path, self.inbox, self.outputs, self.rejected):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.journal = self.path / "journal.sqlite"
        self._salt = self._load_salt()
        self._lock_descriptor: int | None = None

    def lock(self) -> None:
        """Hold the folder for this process (released when it exits, however it exits): two
        services sharing a journal would each analyse the same images."""
        descriptor = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StateFolderInUseError(
                f"another radedge serve is running on the state folder '{self.path}'; stop it, or give this "
                f"one its own --state folder") from None
        self._lock_descriptor = descriptor

    def unlock(self) -> None:
        if self._lock_descriptor is not None:
            os.close(self._lock_descriptor)
            self._lock_descriptor = None

    def key(self, uid: str) -> str:
        """The image's key: 32 hex digits of HMAC-SHA256(salt, UID)."""
        return hmac.new(self._salt, uid.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def _load_salt(self) -> bytes:
        path = self.path / "salt"
        if not path.exists():
            # Created once, whole, flushed: a salt lost or changed would re-key every image.
            write_atomically(path, secrets.token_hex(32).encode("ascii"), durable=True)
            os.chmod(path, 0o600)
        salt = path.read_bytes().strip()
        if len(salt) < 32:
            raise RuntimeError(f"the salt file '{path}' is damaged (too short); restore it from a backup of the "
                               f"state folder, or start a new state folder")
        return salt

    def output_folder(self, key: str) -> Path:
        return self.outputs / key

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.path))

    def resolve(self, relative: str) -> Path:
        return self.path / relative

    def remove(self, relative: str) -> None:
        """Remove a file of the folder if it is there, and flush the removal."""
        path = self.resolve(relative)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        sync_folder(path.parent)
