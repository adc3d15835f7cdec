"""``Service``: ``radedge serve`` put together, started in the order that loses nothing.

1. The state folder is locked and the journal opened; analyses a killed process left
   unfinished go back to the queue; inbox files that never reached the journal (the process
   died between the flush and the commit, so their sender was never told Success) are taken
   in; the audit log catches up with the journal.
2. The page, then the receiver and the watched folder start: images are accepted (and
   kept safe) while the models load.
3. The models load and the analysis starts; then the forwarder, which first sends whatever
   the outbox held.

``stop`` (SIGTERM, SIGINT) undoes it in reverse: nothing more accepted, the image being
analysed finished, the journal closed.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import MissingDependencyError
from ..pipeline import ModelSet, load_models
from .analysis import Analysis
from .audit import AuditLog
from .config import ServeConfig
from .events import EventHub
from .folder import FolderWatcher
from .forward import Forwarder
from .intake import BUSY, Intake
from .journal import DONE, NOT_ANALYSED, Instance, Journal
from .receiver import StorageReceiver
from .state import StateFolder

log = logging.getLogger("radedge.serve")


@contextmanager
def _listening(what: str, host: str, port: int) -> Iterator[None]:
    """Name the listener and the address when it cannot bind."""
    try:
        yield
    except OSError as exc:
        raise RuntimeError(f"{what} cannot listen on {host}:{port}: {exc.strerror or exc} (another program holds it; "
                           f"is radedge serve already running?)") from None


class Service:
    """One console service on ``state_dir``. ``models``: an already loaded ``ModelSet``
    (default: load what the configuration names)."""

    def __init__(self, config: ServeConfig, state_dir: str | Path, *, models: ModelSet | None = None):
        self.config = config
        self.state = StateFolder(state_dir)
        self.events = EventHub()
        self._models = models
        self._stopped = threading.Event()
        self._started_at = time.time()
        self.journal: Journal | None = None
        self.audit: AuditLog | None = None
        self.receiver: StorageReceiver | None = None
        self.folder: FolderWatcher | None = None
        self.analysis: Analysis | None = None
        self.forwarder: Forwarder | None = None
        self.page = None
        self.ready = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        try:
            import pynetdicom  # noqa: F401
        except ImportError:
            raise MissingDependencyError("pynetdicom", "radedge serve (pip install 'radedge[serve]')") from None
        self.state.lock()
        self.journal = Journal(self.state.journal)
        recovery = self.journal.recover()
        if recovery.resumed or recovery.given_up:
            log.warning("resuming %d analysis(es) the last run did not finish; %d image(s) given up on after "
                        "repeated interruptions", recovery.resumed, recovery.given_up)
        audit_path = self.config.audit.path
        self.audit = AuditLog(audit_path if audit_path.is_absolute() else self.state.path / audit_path, self.journal)
        caught_up = self.audit.flush()
        if caught_up:
            log.info("the audit log caught up with %d line(s) from the journal", caught_up)
        self.intake = Intake(self.journal, self.state, self.config.analysis, self._arrived)
        self._sweep_inbox()
        if self.config.page.enabled:
            from .page import PageServer

            self.page = PageServer(self, host=self.config.page.host, port=self.config.page.port,
                                   token=self.config.page.token)
            with _listening("the page", self.config.page.host, self.config.page.port):
                self.page.start()
            log.info("the page is at %s", self.page.url)
        if self.config.receiver.enabled:
            self.receiver = StorageReceiver(self.config.receiver, self.intake)
            with _listening("the receiver", self.config.receiver.host, self.config.receiver.port):
                self.receiver.start()
        if self.config.folder is not None:
            self.folder = FolderWatcher(self.config.folder, self.intake, self.state)
            self.folder.start()
        if self._models is None:
            models = self.config.models
            self._models = load_models(models.bundles or None, precision=models.precision,
                                       trusted_keys=list(models.trusted_keys) or None, threads=models.threads)
        for model in self._models:
            log.info("model %s %s (bundle %s, %s) on %s/%s", model.manifest.model_id, model.manifest.model_version,
                     model.bundle.digest[:12], model.precision, model.backend.name, model.backend.device)
        if self.config.forward is not None:
            self.forwarder = Forwarder(self.config.forward, self.journal, self.state, self._publish_status)
        self.analysis = Analysis(self.journal, self.state, self._models, self.config.analysis,
                                 forwarding=self.forwarder is not None, published=self._publish,
                                 committed=self._committed)
        self.analysis.start()
        if self.forwarder is not None:
            self.forwarder.start()
        self.ready = True
        counts = self.journal.counts()
        log.info("ready: %d image(s) waiting, %d object(s) to forward", counts["received"] + counts["analysing"],
                 self.journal.outbox_counts()["pending"])

    def stop(self) -> None:
        """Stop taking images, finish the one being analysed, close the journal."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        for part in (self.receiver, self.folder):
            if part is not None:
                part.stop()
        if self.analysis is not None:
            self.analysis.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
        if self.page is not None:
            self.page.stop()
        if self.audit is not None:
            self.audit.flush()
        if self.journal is not None:
            self.journal.close()
        self.state.unlock()
        log.info("stopped")

    def failure(self) -> BaseException | None:
        """The exception a working thread stopped on, if one did."""
        for part in (self.analysis, self.forwarder, self.folder):
            if part is not None and part.failure is not None:
                return part.failure
        return None

    def run(self) -> int:
        """Start, serve until SIGTERM / SIGINT or a working thread fails, stop. Exit status:
        0 after a signal, 1 after a failure."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not stop.wait(0.5):
                if self.failure() is not None:
                    log.error("stopping: a working thread failed (%s)", type(self.failure()).__name__)
                    return 1
            return 0
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _sweep_inbox(self) -> None:
        """Inbox files the journal does not know are taken in; those of finished images and
        temporary files of interrupted writes are removed."""
        by_file = {instance.file: instance for instance in self.journal.all_instances() if instance.file}
        for path in sorted(self.state.inbox.iterdir()):
            instance = by_file.get(path.name)
            if path.name.startswith("."):
                path.unlink(missing_ok=True)
            elif instance is None:
                taken = self.intake.take(path.read_bytes(), via="recovered", caller=None)
                log.warning("took in an inbox file the journal did not list (%s)", taken.outcome)
                if taken.outcome == BUSY:
                    continue  # kept for the next start
                if taken.key is None or not path.name.startswith(taken.key):
                    path.unlink(missing_ok=True)
            elif instance.state in (DONE, NOT_ANALYSED):
                path.unlink(missing_ok=True)

    # -- what the page reads ---------------------------------------------------------------

    def status(self, limit: int = 200) -> dict[str, Any]:
        return {
            "service": {
                "name": "radedge serve",
                "version": __version__,
                "ready": self.ready,
                "started_at": self._started_at,
                "ae_title": self.config.receiver.ae_title if self.config.receiver.enabled else None,
                "receiver_port": self.receiver.port if self.receiver is not None else None,
                "folder": self.config.folder is not None,
                "forward_to": self.config.forward.ae_title if self.config.forward is not None else None,
                "forward_error": self.forwarder.last_error if self.forwarder is not None else None,
                "models": [model.model_id for model in self._models] if self._models is not None and self.ready
                else [],
            },
            "counts": self.journal.counts(),
            "outbox": self.journal.outbox_counts(),
            "instances": [instance.to_dict() for instance in self.journal.recent(limit)],
        }

    def instance(self, key: str) -> dict[str, Any] | None:
        instance = self.journal.instance(key)
        return None if instance is None else instance.to_dict()

    def overlay_path(self, key: str) -> Path | None:
        path = self.state.output_folder(key) / "overlay.png"
        return path if path.is_file() else None

    # -- events ----------------------------------------------------------------------------

    def _arrived(self, key: str) -> None:
        if self.analysis is not None:
            self.analysis.wake()
        instance = self.journal.instance(key)
        if instance is not None:
            self._publish(instance, None)

    def _publish(self, instance: Instance, change: dict[str, Any] | None) -> None:
        shown = instance.to_dict()
        if change is not None:
            shown.update({name: change[name] for name in ("state", "reason", "flags", "models") if name in change})
            if "flagged_at" in change:
                shown["receive_to_flag_ms"] = round((change["flagged_at"] - instance.received_at) * 1000, 1)
        self.events.publish({"type": "instance", "instance": shown})

    def _committed(self) -> None:
        self.audit.flush()
        if self.forwarder is not None:
            self.forwarder.wake()
        self._publish_status()

    def _publish_status(self) -> None:
        self.events.publish({"type": "status", "counts": self.journal.counts(), "outbox": self.journal.outbox_counts()})
