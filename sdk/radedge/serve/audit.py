"""``AuditLog``: one JSON line per analysis, appended from the journal, each line exactly once.

A line is made in the same transaction as the result it describes, so the journal holds
exactly one per analysis; this file is that table, appended in order and flushed. Each
line carries its ``seq``: at start the last complete line says how far the file got (a line
cut short by a kill is removed first), and the lines after it are appended, so neither a
kill before the append nor one after it loses or repeats a line.

A line holds the image's key (a salted hash of its SOP Instance UID), how it arrived, the
attempt, the outcome and its reason, each model's id, version, bundle digest, precision,
backend, flag codes and stage timings, the number of DICOM objects, and the stages'
timings; never a name, ID or date from the image's header.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .journal import Journal

_TAIL = 1 << 16


class AuditLog:
    def __init__(self, path: Path, journal: Journal):
        self.path = path
        self._journal = journal
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._written = self._recover()

    def _recover(self) -> int:
        """The seq of the last whole line, after cutting off a torn one."""
        if not self.path.exists():
            return 0
        with open(self.path, "r+b") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - _TAIL))
            tail = stream.read()
            end = tail.rfind(b"\n")
            if end + 1 != len(tail):
                # Cut short by a kill mid-append: the journal still has the whole line.
                stream.truncate(size - len(tail) + end + 1)
                stream.flush()
                os.fsync(stream.fileno())
            lines = tail[:end].split(b"\n") if end >= 0 else []
        for line in reversed(lines):
            try:
                return int(json.loads(line)["seq"])
            except (ValueError, KeyError, TypeError):
                continue
        return 0

    def flush(self) -> int:
        """Append the journal's lines the file lacks; how many."""
        with self._lock:
            lines = self._journal.audit_after(self._written)
            if not lines:
                return 0
            with open(self.path, "ab") as stream:
                stream.write("".join(line + "\n" for line in lines).encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
            self._written = json.loads(lines[-1])["seq"]
            return len(lines)
