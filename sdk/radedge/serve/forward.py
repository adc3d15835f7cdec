"""``Forwarder``: the outbox, C-STORE'd to the configured destination until it has every object.

Objects due are sent over one association per round. A send that fails because the
destination is down, unreachable or busy (no association, a timeout, 0xA7xx) is tried again
after ``retry_initial_s``, doubling up to ``retry_max_s`` with a little jitter (so consoles
that lost the same PACS do not return in step), for as long as it takes: a destination down
for an hour or a day loses nothing. A destination that answers with a refusal (0x0122,
0xA9xx, 0xCxxx) is asked again the same way and given up on after
``refusals_before_giving_up`` refusals in a row, which the page and the log show.

A kill between the destination's Success and the journal's record of it sends that object
again on restart: the same SOP Instance UID, which a PACS stores once (PS3.4 B.4.1).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .config import ForwardConfig
from .journal import Journal, OutboxItem
from .state import StateFolder

log = logging.getLogger("radedge.serve")

# PS3.4 B.2.3: Success, and the warnings that still mean stored.
_STORED = frozenset({0x0000, 0xB000, 0xB006, 0xB007})


def _busy(status: int) -> bool:
    return 0xA700 <= status <= 0xA7FF


class Forwarder:
    """Sends until ``stop``; ``wake`` when new objects are in the outbox. ``changed()`` is
    called after each round that moved anything (the page's outbox counts)."""

    def __init__(self, config: ForwardConfig, journal: Journal, state: StateFolder, changed: Callable[[], None]):
        self._config = config
        self._journal = journal
        self._state = state
        self._changed = changed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="radedge-forward", daemon=True)
        self.failure: BaseException | None = None
        self.last_error: str | None = None
        # The destination as a whole: while it is down, no object is tried before ``_down_until``.
        self._outages = 0
        self._down_until = 0.0

    def start(self) -> None:
        log.info("forwarding results to AE title %s at %s:%d", self._config.ae_title, self._config.host,
                 self._config.port)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(self._config.network_timeout_s + 5)

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                now = time.time()
                items = self._journal.due(now) if now >= self._down_until else []
                if items:
                    self.send(items)
                    self._changed()
                    continue
                due = max(self._journal.next_due_at() or now + 5.0, self._down_until)
                wait = min(5.0, max(0.0, due - now))
                self._wake.wait(wait)
                self._wake.clear()
        except BaseException as exc:
            self.failure = exc
            log.exception("the forwarder stopped")

    def backoff_s(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed ones (1, 2, 3...)."""
        delay = min(self._config.retry_initial_s * 2 ** max(0, attempts - 1), self._config.retry_max_s)
        return delay * random.uniform(1.0, 1.1)

    def send(self, items: list[OutboxItem]) -> None:
        """One round: one association, each item sent and recorded as it goes."""
        from pynetdicom import AE

        ae = AE(ae_title=self._config.calling_ae_title)
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = self._config.network_timeout_s
        for sop_class in sorted({item.sop_class for item in items}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        assoc = ae.associate(self._config.host, self._config.port, ae_title=self._config.ae_title)
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else "cannot be reached"
            self._unreachable(items, f"{self._config.ae_title} at {self._config.host}:{self._config.port} {why}")
            return
        if self._outages:
            log.info("%s is back: forwarding resumes", self._config.ae_title)
            self._outages = 0
            self._down_until = 0.0
        try:
            for number, item in enumerate(items):
                if self._stopping.is_set():
                    return
                if not assoc.is_established:
                    self._unreachable(items[number:], "the association ended during the round")
                    return
                if not self._send_one(assoc, item):
                    # Busy or gone: the rest of the round waits with it.
                    self._unreachable(items[number + 1:], self.last_error, counted=False)
                    return
        finally:
            if assoc.is_established:
                assoc.release()

    def _send_one(self, assoc, item: OutboxItem) -> bool:
        """Send one object and record what came of it; False when the destination is busy or
        gone, so the round should stop."""
        path = self._state.resolve(item.file)
        try:
            dataset = dcmread(path)
        except (OSError, ValueError) as exc:
            # The object was flushed before the journal listed it; unreadable means the
            # disk lost it. Nothing sending it again could fix: give up, visibly.
            self._journal.retry(item.id, error=f"the object file cannot be read ({exc})",
                                next_attempt_at=time.time(), refused=True, refusals_before_giving_up=1)
            log.error("gave up forwarding %s object %d: its file cannot be read", item.kind, item.id)
            return True
        response = assoc.send_c_store(dataset)
        status = int(response.Status) if "Status" in response else None
        if status in _STORED:
            self._journal.sent(item.id)
            self._state.remove(item.file)
            self.last_error = None
            return True
        if status is None or _busy(status):
            self._unreachable([item], "no answer" if status is None else f"busy (status 0x{status:04X})")
            return False
        comment = str(response.get("ErrorComment", "") or "")
        error = f"refused with status 0x{status:04X}" + (f" ({comment})" if comment else "")
        gave_up = self._journal.retry(item.id, error=error, next_attempt_at=time.time() + self.backoff_s(
            item.refusals + 1), refused=True, refusals_before_giving_up=self._config.refusals_before_giving_up)
        self.last_error = error
        log.warning("%s %s object %d: %s", "gave up forwarding" if gave_up else "will send again", item.kind,
                    item.id, error)
        return True

    def _unreachable(self, items: list[OutboxItem], why: str, *, counted: bool = True) -> None:
        """The destination is down or busy: every object waits for the next try at it.
        ``counted``: a new failed try (not the rest of a round that already failed)."""
        if counted:
            self._outages += 1
            self._down_until = time.time() + self.backoff_s(self._outages)
        delay = self._down_until - time.time()
        for item in items:
            self._journal.retry(item.id, error=why, next_attempt_at=self._down_until, refused=False,
                                refusals_before_giving_up=self._config.refusals_before_giving_up)
        self.last_error = why
        # Once when it starts, then at the longest interval: an outage of a day is not 300 lines.
        if counted and (self._outages == 1 or delay >= self._config.retry_max_s):
            log.warning("forwarding waits: %s; %d object(s) to send, next try in %.0f s", why,
                        self._journal.outbox_counts()["pending"], delay)
