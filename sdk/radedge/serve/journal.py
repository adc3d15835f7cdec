"""``Journal``: the service's durable memory, one SQLite database (WAL) in the state folder.

Every instance received is a row, keyed by its SOP Instance UID, that moves through

    received -> analysing -> done | not analysed | failed

(``refused`` for one the receiver turned away). A result's DICOM objects wait in the outbox
until the destination has them; each analysis leaves one audit line. A state change and
everything that comes with it (the result, its outbox rows, its audit line) commit in one
transaction, with ``synchronous=FULL``, so whatever the moment the process is killed, the
journal holds either all of it or none of it:

- an instance is in the journal only once its file is on disk (the receiver writes and
  flushes the file first), and only then is the sender told Success;
- one killed while ``analysing`` is analysed again on restart (its earlier, uncommitted
  attempt left nothing behind); an image the process died in while its models ran
  ``MAX_ATTEMPTS`` times is given up on, so one that takes the process down every time
  does not keep a restarting service in a loop;
- a result's objects are forwarded until the destination acknowledges them.

No name, ID or date from a DICOM header is stored: the UID is the key (and is never shown;
pages and logs use ``key``, a salted hash), plus modality, body part and view.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Journal states; ``WAITING`` are those the analysis still owes a result.
RECEIVED, ANALYSING, DONE, NOT_ANALYSED, FAILED, REFUSED = (
    "received", "analysing", "done", "not analysed", "failed", "refused")
STATES = (RECEIVED, ANALYSING, DONE, NOT_ANALYSED, FAILED, REFUSED)
WAITING = (RECEIVED, ANALYSING)
#: Outbox states.
PENDING, SENT, GAVE_UP = "pending", "sent", "gave up"

#: Analyses of one image the process may die in before the image is given up on. Counted when
#: its models start (decoding runs in a worker process, which cannot take the service down).
MAX_ATTEMPTS = 5

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    uid          TEXT NOT NULL UNIQUE,
    key          TEXT NOT NULL UNIQUE,
    via          TEXT NOT NULL,
    caller       TEXT,
    sop_class    TEXT,
    modality     TEXT,
    body_part    TEXT,
    view         TEXT,
    file         TEXT,
    state        TEXT NOT NULL,
    reason       TEXT,
    received_at  REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    duplicates   INTEGER NOT NULL DEFAULT 0,
    summary      TEXT
);
CREATE INDEX IF NOT EXISTS instances_by_state ON instances (state, seq);
CREATE TABLE IF NOT EXISTS outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_seq     INTEGER NOT NULL REFERENCES instances (seq),
    kind             TEXT NOT NULL,
    file             TEXT NOT NULL,
    sop_class        TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    refusals         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_error       TEXT,
    sent_at          REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS audit (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Instance:
    """One journal row. ``file``: its name in the inbox folder (None once refused)."""

    seq: int
    uid: str
    key: str
    via: str
    caller: str | None
    sop_class: str | None
    modality: str | None
    body_part: str | None
    view: str | None
    file: str | None
    state: str
    reason: str | None
    received_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    duplicates: int
    summary: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """The instance as the page and ``/api/status`` show it: no UID, no header value
        beyond modality, body part and view."""
        summary = self.summary or {}
        flagged_at = summary.get("flagged_at")
        return {
            "key": self.key,
            "received_at": self.received_at,
            "via": self.via,
            "state": self.state,
            "modality": self.modality,
            "body_part": self.body_part,
            "view": self.view,
            "flags": summary.get("flags", []),
            "models": summary.get("models", {}),
            "reason": self.reason,
            "overlay": bool(summary.get("overlay")),
            "receive_to_flag_ms": None if flagged_at is None else round((flagged_at - self.received_at) * 1000, 1),
            "objects": summary.get("objects"),
            "outputs_note": summary.get("outputs_note"),
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True)
class OutboxItem:
    id: int
    instance_seq: int
    kind: str
    file: str
    sop_class: str
    sop_instance_uid: str
    state: str
    attempts: int
    refusals: int
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True)
class Recovery:
    """What ``Journal.recover`` found at start: analyses interrupted and resumed, images given
    up on after ``MAX_ATTEMPTS`` interrupted analyses."""

    resumed: int
    given_up: int


class Journal:
    """The journal at ``path`` (created if missing). One connection shared by the service's
    threads under a lock; every method is one short transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on the disk when it returns, WAL or not (NORMAL may lose the last
        # transactions on power loss, and the sender has been told Success by then).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
            elif int(row[0]) != _SCHEMA_VERSION:
                raise RuntimeError(f"the journal '{self.path}' has schema {row[0]}; this radedge reads "
                                   f"schema {_SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- receiving -------------------------------------------------------------------------

    def receive(self, *, uid: str, key: str, via: str, caller: str | None, file: str,
                described: dict[str, str | None], received_at: float | None = None) -> bool:
        """Record an instance whose file is already on disk in the inbox. Returns False (and
        counts a duplicate) when the UID is already there, unless it was refused before, in
        which case this copy replaces the refusal."""
        now = time.time() if received_at is None else received_at
        with self._transaction() as db:
            row = db.execute("SELECT state FROM instances WHERE uid = ?", (uid,)).fetchone()
            if row is not None and row["state"] != REFUSED:
                db.execute("UPDATE instances SET duplicates = duplicates + 1 WHERE uid = ?", (uid,))
                return False
            db.execute("DELETE FROM instances WHERE uid = ?", (uid,))
            db.execute(
                "INSERT INTO instances (uid, key, via, caller, sop_class, modality, body_part, view, file, state, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (uid, key, via, caller, described.get("sop_class"), described.get("modality"),
                 described.get("body_part"), described.get("view"), file, RECEIVED, now))
            return True

    def refuse(self, *, uid: str, key: str, via: str, caller: str | None, reason: str,
               described: dict[str, str | None]) -> None:
        """Record an instance the receiver turned away, with why (shown on the page). A UID
        already received stays as it is."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO instances (uid, key, via, caller, sop_class, modality, body_part, view, state, reason, "
                "received_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET reason = excluded.reason, finished_at = excluded.finished_at "
                "WHERE state = 'refused'",
                (uid, key, via, caller, described.get("sop_class"), described.get("modality"),
                 described.get("body_part"), described.get("view"), REFUSED, reason, now, now))

    def has(self, uid: str) -> bool:
        """Whether ``uid`` was received (a refusal does not count)."""
        with self._lock:
            row = self._db.execute("SELECT state FROM instances WHERE uid = ?", (uid,)).fetchone()
        return row is not None and row["state"] != REFUSED

    def count_duplicate(self, uid: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE instances SET duplicates = duplicates + 1 WHERE uid = ?", (uid,))

    def waiting(self) -> int:
        """Instances received and not analysed yet."""
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM instances WHERE state IN (?, ?)", WAITING).fetchone()[0]

    def inbox_files(self) -> set[str]:
        """Inbox file names the journal refers to."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT file FROM instances WHERE file IS NOT NULL")}

    # -- analysing -------------------------------------------------------------------------

    def recover(self) -> Recovery:
        """At start: analyses the last process did not finish go back to ``received``, except
        for an image the process died in ``MAX_ATTEMPTS`` times, which fails with the reason."""
        now = time.time()
        with self._transaction() as db:
            given_up = db.execute(
                "UPDATE instances SET state = ?, reason = ?, finished_at = ? WHERE state = ? AND attempts >= ?",
                (FAILED, f"the service stopped during its analysis {MAX_ATTEMPTS} times; it is not tried again",
                 now, ANALYSING, MAX_ATTEMPTS)).rowcount
            resumed = db.execute("UPDATE instances SET state = ?, started_at = NULL WHERE state = ?",
                                 (RECEIVED, ANALYSING)).rowcount
        return Recovery(resumed=resumed, given_up=given_up)

    def claim_next(self) -> Instance | None:
        """The oldest instance waiting, now ``analysing``, or None."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT * FROM instances WHERE state = ? ORDER BY seq LIMIT 1", (RECEIVED,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE instances SET state = ?, started_at = ? WHERE seq = ?", (ANALYSING, now, row["seq"]))
        return self.instance_by_seq(row["seq"])

    def attempt(self, seq: int) -> int:
        """Count an analysis of the instance starting in this process; the count so far."""
        with self._transaction() as db:
            db.execute("UPDATE instances SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            return db.execute("SELECT attempts FROM instances WHERE seq = ?", (seq,)).fetchone()[0]

    def finish(self, seq: int, *, state: str, reason: str | None, summary: dict[str, Any],
               outbox: list[tuple[str, str, str, str]], audit: dict[str, Any],
               finished_at: float | None = None) -> None:
        """Commit an analysis: the instance's ``state`` (done / not analysed / failed), its
        ``summary`` for the page, the objects to forward (``(kind, file, sop_class,
        sop_instance_uid)``) and its audit record, all or nothing. The audit record gets its
        ``seq`` here."""
        if state not in (DONE, NOT_ANALYSED, FAILED):
            raise ValueError(f"an analysis finishes done, not analysed or failed, not {state!r}")
        now = time.time() if finished_at is None else finished_at
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE instances SET state = ?, reason = ?, summary = ?, finished_at = ? WHERE seq = ? AND state = ?",
                (state, reason, json.dumps(summary), now, seq, ANALYSING)).rowcount
            if updated != 1:
                raise RuntimeError(f"journal row {seq} is not being analysed; its result is not recorded twice")
            for kind, file, sop_class, sop_instance_uid in outbox:
                db.execute("INSERT INTO outbox (instance_seq, kind, file, sop_class, sop_instance_uid, state, "
                           "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (seq, kind, file, sop_class, sop_instance_uid, PENDING, now))
            audit_seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit").fetchone()[0]
            db.execute("INSERT INTO audit (seq, line) VALUES (?, ?)",
                       (audit_seq, json.dumps({"seq": audit_seq, **audit}, separators=(",", ":"))))

    # -- forwarding ------------------------------------------------------------------------

    def due(self, now: float, limit: int = 64) -> list[OutboxItem]:
        """Outbox objects whose next attempt is due, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE state = ? AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                (PENDING, now, limit)).fetchall()
        return [OutboxItem(**{k: row[k] for k in OutboxItem.__dataclass_fields__}) for row in rows]

    def next_due_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = ?", (PENDING,)).fetchone()
        return row[0]

    def sent(self, item_id: int, when: float | None = None) -> None:
        with self._transaction() as db:
            db.execute("UPDATE outbox SET state = ?, sent_at = ?, attempts = attempts + 1, last_error = NULL "
                       "WHERE id = ?", (SENT, time.time() if when is None else when, item_id))

    def retry(self, item_id: int, *, error: str, next_attempt_at: float, refused: bool,
              refusals_before_giving_up: int) -> bool:
        """A send failed: try again at ``next_attempt_at``. ``refused``: the destination turned
        the object down (not busy, not unreachable); after ``refusals_before_giving_up`` such
        refusals in a row the object is given up on. Returns whether it was given up on."""
        with self._transaction() as db:
            row = db.execute("SELECT refusals FROM outbox WHERE id = ?", (item_id,)).fetchone()
            refusals = (row["refusals"] + 1) if refused else 0
            give_up = refused and refusals >= refusals_before_giving_up
            db.execute("UPDATE outbox SET attempts = attempts + 1, refusals = ?, last_error = ?, "
                       "next_attempt_at = ?, state = ? WHERE id = ?",
                       (refusals, error, next_attempt_at, GAVE_UP if give_up else PENDING, item_id))
        return give_up

    # -- audit -----------------------------------------------------------------------------

    def audit_after(self, seq: int) -> list[str]:
        """Audit lines after ``seq``, in order."""
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT line FROM audit WHERE seq > ? ORDER BY seq", (seq,))]

    # -- reading ---------------------------------------------------------------------------

    def instance_by_seq(self, seq: int) -> Instance | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM instances WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else _instance(row)

    def instance(self, key: str) -> Instance | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM instances WHERE key = ?", (key,)).fetchone()
        return None if row is None else _instance(row)

    def recent(self, limit: int = 200) -> list[Instance]:
        """The newest ``limit`` instances, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM instances ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [_instance(row) for row in rows]

    def all_instances(self) -> list[Instance]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM instances ORDER BY seq").fetchall()
        return [_instance(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Instances per state, every state present."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM instances GROUP BY state").fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({row[0]: row[1] for row in rows})
        return counts

    def outbox_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        counts = dict.fromkeys((PENDING, SENT, GAVE_UP), 0)
        counts.update({row[0]: row[1] for row in rows})
        return counts

    def outbox(self) -> list[OutboxItem]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        return [OutboxItem(**{k: row[k] for k in OutboxItem.__dataclass_fields__}) for row in rows]


def _instance(row: sqlite3.Row) -> Instance:
    fields = {name: row[name] for name in Instance.__dataclass_fields__}
    fields["summary"] = json.loads(row["summary"]) if row["summary"] else None
    return Instance(**fields)
