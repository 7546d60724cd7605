"""The listener prologue both front-ends share: accept, name, admit, run, and always clean up.

Push mode (RESP) and pull mode (Kafka) differ in everything they say on a connection, but not
in how a connection starts and ends. That part lives here, once, so the two cannot drift:

* **Accepting.** One task per listening socket calls ``accept`` in a loop. Errors that mean
  "the system is out of descriptors or memory" (EMFILE, ENFILE, ENOMEM, ENOBUFS) pause that
  listener for 100 ms and retry, as ``trio.serve_listeners`` does, but log through structlog
  and at most once a second. Trio already skips the errors a peer can cause during accept
  (ECONNABORTED, EPROTO, ...). Anything else is logged with its traceback and retried after
  the same pause: a listener stops only when the broker stops.
* **Naming.** ``getpeername`` fails with ENOTCONN when the peer reset the connection between
  the kernel's accept and ours — routine under a flood of connections that are reset at once.
  Such a connection is closed quietly and counted (``peers_gone_at_accept``), never raised.
* **Admitting.** The listener-wide cap (Redis ``maxclients``, Kafka ``max.connections``) and a
  per-IP cap (Kafka ``max.connections.per.ip``) are checked before the mode sees the
  connection. A refused connection gets the mode's refusal (RESP: an ``-ERR`` line; Kafka:
  nothing, the connection is just closed, as Kafka does), is counted by the setting that
  refused it and logged as ``connection_rejected``.
* **Running.** The mode's handler runs inside the connection's own cancel scope, so anyone
  (``CLIENT KILL``, an idle timeout, the memory budget below) can end exactly that connection.
  Any exception from the handler ends that connection only: a peer that vanished is an
  ordinary close; anything else is a bug, logged once as ``connection_failed`` with its
  traceback. Every connection, however it ends, logs one ``connection_closed`` line.
* **Receive-buffer memory.** Each mode reports, after each read, how many bytes it holds for
  requests not yet complete (``account``). Two limits apply: one per connection (Redis
  ``client-query-buffer-limit``: over it, that connection is closed) and one for the total
  over all of this listener's connections (Kafka ``queued.max.request.bytes``, Redis
  ``maxmemory-clients``): over it, the connection holding the most is closed — the client
  most likely to be the attacker or the one stuck, and the one whose close frees the most.

Not here: anything a protocol says (framing, replies, commands) — that is each mode's
``server.py`` — and the clock (``modes.common.clock``).
"""

from __future__ import annotations

import errno
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from structlog.contextvars import bound_contextvars

from broker.loggers import get_logger
from modes.common.clock import now_ms
from modes.common.exception_groups import leaves

__all__ = [
    "CLOSE_KINDS",
    "Connection",
    "ConnectionLimits",
    "ConnectionTable",
    "ListenerStatistics",
    "close_kind",
    "format_address",
]

log = get_logger(__name__)

# accept() errors that say the process or the system is out of a resource: waiting a little
# lets connections close and free it (trio.serve_listeners treats the same four this way).
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_RETRY_SECONDS = 0.1
# At most one log line per listener and errno per this many seconds while accept keeps failing.
ACCEPT_LOG_INTERVAL_SECONDS = 1.0

# OSError numbers that mean the peer went away (reset, half-open, unreachable): an ordinary
# end of a connection, not a bug in our handler.
PEER_GONE_ERRNOS = frozenset({
    errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.ESHUTDOWN,
})


# Why connections end, in a few fixed words (a metrics label must not carry free text):
# the first prefix of the close reason that matches names its kind, else "other".
CLOSE_KINDS: tuple[tuple[str, str], ...] = (
    ("client closed", "client_closed"),
    ("QUIT", "client_closed"),
    ("connection reset", "reset"),
    ("connection closed", "reset"),
    ("protocol error", "protocol_error"),
    ("unknown api key", "protocol_error"),
    ("output buffer over hard", "output_buffer_hard"),
    ("output buffer over soft", "output_buffer_soft"),
    ("idle timeout", "idle_timeout"),
    ("request buffer", "request_buffer_limit"),
    ("largest request buffer", "request_buffer_limit"),
    ("CLIENT KILL", "killed"),
    ("SHUTDOWN", "shutdown"),
    ("protected mode", "protected_mode"),
    ("ACL ", "acl"),
    ("broker stopping", "broker_stopping"),
    ("internal error", "internal_error"),
    ("client did not read", "send_timeout"),
)


