"""DICOM network tools the `radedge serve` tests share: dcmtk's storescu as the modality, a
pynetdicom storage SCP that counts what it receives, unique copies of the example images, and
planted patient data to search logs and pages for."""

from __future__ import annotations

import collections
import copy
import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

# -- storescu ----------------------------------------------------------------------------------


@functools.cache
def storescu_path() -> str | None:
    """dcmtk's storescu on PATH, or None. Not simply the first storescu on PATH: pynetdicom
    installs a command of the same name (with other options) into the virtual environment."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("storescu", path=folder)
        if candidate is None:
            continue
        try:
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "$dcmtk: storescu" in version:
            return candidate
    return None


def dcmtk_missing_reason() -> str | None:
    """A skip reason where dcmtk's storescu is missing, None where it is installed."""
    if storescu_path() is None:
        return "dcmtk's storescu is not on PATH (apt-get install dcmtk; .ci/run installs it in CI)"
    return None


class StoreStatus(NamedTuple):
    """What storescu reported for one file it tried to send.

    status: the DIMSE status of the peer's C-STORE response (0x0000 success, 0xB000 warning,
    0xA700 refused: out of resources, 0x0122 refused: SOP class not supported, ...); None when no
    response came: the file was not DICOM, no presentation context fitted it, or the
    association broke while sending it.
    """

    file: str
    status: int | None

    def __repr__(self) -> str:
        status = "None" if self.status is None else f"0x{self.status:04X}"
        return f"StoreStatus(file={self.file!r}, status={status})"


class StorescuConversionError(RuntimeError):
    """storescu sent a file in another transfer syntax than the file's own."""


_SENDING = re.compile(r"^I: Sending file: (?P<file>.*)$")
_RESPONSE = re.compile(r"^I: Received Store Response")
_DIMSE_STATUS = re.compile(r"^D: DIMSE Status\s*:\s*0x(?P<code>[0-9a-fA-F]{4})")
_CONVERTING = re.compile(r"^I: Converting transfer syntax: (?P<source>.+?) -> (?P<sent>.+)$")


def parse_store_statuses(log: str) -> list[StoreStatus]:
    """One StoreStatus per file storescu tried to send, in sending order, from its debug log
    (``-d``, which `storescu()` passes; dcmtk writes it to stderr). A file sent twice appears
    twice. Files after a failure that halted storescu (no ``-nh``) do not appear."""
    statuses: list[StoreStatus] = []
    awaiting_status = False
    for line in log.splitlines():
        if match := _SENDING.match(line):
            statuses.append(StoreStatus(match["file"], None))
            awaiting_status = False
        elif _RESPONSE.match(line):
            awaiting_status = True
        elif awaiting_status and (match := _DIMSE_STATUS.match(line)):
            statuses[-1] = statuses[-1]._replace(status=int(match["code"], 16))
            awaiting_status = False
    return statuses


def _association_profile(files: Sequence[Path]) -> str:
    """A dcmtk association configuration (see dcmtk's asconfig.txt) whose profile "FILES"
    proposes one presentation context per (SOP class, transfer syntax) pair among `files`, each
    with that single transfer syntax. storescu's -x options propose the uncompressed syntaxes
    plus at most one compressed syntax, and convert (or fail on) every other file; with this
    profile every file goes out in its own transfer syntax. Files pydicom cannot read are left
    out here; storescu reports them as unreadable."""
    pairs: dict[tuple[str, str], None] = {}
    for file in files:
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["SOPClassUID"])
            pairs[(str(header.SOPClassUID), str(header.file_meta.TransferSyntaxUID))] = None
        except (OSError, InvalidDicomError, AttributeError):
            continue
    # Verification keeps the profile non-empty when no file is readable, so storescu still
    # associates and reports each file.
    pairs.setdefault(("1.2.840.10008.1.1", ExplicitVRLittleEndian), None)
    if len(pairs) > 128:
        raise ValueError(
            f"{len(pairs)} (SOP class, transfer syntax) pairs need more than the 128 presentation "
            "contexts one association may propose; send the files in several calls"
        )
    syntaxes = sorted({syntax for _, syntax in pairs})
    syntax_name = {syntax: f"TS{i}" for i, syntax in enumerate(syntaxes, start=1)}
    lines = ["[[TransferSyntaxes]]"]
    for syntax in syntaxes:
        lines += [f"[{syntax_name[syntax]}]", f"TransferSyntax1 = {syntax}"]
    lines += ["[[PresentationContexts]]", "[FILECONTEXTS]"]
    for i, (sop_class, syntax) in enumerate(pairs, start=1):
        lines.append(f"PresentationContext{i} = {sop_class}\\{syntax_name[syntax]}")
    lines += ["[[Profiles]]", "[FILES]", "PresentationContexts = FILECONTEXTS", ""]
    return "\n".join(lines)


