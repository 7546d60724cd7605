"""The HTTP listener: hypercorn's trio worker serving ``app.MetricsApp``.

Why hypercorn: an ASGI server that runs on trio itself (its trio worker), so the metrics and
the dashboard live in the broker's own event loop and read its state directly, with HTTP/1.1
parsing (h11), keep-alive, request size limits and timeouts handled by a well-kept library
rather than by us. Off unless ``[http] listen`` (``dualmq serve --http``) is set.

Like the other listeners, ``serve_http`` reports the bound ``HOST:PORT`` (port 0 resolved)
through ``task_status`` once it accepts connections, and stops when cancelled.
"""

from __future__ import annotations

import functools
import logging
import socket

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from broker.config import HttpConfig
from broker.loggers import get_logger
from broker.security.exposure import exposure_warning
from broker.state import BrokerState
from modes.common.clock import now_ms
from modes.common.exception_groups import leaves
from modes.common.running import RunningServers
from modes.http.app import FRAME_INTERVAL_SECONDS, MetricsApp
from modes.http.view import read_view

__all__ = ["serve_http"]

log = get_logger(__name__)

# Hypercorn's own messages (a failing connection, a bug in the app) go to standard logging
# under this name, at warning and above; its access log is off (a scrape a second would
# flood the broker's log).
HYPERCORN_LOGGER = "dualmq.http.server"


# A dashboard or scraper that stops reading (its receive window full) is dropped by the
# kernel once nothing it was sent has been acknowledged for this long. Without it, hypercorn's
# send - shielded from cancellation - would wait for that peer for ever: the broker could not
# shut down, and each such page would hold one of the dashboard's stream slots for good.
STALLED_PEER_TIMEOUT_MS = 3000


class _Config(Config):
    """Hypercorn's config, whose listening sockets carry ``TCP_USER_TIMEOUT`` (Linux; the
    accepted sockets inherit it)."""

    def create_sockets(self):  # noqa: ANN201 (hypercorn's Sockets)
        sockets = super().create_sockets()
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            for sock in (*sockets.insecure_sockets, *sockets.secure_sockets):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, STALLED_PEER_TIMEOUT_MS)
        return sockets


def hypercorn_config(listen: str) -> Config:
    """Hypercorn's settings for ``listen`` (``HOST:PORT``)."""
    config = _Config()
    config.bind = [listen]
    config.accesslog = None
    error_log = logging.getLogger(HYPERCORN_LOGGER)
    error_log.setLevel(logging.WARNING)
    config.errorlog = error_log
    config.include_server_header = False
    # Requests are a line and a few headers: 16 KiB of incomplete request is plenty (h11's
    # default), and an idle keep-alive connection is closed after 5 s.
    config.h11_max_incomplete_size = 16 * 1024
    config.keep_alive_timeout = 5
    config.graceful_timeout = 1
    return config


async def serve_http(
    config: HttpConfig,
    state: BrokerState,
    running: RunningServers,
    *,
    interval: float = FRAME_INTERVAL_SECONDS,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` and the dashboard on ``config.listen`` until cancelled.

    Args:
        config: the ``[http]`` section (``listen`` must be set).
        state: the broker's state, read at each scrape.
        running: the protocol front-ends, read at each scrape.
        interval: seconds between dashboard frames.

    Raises:
        OSError: the address cannot be bound (the daemon turns it into a clear message).
    """
    app = MetricsApp(lambda: read_view(state, running, now_ms()), interval=interval)
    started = False
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(functools.partial(serve, app, hypercorn_config(config.listen), mode="asgi"))
            address = binds[0].split("://", 1)[1]
            log.info("http_listening", address=address, metrics=f"http://{address}/metrics",
                     dashboard=f"http://{address}/")
            _warn_if_exposed(address)
            started = True
            task_status.started(address)
    except BaseExceptionGroup as group:
        # Hypercorn binds inside its own nurseries: "cannot bind" arrives wrapped. Unwrap it
        # so the daemon reports it as it reports the other listeners' (address in use, ...).
        bind_error = None if started else _single_os_error(group)
        if bind_error is None:
            raise
        raise bind_error from None

def _warn_if_exposed(address: str) -> None:
    """One warning at start when other machines can reach the HTTP listener: it serves topic,
    group and client names to anyone, with no authentication (as Kafka's and Redis's own
    metrics exporters do), so it belongs on the loopback interface or behind a proxy."""
    host = address.rsplit(":", 1)[0].strip("[]")
    warning = exposure_warning(
        f"HTTP listener {address}", host, authentication_required=False,
        mitigation="/metrics and the dashboard show topic, group and client names to anyone; "
                   "bind http.listen to 127.0.0.1 or put it behind an authenticating proxy")
    if warning is not None:
        log.warning("listener_exposed", mode="http", address=address, warning=warning)


def _single_os_error(group: BaseExceptionGroup) -> OSError | None:
    """The OSError a (nested) exception group holds, if it holds exactly that and nothing else."""
    found = leaves(group)
    if len(found) == 1 and isinstance(found[0], OSError):
        return found[0]
    return None
