"""The console page server over real HTTP, and the page itself in a headless Chromium."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from radedge.serve.events import EventHub
from radedge.serve.page import PageServer, is_loopback

from .browser import Browser, unavailable_reason

ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
NOW = 1765000000.0
TOKEN = "c0nsole-t0ken/with+odd&chars"

TUMOUR_FLAG = {"model": "bone-tumor", "code": "bone-tumor.suspected", "title": "Suspected bone tumour",
               "label": "tumor", "score": 0.93, "threshold": 0.5, "where": None}
FRACTURE_FLAG = {"model": "vcf", "code": "vcf.fracture", "title": "Vertebral compression fracture",
                 "label": "fracture", "score": 0.71, "threshold": 0.6, "where": "L1"}


def instance(key: str, received_at: float, state: str = "done", **fields: Any) -> dict[str, Any]:
    """An instance dict as the service's journal gives it; ``fields`` override the defaults."""
    return {"key": key, "received_at": received_at, "via": "c-store", "state": state, "modality": "DX",
            "body_part": "KNEE", "view": "AP", "flags": [], "models": {"bone-tumor": "analysed"},
            "reason": None, "overlay": False, "receive_to_flag_ms": None, **fields}


class ConsoleData:
    """The data behind the page in these tests: instance dicts by key, overlay PNGs in a folder and
    the hub that announces changes, which is what ``radedge serve``'s journal hands the page."""

    def __init__(self, overlay_folder: Path, instances: list[dict[str, Any]] = ()):
        self.events = EventHub()
        self.overlay_folder = overlay_folder
        self.instances = {item["key"]: item for item in instances}
        self.asked: list[str] = []
        self.status_reads = 0

    def counts(self) -> dict[str, int]:
        states = ["received", "analysing", "done", "not analysed", "failed", "refused"]
        return {state: sum(item["state"] == state for item in self.instances.values()) for state in states}

    def status(self) -> dict[str, Any]:
        self.status_reads += 1
        newest_first = sorted(self.instances.values(), key=lambda item: item["received_at"], reverse=True)
        return {"service": {"version": "0.1.0", "ae_title": "RADEDGE", "models": ["bone-tumor", "vcf"],
                            "started_at": NOW - 3600},
                "counts": self.counts(), "outbox": {"pending": 0, "sent": 2}, "instances": newest_first}

    def instance(self, key: str) -> dict[str, Any] | None:
        self.asked.append(key)
        return self.instances.get(key)

    def overlay_path(self, key: str) -> Path | None:
        self.asked.append(key)
        found = self.instances.get(key)
        return self.overlay_folder / f"{key}.png" if found and found["overlay"] else None

    def put(self, item: dict[str, Any]) -> None:
        """Record a change and announce it, as the service does."""
        self.instances[item["key"]] = item
        self.events.publish({"type": "instance", "instance": item})
        self.events.publish({"type": "status", "counts": self.counts(), "outbox": {"pending": 0, "sent": 2}})


