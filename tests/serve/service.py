"""``ServeProcess``: ``radedge serve`` as a console runs it, in its own process, for the tests.

Writes a configuration with free loopback ports, starts the service, waits for it to be
ready, and can stop it (SIGTERM), kill it (SIGKILL) and start it again on the same state
folder and ports. The journal is read through a read-only SQLite connection, as another
process on the console would.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .orthanc import free_port


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


class ServeProcess:
    def __init__(self, folder: Path, *, forward: tuple[str, int] | None = None, forward_ae: str = "PACS",
                 settings: str = "", page: bool = True, ae_title: str = "RADEDGE"):
        self.folder = folder
        self.state = folder / "state"
        self.port = free_port()
        self.page_port = free_port() if page else None
        self.ae_title = ae_title
        self.config = folder / "serve.toml"
        text = (f"[receiver]\nae_title = '{ae_title}'\nhost = '127.0.0.1'\nport = {self.port}\n"
                f"[page]\nenabled = {'true' if page else 'false'}\nhost = '127.0.0.1'\nport = {self.page_port or 0}\n")
        if forward is not None:
            text += (f"[forward]\nae_title = '{forward_ae}'\nhost = '{forward[0]}'\nport = {forward[1]}\n"
                     f"retry_initial_s = 0.2\nretry_max_s = 1.0\n")
        self.config.write_text(text + settings)
        self.log = folder / "serve.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.page_port}/"

    def start(self, timeout_s: float = 90) -> ServeProcess:
        self.starts += 1
        mark = self.log_text().count("ready:")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "radedge", "serve", "--config", str(self.config), "--state", str(self.state)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_until(lambda: self.log_text().count("ready:") > mark or self.process.poll() is not None, timeout_s,
                   "radedge serve to be ready")
        if self.process.poll() is not None:
            raise AssertionError(f"radedge serve exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("radedge serve did not stop within 60 s of SIGTERM") from None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def query(self, sql: str, *parameters) -> list[sqlite3.Row]:
        if not (self.state / "journal.sqlite").exists():
            return []
        db = sqlite3.connect(f"file:{self.state / 'journal.sqlite'}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            return db.execute(sql, parameters).fetchall()
        finally:
            db.close()

    def counts(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self.query("SELECT state, COUNT(*) FROM instances GROUP BY state")}

    def finished(self) -> int:
        counts = self.counts()
        return sum(counts.get(state, 0) for state in ("done", "not analysed", "failed"))

    def wait_finished(self, count: int, timeout_s: float) -> None:
        """Until ``count`` analyses are committed and their audit lines written: the audit log
        follows the journal a moment later, from its own thread."""
        wait_until(lambda: self.finished() >= count and len(self.audit_lines()) >= count, timeout_s,
                   f"{count} analyses and audit lines (have {self.finished()})", 0.25)

    def audit_lines(self) -> list[dict]:
        path = self.state / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self.alive():
            self.stop()
