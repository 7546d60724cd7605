"""The HTTP front-end's ASGI application: ``/metrics``, the dashboard page and its event stream.

Routes (GET and HEAD only; anything else is 405, an unknown path 404):

* ``/metrics`` — the Prometheus text format, written by ``prometheus_client``'s exposition
  from ``collector.BrokerCollector`` and the library's ``ProcessCollector`` (file
  descriptors, resident memory, CPU seconds);
* ``/`` — the dashboard page (``static/dashboard.html``), a static file;
* ``/events`` — server-sent events: one ``dashboard.frame`` as JSON every ``interval``
  seconds (1 by default) until the page goes away; at most ``MAX_EVENT_STREAMS`` at once
  (503 beyond);
* ``/state.json`` — one such frame, for scripts and tests.

An ASGI application is plain async code, so it runs on trio under hypercorn's trio worker
(``server.serve_http``) in the broker's own thread: reading the broker's state needs no lock,
and a scrape is one step between two steps of the broker. HTTP parsing, malformed requests
(answered 400 and closed by hypercorn's h11 layer), keep-alive and timeouts are hypercorn's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

from modes.http.collector import BrokerCollector
from modes.http.dashboard import frame
from modes.http.view import BrokerView

__all__ = ["FRAME_INTERVAL_SECONDS", "MAX_EVENT_STREAMS", "MetricsApp"]

FRAME_INTERVAL_SECONDS = 1.0
# Open event streams at once (each costs a frame a second); more are answered 503, so that
# many forgotten browser tabs cannot make the broker spend its time drawing frames.
MAX_EVENT_STREAMS = 32

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class MetricsApp:
    """The ASGI application (see the module docstring).

    Args:
        read_view: returns a fresh ``BrokerView`` (called once per scrape or frame).
        interval: seconds between two frames of ``/events``.
    """

    def __init__(self, read_view: Callable[[], BrokerView], *, interval: float = FRAME_INTERVAL_SECONDS) -> None:
        self._read_view = read_view
        self._interval = interval
        self._streams = 0
        # The event streams' frame, built at most once per interval however many pages are
        # open (``/state.json`` is always read fresh).
        self._shared_frame = b""
        self._shared_frame_at = -math.inf
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(BrokerCollector(read_view))
        ProcessCollector(registry=self.registry)
        self._page = files("modes.http").joinpath("static/dashboard.html").read_bytes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websocket: not served (hypercorn closes it)
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", b"text/plain; charset=utf-8",
                           extra=[(b"allow", b"GET, HEAD")], head=False)
            return
        head = method == "HEAD"
        if path == "/metrics":
            await _respond(send, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST.encode(), head=head)
        elif path == "/":
            await _respond(send, 200, self._page, b"text/html; charset=utf-8", head=head)
        elif path == "/state.json":
            await _respond(send, 200, self._frame_bytes(), b"application/json", head=head)
        elif path == "/events" and not head:
            if self._streams >= MAX_EVENT_STREAMS:
                await _respond(send, 503, b"too many open dashboards\n", b"text/plain; charset=utf-8",
                               extra=[(b"retry-after", b"10")], head=False)
                return
            self._streams += 1
            try:
                await self._events(receive, send)
            finally:
                self._streams -= 1
        else:
            await _respond(send, 404, b"not found\n", b"text/plain; charset=utf-8", head=head)

    def _frame_bytes(self) -> bytes:
        return json.dumps(frame(self._read_view()), separators=(",", ":")).encode()

    def _stream_frame(self) -> bytes:
        now = trio.current_time()
        if now - self._shared_frame_at >= self._interval:
            self._shared_frame, self._shared_frame_at = self._frame_bytes(), now
        return self._shared_frame

    async def _events(self, receive: Receive, send: Send) -> None:
        """Send a frame now and every ``interval`` seconds until the client disconnects."""
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        async with trio.open_nursery() as nursery:

            async def stop_on_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_disconnect)
            while True:
                await send({"type": "http.response.body", "body": b"data: " + self._stream_frame() + b"\n\n",
                            "more_body": True})
                await trio.sleep(self._interval)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes, *,
                   extra: list[tuple[bytes, bytes]] = (), head: bool) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """ASGI lifespan: nothing to set up or tear down (the broker owns its state)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
