"""``StorageReceiver``: the DICOM C-STORE SCP a modality sends its images to (pynetdicom).

Accepts every Storage SOP Class (so a report or presentation state sent along with the
images gets a clear refusal rather than a failed association) in every transfer syntax this
installation decodes. Answers per PS3.4 B.2.3 and PS3.7 C:

    0x0000  Success                  the file is on disk and in the journal (or was already)
    0xA700  Refused: Out of Resources the queue is full or the disk nearly so
    0x0122  Refused: SOP Class not supported   not an image (SR, GSPS, SEG, KOS, waveforms...)
    0xA900  Error: Data Set does not match SOP Class   an image SOP Class without Pixel Data
    0xC000  Error: Cannot understand  the header says radedge cannot decode it (Error Comment: why)

and keeps running whatever arrives. A calling AE title not in the allowed list is rejected
at association.
"""

from __future__ import annotations

import logging
import ssl

from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from ..io.codecs import decodable_syntax_uids
from .config import ReceiverConfig
from .intake import (
    BUSY,
    DUPLICATE,
    NOT_IMAGE,
    STORED,
    UNREADABLE,
    Intake,
    is_image_sop_class,
)

log = logging.getLogger("radedge.serve")

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
SOP_CLASS_NOT_SUPPORTED = 0x0122
DATA_SET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110


def receivable_transfer_syntaxes() -> list[str]:
    """Transfer syntax UIDs the receiver accepts: those whose pixel data this installation
    decodes, and Deflated Explicit VR Little Endian, which radedge inflates itself."""
    uids = decodable_syntax_uids()
    return uids if str(DeflatedExplicitVRLittleEndian) in uids else [*uids, str(DeflatedExplicitVRLittleEndian)]


def _status(code: int, comment: str | None = None) -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        # Error Comment is LO: 64 characters of the default repertoire.
        status.ErrorComment = comment.encode("ascii", "replace").decode("ascii")[:64]
    return status


class StorageReceiver:
    """The C-STORE SCP: ``start`` listens (port 0: a free port, then ``port`` says which),
    ``stop`` closes the listener and the open associations."""

    def __init__(self, config: ReceiverConfig, intake: Intake):
        from pynetdicom import AE, AllStoragePresentationContexts

        self._config = config
        self._intake = intake
        self._server = None
        ae = AE(ae_title=config.ae_title)
        ae.network_timeout = config.network_timeout_s
        ae.acse_timeout = config.network_timeout_s
        ae.dimse_timeout = config.network_timeout_s
        ae.maximum_associations = 32
        # PS3.8: a calling AE title outside the list is rejected at association (reason 3).
        if config.allowed_calling_ae_titles:
            ae.require_calling_aet = list(config.allowed_calling_ae_titles)
        syntaxes = receivable_transfer_syntaxes()
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, syntaxes)
        self._ae = ae

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self._config.port

    def start(self) -> None:
        from pynetdicom import evt

        self._server = self._ae.start_server(
            (self._config.host, self._config.port), block=False, ssl_context=self._ssl_context(),
            evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        log.info("receiving as AE title %s on %s:%d%s", self._config.ae_title, self._config.host, self.port,
                 " (TLS)" if self._config.tls else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self._config.tls
        if tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(tls.certificate, tls.private_key)
        if tls.ca_certificates is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(tls.ca_certificates)
        return context

    def _on_store(self, event) -> Dataset | int:
        """One C-STORE request. Never raises: pynetdicom would answer 0xC211 and log the
        traceback, and a sender deserves the reason."""
        try:
            return self._store(event)
        except Exception:
            log.exception("storing a received image failed")
            return _status(PROCESSING_FAILURE, "radedge could not store the image; see the service log")

    def _store(self, event) -> Dataset | int:
        request = event.request
        sop_class = str(request.AffectedSOPClassUID or "")
        caller = str(event.assoc.requestor.ae_title).strip()
        if not is_image_sop_class(sop_class):
            log.info("refused a %s from %s: not an image", UID(sop_class).name, caller)
            return _status(SOP_CLASS_NOT_SUPPORTED, f"not an image: {UID(sop_class).name}")
        busy = self._intake.busy_reason()
        if busy is not None:
            # Before the data set is even encoded: a full queue must not cost memory per sender.
            log.warning("answered 'out of resources' to %s: %s", caller, busy)
            return _status(OUT_OF_RESOURCES, busy)
        uid = str(request.AffectedSOPInstanceUID or "").strip() or None
        taken = self._intake.take(event.encoded_dataset(include_meta=True), via="c-store", caller=caller, uid=uid)
        if taken.outcome in (STORED, DUPLICATE):
            return SUCCESS
        if taken.outcome == BUSY:
            return _status(OUT_OF_RESOURCES, taken.reason)
        if taken.outcome == NOT_IMAGE:
            return _status(DATA_SET_DOES_NOT_MATCH, taken.reason)
        if taken.outcome == UNREADABLE:
            return _status(CANNOT_UNDERSTAND, taken.reason)
        raise AssertionError(f"unexpected intake outcome {taken.outcome!r}")

