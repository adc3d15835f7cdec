"""``radedge serve``'s configuration: one TOML file, every setting checked before anything starts.

    [models]     which bundles, at what precision, signed by whom
    [receiver]   the DICOM C-STORE receiver (AE title, bind address, port, who may call, TLS)
    [folder]     a watched drop folder (optional)
    [analysis]   per-file time budget, queue bound, disk reserve, DICOM outputs on or off
    [forward]    where SEG / SR / GSPS / KOS go, and how retries back off (optional)
    [page]       the technologist's live page and the status endpoint
    [audit]      the audit log

Relative paths are read from the configuration file's folder. An unknown setting is an
error (a misspelt ``alowed_calling_ae_titles`` must not silently let every caller in).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from ..errors import ServeConfigError
from ..io.limits import TIME_BUDGET_S
from .page import is_loopback


@dataclass(frozen=True)
class ModelsConfig:
    """``bundles``: bundle folders (empty: every model bundled with radedge); ``precision``:
    as ``load_model`` (None: each bundle's default); ``trusted_keys``: public key files, each
    bundle must be signed by one (empty: signatures not required); ``threads``: CPU threads
    per model (0: all cores)."""

    bundles: tuple[Path, ...] = ()
    precision: str | None = None
    trusted_keys: tuple[Path, ...] = ()
    threads: int = 0


@dataclass(frozen=True)
class TlsConfig:
    """The receiver's certificate and key (PEM); ``ca_certificates`` set: callers must show a
    certificate signed by one of them."""

    certificate: Path
    private_key: Path
    ca_certificates: Path | None = None


@dataclass(frozen=True)
class ReceiverConfig:
    """The DICOM C-STORE receiver. ``allowed_calling_ae_titles`` empty: any caller."""

    enabled: bool = True
    ae_title: str = "RADEDGE"
    host: str = "127.0.0.1"
    port: int = 11112
    allowed_calling_ae_titles: tuple[str, ...] = ()
    tls: TlsConfig | None = None
    network_timeout_s: float = 30.0


@dataclass(frozen=True)
class FolderConfig:
    """A drop folder polled every ``poll_interval_s``: a file is taken once its size and time
    stamp held still for one interval, and removed from the folder once it is in the journal."""

    path: Path
    poll_interval_s: float = 1.0


@dataclass(frozen=True)
class AnalysisConfig:
    """``time_budget_s``: seconds one file's decode may take (its worker is stopped past it);
    ``max_queue``: images received and not yet analysed beyond which the receiver answers
    "out of resources"; ``min_free_mb``: disk space kept free under the state folder;
    ``dicom_outputs``: make SEG / SR / GSPS / KOS."""

    time_budget_s: float = TIME_BUDGET_S
    max_queue: int = 1000
    min_free_mb: int = 512
    dicom_outputs: bool = True


@dataclass(frozen=True)
class ForwardConfig:
    """Where the DICOM results are C-STORE'd. A failed send is retried after
    ``retry_initial_s``, doubling up to ``retry_max_s``, for as long as it takes; only a
    destination that refuses an object outright (not "busy") ``refusals_before_giving_up``
    times in a row gives up on it."""

    ae_title: str
    host: str
    port: int
    calling_ae_title: str = "RADEDGE"
    retry_initial_s: float = 2.0
    retry_max_s: float = 300.0
    refusals_before_giving_up: int = 5
    network_timeout_s: float = 30.0


@dataclass(frozen=True)
class PageConfig:
    """The live page and ``/api/status``. Off loopback it needs a ``token`` (or
    ``token_file``), which every request must carry."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8642
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AuditConfig:
    """``path``: the audit log (JSON lines; relative: inside the state folder)."""

    path: Path = Path("audit.jsonl")


@dataclass(frozen=True)
class ServeConfig:
    models: ModelsConfig = ModelsConfig()
    receiver: ReceiverConfig = ReceiverConfig()
    folder: FolderConfig | None = None
    analysis: AnalysisConfig = AnalysisConfig()
    forward: ForwardConfig | None = None
    page: PageConfig = PageConfig()
    audit: AuditConfig = AuditConfig()
    source: Path | None = None

    def describe(self) -> list[str]:
        """What this configuration sets up, one line each, for ``radedge serve --check``."""
        receiver = self.receiver
        callers = ", ".join(receiver.allowed_calling_ae_titles) or "any calling AE title"
        lines = [
            f"models: {', '.join(str(p) for p in self.models.bundles) or 'every bundled model'}"
            + (f" at {self.models.precision}" if self.models.precision else "")
            + (f", signed by one of {len(self.models.trusted_keys)} key(s)" if self.models.trusted_keys else ""),
            (f"receiver: AE title {receiver.ae_title} on {receiver.host}:{receiver.port}, {callers}"
             + (", TLS" + (" with client certificates" if receiver.tls.ca_certificates else "") if receiver.tls else ""))
            if receiver.enabled else "receiver: off",
            f"folder: {self.folder.path}, polled every {self.folder.poll_interval_s:g} s" if self.folder
            else "folder: none",
            f"analysis: {self.analysis.time_budget_s:g} s per file to decode, at most {self.analysis.max_queue} "
            f"waiting, {self.analysis.min_free_mb} MB kept free, DICOM outputs "
            + ("on" if self.analysis.dicom_outputs else "off"),
            f"forward: to AE title {self.forward.ae_title} at {self.forward.host}:{self.forward.port} as "
            f"{self.forward.calling_ae_title}, retries from {self.forward.retry_initial_s:g} s up to "
            f"{self.forward.retry_max_s:g} s apart" if self.forward else "forward: none (results kept in the state folder)",
            (f"page: http://{_url_host(self.page.host)}:{self.page.port}/"
             + (" (token required)" if self.page.token else "")) if self.page.enabled else "page: off",
            f"audit: {self.audit.path}",
        ]
        return lines


def load_config(path: str | os.PathLike) -> ServeConfig:
    """Read and check a ``serve.toml``. Raises ``ServeConfigError`` naming the setting."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServeConfigError(f"no configuration file at '{path}'; start from examples/serve.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeConfigError(f"cannot read the configuration '{path}': {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ServeConfigError(f"'{path}' is not valid TOML: {exc}") from None
    return parse_config(raw, base=path.resolve().parent, source=path)


def parse_config(raw: dict[str, Any], *, base: Path, source: Path | None = None) -> ServeConfig:
    """A ``ServeConfig`` from parsed TOML; relative paths resolved against ``base``."""
    table = _Table(raw, "", base)
    models = table.table("models")
    receiver = table.table("receiver")
    folder = table.table("folder", optional=True)
    analysis = table.table("analysis")
    forward = table.table("forward", optional=True)
    page = table.table("page")
    audit = table.table("audit")
    table.done()

    models_config = ModelsConfig(
        bundles=tuple(models.paths("bundles", must_exist=True)),
        precision=models.choice("precision", ("fp32", "fp16", "int8"), None),
        trusted_keys=tuple(models.paths("trusted_keys", must_exist=True)),
        threads=models.integer("threads", 0, minimum=0, maximum=1024),
    )
    models.done()

    tls = receiver.table("tls", optional=True)
    tls_config = None
    if tls is not None:
        tls_config = TlsConfig(
            certificate=tls.path("certificate", must_exist=True),
            private_key=tls.path("private_key", must_exist=True),
            ca_certificates=tls.path("ca_certificates", must_exist=True, optional=True),
        )
        tls.done()
    receiver_config = ReceiverConfig(
        enabled=receiver.boolean("enabled", True),
        ae_title=receiver.ae_title("ae_title", "RADEDGE"),
        host=receiver.host("host", "127.0.0.1"),
        port=receiver.port("port", 11112),
        allowed_calling_ae_titles=tuple(receiver.ae_titles("allowed_calling_ae_titles")),
        tls=tls_config,
        network_timeout_s=receiver.number("network_timeout_s", 30.0, minimum=1, maximum=3600),
    )
    receiver.done()

    folder_config = None
    if folder is not None:
        folder_config = FolderConfig(
            path=folder.path("path", must_exist=True),
            poll_interval_s=folder.number("poll_interval_s", 1.0, minimum=0.05, maximum=3600),
        )
        folder.done()

    analysis_config = AnalysisConfig(
        time_budget_s=analysis.number("time_budget_s", TIME_BUDGET_S, minimum=0.1, maximum=3600),
        max_queue=analysis.integer("max_queue", 1000, minimum=1, maximum=10_000_000),
        min_free_mb=analysis.integer("min_free_mb", 512, minimum=0, maximum=10_000_000),
        dicom_outputs=analysis.boolean("dicom_outputs", True),
    )
    analysis.done()

    forward_config = None
    if forward is not None:
        forward_config = ForwardConfig(
            ae_title=forward.ae_title("ae_title", None),
            host=forward.host("host", None),
            port=forward.port("port", None, allow_zero=False),
            calling_ae_title=forward.ae_title("calling_ae_title", receiver_config.ae_title),
            retry_initial_s=forward.number("retry_initial_s", 2.0, minimum=0.01, maximum=3600),
            retry_max_s=forward.number("retry_max_s", 300.0, minimum=0.01, maximum=86400),
            refusals_before_giving_up=forward.integer("refusals_before_giving_up", 5, minimum=1, maximum=1000),
            network_timeout_s=forward.number("network_timeout_s", 30.0, minimum=1, maximum=3600),
        )
        if forward_config.retry_max_s < forward_config.retry_initial_s:
            raise ServeConfigError("forward.retry_max_s must be at least forward.retry_initial_s")
        forward.done()
    if not analysis_config.dicom_outputs and forward_config is not None:
        raise ServeConfigError("[forward] is set but analysis.dicom_outputs is false: there would be nothing to "
                               "forward; remove [forward] or turn the DICOM outputs on")

    token = page.string("token", secret=True)
    token_file = page.path("token_file", must_exist=True, optional=True)
    if token is not None and token_file is not None:
        raise ServeConfigError("page.token and page.token_file are both set; keep one")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ServeConfigError(f"page.token_file '{token_file}' cannot be read: {exc}") from None
    if token is not None and len(token) < 16:
        raise ServeConfigError("page.token is shorter than 16 characters; use a long random one "
                               "(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    page_config = PageConfig(
        enabled=page.boolean("enabled", True),
        host=page.host("host", "127.0.0.1"),
        port=page.port("port", 8642),
        token=token,
    )
    page.done()
    if page_config.enabled and not is_loopback(page_config.host) and not page_config.token:
        raise ServeConfigError(
            f"page.host {page_config.host!r} exposes the page beyond this machine: set page.token (or "
            f"page.token_file) so only those who hold it can see the list of images")

    audit_config = AuditConfig(path=audit.path("path", Path("audit.jsonl"), relative_to_state=True))
    audit.done()

    if not receiver_config.enabled and folder_config is None:
        raise ServeConfigError("the receiver is off and no [folder] is set: nothing would ever arrive")
    return ServeConfig(models_config, receiver_config, folder_config, analysis_config, forward_config,
                       page_config, audit_config, source)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


_MISSING = object()


class _Table:
    """One TOML table, read setting by setting; ``done`` refuses whatever was not read."""

    def __init__(self, raw: dict[str, Any], name: str, base: Path):
        self._raw = raw
        self._name = name
        self._base = base
        self._read: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._name}.{key}" if self._name else key

    def _get(self, key: str, default: Any) -> Any:
        self._read.add(key)
        value = self._raw.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise ServeConfigError(f"{self._key(key)} is required")
            return default
        return value

    def _wrong(self, key: str, expected: str, value: Any, secret: bool = False) -> ServeConfigError:
        shown = "(hidden)" if secret else repr(value)
        return ServeConfigError(f"{self._key(key)} must be {expected}, not {shown}")

    def done(self) -> None:
        unknown = sorted(set(self._raw) - self._read)
        if unknown:
            where = f"[{self._name}]" if self._name else "the top level"
            raise ServeConfigError(
                f"unknown setting(s) in {where}: {', '.join(unknown)}; see examples/serve.toml for the settings")

    def table(self, key: str, *, optional: bool = False) -> _Table | None:
        value = self._get(key, None if optional else {})
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong(key, "a table", value)
        return _Table(value, self._key(key), self._base)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def integer(self, key: str, default: int | None, *, minimum: int, maximum: int) -> int:
        value = self._get(key, _MISSING if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self._wrong(key, f"a whole number from {minimum} to {maximum}", value)
        return value

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
            raise self._wrong(key, f"a number from {minimum:g} to {maximum:g}", value)
        return float(value)

    def string(self, key: str, *, secret: bool = False) -> str | None:
        """An optional string (None when absent)."""
        value = self._get(key, None)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self._wrong(key, "a non-empty string", value, secret)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None) -> str | None:
        value = self._get(key, default)
        if value is not None and value not in choices:
            raise self._wrong(key, "one of " + ", ".join(choices), value)
        return value

    def ae_title(self, key: str, default: str | None) -> str:
        value = self._get(key, _MISSING if default is None else default)
        if not _valid_ae_title(value):
            raise self._wrong(key, "an AE title: 1 to 16 characters, printable ASCII without backslash, not all spaces",
                              value)
        return value.strip()

    def ae_titles(self, key: str) -> list[str]:
        values = self._get(key, [])
        if not isinstance(values, list) or not all(_valid_ae_title(v) for v in values):
            raise self._wrong(key, "a list of AE titles (1 to 16 printable ASCII characters each)", values)
        return [v.strip() for v in values]

    def host(self, key: str, default: str | None) -> str:
        value = self._get(key, _MISSING if default is None else default)
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise self._wrong(key, "an IP address or host name", value)
        return value

    def port(self, key: str, default: int | None, *, allow_zero: bool = True) -> int:
        value = self._get(key, _MISSING if default is None else default)
        low = 0 if allow_zero else 1
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65535:
            raise self._wrong(key, f"a TCP port from {low} to 65535" + (" (0: any free port)" if allow_zero else ""),
                              value)
        return value

    def path(self, key: str, default: Path | None = None, *, must_exist: bool = False, optional: bool = False,
             relative_to_state: bool = False) -> Path | None:
        value = self._get(key, None if optional else (_MISSING if default is None else default))
        if value is None:
            return None
        if not isinstance(value, (str, Path)) or not str(value):
            raise self._wrong(key, "a path", value)
        path = Path(value).expanduser()
        if relative_to_state:
            return path
        if not path.is_absolute():
            path = self._base / path
        if must_exist and not path.exists():
            raise ServeConfigError(f"{self._key(key)}: '{path}' does not exist")
        return path

    def paths(self, key: str, *, must_exist: bool) -> list[Path]:
        values = self._get(key, [])
        if not isinstance(values, list):
            raise self._wrong(key, "a list of paths", values)
        paths = []
        for value in values:
            if not isinstance(value, str) or not value:
                raise self._wrong(key, "a list of paths", values)
            path = Path(value).expanduser()
            path = path if path.is_absolute() else self._base / path
            if must_exist and not path.exists():
                raise ServeConfigError(f"{self._key(key)}: '{path}' does not exist")
            paths.append(path)
        return paths


def _valid_ae_title(value: Any) -> bool:
    # PS3.5 6.2: AE is 16 characters of the default repertoire, no backslash or control characters.
    return (isinstance(value, str) and 0 < len(value) <= 16 and value.strip() != ""
            and all(" " <= c <= "~" and c != "\\" for c in value))