def storescu(
    host: str,
    port: int,
    files: Iterable[Path | str],
    *,
    called_aet: str,
    calling_aet: str = "STORESCU",
    timeout_s: float = 60,
    extra_args: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """Send `files` with dcmtk's storescu over one association, each in its own transfer syntax.

    storescu runs with ``-d`` (the log `parse_store_statuses` reads, in ``.stderr``) and ``-nh``
    (go on after a refused file, so every file gets a status). Its exit status is 0 even when
    the peer refused files under ``-nh``: assert on `parse_store_statuses`, not on returncode
    alone. It is nonzero when no association could be made (peer down, called AE refused).

    Args:
        host, port: the storage SCP.
        files: DICOM files; each is sent as stored (compressed pixel data is not decoded).
        called_aet: the SCP's AE title.
        calling_aet: this sender's AE title.
        timeout_s: bound on the whole run; subprocess.TimeoutExpired past it.
        extra_args: more storescu options, placed before the peer.

    Raises:
        RuntimeError: storescu is not installed.
        StorescuConversionError: storescu converted a file to another transfer syntax (the
            peer refused the file's own syntax but accepted another for the same SOP class).
    """
    binary = storescu_path()
    if binary is None:
        raise RuntimeError(dcmtk_missing_reason())
    files = [Path(file) for file in files]
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", prefix="storescu-") as profile:
        profile.write(_association_profile(files))
        profile.flush()
        command = [
            binary, "-d", "-nh",
            "-xf", profile.name, "FILES",
            "-aet", calling_aet, "-aec", called_aet,
            *extra_args,
            host, str(port), *map(str, files),
        ]  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout_s)
    conversions = [
        match.group(0)
        for line in completed.stderr.splitlines()
        if (match := _CONVERTING.match(line)) and match["source"] != match["sent"]
    ]
    if conversions:
        raise StorescuConversionError(
            "storescu did not send every file as it is: " + "; ".join(conversions) + ". The peer "
            "accepted the SOP class but not the file's own transfer syntax; configure it to accept "
            f"that syntax.\n{completed.stderr[-4000:]}"
        )
    return completed


# -- copies with unique UIDs and planted patient data ------------------------------------------

PLANTED_PHI: dict[str, str] = {
    "PatientName": "Zyxwv^Planted",
    "PatientID": "PHI-7731-ZX",
    "PatientBirthDate": "19310917",
    "StudyDate": "19310917",
    "AccessionNumber": "ACC9931ZX",
    "InstitutionName": "Planted General",
}
"""Patient data no real or example file holds, to plant with `unique_copies` and search for with
`find_phi` in logs, pages and outputs."""

# What `find_phi` searches for (lowercased), and which planted attribute each one betrays. The
# family name alone, because a page may show "Zyxwv, Planted" or "ZYXWV^PLANTED"; the date also
# as a person would write it.
_PHI_NEEDLES: dict[str, str] = {
    "zyxwv": "PatientName",
    "phi-7731-zx": "PatientID",
    "19310917": "PatientBirthDate/StudyDate",
    "1931-09-17": "PatientBirthDate/StudyDate",
    "17.09.1931": "PatientBirthDate/StudyDate",
    "17/09/1931": "PatientBirthDate/StudyDate",
    "09/17/1931": "PatientBirthDate/StudyDate",
    "acc9931zx": "AccessionNumber",
    "planted general": "InstitutionName",
}


def unique_copies(
    source: Path,
    folder: Path,
    n: int,
    *,
    prefix_uid: str,
    shared_study: bool = False,
    plant_phi: dict[str, str] | None = None,
) -> list[Path]:
    """Write `n` copies of the DICOM file `source` into `folder` as copy_000.dcm, ... with new,
    unique UIDs, so a PACS or a service that deduplicates by SOP Instance UID sees `n` images.

    Every copy gets a new SOP Instance UID (also in the file meta). With `shared_study` false each
    copy is its own study with its own series; with `shared_study` true all copies are images of
    one new study and one new series. The pixel data, compressed or not, is copied byte for byte
    and the file keeps its transfer syntax.

    Args:
        prefix_uid: root of the new UIDs (up to 54 characters, e.g. "1.2.826.0.1.3680043.8.498.77.");
            a trailing "." is added if missing. The rest of each UID is random, so runs never collide.
        plant_phi: attribute keyword -> value to set in every copy, e.g. PLANTED_PHI.
    """
    prefix = prefix_uid if prefix_uid.endswith(".") else prefix_uid + "."
    for keyword in plant_phi or {}:
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"plant_phi: {keyword!r} is not a DICOM attribute keyword (e.g. 'PatientName')")
    folder.mkdir(parents=True, exist_ok=True)
    original = pydicom.dcmread(source)
    shared_uids = (generate_uid(prefix), generate_uid(prefix)) if shared_study else None
    copies = []
    for index in range(n):
        duplicate = copy.deepcopy(original)
        duplicate.StudyInstanceUID, duplicate.SeriesInstanceUID = shared_uids or (generate_uid(prefix), generate_uid(prefix))
        duplicate.SOPInstanceUID = generate_uid(prefix)
        duplicate.file_meta.MediaStorageSOPInstanceUID = duplicate.SOPInstanceUID
        if shared_study:
            duplicate.InstanceNumber = index + 1
        for keyword, value in (plant_phi or {}).items():
            setattr(duplicate, keyword, value)
        path = folder / f"copy_{index:03d}.dcm"
        duplicate.save_as(path, enforce_file_format=True)
        copies.append(path)
    return copies


