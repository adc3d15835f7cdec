"""``Analysis``: the service's three working threads, from a received image to a committed result.

    decode thread:   claim the oldest received image -> read it in a worker process
                     (``IsolatedReader``: a time budget per file, a memory cap)
    models thread:   every model whose scope fits (``ModelSet.predict``) -> flags published
    outputs thread:  overlay, DICOM objects written -> one commit: state, outbox, audit

Each thread works on a different image: the next image is decoded while the current one is
analysed and the one before gets its DICOM objects, which take longer to build than the
analysis itself; so the flags reach the page as soon as the models have run. A poisoned
file costs its budget and fails alone. The journal records the result, its objects and its
audit line together, so a restart never finds half of them.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._files import write_atomically
from .._heap import settle
from ..errors import (DicomOutputError, InputError, InputNotFoundError, InputNotReadableError, NotDicomSourceError,
                      RadedgeError)
from ..io import IsolatedReader
from ..io.image import Image
from ..pipeline import ModelSet
from ..results import ImageAnalysis
from .config import AnalysisConfig
from .journal import DONE, FAILED, NOT_ANALYSED, Instance, Journal
from .state import StateFolder

log = logging.getLogger("radedge.serve")

#: DICOM object kinds by file name suffix (``DicomResults.named``).
_KINDS = {".seg": "seg", ".sr": "sr", ".gsps": "gsps", ".kos": "kos"}


@dataclass
class _Work:
    """One image between threads: read (or why not), then analysed."""

    instance: Instance
    image: Image | None
    error: str | None
    timings: dict[str, float]
    analysis: ImageAnalysis | None = None
    state: str = FAILED
    flagged_at: float | None = None
    attempt: int | None = None


class Analysis:
    """Runs until ``stop``. ``published(event)`` gets each instance as it changes (the page);
    ``committed()`` is called after each commit (the forwarder and the audit log)."""

    def __init__(self, journal: Journal, state: StateFolder, models: ModelSet, config: AnalysisConfig, *,
                 forwarding: bool, published: Callable[[Instance, dict[str, Any] | None], None],
                 committed: Callable[[], None]):
        self._journal = journal
        self._state = state
        self._models = models
        self._config = config
        self._forwarding = forwarding
        self._published = published
        self._committed = committed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._decoded: queue.Queue[_Work] = queue.Queue(maxsize=1)
        self._analysed: queue.Queue[_Work] = queue.Queue(maxsize=2)
        self._reader = IsolatedReader(time_budget_s=config.time_budget_s)
        self._threads = [threading.Thread(target=self._guard, args=(loop,), name=f"radedge-{name}", daemon=True)
                         for name, loop in (("decode", self._decode_loop), ("models", self._models_loop),
                                            ("outputs", self._outputs_loop))]
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._reader.start()
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """An image arrived."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the step under way; images not finished are analysed again at the next
        start (nothing of theirs was committed)."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._reader.close()

    def _guard(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as exc:  # the service checks ``failure`` and stops
            self.failure = exc
            log.exception("the %s thread stopped", threading.current_thread().name)
            self._stopping.set()

    # -- the three threads ------------------------------------------------------------------

    def _hand(self, into: queue.Queue[_Work], work: _Work) -> None:
        while not self._stopping.is_set():
            try:
                into.put(work, timeout=0.5)
                return
            except queue.Full:
                continue

    def _take(self, source: queue.Queue[_Work]) -> _Work | None:
        while not self._stopping.is_set():
            try:
                return source.get(timeout=0.5)
            except queue.Empty:
                continue
        return None

    def _decode_loop(self) -> None:
        while not self._stopping.is_set():
            instance = self._journal.claim_next()
            if instance is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._published(instance, None)
            started = time.perf_counter()
            image, error = None, None
            try:
                image = self._reader.read(self._state.inbox / instance.file)
            except (InputNotFoundError, InputNotReadableError, OSError) as exc:
                # Not the image's fault: the service's own copy is gone or unreadable.
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or "it is missing"
                error = f"the received file cannot be read back from the inbox ({reason})"
            except InputError as exc:
                error = str(exc)
            read_ms = (time.perf_counter() - started) * 1000
            timings = {"wait": (time.time() - instance.received_at) * 1000 - read_ms, "read": read_ms}
            self._hand(self._decoded, _Work(instance, image, error, timings))

    def _models_loop(self) -> None:
        while (work := self._take(self._decoded)) is not None:
            if work.error is None:
                self._run_models(work)
            work.image = None
            self._hand(self._analysed, work)

    def _outputs_loop(self) -> None:
        settled = False
        while (work := self._take(self._analysed)) is not None:
            summary = {"flags": [], "models": {}, "overlay": False}
            outbox: list[tuple[str, str, str, str]] = []
            if work.analysis is not None:
                summary = _summary(work.analysis, work.flagged_at)
                started = time.perf_counter()
                outbox = self._write_outputs(work.instance, work.analysis, summary)
                work.timings["outputs"] = (time.perf_counter() - started) * 1000
            self._finish(work, summary, outbox)
            if not settled and work.analysis is not None:
                # The first image through has loaded what every later one reuses.
                settled = True
                settle()

    def _run_models(self, work: _Work) -> None:
        work.attempt = self._journal.attempt(work.instance.seq)
        started = time.perf_counter()
        try:
            analysis = self._models.predict(work.image, label=work.instance.key)
        except RadedgeError as exc:
            work.error = str(exc)
            return
        except Exception as exc:
            log.exception("analysing image %s failed", work.instance.key)
            work.error = f"radedge failed analysing it ({type(exc).__name__}); see the service log"
            return
        work.timings["models"] = (time.perf_counter() - started) * 1000
        work.analysis = analysis
        work.flagged_at = time.time()
        work.state = DONE if analysis.analysed else NOT_ANALYSED
        # The technologist sees the flags now; the overlay and the DICOM objects follow.
        self._published(work.instance, {"state": work.state, "reason": analysis.reason,
                                        **_summary(analysis, work.flagged_at)})

    def _write_outputs(self, instance: Instance, analysis: ImageAnalysis,
                       summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        folder = self._state.output_folder(instance.key)
        # Whatever an interrupted earlier attempt left is not part of this result.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        from ..dicom_out import encode

        outbox = []
        try:
            if analysis.drawable:
                analysis.save_overlay(folder / "overlay.png")
                summary["overlay"] = True
            if self._config.dicom_outputs:
                for name, dataset in analysis.to_dicom().named(instance.key).items():
                    path = write_atomically(folder / name, encode(dataset), durable=True)
                    kind = _KINDS[name[len(instance.key):].split(".dcm")[0].split("-")[0]]
                    outbox.append((kind, self._state.relative(path), str(dataset.SOPClassUID),
                                   str(dataset.SOPInstanceUID)))
        except NotDicomSourceError:
            summary["outputs_note"] = "no DICOM objects: the image did not come as DICOM"
        except DicomOutputError as exc:
            summary["outputs_note"] = f"no DICOM objects: {exc}"
            log.warning("no DICOM objects for image %s: %s", instance.key, exc)
        summary["objects"] = len(outbox)
        return outbox if self._forwarding else []

    def _finish(self, work: _Work, summary: dict[str, Any], outbox: list[tuple[str, str, str, str]]) -> None:
        instance, timings = work.instance, work.timings
        state = FAILED if work.analysis is None else work.state
        reason = work.error if work.analysis is None else work.analysis.reason
        finished_at = time.time()
        timings["receive_to_flag"] = (summary.get("flagged_at", finished_at) - instance.received_at) * 1000
        summary["timings_ms"] = {stage: round(ms, 2) for stage, ms in timings.items()}
        audit = _audit_record(instance, state, reason, work.analysis, summary, finished_at, work.attempt)
        self._journal.finish(instance.seq, state=state, reason=reason, summary=summary, outbox=outbox, audit=audit,
                             finished_at=finished_at)
        if state != FAILED:
            # The image lives on at the sender; a failed one stays for whoever looks into it.
            self._state.remove(f"inbox/{instance.file}")
        log.info("image %s: %s%s (%d flag(s), %.0f ms from receipt)", instance.key, state,
                 "" if reason is None or state == DONE else f": {reason}", len(summary.get("flags", [])),
                 timings["receive_to_flag"])
        self._published(self._journal.instance_by_seq(instance.seq), None)
        self._committed()


def _summary(analysis: ImageAnalysis, flagged_at: float) -> dict[str, Any]:
    """What the page shows of an analysis: each flag, and what each model did."""
    models: dict[str, str] = {}
    for model_id in analysis.predictions:
        models[model_id] = "analysed"
    for model_id, reason in analysis.not_analysable.items():
        models[model_id] = f"not analysable: {reason}"
    for model_id, reason in analysis.not_applied.items():
        models[model_id] = f"not applied: {reason}"
    flags = [{"model": flag.model, "code": flag.code, "title": flag.title, "label": flag.label,
              "score": round(flag.score, 4), "threshold": flag.threshold, "where": flag.where}
             for flag in analysis.flags]
    return {"flags": flags, "models": models, "overlay": False, "flagged_at": flagged_at}


def _audit_record(instance: Instance, state: str, reason: str | None, analysis: ImageAnalysis | None,
                  summary: dict[str, Any], finished_at: float, attempt: int | None) -> dict[str, Any]:
    """One analysis for the audit log: the image's key (a salted hash of its UID), what ran
    with what, how long each stage took, what came of it. No header value."""
    models = []
    if analysis is not None:
        for model_id, prediction in analysis.predictions.items():
            provenance = prediction.provenance
            models.append({
                "model": model_id,
                "version": provenance.get("model_version"),
                "bundle_sha256": provenance.get("bundle_sha256"),
                "precision": provenance.get("precision"),
                "backend": f"{provenance.get('backend')}/{provenance.get('device')}",
                "flags": [flag.code for flag in prediction.flags],
                "timings_ms": {stage: round(ms, 2) for stage, ms in prediction.timings_ms.items()},
            })
    return {
        "time": datetime.fromtimestamp(finished_at, timezone.utc).isoformat(timespec="milliseconds"),
        "instance": instance.key,
        "via": instance.via,
        "attempt": attempt,
        "outcome": state,
        "reason": reason,
        "models": models,
        "not_applied": sorted(analysis.not_applied) if analysis is not None else [],
        "objects": summary.get("objects", 0),
        "timings_ms": summary["timings_ms"],
    }
