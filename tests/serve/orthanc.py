"""A real PACS on loopback for the `radedge serve` tests: an Orthanc process that a test starts,
stops (to play "PACS down"), restarts on the same ports with the same storage, and queries
through its REST API.

Orthanc 1.10 has no option to bind to one interface: its DICOM port listens on every interface
(as any PACS would) and its HTTP port does too, but with ``RemoteAccessAllowed`` false it answers
only clients on the same host. Nothing is stored outside the test's own folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

_DEBIAN_BINARY = "/usr/sbin/Orthanc"
# Straight to loopback: an http_proxy set for CI would otherwise receive the REST calls.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def orthanc_path() -> str | None:
    """The Orthanc binary, or None where it is not installed."""
    found = shutil.which("Orthanc")
    if found:
        return found
    return _DEBIAN_BINARY if os.access(_DEBIAN_BINARY, os.X_OK) else None


def orthanc_missing_reason() -> str | None:
    """A skip reason where Orthanc is missing, None where it is installed."""
    if orthanc_path() is None:
        return "Orthanc is not installed (apt-get install orthanc; .ci/run installs it in CI)"
    return None


def free_port() -> int:
    """A TCP port nothing listens on now. Probed on every interface, not only loopback,
    because Orthanc binds its ports on every interface: a port free on 127.0.0.1 alone may
    still clash. Another process can take it before Orthanc does; `Orthanc.start` retries."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


class OrthancError(RuntimeError):
    """Orthanc did not start, did not stop, or answered a REST call with an error."""


