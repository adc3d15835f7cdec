"""``FolderWatcher``: a drop folder, for consoles that write files instead of sending them.

The folder is polled (no inotify: it works the same on network shares). A file is taken
once its size and modification time held still for one poll interval (a writer may still be
copying it in), and only files a copy is usually finished with: hidden names and the
temporary names copy tools use (``.part``, ``.tmp``, ``.crdownload``) are left alone. Once
the image is in the inbox and the journal, the file is removed from the drop folder; a file
that is not an image radedge reads moves to ``<state>/rejected/`` with its reason in the log.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from .._files import sync_folder
from ..io.limits import MAX_FILE_BYTES
from ..io.reader import NOT_IMAGES
from .config import FolderConfig
from .intake import BUSY, DUPLICATE, STORED, Intake
from .state import StateFolder

log = logging.getLogger("radedge.serve")

_UNFINISHED = frozenset({".part", ".tmp", ".crdownload", ".partial", ".filepart"})


class FolderWatcher:
    def __init__(self, config: FolderConfig, intake: Intake, state: StateFolder):
        self._config = config
        self._intake = intake
        self._state = state
        self._seen: dict[Path, tuple[int, int]] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="radedge-folder", daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> None:
        log.info("watching the folder %s", self._config.path)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                self.poll()
                self._stopping.wait(self._config.poll_interval_s)
        except BaseException as exc:
            self.failure = exc
            log.exception("the folder watcher stopped")

    def poll(self) -> int:
        """Take every file that held still since the last poll; how many were taken."""
        current: dict[Path, tuple[int, int]] = {}
        taken = 0
        for path in sorted(self._candidates()):
            try:
                status = path.stat()
            except OSError:
                continue
            signature = (status.st_size, status.st_mtime_ns)
            if self._seen.get(path) == signature and self._take(path, status.st_size):
                taken += 1
                continue
            current[path] = signature
        self._seen = current
        return taken

    def _candidates(self):
        for root, folders, files in os.walk(self._config.path):
            folders[:] = [name for name in folders if not name.startswith(".")]
            for name in files:
                path = Path(root) / name
                if name.startswith(".") or path.suffix.lower() in _UNFINISHED | NOT_IMAGES:
                    continue
                if path.is_file() and not path.is_symlink():
                    yield path

    def _take(self, path: Path, size: int) -> bool:
        """Hand one file to the intake; whether it left the folder."""
        if size > MAX_FILE_BYTES:
            return self._reject(path, None, f"{size} bytes, more than radedge reads ({MAX_FILE_BYTES})")
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read a file in the watched folder (%s); trying again", exc.strerror)
            return False
        result = self._intake.take(data, via="folder", caller=None)
        if result.outcome == BUSY:
            log.warning("the watched folder waits: %s", result.reason)
            return False
        if result.outcome in (STORED, DUPLICATE):
            path.unlink(missing_ok=True)
            sync_folder(path.parent)
            return True
        return self._reject(path, result.key, result.reason or result.outcome)

    def _reject(self, path: Path, key: str | None, reason: str) -> bool:
        """Move the file to ``rejected/`` under its key (its own name may hold a patient's
        name), its reason beside it."""
        name = key or self._state.key(f"file:{path}:{time.time_ns()}")
        target = self._state.rejected / f"{name}{path.suffix.lower()}"
        shutil.move(path, target)
        (self._state.rejected / f"{name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        log.info("moved a file from the watched folder to rejected/%s: %s", target.name, reason)
        return True
