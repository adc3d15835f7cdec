"""A headless Chromium driven over the DevTools protocol, for tests that need a real browser.

``Browser`` starts ``chromium --headless=new`` with a throw-away profile and a fixed 1280x900
viewport, and talks to its one page over the DevTools websocket (the ``websocket-client``
package). Every start-up step and every wait is bounded; Chromium's own stderr goes to a file
in the profile folder, not to the test output.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

VIEWPORT = (1280, 900)  # CSS pixels, device scale factor 1


def chromium_path() -> str | None:
    """The Chromium executable, or None where none is installed."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable_reason() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install chromium)"
    try:
        import websocket  # noqa: F401
    except ImportError:
        return "websocket-client is not installed (pip install websocket-client)"
    return None


class JavaScriptError(RuntimeError):
    """An expression evaluated in the page threw."""


class Browser:
    """One headless Chromium page. Use as a context manager: the browser is killed and its profile
    removed on exit."""

    def __init__(self, *, startup_timeout_s: float = 20.0, command_timeout_s: float = 10.0):
        self.startup_timeout_s = startup_timeout_s
        self.command_timeout_s = command_timeout_s
        self._profile: Path | None = None
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self._socket = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._errors: list[str] = []

    # --- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _start(self) -> None:
        import websocket

        executable = chromium_path()
        if executable is None:
            raise FileNotFoundError(unavailable_reason())
        self._profile = Path(tempfile.mkdtemp(prefix="radedge-chromium-"))
        self._stderr = open(self._profile / "chromium-stderr.log", "wb")  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-port=0", f"--user-data-dir={self._profile}", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            # Its own process group, so close() ends the renderer and utility processes with it.
            start_new_session=True,
        )
        port = self._devtools_port()
        page_socket_url = self._page_socket_url(port)
        # Chromium refuses DevTools websockets that carry an Origin header it was not told to allow.
        self._socket = websocket.create_connection(page_socket_url, timeout=self.command_timeout_s,
                                                   suppress_origin=True)
        for domain in ("Page", "Runtime", "Log"):
            self.command(f"{domain}.enable")
        width, height = VIEWPORT
        self.command("Emulation.setDeviceMetricsOverride",
                     width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _deadline_passed(self, deadline: float, waiting_for: str) -> None:
        if self._process.poll() is not None:
            raise RuntimeError(f"Chromium exited with status {self._process.returncode} while {waiting_for}; "
                               f"its log: {self._stderr_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Chromium took more than {self.startup_timeout_s} s {waiting_for}; "
                               f"its log: {self._stderr_tail()}")

    def _devtools_port(self) -> int:
        """The port Chromium picked, from the DevToolsActivePort file it writes into the profile."""
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2 and lines[0].isdigit():
                return int(lines[0])
            self._deadline_passed(deadline, "to open its DevTools port")
            time.sleep(0.05)

    def _page_socket_url(self, port: int) -> str:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    targets = json.load(response)
            except OSError:
                targets = []
            pages = [target for target in targets if target.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            self._deadline_passed(deadline, "to open its first page")
            time.sleep(0.05)

    def _stderr_tail(self) -> str:
        try:
            return (self._profile / "chromium-stderr.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
            self._socket = None
        if self._process is not None:
            if self._process.poll() is None:
                os.killpg(self._process.pid, signal.SIGTERM)
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self._process.pid, signal.SIGKILL)
                    self._process.wait(timeout=5)
            self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # --- protocol ---------------------------------------------------------------------------

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result; events that arrive meanwhile are kept."""
        import websocket

        self._next_id += 1
        command_id = self._next_id
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.command_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Chromium did not answer {method} within {self.command_timeout_s} s")
            self._socket.settimeout(left)
            try:
                message = json.loads(self._socket.recv())
            except websocket.WebSocketTimeoutException as error:
                raise TimeoutError(f"Chromium did not answer {method} within {self.command_timeout_s} s") from error
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._record(message)

    def _record(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text", "")
            self._errors.append(f"exception: {description}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])]
            self._errors.append("console.error: " + " ".join(texts))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self._errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')} {entry.get('url', '')}".strip())

    def _wait_for_event(self, method: str, after: int, timeout_s: float) -> dict[str, Any]:
        """The first ``method`` event recorded at index ``after`` or later."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self._events[after:]:
                if event["method"] == method:
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout_s} s")
            # A cheap round trip reads every event queued before its answer.
            self.command("Runtime.evaluate", expression="0")
            time.sleep(0.02)

    # --- what tests use ---------------------------------------------------------------------

    def navigate(self, url: str, timeout_s: float = 10.0) -> None:
        """Load ``url`` and wait for its load event. ``console_errors`` starts afresh for the new page."""
        self.console_errors()
        self._errors.clear()
        after = len(self._events)
        result = self.command("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"could not load {url}: {result['errorText']}")
        self._wait_for_event("Page.loadEventFired", after, timeout_s)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited), as JSON-ready data."""
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text", "")
            raise JavaScriptError(f"{expression!r} threw: {description}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 5.0) -> Any:
        """Evaluate ``expression`` until it is truthy and return that value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} was still {value!r} after {timeout_s} s; "
                                   f"page errors: {self.console_errors()}")
            time.sleep(0.05)

    def screenshot(self, path: str | os.PathLike) -> Path:
        """Save what the viewport shows as a PNG at ``path`` (folders created)."""
        result = self.command("Page.captureScreenshot", format="png")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    def console_errors(self) -> list[str]:
        """Every uncaught exception, console.error and browser error (a failed load, a Content
        Security Policy violation) logged since the last ``navigate``, one line each."""
        self.command("Runtime.evaluate", expression="0")
        return list(self._errors)