def close_kind(reason: str) -> str:
    """The kind of a close reason (see ``CLOSE_KINDS``); "unsupported_version" for a Kafka
    request of a version we do not serve, "other" for anything not listed."""
    for prefix, kind in CLOSE_KINDS:
        if reason.startswith(prefix):
            return kind
    if reason.endswith("is not supported"):
        return "unsupported_version"
    return "other"


def format_address(sockaddr: tuple) -> str:
    """``HOST:PORT`` for a socket address, ``[HOST]:PORT`` for IPv6 (as Redis prints it).

    Args:
        sockaddr: what ``getpeername``/``getsockname`` returned (IPv6 tuples have 4 items).

    Returns:
        The printable address.
    """
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@attrs.frozen(kw_only=True)
class ConnectionLimits:
    """What a listener admits, and how much unparsed request data it lets connections hold.

    Each ``*_setting`` is the config key as the user wrote it (``resp.maxclients``), used in
    log lines, close reasons and counters, so every refusal names the knob that caused it.
    A byte limit of 0 means "no limit".
    """

    max_connections: int
    max_connections_setting: str
    max_per_ip: int
    max_per_ip_setting: str
    # Over this many buffered bytes, a connection is closed (0: the mode's parser bounds it).
    per_connection_buffer_bytes: int = 0
    per_connection_buffer_setting: str = ""
    # Over this many buffered bytes summed over all connections, the largest holder is closed.
    total_buffer_bytes: int = 0
    total_buffer_setting: str = ""


@attrs.define(eq=False)
class Connection:
    """One admitted connection, as the listener sees it (modes keep their own state beside).

    Attributes:
        close_reason: why the connection ended, for the ``connection_closed`` line; the mode
            sets it as it learns why (QUIT, protocol error, idle timeout, ...).
        buffered_bytes: bytes of not-yet-complete requests held for this connection, as last
            reported to ``ConnectionTable.account``.
        summary: mode-specific fields added to the ``connection_closed`` line.
        on_close: called (once, with no arguments) by the first ``close``. A mode whose
            connections are read by one shared task (push mode's event loop) uses it to stop
            reading a connection at once, rather than when its task next runs.
    """

    id: int
    stream: trio.SocketStream
    peer_address: tuple
    local_address: tuple
    peer: str
    local: str
    opened_ms: int
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    close_reason: str = "client closed"
    buffered_bytes: int = 0
    # False exempts it from eviction over the total buffer budget (Redis's CLIENT NO-EVICT).
    evictable: bool = True
    summary: dict[str, Any] = attrs.field(factory=dict)
    on_close: Callable[[], None] | None = None
    _opened_monotonic: float = attrs.field(factory=time.monotonic)

    @property
    def peer_host(self) -> str:
        return self.peer_address[0]

    def close(self, reason: str) -> None:
        """End this connection (its handler is cancelled at its next checkpoint).

        The first reason given wins: a connection being closed for one cause and then
        noticed by another keeps the cause that came first.
        """
        if not self.cancel_scope.cancel_called:
            self.close_reason = reason
            if self.on_close is not None:
                self.on_close()
        self.cancel_scope.cancel()


