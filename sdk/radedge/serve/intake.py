"""``Intake``: how an image enters the service, whichever way it came (C-STORE or the folder).

An image is accepted only once it is safe: its file written and flushed into the inbox, then
its journal row committed. The answer tells the receiver what to say to the sender:

    stored      Success: the image is on disk and in the journal; it will be analysed
    duplicate   Success: that SOP Instance UID was received before; it is not analysed again
    busy        out of resources: the queue is full or the disk nearly so; send again later
    not image   the object holds no image radedge reads (a report, a presentation state)
    unreadable  the header says it cannot be decoded here (``radedge.io.check_dicom``); why

Every check before the write costs milliseconds (no pixel is decoded), so a sender waits for
the disk, not for the analysis.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pydicom import dcmread

from .._files import write_atomically
from ..errors import InputError, NoPixelDataError
from ..io import check_dicom
from ..io.dicom import PARSE_ERRORS
from ..io.limits import MAX_FILE_BYTES
from ..io.sniff import HEAD_SIZE, describe_bytes, detect_format
from .config import AnalysisConfig
from .journal import Journal
from .state import StateFolder

log = logging.getLogger("radedge.serve")

STORED, DUPLICATE, BUSY, NOT_IMAGE, UNREADABLE = "stored", "duplicate", "busy", "not image", "unreadable"


@dataclass(frozen=True)
class Taken:
    """What became of one image. ``key``: its key (None when no UID could be found);
    ``reason``: why it was not stored."""

    outcome: str
    key: str | None = None
    reason: str | None = None


def is_image_sop_class(uid: str) -> bool:
    """Whether a Storage SOP Class holds an image (``... Image Storage`` in PS3.4 B.5), as
    opposed to reports, presentation states, segmentations, waveforms and raw data."""
    from pydicom.uid import UID

    return "Image Storage" in UID(uid).name


class Intake:
    """Accepts images into ``state``'s inbox and ``journal``; ``arrived(key)`` is called after
    each new one is committed (to wake the analysis and tell the page)."""

    def __init__(self, journal: Journal, state: StateFolder, config: AnalysisConfig,
                 arrived: Callable[[str], None]):
        self._journal = journal
        self._state = state
        self._config = config
        self._arrived = arrived
        # One image at a time from the dedup check to the journal row: two senders racing
        # with the same instance would otherwise both store it.
        self._lock = threading.Lock()

    def busy_reason(self) -> str | None:
        """Why nothing more can be accepted now, or None."""
        waiting = self._journal.waiting()
        if waiting >= self._config.max_queue:
            return f"{waiting} images are waiting for analysis (the queue holds {self._config.max_queue})"
        free = shutil.disk_usage(self._state.path).free
        if free < self._config.min_free_mb * 2**20:
            return (f"only {free // 2**20} MB free under the state folder ({self._config.min_free_mb} MB are "
                    f"kept free)")
        return None

    def take(self, data: bytes, *, via: str, caller: str | None, uid: str | None = None) -> Taken:
        """Accept the file ``data`` (DICOM, or PNG / JPEG / TIFF from the folder). ``uid``: the
        SOP Instance UID the sender declared (a C-STORE request's Affected SOP Instance UID);
        otherwise read from the data, or a digest of a file that is not DICOM."""
        busy = self.busy_reason()
        if busy is not None:
            return Taken(BUSY, reason=busy)
        if len(data) > MAX_FILE_BYTES:
            return Taken(UNREADABLE, reason=f"the file is {len(data)} bytes, more than radedge reads "
                                            f"({MAX_FILE_BYTES})")
        kind = detect_format(data[:HEAD_SIZE])
        described: dict[str, str | None] = {}
        if kind in ("dicom", "dicom-raw"):
            try:
                source = check_dicom(data)
            except NoPixelDataError as exc:
                return self._refuse(NOT_IMAGE, uid or _digest(data), via, caller, str(exc), described)
            except InputError as exc:
                # Its header failed the checks: not parsed again for a UID, a digest names it.
                return self._refuse(UNREADABLE, uid or _digest(data), via, caller, str(exc), described)
            described = {"sop_class": source.sop_class_uid, "modality": source.modality,
                         "body_part": source.body_part, "view": source.view_position}
            uid = uid or _read_uid(data)
            suffix = ".dcm"
        elif kind in ("png", "jpeg", "tiff"):
            uid = uid or _digest(data)
            suffix = "." + kind
        else:
            return self._refuse(UNREADABLE, uid or _digest(data), via, caller,
                                f"not DICOM, PNG, JPEG or TIFF: {describe_bytes(data[:HEAD_SIZE])}", described)
        if not uid:
            return Taken(UNREADABLE, reason="the data set has no SOP Instance UID (0008,0018)")
        with self._lock:
            if self._journal.has(uid):
                self._journal.count_duplicate(uid)
                return Taken(DUPLICATE, key=self._state.key(uid))
            key = self._state.key(uid)
            name = key + suffix
            try:
                write_atomically(self._state.inbox / name, data, durable=True)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    return Taken(BUSY, key=key, reason="the disk under the state folder is full")
                raise
            stored = self._journal.receive(uid=uid, key=key, via=via, caller=caller, file=name,
                                           described=described)
        if not stored:
            return Taken(DUPLICATE, key=key)
        log.info("received image %s via %s", key, via)
        self._arrived(key)
        return Taken(STORED, key=key)

    def _refuse(self, outcome: str, uid: str, via: str, caller: str | None, reason: str,
                described: dict[str, str | None]) -> Taken:
        key = self._state.key(uid)
        self._journal.refuse(uid=uid, key=key, via=via, caller=caller, reason=reason, described=described)
        log.info("refused image %s via %s: %s", key, via, reason)
        self._arrived(key)
        return Taken(outcome, key=key, reason=reason)


def _digest(data: bytes) -> str:
    """The key material of a file with no SOP Instance UID of its own: its content."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _read_uid(data: bytes) -> str | None:
    """The data set's SOP Instance UID, or None when it has none or cannot be read."""
    try:
        dataset = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True, specific_tags=["SOPInstanceUID"])
        value = dataset.get("SOPInstanceUID")
    except PARSE_ERRORS:
        return None
    value = str(value or "").strip()
    return value if 0 < len(value) <= 64 else None