# Value representations that hold numbers or bulk bytes, where a needle could only match by
# accident: pixel ramps contain bytes like "zyxwv" (0x7A 0x79 0x78 0x77 0x76).
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "AT", "FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"}


def _dicom_text_elements(path: Path) -> list[tuple[str, bytes]] | None:
    """(where, value) for every element of a DICOM file that can hold text, file meta and
    sequence items included; UN (unknown, often private) elements as their raw bytes. None
    where pydicom cannot read the file through: the caller searches its bytes instead."""
    try:
        dataset = pydicom.dcmread(path)
        elements = [*dataset.file_meta.iterall(), *dataset.iterall()]
    except Exception:  # a damaged file is still searched, as bytes
        return None
    texts = []
    for element in elements:
        if element.VR in _BINARY_VRS or element.VR == "SQ" or element.value is None:
            continue
        where = f"{path} {element.tag} {element.keyword or 'private'}"
        if isinstance(element.value, bytes):
            texts.append((where, element.value))
        else:
            values = element.value if isinstance(element.value, MultiValue) else [element.value]
            texts.append((where, "\\".join(map(str, values)).encode("utf-8", "replace")))
    return texts


def _is_dicom_file(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(132)[128:] == b"DICM"


def find_phi(texts_or_paths: str | bytes | Path | Iterable[str | bytes | Path]) -> list[str]:
    """Where any PLANTED_PHI value occurs, case-insensitively; empty when none does.

    A str or bytes is the text itself; its hits read ``"text[i] @offset: 'zyxwv' (PatientName)"``.
    A Path is a file or a folder (every file below it). A DICOM file is searched element by
    element, skipping pixel data and other numeric or bulk elements, and read through pydicom,
    so a deflated file is searched inflated; its hits read
    ``"<path> (0010,0010) PatientName: 'zyxwv' (PatientName)"``. Any other file is searched as
    its bytes: ``"<path> @offset: ..."``."""
    if isinstance(texts_or_paths, (str, bytes, Path)):
        texts_or_paths = [texts_or_paths]
    hits: list[str] = []
    for index, item in enumerate(texts_or_paths):
        if not isinstance(item, Path):
            text = item.encode("utf-8", "replace") if isinstance(item, str) else item
            hits += _needle_hits(f"text[{index}]", text, with_offset=True)
            continue
        for file in sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]:
            elements = _dicom_text_elements(file) if _is_dicom_file(file) else None
            if elements is None:
                hits += _needle_hits(str(file), file.read_bytes(), with_offset=True)
            else:
                for where, value in elements:
                    hits += _needle_hits(where, value, with_offset=False)
    return hits


def _needle_hits(where: str, content: bytes, *, with_offset: bool) -> list[str]:
    haystack = content.lower()
    hits = []
    for needle, attribute in _PHI_NEEDLES.items():
        start = haystack.find(needle.encode())
        while start != -1:
            hits.append(f"{where} @{start}: {needle!r} ({attribute})" if with_offset else f"{where}: {needle!r} ({attribute})")
            start = haystack.find(needle.encode(), start + 1)
    return hits


# -- a storage SCP that counts -----------------------------------------------------------------


class ReceivedInstance(NamedTuple):
    """One C-STORE request a StoreCounter received, and the status it answered with."""

    sop_class_uid: str
    sop_instance_uid: str
    calling_aet: str
    transfer_syntax: str
    status: int
    dataset: Dataset


class StoreCounterError(AssertionError):
    """The StoreCounter's C-STORE handler raised; the first exception is the __cause__."""