def write_overlay(path: Path) -> bytes:
    """A 256x256 knee-like grey image with a red ring where a finding would be; returns the PNG."""
    image = np.full((256, 256, 3), 40, np.uint8)
    cv2.rectangle(image, (90, 20), (166, 236), (170, 170, 170), -1)
    cv2.circle(image, (128, 150), 30, (0, 0, 220), 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path.read_bytes()


@pytest.fixture
def data(tmp_path: Path) -> ConsoleData:
    journal = ConsoleData(tmp_path / "overlays", [
        instance("a1", NOW - 120, flags=[TUMOUR_FLAG], overlay=True, receive_to_flag_ms=840.0),
        instance("b2", NOW - 60, "analysing", models={"bone-tumor": "running"}),
    ])
    write_overlay(journal.overlay_folder / "a1.png")
    return journal


@pytest.fixture
def server(data: ConsoleData):
    with PageServer(data, port=0) as page:
        yield page


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json; charset=utf-8"
        return json.loads(self.body)


def request(page: PageServer, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", page.port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


class EventStream:
    """A raw-socket reader of ``/events``: the response head, then one SSE block at a time."""

    def __init__(self, page: PageServer, path: str = "/events"):
        self.socket = socket.create_connection(("127.0.0.1", page.port), timeout=5)
        self.socket.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{page.port}\r\n\r\n".encode())
        self.buffer = b""
        head = self._read_until(b"\r\n\r\n", timeout_s=5)
        assert head is not None, "the stream closed before its headers"
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {name.lower(): value.strip() for name, _, value in
                        (line.partition(":") for line in header_lines)}

    def _read_until(self, separator: bytes, timeout_s: float) -> bytes | None:
        deadline = time.monotonic() + timeout_s
        while separator not in self.buffer:
            self.socket.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = self.socket.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"nothing complete within {timeout_s} s; have {self.buffer[-200:]!r}") from None
            if not chunk:
                return None
            self.buffer += chunk
        block, _, self.buffer = self.buffer.partition(separator)
        return block

    def block(self, timeout_s: float = 5) -> str | None:
        """The next SSE block (lines without the blank line that ends it), or None at end of stream."""
        block = self._read_until(b"\n\n", timeout_s)
        return None if block is None else block.decode()

    def event(self, timeout_s: float = 5) -> dict[str, Any]:
        """The next data event, skipping comments and the retry field."""
        while True:
            block = self.block(timeout_s)
            assert block is not None, "the stream ended"
            data = [line[len("data: "):] for line in block.split("\n") if line.startswith("data: ")]
            if data:
                return json.loads("\n".join(data))

    def close(self) -> None:
        self.socket.close()


# --- routes ---------------------------------------------------------------------------------


def test_the_page_loads_its_script_and_style_from_files_with_safe_headers(server: PageServer):
    page = request(server, "/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.body.decode()
    assert '<script src="static/page.js" defer></script>' in html
    assert "<script>" not in html and "{{" not in html
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe" not in policy

    for name, content_type in [("page.js", "text/javascript; charset=utf-8"), ("page.css", "text/css; charset=utf-8"),
                               ("favicon.svg", "image/svg+xml")]:
        served = request(server, f"/static/{name}")
        assert served.status == 200, name
        assert served.headers["Content-Type"] == content_type
        assert len(served.body) == int(served.headers["Content-Length"]) > 0


@pytest.mark.parametrize("path", ["/static/../page.py", "/static/%2e%2e/page.py", "/static/..%2fpage.py",
                                  "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", "/static/", "/static/missing.js",
                                  "/static/page.html", "/static//etc/passwd"])
def test_only_the_page_files_are_served_from_static(server: PageServer, path: str):
    response = request(server, path)
    assert response.status == 404
    assert "error" in response.json()


def test_status_is_the_view_status_as_json(server: PageServer, data: ConsoleData):
    response = request(server, "/api/status")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert [item["key"] for item in body["instances"]] == ["b2", "a1"]
    assert body["counts"]["done"] == 1 and body["counts"]["analysing"] == 1
    assert body["instances"][1]["flags"] == [TUMOUR_FLAG]


def test_an_instance_by_key(server: PageServer, data: ConsoleData):
    found = request(server, "/api/instances/a1")
    assert found.status == 200
    assert found.json() == data.instances["a1"]

    missing = request(server, "/api/instances/ffff")
    assert missing.status == 404
    assert "ffff" in missing.json()["error"]
    assert data.asked == ["a1", "ffff"]


@pytest.mark.parametrize("key", ["A1", "xyz", "a" * 129, "%2e%2e", "a1%00", "a1;rm", ""])
@pytest.mark.parametrize("route", ["/api/instances/{}", "/overlay/{}.png"])
def test_a_malformed_key_is_refused_before_it_reaches_the_view(server: PageServer, data: ConsoleData,
                                                               route: str, key: str):
    response = request(server, route.format(key))
    assert response.status == 400
    assert "hexadecimal" in response.json()["error"]
    assert data.asked == []


def test_a_128_character_key_is_accepted(server: PageServer, data: ConsoleData):
    key = "0" * 128
    assert request(server, f"/api/instances/{key}").status == 404
    assert data.asked == [key]


def test_overlays(server: PageServer, data: ConsoleData):
    served = request(server, "/overlay/a1.png")
    assert served.status == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.body == (data.overlay_folder / "a1.png").read_bytes()

    assert request(server, "/overlay/b2.png").status == 404  # no overlay for it
    data.instances["b2"]["overlay"] = True
    assert request(server, "/overlay/b2.png").status == 404  # said so, but the file is not there


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_only_get_is_allowed(server: PageServer, data: ConsoleData, method: str):
    response = request(server, "/api/status", method=method)
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert data.status_reads == 0


@pytest.mark.parametrize("path", ["/index.html", "/api", "/api/status/", "/api/instances", "/overlay/a1",
                                  "/events/x"])
def test_unknown_paths_are_404_in_json(server: PageServer, path: str):
    response = request(server, path)
    assert response.status == 404
    assert response.json()["error"].startswith("no such page")


def test_a_malformed_request_line_is_refused_in_json(server: PageServer):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"GET /api/status and more HTTP/1.1\r\n\r\n")
        answer = raw.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400")
    assert b"application/json" in head
    assert "error" in json.loads(body)


def test_a_failing_view_is_a_500_and_the_server_goes_on(server: PageServer, data: ConsoleData, caplog):
    data.instances["c3"] = instance("c3", NOW, score=float("nan"))  # not JSON: NaN
    with caplog.at_level(logging.ERROR, logger="radedge.serve.page"):
        failed = request(server, "/api/instances/c3")
    assert failed.status == 500
    assert "log" in failed.json()["error"]
    assert any("/api/instances/c3" in record.getMessage() for record in caplog.records)
    assert request(server, "/api/instances/a1").status == 200


def test_start_on_port_0_picks_a_free_port(data: ConsoleData):
    page = PageServer(data, port=0)
    assert page.port == 0
    with page:
        assert page.port > 0
        assert page.url == f"http://127.0.0.1:{page.port}/"
        assert request(page, "/api/status").status == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", page.port), timeout=1).close()


# --- event stream ---------------------------------------------------------------------------


def test_events_start_with_the_whole_status_then_follow_the_hub(server: PageServer, data: ConsoleData):
    stream = EventStream(server)
    try:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["cache-control"] == "no-store"
        snapshot = stream.event()
        assert snapshot == {"type": "snapshot", "status": data.status()}
        assert data.events.subscriber_count == 1

        done = instance("b2", NOW - 60, flags=[FRACTURE_FLAG], receive_to_flag_ms=1200.0)
        data.put(done)
        assert stream.event() == {"type": "instance", "instance": done}
        assert stream.event()["counts"]["done"] == 2
        data.events.publish({"type": "resync"})
        assert stream.event() == {"type": "resync"}
    finally:
        stream.close()


def test_an_event_that_is_not_json_is_skipped_and_the_stream_goes_on(server: PageServer, data: ConsoleData,
                                                                      caplog):
    stream = EventStream(server)
    try:
        stream.event()
        with caplog.at_level(logging.ERROR, logger="radedge.serve.page"):
            data.events.publish({"type": "instance", "instance": instance("c3", NOW, score=float("nan"))})
            data.events.publish({"type": "resync"})
            assert stream.event() == {"type": "resync"}
        assert any("not JSON-ready" in record.getMessage() for record in caplog.records)
    finally:
        stream.close()


def test_a_quiet_stream_sends_keep_alive_comments(data: ConsoleData):
    with PageServer(data, port=0, keepalive_s=0.2) as page:
        stream = EventStream(page)
        try:
            stream.event()
            started = time.monotonic()
            assert stream.block(timeout_s=2) == ": keep-alive"
            assert 0.15 < time.monotonic() - started < 1.5
        finally:
            stream.close()


def test_stop_ends_open_streams_promptly(data: ConsoleData):
    page = PageServer(data, port=0)
    page.start()
    streams = [EventStream(page), EventStream(page)]
    for stream in streams:
        stream.event()
    assert data.events.subscriber_count == 2 and page.open_streams == 2

    started = time.monotonic()
    page.stop()
    for stream in streams:
        assert stream.block(timeout_s=2) is None  # end of stream, not a timeout
        stream.close()
    assert time.monotonic() - started < 1.0
    assert data.events.subscriber_count == 0 and page.open_streams == 0


def test_a_client_that_goes_away_is_unsubscribed(server: PageServer, data: ConsoleData):
    stream = EventStream(server)
    stream.event()
    assert data.events.subscriber_count == 1
    stream.close()
    deadline = time.monotonic() + 1.0
    while data.events.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert data.events.subscriber_count == 0 and server.open_streams == 0


# --- access ---------------------------------------------------------------------------------


@pytest.fixture
def guarded(data: ConsoleData):
    with PageServer(data, port=0, token=TOKEN) as page:
        yield page


GUARDED_PATHS = ["/", "/static/page.js", "/api/status", "/api/instances/a1", "/overlay/a1.png", "/events",
                 "/no-such-page"]


@pytest.mark.parametrize("path", GUARDED_PATHS)
@pytest.mark.parametrize("credentials", [
    {},
    {"headers": {"Authorization": "Bearer wrong"}},
    {"headers": {"Authorization": f"Basic {TOKEN}"}},
    {"query": "?token=wrong"},
    {"query": "?token=" + TOKEN[:-1]},
], ids=["none", "wrong-bearer", "not-bearer", "wrong-query", "prefix-query"])
def test_a_token_is_required_on_every_route(guarded: PageServer, data: ConsoleData, path: str,
                                            credentials: dict[str, Any]):
    response = request(guarded, path + credentials.get("query", ""), headers=credentials.get("headers"))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "token" in response.json()["error"]
    assert data.asked == [] and data.status_reads == 0


def test_the_token_opens_every_route_as_bearer_or_query(guarded: PageServer):
    for path in ["/static/page.js", "/api/status", "/api/instances/a1", "/overlay/a1.png"]:
        assert request(guarded, path, headers={"Authorization": f"Bearer {TOKEN}"}).status == 200, path
        assert request(guarded, f"{path}?token={quote(TOKEN, safe='')}").status == 200, path
    page = request(guarded, f"/?token={quote(TOKEN, safe='')}")
    assert page.status == 200
    # The page's own files are asked for with the token too, so they load under the same rule.
    assert f'src="static/page.js?token={quote(TOKEN, safe="")}"' in page.body.decode()
    stream = EventStream(guarded, f"/events?token={quote(TOKEN, safe='')}")
    try:
        assert stream.status == 200 and stream.event()["type"] == "snapshot"
    finally:
        stream.close()


@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:{port}", True),
    ("localhost:{port}", True),
    ("[::1]:{port}", True),
    ("evil.example:{port}", False),
    ("localhost.evil.example:{port}", False),
    ("127.0.0.1:{other}", False),
    ("127.0.0.1", False),
    ("", False),
])
def test_without_a_token_a_loopback_server_answers_only_loopback_host_names(server: PageServer, host: str,
                                                                            allowed: bool):
    host = host.format(port=server.port, other=server.port + 1)
    response = request(server, "/api/status", headers={"Host": host})
    assert response.status == (200 if allowed else 403)
    if not allowed:
        assert "Host" in response.json()["error"]


