"""``EventHub``: the service's state changes, fanned out to every live page and status client.

A subscriber holds a bounded queue; one that stops reading (a browser tab left open on a
suspended laptop) loses its oldest events and is told so with a ``resync`` event, so a slow
reader never blocks the analysis that publishes.
"""

from __future__ import annotations

import queue
import threading
from typing import Any


class Subscription:
    """Events for one reader, oldest first. ``get`` waits up to ``timeout_s`` and returns
    None when nothing came; a ``{"type": "resync"}`` event means events were dropped and the
    reader should fetch the whole status again."""

    def __init__(self, hub: EventHub, size: int):
        self._hub = hub
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=size)
        self._dropped = False
        self._lock = threading.Lock()

    def _put(self, event: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                # Drop the backlog, keep the reader's place with one resync marker.
                while True:
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        break
                self._queue.put_nowait({"type": "resync"})

    def get(self, timeout_s: float | None = None) -> dict[str, Any] | None:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._hub._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class EventHub:
    """Publish JSON-ready dicts to every current subscriber. Thread-safe."""

    def __init__(self, queue_size: int = 256):
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self, self._queue_size)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription._put(event)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)