_PR_SET_PDEATHSIG = 1
# Looked up before any fork: the child runs only the call.
_prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: should pytest itself be killed, the kernel sends
    # Orthanc SIGTERM instead of leaving it running on the test's ports. The signal follows the
    # thread that started Orthanc, so start it from the test's own thread, not a worker.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Orthanc:
    """One Orthanc process whose configuration, storage, index and log live in `workdir`.

    ``Orthanc(workdir, aet="PACS", dicom_port=0, http_port=0)``: port 0 picks a free port once;
    the chosen ports are kept, so `stop()` then `start()` brings the same PACS back on the same
    ports with everything it had stored. As a context manager it starts on entry and stops on
    exit, whether or not the test failed.

    Configuration choices (Orthanc 1.10, see ``Orthanc --config=-``):

    * ``Plugins`` empty: the file names no plugin folder, so the Debian package's
      /usr/share/orthanc/plugins (worklists, serve-folders) is never loaded.
    * ``DicomCheckCalledAet`` true: a sender configured with the wrong called AE title is
      refused, as a strict PACS would refuse it.
    * ``DicomAlwaysAllowStore`` true and no registered modalities: any calling AE may store.
    * ``UnknownSopClassAccepted`` false (the default): Orthanc accepts the storage SOP classes
      dcmtk knows, which include SEG, the SR classes, GSPS and KOS.
    * ``OverwriteInstances`` false (the default): a second C-STORE of a stored SOP Instance UID
      is answered with success and discarded, so `count()` cannot show duplicates; a
      `dicomtools.StoreCounter` can.
    * ``StableAge`` 1 s, ``SaveJobs`` false, few threads: fast, deterministic start and stop.
    * HTTP without authentication, answering loopback clients only (``RemoteAccessAllowed``
      false).

    Args:
        workdir: folder for orthanc.json, storage/ (DICOM files and SQLite index) and orthanc.log.
        aet: the PACS's own AE title (called AE title of senders).
        dicom_port: DICOM port; 0 picks a free one.
        http_port: REST port; 0 picks a free one.
        startup_timeout_s: how long `start()` waits for the REST API to answer.
    """

    STOP_TIMEOUT_S = 15.0

    def __init__(
        self,
        workdir: Path,
        *,
        aet: str = "PACS",
        dicom_port: int = 0,
        http_port: int = 0,
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.aet = aet
        self._dicom_port_chosen_here, self._http_port_chosen_here = dicom_port == 0, http_port == 0
        self.dicom_port = dicom_port or free_port()
        self.http_port = http_port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.config_path = self.workdir / "orthanc.json"
        self.storage_dir = self.workdir / "storage"
        self.log_path = self.workdir / "orthanc.log"
        self._process: subprocess.Popen | None = None
        self._log_file = None
        self._has_run = False
        self.startup_s: float | None = None
        """Seconds the last `start()` took until the REST API answered."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Orthanc:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        """Start Orthanc and wait until its REST API answers as this PACS.

        On a port clash (another process took a port between the probe and Orthanc's bind)
        the ports chosen here are chosen again, up to three times; ports the caller named, and
        the ports of a PACS that already ran (a restart must keep them), are not.

        Raises:
            OrthancError: Orthanc exited or did not answer within `startup_timeout_s`; the
                message holds the end of its log.
        """
        if self.running:
            raise OrthancError(f"Orthanc is already running on DICOM port {self.dicom_port}")
        binary = orthanc_path()
        if binary is None:
            raise OrthancError(orthanc_missing_reason())
        may_repick = (self._dicom_port_chosen_here or self._http_port_chosen_here) and not self._has_run
        for attempt in range(3):
            try:
                self._start_once(binary)
                return
            except _PortInUse:
                if not may_repick or attempt == 2:
                    raise OrthancError(
                        f"Orthanc could not bind DICOM port {self.dicom_port} or HTTP port "
                        f"{self.http_port}: already in use (see `ss -tlnp`). Log:\n{self.log_tail()}"
                    ) from None
                if self._dicom_port_chosen_here:
                    self.dicom_port = free_port()
                if self._http_port_chosen_here:
                    self.http_port = free_port()

    def _start_once(self, binary: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(exist_ok=True)
        self.config_path.write_text(json.dumps(self._config(), indent=2) + "\n")
        self._log_file = open(self.log_path, "ab")
        log_start = self._log_file.tell()
        started = time.monotonic()
        self._process = subprocess.Popen(
            [binary, str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            preexec_fn=_die_with_parent if _prctl is not None else None,
        )
        deadline = started + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._close_log()
                with self.log_path.open("rb") as log:
                    log.seek(log_start)
                    if b"already in use" in log.read():
                        raise _PortInUse()
                raise OrthancError(f"Orthanc exited with status {self._process.returncode} on start. Log:\n{self.log_tail()}")
            system = self._answering_system()
            if system is not None:
                if system.get("DicomPort") != self.dicom_port or system.get("DicomAet") != self.aet:
                    self.stop()
                    raise OrthancError(
                        f"another server answers on HTTP port {self.http_port}: {system}; "
                        "stop it (pgrep -a Orthanc) or pass other ports"
                    )
                self.startup_s = time.monotonic() - started
                self._has_run = True
                return
            time.sleep(0.05)
        self.stop()
        raise OrthancError(f"Orthanc did not answer {self.url}/system within {self.startup_timeout_s} s. Log:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop Orthanc: SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL. Idempotent.

        A graceful stop takes about 3 s (Orthanc winds its HTTP and DICOM servers down on
        one-second polls); the storage and index stay in `workdir` for the next `start()`."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=self.STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._close_log()
        self._process = None

    def kill(self) -> None:
        """SIGKILL: the PACS vanishes at once, mid-association if one is open, as in a crash.
        Idempotent. The storage stays: Orthanc answers a C-STORE only once the instance is in
        its SQLite index, so the next `start()` finds every instance it acknowledged."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._close_log()
        self._process = None

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of orthanc.log, for failure messages."""
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def _config(self) -> dict:
        storage = str(self.storage_dir)
        return {
            "Name": f"radedge-test-{self.aet}",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "Plugins": [],
            "LuaScripts": [],
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": {},
            "UnknownSopClassAccepted": False,
            "OverwriteInstances": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "RegisteredUsers": {},
            "WebDavEnabled": False,
            "OrthancExplorerEnabled": False,
            "HttpThreadsCount": 4,
            "DicomThreadsCount": 2,
            "ConcurrentJobs": 1,
            "SaveJobs": False,
            "StableAge": 1,
            "MetricsEnabled": False,
            "StorageCompression": False,
            "DeidentifyLogs": True,
        }

    # -- REST --------------------------------------------------------------------------------

    def _get(self, path: str, *, timeout_s: float = 10.0) -> bytes:
        try:
            with _LOOPBACK.open(self.url + path, timeout=timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raise OrthancError(f"GET {path}: HTTP {error.code}: {error.read()[:500]!r}") from error

    def _get_json(self, path: str):
        return json.loads(self._get(path))

    def _post_json(self, path: str, body: bytes):
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        try:
            with _LOOPBACK.open(request, timeout=10.0) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise OrthancError(f"POST {path}: HTTP {error.code}: {error.read()[:500]!r}") from error

    def _answering_system(self) -> dict | None:
        try:
            with _LOOPBACK.open(self.url + "/system", timeout=1.0) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def system(self) -> dict:
        """GET /system: version, AE title, ports."""
        return self._get_json("/system")

    def statistics(self) -> dict:
        """GET /statistics: CountPatients/Studies/Series/Instances, disk sizes (strings)."""
        return self._get_json("/statistics")

    def instances(self) -> list[str]:
        """Orthanc identifiers (SHA-1 based, not DICOM UIDs) of every stored instance."""
        return self._get_json("/instances")

    def instance_tags(self, instance_id: str) -> dict:
        """The instance's tags as {keyword: value} (Orthanc's simplified-tags)."""
        return self._get_json(f"/instances/{instance_id}/simplified-tags")

    def instance_metadata(self, instance_id: str) -> dict:
        """Orthanc's metadata for the instance: TransferSyntax, SopClassUid, RemoteAET (the
        sender's calling AE title), CalledAET, RemoteIP, ReceptionDate, ..."""
        return self._get_json(f"/instances/{instance_id}/metadata?expand")

    def instance_file(self, instance_id: str) -> bytes:
        """The stored DICOM file, byte for byte as Orthanc keeps it."""
        return self._get(f"/instances/{instance_id}/file", timeout_s=60.0)

    def sop_instance_uids(self) -> list[str]:
        """SOP Instance UIDs of every stored instance, sorted."""
        expanded = self._get_json("/instances?expand")
        return sorted(item["MainDicomTags"]["SOPInstanceUID"] for item in expanded)

    def instance_id_of(self, sop_instance_uid: str) -> str | None:
        """The Orthanc identifier of the instance with this SOP Instance UID, None if not stored."""
        matches = self._post_json("/tools/lookup", sop_instance_uid.encode())
        ids = [match["ID"] for match in matches if match["Type"] == "Instance"]
        return ids[0] if ids else None

    def count(self) -> int:
        """Number of stored instances (distinct SOP Instance UIDs)."""
        return int(self.statistics()["CountInstances"])

    def wait_for_count(self, n: int, timeout_s: float) -> int:
        """Poll until at least `n` instances are stored or `timeout_s` passes; return the
        count seen last, so ``assert pacs.wait_for_count(3, 10) == 3`` reports what arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.count()
            if seen >= n or time.monotonic() >= deadline:
                return seen
            time.sleep(0.1)


class _PortInUse(Exception):
    pass