# SOP classes radedge serve forwards, named so the test fails here, not in a handshake, if a
# pynetdicom release drops one from its storage list.
OUTPUT_SOP_CLASSES = {
    "Segmentation Storage": "1.2.840.10008.5.1.4.1.1.66.4",
    "Basic Text SR Storage": "1.2.840.10008.5.1.4.1.1.88.11",
    "Enhanced SR Storage": "1.2.840.10008.5.1.4.1.1.88.22",
    "Comprehensive SR Storage": "1.2.840.10008.5.1.4.1.1.88.33",
    "Grayscale Softcopy Presentation State Storage": "1.2.840.10008.5.1.4.1.1.11.1",
    "Key Object Selection Document Storage": "1.2.840.10008.5.1.4.1.1.88.59",
}


class StoreCounter:
    """A pynetdicom storage SCP on 127.0.0.1 that records every C-STORE it receives.

    It accepts every storage SOP class pynetdicom knows (images, SEG, SR, GSPS, KOS, ...) in
    `transfer_syntaxes`, refuses associations addressed to another AE title, and answers each
    C-STORE with `status`. Duplicates are recorded, not merged: `count_by_uid()` shows an
    instance sent twice as 2. An exception in the handler is answered with 0xC211 and kept;
    `check()` and `stop()` raise it, so a broken handler fails the test instead of a log line.

    Args:
        ae_title: this SCP's AE title.
        port: 0 picks a free port; read it from `.port`.
        status: the DIMSE status for every C-STORE, or a function of the received dataset
            that returns one (e.g. refuse one SOP Instance UID with 0xA700).
        transfer_syntaxes: accepted transfer syntaxes; None means Explicit and Implicit VR
            Little Endian, what radedge's outputs are written in.
    """

    def __init__(
        self,
        *,
        ae_title: str = "COUNTER",
        port: int = 0,
        status: int | Callable[[Dataset], int] = 0x0000,
        transfer_syntaxes: Sequence[str] | None = None,
    ) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        self.ae_title = ae_title
        self._status = status
        self._lock = threading.Lock()
        self._received: list[ReceivedInstance] = []
        self._errors: list[BaseException] = []
        syntaxes = list(transfer_syntaxes or [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        self._ae = AE(ae_title=ae_title)
        self._ae.require_called_aet = True
        abstract_syntaxes = {context.abstract_syntax for context in AllStoragePresentationContexts}
        missing = set(OUTPUT_SOP_CLASSES.values()) - abstract_syntaxes
        if missing:
            raise RuntimeError(f"pynetdicom lacks storage SOP classes {sorted(missing)}; pin pynetdicom>=2.1")
        for abstract_syntax in sorted(abstract_syntaxes):
            self._ae.add_supported_context(abstract_syntax, syntaxes)
        self._server = self._ae.start_server(
            ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_c_store)]
        )
        self.port: int = self._server.server_address[1]
        self._stopped = False

    def _on_c_store(self, event) -> int:
        try:
            dataset = event.dataset
            dataset.file_meta = event.file_meta
            status = self._status(dataset) if callable(self._status) else self._status
            received = ReceivedInstance(
                sop_class_uid=str(event.request.AffectedSOPClassUID),
                sop_instance_uid=str(event.request.AffectedSOPInstanceUID),
                calling_aet=event.assoc.requestor.ae_title.strip(),
                transfer_syntax=str(event.context.transfer_syntax),
                status=status,
                dataset=dataset,
            )
            with self._lock:
                self._received.append(received)
            return status
        except BaseException as error:  # kept for check(): pynetdicom would only log it
            with self._lock:
                self._errors.append(error)
            return 0xC211

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def received(self) -> list[ReceivedInstance]:
        """A snapshot of every C-STORE received so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def count_by_uid(self) -> dict[str, int]:
        """SOP Instance UID -> how many C-STORE requests carried it (whatever the answer)."""
        return dict(collections.Counter(item.sop_instance_uid for item in self.received))

    def wait_for_count(self, n: int, timeout_s: float) -> int:
        """Wait until at least `n` C-STOREs arrived or `timeout_s` passed; return how many did."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = len(self.received)
            if seen >= n or time.monotonic() >= deadline:
                return seen
            time.sleep(0.05)

    def check(self) -> None:
        """Raise StoreCounterError if the C-STORE handler raised."""
        with self._lock:
            errors = list(self._errors)
        if errors:
            raise StoreCounterError(f"{len(errors)} C-STORE request(s) failed in the handler: {errors[0]!r}") from errors[0]

    def stop(self) -> None:
        """Stop listening (idempotent), then `check()`."""
        if not self._stopped:
            self._stopped = True
            self._ae.shutdown()
        self.check()

    def __enter__(self) -> StoreCounter:
        return self

    def __exit__(self, *exc_info) -> None:
        # Raised even while a test's own exception propagates: Python chains the two, and the
        # handler's error is often the cause of the test's.
        self.stop()
