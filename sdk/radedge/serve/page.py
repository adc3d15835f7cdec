"""``PageServer``: the technologist's live page and the HTTP status endpoint of ``radedge serve``.

Routes (GET only; any other method is 405, an unknown path 404; every JSON body is
``application/json; charset=utf-8``):

- ``/``: the page. Its script and style sheet are ``/static/page.js`` and ``/static/page.css``,
  package data under ``radedge/serve/static/``; nothing is fetched from outside the console.
- ``/api/status``: ``view.status()``. ``/api/instances/<key>``: ``view.instance(key)``, or 404.
- ``/overlay/<key>.png``: the PNG at ``view.overlay_path(key)``, or 404.
- ``/events``: Server-Sent Events. The stream opens with ``retry: 1000`` (reconnect after 1 s).
  Every event is one ``data:`` line holding a JSON object whose ``type`` says what it is (no
  ``event:`` names and no ``id:``, so one ``onmessage`` handler sees them all):

  - ``{"type": "snapshot", "status": <view.status()>}`` first, on every connection and
    reconnection, so a page that connects late or comes back after a network cut is complete;
  - then every event published on ``view.events`` as it is: ``{"type": "instance", "instance":
    {...}}``, ``{"type": "status", "counts": {...}, "outbox": {...}}``, and ``{"type": "resync"}``
    when this reader fell behind and events were dropped (the page then opens a new stream,
    which starts with a fresh snapshot);
  - a ``: keep-alive`` comment line every ``keepalive_s`` seconds, which keeps proxies and
    idle-connection timers from cutting a quiet stream.

  The stream ends when the server stops or the client goes away; its subscription is closed.

An instance key in a URL is lowercase hex, 1 to 128 characters; any other key is refused with
400 before it reaches the view.

Access: with a ``token``, every route needs it, as ``Authorization: Bearer <token>`` or
``?token=<token>`` (the page passes its own ``?token=`` on to every URL it loads); 401 otherwise.
Bound to loopback without a token, a request whose ``Host`` is not a loopback name with this
port is refused with 403, so a web page that re-points its own DNS name at 127.0.0.1 cannot
read the console's data through a browser on the console.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .events import EventHub

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
# How often a stream looks up from its queue to see whether the server is stopping or the
# client has gone; it bounds how long stop() waits for open streams.
_STREAM_POLL_S = 0.1
# How long the page's EventSource waits before reconnecting after the connection drops.
_RECONNECT_MS = 1000

_KEY = re.compile(r"[0-9a-f]{1,128}")
_INSTANCE_PATH = re.compile(r"/api/instances/([^/]*)")
_OVERLAY_PATH = re.compile(r"/overlay/([^/]*)\.png")
_STATIC_PATH = re.compile(r"/static/([^/]*)")
# Where the served page carries the access query, so that its script and style sheet load
# with the token like every other request.
_AUTH_QUERY_MARK = "{{auth_query}}"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_JSON = "application/json; charset=utf-8"

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # 'self' only, for everything: the script is a file, not inline, and nothing is loaded from
    # elsewhere; the page may not be framed by another site.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Status and instances change by the second, and the token may be in the URL: nothing is
    # worth keeping in a cache on disk.
    "Cache-Control": "no-store",
}


class ConsoleView(Protocol):
    """What the page server reads. ``status()`` is ``{"service": {...}, "counts": {...},
    "outbox": {...}, "instances": [instance, ...] (newest first)}``; an instance is the dict
    described in the ``radedge serve`` journal (key, received_at in epoch seconds, via, state,
    modality, body_part, view, flags, models, reason, overlay, receive_to_flag_ms). All of it
    must be JSON-ready: it is sent as it is."""

    events: EventHub

    def status(self) -> dict[str, Any]: ...

    def instance(self, key: str) -> dict[str, Any] | None: ...

    def overlay_path(self, key: str) -> Path | None: ...


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, IPv6 with or without brackets, no port) always
    means this machine: ``localhost`` or an address in 127.0.0.0/8 or ::1."""
    host = host.strip().lower().rstrip(".")
    bracketed = host.startswith("[") and host.endswith("]")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        return False
    if bracketed and not isinstance(address, ipaddress.IPv6Address):
        return False  # brackets enclose IPv6 addresses only
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _split_host_header(value: str) -> tuple[str, int | None] | None:
    """``"127.0.0.1:8642"`` -> ``("127.0.0.1", 8642)``; ``"[::1]:80"`` -> ``("[::1]", 80)``;
    None when the value is not a host with an optional decimal port."""
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?", value.strip())
    if match is None:
        return None
    return match.group(1), int(match.group(2)) if match.group(2) else None


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files by name: (content, content type). Only these names are ever served, so a
    request path cannot reach anything else on disk."""
    files = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        content_type = _CONTENT_TYPES.get(Path(entry.name).suffix)
        if entry.is_file() and content_type is not None:
            files[entry.name] = (entry.read_bytes(), content_type)
    return files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    page: PageServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr, beside the console's own output; a client
        # that hangs up mid-response is routine and not worth more than a debug line.
        log.debug("request from %s failed", client_address[0], exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive connection holds a thread
    # that stop() would have to wait for; only event streams stay open, and they end on stop.
    protocol_version = "HTTP/1.0"
    # Seconds a socket may block: a client that sends half a request, or stops reading its event
    # stream until the send buffer is full, is dropped after this long.
    timeout = 30
    server: _Server

    def version_string(self) -> str:
        return "radedge"

    def do_GET(self) -> None:
        self._handle()

    def _method_not_allowed(self) -> None:
        if self._admitted():
            self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{self.command} is not supported; use GET"},
                            extra_headers={"Allow": "GET"})

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _method_not_allowed

    # --- access -----------------------------------------------------------------------------

    def _admitted(self) -> bool:
        """Apply the Host check and the token; send 403 or 401 and return False when refused."""
        page = self.server.page
        if page.token is None and page._checks_host and not self._host_is_loopback(page.port):
            self._send_json(HTTPStatus.FORBIDDEN, {
                "error": "the Host header does not name this console; open the page as "
                         f"http://127.0.0.1:{page.port}/ or http://localhost:{page.port}/"})
            return False
        if page.token is not None and not self._has_token(page.token):
            self._send_json(HTTPStatus.UNAUTHORIZED,
                            {"error": "a token is required: add ?token=<token> to the URL or send "
                                      "'Authorization: Bearer <token>'"},
                            extra_headers={"WWW-Authenticate": 'Bearer realm="radedge"'})
            return False
        return True

    def _host_is_loopback(self, port: int) -> bool:
        parsed = _split_host_header(self.headers.get("Host", ""))
        if parsed is None:
            return False
        host, host_port = parsed
        return is_loopback(host) and (host_port == port or (host_port is None and port == 80))

    def _has_token(self, token: str) -> bool:
        expected = token.encode()
        authorization = self.headers.get("Authorization", "")
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected):
            return True
        for presented in parse_qs(urlsplit(self.path).query).get("token", []):
            if hmac.compare_digest(presented.encode(), expected):
                return True
        return False

    # --- routes -----------------------------------------------------------------------------

    def _handle(self) -> None:
        if not self._admitted():
            return
        path = unquote(urlsplit(self.path).path)
        view = self.server.page.view
        try:
            if path == "/":
                self._send_page()
            elif match := _STATIC_PATH.fullmatch(path):
                self._send_static(match.group(1))
            elif path == "/api/status":
                self._send_json(HTTPStatus.OK, view.status())
            elif match := _INSTANCE_PATH.fullmatch(path):
                self._send_instance(match.group(1))
            elif match := _OVERLAY_PATH.fullmatch(path):
                self._send_overlay(match.group(1))
            elif path == "/events":
                self._stream_events()
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            log.debug("client %s went away or stopped reading", self.client_address[0])
        except Exception:
            log.exception("GET %s failed", path)
            if not self._headers_sent:
                self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR,
                                {"error": "the console service failed to answer; see its log"})

    def _send_page(self) -> None:
        content, content_type = self.server.page._static["page.html"]
        token = self.server.page.token
        query = "" if token is None else "?token=" + quote(token, safe="")
        # quote() leaves only URL-safe ASCII, none of which is special in an HTML attribute.
        self._send(HTTPStatus.OK, content.replace(_AUTH_QUERY_MARK.encode(), query.encode()), content_type)

    def _send_static(self, name: str) -> None:
        found = self.server.page._static.get(name) if name != "page.html" else None
        if found is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such file: {name}"})
            return
        self._send(HTTPStatus.OK, *found)

    def _valid_key(self, key: str) -> bool:
        if _KEY.fullmatch(key):
            return True
        self._send_json(HTTPStatus.BAD_REQUEST,
                        {"error": "an instance key is 1 to 128 lowercase hexadecimal characters"})
        return False

    def _send_instance(self, key: str) -> None:
        if not self._valid_key(key):
            return
        instance = self.server.page.view.instance(key)
        if instance is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no instance {key}"})
            return
        self._send_json(HTTPStatus.OK, instance)

    def _send_overlay(self, key: str) -> None:
        if not self._valid_key(key):
            return
        path = self.server.page.view.overlay_path(key)
        try:
            content = path.read_bytes() if path is not None else None
        except FileNotFoundError:
            content = None
        if content is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no overlay for instance {key}"})
            return
        self._send(HTTPStatus.OK, content, "image/png")

    def _stream_events(self) -> None:
        page = self.server.page
        # Subscribe before reading the status, so nothing that happens in between is missed;
        # an event that the snapshot already shows is applied twice, which changes nothing.
        with page.view.events.subscribe() as subscription, page._stream_open():
            snapshot = {"type": "snapshot", "status": page.view.status()}
            self._send_headers(HTTPStatus.OK, "text/event-stream; charset=utf-8")
            self.wfile.write(f"retry: {_RECONNECT_MS}\n".encode() + _sse_data(snapshot))
            last_write = time.monotonic()
            while not page._stopping.is_set() and not self._client_gone():
                event = subscription.get(timeout_s=_STREAM_POLL_S)
                if event is not None:
                    try:
                        self.wfile.write(_sse_data(event))
                    except (TypeError, ValueError):
                        log.exception("event %r is not JSON-ready; it was not sent", event.get("type"))
                        continue
                    last_write = time.monotonic()
                elif time.monotonic() - last_write >= page.keepalive_s:
                    self.wfile.write(b": keep-alive\n\n")
                    last_write = time.monotonic()

    def _client_gone(self) -> bool:
        """Whether the client closed its end. An EventSource sends nothing after its request, so a
        readable socket means end-of-stream (or a reset): found within a poll, not at the next
        keep-alive."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # --- responses --------------------------------------------------------------------------

    _headers_sent = False

    def _send_headers(self, status: HTTPStatus, content_type: str, length: int | None = None,
                      extra_headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in {**_SECURITY_HEADERS, **(extra_headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self._headers_sent = True

    def _send(self, status: HTTPStatus, content: bytes, content_type: str,
              extra_headers: dict[str, str] | None = None) -> None:
        self._send_headers(status, content_type, len(content), extra_headers)
        if self.command != "HEAD":
            self.wfile.write(content)

    def _send_json(self, status: HTTPStatus, body: Any, extra_headers: dict[str, str] | None = None) -> None:
        # allow_nan=False: a NaN score would be written as NaN, which no browser's JSON.parse reads.
        self._send(status, json.dumps(body, allow_nan=False).encode(), _JSON, extra_headers)

    # --- logging ----------------------------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The standard library's own refusals (a malformed request line, headers too long) answer
        # in JSON with the same headers as every other response.
        self.log_error("code %d, message %s", code, message)
        self.close_connection = True
        self._send_json(HTTPStatus(code), {"error": message or HTTPStatus(code).phrase})

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The request line holds the query, and the query may hold the token: log the path only.
        # A request line that did not parse leaves no command or path.
        path = urlsplit(getattr(self, "path", "") or "").path
        log.debug("%s %s %s %s", self.client_address[0], self.command or "-", path or "-", code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], re.sub(r"\?[^\s\"']*", "?<query>", format % args))


def _sse_data(event: dict[str, Any]) -> bytes:
    # json.dumps without indent writes no newline, so the event is one data line.
    return b"data: " + json.dumps(event, allow_nan=False).encode() + b"\n\n"


class PageServer:
    """Serve the live page, the status API and the event stream for ``view`` (see ``ConsoleView``)
    on ``host``:``port`` (0 picks a free port), from background threads.

    ``token`` (None: no token) is required on every request when set. ``keepalive_s`` is the
    seconds between keep-alive comments on a quiet event stream.
    """

    def __init__(self, view: ConsoleView, *, host: str = "127.0.0.1", port: int = 8642,
                 token: str | None = None, keepalive_s: float = KEEPALIVE_S):
        if token is not None and not token:
            raise ValueError("token is empty: pass None for no token, or a secret string")
        self.view = view
        self.host = host
        self.token = token
        self.keepalive_s = keepalive_s
        self._checks_host = is_loopback(host)
        self._static = _static_files()
        self._requested_port = port
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._streams = 0
        self._streams_changed = threading.Condition()

    @property
    def port(self) -> int:
        """The port served (the one picked, when 0 was asked for), kept after stop(); before the
        first start(), the one asked for."""
        return self._port

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8642/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def open_streams(self) -> int:
        """How many event streams are being served now."""
        with self._streams_changed:
            return self._streams

    def start(self) -> None:
        """Listen and serve from a daemon thread; returns once the port is bound."""
        if self._server is not None:
            raise RuntimeError("the page server is already running; stop() it first")
        if self.token is None and not self._checks_host:
            log.warning("the console page on %s:%s has no token: anyone who can reach this address "
                        "can read it; set a token or bind to 127.0.0.1", self.host, self._requested_port)
        self._stopping.clear()
        self._server = (_Server6 if ":" in self.host else _Server)((self.host, self._requested_port), _Handler)
        self._server.page = self
        self._port = self._server.server_address[1]
        # stop() waits up to one poll interval (seconds) for the accept loop to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"radedge-page:{self.port}", daemon=True)
        self._thread.start()
        log.info("console page at %s", self.url)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Close the listener and end every open event stream, waiting up to ``timeout_s`` for them."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout_s)
        deadline = time.monotonic() + timeout_s
        with self._streams_changed:
            while self._streams and (left := deadline - time.monotonic()) > 0:
                self._streams_changed.wait(left)
            if self._streams:
                log.warning("%d event stream(s) still open %.1f s after stop", self._streams, timeout_s)
        self._server = None
        self._thread = None

    def __enter__(self) -> PageServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @contextmanager
    def _stream_open(self) -> Iterator[None]:
        """Count an event stream as open for the length of the block, so stop() can wait for it."""
        with self._streams_changed:
            self._streams += 1
        try:
            yield
        finally:
            with self._streams_changed:
                self._streams -= 1
                self._streams_changed.notify_all()