def test_with_a_token_the_host_name_does_not_matter(guarded: PageServer):
    response = request(guarded, "/api/status", headers={"Host": "console.hospital.example",
                                                       "Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("LOCALHOST.", True), ("::1", True),
    ("[::1]", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("10.0.0.5", False), ("localhost.example", False), ("evil.localhost", False),
    ("::", False), ("", False), ("[127.0.0.1]", False),
])
def test_is_loopback(host: str, loopback: bool):
    assert is_loopback(host) is loopback


def test_requests_are_logged_at_debug_without_their_query(guarded: PageServer, caplog, capfd):
    with caplog.at_level(logging.DEBUG, logger="radedge.serve.page"):
        request(guarded, f"/api/status?token={quote(TOKEN, safe='')}")
        request(guarded, "/api/status?token=a-guess")
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=5) as raw:
            raw.sendall(b"GET /api/status?token=typed-in-by-hand and more HTTP/1.1\r\n\r\n")
            raw.makefile("rb").read()
    messages = [record.getMessage() for record in caplog.records]
    assert any("/api/status 200" in message for message in messages)
    assert any("/api/status 401" in message for message in messages)
    assert any("?<query>" in message for message in messages)  # the malformed request line, scrubbed
    for secret in (TOKEN, quote(TOKEN, safe=""), "a-guess", "typed-in-by-hand"):
        assert not any(secret in message for message in messages), secret
    assert {record.levelno for record in caplog.records} == {logging.DEBUG}
    assert capfd.readouterr().err == ""