@attrs.frozen(kw_only=True)
class ListenerStatistics:
    """A snapshot of one listener's connection counters (for INFO and metrics)."""

    connections_received: int
    connections_open: int
    # Refused connections by the setting that refused them (e.g. "resp.maxclients").
    rejected: dict[str, int]
    peers_gone_at_accept: int
    connection_failures: int
    buffered_bytes: int
    largest_buffered_bytes: int
    buffer_limit_disconnections: int
    buffer_budget_evictions: int
    # Connections that ended, by kind of reason (``close_kind``). Never reset by CONFIG
    # RESETSTAT: it feeds a Prometheus counter.
    closed: dict[str, int] = attrs.field(factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


Handler = Callable[[Connection], Awaitable[None]]
# Says "no" to a connection that is over a cap, in the mode's own words; the str argument
# is the setting that refused it. The listener closes the stream afterwards.
Refusal = Callable[[trio.SocketStream, str], Awaitable[None]]


@attrs.define(eq=False)
class ConnectionTable:
    """One listener's connections: the accept loop, the caps, and the per-connection wrapper.

    Args:
        mode: ``"push"`` or ``"pull"``, bound into every log line of a connection.
        limits: the caps (``ConnectionLimits``).
        handler: serves one admitted connection until it ends.
        refuse: what a connection over a cap is told before it is closed; None says nothing.
    """

    mode: str
    limits: ConnectionLimits
    handler: Handler
    refuse: Refusal | None = None
    connections: dict[int, Connection] = attrs.field(factory=dict)
    per_ip: dict[str, int] = attrs.field(factory=dict)
    ids: itertools.count = attrs.field(factory=lambda: itertools.count(1))
    buffered_total: int = 0
    connections_received: int = 0
    rejected: dict[str, int] = attrs.field(factory=dict)
    peers_gone_at_accept: int = 0
    connection_failures: int = 0
    buffer_limit_disconnections: int = 0
    buffer_budget_evictions: int = 0
    closed: dict[str, int] = attrs.field(factory=dict)

    # -- accepting ------------------------------------------------------------------------------

    async def serve(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept on every listener and run each connection until cancelled.

        Connection tasks live in the same nursery as the accept loops; since
        ``_run_connection`` never lets an ``Exception`` out, no connection can end the
        nursery (and with it the listeners).
        """
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, nursery)
            task_status.started()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        failures = 0
        last_logged: dict[int, float] = {}  # errno -> when it was last logged
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except trio.ClosedResourceError:
                    log.warning("listener_closed", mode=self.mode)
                    return
                except OSError as exc:
                    failures += 1
                    now = trio.current_time()
                    previous = last_logged.get(exc.errno)
                    if previous is None or now - previous >= ACCEPT_LOG_INTERVAL_SECONDS:
                        last_logged[exc.errno] = now
                        fields = dict(mode=self.mode, errno=errno.errorcode.get(exc.errno, exc.errno),
                                      error=exc.strerror, failures=failures,
                                      retry_seconds=ACCEPT_RETRY_SECONDS)
                        if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                            log.error("accept_failed", **fields)
                        else:
                            # Not an errno a peer can cause (trio skips those): show where.
                            log.exception("accept_failed", **fields)
                    await trio.sleep(ACCEPT_RETRY_SECONDS)
                else:
                    failures = 0
                    nursery.start_soon(self._run_connection, stream)

    # -- one connection -------------------------------------------------------------------------

    async def _run_connection(self, stream: trio.SocketStream) -> None:
        """Name, admit and serve one accepted socket; never raises an ``Exception``."""
        try:
            await self._name_admit_serve(stream)
        except Exception as exc:
            # A bug in the prologue itself (naming, admitting, refusing): handler errors are
            # caught closer to the handler, in _serve. Still only this connection pays.
            self.connection_failures += 1
            log.exception("connection_failed", mode=self.mode, error=f"{type(exc).__name__}: {exc}")
            await trio.aclose_forcefully(stream)

    async def _name_admit_serve(self, stream: trio.SocketStream) -> None:
        try:
            sock = stream.socket
            peer_address = sock.getpeername()
            local_address = sock.getsockname()
        except OSError:
            # The peer reset the connection before we got to it (ENOTCONN): nobody to serve.
            self.peers_gone_at_accept += 1
            await trio.aclose_forcefully(stream)
            return
        peer = format_address(peer_address)
        refused_by, limit = self._over_cap(peer_address[0])
        if refused_by:
            await self._reject(stream, peer, refused_by, limit)
            return
        conn = Connection(
            id=next(self.ids), stream=stream, peer_address=peer_address, local_address=local_address,
            peer=peer, local=format_address(local_address), opened_ms=now_ms(),
        )
        self._admit(conn)
        try:
            with bound_contextvars(conn_id=conn.id, peer=peer, mode=self.mode):
                await self._serve(conn)
        finally:
            self._release(conn)
            await trio.aclose_forcefully(stream)

    def _over_cap(self, host: str) -> tuple[str, int]:
        """The setting that refuses a new connection from ``host`` and its value, or ("", 0)."""
        limits = self.limits
        if len(self.connections) >= limits.max_connections:
            return limits.max_connections_setting, limits.max_connections
        if self.per_ip.get(host, 0) >= limits.max_per_ip:
            return limits.max_per_ip_setting, limits.max_per_ip
        return "", 0

    async def _reject(self, stream: trio.SocketStream, peer: str, setting: str, limit: int) -> None:
        self.rejected[setting] = self.rejected.get(setting, 0) + 1
        log.warning("connection_rejected", mode=self.mode, peer=peer, reason=f"{setting} reached",
                    limit=limit)
        try:
            if self.refuse is not None:
                await self.refuse(stream, setting)
        except Exception as exc:
            if _peer_gone_reason(exc) is None:
                raise
            # The refused peer did not wait for our answer: nothing more to do.
        finally:
            await trio.aclose_forcefully(stream)

    def _admit(self, conn: Connection) -> None:
        self.connections_received += 1
        self.connections[conn.id] = conn
        self.per_ip[conn.peer_host] = self.per_ip.get(conn.peer_host, 0) + 1

    def _release(self, conn: Connection) -> None:
        del self.connections[conn.id]
        host = conn.peer_host
        left = self.per_ip[host] - 1
        if left:
            self.per_ip[host] = left
        else:
            del self.per_ip[host]  # the table holds only hosts with open connections
        self.buffered_total -= conn.buffered_bytes
        conn.buffered_bytes = 0

    async def _serve(self, conn: Connection) -> None:
        """Run the handler; whatever it raises ends this connection only."""
        try:
            with conn.cancel_scope:
                await self.handler(conn)
        except Exception as exc:
            gone = _peer_gone_reason(exc)
            if gone is not None:
                conn.close_reason = gone
            else:
                # A bug somewhere in the handler: loudly, once, with the traceback — and only
                # this client pays for it.
                self.connection_failures += 1
                failed = leaves(exc)
                log.exception("connection_failed",
                              error="; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in failed))
                conn.close_reason = "internal error: " + ", ".join(type(leaf).__name__ for leaf in failed)
        except BaseException:
            # Cancelled from outside the connection's own scope (that one swallows its own
            # cancellation): the broker is stopping. Let it unwind.
            conn.close_reason = "broker stopping"
            raise
        finally:
            kind = close_kind(conn.close_reason)
            self.closed[kind] = self.closed.get(kind, 0) + 1
            log.info("connection_closed", reason=conn.close_reason,
                     duration_ms=int((time.monotonic() - conn._opened_monotonic) * 1000), **conn.summary)

    # -- receive-buffer memory ------------------------------------------------------------------

    def account(self, conn: Connection, held_bytes: int) -> None:
        """Record that ``conn`` now holds ``held_bytes`` of incomplete requests; enforce limits.

        Called by the modes once per read (never per command), so it must stay cheap: two
        additions and two comparisons unless a limit is crossed. Over the per-connection
        limit, ``conn`` is closed; over the total, the connection holding the most is (which
        may be ``conn``). A closed connection's bytes leave the total at once, so one
        overshoot never closes two connections.
        """
        self.buffered_total += held_bytes - conn.buffered_bytes
        conn.buffered_bytes = held_bytes
        limits = self.limits
        if limits.per_connection_buffer_bytes and held_bytes > limits.per_connection_buffer_bytes:
            self._close_over_connection_limit(conn)
        elif limits.total_buffer_bytes and self.buffered_total > limits.total_buffer_bytes:
            self._evict_largest()

    def _close_over_connection_limit(self, conn: Connection) -> None:
        limits = self.limits
        held = conn.buffered_bytes
        self.buffer_limit_disconnections += 1
        # Redis logs "Closing client that reached max query buffer length" and closes
        # without a reply; so do we.
        log.warning("request_buffer_limit_exceeded", mode=self.mode, peer=conn.peer, conn_id=conn.id,
                    limit=limits.per_connection_buffer_setting,
                    limit_bytes=limits.per_connection_buffer_bytes, buffered_bytes=held)
        self._forget_buffer(conn)
        conn.close(f"request buffer of {held} bytes over {limits.per_connection_buffer_setting} "
                   f"({limits.per_connection_buffer_bytes} bytes)")

    def _evict_largest(self) -> None:
        limits = self.limits
        while self.buffered_total > limits.total_buffer_bytes:
            candidates = (conn for conn in self.connections.values() if conn.evictable)
            victim = max(candidates, key=_buffered, default=None)
            if victim is None or victim.buffered_bytes == 0:
                return  # nothing evictable left to free (the rest said CLIENT NO-EVICT)
            held, total = victim.buffered_bytes, self.buffered_total
            self.buffer_budget_evictions += 1
            log.warning("request_buffer_budget_exceeded", mode=self.mode, peer=victim.peer, conn_id=victim.id,
                        limit=limits.total_buffer_setting, limit_bytes=limits.total_buffer_bytes,
                        total_bytes=total, buffered_bytes=held)
            self._forget_buffer(victim)
            victim.close(f"largest request buffer ({held} bytes) while the total ({total} bytes) "
                         f"was over {limits.total_buffer_setting} ({limits.total_buffer_bytes} bytes)")

    def _forget_buffer(self, conn: Connection) -> None:
        # The bytes are freed when the connection's task unwinds; counting them as gone now
        # keeps one overshoot from closing more connections than needed meanwhile.
        self.buffered_total -= conn.buffered_bytes
        conn.buffered_bytes = 0

    # -- reporting ------------------------------------------------------------------------------

    def reset_statistics(self) -> None:
        """Zero the counters (Redis's CONFIG RESETSTAT); open connections and buffers stay."""
        self.connections_received = 0
        self.rejected = {}
        self.peers_gone_at_accept = 0
        self.connection_failures = 0
        self.buffer_limit_disconnections = 0
        self.buffer_budget_evictions = 0

    def statistics(self) -> ListenerStatistics:
        """A frozen snapshot of the counters."""
        return ListenerStatistics(
            connections_received=self.connections_received,
            connections_open=len(self.connections),
            rejected=dict(self.rejected),
            peers_gone_at_accept=self.peers_gone_at_accept,
            connection_failures=self.connection_failures,
            buffered_bytes=self.buffered_total,
            largest_buffered_bytes=max(map(_buffered, self.connections.values()), default=0),
            buffer_limit_disconnections=self.buffer_limit_disconnections,
            buffer_budget_evictions=self.buffer_budget_evictions,
            closed=dict(self.closed),
        )


def _buffered(conn: Connection) -> int:
    return conn.buffered_bytes


def _peer_gone_reason(exc: BaseException) -> str | None:
    """A close reason if ``exc`` only says the peer went away; None if it is a bug.

    Exception groups (a connection's nursery raises them) count as "peer gone" only when every
    exception inside does.
    """
    if isinstance(exc, BaseExceptionGroup):
        reasons = [_peer_gone_reason(inner) for inner in exc.exceptions]
        if reasons and all(reason is not None for reason in reasons):
            return reasons[0]
        return None
    if isinstance(exc, trio.BrokenResourceError):
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.strerror:
            return f"connection reset ({cause.strerror})"
        return "connection reset"
    if isinstance(exc, trio.ClosedResourceError):
        return "connection closed"
    if isinstance(exc, OSError) and exc.errno in PEER_GONE_ERRNOS:
        return f"connection reset ({exc.strerror})"
    return None