# --- the page in a browser ------------------------------------------------------------------

BROWSER_MISSING = unavailable_reason()
needs_browser = pytest.mark.skipif(BROWSER_MISSING is not None, reason=BROWSER_MISSING or "")


@pytest.fixture(scope="module")
def browser():
    if BROWSER_MISSING is not None:
        pytest.skip(BROWSER_MISSING)
    with Browser() as chromium:
        yield chromium


def card_text(key: str) -> str:
    return f"document.querySelector('.card[data-key=\"{key}\"]')?.textContent ?? ''"


@needs_browser
def test_the_page_shows_the_journal_and_follows_it_live(browser: Browser, server: PageServer, data: ConsoleData):
    browser.navigate(server.url)
    assert browser.wait_for("document.getElementById('connection').dataset.state === 'live'")
    assert browser.wait_for("document.querySelectorAll('.card').length") == 2
    assert browser.evaluate("[...document.querySelectorAll('.card')].map(c => c.dataset.key)") == ["b2", "a1"]
    assert browser.evaluate("document.querySelector('.card[data-key=\"b2\"]').dataset.state") == "analysing"
    assert "analysing…" in browser.evaluate(card_text("b2"))
    flag = browser.evaluate("document.querySelector('.card[data-key=\"a1\"] .flag').textContent")
    assert "Suspected bone tumour" in flag and "0.93" in flag
    assert browser.wait_for("document.querySelector('.card[data-key=\"a1\"] .thumbnail img').naturalWidth") == 256
    browser.evaluate("window.sameDocument = true")

    data.put(instance("b2", NOW - 60, flags=[FRACTURE_FLAG], receive_to_flag_ms=1200.0, body_part="SPINE",
                      view="LAT", models={"bone-tumor": "analysed", "vcf": "analysed"}))
    badge = browser.wait_for("document.querySelector('.card[data-key=\"b2\"] .flag[data-code=\"vcf.fracture\"]')"
                             "?.textContent")
    assert "Vertebral compression fracture" in badge and "0.71" in badge and "L1" in badge
    assert browser.evaluate("document.querySelector('.card[data-key=\"b2\"]').dataset.state") == "done"

    data.put(instance("c3", NOW - 30, "not analysed", body_part="CHEST", view="PA", models={},
                      reason="no model applies to chest PA"))
    text = browser.wait_for(card_text("c3"))
    assert "Not analysed: no model applies to chest PA" in text
    assert browser.evaluate("document.querySelector('.card[data-key=\"c3\"] .not-analysed') !== null")

    data.put(instance("d4", NOW - 20, via="folder"))
    assert "No findings" in browser.wait_for(card_text("d4"))
    data.put(instance("e5", NOW - 10, "failed", reason="the pixel data could not be decoded (JPEG 2000)"))
    assert "Failed: the pixel data could not be decoded" in browser.wait_for(card_text("e5"))

    assert browser.wait_for("document.getElementById('counts').textContent.includes('done3')")
    assert browser.evaluate("[...document.querySelectorAll('.card')].map(c => c.dataset.key)") == [
        "e5", "d4", "c3", "b2", "a1"]
    assert browser.evaluate("window.sameDocument") is True
    assert browser.console_errors() == []

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = browser.screenshot(ARTIFACTS / "serve-page.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_browser
def test_instance_data_cannot_inject_markup(browser: Browser, server: PageServer, data: ConsoleData):
    browser.navigate(server.url)
    browser.wait_for("document.querySelectorAll('.card').length === 2")
    markup = '<img src=x onerror="window.injected=1">'
    hostile = instance("f6", NOW, "not analysed", via=markup, modality=markup, body_part=markup, view=markup,
                       reason=markup, models={markup: markup},
                       flags=[{**TUMOUR_FLAG, "title": markup, "code": markup, "where": markup, "label": markup}])
    data.put(hostile)
    text = browser.wait_for(card_text("f6"))
    assert text.count(markup) >= 6
    assert browser.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert browser.evaluate("document.querySelectorAll('.card[data-key=\"f6\"] img').length") == 0
    assert browser.evaluate("document.querySelector('.card[data-key=\"f6\"] .flag').dataset.code") == markup
    assert browser.evaluate("typeof window.injected") == "undefined"
    assert browser.console_errors() == []


@needs_browser
def test_the_page_refetches_on_resync_and_comes_back_after_a_restart(browser: Browser, data: ConsoleData):
    page = PageServer(data, port=0)
    page.start()
    port = page.port
    try:
        browser.navigate(page.url)
        browser.wait_for("document.getElementById('connection').dataset.state === 'live'")
        browser.wait_for("document.querySelectorAll('.card').length === 2")
        reads = data.status_reads
        browser.evaluate("document.querySelector('.card[data-key=\"a1\"]').kept = true")
        data.instances["c3"] = instance("c3", NOW)  # in the journal but never announced
        data.events.publish({"type": "resync"})
        browser.wait_for(card_text("c3"))
        assert data.status_reads == reads + 1  # one new snapshot
        # The card of an unchanged instance stays as it was: its overlay is not loaded again.
        assert browser.evaluate("document.querySelector('.card[data-key=\"a1\"]').kept") is True
        deadline = time.monotonic() + 1.0
        while data.events.subscriber_count != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert data.events.subscriber_count == 1  # the stream that fell behind was closed

        page.stop()
        browser.wait_for("document.getElementById('connection').dataset.state === 'reconnecting'")
        data.instances["d4"] = instance("d4", NOW + 1)
        page = PageServer(data, port=port)
        page.start()
        browser.wait_for("document.getElementById('connection').dataset.state === 'live'", timeout_s=5)
        assert browser.wait_for(card_text("d4"))
    finally:
        page.stop()


@needs_browser
def test_the_page_passes_its_token_on(browser: Browser, guarded: PageServer):
    browser.navigate(f"{guarded.url}?token={quote(TOKEN, safe='')}")
    browser.wait_for("document.getElementById('connection').dataset.state === 'live'")
    assert browser.wait_for("document.querySelectorAll('.card').length") == 2
    assert browser.wait_for("document.querySelector('.thumbnail img').naturalWidth") == 256
    browser.evaluate("document.querySelector('.thumbnail').click()")
    assert browser.wait_for("document.getElementById('enlarged').open && "
                            "document.getElementById('enlarged-image').naturalWidth") == 256
    assert browser.console_errors() == []

    browser.navigate(guarded.url)
    assert "token is required" in browser.evaluate("document.body.textContent")
    assert browser.evaluate("document.querySelectorAll('.card').length") == 0
